package http_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

func ExampleClient_Ask() {
	// A runnel server to ask; in real use, the address of one you run,
	// such as http://localhost:8080.
	store := newMemStore(testArticles...)
	srv := httptest.NewServer((&rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: words("A ", "WebSocket ", "is ", "full-duplex.")},
		Store:    store,
		Runs:     memory.New(memory.Options{}),
	}).Handler())
	defer srv.Close()

	c := rhttp.NewClient(srv.URL)
	err := c.Ask(context.Background(), "what is websocket", func(e runnel.Event) error {
		switch e.Type {
		case runnel.EventQuery:
			fmt.Println("query:", e.Query)
		case runnel.EventTitles:
			fmt.Println("titles:", e.Titles)
		case runnel.EventToken:
			fmt.Print(e.Token) // print the answer as it arrives
		case runnel.EventDone:
			fmt.Println("\nfinish:", e.Done.FinishReason)
		}
		return nil
	})
	var re *runnel.Error
	switch {
	case errors.As(err, &re):
		fmt.Println("runnel error:", re.Code, re.Message) // an HTTP error, an error event, or a truncated stream
	case err != nil:
		fmt.Println("error:", err)
	}
	// Output:
	// query: what is websocket?
	// titles: [WebSockets in practice Server-Sent Events]
	// A WebSocket is full-duplex.
	// finish: stop
}
