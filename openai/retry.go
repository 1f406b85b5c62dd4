package openai

import (
	"context"
	"math/rand/v2"
	"time"
)

const (
	// maxBackoff caps the delay between two attempts without Retry-After.
	maxBackoff = 8 * time.Second
	// maxRetryAfter is the longest Retry-After honoured; beyond it the
	// failure is returned at once, for the client to decide.
	maxRetryAfter = 30 * time.Second
)

// jitter returns a random duration between d/2 and d, so that streams
// refused together do not come back together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends, and returns ctx's error if it ended.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
