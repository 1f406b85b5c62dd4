package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/extractive"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/openai"
	"github.com/runnel/runnel/sqlite"
	"github.com/runnel/runnel/web"
)

// genSettings choose and configure the generator; serve, ask and Lambda
// read them from the same flags and RUNNEL_* variables. Naming a model
// turns the LLM on; without one the offline extractive generator answers.
type genSettings struct {
	env        func(string) string
	tokenDelay time.Duration

	llmURL, llmModel, llmKey string
	llmMaxTokens             int
	llmStall, llmMaxDuration time.Duration
	llmPassages, llmChars    int
	llmRetries               int
	llmTemperature           float64
}

func (g *genSettings) bind(c *config) {
	g.env = c.env
	env := openai.FromEnv(c.env)
	c.Duration(&g.tokenDelay, "token-delay", "RUNNEL_TOKEN_DELAY", 0,
		"pause between the extractive generator's tokens, to watch an offline answer grow (e.g. 30ms)")
	c.fs.StringVar(&g.llmURL, "llm-url", env.BaseURL,
		"OpenAI-compatible API base `URL`, e.g. http://localhost:11434/v1 for Ollama (env RUNNEL_LLM_URL, else OPENAI_BASE_URL; default https://api.openai.com/v1)")
	c.fs.StringVar(&g.llmModel, "llm-model", env.Model,
		"answer with this LLM `model` instead of the offline extractive generator (env RUNNEL_LLM_MODEL)")
	// The key's default is applied after parsing, so -h never prints it.
	c.fs.StringVar(&g.llmKey, "llm-key", "", "API `key` for the LLM (env RUNNEL_LLM_API_KEY, else OPENAI_API_KEY)")
	c.Int(&g.llmMaxTokens, "llm-max-tokens", "RUNNEL_LLM_MAX_TOKENS", openai.DefaultMaxTokens, "most tokens the LLM may generate for one answer")
	c.Duration(&g.llmStall, "llm-stall-timeout", "RUNNEL_LLM_STALL_TIMEOUT", openai.DefaultStallTimeout, "end the answer with an error when the LLM sends nothing for this long")
	c.Duration(&g.llmMaxDuration, "llm-max-duration", "RUNNEL_LLM_MAX_DURATION", openai.DefaultMaxDuration, "end an LLM answer with an error after this long")
	c.Int(&g.llmPassages, "llm-context-passages", "RUNNEL_LLM_CONTEXT_PASSAGES", openai.DefaultMaxPassages, "most passages quoted in the LLM's prompt")
	c.Int(&g.llmChars, "llm-context-chars", "RUNNEL_LLM_CONTEXT_CHARS", openai.DefaultMaxContextChars, "most characters of passages quoted in the LLM's prompt")
	c.Int(&g.llmRetries, "llm-retries", "RUNNEL_LLM_RETRIES", openai.DefaultRetries, "retries of a failed LLM request before its first token (429, 5xx, refused); 0 for none")
	c.Float(&g.llmTemperature, "llm-temperature", "RUNNEL_LLM_TEMPERATURE", -1, "sampling temperature sent to the LLM; negative leaves the server's default")
}

// passages is how many passages the pipeline retrieves: enough for the
// LLM's prompt when it quotes more than the default.
func (g *genSettings) passages() int {
	if g.llmModel != "" {
		return max(g.llmPassages, 8)
	}
	return 0 // the Answerer's default
}

// generator returns the generator the settings describe.
func (g *genSettings) generator() (runnel.Generator, error) {
	if g.llmModel == "" {
		return extractive.New(extractive.Options{Delay: g.tokenDelay}), nil
	}
	key := g.llmKey
	if key == "" {
		key = openai.FromEnv(g.env).APIKey
	}
	var temperature *float64
	if g.llmTemperature >= 0 {
		temperature = &g.llmTemperature
	}
	gen, err := openai.New(openai.Options{
		BaseURL:         g.llmURL,
		Model:           g.llmModel,
		APIKey:          key,
		MaxTokens:       g.llmMaxTokens,
		StallTimeout:    g.llmStall,
		MaxDuration:     g.llmMaxDuration,
		MaxPassages:     g.llmPassages,
		MaxContextChars: g.llmChars,
		Retries:         cmp.Or(g.llmRetries, -1), // in Options 0 means the default
		Temperature:     temperature,
	})
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	return gen, nil
}

// serverSettings are the server's settings that serve and Lambda read from
// the same RUNNEL_* variables (serve also from flags).
type serverSettings struct {
	gen                        genSettings
	logFormat, logLevel        string
	maxQuestion                int
	ping, writeTimeout, maxDur time.Duration
	linger, retention          time.Duration
	retentionMB, retentionRuns int
}

func (ss *serverSettings) bind(c *config, logFormat string, maxDur, linger time.Duration) {
	ss.gen.bind(c)
	c.String(&ss.logFormat, "log-format", "RUNNEL_LOG_FORMAT", logFormat, "log format: text or json")
	c.String(&ss.logLevel, "log-level", "RUNNEL_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	c.Int(&ss.maxQuestion, "max-question", "RUNNEL_MAX_QUESTION", runnel.DefaultMaxQuestion, "longest question accepted, in `bytes`")
	c.Duration(&ss.ping, "ping-interval", "RUNNEL_PING_INTERVAL", rhttp.DefaultPingInterval, "send a ping after this much silence in a stream")
	c.Duration(&ss.writeTimeout, "write-timeout", "RUNNEL_WRITE_TIMEOUT", rhttp.DefaultWriteTimeout, "drop a client that takes longer than this to accept one write")
	c.Duration(&ss.maxDur, "max-stream-duration", "RUNNEL_MAX_STREAM_DURATION", maxDur, "end a stream with an error event after this long")
	c.Duration(&ss.linger, "run-linger", "RUNNEL_RUN_LINGER", linger,
		"keep generating an answer this long after its last reader left, so a reader who lost the connection can resume it; 0 stops it at once")
	c.Duration(&ss.retention, "run-retention", "RUNNEL_RUN_RETENTION", memory.DefaultRetention, "keep an ended answer readable (resumable) this long")
	c.Int(&ss.retentionMB, "run-retention-mb", "RUNNEL_RUN_RETENTION_MB", memory.DefaultMaxBytes>>20, "most memory, in MiB, that ended answers kept for readers may take; the oldest go first")
	c.Int(&ss.retentionRuns, "run-retention-count", "RUNNEL_RUN_RETENTION_COUNT", memory.DefaultMaxRuns, "most ended answers kept for readers; the oldest go first")
}

// runs returns the run logs the settings describe.
func (ss *serverSettings) runs() *memory.Runs {
	return memory.New(memory.Options{
		Linger:    ss.linger,
		Retention: ss.retention,
		MaxBytes:  int64(ss.retentionMB) << 20,
		MaxRuns:   ss.retentionRuns,
	})
}

// server returns the HTTP server answering from store, with the web pages.
func (ss *serverSettings) server(store *sqlite.Store, logger *slog.Logger) (*rhttp.Server, error) {
	gen, err := ss.gen.generator()
	if err != nil {
		return nil, err
	}
	return &rhttp.Server{
		Answerer:          &runnel.Answerer{Searcher: store, Generator: gen, Passages: ss.gen.passages()},
		Store:             store,
		Runs:              ss.runs(),
		Pages:             web.Handler(store),
		Logger:            logger,
		Version:           version(),
		MaxQuestion:       ss.maxQuestion,
		PingInterval:      ss.ping,
		WriteTimeout:      ss.writeTimeout,
		MaxStreamDuration: ss.maxDur,
	}, nil
}
