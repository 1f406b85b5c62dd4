package http

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/runnel/runnel"
)

// negotiateStream picks the stream's framing from the Accept header: SSE
// when the request ranks text/event-stream strictly above NDJSON (an
// EventSource sends exactly that), NDJSON otherwise, so */* and no Accept
// at all keep protocol v1. A browser navigating to the address ranks
// text/html above NDJSON: it gets the NDJSON bytes as text/plain, which it
// shows rather than downloads.
func negotiateStream(r *http.Request) encoder {
	accept := r.Header.Values("Accept")
	nd := quality(accept, "application", "x-ndjson")
	if es := quality(accept, "text", "event-stream"); es > 0 && es > nd {
		return sse{}
	}
	if html := quality(accept, "text", "html"); html > 0 && html > nd {
		return ndjsonText{}
	}
	return ndjson{}
}

func transportName(enc encoder) string {
	switch enc.(type) {
	case sse:
		return "sse"
	case wsMessage:
		return "websocket"
	case *chatStream:
		return "openai"
	}
	return "ndjson"
}

// handleFollow streams a run from after its event ?after=N (from the start
// without it), then follows it live until its terminal event.
func (s *Server) handleFollow(w http.ResponseWriter, r *http.Request) {
	after := -1
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			writeError(w, runnel.Errorf(runnel.EINVALID, "after must be a whole number of -1 or more, not %q.", v))
			return
		}
		after = n
	}
	s.resume(w, r, negotiateStream(r), r.PathValue("id"), after)
}

// resume streams run id after its event after. For SSE, a Last-Event-ID
// header ("run.seq") takes precedence, naming the run when id is empty.
func (s *Server) resume(w http.ResponseWriter, r *http.Request, enc encoder, id string, after int) {
	if _, ok := enc.(sse); ok {
		if last := r.Header.Get("Last-Event-ID"); last != "" {
			run, seq, ok := parseEventID(last)
			if !ok || (id != "" && run != id) {
				writeError(w, runnel.Errorf(runnel.EINVALID, "Last-Event-ID %q does not name an event of this run.", last))
				return
			}
			id, after = run, seq
		}
	}
	run, err := s.Runs.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set(RunIDHeader, run.ID())
		w.Header().Set("Content-Type", enc.contentType())
		w.WriteHeader(http.StatusOK)
		return
	}
	// Nothing after the terminal event: say so without a stream, which
	// also tells an EventSource to stop reconnecting.
	if _, _, err := run.Read(r.Context(), after, nil); errors.Is(err, io.EOF) {
		w.Header().Set(RunIDHeader, run.ID())
		w.WriteHeader(http.StatusNoContent)
		return
	}
	release, ok := s.limited(w, r, false)
	if !ok {
		return
	}
	s.Metrics.resumed(transportName(enc))
	s.stream(w, r, run, after, enc, nil, requestID(r), release)
}

// parseEventID splits an SSE event id "run.seq".
func parseEventID(s string) (run string, seq int, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}

// handleCancel cancels a run: its producer stops, and every reader gets the
// canceled event. It answers with the state the run ended in, which is not
// canceled when it had already ended: canceling is idempotent.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	run, err := s.Runs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	state, err := run.Cancel(r.Context(), runnel.CancelByClient)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Logger.InfoContext(r.Context(), "cancel", "run", run.ID(), "state", string(state))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"id": run.ID(), "state": string(state)})
}
