// Package openai is runnel's Generator for any server that speaks OpenAI's
// /v1/chat/completions with stream: true: OpenAI itself, Ollama, vLLM and
// the llama.cpp server.
//
// The retrieved passages become a prompt (see Generator.Messages): the
// model is told to answer only from them, to cite them by number, and to
// say so when they do not cover the question. Each piece of text the model
// streams is passed to emit the moment its chunk is read, with no
// buffering in between, and the stream must end with "data: [DONE]": a
// stream cut before it is an error, never an answer.
//
// The request is built and sent with github.com/openai/openai-go/v3, but
// configured explicitly: the SDK's client constructor reads OPENAI_*
// variables by itself, so this package never calls it (FromEnv reads the
// environment, once, where the program decides). The SDK's own retries are
// off: Generate retries by itself, and only while nothing has been streamed
// (see Options.Retries). Chunks are decoded into a small struct of their
// own rather than the SDK's ChatCompletionChunk, which accepts chunks of
// the wrong shape without an error and costs five times as much per token.
//
// Every failure is a *runnel.Error with one of the codes below (or
// runnel.ETIMEOUT, runnel.EUPSTREAM), wrapped in an error whose text adds a
// short, sanitized reason for the server log. Neither ever contains the API
// key.
package openai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/runnel/runnel"
)

var _ runnel.Generator = (*Generator)(nil)

// Defaults for the zero values of Options.
const (
	DefaultBaseURL         = "https://api.openai.com/v1"
	DefaultMaxTokens       = 1024
	DefaultMaxDuration     = 3 * time.Minute
	DefaultStallTimeout    = 60 * time.Second
	DefaultMaxPassages     = 8
	DefaultMaxContextChars = 8000
	DefaultMaxArticles     = 5
	DefaultRetries         = 2
)

// NotCovered is the answer, given without calling the model, when no
// passage was retrieved. It is the extractive generator's sentence.
const NotCovered = "The articles I have do not cover this question."

// Error codes of upstream failures, in addition to runnel.EUPSTREAM (any
// other refusal, such as a 400 for a prompt over the model's context) and
// runnel.ETIMEOUT (Options.MaxDuration). They are defined with every other
// wire code in the root package (error.go); these names are kept for callers.
const (
	EUpstreamAuth        = runnel.EUPSTREAMAUTH
	EUpstreamModel       = runnel.EUPSTREAMMODEL
	EUpstreamRateLimited = runnel.EUPSTREAMRATELIMITED
	EUpstreamUnavailable = runnel.EUPSTREAMUNAVAILABLE
	EUpstreamMalformed   = runnel.EUPSTREAMMALFORMED
	EUpstreamError       = runnel.EUPSTREAMERROR
	EUpstreamTruncated   = runnel.EUPSTREAMTRUNCATED
	EUpstreamStalled     = runnel.EUPSTREAMSTALLED
)

// Options configure a Generator. Model is required; every other zero value
// means its default.
type Options struct {
	// BaseURL is the API's base URL, the part before /chat/completions:
	// "https://api.openai.com/v1" (the default), "http://localhost:11434/v1"
	// for Ollama, "http://localhost:8000/v1" for vLLM, and for llama.cpp
	// its server's port (8080 by default, as runnel's: move one). A URL
	// with no path gets /v1, and a trailing /chat/completions is dropped.
	BaseURL string
	// Model is the model's name on that server, such as "gpt-4o-mini" or
	// "llama3.2". The llama.cpp server accepts any name.
	Model string
	// APIKey is sent as "Authorization: Bearer KEY" when it is not empty.
	// Ollama, vLLM and llama.cpp need none unless started with one.
	APIKey string

	// MaxTokens caps the tokens the model may generate; an answer cut
	// there finishes with runnel.FinishLength. It is sent as max_tokens
	// (max_completion_tokens to api.openai.com) and enforced here as well,
	// for servers that ignore it. Default DefaultMaxTokens.
	MaxTokens int
	// MaxDuration caps a whole answer, retries included; reaching it ends
	// the answer with a runnel.ETIMEOUT error. Default DefaultMaxDuration.
	MaxDuration time.Duration
	// StallTimeout ends an answer with EUpstreamStalled when the upstream
	// sends no chunk for this long: before the first chunk (the response
	// headers do not count) or between two chunks. Any chunk counts, even
	// one with an empty delta; SSE comments (keep-alives) do not, since
	// they show that the connection lives, not that the model progresses.
	// Time spent in emit (a slow client) does not count.
	// Default DefaultStallTimeout, generous enough for a local model
	// loading from disk or a reasoning model thinking before it writes.
	StallTimeout time.Duration

	// MaxPassages is the most passages the prompt quotes. Default
	// DefaultMaxPassages.
	MaxPassages int
	// MaxContextChars is the most characters of passage text the prompt
	// quotes; the last passage that fits is cut at a word. The default,
	// DefaultMaxContextChars (about 2,000 tokens), leaves room for the
	// answer in a 4,096-token context, Ollama's default.
	MaxContextChars int
	// MaxArticles is the most articles the prompt quotes. Sources are
	// numbered by article, in the order of the sources event, so that a
	// citation [n] is the n-th source a client shows: keep it equal to
	// runnel.Answerer.Articles. Default DefaultMaxArticles, the Answerer's.
	MaxArticles int

	// Retries is how many times a request is sent again after a 429, a
	// 408, a 5xx or a failure to connect, with exponential backoff and
	// jitter, or after the server's Retry-After when it sends one (up to
	// 30 s). Nothing is retried once the response stream has begun.
	// Default DefaultRetries; a negative value disables retries.
	Retries int
	// HTTPClient sends the requests. nil means a client of the
	// Generator's own (keep-alive connections, no compression, proxies
	// from the environment). Give it no Timeout: it would cut long
	// answers; MaxDuration and StallTimeout bound them instead.
	HTTPClient *http.Client
	// Temperature is sent when not nil; nil leaves the server's default,
	// which reasoning models require.
	Temperature *float64
}

