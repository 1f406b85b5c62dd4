package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
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
	parkAfter                  time.Duration
	parkIdle                   time.Duration
	writeHold                  time.Duration
	retentionMB, retentionRuns int
	access                     accessSettings
	modelName                  string
	shared                     sharedRuns
}

// accessSettings say who may use the server and how much.
type accessSettings struct {
	env                             func(string) string
	apiKeys, apiKeyFile             string
	keysForPages                    bool
	corsOrigins, trustedProxies     string
	maxStreams, maxStreamsPerClient int
	questionRate                    float64
	questionBurst                   int
}

// Defaults of serve's limits; the library's zero values set none.
const (
	defaultMaxStreams          = 10000
	defaultMaxStreamsPerClient = 100
)

func (a *accessSettings) bind(c *config) {
	a.env = c.env
	// The keys' default is read after parsing, so -h never prints them.
	c.fs.StringVar(&a.apiKeys, "api-key", "",
		"require one of these comma-separated API `keys` to ask, follow or cancel answers (env RUNNEL_API_KEYS); see also -api-key-file")
	c.String(&a.apiKeyFile, "api-key-file", "RUNNEL_API_KEY_FILE", "", "read API keys from this `file`, one a line (# comments); with -api-key, either key is accepted")
	c.Bool(&a.keysForPages, "keys-for-pages", "RUNNEL_KEYS_FOR_PAGES", false, "require a key for the page, the articles and the tags too (browsers ask for it as a password)")
	c.String(&a.corsOrigins, "cors-origin", "RUNNEL_CORS_ORIGINS", "", "comma-separated `origins` (https://app.example.com, or *) whose pages may use the API from a browser")
	c.String(&a.trustedProxies, "trusted-proxy", "RUNNEL_TRUSTED_PROXIES", "", "comma-separated `addresses` or CIDR ranges of proxies whose X-Forwarded-For names the client")
	c.Int(&a.maxStreams, "max-streams", "RUNNEL_MAX_STREAMS", defaultMaxStreams, "most streams open at once over all clients (503 past it); 0 for no limit")
	c.Int(&a.maxStreamsPerClient, "max-streams-per-client", "RUNNEL_MAX_STREAMS_PER_CLIENT", defaultMaxStreamsPerClient, "most streams one client address may hold open (429 past it); 0 for no limit")
	c.Float(&a.questionRate, "question-rate", "RUNNEL_QUESTION_RATE", 0, "new questions a second one client address may ask on average (429 past it); 0 for no limit")
	c.Int(&a.questionBurst, "question-burst", "RUNNEL_QUESTION_BURST", 0, "questions one client may ask at once above -question-rate; 0 means the rate rounded up")
}

// keys returns the API keys from -api-key (else RUNNEL_API_KEYS) and the
// key file.
func (a *accessSettings) keys() ([]string, error) {
	var keys []string
	for _, k := range strings.Split(cmp.Or(a.apiKeys, a.env("RUNNEL_API_KEYS")), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if a.apiKeyFile != "" {
		data, err := os.ReadFile(a.apiKeyFile)
		if err != nil {
			return nil, fmt.Errorf("api key file: %w", err)
		}
		n := 0
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("api key file %s holds no key", a.apiKeyFile)
		}
	}
	return keys, nil
}

// apply sets the access settings on srv.
func (a *accessSettings) apply(srv *rhttp.Server) error {
	keys, err := a.keys()
	if err != nil {
		return err
	}
	proxies, err := parsePrefixes(a.trustedProxies)
	if err != nil {
		return fmt.Errorf("trusted proxy: %w", err)
	}
	if a.maxStreams < 0 || a.maxStreamsPerClient < 0 || a.questionRate < 0 || a.questionBurst < 0 {
		return errors.New("stream limits and the question rate must be 0 or more")
	}
	srv.APIKeys, srv.KeysForPages = keys, a.keysForPages
	srv.CORSOrigins = splitList(a.corsOrigins)
	srv.Limits = rhttp.Limits{
		MaxStreams:          a.maxStreams,
		MaxStreamsPerClient: a.maxStreamsPerClient,
		QuestionRate:        a.questionRate,
		QuestionBurst:       a.questionBurst,
		TrustedProxies:      proxies,
	}
	return srv.Validate()
}

