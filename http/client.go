package http

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/runnel/runnel"
)

// Transport is how a Client reads a run.
type Transport int

const (
	NDJSON    Transport = iota // protocol v1's lines over chunked HTTP (the default)
	SSE                        // Server-Sent Events over HTTP
	WebSocket                  // one message per event over a WebSocket
)

// ParseTransport returns the transport named by s: "ndjson", "sse" or
// "websocket", as Transport.String names them.
func ParseTransport(s string) (Transport, error) {
	for _, t := range []Transport{NDJSON, SSE, WebSocket} {
		if t.String() == s {
			return t, nil
		}
	}
	return NDJSON, fmt.Errorf("unknown transport %q: want ndjson, sse or websocket", s)
}

func (t Transport) String() string {
	switch t {
	case SSE:
		return "sse"
	case WebSocket:
		return "websocket"
	}
	return "ndjson"
}

// Defaults for a Client's resumption.
const (
	DefaultRetries    = 5
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
)

// Client asks a runnel server over HTTP.
type Client struct {
	// URL is the server's base URL, such as "http://localhost:8080".
	URL string
	// HTTPClient sends the requests; nil means http.DefaultClient. Give it
	// no Timeout: a timeout there cuts long answers. Bound an answer with
	// the context passed to Ask instead.
	HTTPClient *http.Client
	// MaxLine is the longest protocol line accepted; 0 means DefaultMaxLine.
	MaxLine int
	// Transport chooses NDJSON (the default), SSE or WebSocket.
	Transport Transport
	// Retries is how many times in a row the client resumes a run whose
	// connection broke without the run's end, before it gives up with the
	// error; 0 means DefaultRetries and a negative number none. Resuming
	// reads the run from the event after the last one passed on, so fn
	// sees every event exactly once.
	Retries int
	// MinBackoff and MaxBackoff bound the wait before each resumption
	// after the first, which is at once (a dropped connection is the
	// common case, and the reader wants the rest now): the wait doubles
	// from MinBackoff up to MaxBackoff, with jitter; 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// APIKey, when set, is sent with every request as Authorization:
	// Bearer, for a server that requires a key.
	APIKey string
}

// authorize adds the API key to a request's headers.
func (c *Client) authorize(h http.Header) {
	if c.APIKey != "" {
		h.Set("Authorization", "Bearer "+c.APIKey)
	}
}

// NewClient returns a Client for the server at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/")}
}

// Ask asks the server question and calls fn with each event of the answer,
// in order, as it arrives: query, tags, titles, sources, tokens, and the
// terminal event. Each event has its Run and Seq set. Ping events and event
// types this client does not know are skipped.
//
// When the connection breaks before the terminal event, Ask resumes the run
// where it broke (see Client.Retries), so fn sees every event once.
//
// Ask returns nil after the done event and runnel.ErrCanceled (test with
// errors.Is) after a canceled event: the run was canceled, by this client's
// Cancel or anyone's. It returns the server's error as a *runnel.Error,
// whether the server refused the question with an HTTP status or ended the
// stream with an error event. A stream that ends without its terminal event
// and cannot be resumed returns a *runnel.Error with code ETRUNCATED, never
// nil. If fn returns an error, Ask closes the stream and returns that error;
// the server cancels the run once its linger window passes.
func (c *Client) Ask(ctx context.Context, question string, fn func(runnel.Event) error) error {
	return c.read(ctx, &cursor{question: question, key: newKey(), after: -1}, fn)
}

// AskConversation asks the server the latest user message of msgs, read in
// the light of the turns before it (runnel.ParseConversation), and calls fn
// with each event of the answer as Ask does. msgs holds the conversation so
// far, oldest first, ending with the new question; the caller keeps it,
// appending each answer as an assistant message before the next question.
func (c *Client) AskConversation(ctx context.Context, msgs []runnel.Message, fn func(runnel.Event) error) error {
	if msgs == nil {
		msgs = []runnel.Message{} // the server says what is wrong with it
	}
	return c.read(ctx, &cursor{messages: msgs, key: newKey(), after: -1}, fn)
}

// newKey returns a new idempotency key: 128 random bits.
func newKey() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Follow reads run id from after its event after (-1: from its start) to
// its end, as Ask does. It returns a *runnel.Error with ENOTFOUND for a run
// the server does not know or no longer keeps.
func (c *Client) Follow(ctx context.Context, id string, after int, fn func(runnel.Event) error) error {
	return c.read(ctx, &cursor{run: id, after: after}, fn)
}

