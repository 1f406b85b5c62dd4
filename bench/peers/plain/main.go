// Command plain is the baseline of the load tests: a plain net/http handler
// for GET and POST /articles/stream that does no search and keeps no run
// log. It writes the event sequence of a runnel answer as NDJSON (query,
// tags [], titles [], sources [], -tokens paced tokens stamped with the time
// they were emitted, done), flushing after each event, so that the cost of
// runnel's own machinery shows against it.
//
//	go run ./bench/peers/plain -addr 127.0.0.1:18091 -tokens 200 -interval 10ms
//
// It serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/runnel/runnel/bench/internal/paced"
)

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:18091", "listen on `host:port`")
		tokens   = flag.Int("tokens", 200, "tokens in every answer")
		interval = flag.Duration("interval", 10*time.Millisecond, "pause between tokens; 0 for none")
	)
	flag.Parse()
	if flag.NArg() > 0 || *tokens < 0 || *interval < 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plain:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           handler(*tokens, *interval),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Printf("plain: serving on http://%s (pid %d)\n", ln.Addr(), os.Getpid())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "plain:", err)
		os.Exit(1)
	}
}

func handler(tokens int, interval time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	stream := func(w http.ResponseWriter, r *http.Request) {
		q, ok := question(r)
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid","message":"The question is empty."}}`+"\n")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Cache-Control", "no-cache, no-transform")
		h.Set("X-Accel-Buffering", "no")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		line := make([]byte, 0, 256)
		send := func(b []byte) error {
			if _, err := w.Write(b); err != nil {
				return err
			}
			return rc.Flush()
		}
		qj, _ := json.Marshal(q)
		line = append(append(append(line, `{"type":"query","data":`...), qj...), "}\n"...)
		for _, l := range [][]byte{line,
			[]byte(`{"type":"tags","data":[]}` + "\n"),
			[]byte(`{"type":"titles","data":[]}` + "\n"),
			[]byte(`{"type":"sources","data":[]}` + "\n"),
		} {
			if send(l) != nil {
				return
			}
		}
		err := paced.Run(r.Context(), tokens, interval, func(tok []byte) error {
			line = append(append(append(line[:0], `{"type":"token","data":"`...), tok...), "\"}\n"...)
			return send(line)
		})
		if err != nil {
			return // the client left
		}
		send([]byte(`{"type":"done","data":{"finish_reason":"stop"}}` + "\n"))
	}
	mux.HandleFunc("GET /articles/stream", stream)
	mux.HandleFunc("POST /articles/stream", stream)
	return mux
}

// question returns the question of a GET (?question=) or a POST (a JSON
// body {"question": "..."}), with its white space collapsed and a "?"
// added when it does not end in punctuation, as runnel's query event has
// it.
func question(r *http.Request) (string, bool) {
	q := r.URL.Query().Get("question")
	if r.Method == http.MethodPost {
		var body struct {
			Question string `json:"question"`
		}
		if json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body) != nil {
			return "", false
		}
		q = body.Question
	}
	q = strings.Join(strings.Fields(q), " ")
	if q == "" {
		return "", false
	}
	if !strings.ContainsRune(".?!", rune(q[len(q)-1])) {
		q += "?"
	}
	return q, true
}
