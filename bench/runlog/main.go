// Command runlog measures what keeping runs in Redis costs next to keeping
// them in memory: the latency a token takes from the producer's Append to
// a reader's Read, at many concurrent runs; the Redis commands an answer
// and a burst take; and the memory Redis holds for each ended run it keeps.
//
//	go run ./bench/runlog -redis redis://127.0.0.1:6379/0 -runs 100,1000
//
// bench/run-runlog.sh starts a redis-server for it and stops it after.
// Use a Redis of its own: the tool flushes the database it is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/redis"
)

func main() {
	url := flag.String("redis", "", "the Redis `URL` to measure (its database is flushed)")
	runsList := flag.String("runs", "100,1000", "comma-separated numbers of concurrent runs")
	tokens := flag.Int("tokens", 200, "tokens an answer")
	every := flag.Duration("every", 10*time.Millisecond, "time between tokens")
	burst := flag.Int("burst", 20000, "tokens of the burst answer")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "runlog: -redis is required")
		os.Exit(2)
	}
	opt, err := goredis.ParseURL(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "runlog:", err)
		os.Exit(2)
	}
	opt.PoolSize = 64
	ctx := context.Background()
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "runlog:", err)
		os.Exit(1)
	}

	fmt.Printf("token latency, Append to Read, %d tokens %v apart, a reader a run\n\n", *tokens, *every)
	fmt.Println("| runs | store | reader on | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, f := range strings.Split(*runsList, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(f))
		mem := memory.New(memory.Options{})
		row(n, "memory", "same process", latency(mem, mem, n, *tokens, *every))
		a := redis.New(ctx, c, redis.Options{})
		row(n, "redis", "same replica", latency(a, a, n, *tokens, *every))
		c2 := goredis.NewClient(opt)
		b := redis.New(ctx, c2, redis.Options{})
		row(n, "redis", "another replica", latency(a, b, n, *tokens, *every))
		a.Close(ctx)
		b.Close(ctx)
		c2.Close()
	}

	fmt.Println()
	commands(ctx, c, "an answer", 1, *tokens, *every)
	commands(ctx, c, "a burst", 1, *burst, 0)
	retained(ctx, c, *tokens)
}

func row(n int, store, reader string, d []time.Duration) {
	if len(d) == 0 {
		fmt.Printf("| %d | %s | %s | - | - | - |\n", n, store, reader)
		return
	}
	slices.Sort(d)
	q := func(p float64) string {
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Microsecond).String()
	}
	fmt.Printf("| %d | %s | %s | %s | %s | %s |\n", n, store, reader, q(0.50), q(0.99), d[len(d)-1].Round(time.Microsecond))
}

// latency runs n answers at once, produced through prod and read through
// read, and returns every token's time from Append to Read.
func latency(prod, read runnel.Runs, n, tokens int, every time.Duration) []time.Duration {
	ctx := context.Background()
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the starts over one token interval.
			time.Sleep(time.Duration(i) * every / time.Duration(n))
			run, _, err := prod.Create(ctx, "", nil)
			if err != nil {
				fmt.Fprintln(os.Stderr, "runlog: create:", err)
				return
			}
			reader, err := read.Get(ctx, run.ID())
			if err != nil {
				fmt.Fprintln(os.Stderr, "runlog: get:", err)
				return
			}
			detach := reader.Attach()
			defer detach()
			sent := make([]time.Time, tokens+2)
			var smu sync.Mutex
			got := make(chan []time.Duration, 1)
			go func() { got <- follow(ctx, reader, sent, &smu) }()
			appendAt := func(seq int, e runnel.Event) {
				smu.Lock()
				sent[seq] = time.Now()
				smu.Unlock()
				if _, err := run.Append(ctx, e); err != nil {
					fmt.Fprintln(os.Stderr, "runlog: append:", err)
				}
			}
			appendAt(0, runnel.Event{Type: runnel.EventQuery, Query: "q?"})
			var tick <-chan time.Time
			if every > 0 {
				t := time.NewTicker(every)
				defer t.Stop()
				tick = t.C
			}
			for t := range tokens {
				if tick != nil {
					<-tick
				}
				appendAt(t+1, runnel.Event{Type: runnel.EventToken, Token: "token "})
			}
			appendAt(tokens+1, runnel.Event{Type: runnel.EventDone, Done: &runnel.Done{FinishReason: "stop"}})
			d := <-got
			mu.Lock()
			all = append(all, d...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// follow reads run to its end and returns how long each token took to
// arrive after it was appended.
func follow(ctx context.Context, run runnel.Run, sent []time.Time, mu *sync.Mutex) []time.Duration {
	var out []time.Duration
	after := -1
	for {
		evs, more, err := run.Read(ctx, after, nil)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "runlog: read:", err)
			return out
		}
		now := time.Now()
		for _, e := range evs {
			after = e.Seq
			if e.Type == runnel.EventToken {
				mu.Lock()
				out = append(out, now.Sub(sent[e.Seq]))
				mu.Unlock()
			}
		}
		if len(evs) == 0 {
			<-more
		}
	}
}