// parsePrefixes parses comma-separated addresses and CIDR ranges.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(list) {
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR range", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func splitList(list string) []string {
	var out []string
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (ss *serverSettings) bind(c *config, logFormat string, maxDur, linger time.Duration) {
	ss.gen.bind(c)
	c.String(&ss.logFormat, "log-format", "RUNNEL_LOG_FORMAT", logFormat, "log format: text or json")
	c.String(&ss.logLevel, "log-level", "RUNNEL_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	c.Int(&ss.maxQuestion, "max-question", "RUNNEL_MAX_QUESTION", runnel.DefaultMaxQuestion, "longest question accepted, in `bytes`")
	c.Duration(&ss.ping, "ping-interval", "RUNNEL_PING_INTERVAL", rhttp.DefaultPingInterval, "send a ping after this much silence in a stream")
	c.Duration(&ss.writeTimeout, "write-timeout", "RUNNEL_WRITE_TIMEOUT", rhttp.DefaultWriteTimeout, "drop a client that takes longer than this to accept one write")
	c.Duration(&ss.parkAfter, "park-after", "RUNNEL_PARK_AFTER", rhttp.DefaultParkAfter,
		"move a stream open this long out of net/http's goroutine and buffers into its own, to hold less memory (HTTP/1.1 only); negative: never")
	c.Duration(&ss.parkIdle, "park-idle", "RUNNEL_PARK_IDLE", rhttp.DefaultParkIdle,
		"move a stream out of net/http's goroutine sooner, once it has waited this long with nothing to write; 0 or negative: only after --park-after")
	c.Duration(&ss.writeHold, "write-hold", "RUNNEL_WRITE_HOLD", rhttp.DefaultWriteHold,
		"while the CPU is saturated, let a token wait this long for the next to share a write system call; 0 or negative: never")
	c.Duration(&ss.maxDur, "max-stream-duration", "RUNNEL_MAX_STREAM_DURATION", maxDur, "end a stream with an error event after this long")
	c.Duration(&ss.linger, "run-linger", "RUNNEL_RUN_LINGER", linger,
		"keep generating an answer this long after its last reader left, so a reader who lost the connection can resume it; 0 stops it at once")
	c.Duration(&ss.retention, "run-retention", "RUNNEL_RUN_RETENTION", memory.DefaultRetention, "keep an ended answer readable (resumable) this long")
	c.Int(&ss.retentionMB, "run-retention-mb", "RUNNEL_RUN_RETENTION_MB", memory.DefaultMaxBytes>>20, "most memory, in MiB, that ended answers kept for readers may take; the oldest go first")
	c.Int(&ss.retentionRuns, "run-retention-count", "RUNNEL_RUN_RETENTION_COUNT", memory.DefaultMaxRuns, "most ended answers kept for readers; the oldest go first")
	ss.access.bind(c)
	ss.shared.bind(c)
	c.String(&ss.modelName, "model-name", "RUNNEL_MODEL_NAME", rhttp.DefaultModelName, "the model `name` the OpenAI-compatible API (/v1) lists and answers as")
}

// memoryRuns returns the in-memory run logs the settings describe.
func (ss *serverSettings) memoryRuns() *memory.Runs {
	return memory.New(memory.Options{
		Linger:    ss.linger,
		Retention: ss.retention,
		MaxBytes:  int64(ss.retentionMB) << 20,
		MaxRuns:   ss.retentionRuns,
	})
}

// offWhenZero returns the rhttp.Server field for a duration flag such as
// --write-hold or --park-idle d: on the command line 0 turns it off, as a
// user reads it, where the field's zero value is the default.
func offWhenZero(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// server returns the HTTP server answering from store, with the web pages.
func (ss *serverSettings) server(store *sqlite.Store, logger *slog.Logger) (*rhttp.Server, error) {
	gen, err := ss.gen.generator()
	if err != nil {
		return nil, err
	}
	runs, err := ss.runs(logger)
	if err != nil {
		return nil, err
	}
	srv := &rhttp.Server{
		Answerer:          &runnel.Answerer{Searcher: store, Generator: gen, Passages: ss.gen.passages(), Logger: logger},
		Store:             store,
		Runs:              runs,
		Pages:             web.Handler(store),
		Logger:            logger,
		Version:           version(),
		MaxQuestion:       ss.maxQuestion,
		PingInterval:      ss.ping,
		ParkAfter:         ss.parkAfter,
		ParkIdle:          offWhenZero(ss.parkIdle),
		WriteHold:         offWhenZero(ss.writeHold),
		WriteTimeout:      ss.writeTimeout,
		MaxStreamDuration: ss.maxDur,
		ModelName:         ss.modelName,
	}
	if err := ss.access.apply(srv); err != nil {
		return nil, err
	}
	return srv, nil
}
