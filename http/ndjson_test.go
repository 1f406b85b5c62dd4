package http_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

const transcript = `{"type":"query","data":"what is websocket?"}
{"type":"tags","data":["web-socket","streaming"]}
{"type":"titles","data":["WebSockets in practice"]}
{"type":"sources","data":[{"slug":"websocket","title":"WebSockets in practice","url":"/articles/websocket","tags":["web-socket"],"score":1.5,"snippet":"A WebSocket…"}]}
{"type":"ping"}
{"type":"token","data":"Ein "}
{"type":"token","data":"Füße-Gruß "}
{"type":"future","data":{"x":1}}
{"type":"token","data":"日本語 😀\n"}
{"type":"done","data":{"finish_reason":"stop","id":"abc"}}
`

// readAll reads every event with NewReader.
func readAll(r io.Reader, max int) ([]runnel.Event, error) {
	dec := rhttp.NewReader(r, max)
	var out []runnel.Event
	for {
		e, err := dec.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func TestReaderLines(t *testing.T) {
	tests := []struct {
		name  string
		input string
		types []runnel.EventType
	}{
		{"final line without newline", `{"type":"query","data":"q"}` + "\n" + `{"type":"done"}`, []runnel.EventType{"query", "done"}},
		{"CRLF and blank lines", "\r\n{\"type\":\"ping\"}\r\n\r\n\n{\"type\":\"done\"}\r\n", []runnel.EventType{"ping", "done"}},
		{"trailing white space", `{"type":"done"}` + "\n  \n", []runnel.EventType{"done"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(strings.NewReader(tt.input), 0)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !reflect.DeepEqual(types(got), tt.types) && !(len(got) == 0 && len(tt.types) == 0) {
				t.Errorf("types = %v, want %v", types(got), tt.types)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		max   int
		code  string
	}{
		{"line too long", `{"type":"token","data":"` + strings.Repeat("a", 100) + `"}` + "\n", 64, runnel.ELINETOOLONG},
		{"final line too long", `{"type":"token","data":"` + strings.Repeat("a", 100) + `"}`, 64, runnel.ELINETOOLONG},
		{"not JSON", "hello\n", 0, runnel.EMALFORMED},
		{"no type", `{"data":"x"}` + "\n", 0, runnel.EMALFORMED},
		{"wrong data shape", `{"type":"tags","data":"x"}` + "\n", 0, runnel.EMALFORMED},
		{"error without code", `{"type":"error","data":{}}` + "\n", 0, runnel.EMALFORMED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(strings.NewReader(tt.input), tt.max)
			var re *runnel.Error
			if !errors.As(err, &re) || re.Code != tt.code {
				t.Errorf("read = %v, want code %s", err, tt.code)
			}
		})
	}
	t.Run("line at the limit", func(t *testing.T) {
		line := `{"type":"token","data":"` + strings.Repeat("a", 40) + `"}`
		got, err := readAll(strings.NewReader(line+"\n"), len(line))
		if err != nil || len(got) != 1 {
			t.Errorf("read = %v, %v; want one event", got, err)
		}
	})
}

// TestReaderSplits feeds the transcript split at every byte position, and
// one byte at a time, and expects the same events each time.
func TestReaderSplits(t *testing.T) {
	want, err := readAll(strings.NewReader(transcript), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 10 {
		t.Fatalf("transcript has %d events, want 10", len(want))
	}
	for i := range len(transcript) {
		r := io.MultiReader(strings.NewReader(transcript[:i]), strings.NewReader(transcript[i:]))
		got, err := readAll(r, 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d: got %v, %v", i, types(got), err)
		}
	}
	got, err := readAll(iotest.OneByteReader(strings.NewReader(transcript)), 0)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("one byte a read: got %v, %v", types(got), err)
	}
	if got[6].Token != "Füße-Gruß " || got[8].Token != "日本語 😀\n" {
		t.Errorf("multi-byte tokens = %q, %q", got[6].Token, got[8].Token)
	}
}

// FuzzReader checks that any split of any input gives the same events, or
// the same error, as reading it whole, and that re-encoding the events
// reads back to the same events.
func FuzzReader(f *testing.F) {
	f.Add([]byte(transcript), 7)
	f.Add([]byte(`{"type":"token","data":"\u00e9"}`), 1)
	f.Add([]byte("{\"type\":\"done\"}\r\n\n"), 3)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole, errWhole := readAll(bytes.NewReader(data), 256)
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		parts, errParts := readAll(io.MultiReader(bytes.NewReader(data[:split]), iotest.OneByteReader(bytes.NewReader(data[split:]))), 256)
		if !reflect.DeepEqual(whole, parts) || (errWhole == nil) != (errParts == nil) {
			t.Fatalf("whole: %v, %v; split at %d: %v, %v", whole, errWhole, split, parts, errParts)
		}
		if errWhole != nil {
			return
		}
		var buf []byte
		for _, e := range whole {
			b, err := e.AppendJSON(buf)
			if err != nil {
				t.Fatalf("AppendJSON(%+v): %v", e, err)
			}
			buf = append(b, '\n')
		}
		again, err := readAll(bytes.NewReader(buf), 1<<20)
		if err != nil || len(again) != len(whole) {
			t.Fatalf("re-encoded %q: %v, %v", buf, types(again), err)
		}
	})
}

func TestClientStreamEndings(t *testing.T) {
	tests := []struct {
		name, body, contentType string
		status                  int
		code                    string // "" means success
		tokens                  int
	}{
		{"complete", transcript, "application/x-ndjson", 200, "", 3},
		{"truncated", strings.Join(strings.Split(transcript, "\n")[:7], "\n") + "\n", "application/x-ndjson", 200, runnel.ETRUNCATED, 2},
		{"truncated mid-line", transcript[:len(transcript)-20], "application/x-ndjson", 200, runnel.ETRUNCATED, 3},
		{"empty", "", "application/x-ndjson", 200, runnel.ETRUNCATED, 0},
		{"error event", `{"type":"query","data":"q"}` + "\n" + `{"type":"error","data":{"code":"upstream","message":"m","retryable":true}}` + "\n", "application/x-ndjson", 200, runnel.EUPSTREAM, 0},
		{"not NDJSON", "<html>", "text/html", 200, runnel.EMALFORMED, 0},
		{"HTTP error without JSON", "busy", "text/plain", 503, runnel.EUNAVAILABLE, 0},
		{"rate limited", "slow down", "text/plain", 429, runnel.ERATELIMITED, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			tokens := 0
			err := rhttp.NewClient(ts.URL).Ask(context.Background(), "q", func(e runnel.Event) error {
				if e.Type == runnel.EventPing || e.Type == "future" {
					t.Errorf("client passed on a %s event", e.Type)
				}
				if e.Type == runnel.EventToken {
					tokens++
				}
				return nil
			})
			if tt.code == "" && err != nil {
				t.Fatalf("Ask = %v, want nil", err)
			}
			if tt.code != "" {
				var re *runnel.Error
				if !errors.As(err, &re) || re.Code != tt.code {
					t.Fatalf("Ask = %v, want code %s", err, tt.code)
				}
			}
			if tokens != tt.tokens {
				t.Errorf("tokens = %d, want %d", tokens, tt.tokens)
			}
		})
	}
}

func TestClientCallbackErrorStops(t *testing.T) {
	_, ts := newServer(t, words("a ", "b ", "c "))
	stop := errors.New("enough")
	n := 0
	err := rhttp.NewClient(ts.URL).Ask(t.Context(), "websocket", func(e runnel.Event) error {
		n++
		if e.Type == runnel.EventTags {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("Ask = %v after %d events, want %v after 2", err, n, stop)
	}
}