// String describes o without its API key, so that printing Options with
// %v or %+v cannot leak it.
func (o Options) String() string {
	return fmt.Sprintf("openai.Options{BaseURL:%q Model:%q APIKey:%s MaxTokens:%d MaxDuration:%v StallTimeout:%v MaxPassages:%d MaxContextChars:%d MaxArticles:%d Retries:%d}",
		redactURL(o.BaseURL), o.Model, keyState(o.APIKey), o.MaxTokens, o.MaxDuration, o.StallTimeout,
		o.MaxPassages, o.MaxContextChars, o.MaxArticles, o.Retries)
}

// GoString is String, for %#v.
func (o Options) GoString() string { return o.String() }

// LogValue logs o without its API key.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redactURL(o.BaseURL)),
		slog.String("model", o.Model),
		slog.String("key", keyState(o.APIKey)),
	)
}

func keyState(key string) string {
	if key == "" {
		return "none"
	}
	return "set"
}

// Generator is the runnel.Generator for OpenAI-compatible servers. It is
// safe for concurrent use.
type Generator struct {
	opts    Options // defaults applied
	base    *url.URL
	where   string // base URL for logs: no user info, no query
	http    *http.Client
	chat    sdk.ChatCompletionService
	backoff time.Duration // first retry's delay before jitter

	// What the upstream turned out not to accept; see Generate.
	noUsage       atomic.Bool // stream_options (for usage) was rejected
	maxCompletion atomic.Bool // send max_completion_tokens instead of max_tokens
}

// New returns a Generator for opts. It fails if opts.Model is empty or
// opts.BaseURL is not an http or https URL.
func New(opts Options) (*Generator, error) {
	if strings.TrimSpace(opts.Model) == "" {
		return nil, errors.New("openai: no model named (the llama.cpp server accepts any name)")
	}
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	opts.BaseURL = base.String()
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = DefaultMaxDuration
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.MaxPassages <= 0 {
		opts.MaxPassages = DefaultMaxPassages
	}
	if opts.MaxContextChars <= 0 {
		opts.MaxContextChars = DefaultMaxContextChars
	}
	opts.MaxContextChars = max(opts.MaxContextChars, minTail)
	if opts.MaxArticles <= 0 {
		opts.MaxArticles = DefaultMaxArticles
	}
	switch {
	case opts.Retries == 0:
		opts.Retries = DefaultRetries
	case opts.Retries < 0:
		opts.Retries = 0
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = newHTTPClient()
	}
	g := &Generator{
		opts:    opts,
		base:    base,
		where:   redactURL(base.String()),
		http:    hc,
		backoff: 500 * time.Millisecond,
	}
	// Only these options, and never the environment: the SDK's NewClient
	// would add OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_ORG_ID and more.
	reqOpts := []option.RequestOption{
		option.WithBaseURL(base.String()),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0),
	}
	if opts.APIKey != "" {
		reqOpts = append(reqOpts, option.WithAPIKey(opts.APIKey))
	}
	g.chat = sdk.NewChatCompletionService(reqOpts...)
	// OpenAI's reasoning models refuse max_tokens; every other server we
	// know takes it, and Ollama takes nothing else.
	g.maxCompletion.Store(base.Host == "api.openai.com")
	return g, nil
}

