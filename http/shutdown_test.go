package http_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

// A stream whose reader stopped reading holds its write until the write
// timeout; shutdown does not wait for that. When the grace runs out the
// connections still open are closed, and Run returns nil: the shutdown is
// complete, on time.
func TestShutdownCutsStreamsAtTheGrace(t *testing.T) {
	const flood = 16 << 20 // far more than any socket buffers hold
	flooded := make(chan struct{}, 2)
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		tok := strings.Repeat("x", 16<<10)
		for sent := 0; ; sent += len(tok) {
			if sent == flood {
				flooded <- struct{}{}
			}
			if err := emit(tok); err != nil {
				return runnel.Done{}, err
			}
		}
	})
	store := newMemStore(testArticles...)
	s := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: gen}, Store: store,
		Runs:            memory.New(memory.Options{}),
		WriteTimeout:    10 * time.Minute, // what would hold the process without the cut
		ShutdownTimeout: 200 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	ran := make(chan error, 1)
	testParking(s)
	go func() { ran <- s.Run(ctx, ln) }()

	// An HTTP reader and a WebSocket reader that never read, with small
	// receive buffers.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	io.WriteString(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	ws, _, err := websocket.Dial(t.Context(), "ws://"+ln.Addr().String()+"/runs/ws?question=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	// Once both generators have produced what no buffer holds, both
	// streams are stuck in a write.
	<-flooded
	<-flooded
	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(time.Minute): // well under the write timeout
		t.Fatal("Run did not return: shutdown waited for a blocked write")
	}
}
