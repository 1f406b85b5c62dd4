package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/extractive"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/memory"
	ropenai "github.com/runnel/runnel/openai"
	"github.com/runnel/runnel/sqlite"
)

// within bounds every wait of these tests: a fail-safe, never a pace.
const within = 5 * time.Second

// embeddedServer serves the embedded articles with gen (the extractive
// generator when nil), as runnel serve does without an LLM.
func embeddedServer(t *testing.T, gen runnel.Generator, opt ...func(*rhttp.Server)) (*rhttp.Server, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runnel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := markdown.PutFS(ctx, store, corpus.FS()); err != nil {
		t.Fatal(err)
	}
	if gen == nil {
		gen = extractive.New(extractive.Options{})
	}
	s := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: gen},
		Store:    store,
		Runs:     memory.New(memory.Options{}),
	}
	for _, o := range opt {
		o(s)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// sdk returns an openai-go client of ts's OpenAI-compatible API.
func sdk(ts *httptest.Server, key string) *openai.Client {
	c := openai.NewClient(option.WithBaseURL(ts.URL+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	return &c
}

func ask(q string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "runnel",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(q)},
	}
}

// streamSDK asks through the SDK's stream and its accumulator, and returns
// the accumulated completion, the chunks and the run id header.
func streamSDK(t *testing.T, c *openai.Client, p openai.ChatCompletionNewParams) (openai.ChatCompletion, []openai.ChatCompletionChunk, string) {
	t.Helper()
	var resp *http.Response
	stream := c.Chat.Completions.NewStreaming(t.Context(), p, option.WithResponseInto(&resp))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var chunks []openai.ChatCompletionChunk
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("the accumulator refused chunk %d: %s", len(chunks), chunk.RawJSON())
		}
		chunks = append(chunks, chunk)
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if resp == nil {
		t.Fatal("no response")
	}
	return acc.ChatCompletion, chunks, resp.Header.Get(rhttp.RunIDHeader)
}

