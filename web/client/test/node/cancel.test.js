// Cancel: the client's cancel() and the cancel() helper stop the run on the
// server (its generator's context ends at once) and the iteration ends with
// the canceled event, which is neither an answer nor a failure. And abort,
// which keeps its v1 meaning: the connection closes, and the server cancels
// the run when nobody comes back within its linger window.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import { RunnelError, ask, askEach, cancel } from '../../runnel.js';
import { collect, nodeServer, startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
let server;
let control;
let stream;
let runs;

before(async () => {
  // A short linger, so that the abandoned-run test waits for the server's
  // timer rather than for 30 s; the cancels do not depend on it.
  server = await startTestServer({ linger: '300ms' });
  control = server.control;
  stream = server.url + '/articles/stream';
  runs = server.url + '/runs/';
});

after(async () => {
  await server?.stop();
});

beforeEach(async () => {
  await control.reset();
});

/** replay reads a run's whole log again from GET /runs/{id}, as NDJSON. */
async function replay(id) {
  const res = await fetch(runs + id);
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
}

for (const transport of ['ndjson', 'sse']) {
  test(`${transport}: cancel() stops the generator, and the iteration ends with canceled, no throw`, async () => {
    await control.mode('hang', { after: 3 });
    const it = ask(stream, { question: QUESTION, transport });
    const events = [];
    let result;
    for await (const e of it) {
      events.push(e);
      if (e.type === 'token' && events.filter((x) => x.type === 'token').length === 3) {
        await control.until((s) => s.waiting, 'the generator to hang');
        result = await it.cancel();
      }
    }
    assert.deepEqual(result, { id: it.runId, state: 'canceled' });
    const last = events.at(-1);
    assert.deepEqual(last, { type: 'canceled', data: { reason: 'client' }, run: it.runId, seq: events.length - 1 });
    const st = await control.until((s) => s.cancelled === 1 && s.running === 0, "the server's generation to be cancelled");
    assert.equal(st.finished, 0);
    assert.equal(st.started, 1);
    // The run's log ends the same way for any reader.
    assert.deepEqual((await replay(it.runId)).at(-1), { type: 'canceled', data: { reason: 'client' } });
    // Again: the run has ended; cancel says how, without a request.
    assert.deepEqual(await it.cancel(), { id: it.runId, state: 'canceled' });
  });
}

test('askEach resolves with {canceled: true, reason} for a canceled run', async () => {
  await control.mode('hang', { after: 2 });
  const seen = [];
  const result = await askEach(stream, { question: QUESTION }, async (e) => {
    seen.push(e.type);
    if (e.type === 'query') {
      await control.until((s) => s.waiting, 'the generator to hang');
      assert.equal((await cancel(runs, e.run)).state, 'canceled');
    }
  });
  assert.deepEqual(result, { canceled: true, reason: 'client' });
  assert.equal(seen.at(-1), 'canceled');
  await control.until((s) => s.cancelled === 1, 'the generation to be cancelled');
});

test('cancel() before the server names the run waits for the name; before the iteration, it ends it at once', async () => {
  await control.mode('hang', { after: 1 });
  const it = ask(stream, { question: QUESTION });
  const first = it.next(); // the request is on its way; no run id yet
  assert.equal(it.runId, undefined);
  const result = await it.cancel();
  assert.equal(result.state, 'canceled');
  assert.equal(result.id, it.runId);
  const rest = [(await first).value];
  for await (const e of it) rest.push(e);
  assert.equal(rest.at(-1).type, 'canceled');
  // The cancel may land before the generator even began (during the search):
  // either way nothing runs on, and the run ended canceled.
  const st = await control.until((s) => s.running === 0 && s.started === s.cancelled, 'nothing left running');
  assert.equal(st.finished, 0);
  assert.deepEqual((await replay(it.runId)).at(-1), { type: 'canceled', data: { reason: 'client' } });

  const idle = ask(stream, { question: QUESTION });
  assert.equal(await idle.cancel(), undefined, 'nothing was asked: nothing to cancel');
  const got = await collect(idle);
  assert.equal(got.error, undefined);
  assert.deepEqual(got.events, [{ type: 'canceled', data: { reason: 'client' }, run: '', seq: 0 }]);
  assert.equal((await control.state()).started, st.started, 'and nothing was asked');
});

test('the cancel() helper: DELETE and POST .../cancel, an ended run, an unknown run', async () => {
  await control.mode('hang', { after: 2 });
  const it = ask(stream, { question: QUESTION });
  const reading = collect(it);
  await control.until((s) => s.waiting, 'the generator to hang');
  const id = await waitFor(() => it.runId, { what: 'the run id' });
  assert.deepEqual(await cancel(runs + id, { method: 'POST' }), { id, state: 'canceled' }, 'the run URL itself, beacon style');
  const got = await reading;
  assert.equal(got.error, undefined);
  assert.equal(got.types.at(-1), 'canceled');
  assert.deepEqual(await cancel(server.url + '/runs', id), { id, state: 'canceled' }, 'again: idempotent');

  await control.reset();
  const done = ask(stream, { question: QUESTION });
  const whole = await collect(done);
  assert.equal(whole.types.at(-1), 'done');
  assert.deepEqual(await cancel(runs, done.runId), { id: done.runId, state: 'done' }, 'an ended run stays as it ended');
  assert.equal((await replay(done.runId)).at(-1).type, 'done');

  await assert.rejects(cancel(runs, 'AAAAAAAAAAAAAAAAAAAAAA'), (err) =>
    err instanceof RunnelError && err.code === 'not_found' && err.status === 404);
  await assert.rejects(cancel('http://127.0.0.1:1/runs/', 'x'), (err) => err instanceof RunnelError && err.code === 'network');
  await assert.rejects(cancel(runs, 'x', { method: 'PUT' }), TypeError);
});

test('abort closes the connection; the server cancels the run as abandoned after its linger window', async () => {
  await control.mode('hang', { after: 3 });
  const controller = new AbortController();
  const it = ask(stream, { question: QUESTION, signal: controller.signal });
  const reason = new DOMException('user stop', 'AbortError');
  let error;
  try {
    for await (const e of it) {
      if (e.type === 'token' && e.seq === 6) {
        await control.until((s) => s.waiting, 'the generator to hang');
        controller.abort(reason);
      }
    }
  } catch (err) {
    error = err;
  }
  assert.equal(error, reason, "ask throws the signal's reason, as in v1");
  await control.until((s) => s.cancelled === 1 && s.running === 0, 'the run to be abandoned');
  assert.deepEqual((await replay(it.runId)).at(-1), { type: 'canceled', data: { reason: 'abandoned' } });
});

test('a confirmed cancel ends the loop with canceled even if the connection then breaks for good', async () => {
  // A Node server: the stream names its run, sends two events and hangs; the
  // cancel is confirmed and breaks the stream; the run route no longer knows it.
  let streamRes;
  const srv = await nodeServer((req, res) => {
    if (req.method === 'DELETE') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"id":"run1","state":"canceled"}');
      streamRes.socket.destroy();
      return;
    }
    if (req.url.startsWith('/runs/')) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":{"code":"not_found","message":"No run."}}');
      return;
    }
    streamRes = res;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Runnel-Run-Id': 'run1' });
    res.write('{"type":"query","data":"q?"}\n{"type":"tags","data":[]}\n');
  });
  try {
    const it = ask(srv.url + '/articles/stream', { question: 'q', backoff: { base: 1, max: 4 } });
    const events = [];
    for await (const e of it) {
      events.push(e);
      if (e.type === 'tags') assert.deepEqual(await it.cancel(), { id: 'run1', state: 'canceled' });
    }
    assert.deepEqual(events.map((e) => e.type), ['query', 'tags', 'canceled']);
    assert.deepEqual(events.at(-1), { type: 'canceled', data: { reason: 'client' }, run: 'run1', seq: 2 });
  } finally {
    await srv.close();
  }
});
