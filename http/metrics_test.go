package http_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

// scrape reads the server's /metrics page with the Prometheus text parser.
func scrape(t *testing.T, base string, header ...string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := do(t, "GET", base+"/metrics", "", header...)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of family name whose labels
// include labels (name, value pairs): a counter's or gauge's value, a
// histogram's count. It is 0 for a series that is not there.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
series:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for _, tok := range []string{"one ", "two ", "three"} {
			if err := emit(tok); err != nil {
				return runnel.Done{}, err
			}
		}
		if strings.HasPrefix(p.Question, "hold") {
			select {
			case <-release:
			case <-ctx.Done():
				return runnel.Done{}, ctx.Err()
			}
		}
		if strings.HasPrefix(p.Question, "fail") {
			return runnel.Done{}, runnel.Errorf(runnel.EUPSTREAMUNAVAILABLE, "The LLM is down.")
		}
		return runnel.Done{FinishReason: runnel.FinishStop}, nil
	})
	reg := prometheus.NewPedanticRegistry()
	m, err := rhttp.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rhttp.NewMetrics(reg); err == nil {
		t.Error("registering twice: no error")
	}
	_, ts := newServer(t, gen, func(s *rhttp.Server) {
		s.Metrics, s.MetricsHandler = m, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		s.APIKeys = []string{"k"}
	})
	key := []string{"Authorization", "Bearer k"}

	before := scrape(t, ts.URL, key...)
	if got := value(before, "runnel_streams_started_total"); got != 0 {
		t.Fatalf("streams started before any: %v", got)
	}

	// One answer to its end, one that fails upstream, one refused.
	c := rhttp.NewClient(ts.URL)
	c.APIKey = "k"
	if err := c.Ask(t.Context(), "websocket", func(runnel.Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c.Ask(t.Context(), "fail websocket", func(runnel.Event) error { return nil })
	if resp, _ := do(t, "GET", ts.URL+"/articles/stream?question=websocket", ""); resp.StatusCode != 401 {
		t.Fatalf("without a key: %d", resp.StatusCode)
	}
	// One held open over SSE while the page is read.
	held, closeHeld := open(t, ts.URL+"/articles/stream?question=hold+websocket", append(key, "Accept", "text/event-stream")...)
	if held.StatusCode != 200 {
		t.Fatalf("held stream: %d", held.StatusCode)
	}

	// A write is counted once it returns, and a stream's end once it is
	// logged, which may be a moment after its reader has the last event;
	// the held stream's first events may still be on their way when the
	// others have ended.
	var f map[string]*dto.MetricFamily
	waitFor(t, func() bool {
		f = scrape(t, ts.URL, key...)
		return value(f, "runnel_tokens_written_total") == 9 &&
			value(f, "runnel_events_written_total") >= 3*8-1 &&
			value(f, "runnel_streams_ended_total", "outcome", runnel.EUPSTREAMUNAVAILABLE) == 1 &&
			value(f, "runnel_streams_ended_total", "transport", "ndjson", "outcome", "done") == 1
	})
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"runnel_streams_started_total", []string{"transport", "ndjson"}, 2},
		{"runnel_streams_started_total", []string{"transport", "sse"}, 1},
		{"runnel_streams_open", []string{"transport", "ndjson"}, 0},
		{"runnel_streams_open", []string{"transport", "sse"}, 1},
		{"runnel_streams_ended_total", []string{"transport", "ndjson", "outcome", "done"}, 1},
		{"runnel_streams_ended_total", []string{"outcome", runnel.EUPSTREAMUNAVAILABLE}, 1},
		{"runnel_requests_refused_total", []string{"code", runnel.EUNAUTHORIZED}, 1},
		{"runnel_runs_started_total", nil, 3},
		{"runnel_titles_seconds", nil, 3},
		{"runnel_first_token_seconds", nil, 3},
		{"runnel_search_seconds", nil, 3},
		{"runnel_generator_first_token_seconds", nil, 3},
		{"runnel_generator_errors_total", []string{"code", runnel.EUPSTREAMUNAVAILABLE}, 1},
	} {
		if got := value(f, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// Each answer is query, tags, titles, sources and three tokens, and
	// two have their end too; writes batch events, so there are no more
	// of them than events, but for the retry line the SSE stream opens
	// with.
	events, writes, bytes := value(f, "runnel_events_written_total"), value(f, "runnel_write_batches_total"), value(f, "runnel_written_bytes_total")
	if events < 3*8-1 || writes < 1 || writes > events+1 || bytes < 200 {
		t.Errorf("events %v, writes %v, bytes %v", events, writes, bytes)
	}

	// The tests run with the CPU counted as saturated or not
	// (RUNNEL_TEST_SATURATED), whatever it measures.
	if f["runnel_cpu_saturated"] == nil {
		t.Error("no runnel_cpu_saturated")
	} else if got, want := value(f, "runnel_cpu_saturated"), float64(max(rhttp.Saturated, 0)); got != want {
		t.Errorf("runnel_cpu_saturated = %v, want %v", got, want)
	}

	// The client leaves the held stream (and, with no linger, its run is
	// canceled).
	closeHeld()
	waitFor(t, func() bool {
		f := scrape(t, ts.URL, key...)
		return value(f, "runnel_streams_open", "transport", "sse") == 0 &&
			value(f, "runnel_streams_ended_total", "transport", "sse", "outcome", "client_left") == 1
	})

	// The page itself is behind the keys.
	if resp, _ := do(t, "GET", ts.URL+"/metrics", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a key: %d", resp.StatusCode)
	}
}
