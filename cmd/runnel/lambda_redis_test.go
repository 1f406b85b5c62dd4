package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/redis/redistest"
)

// TestLambdaRedis runs two Lambda execution environments (two processes,
// each with its own fake Runtime API) that keep their runs in one real
// Redis, and checks that a run asked through one can be resumed and
// canceled through the other. Every answer is gated: the test hands the
// producing instance its tokens one at a time, so what each stream holds
// at each step is known without sleeping.
func TestLambdaRedis(t *testing.T) {
	redisSrv := redistest.Start(t)
	bin := buildLambda(t)
	env := []string{"RUNNEL_REDIS_URL=" + redisSrv.URL(), "RUNNEL_RUN_LEASE=1s"}

	// Instance A's runtime can also end a response early (see "the
	// runtime stops taking the response").
	a := newLeavingRuntime(t)
	b := newFakeRuntime(t)
	stopA := startLambda(t, bin, a, env...)
	stopB := startLambda(t, bin, b, env...)

	t.Run("resume through another instance", func(t *testing.T) {
		inv1 := a.invoke(t, urlEvent("GET", "/articles/stream", "question=gate+resume", ""), time.Minute)
		id := runID(t, inv1.prelude(t))
		for _, want := range []runnel.EventType{runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources} {
			if e := inv1.event(t); e.Type != want {
				t.Fatalf("event %v, want %v", e.Type, want)
			}
		}
		a.release(t, "Resumed ")
		if e := inv1.event(t); e.Type != runnel.EventToken || e.Token != "Resumed " {
			t.Fatalf("event %v %q, want token %q", e.Type, e.Token, "Resumed ")
		}
		// Events 0 to 4 were read on A; B takes the run up after event 4,
		// while A's invocation is still open and the generator waits.
		inv2 := b.invoke(t, urlEvent("GET", "/runs/"+id, "after=4", ""), time.Minute)
		if p := inv2.prelude(t); p.StatusCode != 200 || p.Headers["Content-Type"] != "application/x-ndjson" || p.Headers["Runnel-Run-Id"] != id {
			t.Fatalf("resume on B: prelude %+v; want 200 NDJSON of run %s", p, id)
		}
		// Each token is handed out only once the one before reached both
		// readers: B follows the run live, from A's producer through Redis.
		for _, tok := range []string{"across ", "instances."} {
			a.release(t, tok)
			for name, inv := range map[string]*invocation{"A": inv1, "B": inv2} {
				if e := inv.event(t); e.Type != runnel.EventToken || e.Token != tok {
					t.Fatalf("%s: event %v %q, want token %q", name, e.Type, e.Token, tok)
				}
			}
		}
		a.release(t, "")
		restA, restB := inv1.rest(t), inv2.rest(t)
		for name, rest := range map[string][]runnel.Event{"A": restA, "B": restB} {
			if len(rest) != 1 || rest[0].Type != runnel.EventDone || rest[0].Done.FinishReason != runnel.FinishStop || rest[0].Done.ID != inv1.id {
				t.Errorf("%s: last events %+v, want one done, stop, id %q (the asking invocation's)", name, rest, inv1.id)
			}
		}
		// The whole run again, from B: nothing missing, nothing repeated.
		inv3 := b.invoke(t, urlEvent("GET", "/runs/"+id, "", ""), time.Minute)
		inv3.prelude(t)
		all := inv3.rest(t)
		var answer strings.Builder
		for _, e := range all {
			answer.WriteString(e.Token)
		}
		want := []runnel.EventType{"query", "tags", "titles", "sources", "token", "token", "token", "done"}
		if types := eventTypes(all); !slices.Equal(types, want) || answer.String() != "Resumed across instances." {
			t.Errorf("the run read from B: events %v, answer %q; want %v and %q", types, answer.String(), want, "Resumed across instances.")
		}
	})

	t.Run("cancel through another instance", func(t *testing.T) {
		inv1 := a.invoke(t, urlEvent("GET", "/articles/stream", "question=gate+cancel", ""), time.Minute)
		id := runID(t, inv1.prelude(t))
		for range 4 {
			inv1.event(t)
		}
		a.release(t, "Never ")
		if e := inv1.event(t); e.Type != runnel.EventToken {
			t.Fatalf("event %v, want a token", e.Type)
		}
		// The generator on A now waits for its next token, which never
		// comes: only the cancel can end the run.
		inv2 := b.invoke(t, urlEvent("DELETE", "/runs/"+id, "", ""), time.Minute)
		p := inv2.prelude(t)
		lines := inv2.lines(t)
		var got struct{ ID, State string }
		if p.StatusCode != 200 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &got) != nil ||
			got.ID != id || got.State != string(runnel.RunCanceled) {
			t.Fatalf("DELETE on B: status %d, body %q; want 200 {\"id\":%q,\"state\":\"canceled\"}", p.StatusCode, lines, id)
		}
		// A's stream ends with the canceled event and its invocation
		// returns (rest waits for the end of the response): the producer
		// stopped, so AwaitProducers let it go.
		rest := inv1.rest(t)
		if len(rest) != 1 || rest[0].Type != runnel.EventCanceled || rest[0].Canceled.Reason != runnel.CancelByClient {
			t.Fatalf("A after the cancel: events %+v, want one canceled event, reason %q", rest, runnel.CancelByClient)
		}
		// A takes its next invocation, and a second cancel, now on A,
		// finds the run ended already.
		inv3 := a.invoke(t, urlEvent("DELETE", "/runs/"+id, "", ""), time.Minute)
		inv3.prelude(t)
		if lines := inv3.lines(t); len(lines) != 1 || !strings.Contains(lines[0], `"state":"canceled"`) {
			t.Errorf("second DELETE on A: %q, want state canceled", lines)
		}
	})

	t.Run("the asking client leaves", func(t *testing.T) {
		// On Lambda a client that disconnects is not noticed: the platform
		// keeps taking the response body (docs/lambda.md). The fake runtime
		// does too; the test stops reading it after the query event.
		inv1 := a.invoke(t, urlEvent("GET", "/articles/stream", "question=gate+left", ""), time.Minute)
		id := runID(t, inv1.prelude(t))
		if e := inv1.event(t); e.Type != runnel.EventQuery {
			t.Fatalf("event %v, want query", e.Type)
		}
		inv2 := b.invoke(t, urlEvent("GET", "/runs/"+id, "after=0", ""), time.Minute)
		if p := inv2.prelude(t); p.StatusCode != 200 {
			t.Fatalf("resume on B: status %d", p.StatusCode)
		}
		readLeft(t, a, inv2, inv1.id)
		// The asking invocation ended too, once its answer was produced.
		waitEnd(t, inv1)
	})

	t.Run("the runtime stops taking the response", func(t *testing.T) {
		// A Runtime API that answers the response POST with 202 after the
		// first event and stops reading. AWS documents that a client's
		// disconnect does not stop a streamed response, so this is not
		// what Lambda does then; it is the one way to make the function's
		// writes fail, and shows what it does when they do: the pump
		// leaves, and the run goes on for the linger for readers elsewhere.
		inv1 := a.invoke(t, urlEvent("GET", "/articles/stream", "question=gate+leave", ""), time.Minute)
		id := runID(t, inv1.prelude(t))
		if e := inv1.event(t); e.Type != runnel.EventQuery {
			t.Fatalf("event %v, want query", e.Type)
		}
		if _, ok := inv1.line(t); ok {
			t.Fatal("the runtime read on after it left")
		}
		// The invocation is over for the runtime client as soon as its
		// POST is answered, whatever AwaitProducers holds: A takes its next
		// invocation while the run's producer still waits for a token.
		// On Lambda that producer would then run only while the
		// environment serves other invocations (see the report).
		probe := a.invoke(t, urlEvent("GET", "/healthz", "", ""), time.Minute)
		if p := probe.prelude(t); p.StatusCode != 200 {
			t.Errorf("healthz on A: status %d", p.StatusCode)
		}
		probe.lines(t)
		inv2 := b.invoke(t, urlEvent("GET", "/runs/"+id, "after=0", ""), time.Minute)
		if p := inv2.prelude(t); p.StatusCode != 200 {
			t.Fatalf("resume on B: status %d", p.StatusCode)
		}
		readLeft(t, a, inv2, inv1.id)
	})

	a.check(t)
	b.check(t)
	for name, stop := range map[string]func() string{"A": stopA, "B": stopB} {
		out := stop()
		msgs := map[string]int{}
		for line := range strings.Lines(out) {
			var rec struct{ Msg string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				msgs[rec.Msg]++
			}
		}
		if msgs["answers kept in redis"] != 1 {
			t.Errorf("instance %s: log messages %v, want answers kept in redis once", name, msgs)
		}
		if strings.Contains(out, "DATA RACE") {
			t.Errorf("instance %s reported a data race:\n%s", name, out)
		}
	}
}

