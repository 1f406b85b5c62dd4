package openai

import "time"

// SetBackoff sets the delay before the first retry, so tests of retries
// need not wait half a second.
func SetBackoff(g *Generator, d time.Duration) { g.backoff = d }
