package main

import (
	"testing"
	"time"

	rhttp "github.com/runnel/runnel/http"
)

// TestOffWhenZero: --write-hold 0 turns the hold off, as it reads, and
// --park-idle 0 idle parking, though the Server fields' zero value is
// the default.
func TestOffWhenZero(t *testing.T) {
	for _, c := range []struct{ flag, want time.Duration }{
		{rhttp.DefaultWriteHold, rhttp.DefaultWriteHold},
		{5 * time.Millisecond, 5 * time.Millisecond},
		{0, -1},
		{-time.Second, -1},
	} {
		if got := offWhenZero(c.flag); got != c.want {
			t.Errorf("flag %v: field %v, want %v", c.flag, got, c.want)
		}
	}
}