// readLeft hands out the rest of an answer on a, whose reader left after
// the query event, and checks that inv (a reader on another instance since
// event 0) gets it live to its done event, without a gap or a repeat.
func readLeft(t *testing.T, a *fakeRuntime, inv *invocation, asker string) {
	t.Helper()
	for _, want := range []runnel.EventType{runnel.EventTags, runnel.EventTitles, runnel.EventSources} {
		if e := inv.event(t); e.Type != want {
			t.Fatalf("B: event %v, want %v", e.Type, want)
		}
	}
	for _, tok := range []string{"Nobody ", "waits ", "here."} {
		a.release(t, tok)
		if e := inv.event(t); e.Type != runnel.EventToken || e.Token != tok {
			t.Fatalf("B: event %v %q, want token %q", e.Type, e.Token, tok)
		}
	}
	a.release(t, "")
	if rest := inv.rest(t); len(rest) != 1 || rest[0].Type != runnel.EventDone || rest[0].Done.ID != asker {
		t.Errorf("B: last events %+v, want one done with id %q", rest, asker)
	}
}

// waitEnd drains what is left of inv's body, which nobody read, and checks
// that the response ended cleanly.
func waitEnd(t *testing.T, inv *invocation) {
	t.Helper()
	for {
		if _, ok := inv.line(t); !ok {
			break
		}
	}
	if inv.bodyErr != io.EOF {
		t.Errorf("the response body ended with %v", inv.bodyErr)
	}
	if typ := inv.trail.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		t.Errorf("the response body ended with the error trailer %s", typ)
	}
}

