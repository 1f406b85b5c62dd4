package http

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// The OpenAI-compatible API (docs/openai.md): POST /v1/chat/completions,
// streamed or not, and GET /v1/models, so that chat UIs and OpenAI's SDKs
// can ask runnel as if it were a model. An answer is a run like any other:
// the conversation becomes a query (runnel.ParseConversation), s.start
// produces the run, and a stream is the run's events written by the pump
// through chatStream, an encoder in OpenAI's chat.completion.chunk framing.
// A completion that is not streamed reads the run to its end and answers
// one chat.completion object.

// DefaultModelName is the model the OpenAI-compatible API lists and
// answers as when Server.ModelName is empty.
const DefaultModelName = "runnel"

// processStart dates the model GET /v1/models lists.
var processStart = time.Now()

func (s *Server) modelName() string {
	return cmp.Or(strings.TrimSpace(s.ModelName), DefaultModelName)
}

// apiError is the error object of OpenAI's API: {"error": apiError}.
// Param and Code are null when there is nothing to say.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// OpenAI's error types.
const (
	typeInvalid   = "invalid_request_error"
	typeRateLimit = "requests"
	typeServer    = "server_error"
)

// openAIError returns the status and error object that say e in OpenAI's
// terms. runnel's code is the object's code, except where OpenAI has its
// own (invalid_api_key, rate_limit_exceeded).
func openAIError(e *runnel.Error) (int, apiError) {
	status := runnel.HTTPStatus(e.Code)
	code := e.Code
	typ := typeInvalid
	switch {
	case e.Code == runnel.EUNAUTHORIZED:
		code = "invalid_api_key"
	case e.Code == runnel.ERATELIMITED:
		typ, code = typeRateLimit, "rate_limit_exceeded"
	case e.Code == codeCanceled:
		typ = codeCanceled
	case status >= 500:
		typ = typeServer
	}
	return status, apiError{Message: e.Message, Type: typ, Code: &code}
}

// codeCanceled is the code of the error that ends a completion whose run
// was canceled (DELETE /runs/{id}, or abandoned): OpenAI's API has no
// finish reason for an answer that was stopped.
const codeCanceled = "canceled"

// statusCanceled answers a completion that is not streamed and whose run
// was canceled; x-should-retry: false keeps OpenAI's SDKs from asking again.
const statusCanceled = http.StatusConflict

// writeAPIError writes status and {"error": e}.
func writeAPIError(w http.ResponseWriter, status int, e apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if h.Get("Retry-After") == "" && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error apiError `json:"error"`
	}{e})
}

// failAPI writes err in OpenAI's shape; param names the request's field at
// fault, if any. Errors without a user-facing code are logged in full.
func (s *Server) failAPI(w http.ResponseWriter, r *http.Request, err error, param string) {
	e := runnel.AsError(err)
	if e.Code == runnel.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	status, ae := openAIError(e)
	if param != "" {
		ae.Param = &param
	}
	writeAPIError(w, status, ae)
}

// v1 wraps a handler of the OpenAI-compatible API: with API keys
// configured, a request needs one, as for the native API routes, and is
// refused in OpenAI's error shape.
func (s *Server) v1(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.guard.authorized(r) {
			s.Metrics.refused(runnel.EUNAUTHORIZED)
			w.Header().Set("WWW-Authenticate", `Bearer realm="runnel"`)
			msg := "This server needs an API key: send Authorization: Bearer <key>."
			if r.Header.Get("Authorization") != "" {
				msg = "The API key is not one this server accepts."
			}
			s.failAPI(w, r, runnel.Errorf(runnel.EUNAUTHORIZED, "%s", msg), "")
			return
		}
		h(w, r)
	}
}

// citer is a generator that can cite its sources by number, [1], [2], in
// the text, as the extractive one does with its Cite option (an LLM is
// told to cite).
type citer interface {
	Citing() runnel.Generator
}

// citing returns a, or a copy whose generator cites its sources when it
// can: a client of the OpenAI-compatible API sees the answer's text alone,
// and its citations point at the sources listed after it.
func citing(a *runnel.Answerer) *runnel.Answerer {
	if a == nil {
		return nil
	}
	c, ok := a.Generator.(citer)
	if !ok {
		return a
	}
	cp := *a
	cp.Generator = c.Citing()
	return &cp
}

