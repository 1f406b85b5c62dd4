package web

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
)

// bodyCache keeps the rendered bodies of article pages, up to max bytes in
// all, the least recently shown dropped first. An entry is the slug's and
// is good for the Markdown it was rendered from (compared by hash; the
// site adds the title and source, which the page depends on too), so an
// import that changes an article is shown at its next request, and its
// old page makes way. Requests for a page being rendered wait for that
// render instead of starting their own, and no more than cap(turns)
// renders run at once: rendering is all CPU, and the largest article may
// take a second and a hundred MB or more while it renders.
type bodyCache struct {
	max   int
	turns chan struct{} // one token a render

	mu    sync.Mutex
	size  int                   // bytes of the entries in lru
	lru   *list.List            // of *bodyEntry, most recently used first
	slugs map[string]*bodyEntry // the latest entry of each slug, done or not
}

type bodyEntry struct {
	slug string
	sum  [sha256.Size]byte // of the Markdown
	done chan struct{}     // closed once html and err are set
	html []byte
	err  error
	elem *list.Element // in lru; nil while rendering or once dropped
}

// entryOverhead is what an entry costs beyond its HTML and slug.
const entryOverhead = 200

// errNoTurn is the error of an entry whose request left before it could
// render it; the requests waiting for it try again.
var errNoTurn = errors.New("no turn to render")

// errRenderFailed is what requests waiting for a render that panicked get.
var errRenderFailed = errors.New("the page could not be rendered")

// errTransient wraps an error of a render that may not happen again (the
// store failed while the page looked up its links): the requests waiting
// for the render get it, and the next request renders again.
type errTransient struct{ err error }

func (e errTransient) Error() string { return e.err.Error() }
func (e errTransient) Unwrap() error { return e.err }

// newBodyCache returns a cache of maxBytes that renders up to renders
// pages at once.
func newBodyCache(maxBytes, renders int) *bodyCache {
	return &bodyCache{max: maxBytes, turns: make(chan struct{}, max(renders, 1)), lru: list.New(),
		slugs: map[string]*bodyEntry{}}
}

func (e *bodyEntry) cost() int { return len(e.html) + len(e.slug) + entryOverhead }

// get returns the HTML of the article with the slug and the Markdown md:
// from the cache, or from render, whose result (HTML or error) is kept. It
// returns ctx's error if ctx ends while it waits for its turn to render or
// for another request's render.
func (c *bodyCache) get(ctx context.Context, slug, md string, render func(string) ([]byte, error)) ([]byte, error) {
	sum := sha256.Sum256([]byte(md))
	for {
		c.mu.Lock()
		e, ok := c.slugs[slug]
		if !ok || e.sum != sum {
			break // with c.mu held
		}
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
		select {
		case <-e.done:
			if e.err != errNoTurn {
				return e.html, e.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e := &bodyEntry{slug: slug, sum: sum, done: make(chan struct{})}
	if old, ok := c.slugs[slug]; ok {
		c.drop(old)
	}
	c.slugs[slug] = e
	c.mu.Unlock()

	select {
	case c.turns <- struct{}{}:
	case <-ctx.Done():
		c.finish(e, nil, errNoTurn)
		return nil, ctx.Err()
	}
	defer func() { <-c.turns }()
	finished := false
	defer func() {
		if !finished { // render panicked: let the waiters go, keep nothing
			c.finish(e, nil, errRenderFailed)
		}
	}()
	html, err := render(md)
	finished = true
	c.finish(e, html, err)
	return html, err
}

// finish sets e's result, lets the requests waiting for it go and keeps
// it, unless the article changed meanwhile, the page is larger than the
// whole cache, or there is no page (errNoTurn, errRenderFailed).
func (c *bodyCache) finish(e *bodyEntry, html []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.html, e.err = html, err
	close(e.done)
	switch {
	case c.slugs[e.slug] != e:
		return
	case err == errNoTurn || err == errRenderFailed || errors.As(err, new(errTransient)) || e.cost() > c.max:
		delete(c.slugs, e.slug)
		return
	}
	e.elem = c.lru.PushFront(e)
	c.size += e.cost()
	for c.size > c.max {
		c.drop(c.lru.Back().Value.(*bodyEntry))
	}
}

// drop removes e from the cache. Requests waiting for it still get it.
func (c *bodyCache) drop(e *bodyEntry) {
	if e.elem != nil {
		c.lru.Remove(e.elem)
		c.size -= e.cost()
		e.elem = nil
	}
	if c.slugs[e.slug] == e {
		delete(c.slugs, e.slug)
	}
}
