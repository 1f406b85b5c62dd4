// Resuming: a connection cut anywhere in an answer (by a TCP proxy in front of
// the real Go server, so that the resume goes through the real server too)
// loses nothing and repeats nothing, and the answer is generated once. Then
// the resume's own rules, against the real server and against Node servers
// that answer exactly what a case needs.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import { RunnelError, ask, cancel } from '../../runnel.js';
import { startProxy } from '../support/proxy.js';
import { collect, nodeServer, startTestServer } from '../support/server.js';

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
 * cutPoints picks where to cut an answer from the bytes of an uninterrupted
 * response: right after the headers (the run is named, no event yet), inside
 * every chunk header and between its CR and LF, inside every multi-byte
 * character, just before and just after the end of every event, inside the
 * SSE id lines; never after the start of the done event, so that every cut
 * falls inside the answer even if the next response is framed a little
 * differently (the server batches events that are ready together).
 */
function cutPoints(bytes, sse) {
  const text = bytes.toString('latin1');
  const body = text.indexOf('\r\n\r\n') + 4;
  const points = new Set([body]);
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
  return [...points].filter((p) => p <= last).sort((a, b) => a - b);
}

/** doneIn says whether the bytes a client got hold the whole done event. */
function doneIn(sent, sse) {
  const text = sent.toString('latin1');
  return sse ? /event: done\nid: [^\n]+\ndata: [^\n]*\n\n/.test(text) : /\{"type":"done","data":\{.*\}\}/.test(text);
}

for (const transport of ['ndjson', 'sse']) {
  test(`${transport}: a cut at any byte of the answer loses nothing, repeats nothing, and generates once`, async () => {
    const whole = await collect(ask(stream, { question: QUESTION, transport }));
    assert.equal(whole.error, undefined);
    const want = await control.state();
    assert.equal(whole.answer, want.answer);
    const bytes = proxy.responseTo('/articles/stream');
    assert.ok([...bytes].some((b) => b >= 0xc0), 'the response has a multi-byte character');
    const points = cutPoints(bytes, transport === 'sse');
    assert.ok(points.length > 100, `${points.length} cut points`);

    let resumed = 0;
    for (const at of points) {
      await control.reset();
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