// sourcesOf decodes the extra "sources" field of a chunk or completion.
func sourcesOf(t *testing.T, raw string) []struct {
	Index int    `json:"index"`
	Slug  string `json:"slug"`
	Title string `json:"title"`
	URL   string `json:"url"`
} {
	t.Helper()
	var v struct {
		Sources []struct {
			Index int    `json:"index"`
			Slug  string `json:"slug"`
			Title string `json:"title"`
			URL   string `json:"url"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v.Sources
}

func TestOpenAISDKStream(t *testing.T) {
	_, ts := embeddedServer(t, nil)
	p := ask("what is websocket?")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	got, chunks, runID := streamSDK(t, sdk(ts, "any"), p)

	if runID == "" || got.ID != "chatcmpl-"+runID {
		t.Errorf("id %q, run %q: want chatcmpl-<run>", got.ID, runID)
	}
	if len(got.Choices) != 1 {
		t.Fatalf("choices = %d, want 1", len(got.Choices))
	}
	text := got.Choices[0].Message.Content
	if !strings.Contains(text, "WebSocket") || !strings.Contains(text, "\n\nSources:\n\n- [1] [") || !strings.Contains(text, "("+ts.URL+"/articles/") {
		t.Errorf("content = %q, want the answer and the numbered Sources list with absolute links", text)
	}
	if r := got.Choices[0].FinishReason; r != "stop" {
		t.Errorf("finish_reason = %q, want stop", r)
	}
	if got.Usage.CompletionTokens == 0 || got.Usage.TotalTokens != got.Usage.CompletionTokens {
		t.Errorf("usage = %+v, want the streamed tokens counted", got.Usage)
	}
	if got.Model != "runnel" || got.Object != "chat.completion" {
		t.Errorf("model %q object %q", got.Model, got.Object)
	}
	// The first chunk names the role; the usage chunk comes last, with no
	// choices; the one before it finishes, with the sources.
	if r := chunks[0].Choices[0].Delta.Role; r != "assistant" {
		t.Errorf("first chunk's role = %q, want assistant", r)
	}
	last := chunks[len(chunks)-1]
	if len(last.Choices) != 0 || last.Usage.TotalTokens == 0 {
		t.Errorf("last chunk %s, want the usage chunk", last.RawJSON())
	}
	fin := chunks[len(chunks)-2]
	src := sourcesOf(t, fin.RawJSON())
	if len(src) == 0 || src[0].Index != 1 || !strings.HasPrefix(src[0].URL, ts.URL+"/articles/") {
		t.Errorf("sources of the finish chunk = %+v, want numbered sources with absolute URLs", src)
	}
	if !strings.Contains(text, "[1] ["+src[0].Title+"]("+src[0].URL+")") {
		t.Errorf("content %q does not list source 1 %+v", text, src[0])
	}
	// The offline answer cites its sources by number, before the list.
	answer, _, _ := strings.Cut(text, "\n\nSources:")
	if !regexp.MustCompile(`\. \[\d\]`).MatchString(answer) {
		t.Errorf("answer %q cites no source", answer)
	}
}

func TestOpenAISDKComplete(t *testing.T) {
	_, ts := embeddedServer(t, nil, func(s *rhttp.Server) { s.ModelName = "team-docs" })
	var resp *http.Response
	p := ask("what is websocket?")
	p.Model = "team-docs"
	got, err := sdk(ts, "any").Chat.Completions.New(t.Context(), p, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if id := resp.Header.Get(rhttp.RunIDHeader); id == "" || got.ID != "chatcmpl-"+id {
		t.Errorf("id %q, run header %q", got.ID, id)
	}
	if got.Model != "team-docs" || len(got.Choices) != 1 || got.Choices[0].FinishReason != "stop" || got.Choices[0].Message.Role != "assistant" {
		t.Errorf("completion %s", got.RawJSON())
	}
	if text := got.Choices[0].Message.Content; !strings.Contains(text, "WebSocket") || !strings.Contains(text, "Sources:") {
		t.Errorf("content = %q", text)
	}
	if src := sourcesOf(t, got.RawJSON()); len(src) == 0 || src[0].Slug == "" {
		t.Errorf("sources = %+v", src)
	}
	// The answer is the same run as on the native routes: its log holds it.
	res, err := http.Get(ts.URL + "/runs/" + resp.Header.Get(rhttp.RunIDHeader))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `{"type":"done"`) {
		t.Errorf("the run's log = %s, want it ended with done", body)
	}
}

func TestOpenAISDKModels(t *testing.T) {
	_, ts := embeddedServer(t, nil, func(s *rhttp.Server) { s.ModelName = "team-docs" })
	c := sdk(ts, "any")
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != "team-docs" || page.Data[0].OwnedBy != "runnel" {
		t.Errorf("models = %s", page.RawJSON())
	}
	m, err := c.Models.Get(t.Context(), "team-docs")
	if err != nil || m.ID != "team-docs" {
		t.Errorf("Get = %+v, %v", m, err)
	}
	_, err = c.Models.Get(t.Context(), "gpt-4o")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("Get(gpt-4o) = %v, want 404 model_not_found", err)
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	_, ts := embeddedServer(t, nil, func(s *rhttp.Server) { s.APIKeys = []string{"sk-right"} })
	for _, tc := range []struct {
		name   string
		key    string
		params func(*openai.ChatCompletionNewParams)
		status int
		typ    string
		code   string
		param  string
	}{
		{"wrong key", "sk-wrong", nil, 401, "invalid_request_error", "invalid_api_key", ""},
		{"unknown model", "sk-right", func(p *openai.ChatCompletionNewParams) { p.Model = "gpt-4o" }, 404, "invalid_request_error", "model_not_found", "model"},
		{"no messages", "sk-right", func(p *openai.ChatCompletionNewParams) { p.Messages = nil }, 400, "invalid_request_error", "invalid", "messages"},
		{"n=2", "sk-right", func(p *openai.ChatCompletionNewParams) { p.N = openai.Int(2) }, 400, "invalid_request_error", "invalid", "n"},
		{"tools", "sk-right", func(p *openai.ChatCompletionNewParams) {
			p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "f"})}
		}, 400, "invalid_request_error", "invalid", "tools"},
		{"no user message", "sk-right", func(p *openai.ChatCompletionNewParams) {
			p.Messages = []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief")}
		}, 400, "invalid_request_error", "invalid", "messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ask("what is websocket?")
			if tc.params != nil {
				tc.params(&p)
			}
			c := sdk(ts, tc.key)
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					s := c.Chat.Completions.NewStreaming(t.Context(), p)
					for s.Next() {
					}
					err = s.Err()
				} else {
					_, err = c.Chat.Completions.New(t.Context(), p)
				}
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("stream=%v: err = %v, want an *openai.Error", stream, err)
				}
				if apiErr.StatusCode != tc.status || apiErr.Type != tc.typ || apiErr.Code != tc.code || apiErr.Param != tc.param || apiErr.Message == "" {
					t.Errorf("stream=%v: %d %q %q %q %q, want %d %q %q %q", stream, apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Param, apiErr.Message, tc.status, tc.typ, tc.code, tc.param)
				}
			}
		})
	}
	if _, err := sdk(ts, "sk-right").Models.List(t.Context()); err != nil {
		t.Errorf("with the right key: %v", err)
	}
	_, err := sdk(ts, "sk-wrong").Models.List(t.Context())
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("models with a wrong key: %v, want 401", err)
	}
}

func TestOpenAIRateLimited(t *testing.T) {
	_, ts := newServer(t, words("hi"), func(s *rhttp.Server) { s.Limits.QuestionRate, s.Limits.QuestionBurst = 0.001, 1 })
	c := sdk(ts, "any")
	if _, err := c.Chat.Completions.New(t.Context(), ask("websocket?")); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	_, err := c.Chat.Completions.New(t.Context(), ask("websocket?"), option.WithResponseInto(&resp))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("second question = %v, want 429 rate_limit_exceeded with Retry-After", err)
	}
}

// gated is a generator that emits its tokens, tells ready, then waits for
// its context to end and reports why on stopped.
type gated struct {
	tokens  []string
	ready   chan struct{}
	stopped chan error
}

func newGated(tokens ...string) *gated {
	return &gated{tokens: tokens, ready: make(chan struct{}, 1), stopped: make(chan error, 1)}
}

func (g *gated) Generate(ctx context.Context, _ runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	for _, tok := range g.tokens {
		if err := emit(tok); err != nil {
			return runnel.Done{}, err
		}
	}
	g.ready <- struct{}{}
	<-ctx.Done()
	g.stopped <- context.Cause(ctx)
	return runnel.Done{}, ctx.Err()
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(within):
		t.Fatalf("%s: nothing after %v", what, within)
		panic("unreachable")
	}
}

// runState returns the state of run id.
func runState(t *testing.T, runs runnel.Runs, id string) runnel.RunState {
	t.Helper()
	r, err := runs.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State()
}

func TestOpenAISDKCancelMidStream(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			g := newGated("A ", "WebSocket ")
			s, ts := newServer(t, g)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var resp *http.Response
			errc := make(chan error, 1)
			c := sdk(ts, "any")
			if stream {
				st := c.Chat.Completions.NewStreaming(ctx, ask("what is websocket?"), option.WithResponseInto(&resp))
				content := ""
				for content != "A WebSocket " && st.Next() {
					if ch := st.Current(); len(ch.Choices) > 0 {
						content += ch.Choices[0].Delta.Content
					}
				}
				if content != "A WebSocket " {
					t.Fatalf("content = %q before the gate, err %v", content, st.Err())
				}
				go func() {
					for st.Next() {
					}
					errc <- st.Err()
				}()
			} else {
				go func() {
					_, err := c.Chat.Completions.New(ctx, ask("what is websocket?"))
					errc <- err
				}()
			}
			receive(t, g.ready, "the generator's tokens")
			cancel()
			if err := receive(t, g.stopped, "the generator to stop"); !errors.Is(err, runnel.ErrCanceled) {
				t.Errorf("the generator's context ended with %v, want ErrCanceled (the run abandoned)", err)
			}
			if err := receive(t, errc, "the client to return"); !errors.Is(err, context.Canceled) {
				t.Errorf("client err = %v, want context.Canceled", err)
			}
			// The run was canceled before its generator's context ended.
			if resp != nil {
				if st := runState(t, s.Runs, resp.Header.Get(rhttp.RunIDHeader)); st != runnel.RunCanceled {
					t.Errorf("the run is %s, want canceled", st)
				}
			}
		})
	}
}

// TestOpenAICanceledRun: a run canceled by DELETE /runs/{id} ends the
// completion with an error in OpenAI's shape, never a finish_reason.
func TestOpenAICanceledRun(t *testing.T) {
	g := newGated("A ")
	_, ts := newServer(t, g)
	var resp *http.Response
	st := sdk(ts, "any").Chat.Completions.NewStreaming(t.Context(), ask("what is websocket?"), option.WithResponseInto(&resp))
	go func() {
		receive(t, g.ready, "the generator's token")
		req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/runs/"+resp.Header.Get(rhttp.RunIDHeader), nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	for st.Next() {
		if ch := st.Current(); len(ch.Choices) > 0 && ch.Choices[0].FinishReason != "" {
			t.Errorf("finish chunk %s for a canceled run", ch.RawJSON())
		}
	}
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), `"code":"canceled"`) {
		t.Errorf("stream err = %v, want the canceled error", err)
	}
}

// fakeUpstream is an OpenAI-compatible LLM for the generator: it streams
// tokens in chunks, then usage, then [DONE]; with hold it stops after the
// tokens until the request ends and reports that on gone.
type fakeUpstream struct {
	srv    *httptest.Server
	tokens []string
	hold   bool
	held   chan struct{}
	gone   chan struct{}
}

func newUpstream(t *testing.T, hold bool, tokens ...string) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{tokens: tokens, hold: hold, held: make(chan struct{}, 1), gone: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(choices, usage string) {
			fmt.Fprintf(w, `data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"m","choices":%s,"usage":%s}`+"\n\n", choices, usage)
			http.NewResponseController(w).Flush()
		}
		chunk(`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`, "null")
		for _, tok := range f.tokens {
			b, _ := json.Marshal(tok)
			chunk(`[{"index":0,"delta":{"content":`+string(b)+`},"finish_reason":null}]`, "null")
		}
		if f.hold {
			f.held <- struct{}{}
			<-r.Context().Done()
			f.gone <- struct{}{}
			return
		}
		chunk(`[{"index":0,"delta":{},"finish_reason":"stop"}]`, "null")
		chunk(`[]`, fmt.Sprintf(`{"prompt_tokens":120,"completion_tokens":%d,"total_tokens":%d}`, len(f.tokens), 120+len(f.tokens)))
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func llm(t *testing.T, f *fakeUpstream) runnel.Generator {
	t.Helper()
	gen, err := ropenai.New(ropenai.Options{BaseURL: f.srv.URL + "/v1", Model: "m", APIKey: "sk-up"})
	if err != nil {
		t.Fatal(err)
	}
	return gen
}

func TestOpenAISDKWithLLM(t *testing.T) {
	up := newUpstream(t, false, "WebSocket ", "is ", "full-duplex ", "[1].")
	_, ts := embeddedServer(t, llm(t, up))
	p := ask("what is websocket?")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	got, _, _ := streamSDK(t, sdk(ts, "any"), p)
	text := got.Choices[0].Message.Content
	if !strings.HasPrefix(text, "WebSocket is full-duplex [1].\n\nSources:\n\n- [1] [") {
		t.Errorf("content = %q, want the LLM's answer, its citation, then the sources", text)
	}
	if got.Usage.PromptTokens != 120 || got.Usage.CompletionTokens != 4 {
		t.Errorf("usage = %+v, want the LLM's", got.Usage)
	}
	done, err := sdk(ts, "any").Chat.Completions.New(t.Context(), ask("what is websocket?"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(done.Choices[0].Message.Content, "WebSocket is full-duplex [1].") || done.Usage.PromptTokens != 120 {
		t.Errorf("completion %s", done.RawJSON())
	}
}

func TestOpenAISDKCancelClosesUpstream(t *testing.T) {
	up := newUpstream(t, true, "WebSocket ", "is ")
	s, ts := embeddedServer(t, llm(t, up))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var resp *http.Response
	st := sdk(ts, "any").Chat.Completions.NewStreaming(ctx, ask("what is websocket?"), option.WithResponseInto(&resp))
	content := ""
	for content != "WebSocket is " && st.Next() {
		if ch := st.Current(); len(ch.Choices) > 0 {
			content += ch.Choices[0].Delta.Content
		}
	}
	receive(t, up.held, "the upstream to hold")
	cancel()
	receive(t, up.gone, "the upstream request to close")
	if st := runState(t, s.Runs, resp.Header.Get(rhttp.RunIDHeader)); st != runnel.RunCanceled {
		t.Errorf("the run is %s, want canceled", st)
	}
}

// TestOpenAIChunks holds the bytes of the API to OpenAI's format, with the
// id and the time replaced.
func TestOpenAIChunks(t *testing.T) {
	fail := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		emit("Hi")
		return runnel.Done{}, runnel.Errorf(runnel.EUPSTREAMUNAVAILABLE, "The LLM is not answering.")
	})
	long := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		emit("Hi")
		return runnel.Done{FinishReason: runnel.FinishLength, Usage: &runnel.Usage{PromptTokens: 9, CompletionTokens: 1, TotalTokens: 10}}, nil
	})
	const (
		role   = `data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n"
		tokens = `data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"Hello "},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"\"world\""},"logprobs":null,"finish_reason":null}]}` + "\n\n"
		list    = `\n\nSources:\n\n- [1] [DNS resolution](http://HOST/articles/dns)`
		sources = `"sources":[{"index":1,"slug":"dns","title":"DNS resolution","url":"http://HOST/articles/dns","tags":["dns"],"score":2,"snippet":"DNS resolution"}]`
	)
	for _, tc := range []struct {
		name string
		gen  runnel.Generator
		body string
		want string
	}{
		{"stream", words("Hello ", `"world"`), `{"model":"runnel","stream":true,"messages":[{"role":"user","content":"dns?"}]}`,
			role + tokens +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"` + list + `"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],` + sources + `}` + "\n\n" +
				"data: [DONE]\n\n"},
		{"include_usage", words("Hi"), `{"model":"runnel","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[{"type":"text","text":"dns?"}]}]}`,
			`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"` + list + `"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],` + sources + `,"usage":null}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":1,"total_tokens":1}}` + "\n\n" +
				"data: [DONE]\n\n"},
		{"length", long, `{"model":"runnel","stream":true,"messages":[{"role":"user","content":"dns?"}]}`,
			role +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"` + list + `"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],` + sources + `}` + "\n\n" +
				"data: [DONE]\n\n"},
		{"error in the stream", fail, `{"model":"runnel","stream":true,"messages":[{"role":"user","content":"dns?"}]}`,
			role +
				`data: {"id":"chatcmpl-RUN","object":"chat.completion.chunk","created":T,"model":"runnel","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
				`data: {"error":{"message":"The LLM is not answering.","type":"server_error","param":null,"code":"upstream_unavailable"}}` + "\n\n"},
		{"complete", words("Hello ", `"world"`), `{"model":"runnel","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"dns?"}]}`,
			`{"id":"chatcmpl-RUN","object":"chat.completion","created":T,"model":"runnel","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"world\"` + list + `","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2},` + sources + `}` + "\n"},
		{"complete, failed", fail, `{"model":"runnel","messages":[{"role":"user","content":"dns?"}]}`,
			`{"error":{"message":"The LLM is not answering.","type":"server_error","param":null,"code":"upstream_unavailable"}}` + "\n"},
		{"bad JSON", words("Hi"), `{"model":`,
			`{"error":{"message":"The request body is not a chat completion request: unexpected end of JSON input.","type":"invalid_request_error","param":null,"code":"invalid"}}` + "\n"},
		{"no model", words("Hi"), `{"messages":[{"role":"user","content":"dns?"}]}`,
			`{"error":{"message":"The request has no model; GET /v1/models lists them.","type":"invalid_request_error","param":"model","code":"invalid"}}` + "\n"},
		{"tool message", words("Hi"), `{"model":"runnel","messages":[{"role":"tool","content":"42"}]}`,
			`{"error":{"message":"Message 0 has role \"tool\"; runnel reads system, developer, user and assistant messages.","type":"invalid_request_error","param":"messages[0].role","code":"invalid"}}` + "\n"},
		{"image", words("Hi"), `{"model":"runnel","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`,
			`{"error":{"message":"Message 0: runnel reads text only, not content parts of type \"image_url\".","type":"invalid_request_error","param":"messages[0].content","code":"invalid"}}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := newServer(t, tc.gen)
			res, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got := string(raw)
			if id := res.Header.Get(rhttp.RunIDHeader); id != "" {
				got = strings.ReplaceAll(got, id, "RUN")
			}
			got = regexp.MustCompile(`"created":\d+`).ReplaceAllString(got, `"created":T`)
			got = strings.ReplaceAll(got, strings.TrimPrefix(ts.URL, "http://"), "HOST")
			if got != tc.want {
				t.Errorf("body:\n%s\nwant:\n%s", got, tc.want)
			}
			if strings.Contains(tc.body, `"stream":true`) && res.StatusCode == 200 {
				if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
		})
	}
}
