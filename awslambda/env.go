package awslambda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/prism-image/prism/config"
)

// EnvDefaults are the settings a Lambda instance runs with unless its
// environment says otherwise. Lambda sends an instance one request at a
// time, so one pipeline runs and it gets every vCPU the instance has; the
// queue holds the one request that may arrive while an upload or an S3
// event still holds the worker. Metrics reach CloudWatch as EMF lines in
// the function's log.
func EnvDefaults() map[string]string {
	return map[string]string{
		config.EnvName("workers"):          "1",
		config.EnvName("vips-concurrency"): strconv.Itoa(runtime.NumCPU()),
		config.EnvName("queue"):            "1",
		config.EnvName("cloudwatch-emf"):   "true",
	}
}

// SetEnvDefaults sets every variable of EnvDefaults that is not set. Flags
// still win over them, as over any variable.
func SetEnvDefaults() error {
	for k, v := range EnvDefaults() {
		if _, ok := os.LookupEnv(k); !ok {
			if err := os.Setenv(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReportInitError tells the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API)
// that the function could not start, and why, so that the failed
// invocation carries the reason rather than a bare exit status. Outside
// Lambda it does nothing.
func ReportInitError(initErr error) error {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		return nil
	}
	body, err := json.Marshal(map[string]any{
		"errorMessage": initErr.Error(),
		"errorType":    "Runtime.InitError",
		"stackTrace":   []string{},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("the Runtime API answered %s to an init error", res.Status)
	}
	return nil
}
