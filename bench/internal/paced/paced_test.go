package paced

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
)

func TestGenerateTokens(t *testing.T) {
	var toks []string
	before := time.Now().UnixNano()
	done, err := Generator{Tokens: 5}.Generate(context.Background(), runnel.Prompt{}, func(s string) error {
		toks = append(toks, s)
		return nil
	})
	after := time.Now().UnixNano()
	if err != nil || done.FinishReason != runnel.FinishStop {
		t.Fatalf("Generate = %+v, %v", done, err)
	}
	if len(toks) != 5 {
		t.Fatalf("%d tokens, want 5", len(toks))
	}
	prev := int64(0)
	for _, tok := range toks {
		if !strings.HasPrefix(tok, "t=") || !strings.HasSuffix(tok, " ") {
			t.Fatalf("token %q is not t=<ns><space>", tok)
		}
		ns, ok := Parse([]byte(tok))
		if !ok || ns < before || ns > after || ns < prev {
			t.Fatalf("token %q: stamp %d, ok %v, want in [%d, %d] and not before %d", tok, ns, ok, before, after, prev)
		}
		prev = ns
	}
}

func TestGenerateStopsOnEmitError(t *testing.T) {
	boom := errors.New("client gone")
	calls := 0
	_, err := Generator{Tokens: 100}.Generate(context.Background(), runnel.Prompt{}, func(string) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls, want %v after 1", err, calls, boom)
	}
}

func TestGenerateStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	// An hour between tokens: only cancellation can end this call.
	_, err := Generator{Tokens: 3, Interval: time.Hour}.Generate(ctx, runnel.Prompt{}, func(string) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v after %d calls, want context.Canceled after 1", err, calls)
	}
	calls = 0
	_, err = Generator{Tokens: 3}.Generate(ctx, runnel.Prompt{}, func(string) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("already canceled: err %v after %d calls", err, calls)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in string
		ns int64
		ok bool
	}{
		{"t=1733090000123456789 ", 1733090000123456789, true},
		{"t=5", 5, true},
		{"t= ", 0, false},
		{"x=5 ", 0, false},
		{"t=99999999999999999999 ", 0, false},
		{"", 0, false},
	} {
		ns, ok := Parse([]byte(c.in))
		if ns != c.ns || ok != c.ok {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", c.in, ns, ok, c.ns, c.ok)
		}
	}
}
