// Resuming: a connection cut anywhere in an answer (by a TCP proxy in front of
// the real Go server, so that the resume goes through the real server too)
// loses nothing and repeats nothing, and the answer is generated once; a cut
// before the run is named (inside the status line, the headers, the
// WebSocket upgrade) asks again with the same idempotency key. Then the
// rules of both, against the real server and against Node servers that
// answer exactly what a case needs.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import WebSocket, { WebSocketServer } from 'ws';

import { RunnelError, ask, cancel } from '../../runnel.js';
import { startProxy } from '../support/proxy.js';
import { collect, nodeServer, startTestServer, waitFor } from '../support/server.js';

// The one question whose answer's sources carry a multi-byte character (the
// corpus's only one: U+FFFD, three bytes).
const QUESTION = 'utf-8 streaming replacement character';
const fast = { backoff: { base: 1, max: 8 } }; // resume at once: the tests wait for states, not for time

let server;
let control;
let proxy;
let stream; // the stream endpoint, through the proxy

before(async () => {
  server = await startTestServer({ linger: '30s' });
  control = server.control;
  proxy = await startProxy(server.url);
  stream = proxy.url + '/articles/stream';
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

beforeEach(async () => {
  proxy.clearRules();
  proxy.unblock();
  await control.reset();
});

/**
 * headPoints picks cut points inside a response's status line and headers,
 * the `end` bytes before its body: the first byte, the middle of every line
 * (of the run's id too), its CR, its LF, the first byte of the next line.
 * A cut at any of them leaves the client without the run's id.
 */
function headPoints(text, end) {
  const points = new Set([0, 1]);
  for (let at = 0; at < end;) {
    const eol = text.indexOf('\r\n', at);
    points.add(at + ((eol - at) >> 1)).add(eol).add(eol + 1).add(eol + 2);
    at = eol + 2;
  }
  return [...points].filter((p) => p < end);
}

/** keysOf returns the Idempotency-Key header of each request head. */
const keysOf = (requests) => requests.map((r) => /\r\nidempotency-key: *([^\r]*)/i.exec(r.head)?.[1]);

/**
 * cutPoints picks where to cut an answer from the bytes of an uninterrupted
 * response: inside the status line and the headers (see headPoints), right
 * after the headers (the run is named, no event yet), inside
 * every chunk header and between its CR and LF, inside every multi-byte
 * character, just before and just after the end of every event, inside the
 * SSE id lines; never after the start of the done event, so that every cut
 * falls inside the answer even if the next response is framed a little
 * differently (the server batches events that are ready together).
 */
function cutPoints(bytes, sse) {
  const text = bytes.toString('latin1');
  const body = text.indexOf('\r\n\r\n') + 4;
  const points = new Set([...headPoints(text, body), body]);
  for (let at = body; at < bytes.length;) {
    const crlf = text.indexOf('\r\n', at);
    const size = parseInt(text.slice(at, crlf), 16);
    if (crlf < 0 || !(size > 0)) break;
    points.add(at + 1).add(crlf + 1);
    at = crlf + 2 + size + 2;
  }
  for (let i = body; i < bytes.length; i++) {
    if (bytes[i] >= 0xc0) for (let k = 1; k < (bytes[i] >= 0xf0 ? 4 : bytes[i] >= 0xe0 ? 3 : 2); k++) points.add(i + k);
  }
  const end = sse ? '\n\n' : '\n';
  for (let i = text.indexOf(end, body); i >= 0; i = text.indexOf(end, i + end.length)) {
    if (text[i - 1] === '\r') continue; // a chunk's own CRLF
    points.add(i).add(i + end.length);
  }
  if (sse) for (let i = text.indexOf('\nid: ', body); i >= 0; i = text.indexOf('\nid: ', i + 1)) points.add(i + 12);
  const last = text.indexOf(sse ? 'event: done' : '{"type":"done"');
  return { body, points: [...points].filter((p) => p <= last).sort((a, b) => a - b) };
}

/** doneIn says whether the bytes a client got hold the whole done event. */
function doneIn(sent, sse) {
  const text = sent.toString('latin1');
  return sse ? /event: done\nid: [^\n]+\ndata: [^\n]*\n\n/.test(text) : /\{"type":"done","data":\{.*\}\}/.test(text);
}

for (const transport of ['ndjson', 'sse']) {
  test(`${transport}: a cut at any byte of the response, its head included, loses nothing, repeats nothing, and generates once`, async () => {
    const whole = await collect(ask(stream, { question: QUESTION, transport }));
    assert.equal(whole.error, undefined);
    const want = await control.state();
    assert.equal(whole.answer, want.answer);
    const bytes = proxy.responseTo('/articles/stream');
    assert.ok([...bytes].some((b) => b >= 0xc0), 'the response has a multi-byte character');
    const { body, points } = cutPoints(bytes, transport === 'sse');
    assert.ok(points.length > 100, `${points.length} cut points`);
    assert.ok(points.filter((p) => p < body).length > 20, 'cuts inside the head');

    let resumed = 0;
    for (const at of points) {
      await control.reset();
      const first = proxy.requests.length;
      const cut = proxy.cutNext(at, { path: '/articles/stream' });
      let reconnects = 0;
      const it = ask(stream, { question: QUESTION, transport, ...fast, onReconnect: () => reconnects++ });
      const got = await collect(it);
      const where = `cut at byte ${at} of ${bytes.length}`;
      assert.equal(got.error, undefined, `${where}: ${got.error?.stack}`);
      const { sent } = await cut;
      assert.equal(got.answer, want.answer, where);
      assert.deepEqual(got.events.map((e) => e.seq), got.events.map((e, i) => i), `${where}: every number once, in order`);
      assert.deepEqual(got.types, whole.types, where);
      assert.ok(got.events.every((e) => e.run === it.runId), where);
      assert.equal(reconnects > 0, !doneIn(sent, transport === 'sse'), `${where}: resumed if and only if done had not arrived`);
      if (reconnects > 0) resumed++;
      const st = await control.state();
      assert.equal(st.started, 1, `${where}: the answer was generated once`);
      // Before the end of the head the run has no id yet: the question is
      // asked again, with the same key; after it, the run is resumed.
      const asks = proxy.requests.slice(first).filter((r) => r.path === '/articles/stream');
      assert.equal(asks.length, at < body ? 2 : 1, `${where}: asked ${asks.length} times`);
      const keys = keysOf(asks);
      assert.match(keys[0], /^[0-9a-f]{32}$/, where);
      assert.ok(keys.every((k) => k === keys[0]), `${where}: one key: ${keys}`);
    }
    assert.ok(resumed >= points.length - 2, `${resumed} of ${points.length} cuts needed a resume`);
  });
}

/**
 * readGated reads it while a gated generator (control.mode('gated')) emits,
 * releasing each step once the client holds all the generator emitted; when
 * that is step `at`, it first calls onGate(lastEvent), once.
 */
async function readGated(it, at, onGate) {
  const events = [];
  let error;
  let gated = false;
  try {
    for await (const e of it) {
      events.push(e);
      const st = await control.state();
      const tokens = events.filter((x) => x.type === 'token').map((x) => x.data).join('');
      if (!st.waiting || tokens !== st.emitted) continue; // the client is behind, or the generator busy
      if (!gated && st.step === at) {
        gated = true;
        await onGate(e);
      }
      await control.release();
    }
  } catch (err) {
    error = err;
  }
  return { events, error, answer: events.filter((e) => e.type === 'token').map((e) => e.data).join('') };
}

test('the resume asks the run route for the events after the last one read', async () => {
  await control.mode('gated', { steps: 3 });
  let before;
  const resumes = [];
  const it = ask(stream, { question: QUESTION, ...fast, onResume: (r) => resumes.push(r) });
  const { events, error, answer } = await readGated(it, 1, (last) => {
    before = last.seq;
    proxy.cutAll(); // between two events, the generator parked
  });
  assert.equal(error, undefined);
  assert.equal(answer, (await control.state()).answer);
  assert.deepEqual(events.map((e) => e.seq), events.map((e, i) => i));
  const resume = proxy.requests.findLast((r) => r.path.startsWith('/runs/'));
  assert.equal(resume.method, 'GET');
  assert.equal(resume.url, `/runs/${it.runId}?after=${before}`);
  assert.match(resume.head, /\r\naccept: application\/x-ndjson/i);
  assert.deepEqual(resumes, [{ run: it.runId, after: before }]);
  assert.equal((await control.state()).started, 1);
});

test("a cut by the server's own relay (a hijacked connection) is resumed too", async () => {
  await control.mode('cut', { after: 5 });
  const got = await collect(ask(server.url + '/articles/stream', { question: QUESTION, ...fast }));
  assert.equal(got.error, undefined);
  const st = await control.state();
  assert.equal(got.answer, st.answer);
  assert.ok(st.relayed.length > 0 && st.relayed.length < st.answer.length, 'the relay cut it mid-answer');
  assert.equal(st.started, 1);
});

test('sse: the resume reads the run route as SSE, and the numbers come from the ids', async () => {
  await control.mode('gated', { steps: 3 });
  const it = ask(stream, { question: QUESTION, transport: 'sse', ...fast });
  const { events, error, answer } = await readGated(it, 2, () => proxy.cutAll());
  assert.equal(error, undefined);
  assert.equal(answer, (await control.state()).answer);
  assert.deepEqual(events.map((e) => e.seq), events.map((e, i) => i));
  const resume = proxy.requests.findLast((r) => r.path.startsWith('/runs/'));
  assert.match(resume.head, /\r\naccept: text\/event-stream/i);
});

test('a run the server no longer has: a clear not_found, and what arrived stays', async () => {
  await control.mode('gated', { steps: 3 });
  const it = ask(stream, { question: QUESTION, ...fast });
  const { events, error } = await readGated(it, 1, async () => {
    await control.expire();
    proxy.cutAll();
  });
  assert.ok(error instanceof RunnelError, String(error));
  assert.equal(error.code, 'not_found');
  assert.equal(error.status, 404);
  assert.equal(error.retryable, true, 'asking again may work');
  assert.equal(error.run, it.runId);
  assert.match(error.message, /can no longer be resumed/);
  assert.ok(events.some((e) => e.type === 'token') && !events.some((e) => e.type === 'done'));
  await control.reset(); // the server knows the run again: stop it
  assert.equal((await cancel(server.url + '/runs/', it.runId)).state, 'canceled');
});

test('bounded retries with growing, jittered waits; then the last failure is thrown', async () => {
  await control.mode('gated', { steps: 3 });
  const waits = [];
  const it = ask(stream, {
    question: QUESTION, retries: 4, backoff: { base: 20, max: 50 },
    onReconnect: (r) => waits.push(r),
  });
  const { error } = await readGated(it, 1, () => {
    proxy.block(); // every resume is dropped
    proxy.cutAll();
  });
  proxy.unblock();
  assert.ok(error instanceof RunnelError, String(error));
  assert.equal(error.code, 'network', 'the server could not be reached again');
  assert.match(error.message, /could not be resumed: 4 attempts failed/);
  assert.equal(error.retryable, true);
  assert.equal(error.run, it.runId);
  assert.deepEqual(waits.map((w) => w.attempt), [1, 2, 3, 4]);
  waits.forEach((w, i) => {
    const cap = Math.min(50, 20 * 2 ** i);
    assert.ok(w.delay >= cap / 2 && w.delay <= cap, `wait ${i + 1}: ${w.delay} ms within [${cap / 2}, ${cap}]`);
    assert.equal(w.run, it.runId);
    assert.equal(w.retries, 4);
    assert.ok(w.error instanceof RunnelError);
  });
  assert.equal(waits[0].error.code, 'truncated', 'the first failure is the break');
  assert.equal((await cancel(server.url + '/runs/', it.runId)).state, 'canceled');
});

test('retries: 0 turns resuming off: a cut is truncated, as in protocol v1', async () => {
  await control.mode('gated', { steps: 3 });
  const it = ask(stream, { question: QUESTION, retries: 0 });
  const { error } = await readGated(it, 1, () => proxy.cutAll());
  assert.equal(error?.code, 'truncated');
  assert.equal(it.reconnect(), false);
  await cancel(server.url + '/runs/', it.runId);
});

test('reconnect() drops the connection and resumes at once; abort during a wait ends it', async () => {
  await control.mode('gated', { steps: 3 });
  const early = ask(stream, { question: QUESTION });
  assert.equal(early.reconnect(), false, 'nothing to resume before the iteration starts');
  await early.return();

  const it = ask(stream, { question: QUESTION, ...fast });
  let reconnected;
  const { error, answer } = await readGated(it, 1, () => {
    reconnected = it.reconnect();
  });
  assert.equal(reconnected, true);
  assert.equal(error, undefined);
  assert.equal(answer, (await control.state()).answer);
  assert.ok(proxy.requests.some((r) => r.url.startsWith(`/runs/${it.runId}?after=`)));
  assert.equal((await control.state()).started, 1);

  // Abort while the client waits to try again: it ends with the signal's reason at once.
  await control.reset();
  await control.mode('gated', { steps: 3 });
  const controller = new AbortController();
  const reason = new DOMException('enough', 'AbortError');
  const slow = ask(stream, {
    question: QUESTION, signal: controller.signal, backoff: { base: 60_000, max: 60_000 },
    onReconnect: () => controller.abort(reason),
  });
  const r = await readGated(slow, 1, () => proxy.cutAll());
  assert.equal(r.error, reason);
  await cancel(server.url + '/runs/', slow.runId);
});

// The rules a fake server makes easy to see: which after is asked for, a
// server that sends again what was read, 5xx while resuming, 204, 400.
test('resume rules against a Node server: after, duplicates skipped, 5xx retried, 204 and 400 thrown', async () => {
  const lines = [
    { type: 'query', data: 'q?' }, { type: 'tags', data: [] }, { type: 'titles', data: [] }, { type: 'sources', data: [] },
    { type: 'token', data: 'one ' }, { type: 'token', data: 'two ' }, { type: 'token', data: 'three' },
    { type: 'done', data: { finish_reason: 'stop' } },
  ];
  let plan; // what the run route answers, one entry a request
  const seen = [];
  const srv = await nodeServer((req, res) => {
    seen.push(req.url);
    if (req.url.startsWith('/articles/stream')) {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Runnel-Run-Id': 'run1' });
      res.write(lines.slice(0, 5).map((e) => JSON.stringify(e) + '\n').join('') + '{"type":"tok');
      setTimeout(() => res.socket.destroy(), 10);
      return;
    }
    const step = plan.shift();
    if (step.status !== 200) {
      res.writeHead(step.status, { 'Content-Type': 'application/json' });
      res.end(step.status === 204 ? undefined : JSON.stringify({ error: { code: step.code ?? 'unavailable', message: 'not now' } }));
      return;
    }
    if (step.sse) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Runnel-Run-Id': 'run1' });
      res.end(lines.slice(step.from).map((e, i) => `event: ${e.type}\nid: run1.${step.from + i}\ndata: ${JSON.stringify(e.data)}\n\n`).join(''));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Runnel-Run-Id': 'run1' });
    res.end(lines.slice(Number(new URL(req.url, 'http://x').searchParams.get('after')) + 1).map((e) => JSON.stringify(e) + '\n').join(''));
  });
  try {
    const url = srv.url + '/articles/stream';
    plan = [{ status: 503 }, { status: 502, code: 'upstream_unavailable' }, { status: 200 }];
    let got = await collect(ask(url, { question: 'q', ...fast }));
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.answer, 'one two three');
    assert.deepEqual(got.events.map((e) => e.seq), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(seen.slice(1), ['/runs/run1?after=4', '/runs/run1?after=4', '/runs/run1?after=4']);

    // SSE: the resume sends the events from 2 on again; those read are skipped.
    seen.length = 0;
    plan = [{ status: 200, sse: true, from: 2 }];
    const sseStart = await nodeServer((req, res) => {
      if (req.url.startsWith('/runs/')) {
        fakeRun(req, res);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Runnel-Run-Id': 'run1' });
      res.write(lines.slice(0, 5).map((e, i) => `event: ${e.type}\nid: run1.${i}\ndata: ${JSON.stringify(e.data)}\n\n`).join('') + 'event: tok');
      setTimeout(() => res.socket.destroy(), 10);
    });
    function fakeRun(req, res) {
      const step = plan.shift();
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Runnel-Run-Id': 'run1' });
      res.end(lines.slice(step.from).map((e, i) => `event: ${e.type}\nid: run1.${step.from + i}\ndata: ${JSON.stringify(e.data)}\n\n`).join(''));
    }
    try {
      got = await collect(ask(sseStart.url + '/articles/stream', { question: 'q', transport: 'sse', ...fast }));
      assert.equal(got.error, undefined, String(got.error));
      assert.equal(got.answer, 'one two three', 'nothing twice');
      assert.deepEqual(got.events.map((e) => e.seq), [0, 1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await sseStart.close();
    }

    plan = [{ status: 204 }];
    got = await collect(ask(url, { question: 'q', ...fast }));
    assert.equal(got.error?.code, 'truncated');
    assert.match(got.error.message, /end never arrived/);

    plan = [{ status: 400, code: 'invalid' }];
    got = await collect(ask(url, { question: 'q', ...fast }));
    assert.equal(got.error?.code, 'invalid');
    assert.equal(got.error.status, 400);

    // options.runsURL names the run routes.
    seen.length = 0;
    plan = [{ status: 200 }];
    got = await collect(ask(url, { question: 'q', ...fast, runsURL: srv.url + '/elsewhere/runs' }));
    assert.equal(got.error, undefined);
    assert.deepEqual(seen.slice(1), ['/elsewhere/runs/run1?after=4']);
  } finally {
    await srv.close();
  }
});

// Asking again: a connection that breaks before the server named the run.

test('websocket: a cut inside the upgrade response asks again on a new socket, and generates once', async () => {
  const options = { question: QUESTION, transport: 'websocket', WebSocket, ...fast };
  const whole = await collect(ask(stream, options));
  assert.equal(whole.error, undefined);
  const want = (await control.state()).answer;
  const head = proxy.responseTo('/runs/ws').toString('latin1');
  const end = head.indexOf('\r\n\r\n') + 4;
  assert.match(head, /^HTTP\/1\.1 101 /);
  const points = [...headPoints(head, end), end]; // end: the socket opens, and breaks before the ask is read
  assert.ok(points.length > 12, `${points.length} cut points`);
  for (const at of points) {
    await control.reset();
    const first = proxy.requests.length;
    const cut = proxy.cutNext(at, { path: '/runs/ws' });
    const reconnects = [];
    const it = ask(stream, { ...options, onReconnect: (r) => reconnects.push(r) });
    const got = await collect(it);
    const where = `cut at byte ${at} of the ${end}-byte upgrade response`;
    assert.equal(got.error, undefined, `${where}: ${got.error?.stack}`);
    await cut;
    assert.equal(got.answer, want, where);
    assert.deepEqual(got.types, whole.types, where);
    assert.deepEqual(got.events.map((e) => e.seq), got.events.map((e, i) => i), where);
    assert.ok(got.events.every((e) => e.run === it.runId), where);
    assert.equal(reconnects.length, 1, where);
    assert.equal(reconnects[0].run, '', `${where}: no run named yet`);
    assert.equal(reconnects[0].after, -1, where);
    assert.equal(reconnects[0].error.code, at < end ? 'network' : 'truncated', where);
    // Upgrades only: a socket that never opened is followed by a plain GET
    // that asks the server why (a refused key, say), which is no socket.
    const upgrades = proxy.requests.slice(first).filter((r) => r.path === '/runs/ws' && /^upgrade: websocket\r?$/im.test(r.head));
    assert.equal(upgrades.length, 2, `${where}: a second socket`);
    assert.equal((await control.state()).started, 1, `${where}: generated once`);
  }
});

test('websocket: an ask whose socket breaks before its first message is asked again with the same key: the same run', async () => {
  const sent = [];
  let sockets = 0;
  // The first socket loses every message the server sends, and breaks once
  // the server has begun the run: the client has asked, and knows no run.
  class Lossy extends WebSocket {
    #lossy = ++sockets === 1;
    get onmessage() {
      return super.onmessage;
    }
    set onmessage(fn) {
      if (!this.#lossy) super.onmessage = fn;
    }
    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
      if (this.#lossy) control.until((st) => st.started === 1, 'the run to begin').then(() => this.terminate());
    }
  }
  const resumes = [];
  const it = ask(stream, {
    question: QUESTION, transport: 'websocket', WebSocket: Lossy, ...fast, onResume: (r) => resumes.push(r),
  });
  const got = await collect(it);
  assert.equal(got.error, undefined, got.error?.stack);
  const st = await control.state();
  assert.equal(got.answer, st.answer);
  assert.deepEqual(got.events.map((e) => e.seq), got.events.map((e, i) => i), 'from the first event');
  assert.equal(st.started, 1, 'the second ask got the run the first one began');
  assert.equal(sockets, 2);
  assert.deepEqual(sent.map((m) => m.type), ['ask', 'ask']);
  assert.match(sent[0].key, /^[0-9a-f]{32}$/);
  assert.equal(sent[1].key, sent[0].key);
  assert.deepEqual(resumes, [{ run: '', after: -1 }], 'onResume when the new socket has asked');
});

test('a given idempotencyKey asks once: every ask() with it gets the same run, over every transport', async () => {
  await control.mode('gated', { steps: 3 });
  const idempotencyKey = `test.${process.pid}_${Date.now()}-same`; // no run kept from another test has it
  const first = proxy.requests.length;
  const answers = [{}, { transport: 'sse' }, { method: 'GET' }, { transport: 'websocket', WebSocket }]
    .map((o) => ask(stream, { question: QUESTION, idempotencyKey, ...o }));
  const reading = Promise.all(answers.map(collect));
  // Every reader is on the one run before it goes on.
  await control.until((st) => st.waiting && st.step === 1, 'the first gate');
  await waitFor(() => answers.every((a) => a.runId), { what: 'every answer to know its run' });
  for (let i = 0; i < 3; i++) await control.release();
  const results = await reading;
  const st = await control.state();
  assert.equal(st.started, 1, 'generated once');
  for (const [i, got] of results.entries()) {
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(answers[i].runId, answers[0].runId, 'the same run');
    assert.equal(got.answer, st.answer);
    assert.deepEqual(got.events.map((e) => e.seq), got.events.map((e, i) => i));
  }
  const asks = proxy.requests.slice(first).filter((r) => r.path === '/articles/stream');
  assert.deepEqual(keysOf(asks), [idempotencyKey, idempotencyKey, idempotencyKey], 'the header, on POST and GET');

  // Later, the key still names that run (kept for its retention window).
  await control.mode('instant');
  const again = ask(stream, { question: QUESTION, idempotencyKey });
  assert.equal((await collect(again)).answer, st.answer);
  assert.equal(again.runId, answers[0].runId);
  assert.equal((await control.state()).started, 1);

  // Without the option, each ask() has a key of its own: two answers.
  await control.reset();
  const a = ask(stream, { question: QUESTION });
  const b = ask(stream, { question: QUESTION });
  await Promise.all([collect(a), collect(b)]);
  assert.notEqual(a.runId, b.runId);
  assert.equal((await control.state()).started, 2);
  const [ka, kb] = keysOf(proxy.requests.filter((r) => r.path === '/articles/stream').slice(-2));
  assert.match(ka, /^[0-9a-f]{32}$/);
  assert.match(kb, /^[0-9a-f]{32}$/);
  assert.notEqual(ka, kb);
});

test('idempotencyKey is checked as the server checks it', async () => {
  for (const bad of ['', 'a b', 'x'.repeat(65), 'clé', 'a"b', 42, {}]) {
    await assert.rejects(ask(stream, { question: QUESTION, idempotencyKey: bad }).next(), TypeError, JSON.stringify(bad));
  }
  const first = proxy.requests.length;
  const good = ['x'.repeat(64), 'A-z_0.9'];
  for (const idempotencyKey of good) {
    const got = await collect(ask(stream, { question: QUESTION, idempotencyKey }));
    assert.equal(got.error, undefined, String(got.error));
  }
  assert.deepEqual(keysOf(proxy.requests.slice(first)), good, 'sent as given');
});

// The rules of asking again, against a Node server that answers each request
// as its plan says.
const LINES = [
  { type: 'query', data: 'q?' }, { type: 'tags', data: [] }, { type: 'titles', data: [] }, { type: 'sources', data: [] },
  { type: 'token', data: 'one ' }, { type: 'token', data: 'two ' }, { type: 'token', data: 'three' },
  { type: 'done', data: { finish_reason: 'stop' } },
];
const NDJSON = LINES.map((e) => JSON.stringify(e) + '\n').join('');

test('asking again against a Node server: before anything was passed on, with the same key, never after a 4xx', async () => {
  let plan = [];
  const seen = [];
  const srv = await nodeServer((req, res) => {
    seen.push({ method: req.method, key: req.headers['idempotency-key'] });
    const step = plan.shift();
    if (step === 'drop') {
      req.socket.destroy(); // nothing of a response
    } else if (step === 'head') {
      req.socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nRunnel-Run'); // cut inside the headers
    } else if (typeof step === 'number') {
      res.writeHead(step, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: step >= 500 ? 'unavailable' : 'invalid', message: 'Not this.' } }));
    } else if (step === 'v1-break') {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' }); // a v1 server: no run named
      res.write(NDJSON.split('\n').slice(0, 5).join('\n') + '\n');
      setTimeout(() => res.socket.destroy(), 10);
    } else {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson', ...(step === 'v1' ? {} : { 'Runnel-Run-Id': 'run1' }) });
      res.end(NDJSON);
    }
  });
  const run = async (steps, options = {}) => {
    plan = steps;
    seen.length = 0;
    const reconnects = [];
    const resumes = [];
    const got = await collect(ask(srv.url + '/articles/stream', {
      question: 'q', ...fast, onReconnect: (r) => reconnects.push(r), onResume: (r) => resumes.push(r), ...options,
    }));
    assert.deepEqual(plan, [], 'every step of the plan was asked for');
    return { ...got, reconnects, resumes, seen: [...seen] };
  };
  try {
    // Nothing of a response, half of the headers, a 503, a 502: asked again each time, with the same key.
    let got = await run(['drop', 'head', 503, 502, 'run']);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.answer, 'one two three');
    assert.deepEqual(got.events.map((e) => e.seq), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.ok(got.events.every((e) => e.run === 'run1'));
    assert.equal(got.seen.length, 5);
    assert.match(got.seen[0].key, /^[0-9a-f]{32}$/);
    assert.ok(got.seen.every((s) => s.method === 'POST' && s.key === got.seen[0].key), 'one key');
    assert.deepEqual(got.reconnects.map((r) => [r.attempt, r.run, r.after, r.error.code]), [
      [1, '', -1, 'network'], [2, '', -1, 'network'], [3, '', -1, 'unavailable'], [4, '', -1, 'unavailable'],
    ]);
    assert.deepEqual(got.resumes, [{ run: 'run1', after: -1 }]);

    // GET carries the key too.
    got = await run(['drop', 'run'], { method: 'GET' });
    assert.equal(got.error, undefined, String(got.error));
    assert.deepEqual(got.seen.map((s) => s.method), ['GET', 'GET']);
    assert.equal(got.seen[1].key, got.seen[0].key);
    assert.match(got.seen[0].key, /^[0-9a-f]{32}$/);

    // A 4xx is the answer: 400, and 429 too (asking again at once would not help).
    for (const status of [400, 429]) {
      got = await run([status]);
      assert.equal(got.error?.status, status);
      assert.equal(got.seen.length, 1, `${status}: asked once`);
      assert.deepEqual(got.reconnects, []);
    }

    // A server that names no run (protocol v1): asked again while nothing was
    // passed on; a break after events is truncated, and not asked again.
    got = await run(['drop', 'v1']);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.answer, 'one two three');
    assert.equal(got.seen.length, 2);
    got = await run(['v1-break']);
    assert.equal(got.error?.code, 'truncated');
    assert.deepEqual(got.types, ['query', 'tags', 'titles', 'sources', 'token']);
    assert.equal(got.seen.length, 1, 'not asked again once events were passed on');
    assert.deepEqual(got.reconnects, []);

    // The retries bound it; retries: 0 turns it off.
    got = await run(['drop', 'drop', 'drop'], { retries: 2 });
    assert.equal(got.error?.code, 'network');
    assert.match(got.error.message, /could not be asked again: 2 attempts failed/);
    assert.equal(got.error.run, undefined);
    got = await run([503, 503], { retries: 1 });
    assert.equal(got.error?.status, 503);
    got = await run(['drop'], { retries: 0 });
    assert.equal(got.error?.code, 'network');
    assert.equal(got.seen.length, 1);

    // Without Web Crypto (Node 18 without its flag) there is no key, so no asking again.
    const crypto = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true });
    let it;
    try {
      it = ask(srv.url + '/articles/stream', { question: 'q', ...fast });
    } finally {
      Object.defineProperty(globalThis, 'crypto', crypto);
    }
    plan = ['drop'];
    seen.length = 0;
    got = await collect(it);
    assert.equal(got.error?.code, 'network');
    assert.deepEqual(seen, [{ method: 'POST', key: undefined }]);
  } finally {
    await srv.close();
  }
});