// newHTTPClient returns the client used when Options.HTTPClient is nil.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Many answers stream at once from the same server: keep their
	// connections for the next questions (the default keeps two).
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	// A compressed stream may be held back by the compressor upstream.
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// parseBaseURL checks and normalises Options.BaseURL.
func parseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		s = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may hold credentials: do not echo it.
		return nil, errors.New("openai: the LLM URL must be an http:// or https:// URL such as http://localhost:11434/v1")
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/chat/completions")
	if u.Path == "" {
		u.Path = "/v1"
	}
	u.RawPath = ""
	u.Fragment = ""
	return u, nil
}

// redactURL returns s without user info, query or fragment: what a log may
// show of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// String names the model and the server, for logs; never the key.
func (g *Generator) String() string {
	return fmt.Sprintf("%s at %s", g.opts.Model, g.where)
}

// CloseIdleConnections closes the connections kept alive to the upstream,
// as http.Client.CloseIdleConnections does. Call it when the Generator is
// no longer used.
func (g *Generator) CloseIdleConnections() { g.http.CloseIdleConnections() }

// Generate asks the model to answer p and streams its text through emit as
// it arrives. It implements runnel.Generator.
//
// With no usable passage it emits NotCovered without calling the model.
// A request the upstream refuses with 429, 408 or 5xx, or that cannot
// connect, is sent again up to Options.Retries times; once a response
// stream has begun nothing is retried. A 400 that names stream_options or
// max_tokens (or max_completion_tokens) is sent again at once without it
// (or with the other), and the Generator remembers.
func (g *Generator) Generate(ctx context.Context, p runnel.Prompt, emit func(token string) error) (runnel.Done, error) {
	if err := ctx.Err(); err != nil {
		return runnel.Done{}, err
	}
	system, user, n := g.prompt(p)
	if n == 0 {
		if err := emit(NotCovered); err != nil {
			return runnel.Done{}, err
		}
		return runnel.Done{FinishReason: runnel.FinishStop}, nil
	}
	gctx, cancel := context.WithTimeoutCause(ctx, g.opts.MaxDuration, errMaxDuration)
	defer cancel()
	c := &call{g: g, ctx: ctx, gctx: gctx, system: system, user: user, emit: emit}
	retries, adapted := 0, 0
	for {
		done, err := c.attempt()
		if err == nil {
			return done, nil
		}
		var f *failure
		if !errors.As(err, &f) {
			return runnel.Done{}, err // emit's error, or ctx's
		}
		if f.reject != "" && adapted < 2 && g.adapt(f.reject) {
			adapted++
			continue
		}
		if retries > 0 {
			f.detail += fmt.Sprintf(" (after %d retries)", retries)
		}
		if !f.retry || retries >= g.opts.Retries {
			return runnel.Done{}, f
		}
		wait := f.wait
		if wait <= 0 {
			wait = jitter(min(g.backoff<<retries, maxBackoff))
		}
		if dl, ok := gctx.Deadline(); wait > maxRetryAfter || (ok && time.Until(dl) < wait) {
			return runnel.Done{}, f // asking again would come too late
		}
		retries++
		if err := sleep(gctx, wait); err != nil {
			if ctxErr := c.ctxErr(nil); ctxErr != nil {
				err = ctxErr
			}
			return runnel.Done{}, err
		}
	}
}

// adapt stops sending a request parameter the upstream rejected, and
// reports whether anything changed.
func (g *Generator) adapt(param string) bool {
	switch param {
	case "stream_options":
		return !g.noUsage.Swap(true)
	case "max_tokens":
		return !g.maxCompletion.Swap(true)
	case "max_completion_tokens":
		return g.maxCompletion.Swap(false)
	}
	return false
}

// params returns the request for one attempt.
func (g *Generator) params(system, user string, maxTokens int) sdk.ChatCompletionNewParams {
	p := sdk.ChatCompletionNewParams{
		Model: g.opts.Model,
		Messages: []sdk.ChatCompletionMessageParamUnion{
			sdk.SystemMessage(system),
			sdk.UserMessage(user),
		},
	}
	if g.maxCompletion.Load() {
		p.MaxCompletionTokens = sdk.Int(int64(maxTokens))
	} else {
		p.MaxTokens = sdk.Int(int64(maxTokens))
	}
	if !g.noUsage.Load() {
		p.StreamOptions.IncludeUsage = sdk.Bool(true)
	}
	if g.opts.Temperature != nil {
		p.Temperature = sdk.Float(*g.opts.Temperature)
	}
	return p
}