// commands counts the Redis commands one answer of tokens takes, with a
// reader on another replica.
func commands(ctx context.Context, c *goredis.Client, what string, n, tokens int, every time.Duration) {
	c.ConfigResetStat(ctx)
	opt := c.Options()
	c1, c2 := goredis.NewClient(opt), goredis.NewClient(opt)
	a, b := redis.New(ctx, c1, redis.Options{}), redis.New(ctx, c2, redis.Options{})
	before := commandCount(ctx, c)
	latency(a, b, n, tokens, every)
	after := commandCount(ctx, c)
	a.Close(ctx)
	b.Close(ctx)
	c1.Close()
	c2.Close()
	total := 0
	var parts []string
	for name, v := range after {
		if d := v - before[name]; d > 0 && name != "info" && name != "config|resetstat" {
			total += d
			parts = append(parts, fmt.Sprintf("%s %d", name, d))
		}
	}
	slices.Sort(parts)
	fmt.Printf("%s of %d tokens (%v apart), read on another replica: %d Redis commands, %.3f a token (%s)\n",
		what, tokens, every, total, float64(total)/float64(tokens), strings.Join(parts, ", "))
}

func commandCount(ctx context.Context, c *goredis.Client) map[string]int {
	info, _ := c.Info(ctx, "commandstats").Result()
	out := map[string]int{}
	for _, line := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		out[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.Atoi(calls)
	}
	return out
}

// retained reports the memory Redis holds for an ended run of tokens kept
// for its readers, from MEMORY USAGE of its keys and used_memory before and
// after 1,000 of them.
func retained(ctx context.Context, c *goredis.Client, tokens int) {
	c.FlushDB(ctx)
	rs := redis.New(ctx, c, redis.Options{})
	defer rs.Close(ctx)
	used := func() int64 {
		info, _ := c.Info(ctx, "memory").Result()
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return 0
	}
	const n = 1000
	before := used()
	var last runnel.Run
	sources := []runnel.Source{}
	for i := range 5 {
		sources = append(sources, runnel.Source{Slug: "article-" + strconv.Itoa(i), Title: "An article of the corpus", URL: "/articles/article-" + strconv.Itoa(i),
			Snippet: strings.Repeat("a snippet of the passage ", 8), Tags: []string{"tag", "other"}})
	}
	for range n {
		run, _, _ := rs.Create(ctx, "", nil)
		run.Append(ctx, runnel.Event{Type: runnel.EventQuery, Query: "what is a typical question?"})
		run.Append(ctx, runnel.Event{Type: runnel.EventTags, Tags: []string{"tag", "other"}})
		run.Append(ctx, runnel.Event{Type: runnel.EventTitles, Titles: []string{"An article of the corpus"}})
		run.Append(ctx, runnel.Event{Type: runnel.EventSources, Sources: sources})
		for range tokens {
			run.Append(ctx, runnel.Event{Type: runnel.EventToken, Token: "token "})
		}
		run.Append(ctx, runnel.Event{Type: runnel.EventDone, Done: &runnel.Done{FinishReason: "stop"}})
		last = run
	}
	// Wait for the last to be flushed.
	for {
		_, _, err := last.Read(ctx, tokens+4, nil)
		if errors.Is(err, io.EOF) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := used()
	var usage int64
	for _, k := range []string{"run:", "log:"} {
		v, _ := c.MemoryUsage(ctx, redis.DefaultPrefix+k+last.ID(), 0).Result()
		usage += v
	}
	fmt.Printf("an ended run of %d tokens and 5 sources kept in Redis: %d bytes by MEMORY USAGE of its keys; %d bytes each by used_memory over %d runs\n",
		tokens, usage, (after-before)/n, n)
}
