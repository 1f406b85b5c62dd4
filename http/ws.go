package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/runnel/runnel"
)

// The WebSocket transport: GET /runs/ws upgrades, then the client sends
// commands as text messages and reads each event of a run as a text message
// of its own (see docs/protocol.md):
//
//	{"type":"ask","question":"..."}      start a run and follow it
//	{"type":"ask","messages":[...]}      the same for a conversation's latest question
//	{"type":"resume","run":ID,"after":N} follow run ID after its event N
//	{"type":"cancel"}                    cancel the run this socket follows
//	{"type":"cancel","run":ID}           cancel run ID
//
// A socket follows one run at a time and takes the next command once that
// run's terminal event is out, so several questions can be asked one after
// another on one socket. A command the server refuses gets an error message
// without "run" or "seq"; the socket stays open.

// command is a message from a WebSocket client.
type command struct {
	Type     string            `json:"type"`
	Question string            `json:"question"`
	Messages *[]runnel.Message `json:"messages"` // a conversation, instead of a question
	Key      string            `json:"key"`      // an idempotency key, as the HTTP header
	Run      string            `json:"run"`
	After    *int              `json:"after"`
}

// socket is one WebSocket connection.
type socket struct {
	s      *Server
	c      *websocket.Conn
	ctx    context.Context
	reqID  string
	client string // for the question rate

	mu      sync.Mutex
	current runnel.Run    // the run being followed, or nil
	idle    chan struct{} // closed when no run is being followed
}

func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown() {
		writeError(w, errShutdown)
		return
	}
	release, ok := s.limited(w, r, false)
	if !ok {
		return
	}
	defer release()
	// Same origin only, unless CORS allows the page's: a page elsewhere
	// cannot ask in a visitor's name.
	c, err := websocket.Accept(w, r, s.guard.websocketOptions())
	if err != nil {
		s.Logger.InfoContext(r.Context(), "websocket refused", "err", err)
		return // Accept wrote the response
	}
	s.streams.Add(1)
	defer s.streams.Done()
	c.SetReadLimit(s.maxBody())

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The server does not track a hijacked connection: when the shutdown
	// grace runs out, this is what closes it.
	stopCut := context.AfterFunc(s.cut, cancel)
	defer stopCut()
	sk := &socket{s: s, c: c, ctx: ctx, reqID: requestID(r), client: s.guard.clientKey(r), idle: make(chan struct{})}
	close(sk.idle)

	keepalive := make(chan struct{})
	go func() {
		defer close(keepalive)
		sk.keepalive()
	}()
	if q := r.URL.Query().Get("question"); q != "" {
		sk.ask(command{Question: q}, "")
	}
	code, reason := sk.read()
	cancel()
	<-keepalive
	sk.wait()
	c.Close(code, reason)
}

// read handles the client's commands until the socket closes, and returns
// the close code and reason to send.
func (sk *socket) read() (websocket.StatusCode, string) {
	for {
		typ, data, err := sk.c.Read(sk.ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				return websocket.StatusNormalClosure, ""
			}
			if errors.Is(err, context.Canceled) && sk.s.shuttingDown() {
				return websocket.StatusGoingAway, "The server is shutting down."
			}
			return websocket.StatusInternalError, "" // gone, or a broken frame
		}
		if typ != websocket.MessageText {
			return websocket.StatusUnsupportedData, "runnel reads text messages of JSON."
		}
		var cmd command
		if err := json.Unmarshal(data, &cmd); err != nil {
			sk.refuse(runnel.Errorf(runnel.EINVALID, "The message is not a JSON command: %v.", err))
			continue
		}
		switch cmd.Type {
		case "ask":
			sk.ask(cmd, cmd.Key)
		case "resume":
			after := -1
			if cmd.After != nil {
				after = *cmd.After
			}
			sk.resume(cmd.Run, after)
		case "cancel":
			sk.cancel(cmd.Run)
		default:
			sk.refuse(runnel.Errorf(runnel.EINVALID, `Unknown command %q; send "ask", "resume" or "cancel".`, cmd.Type))
		}
	}
}

// refuse sends an error message that belongs to no run.
func (sk *socket) refuse(e *runnel.Error) {
	b, _ := wsMessage{}.event(nil, &runnel.Event{Type: runnel.EventError, Err: e})
	ctx, cancel := context.WithTimeout(sk.ctx, sk.s.writeTimeout())
	defer cancel()
	sk.c.Write(ctx, websocket.MessageText, b)
}