// apiModel is one entry of GET /v1/models.
type apiModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) model() apiModel {
	return apiModel{ID: s.modelName(), Object: "model", Created: processStart.Unix(), OwnedBy: "runnel"}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []apiModel{s.model()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id != s.modelName() {
		writeAPIError(w, http.StatusNotFound, modelNotFound(id))
		return
	}
	writeJSON(w, http.StatusOK, s.model())
}

func modelNotFound(id string) apiError {
	code, param := "model_not_found", "model"
	return apiError{Message: fmt.Sprintf("The model %q does not exist; GET /v1/models lists the models of this server.", id),
		Type: typeInvalid, Param: &param, Code: &code}
}

// chatRequest is the part of a chat completion request that runnel reads.
// Fields it does not know are ignored; the ones it cannot honour are
// refused by check.
type chatRequest struct {
	Model         *string       `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`

	N              *int            `json:"n"`
	Tools          json.RawMessage `json:"tools"`
	Functions      json.RawMessage `json:"functions"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	FunctionCall   json.RawMessage `json:"function_call"`
	Logprobs       *bool           `json:"logprobs"`
	TopLogprobs    *int            `json:"top_logprobs"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	Modalities []string        `json:"modalities"`
	Audio      json.RawMessage `json:"audio"`
}

// chatMessage is one message of the request. Content is a string, an
// array of content parts, or null.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// unsupported returns the parameter of req runnel refuses, and why, or "".
// Everything else that OpenAI's API takes (temperature, max_tokens, stop,
// seed, user, ...) is accepted and has no effect.
func (req *chatRequest) unsupported() (param, why string) {
	switch {
	case req.N != nil && *req.N != 1:
		return "n", "runnel gives one answer a request; n must be 1."
	case present(req.Tools):
		return "tools", "runnel does not call tools."
	case present(req.Functions):
		return "functions", "runnel does not call functions."
	case present(req.ToolChoice) && string(req.ToolChoice) != `"none"` && string(req.ToolChoice) != `"auto"`:
		return "tool_choice", "runnel does not call tools."
	case present(req.FunctionCall) && string(req.FunctionCall) != `"none"` && string(req.FunctionCall) != `"auto"`:
		return "function_call", "runnel does not call functions."
	case req.Logprobs != nil && *req.Logprobs:
		return "logprobs", "runnel does not report log probabilities."
	case req.TopLogprobs != nil && *req.TopLogprobs > 0:
		return "top_logprobs", "runnel does not report log probabilities."
	case req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text":
		return "response_format", "runnel answers in text only."
	case present(req.Audio):
		return "audio", "runnel answers in text only."
	}
	for _, m := range req.Modalities {
		if m != "text" {
			return "modalities", "runnel answers in text only."
		}
	}
	return "", ""
}

// present reports whether a raw JSON field was sent with a value.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null" && string(raw) != "[]"
}

// conversation turns the request's messages into runnel's, or says which
// message runnel cannot read. Roles: system and developer (as system), user,
// assistant; tool and function messages are refused with the tools.
func conversation(msgs []chatMessage) ([]runnel.Message, string, error) {
	if len(msgs) == 0 {
		return nil, "messages", runnel.Errorf(runnel.EINVALID, "The request has no messages.")
	}
	out := make([]runnel.Message, 0, len(msgs))
	for i, m := range msgs {
		param := "messages[" + strconv.Itoa(i) + "]"
		role := m.Role
		switch role {
		case "system", "user", "assistant":
		case "developer":
			role = "system"
		case "":
			return nil, param + ".role", runnel.Errorf(runnel.EINVALID, "Message %d has no role.", i)
		default:
			return nil, param + ".role", runnel.Errorf(runnel.EINVALID, "Message %d has role %q; runnel reads system, developer, user and assistant messages.", i, m.Role)
		}
		text, err := messageText(m.Content)
		if err != nil {
			return nil, param + ".content", runnel.Errorf(runnel.EINVALID, "Message %d: %v", i, err)
		}
		if role == "assistant" {
			text = withoutSources(text)
		}
		out = append(out, runnel.Message{Role: role, Content: text})
	}
	return recent(out), "", nil
}

