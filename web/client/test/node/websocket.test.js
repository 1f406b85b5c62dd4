// GET /runs/ws with the npm `ws` package: the protocol's messages as they
// are (several questions one after another on one socket, refusals that keep
// the socket open, cancel, resume over a new socket), then the JS client's
// transport "websocket" on top of it.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import WebSocket from 'ws';

import { RunnelError, ask, askEach } from '../../runnel.js';
import { startProxy } from '../support/proxy.js';
import { collect, startTestServer } from '../support/server.js';

const QUESTION = 'what is websocket?';
let server;
let control;
let wsURL;

before(async () => {
  server = await startTestServer({ linger: '30s' });
  control = server.control;
  wsURL = server.url.replace(/^http/, 'ws') + '/runs/ws';
});

after(async () => {
  await server?.stop();
});

beforeEach(async () => {
  await control.reset();
});

/** Socket wraps a ws WebSocket: send, and await the next message or the close. */
class Socket {
  #inbox = [];
  #wait = null;

  static async open(url) {
    const s = new Socket(new WebSocket(url));
    await new Promise((resolve, reject) => {
      s.ws.once('open', resolve);
      s.ws.once('error', reject);
    });
    return s;
  }

  constructor(ws) {
    this.ws = ws;
    ws.on('message', (data, binary) => this.#put({ message: binary ? data : JSON.parse(data.toString()) }));
    ws.on('close', (code, reason) => this.#put({ close: { code, reason: reason.toString() } }));
  }

  #put(item) {
    if (this.#wait) {
      const w = this.#wait;
      this.#wait = null;
      w(item);
    } else {
      this.#inbox.push(item);
    }
  }

  next() {
    return this.#inbox.length ? Promise.resolve(this.#inbox.shift()) : new Promise((r) => { this.#wait = r; });
  }

  send(msg) {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /**
   * until reads messages until pred(message, all so far) accepts one (by
   * default, a terminal event), and returns them all.
   */
  async until(pred = (m) => ['done', 'error', 'canceled'].includes(m.type)) {
    const got = [];
    for (;;) {
      const item = await this.next();
      if (item.close) throw new Error(`closed (${item.close.code}) after ${JSON.stringify(got.slice(-2))}`);
      got.push(item.message);
      if (pred(item.message, got)) return got;
    }
  }

  close() {
    this.ws.close(1000);
  }
}

const tokensOf = (msgs) => msgs.filter((m) => m.type === 'token').map((m) => m.data).join('');

test('two questions one after another on one socket, each a run of its own', async () => {
  const s = await Socket.open(wsURL);
  try {
    s.send({ type: 'ask', question: QUESTION });
    const first = await s.until();
    const a1 = (await control.state()).answer;
    s.send({ type: 'ask', question: 'what is quic' });
    const second = await s.until();
    const a2 = (await control.state()).answer;
    for (const [msgs, answer, query] of [[first, a1, QUESTION], [second, a2, 'what is quic?']]) {
      assert.deepEqual(msgs.map((m) => m.type).slice(0, 4), ['query', 'tags', 'titles', 'sources']);
      assert.equal(msgs.at(-1).type, 'done');
      assert.equal(msgs[0].data, query);
      assert.equal(tokensOf(msgs), answer);
      assert.match(msgs[0].run, /^[A-Za-z0-9_-]{22}$/);
      assert.ok(msgs.every((m) => m.run === msgs[0].run), 'every message names the run');
      assert.deepEqual(msgs.map((m) => m.seq), msgs.map((m, i) => i), 'numbered from 0, +1 each');
    }
    assert.notEqual(first[0].run, second[0].run);
    assert.equal((await control.state()).started, 2);
  } finally {
    s.close();
  }
});

test('?question= asks at once', async () => {
  const s = await Socket.open(`${wsURL}?question=${encodeURIComponent(QUESTION)}`);
  try {
    const msgs = await s.until();
    assert.equal(msgs[0].data, QUESTION);
    assert.equal(msgs.at(-1).type, 'done');
    assert.equal(tokensOf(msgs), (await control.state()).answer);
  } finally {
    s.close();
  }
});

test('refusals come without run or seq, and the socket stays open', async () => {
  await control.mode('hang', { after: 2 });
  const s = await Socket.open(wsURL);
  try {
    const refused = async (msg, code) => {
      s.send(msg);
      const [m] = await s.until((m) => m.type === 'error');
      assert.equal(m.data.code, code, JSON.stringify(msg));
      assert.ok(typeof m.data.message === 'string' && m.data.message.length > 0);
      assert.equal('run' in m, false, 'no run');
      assert.equal('seq' in m, false, 'no seq');
    };
    await refused({ type: 'ask', question: '   ' }, 'invalid');
    await refused('{not json', 'invalid');
    await refused({ type: 'resume', run: 'AAAAAAAAAAAAAAAAAAAAAA', after: -1 }, 'not_found');
    // A run in progress on this socket: asking again is refused, the run goes on.
    s.send({ type: 'ask', question: QUESTION });
    const begun = await s.until((m) => m.type === 'token' && m.seq === 5);
    await control.until((st) => st.waiting, 'the generator to hang');
    await refused({ type: 'ask', question: 'what is quic' }, 'invalid');
    s.send({ type: 'cancel' });
    const end = await s.until();
    assert.equal(end.at(-1).type, 'canceled');
    assert.equal(end.at(-1).run, begun[0].run);
    // Still open: the next question is answered.
    await control.mode('instant');
    s.send({ type: 'ask', question: QUESTION });
    assert.equal((await s.until()).at(-1).type, 'done');
  } finally {
    s.close();
  }
});

test('cancel over the socket: the reader sees canceled at once, and the generator stops', async () => {
  await control.mode('hang', { after: 3 });
  const s = await Socket.open(wsURL);
  try {
    s.send({ type: 'ask', question: QUESTION });
    const begun = await s.until((m) => m.type === 'token' && m.seq === 6);
    await control.until((st) => st.waiting, 'the generator to hang');
    s.send({ type: 'cancel', run: begun[0].run });
    const [canceled] = await s.until();
    assert.deepEqual(canceled, { type: 'canceled', data: { reason: 'client' }, run: begun[0].run, seq: 7 });
    const st = await control.until((st) => st.cancelled === 1 && st.running === 0, 'the generation to be cancelled');
    assert.equal(st.finished, 0);
  } finally {
    s.close();
  }
});

test('resume over a new socket after closing one mid-answer: nothing missing, nothing twice, generated once', async () => {
  await control.mode('gated', { steps: 3 });
  const s1 = await Socket.open(wsURL);
  s1.send({ type: 'ask', question: QUESTION });
  const st = await control.until((st) => st.waiting && st.step === 1, 'the first step');
  const part = await s1.until((m, got) => tokensOf(got) === st.emitted);
  s1.close(); // the reader leaves mid-answer; the run lingers

  const s2 = await Socket.open(wsURL);
  try {
    const last = part.at(-1).seq;
    s2.send({ type: 'resume', run: part[0].run, after: last });
    await control.release();
    await control.until((st) => st.waiting && st.step === 2, 'the second step');
    await control.release();
    const rest = await s2.until();
    assert.equal(rest[0].seq, last + 1, 'the first event after the last one read');
    const all = [...part, ...rest];
    assert.deepEqual(all.map((m) => m.seq), all.map((m, i) => i));
    assert.ok(rest.every((m) => m.run === part[0].run));
    assert.equal(all.at(-1).type, 'done');
    const end = await control.state();
    assert.equal(tokensOf(all), end.answer);
    assert.equal(end.started, 1);
  } finally {
    s2.close();
  }
});

test('the client over WebSocket: an answer, numbered, like the other transports', async () => {
  const it = ask(server.url + '/articles/stream', { question: QUESTION, transport: 'websocket', WebSocket });
  const got = await collect(it);
  assert.equal(got.error, undefined);
  assert.deepEqual(got.types.slice(0, 4), ['query', 'tags', 'titles', 'sources']);
  assert.equal(got.types.at(-1), 'done');
  assert.equal(got.answer, (await control.state()).answer);
  assert.match(it.runId, /^[A-Za-z0-9_-]{22}$/);
  assert.ok(got.events.every((e, i) => e.run === it.runId && e.seq === i));

  // A ws: URL is the endpoint itself.
  const direct = await collect(ask(wsURL, { question: QUESTION, transport: 'websocket', WebSocket }));
  assert.equal(direct.error, undefined);
  assert.equal(direct.types.at(-1), 'done');
});

test('the client over WebSocket: cancel() is the socket\'s cancel, and canceled is no error', async () => {
  await control.mode('hang', { after: 3 });
  const it = ask(wsURL, { question: QUESTION, transport: 'websocket', WebSocket });
  const events = [];
  let result;
  for await (const e of it) {
    events.push(e);
    if (e.type === 'token' && e.seq === 6) {
      await control.until((st) => st.waiting, 'the generator to hang');
      result = await it.cancel();
    }
  }
  assert.deepEqual(result, { id: it.runId, state: 'canceled' });
  assert.deepEqual(events.at(-1), { type: 'canceled', data: { reason: 'client' }, run: it.runId, seq: 7 });
  await control.until((st) => st.cancelled === 1 && st.running === 0, 'the generation to be cancelled');

  await control.reset();
  await control.mode('hang', { after: 1 });
  const answer = ask(wsURL, { question: QUESTION, transport: 'websocket', WebSocket });
  const each = (async () => {
    const events = [];
    for await (const e of answer) events.push(e);
    return events;
  })();
  await control.until((st) => st.waiting, 'the generator to hang');
  await answer.cancel();
  assert.equal((await each).at(-1).type, 'canceled');
  const res = await askEach(wsURL, { question: QUESTION, transport: 'websocket', WebSocket, signal: AbortSignal.abort() }, () => {})
    .catch((err) => err);
  assert.equal(res.name, 'AbortError');
});

test('the client over WebSocket resumes on a new socket when the connection is cut', async () => {
  const proxy = await startProxy(server.url);
  try {
    await control.mode('gated', { steps: 3 });
    const it = ask(proxy.url + '/articles/stream', { question: QUESTION, transport: 'websocket', WebSocket, backoff: { base: 1, max: 8 } });
    const events = [];
    let cut = false;
    for await (const e of it) {
      events.push(e);
      const st = await control.state();
      if (!st.waiting || tokensOf(events) !== st.emitted) continue;
      if (!cut) {
        cut = true;
        proxy.cutAll();
      }
      await control.release();
    }
    assert.equal(events.at(-1).type, 'done');
    assert.deepEqual(events.map((e) => e.seq), events.map((e, i) => i));
    const st = await control.state();
    assert.equal(tokensOf(events), st.answer);
    assert.equal(st.started, 1);
    assert.equal(proxy.requests.filter((r) => r.path === '/runs/ws').length, 2, 'a second socket');
  } finally {
    await proxy.close();
  }
});

test('the client over WebSocket: refusals, an expired run, an unreachable server', async () => {
  let got = await collect(ask(wsURL, { question: ' ', transport: 'websocket', WebSocket }));
  assert.ok(got.error instanceof RunnelError);
  assert.equal(got.error.code, 'invalid');

  await control.mode('gated', { steps: 2 });
  const proxy = await startProxy(server.url);
  try {
    const it = ask(proxy.url + '/runs/ws', { question: QUESTION, transport: 'websocket', WebSocket, backoff: { base: 1, max: 8 } });
    got = { events: [] };
    try {
      for await (const e of it) {
        got.events.push(e);
        const st = await control.state();
        if (st.waiting && tokensOf(got.events) === st.emitted) {
          await control.expire();
          proxy.cutAll();
        }
      }
    } catch (err) {
      got.error = err;
    }
    assert.equal(got.error?.code, 'not_found', String(got.error));
    assert.match(got.error.message, /can no longer be resumed/);
    assert.equal(got.error.run, it.runId);
    await control.reset();
    await fetch(server.url + '/runs/' + it.runId, { method: 'DELETE' });
  } finally {
    await proxy.close();
  }

  got = await collect(ask('ws://127.0.0.1:1/runs/ws', { question: QUESTION, transport: 'websocket', WebSocket }));
  assert.equal(got.error?.code, 'network');
});