func runID(t *testing.T, p lambdaPrelude) string {
	t.Helper()
	id := p.Headers["Runnel-Run-Id"]
	if p.StatusCode != 200 || id == "" {
		t.Fatalf("prelude %+v, want 200 with a Runnel-Run-Id", p)
	}
	return id
}

// newLeavingRuntime is a fakeRuntime whose response handler, for a question
// that starts with "gate leave", passes the prelude and the first line of
// the body on, then answers 202 and reads no more of the body for the test:
// it discards the rest and records the body's trailers. Every other
// invocation it serves as newFakeRuntime's does.
func newLeavingRuntime(t *testing.T) *fakeRuntime {
	rt := newFakeRuntime(t)
	// newFakeRuntime's server is running already, unused: this one
	// replaces it, with the same handlers behind a wrapper.
	old, inner := rt.srv, rt.srv.Config.Handler
	t.Cleanup(old.Close)
	rt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/response") {
			id = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2018-06-01/runtime/invocation/"), "/response")
		}
		rt.mu.Lock()
		inv := rt.inflight[id]
		leave := inv != nil && bytes.Contains(inv.payload, []byte(`"question":"gate leave"`))
		if leave {
			delete(rt.inflight, id)
		}
		rt.mu.Unlock()
		if !leave {
			inner.ServeHTTP(w, r)
			return
		}
		defer close(inv.body)
		br := bufio.NewReader(r.Body)
		js, err := br.ReadBytes(0)
		if err != nil {
			rt.problem("invocation %s: no prelude: %v", inv.id, err)
			return
		}
		var nuls [7]byte
		io.ReadFull(br, nuls[:])
		var p lambdaPrelude
		if err := json.Unmarshal(js[:len(js)-1], &p); err != nil {
			rt.problem("invocation %s: prelude %q: %v", inv.id, js, err)
			return
		}
		inv.pre <- p
		line, err := br.ReadString('\n')
		if err != nil {
			rt.problem("invocation %s: no first line: %v", inv.id, err)
			return
		}
		inv.body <- bodyLine{line, time.Now()}
		// Answer while the body is still coming: full duplex, or the
		// server would first try to read the rest of it.
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			rt.problem("full duplex: %v", err)
		}
		w.Header().Set("Content-Length", "0") // the response is over at once
		w.WriteHeader(http.StatusAccepted)
		rc.Flush()
		io.Copy(io.Discard, br)
		inv.trail = r.Trailer
	}))
	return rt
}