// recent drops the oldest messages of a conversation that is over
// runnel.MaxMessages or runnel.MaxConversation, keeping the latest one: a
// chat UI sends the whole conversation with every question, and a long one
// should lose its beginning, not its answer.
func recent(msgs []runnel.Message) []runnel.Message {
	size := 0
	for i := len(msgs) - 1; i >= 0; i-- {
		size += len(msgs[i].Content)
		if i < len(msgs)-1 && (len(msgs)-i > runnel.MaxMessages || size > runnel.MaxConversation) {
			return msgs[i+1:]
		}
	}
	return msgs
}

// sourcesMark begins the list of sources appended to an answer's text
// (completion.sourcesText).
const sourcesMark = "\n\nSources:\n\n- ["

// withoutSources removes from an earlier answer, sent back as the
// conversation's history, the list of sources runnel appended to it: the
// earlier turns are read for their words, and the list is links.
func withoutSources(text string) string {
	i := strings.LastIndex(text, sourcesMark)
	if i < 0 {
		return text
	}
	for _, line := range strings.Split(text[i+len("\n\nSources:\n\n"):], "\n") {
		if !strings.HasPrefix(line, "- [") {
			return text // not only our list after the mark
		}
	}
	return text[:i]
}

// messageText returns a message's text: the string, or the text parts of an
// array of content parts joined by newlines. Parts that are not text
// (images, audio, files) are refused: runnel would answer without them.
func messageText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or an array of content parts.")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("runnel reads text only, not content parts of type %q.", p.Type)
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// maxChatBody is the least a chat completion request may be: chat UIs send
// the whole conversation every time (recent keeps what runnel reads).
const maxChatBody = 1 << 20

// readChat reads and checks a chat completion request. param names the
// field at fault when it fails.
func (s *Server) readChat(w http.ResponseWriter, r *http.Request) (req chatRequest, param string, err error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return req, "", runnel.Errorf(runnel.EMEDIATYPE, "Send the request as JSON, with Content-Type: application/json.")
	}
	limit := max(s.maxBody(), maxChatBody)
	if r.ContentLength > limit {
		return req, "", runnel.Errorf(runnel.ETOOLARGE, "The request body is %d bytes; the limit is %d.", r.ContentLength, limit)
	}
	body, rerr := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(rerr, &tooLarge):
		return req, "", runnel.Errorf(runnel.ETOOLARGE, "The request body is over %d bytes.", limit)
	case rerr != nil:
		return req, "", runnel.Errorf(runnel.EINVALID, "The request body could not be read.")
	case !utf8.Valid(body):
		return req, "", runnel.Errorf(runnel.EINVALID, "The request body is not valid UTF-8.")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, "", runnel.Errorf(runnel.EINVALID, "The request body is not a chat completion request: %v.", err)
	}
	if req.Model == nil || *req.Model == "" {
		return req, "model", runnel.Errorf(runnel.EINVALID, "The request has no model; GET /v1/models lists them.")
	}
	if p, why := req.unsupported(); p != "" {
		return req, p, runnel.Errorf(runnel.EINVALID, "%s", why)
	}
	return req, "", nil
}

// handleChatCompletions answers POST /v1/chat/completions: a run for the
// conversation's latest question, streamed as chat.completion.chunk events
// or, without "stream": true, one chat.completion when the run has ended.
func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	req, param, err := s.readChat(w, r)
	if err != nil {
		s.failAPI(w, r, err, param)
		return
	}
	if *req.Model != s.modelName() {
		writeAPIError(w, http.StatusNotFound, modelNotFound(*req.Model))
		return
	}
	msgs, param, err := conversation(req.Messages)
	if err != nil {
		s.failAPI(w, r, err, param)
		return
	}
	q, err := runnel.ParseConversation(msgs, s.MaxQuestion)
	if err != nil {
		s.failAPI(w, r, err, "messages")
		return
	}
	if s.shuttingDown() {
		s.failAPI(w, r, errShutdown, "")
		return
	}
	release, ok := s.admitAPI(w, r)
	if !ok {
		return
	}
	reqID := requestID(r)
	run, cp, err := s.startWith(s.citing, r.Context(), q, "", reqID)
	if err != nil {
		release()
		s.failAPI(w, r, err, "")
		return
	}
	c := completion{id: "chatcmpl-" + run.ID(), created: time.Now().Unix(), model: s.modelName(), base: baseURL(r)}
	if !req.Stream {
		defer release()
		s.complete(w, r, run, cp, reqID, c)
		return
	}
	c.usage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	s.stream(w, r, run, -1, newChatStream(c), cp, reqID, release)
}

