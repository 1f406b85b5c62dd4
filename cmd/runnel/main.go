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
	"os"
	"os/signal"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// errUsage marks a command line that could not be parsed; the usage was
// already printed.
var errUsage = errors.New("usage")

// exitError carries an exit status with a message already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitCode(err error, stderr io.Writer) int {
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintln(stderr, "runnel:", err)
	return 1
}

const usage = `runnel answers questions about a collection of articles and streams the answer.

Usage:
  runnel serve  [flags]             serve the HTTP API (embedded articles by default)
  runnel ask    [flags] QUESTION    answer a question in the terminal
  runnel import [flags] PATH...     import Markdown (.md) or JSONL (.jsonl) articles
  runnel version                    print the version

Run "runnel COMMAND -h" for a command's flags.
`

// Run is the program: it runs the subcommand named by args[0].
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	env := os.Getenv
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, rest, env, stdout, stderr)
	case "ask":
		return runAsk(ctx, rest, env, stdout, stderr)
	case "import":
		return runImport(ctx, rest, env, stdout, stderr)
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

// parse parses a subcommand's flags, printing usage to stderr on error.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
