package http

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel/runnel"
)

// Metrics are the server's Prometheus metrics (docs/operations.md lists
// them). NewMetrics registers them on a registry of the caller's; a nil
// *Metrics records nothing, at no cost.
type Metrics struct {
	streamsOpen   *prometheus.GaugeVec
	streamsTotal  *prometheus.CounterVec
	streamsEnded  *prometheus.CounterVec
	streamsParked prometheus.Gauge
	refusals      *prometheus.CounterVec
	resumes       *prometheus.CounterVec
	runsStarted   prometheus.Counter
	titles        prometheus.Histogram
	firstToken    prometheus.Histogram
	search        prometheus.Histogram
	genFirstToken prometheus.Histogram
	genErrors     *prometheus.CounterVec
	events        prometheus.Counter
	tokens        prometheus.Counter
	writes        prometheus.Counter
	bytes         prometheus.Counter
}

// Buckets of the latency histograms, in seconds: 1 ms to 30 s.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics returns the server's metrics, registered on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	transport := []string{"transport"}
	m := &Metrics{
		streamsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "runnel_streams_open", Help: "Streams open now, by transport (ndjson, sse, websocket).",
		}, transport),
		streamsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_streams_started_total", Help: "Streams started, by transport: new answers and resumes.",
		}, transport),
		streamsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_streams_ended_total",
			Help: "Streams ended, by transport and outcome: done, canceled, client_left, or the code of the error event that ended it.",
		}, []string{"transport", "outcome"}),
		streamsParked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runnel_streams_parked", Help: "Open streams whose connection left net/http for the stream's own goroutine (park.go; counted in runnel_streams_open too).",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_requests_refused_total",
			Help: "Streams and questions refused by a limit or for want of a key, by error code (unavailable, rate_limited, unauthorized).",
		}, []string{"code"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_resumes_total", Help: "Readers that resumed or followed a run already started, by transport.",
		}, transport),
		runsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_runs_started_total", Help: "Runs (answers) started.",
		}),
		titles: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "runnel_titles_seconds", Help: "Time from a run's start to its titles event (search and tag lookup).",
			Buckets: latencyBuckets,
		}),
		firstToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "runnel_first_token_seconds", Help: "Time from a run's start to its first token.",
			Buckets: latencyBuckets,
		}),
		search: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "runnel_search_seconds", Help: "Time one search of the articles took, waiting for its turn included.",
			Buckets: latencyBuckets,
		}),
		genFirstToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "runnel_generator_first_token_seconds", Help: "Time from asking the generator (the LLM upstream, or the offline one) to its first token.",
			Buckets: latencyBuckets,
		}),
		genErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runnel_generator_errors_total", Help: "Answers the generator failed, by error code (upstream_auth, upstream_unavailable, upstream_stalled, ...).",
		}, []string{"code"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_events_written_total", Help: "Events written to readers, pings included.",
		}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_tokens_written_total", Help: "Token events written to readers.",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_write_batches_total", Help: "Writes to readers; each carries one event or a batch of those that piled up.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "runnel_written_bytes_total", Help: "Bytes of events written to readers (before TLS and chunk framing).",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.streamsOpen, m.streamsTotal, m.streamsEnded, m.streamsParked, m.refusals, m.resumes, m.runsStarted,
		m.titles, m.firstToken, m.search, m.genFirstToken, m.genErrors,
		m.events, m.tokens, m.writes, m.bytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "runnel_cpu_saturated",
			Help: "1 while the process's CPU counts as saturated, when tokens wait up to the write hold to share a write (hold.go); else 0.",
		}, func() float64 {
			if cpuLoad.isSaturated() {
				return 1
			}
			return 0
		}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// streamStarted counts a stream of transport via as started and open.
func (m *Metrics) streamStarted(via string) {
	if m == nil {
		return
	}
	m.streamsTotal.WithLabelValues(via).Inc()
	m.streamsOpen.WithLabelValues(via).Inc()
}

func (m *Metrics) streamEnded(via, outcome string) {
	if m == nil {
		return
	}
	m.streamsOpen.WithLabelValues(via).Dec()
	m.streamsEnded.WithLabelValues(via, outcome).Inc()
}

// parked counts a stream that parked (+1) or a parked stream that ended (-1).
func (m *Metrics) parked(n int) {
	if m != nil {
		m.streamsParked.Add(float64(n))
	}
}

func (m *Metrics) refused(code string) {
	if m != nil {
		m.refusals.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) resumed(via string) {
	if m != nil {
		m.resumes.WithLabelValues(via).Inc()
	}
}

func (m *Metrics) runStarted() {
	if m != nil {
		m.runsStarted.Inc()
	}
}

// wrote counts one write of events, tokens of them, of n bytes.
func (m *Metrics) wrote(events, tokens, n int) {
	if m == nil {
		return
	}
	m.writes.Inc()
	m.events.Add(float64(events))
	if tokens > 0 {
		m.tokens.Add(float64(tokens))
	}
	m.bytes.Add(float64(n))
}

// stage observes the time to a run's titles and first token.
func (m *Metrics) stage(t runnel.EventType, since time.Duration) {
	if m == nil {
		return
	}
	switch t {
	case runnel.EventTitles:
		m.titles.Observe(since.Seconds())
	case runnel.EventToken:
		m.firstToken.Observe(since.Seconds())
	}
}

// instrument returns a copy of a whose searcher and generator are timed,
// or a itself without metrics.
func (m *Metrics) instrument(a *runnel.Answerer) *runnel.Answerer {
	if m == nil || a == nil {
		return a
	}
	c := *a
	ts := timedSearcher{a.Searcher, m}
	c.Searcher = ts
	if tc, ok := a.Searcher.(runnel.TermCounter); ok {
		// Hiding it would change the answers: the generator weighs the
		// question's words by these counts.
		c.Searcher = struct {
			timedSearcher
			runnel.TermCounter
		}{ts, tc}
	}
	if rw, ok := a.Generator.(runnel.Rewriter); ok && c.Rewriter == nil {
		c.Rewriter = rw // the timing wrapper would hide it
	}
	c.Generator = timedGenerator{a.Generator, m}
	return &c
}

type timedSearcher struct {
	runnel.Searcher
	m *Metrics
}

func (t timedSearcher) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	start := time.Now()
	p, err := t.Searcher.Search(ctx, q, limit)
	t.m.search.Observe(time.Since(start).Seconds())
	return p, err
}

type timedGenerator struct {
	runnel.Generator
	m *Metrics
}

func (t timedGenerator) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	start := time.Now()
	first := true
	d, err := t.Generator.Generate(ctx, p, func(tok string) error {
		if first {
			first = false
			t.m.genFirstToken.Observe(time.Since(start).Seconds())
		}
		return emit(tok)
	})
	if err != nil && ctx.Err() == nil {
		if code := runnel.ErrorCode(err); code != runnel.ECANCELED {
			t.m.genErrors.WithLabelValues(code).Inc()
		}
	}
	return d, err
}
