package http

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/runnel/runnel"
)

// StatusOf returns the HTTP status for an error code (runnel.Statuses).
func StatusOf(code string) int { return runnel.HTTPStatus(code) }

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
	if h.Get("Retry-After") == "" && (err.Retryable || status == http.StatusServiceUnavailable) {
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
		Code:      runnel.CodeOf(resp.StatusCode),
		Message:   "The server answered " + resp.Status + ".",
		Retryable: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
	}
}