// admitAPI is Server.limited with the refusal in OpenAI's shape.
func (s *Server) admitAPI(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	g := s.guard
	if !g.limits.any() {
		return func() {}, true
	}
	release, no := g.admit(g.clientKey(r), true, time.Now())
	if no != nil {
		s.Metrics.refused(no.err.Code)
		w.Header().Set("Retry-After", retryAfter(no.after))
		s.failAPI(w, r, no.err, "")
		return nil, false
	}
	return release, true
}

// baseURL returns the scheme and host the client reached, to make the
// sources' links absolute: a chat UI shows them away from this server.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// complete reads run to its terminal event, acknowledging each checkpoint
// as a stream's pump would, and answers one chat.completion, or the run's
// error in OpenAI's shape. A client that leaves leaves the run, which then
// ends as on the stream routes (after the linger window).
func (s *Server) complete(w http.ResponseWriter, r *http.Request, run runnel.Run, cp *checkpoints, reqID string, c completion) {
	s.streams.Add(1)
	defer s.streams.Done()
	detach := run.Attach()
	defer detach()
	if cp != nil {
		defer cp.leave()
	}
	ctx := r.Context()
	start := time.Now()
	var acc answer
	after := -1
	var evs []runnel.Event
	for !acc.ended() {
		var more <-chan struct{}
		var err error
		evs, more, err = run.Read(ctx, after, evs[:0])
		switch {
		case errors.Is(err, io.EOF):
			acc.add(runnel.Event{Type: runnel.EventError, Err: errLogRead})
		case err != nil:
			s.Logger.Error("read run", "run", run.ID(), "request_id", reqID, "err", err)
			acc.add(runnel.Event{Type: runnel.EventError, Err: errLogRead})
		}
		for _, e := range evs {
			acc.add(e)
			after = e.Seq
		}
		if cp != nil {
			cp.wrote(after)
		}
		if acc.ended() || len(evs) > 0 {
			continue
		}
		select {
		case <-more:
		case <-ctx.Done():
			s.Logger.Info("client left", "run", run.ID(), "request_id", reqID, "via", "openai", "duration", time.Since(start).Round(time.Microsecond))
			return
		}
	}
	s.Logger.Log(ctx, slog.LevelInfo, "completion ended", "run", run.ID(), "request_id", reqID, "via", "openai",
		"last", string(acc.last), "duration", time.Since(start).Round(time.Microsecond))
	h := w.Header()
	h.Set("X-Request-Id", reqID)
	h.Set(RunIDHeader, run.ID())
	if e := acc.failure(); e != nil {
		status, ae := openAIError(e)
		if e.Code == codeCanceled {
			status = statusCanceled
			h.Set("X-Should-Retry", "false")
		}
		writeAPIError(w, status, ae)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(c.appendCompletion(nil, &acc))
}

// answer gathers what a completion reports of a run: the text, the
// sources, how it ended.
type answer struct {
	text    strings.Builder
	tokens  int
	sources []runnel.Source
	done    *runnel.Done
	err     *runnel.Error
	last    runnel.EventType
}

func (a *answer) add(e runnel.Event) {
	if a.ended() {
		return
	}
	a.last = e.Type
	switch e.Type {
	case runnel.EventSources:
		a.sources = e.Sources
	case runnel.EventToken:
		a.text.WriteString(e.Token)
		a.tokens++
	case runnel.EventDone:
		a.done = cmp.Or(e.Done, &runnel.Done{FinishReason: runnel.FinishStop})
	case runnel.EventError:
		a.err = cmp.Or(e.Err, &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."})
	case runnel.EventCanceled:
		a.err = canceledError(e.Canceled)
	}
}

func (a *answer) ended() bool { return a.last.Terminal() }

// failure returns why the run did not end with done, or nil.
func (a *answer) failure() *runnel.Error {
	if a.done != nil {
		return nil
	}
	return a.err
}

func canceledError(c *runnel.Canceled) *runnel.Error {
	if c != nil && c.Reason == runnel.CancelAbandon {
		return &runnel.Error{Code: codeCanceled, Message: "The answer was canceled: its reader left."}
	}
	return &runnel.Error{Code: codeCanceled, Message: "The answer was canceled before it was complete."}
}

// completion is what every object of one completion repeats.
type completion struct {
	id      string
	created int64
	model   string
	base    string // the scheme and host that make a source's URL absolute
	usage   bool   // stream_options.include_usage
}

// apiSource is a source as the OpenAI-compatible API reports it: the
// number its citations use, and an absolute URL.
type apiSource struct {
	Index   int      `json:"index"`
	Slug    string   `json:"slug"`
	Title   string   `json:"title"`
	URL     string   `json:"url"`
	Tags    []string `json:"tags"`
	Score   float64  `json:"score"`
	Snippet string   `json:"snippet"`
}

func (c *completion) sources(src []runnel.Source) []apiSource {
	out := make([]apiSource, len(src))
	for i, s := range src {
		out[i] = apiSource{Index: i + 1, Slug: s.Slug, Title: s.Title, URL: c.absolute(s.URL),
			Tags: nonNil(s.Tags), Score: s.Score, Snippet: s.Snippet}
	}
	return out
}

func (c *completion) absolute(u string) string {
	if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") {
		return c.base + u
	}
	return u
}

// sourcesText is the list appended to an answer's text, so that a client
// that shows only the text (a chat UI) shows the sources its citations
// [n] point at: a Markdown list, readable as plain text too.
func (c *completion) sourcesText(src []runnel.Source) string {
	if len(src) == 0 {
		return ""
	}
	var b strings.Builder
	for i, s := range src {
		if i == 0 {
			b.WriteString(sourcesMark[:len(sourcesMark)-1])
		} else {
			b.WriteString("\n- ")
		}
		fmt.Fprintf(&b, "[%d] [%s](%s)", i+1, markdownText(s.Title), c.absolute(s.URL))
	}
	return b.String()
}

// markdownText escapes the characters that would end a link's text.
func markdownText(s string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, "\n", " ").Replace(s)
}

