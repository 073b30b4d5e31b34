package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/filter"
	"github.com/flowg-server/flowg-server/stats"
)

// apiError is an error with the status code it answers with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to the status code of its answer.
func statusOf(err error) int {
	var ae *apiError
	var se *filter.SyntaxError
	var sse *stats.SyntaxError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &se), errors.As(err, &sse), errors.Is(err, flowg.ErrInvalid), errors.Is(err, flowg.ErrBadCursor),
		errors.Is(err, flowg.ErrUnknownRole):
		return http.StatusBadRequest
	case errors.As(err, &mb), errors.Is(err, flowg.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, flowg.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, flowg.ErrBadCredentials), errors.Is(err, flowg.ErrBadToken):
		return http.StatusUnauthorized
	case errors.Is(err, flowg.ErrBuiltin):
		return http.StatusForbidden
	case errors.Is(err, flowg.ErrLimit):
		return http.StatusUnprocessableEntity
	case errors.Is(err, flowg.ErrClosed), errors.Is(err, flowg.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, flowg.ErrDiskFull):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers with {"error": "..."}; a server-side error is logged and
// answered with a generic message.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusInsufficientStorage {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; see the server log"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flowg"`)
	}
	if (status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

// decodeJSON reads a bounded JSON body into v, refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", maxAdminBody)
		}
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "request body is empty; expected a JSON object")
		}
		return errorf(http.StatusBadRequest, "bad JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "bad JSON body: more than one JSON value")
	}
	return nil
}
