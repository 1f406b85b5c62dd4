// The npm `eventsource` package (a WHATWG EventSource for Node) against the
// SSE routes, through the cutting proxy: it reads a run, loses its
// connection mid-answer, reconnects by itself with Last-Event-ID, and gets
// the rest of the same run: nothing missing, nothing twice, generated once.
// After the terminal event, its next reconnection gets 204 and it stops.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import { EventSource } from 'eventsource';

import { startProxy } from '../support/proxy.js';
import { startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
const TYPES = ['query', 'tags', 'titles', 'sources', 'token', 'done', 'error', 'canceled'];
let server;
let control;
let proxy;

before(async () => {
  server = await startTestServer({ linger: '30s' });
  control = server.control;
  proxy = await startProxy(server.url);
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

beforeEach(async () => {
  proxy.clearRules();
  await control.reset();
});

/** listen opens an EventSource on the question and records what it receives. */
function listen(question, { closeOnDone = true } = {}) {
  const es = new EventSource(`${proxy.url}/articles/stream?question=${encodeURIComponent(question)}`);
  const got = { es, events: [], errors: 0 };
  for (const type of TYPES) {
    es.addEventListener(type, (ev) => {
      // The EventSource's own "error" (a failed connection) has no data; the
      // protocol's error event does.
      if (ev.data === undefined) {
        got.errors++;
        return;
      }
      got.events.push({ type, data: JSON.parse(ev.data), id: ev.lastEventId });
      if (closeOnDone && type === 'done') es.close();
    });
  }
  return got;
}

const tokensOf = (events) => events.filter((e) => e.type === 'token').map((e) => e.data).join('');

/** check asserts the events are one whole run: every number once, in order, and the generated answer. */
async function check(events) {
  const run = events[0].id.split('.')[0];
  assert.match(run, /^[A-Za-z0-9_-]{22}$/);
  assert.deepEqual(events.map((e) => e.id), events.map((e, i) => `${run}.${i}`), 'nothing missing or twice');
  assert.equal(events.at(-1).type, 'done');
  const st = await control.state();
  assert.equal(tokensOf(events), st.answer);
  assert.equal(st.started, 1, 'generated once');
  return run;
}

test('cut between two events at a gate: it comes back with Last-Event-ID, and stops after the end with 204', async () => {
  await control.mode('gated', { steps: 3 });
  const got = listen(QUESTION, { closeOnDone: false });
  try {
    let cut = false;
    await waitFor(async () => {
      const st = await control.state();
      if (st.waiting && tokensOf(got.events) === st.emitted) {
        if (!cut) {
          cut = true;
          proxy.cutAll();
        }
        await control.release();
      }
      return got.events.at(-1)?.type === 'done';
    }, { what: 'the whole answer', interval: 20 });
    const run = await check(got.events);
    assert.ok(got.errors >= 1, 'the EventSource saw its connection fail');

    // The stream ended after done: the EventSource reconnects once more, gets
    // 204 No Content, and closes for good.
    await waitFor(() => got.es.readyState === EventSource.CLOSED, { what: 'the EventSource to stop' });
    const asks = proxy.requests.filter((r) => r.path === '/articles/stream');
    const lastIDs = asks.map((r) => /\r\nlast-event-id: ([^\r]+)/i.exec(r.head)?.[1]);
    assert.equal(lastIDs[0], undefined, 'the first request asks');
    const step1 = got.events.findIndex((e) => e.id === lastIDs[1]);
    assert.ok(step1 > 4 && got.events[step1].type === 'token', `the reconnection names a token it had: ${lastIDs[1]}`);
    assert.equal(lastIDs.at(-1), `${run}.${got.events.length - 1}`, 'the last one names done');
    assert.equal(asks.length, 3);
    assert.equal((await control.state()).started, 1);
  } finally {
    got.es.close();
  }
});

test('cut in the middle of an event: the partial event is dropped, then read again whole', async () => {
  // Learn where the events are in an uninterrupted response first.
  const plain = listen(QUESTION);
  await waitFor(() => plain.events.at(-1)?.type === 'done', { what: 'an uninterrupted answer' });
  const bytes = proxy.responseTo('/articles/stream').toString('latin1');
  const tokenAt = bytes.indexOf('event: token', bytes.length / 2);
  await control.reset();

  for (const at of [tokenAt + 5, tokenAt + 'event: token\nid: '.length + 10, bytes.indexOf('\ndata: ', tokenAt) + 9]) {
    await control.reset();
    const cut = proxy.cutNext(at, { path: '/articles/stream' });
    const got = listen(QUESTION);
    try {
      await waitFor(() => got.events.at(-1)?.type === 'done', { what: `the answer after a cut at ${at}` });
      await cut;
      await check(got.events);
      const again = proxy.requests.findLast((r) => r.path === '/articles/stream');
      assert.match(again.head, /\r\nlast-event-id: [A-Za-z0-9_-]{22}\.\d+\r?$/im, 'it came back with Last-Event-ID');
    } finally {
      got.es.close();
    }
  }
});
