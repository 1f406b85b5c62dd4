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
			"Print the tags and the sources, numbered, then the answer as it arrives. The answer\n"+
			"comes from the local articles (see -db, -articles) or, with -server, from a runnel\n"+
			"server (http:// is assumed when the address has no scheme). A server that needs an\n"+
			"API key gets it from -api-key or RUNNEL_API_KEY. In a terminal the answer is wrapped\n"+
			"to its width, with bold and dim unless NO_COLOR is set; a pipe gets the text as is.\n"+
			"The exit status is 1 if the answer failed, the stream broke off, or the server refused\n"+
			"the key, and 130 after Ctrl-C.\n\nFlags:\n")
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
	p := newPrinter(stdout, asJSON, detectTerminal(stdout, c.env))
	if server != "" {
		server = serverURL(server)
		p.locate = func(s runnel.Source) string { return remoteURL(server, s.URL) }
		client := rhttp.NewClient(server)
		client.Transport = tr
		client.APIKey = apiKey
		err = client.Ask(ctx, question, p.print)
	} else {
		err = askLocal(ctx, sf, gs, question, maxQuestion, stderr, p)
	}
	p.end()
	if in, ok := interruption(ctx); ok && err != nil {
		return in // Ctrl-C: the person knows; no message
	}
	if err != nil {
		fmt.Fprintln(stderr, "runnel ask:", message("ask", err))
		if runnel.ErrorCode(err) == runnel.EUNAUTHORIZED {
			fmt.Fprintln(stderr, "runnel ask:", keyHint(apiKey))
		}
		return exitError{code: 1}
	}
	return nil
}

// serverURL returns the server's base URL: "localhost:8080" means
// http://localhost:8080, as it does to a browser's address bar.
func serverURL(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return strings.TrimRight(s, "/")
}

// remoteURL returns a source's full URL: the server sends a path unless it
// was given a base URL of its own.
func remoteURL(base, u string) string {
	if strings.Contains(u, "://") {
		return u
	}
	return base + u
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
// The sources are shown by the files they were imported from.
func askLocal(ctx context.Context, sf storeFlags, gs genSettings, question string, maxQuestion int, stderr io.Writer, p *printer) error {
	fn := p.print
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
	p.locate = func(s runnel.Source) string { return localPath(ctx, store, s.Slug) }
	a := &runnel.Answerer{Searcher: store, Generator: gen, Passages: gs.passages()}
	if err := a.Answer(ctx, q, fn); err != nil {
		e := runnel.AsError(err)
		fn(runnel.Event{Type: runnel.EventError, Err: e})
		return e
	}
	return nil
}

// localPath returns the file an article was imported from, or its slug
// for an article of the embedded collection or one whose file is unknown.
func localPath(ctx context.Context, store runnel.Store, slug string) string {
	a, err := store.Get(ctx, slug)
	if err != nil || a.Source == "" || strings.HasPrefix(a.Source, "embedded:") {
		return slug
	}
	return a.Source
}

// printer writes events for a person, or as raw JSON lines with -json.
type printer struct {
	w       io.Writer
	json    bool
	term    terminal
	locate  func(runnel.Source) string // where a source can be read: a URL or a file
	wrap    *wrapper                   // the answer, on a terminal
	answer  bool                       // the answer has begun
	newline bool                       // the last byte of the answer written was a newline
}

func newPrinter(w io.Writer, asJSON bool, t terminal) *printer {
	p := &printer{w: w, json: asJSON, term: t, locate: func(s runnel.Source) string { return s.URL }}
	if t.width > 0 || t.color {
		p.wrap = newWrapper(w, t)
	}
	return p
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
			fmt.Fprint(p.w, p.term.style(sgrDim, "Tags:"))
			w := newWrapper(p.w, terminal{width: p.term.width})
			w.col = len("Tags:")
			fmt.Fprintf(w, " %s\n", strings.Join(e.Tags, ", "))
			err = w.Flush()
		}
	case runnel.EventSources:
		if len(e.Sources) > 0 {
			fmt.Fprintln(p.w, p.term.style(sgrBold, "Sources:"))
			for i, s := range e.Sources {
				err = p.reference(i+1, s.Title, p.locate(s))
			}
		}
	case runnel.EventToken:
		if !p.answer {
			p.answer = true
			fmt.Fprintln(p.w)
		}
		if p.wrap != nil {
			_, err = io.WriteString(p.wrap, e.Token)
		} else {
			_, err = io.WriteString(p.w, e.Token)
			p.newline = strings.HasSuffix(e.Token, "\n")
		}
	}
	return err
}

// reference prints a numbered source, "[n] Title — where", on one line,
// or on a terminal too narrow for that, with where on a line of its own
// (a URL or a path is not to be broken).
func (p *printer) reference(n int, title, where string) error {
	head := fmt.Sprintf("  [%d] ", n)
	sep := " "
	if w := p.term.width; w > 0 && cols([]byte(head+title+" — "+where)) > w {
		sep = "\n" + strings.Repeat(" ", len(head))
	}
	_, err := fmt.Fprintf(p.w, "%s%s%s%s\n", head, p.term.style(sgrBold, title), sep, p.term.style(sgrDim, "— "+where))
	return err
}

// end finishes the answer's last line.
func (p *printer) end() {
	if p.json || !p.answer {
		return
	}
	if p.wrap != nil {
		p.wrap.Flush()
		p.newline = p.wrap.atLineStart()
	}
	if !p.newline {
		fmt.Fprintln(p.w)
	}
}
