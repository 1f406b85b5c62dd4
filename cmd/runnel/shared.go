package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/redis"
)

// sharedRuns say where the replicas of a deployment share their runs.
type sharedRuns struct {
	url, prefix string
	lease       time.Duration
	fallback    bool

	closeRuns func(context.Context) error // set by runs when there is a Redis
}

func (sr *sharedRuns) bind(c *config) {
	c.String(&sr.url, "redis", "RUNNEL_REDIS_URL", "",
		"keep answers in the Redis at this `URL` (redis://[:password@]host:port/db, rediss:// for TLS), so that every replica can resume and cancel every answer; empty keeps them in this process")
	c.String(&sr.prefix, "redis-prefix", "RUNNEL_REDIS_PREFIX", redis.DefaultPrefix, "begin every Redis key and channel with this `prefix`, so that deployments can share a Redis")
	c.Duration(&sr.lease, "run-lease", "RUNNEL_RUN_LEASE", redis.DefaultLease,
		"with -redis, how long a replica's answers outlive it: readers elsewhere get a retryable error about this long after it dies")
	c.Bool(&sr.fallback, "redis-fallback", "RUNNEL_REDIS_FALLBACK", true,
		"with -redis, answer new questions from this process's memory while Redis cannot be reached (they cannot be resumed elsewhere); false refuses them with 503")
}

// runs returns the run logs the settings describe: in Redis with -redis
// (and, unless -redis-fallback=false, in memory while Redis is away), else
// in memory.
func (ss *serverSettings) runs(logger *slog.Logger) (runnel.Runs, error) {
	sr := &ss.shared
	local := ss.memoryRuns()
	if sr.url == "" {
		return local, nil
	}
	opt, err := goredis.ParseURL(sr.url)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if sr.lease <= 0 {
		return nil, errors.New("the run lease must be above 0")
	}
	goredis.SetLogger(redisLog{logger})
	c := goredis.NewClient(opt)
	rs := redis.New(context.Background(), c, redis.Options{
		Linger:      ss.linger,
		Retention:   ss.retention,
		MaxBytes:    int64(ss.retentionMB) << 20,
		MaxRuns:     ss.retentionRuns,
		Lease:       sr.lease,
		MaxDuration: ss.maxDur,
		Prefix:      sr.prefix,
		Logger:      logger,
	})
	sr.closeRuns = func(ctx context.Context) error {
		err := rs.Close(ctx)
		c.Close()
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rs.Ping(ctx); err != nil {
		logger.Warn("redis cannot be reached; answers are kept in this process until it is back", "addr", opt.Addr, "err", err)
	} else {
		logger.Info("answers kept in redis", "addr", opt.Addr, "db", opt.DB, "prefix", sr.prefix)
	}
	if !sr.fallback {
		return rs, nil
	}
	return &fallbackRuns{shared: rs, local: local, logger: logger}, nil
}

// fallbackRuns keeps new runs in Redis, and in this process's memory while
// Redis cannot be reached: an answer then streams to the reader who asked,
// and can be resumed only on this replica. Runs are found in either.
type fallbackRuns struct {
	shared runnel.Runs
	local  runnel.Runs
	logger *slog.Logger
	away   atomic.Bool // the last Create fell back
}

func (f *fallbackRuns) Create(ctx context.Context, key string, stop context.CancelCauseFunc) (runnel.Run, bool, error) {
	run, created, err := f.shared.Create(ctx, key, stop)
	if runnel.ErrorCode(err) != runnel.EUNAVAILABLE {
		if err == nil && f.away.Swap(false) {
			f.logger.Info("redis is back; new answers are kept there again")
		}
		return run, created, err
	}
	if !f.away.Swap(true) {
		f.logger.Warn("redis cannot be reached; new answers are kept in this process", "err", err)
	}
	return f.local.Create(ctx, key, stop)
}

func (f *fallbackRuns) Get(ctx context.Context, id string) (runnel.Run, error) {
	if run, err := f.local.Get(ctx, id); err == nil {
		return run, nil
	}
	return f.shared.Get(ctx, id)
}

// redisLog passes the Redis client's own messages (a failed dial, a
// reconnect) to the log at debug level: what matters reaches the log as
// runnel's warnings.
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
