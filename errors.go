// Package prism holds the few types that every other Prism package shares:
// above all Error, the one error type that carries an HTTP status from
// wherever a request fails (a bad parameter, a missing key, a broken image)
// to the response writer, so that nothing upstream string-matches errors.
package prism

import (
	"encoding/json"
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
	CodeOutputTooLarge   = "output_too_large"
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
	CodeClientClosed       = "client_closed"
	CodeInvalidSignature   = "invalid_signature"
)

// StatusClientClosed is the status (nginx's) of a request whose client
// went away before its answer: it is logged and counted, never sent.
const StatusClientClosed = 499

// statuses is the one home of each code's HTTP status, for Fail.
var statuses = map[string]int{
	CodeInvalidParam:       http.StatusBadRequest,
	CodeInvalidKey:         http.StatusBadRequest,
	CodeInvalidBody:        http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeForbidden:          http.StatusForbidden,
	CodeInvalidSignature:   http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodePreconditionFailed: http.StatusPreconditionFailed,
	CodePayloadTooLarge:    http.StatusRequestEntityTooLarge,
	CodeUndecodable:        http.StatusUnsupportedMediaType,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeTooLarge:           http.StatusUnprocessableEntity,
	CodeOutputTooLarge:     http.StatusUnprocessableEntity,
	CodeBusy:               http.StatusTooManyRequests,
	CodeClientClosed:       StatusClientClosed,
	CodeInternal:           http.StatusInternalServerError,
	CodeNotImplemented:     http.StatusNotImplemented,
	CodeStorage:            http.StatusBadGateway,
	CodeUnavailable:        http.StatusServiceUnavailable,
	CodeStorageTimeout:     http.StatusGatewayTimeout,
}

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

// Fail returns an *Error with code and the status that code always has, so
// that packages which know nothing of HTTP (imaging) can fail precisely.
func Fail(code, format string, args ...any) *Error {
	status, ok := statuses[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithCause sets e's underlying cause, kept for logs, and returns e.
func (e *Error) WithCause(err error) *Error {
	e.Err = err
	return e
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

// JSON is the error body every Prism answer carries:
// {"error":{"status":…,"code":…,"param":…,"message":…}}.
func (e *Error) JSON() []byte {
	var body struct {
		Error struct {
			Status  int    `json:"status"`
			Code    string `json:"code"`
			Param   string `json:"param,omitempty"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Status, body.Error.Code, body.Error.Param, body.Error.Message = e.Status, e.Code, e.Param, e.Message
	data, _ := json.Marshal(body) // strings and an int: cannot fail
	return data
}

// StatusOf returns the HTTP status err should be answered with.
func StatusOf(err error) int { return AsError(err).Status }