// usageOf returns the generator's count, or, for a generator that counts
// nothing (the extractive one), the tokens streamed as the completion.
func usageOf(d *runnel.Done, tokens int) runnel.Usage {
	if d != nil && d.Usage != nil {
		return *d.Usage
	}
	return runnel.Usage{CompletionTokens: tokens, TotalTokens: tokens}
}

func finishReason(d *runnel.Done) string {
	if d != nil && d.FinishReason == runnel.FinishLength {
		return runnel.FinishLength
	}
	return runnel.FinishStop
}

// appendCompletion appends the chat.completion object of a run that ended
// with done.
func (c *completion) appendCompletion(b []byte, a *answer) []byte {
	type message struct {
		Role    string  `json:"role"`
		Content string  `json:"content"`
		Refusal *string `json:"refusal"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		Logprobs     *int    `json:"logprobs"`
		FinishReason string  `json:"finish_reason"`
	}
	js, _ := json.Marshal(struct {
		ID      string       `json:"id"`
		Object  string       `json:"object"`
		Created int64        `json:"created"`
		Model   string       `json:"model"`
		Choices []choice     `json:"choices"`
		Usage   runnel.Usage `json:"usage"`
		Sources []apiSource  `json:"sources"`
	}{
		ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model,
		Choices: []choice{{Message: message{Role: "assistant", Content: a.text.String() + c.sourcesText(a.sources)},
			FinishReason: finishReason(a.done)}},
		Usage:   usageOf(a.done, a.tokens),
		Sources: c.sources(a.sources),
	})
	return append(append(b, js...), '\n')
}

// chatStream is the encoder of a streamed completion: Server-Sent Events
// whose data are chat.completion.chunk objects, as OpenAI streams them.
//
//	query            the first chunk: delta {"role":"assistant","content":""}
//	token            a chunk whose delta is the token's text
//	done             a chunk with the "Sources:" list as text (when there are
//	                 sources), the last chunk with finish_reason and the
//	                 structured "sources", the usage chunk (choices empty)
//	                 with stream_options.include_usage, then data: [DONE]
//	error, canceled  data: {"error": {...}}, and the stream ends
//
// Other events (tags, titles, sources) write nothing: the sources are kept
// for the end. Pings are SSE comments, which every SSE reader skips.
type chatStream struct {
	c       completion
	head    []byte // every chunk's JSON up to its choices
	sources []runnel.Source
	tokens  int
}

func newChatStream(c completion) *chatStream {
	head := append([]byte(`{"id":`), quoteJSON(c.id)...)
	head = append(head, `,"object":"chat.completion.chunk","created":`...)
	head = strconv.AppendInt(head, c.created, 10)
	head = append(head, `,"model":`...)
	head = append(head, quoteJSON(c.model)...)
	return &chatStream{c: c, head: head}
}

func quoteJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func (*chatStream) contentType() string   { return "text/event-stream" }
func (*chatStream) begin(b []byte) []byte { return b }
func (*chatStream) ping(b []byte) []byte  { return append(b, ": ping\n\n"...) }

func (cs *chatStream) event(b []byte, e *runnel.Event) ([]byte, error) {
	switch e.Type {
	case runnel.EventQuery:
		return cs.tail(cs.delta(b, `{"role":"assistant","content":""}`, "")), nil
	case runnel.EventSources:
		cs.sources = e.Sources
	case runnel.EventToken:
		cs.tokens++
		return cs.content(b, e.Token), nil
	case runnel.EventDone:
		if text := cs.c.sourcesText(cs.sources); text != "" {
			b = cs.content(b, text)
		}
		b = cs.finish(b, finishReason(e.Done))
		if cs.c.usage {
			b = cs.usage(b, usageOf(e.Done, cs.tokens))
		}
		return append(b, "data: [DONE]\n\n"...), nil
	case runnel.EventError:
		return cs.error(b, cmp.Or(e.Err, &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."})), nil
	case runnel.EventCanceled:
		return cs.error(b, canceledError(e.Canceled)), nil
	}
	return b, nil
}

// content appends a chunk whose delta is text.
func (cs *chatStream) content(b []byte, text string) []byte {
	b = append(b, "data: "...)
	b = append(b, cs.head...)
	b = append(b, `,"choices":[{"index":0,"delta":{"content":`...)
	b, _ = (&runnel.Event{Type: runnel.EventToken, Token: text}).AppendData(b)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	return cs.tail(b)
}

// delta appends a chunk up to the end of its choices, with the delta's JSON
// and a finish reason ("" for null); tail ends it.
func (cs *chatStream) delta(b []byte, delta, finish string) []byte {
	b = append(b, "data: "...)
	b = append(b, cs.head...)
	b = append(b, `,"choices":[{"index":0,"delta":`...)
	b = append(b, delta...)
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, quoteJSON(finish)...)
	}
	return append(b, "}]"...)
}

// tail ends a chunk: "usage": null when the stream reports usage at the
// end, as OpenAI's chunks carry it.
func (cs *chatStream) tail(b []byte) []byte {
	if cs.c.usage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...)
}

// finish appends the last chunk of the choice, with the structured sources.
func (cs *chatStream) finish(b []byte, reason string) []byte {
	b = cs.delta(b, `{}`, reason)
	b = append(b, `,"sources":`...)
	js, _ := json.Marshal(cs.c.sources(cs.sources))
	b = append(b, js...)
	return cs.tail(b)
}

// usage appends the chunk that reports usage: no choices.
func (cs *chatStream) usage(b []byte, u runnel.Usage) []byte {
	b = append(b, "data: "...)
	b = append(b, cs.head...)
	b = append(b, `,"choices":[],"usage":`...)
	js, _ := json.Marshal(u)
	b = append(b, js...)
	return append(b, "}\n\n"...)
}

// error appends an error after the stream began, as OpenAI sends one.
func (cs *chatStream) error(b []byte, e *runnel.Error) []byte {
	_, ae := openAIError(e)
	js, _ := json.Marshal(struct {
		Error apiError `json:"error"`
	}{ae})
	b = append(b, "data: "...)
	b = append(b, js...)
	return append(b, "\n\n"...)
}
