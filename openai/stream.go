package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/runnel/runnel"
)

// Causes of the contexts Generate cancels itself.
var (
	errMaxDuration = errors.New("openai: maximum answer duration reached")
	errStalled     = errors.New("openai: upstream stalled")
	errDrained     = errors.New("openai: response drained")
)

// maxErrorBody bounds what is read of an error response (the SDK would
// read it all).
const maxErrorBody = 64 << 10

// drainTimeout bounds the wait for the end of a response after [DONE], read
// so that its connection can serve the next question.
const drainTimeout = 50 * time.Millisecond

// call is one Generate: the prompt, the contexts and emit, shared by its
// attempts.
type call struct {
	g            *Generator
	ctx          context.Context // the caller's
	gctx         context.Context // ctx with Options.MaxDuration
	system, user string
	emit         func(string) error
	maxTokens    int // 0 means Options.MaxTokens
}

// limit returns the most tokens the call may generate.
func (c *call) limit() int {
	if c.maxTokens > 0 {
		return c.maxTokens
	}
	return c.g.opts.MaxTokens
}

// capture records the response of an attempt as the SDK receives it: the
// status and headers whatever the body says, and the start of an error
// body, which the SDK parses only when it has OpenAI's exact shape.
type capture struct {
	resp *http.Response
	body []byte
}

func (c *capture) middleware(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	resp, err := next(req)
	if err != nil || resp == nil {
		return resp, err
	}
	c.resp = resp
	if resp.StatusCode >= 400 {
		c.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(c.body))
	}
	return resp, nil
}

// chunk is the part of a chat.completion.chunk runnel reads.
type chunk struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// attempt sends the request once and streams the response. It returns
// emit's error or ctx's as they are, and every other failure as a *failure.
func (c *call) attempt() (runnel.Done, error) {
	g := c.g
	actx, cancel := context.WithCancelCause(c.gctx)
	defer cancel(nil)
	stall := time.AfterFunc(g.opts.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()

	params := g.params(c.system, c.user, c.limit())
	sentMaxCompletion := params.MaxCompletionTokens.Valid()
	var cp capture
	stream := g.chat.NewStreaming(actx, params, option.WithMiddleware(cp.middleware))
	defer stream.Close()
	if err := stream.Err(); err != nil {
		if ctxErr := c.ctxErr(actx); ctxErr != nil {
			return runnel.Done{}, ctxErr
		}
		if cp.resp != nil && cp.resp.StatusCode >= 400 {
			return runnel.Done{}, g.statusFailure(cp.resp, cp.body, sentMaxCompletion)
		}
		return runnel.Done{}, g.connFailure(err)
	}
	resp := cp.resp
	if resp == nil {
		return runnel.Done{}, g.fail(EUpstreamMalformed, "no response", nil)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		// A whole completion (the server ignored stream: true) or an error
		// with status 200: either way, no stream.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return runnel.Done{}, g.fail(EUpstreamMalformed, "a JSON response instead of a stream: "+g.reason(body), nil)
	}

	// The SDK's Stream cannot tell data: [DONE] from a connection that
	// ends early (both end with Err() == nil), so read the events with its
	// decoder directly; the Stream only closes the body.
	dec := ssestream.NewDecoder(resp)
	var (
		done    runnel.Done
		sawDone bool
		pieces  int // chunks with text: at least one token each
	)
	for dec.Next() {
		stall.Stop() // the stall clock runs only while we wait for the upstream
		ev := dec.Event()
		data := bytes.TrimSpace(ev.Data)
		if bytes.Equal(data, []byte("[DONE]")) {
			sawDone = true
			break
		}
		var ch chunk
		if err := json.Unmarshal(data, &ch); err != nil {
			if ev.Type == "error" {
				return runnel.Done{}, g.fail(EUpstreamError, "error event: "+g.reason(data), nil)
			}
			return runnel.Done{}, g.fail(EUpstreamMalformed, "chunk "+g.reason(data)+": "+jsonProblem(err), nil)
		}
		if ev.Type == "error" || (len(ch.Error) > 0 && string(ch.Error) != "null") {
			return runnel.Done{}, g.fail(EUpstreamError, "error chunk: "+g.reason(data), nil)
		}
		for _, choice := range ch.Choices {
			if choice.Index != 0 {
				continue
			}
			for _, text := range [2]string{choice.Delta.Content, choice.Delta.Refusal} {
				if text == "" {
					continue
				}
				if pieces == c.limit() {
					// The upstream ignored max_tokens.
					return runnel.Done{FinishReason: runnel.FinishLength}, nil
				}
				pieces++
				if err := c.emit(text); err != nil {
					return runnel.Done{}, err
				}
			}
			if choice.FinishReason != "" {
				done.FinishReason = choice.FinishReason
			}
		}
		if u := ch.Usage; u != nil {
			done.Usage = &runnel.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
		}
		stall.Reset(g.opts.StallTimeout)
	}
	if !sawDone {
		if ctxErr := c.ctxErr(actx); ctxErr != nil {
			return runnel.Done{}, ctxErr
		}
		if err := dec.Err(); errors.Is(err, bufio.ErrTooLong) {
			// The SDK's decoder accepts lines up to 32 MiB.
			return runnel.Done{}, g.fail(EUpstreamMalformed, "a line over the decoder's limit", nil)
		}
		reason := "the stream ended before data: [DONE]"
		if err := dec.Err(); err != nil {
			reason += " (" + g.reason([]byte(err.Error())) + ")"
		}
		return runnel.Done{}, g.fail(EUpstreamTruncated, reason, nil)
	}
	if done.FinishReason == "" {
		done.FinishReason = runnel.FinishStop
	}
	// Read the end of the response, normally already here, so that the
	// connection can be kept for the next question.
	stall.Stop()
	drain := time.AfterFunc(drainTimeout, func() { cancel(errDrained) })
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	drain.Stop()
	return done, nil
}

// ctxErr returns the error for a context that ended, or nil: ctx's own
// error when the caller's context ended, a timeout error when the maximum
// duration passed, a stall error when actx (an attempt's context, may be
// nil) stalled.
func (c *call) ctxErr(actx context.Context) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if errors.Is(context.Cause(c.gctx), errMaxDuration) {
		d := c.g.opts.MaxDuration.String()
		return c.g.fail(runnel.ETIMEOUT, "maximum duration "+d+" reached", ptr("The answer took longer than the "+d+" allowed."))
	}
	if actx != nil && errors.Is(context.Cause(actx), errStalled) {
		return c.g.fail(EUpstreamStalled, "no chunk for "+c.g.opts.StallTimeout.String(), nil)
	}
	return nil
}

// jsonProblem says briefly why a chunk did not decode.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "its " + te.Field + " is a JSON " + te.Value
	}
	return "not JSON (" + err.Error() + ")"
}
