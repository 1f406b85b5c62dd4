// The official openai npm package as a client of a real `runnel serve` that
// generates with an LLM: a fake OpenAI-compatible upstream, run here, that
// records what runnel asks it and streams a canned answer a token at a time
// when the test says. The client streams and reads a whole completion; an
// abort closes the client's connection, and after the linger window runnel
// closes its own request to the upstream.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import OpenAI from 'openai';

import { buildGo, startServer } from '../support/server.js';

const ANSWER = ['WebSocket ', 'keeps ', 'one ', 'connection ', 'open [1].'];

/** upstream is the fake LLM: each request waits for release() per token. */
function fakeUpstream() {
  const requests = [];
  const closed = [];
  let gate = Promise.resolve();
  let open = () => {};
  const srv = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const parsed = JSON.parse(body);
    const i = requests.push(parsed) - 1;
    let ended = false;
    const gone = new Promise((resolve) => res.once('close', () => resolve(!ended)));
    closed[i] = gone;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta, finish) =>
      `data: ${JSON.stringify({
        id: 'chatcmpl-fake',
        object: 'chat.completion.chunk',
        created: 0,
        model: 'fake',
        choices: [{ index: 0, delta, finish_reason: finish }],
      })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }, null));
    for (const tok of ANSWER) {
      await gate;
      if (res.destroyed) return;
      res.write(chunk({ content: tok }, null));
    }
    res.write(chunk({}, 'stop'));
    res.write('data: [DONE]\n\n');
    ended = true;
    res.end();
  });
  return {
    requests,
    closed,
    /** hold makes every request wait before its next token until open(). */
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      open();
      gate = Promise.resolve();
    },
    listen: () =>
      new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${srv.address().port}/v1`))),
    close: () => new Promise((resolve) => srv.close(resolve)),
  };
}

let upstream;
let bin;
let server;
let client;

before(async () => {
  upstream = fakeUpstream();
  const url = await upstream.listen();
  bin = await buildGo('./cmd/runnel', 'runnel');
  server = await startServer(bin.path, [
    'serve',
    '--addr', '127.0.0.1:0',
    '--llm-url', url,
    '--llm-model', 'fake',
    '--llm-retries', '0',
    '--run-linger', '300ms',
    '--log-level', 'warn',
  ]);
  client = new OpenAI({ baseURL: server.url + '/v1', apiKey: 'not-needed', maxRetries: 0 });
});

after(async () => {
  await server?.stop();
  await upstream?.close();
  await bin?.cleanup();
});

test('streamed through the LLM: the upstream got the question and the passages, the client every token', async () => {
  const before = upstream.requests.length;
  const stream = await client.chat.completions.create({
    model: 'runnel',
    messages: [{ role: 'user', content: 'what is websocket?' }],
    stream: true,
  });
  let text = '';
  let finish;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (choice?.delta?.content) text += choice.delta.content;
    if (choice?.finish_reason) finish = choice.finish_reason;
  }
  assert.equal(finish, 'stop');
  assert.ok(text.startsWith(ANSWER.join('')), `content ${JSON.stringify(text)}`);
  assert.equal(upstream.requests.length, before + 1, 'one generation request');
  const asked = upstream.requests.at(-1);
  assert.equal(asked.model, 'fake');
  const prompt = asked.messages.map((m) => m.content).join('\n');
  assert.match(prompt, /what is websocket\?/);
  assert.match(prompt, /WebSocket/, 'the prompt quotes the passages');
});

test('not streamed, through the LLM: one chat.completion with the whole answer', async () => {
  const completion = await client.chat.completions.create({
    model: 'runnel',
    messages: [{ role: 'user', content: 'what is websocket?' }],
  });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.ok(completion.choices[0].message.content.startsWith(ANSWER.join('')));
});

test('an abort mid-answer closes runnel\'s request to the LLM after the linger window', async () => {
  upstream.hold();
  const before = upstream.requests.length;
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'runnel', messages: [{ role: 'user', content: 'what is websocket?' }], stream: true },
    { signal: controller.signal },
  );
  // Read until runnel has reached the upstream and sent the role chunk.
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.value.choices[0].delta.role, 'assistant');
  const deadline = Date.now() + 15_000;
  while (upstream.requests.length === before) {
    assert.ok(Date.now() < deadline, 'runnel never asked the upstream');
    await new Promise((r) => setTimeout(r, 5));
  }
  controller.abort();
  // The SDK ends the stream, or throws its abort error; either way no more
  // of the answer comes.
  let rest = '';
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      rest += r.value.choices[0]?.delta?.content ?? '';
    }
  } catch (err) {
    assert.ok(err.name === 'APIUserAbortError' || err.name === 'AbortError', `${err.name}: ${err.message}`);
  }
  assert.equal(rest, '', 'nothing after the abort');
  // runnel's request to the upstream ends, though the upstream never
  // finished its answer.
  const cut = await Promise.race([
    upstream.closed[before],
    new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream request was still open 15 s after the abort')), 15_000)),
  ]);
  assert.equal(cut, true, 'the upstream request closed before its answer ended');
  upstream.release();
});