// TestLambdaDeployRedis checks that both templates can pass a Redis to the
// function, and pass none by default.
func TestLambdaDeployRedis(t *testing.T) {
	t.Run("SAM", func(t *testing.T) {
		src, err := os.ReadFile("../../deploy/lambda/template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var tmpl struct {
			Parameters map[string]struct {
				Default any  `yaml:"Default"`
				NoEcho  bool `yaml:"NoEcho"`
			} `yaml:"Parameters"`
			Resources map[string]struct {
				Type       string         `yaml:"Type"`
				Properties map[string]any `yaml:"Properties"`
			} `yaml:"Resources"`
		}
		if err := yaml.Unmarshal(src, &tmpl); err != nil {
			t.Fatal(err)
		}
		var vars map[string]any
		for _, r := range tmpl.Resources {
			if r.Type == "AWS::Serverless::Function" {
				vars, _ = dig(r.Properties, "Environment", "Variables").(map[string]any)
			}
		}
		for v, param := range map[string]string{"RUNNEL_REDIS_URL": "RedisUrl", "RUNNEL_RUN_LEASE": "RunLease"} {
			if got := fmt.Sprint(vars[v]); got != fmt.Sprint(map[string]any{"Ref": param}) {
				t.Errorf("the function's %s = %s, want Ref %s", v, got, param)
			}
			p, ok := tmpl.Parameters[param]
			if !ok || p.Default != "" {
				t.Errorf("parameter %s: %+v, want one with an empty default", param, p)
			}
		}
		if !tmpl.Parameters["RedisUrl"].NoEcho {
			t.Error("RedisUrl can hold a password: it wants NoEcho")
		}
	})

	t.Run("Terraform", func(t *testing.T) {
		files, _ := filepath.Glob("../../deploy/lambda/terraform/*.tf")
		vars := map[string]map[string]any{}
		var env hclsyntax.Expression
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("%s: %v", f, diags)
			}
			for _, b := range file.Body.(*hclsyntax.Body).Blocks {
				switch {
				case b.Type == "variable" && len(b.Labels) == 1:
					vars[b.Labels[0]] = hclLiterals(b.Body)
				case b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == "aws_lambda_function":
					for _, e := range b.Body.Blocks {
						if e.Type == "environment" && e.Body.Attributes["variables"] != nil {
							env = e.Body.Attributes["variables"].Expr
						}
					}
				}
			}
		}
		refs := map[string]string{}
		var collect func(hclsyntax.Expression)
		collect = func(expr hclsyntax.Expression) {
			switch e := expr.(type) {
			case *hclsyntax.ObjectConsExpr:
				for _, item := range e.Items {
					k, diags := item.KeyExpr.Value(nil)
					if st, ok := item.ValueExpr.(*hclsyntax.ScopeTraversalExpr); ok && !diags.HasErrors() && k.Type() == cty.String {
						refs[k.AsString()] = hclTraversal(&hclsyntax.Attribute{Expr: st})
					}
				}
			case *hclsyntax.FunctionCallExpr:
				for _, arg := range e.Args {
					collect(arg)
				}
			}
		}
		if env != nil {
			collect(env)
		}
		for v, name := range map[string]string{"RUNNEL_REDIS_URL": "redis_url", "RUNNEL_RUN_LEASE": "run_lease"} {
			if refs[v] != "var."+name {
				t.Errorf("the function's %s = %q, want var.%s", v, refs[v], name)
			}
			if d, ok := vars[name]["default"]; !ok || d != "" {
				t.Errorf("variable %s: %v, want an empty default", name, vars[name])
			}
		}
		if vars["redis_url"]["sensitive"] != true {
			t.Error("redis_url can hold a password: it wants sensitive = true")
		}
	})
}
