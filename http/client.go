package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/runnel/runnel"
)

// Client asks a runnel server over HTTP.
type Client struct {
	// URL is the server's base URL, such as "http://localhost:8080".
	URL string
	// HTTPClient sends the requests; nil means http.DefaultClient. Give it
	// no Timeout: a timeout there cuts long answers. Bound an answer with
	// the context passed to Ask instead.
	HTTPClient *http.Client
	// MaxLine is the longest protocol line accepted; 0 means DefaultMaxLine.
	MaxLine int
}

// NewClient returns a Client for the server at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/")}
}

// Ask asks the server question and calls fn with each event of the answer,
// in order, as it arrives: query, tags, titles, sources, tokens, done. Ping
// events and event types this client does not know are skipped.
//
// Ask returns nil after the done event. It returns the server's error as a
// *runnel.Error, whether the server refused the question with an HTTP
// status or ended the stream with an error event. A stream that ends without
// done or error returns a *runnel.Error with code ETRUNCATED, never nil. If
// fn returns an error, Ask closes the stream (the server stops generating)
// and returns that error.
func (c *Client) Ask(ctx context.Context, question string, fn func(runnel.Event) error) error {
	body, err := json.Marshal(map[string]string{"question": question})
	if err != nil {
		return fmt.Errorf("runnel: encode question: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/articles/stream", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("runnel: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("runnel: ask: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/x-ndjson" {
		return &runnel.Error{Code: runnel.EMALFORMED, Message: fmt.Sprintf("The server sent %q, not an NDJSON stream.", mt)}
	}
	return Read(ctx, resp.Body, c.MaxLine, fn)
}

// Read reads a protocol v1 stream from r and calls fn with each event, as
// Client.Ask does once the response has begun. It is exported for readers of
// streams that did not come through Client, such as a saved transcript.
func Read(ctx context.Context, r io.Reader, maxLine int, fn func(runnel.Event) error) error {
	dec := NewReader(r, maxLine)
	for {
		e, err := dec.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var re *runnel.Error
			if errors.As(err, &re) {
				return re
			}
			msg := "The stream ended before the answer was complete."
			if !errors.Is(err, io.EOF) {
				msg = fmt.Sprintf("The connection broke before the answer was complete (%v).", err)
			}
			return &runnel.Error{Code: runnel.ETRUNCATED, Message: msg, Retryable: true}
		}
		switch e.Type {
		case runnel.EventPing:
			continue
		case runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources,
			runnel.EventToken, runnel.EventDone:
		case runnel.EventError:
			if err := fn(e); err != nil {
				return err
			}
			return e.Err
		default:
			continue // a newer server's event type
		}
		if err := fn(e); err != nil {
			return err
		}
		if e.Type == runnel.EventDone {
			return nil
		}
	}
}