test('websocket: an ask refused as a 5xx would be is asked again with the same key; other refusals are the answer', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  let plan = [];
  const asks = [];
  wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      const cmd = JSON.parse(data.toString());
      asks.push(cmd);
      const step = plan.shift();
      if (step !== 'run') {
        socket.send(JSON.stringify({ type: 'error', data: { code: step, message: 'Not now.' } }));
        return;
      }
      for (const [seq, e] of LINES.entries()) socket.send(JSON.stringify({ ...e, run: 'run1', seq }));
    });
  });
  const url = `ws://127.0.0.1:${wss.address().port}/runs/ws`;
  try {
    plan = ['unavailable', 'internal', 'run'];
    let got = await collect(ask(url, { question: 'q', transport: 'websocket', WebSocket, ...fast }));
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.answer, 'one two three');
    assert.equal(asks.length, 3);
    assert.match(asks[0].key, /^[0-9a-f]{32}$/);
    assert.ok(asks.every((a) => a.type === 'ask' && a.key === asks[0].key));

    asks.length = 0;
    plan = ['invalid'];
    got = await collect(ask(url, { question: 'q', transport: 'websocket', WebSocket, ...fast, idempotencyKey: 'mine' }));
    assert.equal(got.error?.code, 'invalid');
    assert.deepEqual(asks, [{ type: 'ask', question: 'q', key: 'mine' }]);
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  }
});
