package http

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/runnel/runnel"
)

// codes maps error codes to HTTP statuses. The client uses it backwards to
// rebuild the server's *runnel.Error from a status when the body says nothing.
var codes = map[string]int{
	runnel.EINVALID:          http.StatusBadRequest,
	runnel.ETOOLARGE:         http.StatusRequestEntityTooLarge,
	runnel.ENOTFOUND:         http.StatusNotFound,
	runnel.EUNAVAILABLE:      http.StatusServiceUnavailable,
	runnel.ETIMEOUT:          http.StatusGatewayTimeout,
	runnel.EUPSTREAM:         http.StatusBadGateway,
	runnel.EINTERNAL:         http.StatusInternalServerError,
	"method_not_allowed":     http.StatusMethodNotAllowed,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
}

// StatusOf returns the HTTP status for an error code.
func StatusOf(code string) int {
	if s, ok := codes[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeOf returns the error code for an HTTP status.
func codeOf(status int) string {
	for c, s := range codes {
		if s == status && c != "method_not_allowed" && c != "unsupported_media_type" {
			return c
		}
	}
	switch {
	case status == http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case status == http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case status == http.StatusTooManyRequests:
		return runnel.EUNAVAILABLE
	case status >= 500:
		return runnel.EINTERNAL
	}
	return runnel.EINVALID
}

// errorBody is the JSON body of an error response before the stream begins.
type errorBody struct {
	Error *runnel.Error `json:"error"`
}

// writeError writes err as an HTTP status and a JSON body.
func writeError(w http.ResponseWriter, err *runnel.Error) {
	status := StatusOf(err.Code)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if err.Retryable || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Error: err})
}

// readError turns an error response into a *runnel.Error, using the JSON
// body when there is one and the status otherwise.
func readError(resp *http.Response) *runnel.Error {
	var body errorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) == nil && body.Error != nil && body.Error.Code != "" {
		return body.Error
	}
	return &runnel.Error{
		Code:      codeOf(resp.StatusCode),
		Message:   "The server answered " + resp.Status + ".",
		Retryable: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
	}
}
