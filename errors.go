// Package prism holds the few types that every other Prism package shares:
// above all Error, the one error type that carries an HTTP status from
// wherever a request fails (a bad parameter, a missing key, a broken image)
// to the response writer, so that nothing upstream string-matches errors.
package prism

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes used in the JSON error body. They are stable API: clients and
// CDNs may key on them.
const (
	CodeInvalidParam     = "invalid_param"
	CodeInvalidKey       = "invalid_key"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUndecodable      = "undecodable_image"
	CodeTooLarge         = "source_too_large"
	CodeStorage          = "storage_error"
	CodeStorageTimeout   = "storage_timeout"
	CodeInternal         = "internal_error"
	CodeUnavailable      = "unavailable"

	// Written objects (the upload API).
	CodePreconditionFailed = "precondition_failed"
	CodeNotImplemented     = "not_implemented"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodePayloadTooLarge    = "payload_too_large"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeInvalidBody        = "invalid_body"
	CodeBusy               = "busy"
	CodeInvalidSignature   = "invalid_signature"
)

// Error is an error with the HTTP status it should be answered with.
// Param names the offending query parameter, when there is one.
type Error struct {
	Status  int
	Code    string
	Param   string
	Message string
	Err     error // the underlying cause, kept for logs; never shown to clients
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Param != "" {
		msg = e.Param + ": " + msg
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status and code.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidParam returns a 400 naming the query parameter at fault.
func InvalidParam(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParam, Param: param, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given status and code whose cause is err.
func Wrap(err error, status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message, Err: err}
}

// AsError returns err as an *Error. Errors that carry no status become a 500
// whose message does not leak the cause.
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return Wrap(err, http.StatusInternalServerError, CodeInternal, "internal error")
}

// StatusOf returns the HTTP status err should be answered with.
func StatusOf(err error) int { return AsError(err).Status }
