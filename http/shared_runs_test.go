package http_test

import (
	"context"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/redis"
	"github.com/runnel/runnel/redis/redistest"
)

// sharedRuns returns runs, or with RUNNEL_TEST_RUNS=redis the same runs
// kept in a redis-server of the test's own, so that the stream tests run
// against the Redis log as well (make test runs them both ways). A test
// that set in-memory runs with a linger gets that linger in Redis too.
func sharedRuns(t testing.TB, runs runnel.Runs) runnel.Runs {
	t.Helper()
	if os.Getenv("RUNNEL_TEST_RUNS") != "redis" {
		return runs
	}
	mem, ok := runs.(*memory.Runs)
	if !ok {
		return runs
	}
	return redisRuns(t, mem.Linger())
}

// redisRuns returns runs kept in a redis-server of the test's own, closed
// when the test ends; the test is skipped where there is no redis-server.
func redisRuns(t testing.TB, linger time.Duration) *redis.Runs {
	t.Helper()
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	rs := redis.New(context.Background(), c, redis.Options{Linger: linger, Lease: time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rs.Close(ctx)
		c.Close()
	})
	return rs
}

// RUNNEL_TEST_PARK=goroutine parks the streams as RUNNEL_TEST_PARK=1 does,
// and keeps each in a goroutine of its own rather than driving it by
// events (drive.go).
func init() {
	if os.Getenv("RUNNEL_TEST_PARK") == "goroutine" {
		*rhttp.DriveParked = false
	}
}

// testParks reports whether testParking parks the streams: those of a
// server that Run does not serve then close their connection at the end,
// and say so (Connection: close).
func testParks() bool {
	park := os.Getenv("RUNNEL_TEST_PARK")
	return park == "1" || park == "goroutine"
}

// testParking makes s park its streams at their first wait with
// RUNNEL_TEST_PARK=1 (or goroutine), so that the stream tests run against
// parked streams as well (make test runs them every way). A test that set
// its own ParkAfter keeps it.
func testParking(s *rhttp.Server) {
	if testParks() && s.ParkAfter == 0 {
		s.ParkAfter = time.Nanosecond
	}
}

// leakOptions are the goroutine leak checks' options: those that exist
// before the test, and with RUNNEL_TEST_RUNS=redis those of the Redis runs
// too, which the test's cleanup closes after the check.
func leakOptions() []goleak.Option {
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	if os.Getenv("RUNNEL_TEST_RUNS") == "redis" {
		opts = append(opts,
			goleak.IgnoreAnyFunction("github.com/runnel/runnel/redis.(*Runs).keep"),
			goleak.IgnoreAnyFunction("github.com/runnel/runnel/redis/redistest.(*Server).start.func1"),
			goleak.IgnoreAnyFunction("github.com/runnel/runnel/redis.(*Runs).flush"),
			goleak.IgnoreAnyFunction("github.com/runnel/runnel/redis.(*Runs).listen"),
			goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*channel).initMsgChan.func1"),
			goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*channel).initHealthCheck.func1"),
			goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		)
	}
	return opts
}