// busy reports whether the socket follows a run, refusing the command if so.
func (sk *socket) busy() bool {
	sk.mu.Lock()
	run, idle := sk.current, sk.idle
	sk.mu.Unlock()
	if run != nil && run.State() != runnel.RunLive {
		// The run has ended, and the client, holding its terminal event,
		// asks again before the pump has quite finished: it is about to.
		<-idle
		return false
	}
	if run != nil {
		sk.refuse(runnel.Errorf(runnel.EINVALID, "This socket is following run %s; cancel it or wait for its end first.", run.ID()))
		return true
	}
	return false
}

func (sk *socket) ask(cmd command, key string) {
	if sk.busy() {
		return
	}
	if len(key) > 64 || !isToken(key) {
		sk.refuse(runnel.Errorf(runnel.EINVALID, "A key must be 1 to 64 letters, digits, '-', '_' or '.'."))
		return
	}
	if cmd.Messages != nil && cmd.Question != "" {
		sk.refuse(runnel.Errorf(runnel.EINVALID, `The command has both "question" and "messages"; send one of them.`))
		return
	}
	q, err := sk.s.parseQuestion(cmd.Question, cmd.Messages)
	if err != nil {
		sk.refuse(runnel.AsError(err))
		return
	}
	if sk.s.shuttingDown() {
		sk.refuse(errShutdown)
		return
	}
	if no := sk.s.guard.question(sk.client, time.Now()); no != nil {
		sk.s.Metrics.refused(no.err.Code)
		sk.refuse(no.err)
		return
	}
	run, cp, err := sk.s.start(sk.ctx, q, key, sk.reqID)
	if err != nil {
		sk.s.Logger.Error("start run", "err", err)
		sk.refuse(runnel.AsError(err))
		return
	}
	sk.follow(run, -1, cp)
}

func (sk *socket) resume(id string, after int) {
	if sk.busy() {
		return
	}
	run, err := sk.s.Runs.Get(sk.ctx, id)
	if err != nil {
		sk.refuse(runnel.AsError(err))
		return
	}
	if _, _, err := run.Read(sk.ctx, after, nil); errors.Is(err, io.EOF) {
		sk.refuse(runnel.Errorf(runnel.EINVALID, "Run %s has no events after %d: it has ended.", id, after))
		return
	}
	sk.s.Metrics.resumed("websocket")
	sk.follow(run, after, nil)
}

// follow pumps run to the socket on a goroutine of its own, so that the
// socket keeps reading commands (a cancel) meanwhile.
func (sk *socket) follow(run runnel.Run, after int, cp *checkpoints) {
	idle := make(chan struct{})
	sk.mu.Lock()
	sk.current, sk.idle = run, idle
	sk.mu.Unlock()
	detach := run.Attach()
	go func() {
		defer close(idle)
		defer func() {
			sk.mu.Lock()
			sk.current = nil
			sk.mu.Unlock()
		}()
		defer detach()
		p := &pump{
			s: sk.s, run: run, enc: wsMessage{}, after: after, encoded: after, cp: cp, reqID: sk.reqID,
			sink: &wsSink{ctx: sk.ctx, conn: sk.c, timeout: sk.s.writeTimeout()},
			via:  "websocket",
		}
		p.serve(sk.ctx)
	}()
}

// cancel cancels run id, or with id empty the run the socket follows.
func (sk *socket) cancel(id string) {
	var run runnel.Run
	if id == "" {
		sk.mu.Lock()
		run = sk.current
		sk.mu.Unlock()
		if run == nil {
			sk.refuse(runnel.Errorf(runnel.EINVALID, "This socket follows no run; name the run to cancel."))
			return
		}
	} else {
		var err error
		if run, err = sk.s.Runs.Get(sk.ctx, id); err != nil {
			sk.refuse(runnel.AsError(err))
			return
		}
	}
	if _, err := run.Cancel(sk.ctx, runnel.CancelByClient); err != nil {
		sk.refuse(runnel.AsError(err))
	}
}

// wait returns when no run is being followed.
func (sk *socket) wait() {
	sk.mu.Lock()
	idle := sk.idle
	sk.mu.Unlock()
	<-idle
}

// keepalive pings the client after every ping interval and closes a socket
// whose client does not answer within the write timeout. On shutdown it lets
// the run in progress end (its readers get the error event) and closes the
// socket as going away.
func (sk *socket) keepalive() {
	t := time.NewTicker(sk.s.pingInterval())
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(sk.ctx, sk.s.writeTimeout())
			err := sk.c.Ping(ctx)
			cancel()
			if err != nil && sk.ctx.Err() == nil {
				sk.c.CloseNow()
				return
			}
		case <-sk.s.stopping:
			sk.wait()
			sk.c.Close(websocket.StatusGoingAway, "The server is shutting down.")
			return
		case <-sk.ctx.Done():
			return
		}
	}
}

func (s *Server) maxBody() int64 {
	if s.MaxBody > 0 {
		return s.MaxBody
	}
	return DefaultMaxBody
}
