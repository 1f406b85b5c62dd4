package web

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// renderer counts its renders; each returns "<p>" + the Markdown.
type renderer struct{ n atomic.Int32 }

func (r *renderer) render(md string) ([]byte, error) {
	r.n.Add(1)
	return []byte("<p>" + md), nil
}

func (c *bodyCache) entries() (n, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.size
}

func TestBodyCache(t *testing.T) {
	ctx := context.Background()
	get := func(t *testing.T, c *bodyCache, r *renderer, slug, md string) string {
		t.Helper()
		html, err := c.get(ctx, slug, md, r.render)
		if err != nil || string(html) != "<p>"+md {
			t.Errorf("get(%q, %.20q) = %.20q, %v", slug, md, html, err) // not Fatal: some calls are in goroutines
		}
		return string(html)
	}

	t.Run("rendered once per change", func(t *testing.T) {
		c, r := newBodyCache(1<<20, 4), &renderer{}
		get(t, c, r, "a", "one")
		get(t, c, r, "a", "one")
		if n := r.n.Load(); n != 1 {
			t.Errorf("%d renders of an unchanged article, want 1", n)
		}
		get(t, c, r, "a", "two")
		get(t, c, r, "a", "two")
		if n := r.n.Load(); n != 2 {
			t.Errorf("%d renders after one change, want 2", n)
		}
		if n, _ := c.entries(); n != 1 {
			t.Errorf("%d entries, want 1: the changed article's old page goes", n)
		}
	})

	t.Run("bounded by bytes", func(t *testing.T) {
		page := strings.Repeat("x", 1000)
		c, r := newBodyCache(3*(1000+3+1+entryOverhead), 4), &renderer{}
		for _, slug := range []string{"a", "b", "c", "a", "d"} { // a is used again before d comes
			get(t, c, r, slug, page)
		}
		if n, size := c.entries(); n != 3 || size > c.max {
			t.Errorf("%d entries of %d bytes, want 3 within %d", n, size, c.max)
		}
		before := r.n.Load()
		get(t, c, r, "a", page)
		get(t, c, r, "b", page) // the least recently used: dropped for d
		if n := r.n.Load() - before; n != 1 {
			t.Errorf("%d renders for a and b, want 1 (b only)", n)
		}
		get(t, c, r, "big", strings.Repeat("x", c.max))
		get(t, c, r, "big", strings.Repeat("x", c.max))
		if n, _ := c.entries(); n != 3 {
			t.Errorf("%d entries after a page larger than the cache, want the 3 it had", n)
		}
	})

	t.Run("errors are kept", func(t *testing.T) {
		c := newBodyCache(1<<20, 4)
		var n int
		fail := func(string) ([]byte, error) { n++; return nil, errors.New("too large") }
		for range 2 {
			if _, err := c.get(ctx, "a", "x", fail); err == nil {
				t.Fatal("get = nil error, want the render's")
			}
		}
		if n != 1 {
			t.Errorf("%d renders, want 1", n)
		}
	})

	t.Run("transient errors are not kept", func(t *testing.T) {
		c := newBodyCache(1<<20, 4)
		var n int
		fail := func(string) ([]byte, error) {
			n++
			return nil, fmt.Errorf("links: %w", errTransient{errors.New("store down")})
		}
		for range 2 {
			if _, err := c.get(ctx, "a", "x", fail); err == nil || !strings.Contains(err.Error(), "store down") {
				t.Fatalf("get = %v, want the render's error", err)
			}
		}
		if n != 2 {
			t.Errorf("%d renders, want 2: a failed lookup is tried again", n)
		}
		if n, _ := c.entries(); n != 0 {
			t.Errorf("%d entries, want none", n)
		}
	})

	t.Run("one render for many requests", func(t *testing.T) {
		c, r := newBodyCache(1<<20, 4), &renderer{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { get(t, c, r, "a", "same") })
		}
		wg.Wait()
		if n := r.n.Load(); n != 1 {
			t.Errorf("%d renders, want 1", n)
		}
	})

	t.Run("a waiting request can leave", func(t *testing.T) {
		c := newBodyCache(1<<20, 4)
		started, release := make(chan struct{}), make(chan struct{})
		done := make(chan error)
		go func() {
			_, err := c.get(ctx, "a", "x", func(string) ([]byte, error) {
				close(started)
				<-release
				return []byte("<p>x"), nil
			})
			done <- err
		}()
		<-started
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.get(gone, "a", "x", nil); !errors.Is(err, context.Canceled) {
			t.Errorf("get while another renders, with its context canceled = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Errorf("the rendering request got %v", err)
		}
	})

	t.Run("renders take turns", func(t *testing.T) {
		c, r := newBodyCache(1<<20, 1), &renderer{}
		started, release := make(chan struct{}), make(chan struct{})
		go c.get(ctx, "a", "x", func(md string) ([]byte, error) {
			close(started)
			<-release
			return r.render(md)
		})
		<-started
		// The only turn is taken: a request that leaves meanwhile gets its
		// context's error, and leaves nothing behind.
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.get(gone, "b", "y", r.render); !errors.Is(err, context.Canceled) {
			t.Errorf("get without a turn, its context canceled = %v, want context.Canceled", err)
		}
		got := make(chan string)
		go func() { got <- get(t, c, r, "b", "y") }()
		close(release)
		if html := <-got; html != "<p>y" {
			t.Errorf("get after a turn came = %q", html)
		}
		if n := r.n.Load(); n != 2 {
			t.Errorf("%d renders, want 2", n)
		}
	})

	t.Run("a render that panics", func(t *testing.T) {
		c, r := newBodyCache(1<<20, 4), &renderer{}
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the panic did not reach the request that rendered")
				}
			}()
			c.get(ctx, "a", "x", func(string) ([]byte, error) { panic("bug") })
		}()
		get(t, c, r, "a", "x") // rendered again, not the failure kept
	})
}
