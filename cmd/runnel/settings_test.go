package main

import (
	"testing"
	"time"

	rhttp "github.com/runnel/runnel/http"
)

// TestWriteHoldSetting: --write-hold 0 turns the hold off, as it reads,
// though Server.WriteHold's zero value is the default.
func TestWriteHoldSetting(t *testing.T) {
	for _, c := range []struct{ flag, want time.Duration }{
		{rhttp.DefaultWriteHold, rhttp.DefaultWriteHold},
		{5 * time.Millisecond, 5 * time.Millisecond},
		{0, -1},
		{-time.Second, -1},
	} {
		if got := writeHold(c.flag); got != c.want {
			t.Errorf("--write-hold %v: Server.WriteHold %v, want %v", c.flag, got, c.want)
		}
	}
}
