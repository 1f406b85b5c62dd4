package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

func runAsk(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c := newConfig("ask", env)
	var (
		sf          storeFlags
		gs          genSettings
		server      string
		asJSON      bool
		maxQuestion int
		transport   string
	)
	sf.bind(c)
	gs.bind(c)
	c.String(&server, "server", "RUNNEL_SERVER", "", "ask the runnel server at this `URL` instead of answering locally")
	c.Bool(&asJSON, "json", "RUNNEL_JSON", false, "print the raw protocol events, one JSON object a line")
	c.String(&transport, "transport", "RUNNEL_TRANSPORT", "ndjson", "with -server, read the answer over ndjson, sse or websocket; a dropped connection is resumed either way")
	c.Int(&maxQuestion, "max-question", "RUNNEL_MAX_QUESTION", runnel.DefaultMaxQuestion, "longest question accepted locally, in `bytes`")
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage: runnel ask [flags] QUESTION...\n\n"+
			"Print the tags and sources, then the answer as it arrives. The answer comes from the\n"+
			"local articles (see -db, -articles) or, with -server, from a runnel server. The exit\n"+
			"status is 1 if the answer failed or the stream broke off.\n\nFlags:\n")
		c.fs.PrintDefaults()
	}
	if err := parse(c.fs, args, stderr); err != nil {
		return err
	}
	if err := c.err(); err != nil {
		return err
	}
	question := strings.Join(c.fs.Args(), " ")
	if strings.TrimSpace(question) == "" {
		fmt.Fprintln(stderr, "runnel ask: no QUESTION given")
		c.fs.Usage()
		return errUsage
	}
	tr, err := rhttp.ParseTransport(transport)
	if err != nil {
		fmt.Fprintf(stderr, "runnel ask: -transport: %v\n", err)
		return errUsage
	}
	p := &printer{w: stdout, json: asJSON, base: strings.TrimRight(server, "/")}
	if server != "" {
		client := rhttp.NewClient(server)
		client.Transport = tr
		err = client.Ask(ctx, question, p.print)
	} else {
		err = askLocal(ctx, sf, gs, question, maxQuestion, stderr, p.print)
	}
	p.end()
	if err != nil {
		fmt.Fprintln(stderr, "runnel ask:", err)
		return exitError{code: 1}
	}
	return nil
}

// askLocal answers from the local articles through the same pipeline the
// server runs, so the events are the ones a client of the server would see.
func askLocal(ctx context.Context, sf storeFlags, gs genSettings, question string, maxQuestion int, stderr io.Writer, fn func(runnel.Event) error) error {
	q, err := runnel.ParseQuestion(question, maxQuestion)
	if err != nil {
		return err
	}
	gen, err := gs.generator()
	if err != nil {
		return err
	}
	store, closeStore, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	a := &runnel.Answerer{Searcher: store, Generator: gen, Passages: gs.passages()}
	if err := a.Answer(ctx, q, fn); err != nil {
		e := runnel.AsError(err)
		fn(runnel.Event{Type: runnel.EventError, Err: e})
		return e
	}
	return nil
}

// printer writes events for a person, or as raw JSON lines with -json.
type printer struct {
	w       io.Writer
	json    bool
	base    string // prefix for source URLs, the server's address
	answer  bool   // the answer has begun
	newline bool   // the last byte written was a newline
}

func (p *printer) print(e runnel.Event) error {
	if p.json {
		b, err := e.AppendJSON(nil)
		if err != nil {
			return err
		}
		_, err = p.w.Write(append(b, '\n'))
		return err
	}
	var err error
	switch e.Type {
	case runnel.EventTags:
		if len(e.Tags) > 0 {
			_, err = fmt.Fprintf(p.w, "Tags: %s\n", strings.Join(e.Tags, ", "))
		}
	case runnel.EventSources:
		if len(e.Sources) > 0 {
			fmt.Fprintln(p.w, "Sources:")
			for i, s := range e.Sources {
				_, err = fmt.Fprintf(p.w, "  %d. %s (%s)\n", i+1, s.Title, p.base+s.URL)
			}
		}
	case runnel.EventToken:
		if !p.answer {
			p.answer = true
			fmt.Fprintln(p.w)
		}
		_, err = io.WriteString(p.w, e.Token)
		p.newline = strings.HasSuffix(e.Token, "\n")
	}
	return err
}

// end finishes the answer's last line.
func (p *printer) end() {
	if !p.json && p.answer && !p.newline {
		fmt.Fprintln(p.w)
	}
}