// Cancel cancels run id. Every reader of the run, this client's Ask among
// them, ends with the canceled event. It returns the state the run ended in:
// RunCanceled, or the state it had already ended in.
func (c *Client) Cancel(ctx context.Context, id string) (runnel.RunState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.base()+"/runs/"+url.PathEscape(id), nil)
	if err != nil {
		return "", fmt.Errorf("runnel: %w", err)
	}
	c.authorize(req.Header)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("runnel: cancel: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", readError(resp)
	}
	var body struct {
		State runnel.RunState `json:"state"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return "", &runnel.Error{Code: runnel.EMALFORMED, Message: "The server's answer to a cancel is not JSON."}
	}
	return body.State, nil
}

// cursor is where a reader is in a run.
type cursor struct {
	question string           // to ask, until the run is known
	messages []runnel.Message // or the conversation to ask, when not nil
	key      string           // the idempotency key that asks it again without a second answer
	run      string           // the run, once known
	after    int              // the last event passed on
	ended    bool             // the terminal event was passed on
}

// ask returns the body of the request that asks: the question or the
// conversation.
func (cur *cursor) ask() map[string]any {
	if cur.messages != nil {
		return map[string]any{"messages": cur.messages}
	}
	return map[string]any{"question": cur.question}
}

func (c *Client) base() string { return strings.TrimRight(c.URL, "/") }

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// read opens the run (or asks), reads it to its end and resumes it after
// every break it can resume.
func (c *Client) read(ctx context.Context, cur *cursor, fn func(runnel.Event) error) error {
	retries := c.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	failures := 0
	for {
		before := cur.after
		err := c.once(ctx, cur, fn)
		if fe, ok := err.(fnError); ok {
			return fe.err
		}
		var se statusError
		if errors.As(err, &se) {
			// A refusal. Only a server that is unavailable for now (a
			// replica going down, say) is worth asking again, under the
			// rules below; resumable tells by the code.
			if se.status < 500 {
				return se.err
			}
			err = se.err
		}
		if cur.ended || err == nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A known run is resumed where it broke. Without one (a server
		// that does not speak runs, or a break before the response named
		// its run) the question can only be asked again, and only while
		// nothing of its answer was passed on: the idempotency key then
		// gets a runnel server's run that already began, not a new one.
		if !resumable(err) || (cur.run == "" && (cur.key == "" || cur.after != -1)) {
			return err
		}
		if cur.after > before {
			failures = 0 // it was making progress
		}
		if failures++; failures > retries {
			return err
		}
		if err := sleep(ctx, c.backoff(failures)); err != nil {
			return err
		}
	}
}

// Read reads a protocol v1 NDJSON stream from r and calls fn with each
// event, as Client.Ask does once the response has begun, without resuming.
// It is for readers of streams that did not come through Client, such as a
// saved transcript.
func Read(ctx context.Context, r io.Reader, maxLine int, fn func(runnel.Event) error) error {
	cur := &cursor{after: -1}
	err := deliver(ctx, cur, numbered(NewReader(r, maxLine), cur.run, cur.after), fn)
	if fe, ok := err.(fnError); ok {
		return fe.err
	}
	return err
}

// statusError is a response that refused a request with its status.
type statusError struct {
	err    *runnel.Error
	status int
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

// fnError marks an error returned by the caller's fn.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }
func (e fnError) Unwrap() error { return e.err }

// resumable reports whether a failed read may succeed by resuming the run:
// a broken or truncated stream, an unreachable server, or one that is
// unavailable for now. A refusal (an invalid question, an unknown run) and
// the caller's own error are not.
func resumable(err error) bool {
	var fe fnError
	if errors.As(err, &fe) {
		return false
	}
	var re *runnel.Error
	if errors.As(err, &re) {
		switch re.Code {
		case runnel.ETRUNCATED, runnel.EUNAVAILABLE:
			return true
		case runnel.ETIMEOUT:
			return re.Retryable // a response's own time limit, not the run's
		}
		return false
	}
	return true // a network error
}

func (c *Client) backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	n--
	lo, hi := c.MinBackoff, c.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
	d := lo << min(n-1, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1) // half fixed, half jitter
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// once makes one connection and reads from it until the run ends or the
// connection breaks, advancing cur.
func (c *Client) once(ctx context.Context, cur *cursor, fn func(runnel.Event) error) error {
	if c.Transport == WebSocket {
		return c.onceSocket(ctx, cur, fn)
	}
	// A run is read after the last event passed on; a question asked
	// (again) is read from its start.
	start := cur.after
	if cur.run == "" {
		start = -1
	}
	resp, err := c.open(ctx, cur)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return &runnel.Error{Code: runnel.ETRUNCATED, Message: "The server has nothing after the last event received, yet its end never arrived."}
	}
	if resp.StatusCode != http.StatusOK {
		return statusError{readError(resp), resp.StatusCode}
	}
	if id := resp.Header.Get(RunIDHeader); id != "" {
		cur.run = id
	}
	want := "application/x-ndjson"
	if c.Transport == SSE {
		want = "text/event-stream"
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != want {
		return &runnel.Error{Code: runnel.EMALFORMED, Message: fmt.Sprintf("The server sent %q, not %s.", mt, want)}
	}
	var next func() (runnel.Event, error)
	if c.Transport == SSE {
		next = NewSSEReader(resp.Body, c.MaxLine).Next
	} else {
		next = numbered(NewReader(resp.Body, c.MaxLine), cur.run, start)
	}
	return deliver(ctx, cur, next, fn)
}

// numbered returns the events of an NDJSON stream of run that begins after
// event after, numbered by their place: every line but a ping is the next
// event of the run.
func numbered(dec *Reader, run string, after int) func() (runnel.Event, error) {
	seq := after
	return func() (runnel.Event, error) {
		e, err := dec.Next()
		if err != nil {
			return e, err
		}
		e.Run, e.Seq = run, -1
		if e.Type != runnel.EventPing {
			seq++
			e.Seq = seq
		}
		return e, nil
	}
}

// open sends the request that starts or resumes the run.
func (c *Client) open(ctx context.Context, cur *cursor) (*http.Response, error) {
	var req *http.Request
	var err error
	if cur.run == "" {
		body, jerr := json.Marshal(cur.ask())
		if jerr != nil {
			return nil, fmt.Errorf("runnel: encode question: %w", jerr)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.base()+"/articles/stream", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", cur.key)
		}
	} else {
		u := c.base() + "/runs/" + url.PathEscape(cur.run) + "?after=" + strconv.Itoa(cur.after)
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("runnel: %w", err)
	}
	c.authorize(req.Header)
	if c.Transport == SSE {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/x-ndjson")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("runnel: ask: %w", err)
	}
	return resp, nil
}

// deliver passes the events next returns to fn until the terminal event,
// advancing cur, and returns how the stream ended.
func deliver(ctx context.Context, cur *cursor, next func() (runnel.Event, error), fn func(runnel.Event) error) error {
	for {
		e, err := next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var re *runnel.Error
			if errors.As(err, &re) {
				return re
			}
			msg := "The stream ended before the answer was complete."
			if !errors.Is(err, io.EOF) {
				msg = fmt.Sprintf("The connection broke before the answer was complete (%v).", err)
			}
			return &runnel.Error{Code: runnel.ETRUNCATED, Message: msg, Retryable: true}
		}
		switch e.Type {
		case runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources,
			runnel.EventToken, runnel.EventDone, runnel.EventError, runnel.EventCanceled:
		default:
			continue // ping, or a newer server's event type
		}
		if e.Seq < 0 {
			if e.Type == runnel.EventError {
				// An error of the response's own, not of the run (a time
				// limit, a shutdown): the run itself may be resumed.
				return e.Err
			}
			continue
		}
		if e.Seq <= cur.after {
			continue // already passed on before a resumption
		}
		cur.after = e.Seq
		if e.Run != "" {
			cur.run = e.Run
		}
		cur.ended = e.Terminal()
		if err := fn(e); err != nil {
			cur.ended = true
			return fnError{err}
		}
		switch e.Type {
		case runnel.EventDone:
			return nil
		case runnel.EventError:
			return e.Err
		case runnel.EventCanceled:
			return runnel.ErrCanceled
		}
	}
}

// onceSocket reads the run over a WebSocket: it dials, asks or resumes,
// and reads messages until the run ends or the socket breaks.
func (c *Client) onceSocket(ctx context.Context, cur *cursor, fn func(runnel.Event) error) error {
	u := c.base() + "/runs/ws"
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	h := http.Header{}
	c.authorize(h)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.HTTPClient, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return statusError{readError(resp), resp.StatusCode}
		}
		return fmt.Errorf("runnel: dial: %w", err)
	}
	defer conn.CloseNow()
	max := c.MaxLine
	if max <= 0 {
		max = DefaultMaxLine
	}
	conn.SetReadLimit(int64(max))
	cmd := cur.ask()
	cmd["type"], cmd["key"] = "ask", cur.key
	if cur.run != "" {
		cmd = map[string]any{"type": "resume", "run": cur.run, "after": cur.after}
	}
	msg, _ := json.Marshal(cmd)
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("runnel: send: %w", err)
	}
	err = deliver(ctx, cur, func() (runnel.Event, error) {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != -1 {
				return runnel.Event{}, io.EOF
			}
			return runnel.Event{}, err
		}
		if typ != websocket.MessageText {
			return runnel.Event{}, &runnel.Error{Code: runnel.EMALFORMED, Message: "The server sent a binary message."}
		}
		var e runnel.Event
		if err := json.Unmarshal(data, &e); err != nil {
			// The WebSocket library can hand over a message whose
			// connection broke at the start of a frame's payload as if it
			// were whole. If the connection is broken, that is what this
			// was: a truncation, to resume.
			if _, _, rerr := conn.Read(ctx); rerr != nil && websocket.CloseStatus(rerr) == -1 {
				return runnel.Event{}, fmt.Errorf("message cut short: %w", rerr)
			}
			return runnel.Event{}, &runnel.Error{Code: runnel.EMALFORMED, Message: fmt.Sprintf("The server sent a message that is not an event: %v.", err)}
		}
		if e.Run == "" {
			if e.Type == runnel.EventError {
				return runnel.Event{}, e.Err // a refused command
			}
			e.Seq = -1
		}
		return e, nil
	}, fn)
	if cur.ended {
		conn.Close(websocket.StatusNormalClosure, "")
	}
	return err
}
