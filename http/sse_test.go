package http_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

// sseStream is a stream as runnel writes it, with the variations the
// standard allows: CRLF and CR line ends, a field without a space after the
// colon, comments, a data field split over lines, an event without an id,
// and an unknown event type.
const sseStream = "retry: 1000\n\n" +
	"event: query\nid: R.0\ndata: \"what is sse?\"\n\n" +
	": ping\n\n" +
	"event: tags\r\nid: R.1\r\ndata: [\"sse\",\r\ndata: \"streaming\"]\r\n\r\n" +
	"event:titles\rid:R.2\rdata:[\"Server-Sent Events\"]\r\r" +
	"event: future\nid: R.3\ndata: {\"x\":1}\n\n" +
	"event: token\nid: R.4\ndata: \"caf\xc3\xa9 \"\n\n" +
	"event: error\ndata: {\"code\":\"timeout\",\"message\":\"m\",\"retryable\":true}\n\n" +
	"event: done\nid: R.5\ndata: {\"finish_reason\":\"stop\"}\n\n"

func readSSE(r io.Reader, max int) ([]runnel.Event, *rhttp.SSEReader, error) {
	d := rhttp.NewSSEReader(r, max)
	var out []runnel.Event
	for {
		e, err := d.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, d, err
		}
		out = append(out, e)
	}
}

func TestSSEReader(t *testing.T) {
	got, d, err := readSSE(strings.NewReader(sseStream), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ runnel.EventType
		seq int
	}{{"query", 0}, {"tags", 1}, {"titles", 2}, {"future", 3}, {"token", 4}, {"error", -1}, {"done", 5}}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %d", types(got), len(want))
	}
	for i, w := range want {
		if got[i].Type != w.typ || got[i].Seq != w.seq {
			t.Errorf("event %d = %s numbered %d, want %s numbered %d", i, got[i].Type, got[i].Seq, w.typ, w.seq)
		}
	}
	if got[0].Query != "what is sse?" || !slices.Equal(got[1].Tags, []string{"sse", "streaming"}) ||
		got[2].Titles[0] != "Server-Sent Events" || got[4].Token != "café " || got[4].Run != "R" || got[5].Err.Code != runnel.ETIMEOUT {
		t.Errorf("data: %+v", got)
	}
	if d.Retry() != 1000 || d.LastEventID() != "R.5" {
		t.Errorf("retry %d, last id %q", d.Retry(), d.LastEventID())
	}
}

// TestSSEReaderSplits: any split of the bytes gives the same events.
func TestSSEReaderSplits(t *testing.T) {
	whole, _, _ := readSSE(strings.NewReader(sseStream), 0)
	for i := 1; i < len(sseStream); i++ {
		r := io.MultiReader(iotest.OneByteReader(strings.NewReader(sseStream[:i])), strings.NewReader(sseStream[i:]))
		got, _, err := readSSE(r, 0)
		if err != nil || !slices.EqualFunc(got, whole, func(a, b runnel.Event) bool { return a.Type == b.Type && a.Seq == b.Seq && a.Token == b.Token }) {
			t.Fatalf("split at %d: %v, %v; want %v", i, types(got), err, types(whole))
		}
	}
}

func TestSSEReaderEnds(t *testing.T) {
	// An event without its blank line at the end is dropped, as the
	// standard says: the client sees the stream as truncated.
	got, _, err := readSSE(strings.NewReader("event: token\nid: R.0\ndata: \"a\"\n\nevent: done\nid: R.1\ndata: {}"), 0)
	if err != nil || len(got) != 1 {
		t.Errorf("incomplete last event: %v, %v; want the token alone", types(got), err)
	}
	_, _, err = readSSE(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	if runnel.ErrorCode(err) != runnel.ELINETOOLONG {
		t.Errorf("long line: %v, want line_too_long", err)
	}
	_, _, err = readSSE(strings.NewReader("event: token\ndata: not json\n\n"), 0)
	if runnel.ErrorCode(err) != runnel.EMALFORMED {
		t.Errorf("bad data: %v, want malformed", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte(sseStream), 7)
	f.Add([]byte("data: x\r\n\r\n"), 3)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole, _, werr := readSSE(bytes.NewReader(data), 1<<10)
		if split <= 0 || split >= len(data) {
			return
		}
		r := io.MultiReader(iotest.OneByteReader(bytes.NewReader(data[:split])), bytes.NewReader(data[split:]))
		got, _, err := readSSE(r, 1<<10)
		if (err == nil) != (werr == nil) || len(got) != len(whole) {
			t.Fatalf("split at %d: %v (%v), whole: %v (%v)", split, types(got), err, types(whole), werr)
		}
	})
}
