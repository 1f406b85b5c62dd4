package openai_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/openai"
)

// Latency benchmark parameters: 100 concurrent answers of 50 tokens, one
// token every 20 ms (50 tokens/s each, 5,000/s in all), asked within a
// quarter of a second.
const (
	benchStreams = 100
	benchTokens  = 50
	benchPace    = 20 * time.Millisecond
	benchRamp    = 250 * time.Millisecond
)

// paced streams benchTokens tokens at benchPace, each carrying the time it
// was sent (Unix nanoseconds), the way a model streams. Each stream starts
// at a random phase of the pace, as answers to different users do.
func paced(s *sse) {
	s.role()
	select {
	case <-time.After(rand.N(benchPace)):
	case <-s.r.Context().Done():
		return
	}
	tick := time.NewTicker(benchPace)
	defer tick.Stop()
	for range benchTokens {
		select {
		case <-tick.C:
		case <-s.r.Context().Done():
			return
		}
		s.token(strconv.FormatInt(time.Now().UnixNano(), 10) + " ")
	}
	s.finish("stop")
	s.usage(100, benchTokens)
	s.done()
}

// BenchmarkTokenLatency measures how long a token takes from the moment
// the upstream writes it to the moment the reader has it, with 100 answers
// streaming at once, and reports the median and the 99th percentile:
//
//	http:      upstream -> Generator -> runnel's HTTP server -> runnel's Go client
//	generator: upstream -> Generator's emit
//
// Both include the upstream's own write and the loopback hop to runnel.
// Run it with
//
//	go test ./openai/ -run '^$' -bench TokenLatency -benchtime 5x
func BenchmarkTokenLatency(b *testing.B) {
	b.Run("http", func(b *testing.B) {
		f := newFake(b, paced)
		g := newGen(b, f, openai.Options{})
		c, _, _ := serve(b, g)
		measure(b, func(ctx context.Context, got func(string)) error {
			return c.Ask(ctx, "what is websocket", func(e runnel.Event) error {
				if e.Type == runnel.EventToken {
					got(e.Token)
				}
				return nil
			})
		})
	})
	b.Run("generator", func(b *testing.B) {
		f := newFake(b, paced)
		g := newGen(b, f, openai.Options{})
		measure(b, func(ctx context.Context, got func(string)) error {
			_, err := g.Generate(ctx, question, func(tok string) error {
				got(tok)
				return nil
			})
			return err
		})
	})
}

// measure runs benchStreams answers at once with ask, b.N times, and
// reports the token latencies.
func measure(b *testing.B, ask func(ctx context.Context, got func(token string)) error) {
	var (
		mu   sync.Mutex
		lats []time.Duration
	)
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, benchStreams)
		for range benchStreams {
			wg.Go(func() {
				// Users do not ask in the same microsecond: spread the
				// questions over benchRamp.
				time.Sleep(rand.N(benchRamp))
				mine := make([]time.Duration, 0, benchTokens)
				err := ask(b.Context(), func(tok string) {
					now := time.Now().UnixNano()
					sent, err := strconv.ParseInt(strings.TrimSpace(tok), 10, 64)
					if err == nil {
						mine = append(mine, time.Duration(now-sent))
					}
				})
				if err == nil && len(mine) != benchTokens {
					err = fmt.Errorf("%d tokens, want %d", len(mine), benchTokens)
				}
				if err != nil {
					errs <- err
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[int(p*float64(len(lats)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(0, "ns/op")
}
