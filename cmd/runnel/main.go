// Command runnel answers questions about a collection of articles and
// streams the answer as it is produced.
//
//	runnel serve                      serve the embedded articles on localhost:8080
//	runnel ask "what is websocket?"   answer one question in the terminal
//	runnel import PATH...             import Markdown or JSONL articles into a database
//	runnel version                    print the version
//
// Run "runnel COMMAND -h" for a command's flags. Every flag has an
// environment variable (RUNNEL_*) that sets its default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	// AWS Lambda starts the binary with no arguments and the Runtime API's
	// address in AWS_LAMBDA_RUNTIME_API: serve the invocations. With a
	// command (runnel version) it runs the command anywhere. The platform
	// stops the process itself, so no signal handler here.
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" && len(os.Args) == 1 {
		os.Exit(exitCode(runLambda(context.Background(), os.Getenv, os.Stderr), os.Stderr))
	}
	ctx, stop := notifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// notifyContext is signal.NotifyContext with the signal kept as the
// context's cause (an interrupted), so that a command can tell a person's
// Ctrl-C from a failure and exit as a shell expects (130 for SIGINT).
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(interrupted{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// interrupted is the cause of a context canceled by a signal. A command
// that stops because of it returns it, and the program exits quietly with
// 128 plus the signal's number.
type interrupted struct{ sig os.Signal }

func (e interrupted) Error() string { return "interrupted by " + e.sig.String() }

// interruption returns the interrupted that canceled ctx, if a signal did.
func interruption(ctx context.Context) (interrupted, bool) {
	var in interrupted
	ok := ctx.Err() != nil && errors.As(context.Cause(ctx), &in)
	return in, ok
}

// errUsage marks a command line that could not be parsed; the usage was
// already printed.
var errUsage = errors.New("usage")

// exitError carries an exit status with a message already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// cmdError is an error of the command cmd, printed "runnel CMD: message".
type cmdError struct {
	cmd string
	err error
}

func (e cmdError) Error() string { return "runnel " + e.cmd + ": " + message(e.cmd, e.err) }
func (e cmdError) Unwrap() error { return e.err }

// inCommand marks err, if any, as an error of the command cmd.
func inCommand(cmd string, err error) error {
	if err == nil {
		return nil
	}
	return cmdError{cmd, err}
}

func exitCode(err error, stderr io.Writer) int {
	var (
		ee exitError
		in interrupted
		ce cmdError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &in):
		if s, ok := in.sig.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 130
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, ce.Error())
		return 1
	}
	fmt.Fprintln(stderr, "runnel:", message("", err))
	return 1
}

// message returns err for a person, to be prefixed once with "runnel
// CMD:". The packages below prefix their errors for operators ("runnel:
// ask: Post ...", "runnel: not_found: There is no ..."); here those
// prefixes go, a *runnel.Error reads "code: sentence", and a request that
// reached no server says which server and why.
func message(cmd string, err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("cannot reach %s: %s", origin(ue.URL), reason(ue.Err))
	}
	s := err.Error()
	for trimmed := ""; trimmed != s; {
		trimmed = s
		s = strings.TrimPrefix(s, "runnel: ")
		if cmd != "" {
			s = strings.TrimPrefix(s, cmd+": ")
		}
	}
	return s
}

// origin returns the scheme and host of a URL, the server a person named.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

// reason returns the last part of a network error ("connection refused"
// of "dial tcp 127.0.0.1:1: connect: connection refused"), which is the
// part a person can act on.
func reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

const usage = `runnel answers questions about a collection of articles and streams the answer.

Usage:
  runnel serve  [flags]             serve the HTTP API (embedded articles by default)
  runnel ask    [flags] QUESTION    answer a question in the terminal
  runnel import [flags] PATH...     import Markdown (.md) or JSONL (.jsonl) articles
  runnel version                    print the version

Examples:
  runnel ask "what is websocket?"          answer from the embedded articles
  runnel import --db notes.db ~/notes      import your own articles
  runnel ask --db notes.db "how do I ..."  and ask them
  runnel serve --db notes.db               serve them on localhost:8080

Run "runnel COMMAND -h" for a command's flags.
`

// examples are the "Examples:" block of each command's -h, keyed by the
// FlagSet's name.
var examples = map[string]string{
	"runnel serve": `  runnel serve                                 the embedded articles on localhost:8080
  runnel serve --db notes.db --addr :8080      a database made with runnel import
  runnel serve --articles ~/notes              import into a temporary database at start
  RUNNEL_API_KEYS=secret runnel serve          require an API key
`,
	"runnel ask": `  runnel ask "what is websocket?"              from the embedded articles
  runnel ask --db notes.db "how do I ..."      from a database made with runnel import
  runnel ask --server localhost:8080 "what is quic?"
  runnel ask --json "what is backpressure?"    the raw protocol events
  runnel ask --token-delay 30ms "what is sse?" pace the answer to watch it grow
`,
	"runnel import": `  runnel import --db notes.db ~/notes ~/blog/posts   directories are walked
  runnel import --db notes.db --prune ~/notes        also drop articles whose files are gone
  runnel import --db notes.db articles.jsonl         one article object a line
`,
	"runnel version": `  runnel version
`,
}

// Run is the program: it runs the subcommand named by args[0].
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	env := os.Getenv
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return inCommand(cmd, runServe(ctx, rest, env, stdout, stderr))
	case "ask":
		return inCommand(cmd, runAsk(ctx, rest, env, stdout, stderr))
	case "import":
		return inCommand(cmd, runImport(ctx, rest, env, stdout, stderr))
	case "version", "-version", "--version":
		fs := flag.NewFlagSet("runnel version", flag.ContinueOnError)
		fs.Usage = func() { fmt.Fprintf(fs.Output(), "Usage: runnel version\n\nPrint runnel's version.\n") }
		if err := parse(fs, rest, stderr); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "runnel", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "runnel: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// parse parses a subcommand's flags. For -h it prints the usage, with the
// command's examples, to stderr; for a bad flag, one line that says what is
// wrong with it and where to look.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if ex := examples[fs.Name()]; ex != "" {
		usage := fs.Usage
		fs.Usage = func() {
			usage()
			fmt.Fprintf(fs.Output(), "\nExamples:\n%s", ex)
		}
	}
	fs.SetOutput(io.Discard) // the flag package prints the whole usage after an error
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	}
	fmt.Fprintf(stderr, "%s: %s\nRun \"%s -h\" for the flags.\n", fs.Name(), flagMessage(fs, err), fs.Name())
	return errUsage
}
