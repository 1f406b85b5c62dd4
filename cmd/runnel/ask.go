package main

import (
	"cmp"
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
		apiKey      string
	)
	sf.bind(c)
	gs.bind(c)
	c.String(&server, "server", "RUNNEL_SERVER", "", "ask the runnel server at this `URL` instead of answering locally")
	c.Bool(&asJSON, "json", "RUNNEL_JSON", false, "print the raw protocol events, one JSON object a line")
	c.String(&transport, "transport", "RUNNEL_TRANSPORT", "ndjson", "with -server, read the answer over ndjson, sse or websocket; a dropped connection is resumed either way")
	// The key's default is applied after parsing, so -h never prints it.
	c.fs.StringVar(&apiKey, "api-key", "", "with -server, the server's API `key`, for a server that needs one (env RUNNEL_API_KEY, which keeps it out of the process list)")
	c.Int(&maxQuestion, "max-question", "RUNNEL_MAX_QUESTION", runnel.DefaultMaxQuestion, "longest question accepted locally, in `bytes`")
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage: runnel ask [flags] QUESTION...\n\n"+
			"Print the tags and sources, then the answer as it arrives. The answer comes from the\n"+
			"local articles (see -db, -articles) or, with -server, from a runnel server. A server\n"+
			"that needs an API key gets it from -api-key or RUNNEL_API_KEY. The exit status is 1\n"+
			"if the answer failed, the stream broke off, or the server refused the key.\n\nFlags:\n")
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
	// A key read from a file or a secret store often ends in a newline,
	// which no header may carry.
	apiKey = strings.TrimSpace(cmp.Or(apiKey, c.env("RUNNEL_API_KEY")))
	p := &printer{w: stdout, json: asJSON, base: strings.TrimRight(server, "/")}
	if server != "" {
		client := rhttp.NewClient(server)
		client.Transport = tr
		client.APIKey = apiKey
		err = client.Ask(ctx, question, p.print)
	} else {
		err = askLocal(ctx, sf, gs, question, maxQuestion, stderr, p.print)
	}
	p.end()
	if err != nil {
		fmt.Fprintln(stderr, "runnel ask:", err)
		if runnel.ErrorCode(err) == runnel.EUNAUTHORIZED {
			fmt.Fprintln(stderr, "runnel ask:", keyHint(apiKey))
		}
		return exitError{code: 1}
	}
	return nil
}

// keyHint tells what to do about a server that refused the key, or the lack
// of one; it never repeats the key.
func keyHint(apiKey string) string {
	if apiKey == "" {
		return "the server needs an API key: pass it with --api-key, or set RUNNEL_API_KEY"
	}
	return "the server refused the API key given with --api-key or RUNNEL_API_KEY"
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
