// API keys: the test server with keys on (rhttp.Server.APIKeys), through the
// recording proxy, so that what the client sent is read off the wire. Without
// a key, or with a wrong one, every transport is refused at once with
// unauthorized (401), asked once and never generated; with the key, each
// gives the whole answer, a cut is resumed with the key, and a cancel needs
// it too. The npm ws and eventsource packages show the two forms of the key
// that clients without this module use: a header, and access_token on GET.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import axios from 'axios';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';

import { askAxios } from '../../axios.js';
import { RunnelError, ask, cancel } from '../../runnel.js';
import { startProxy } from '../support/proxy.js';
import { collect, startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
const KEY = 'key-one_2.~+/=';
const OTHER = 'key-two';
const fast = { backoff: { base: 1, max: 8 } }; // were anything retried, it would be at once
const TRANSPORTS = [
  { name: 'ndjson', options: { transport: 'ndjson' } },
  { name: 'ndjson GET', options: { transport: 'ndjson', method: 'GET' } },
  { name: 'sse', options: { transport: 'sse' } },
  { name: 'websocket', options: { transport: 'websocket', WebSocket } },
];

let server;
let control;
let proxy;
let stream; // the stream endpoint, through the proxy
let runs;

before(async () => {
  server = await startTestServer({ linger: '30s', apiKeys: [KEY, OTHER] });
  control = server.control;
  proxy = await startProxy(server.url);
  stream = proxy.url + '/articles/stream';
  runs = proxy.url + '/runs/';
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

beforeEach(async () => {
  proxy.clearRules();
  await control.reset();
});

const tokensOf = (events) => events.filter((e) => e.type === 'token').map((e) => e.data).join('');

/** header returns the value of a header in a recorded request head, or undefined. */
function header(req, name) {
  const m = new RegExp(`^${name}: *(.*?)\\r?$`, 'im').exec(req.head);
  return m?.[1];
}

const isUpgrade = (r) => /^upgrade: websocket\r?$/im.test(r.head);

/** asks returns the requests since first that asked the question: POSTs or GETs of the stream, or upgrades. */
function asks(first) {
  return proxy.requests.slice(first).filter((r) => r.path === '/articles/stream' || (r.path === '/runs/ws' && isUpgrade(r)));
}

test('without a key, every transport is refused at once: unauthorized, 401, asked once, nothing generated', async () => {
  for (const { name, options } of TRANSPORTS) {
    const first = proxy.requests.length;
    let reconnects = 0;
    const got = await collect(ask(stream, { question: QUESTION, ...options, ...fast, onReconnect: () => reconnects++ }));
    assert.ok(got.error instanceof RunnelError, `${name}: ${got.error?.stack}`);
    assert.equal(got.error.code, 'unauthorized', name);
    assert.equal(got.error.status, 401, name);
    assert.equal(got.error.retryable, false, name);
    assert.match(got.error.message, /needs an API key/, name);
    assert.deepEqual(got.events, [], name);
    assert.equal(reconnects, 0, `${name}: not retried`);
    assert.equal(asks(first).length, 1, `${name}: asked once`);
    assert.ok(proxy.requests.slice(first).every((r) => header(r, 'authorization') === undefined && !r.url.includes('access_token')),
      `${name}: no key was sent`);
  }
  assert.equal((await control.state()).started, 0, 'nothing was generated');
});

test('a wrong key is unauthorized too, and the message says the key is not accepted', async () => {
  for (const { name, options } of TRANSPORTS) {
    const first = proxy.requests.length;
    const got = await collect(ask(stream, { question: QUESTION, ...options, ...fast, apiKey: 'key-three' }));
    assert.equal(got.error?.code, 'unauthorized', `${name}: ${got.error?.stack}`);
    assert.equal(got.error.status, 401, name);
    assert.match(got.error.message, /not one this server accepts/, name);
    assert.equal(asks(first).length, 1, `${name}: asked once`);
  }
  assert.equal((await control.state()).started, 0);
});

test('with the key, each transport gives the whole answer; fetch sends it as Bearer, a WebSocket as access_token', async () => {
  for (const { name, options } of TRANSPORTS) {
    await control.reset();
    const first = proxy.requests.length;
    const got = await collect(ask(stream, { question: QUESTION, ...options, apiKey: KEY }));
    assert.equal(got.error, undefined, `${name}: ${got.error?.stack}`);
    const st = await control.state();
    assert.equal(got.answer, st.answer, name);
    assert.equal(got.types.at(-1), 'done', name);
    assert.deepEqual(got.events.map((e) => e.seq), got.events.map((e, i) => i), name);
    assert.equal(st.started, 1, name);
    const [req] = asks(first);
    if (options.transport === 'websocket') {
      assert.equal(new URL(req.url, proxy.url).searchParams.get('access_token'), KEY, name);
      assert.equal(header(req, 'authorization'), undefined, `${name}: a browser's WebSocket could send no header`);
    } else {
      assert.equal(header(req, 'authorization'), `Bearer ${KEY}`, name);
      assert.ok(!req.url.includes('access_token'), `${name}: the key stays out of the URL: ${req.url}`);
    }
  }
  // Any of the server's keys will do, and apiKey takes the place of an Authorization in headers.
  const got = await collect(ask(stream, { question: QUESTION, apiKey: OTHER, headers: { authorization: 'Bearer stale' } }));
  assert.equal(got.error, undefined, got.error?.stack);
  assert.equal(header(proxy.requests.at(-1), 'authorization'), `Bearer ${OTHER}`);
});

for (const transport of ['ndjson', 'sse', 'websocket']) {
  test(`${transport}: a cut mid-answer is resumed with the key, on the run's route or a new socket`, async () => {
    await control.mode('gated', { steps: 3 });
    const first = proxy.requests.length;
    const it = ask(stream, { question: QUESTION, transport, WebSocket, apiKey: KEY, ...fast });
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
    const st = await control.state();
    assert.equal(events.at(-1).type, 'done');
    assert.deepEqual(events.map((e) => e.seq), events.map((e, i) => i), 'nothing missing or twice');
    assert.equal(tokensOf(events), st.answer);
    assert.equal(st.started, 1, 'generated once');
    const later = proxy.requests.slice(first);
    if (transport === 'websocket') {
      const sockets = later.filter(isUpgrade);
      assert.equal(sockets.length, 2, 'a second socket');
      assert.ok(sockets.every((r) => new URL(r.url, proxy.url).searchParams.get('access_token') === KEY));
    } else {
      const resumes = later.filter((r) => r.path === `/runs/${it.runId}`);
      assert.equal(resumes.length, 1, later.map((r) => r.url).join('\n'));
      assert.match(resumes[0].url, /\?after=\d+$/);
      assert.equal(header(resumes[0], 'authorization'), `Bearer ${KEY}`);
    }
  });

  test(`${transport}: cancel needs the key; with it, the run stops and the loop ends with canceled`, async () => {
    await control.mode('hang', { after: 3 });
    const it = ask(stream, { question: QUESTION, transport, WebSocket, apiKey: KEY });
    const reading = collect(it);
    await control.until((s) => s.waiting && s.running === 1, 'the generator to hang');
    await waitFor(() => it.runId, { what: 'the run to be named' });

    for (const apiKey of [undefined, 'key-three']) {
      const err = await cancel(runs, it.runId, { apiKey }).catch((e) => e);
      assert.ok(err instanceof RunnelError, String(err));
      assert.equal(err.code, 'unauthorized', `apiKey ${apiKey}`);
      assert.equal(err.status, 401);
    }
    let st = await control.state();
    assert.equal(st.running, 1, 'a refused cancel stops nothing');
    assert.equal(st.cancelled, 0);

    const first = proxy.requests.length;
    assert.deepEqual(await it.cancel(), { id: it.runId, state: 'canceled' });
    const got = await reading;
    assert.equal(got.error, undefined, got.error?.stack);
    assert.deepEqual(got.events.at(-1).data, { reason: 'client' });
    st = await control.until((s) => s.cancelled === 1 && s.running === 0, "the server's generation to be cancelled");
    assert.equal(st.finished, 0);
    const deletes = proxy.requests.slice(first).filter((r) => r.method === 'DELETE');
    if (transport === 'websocket') {
      assert.deepEqual(deletes, [], 'canceled over the socket, which the key opened');
    } else {
      assert.equal(deletes.length, 1);
      assert.equal(header(deletes[0], 'authorization'), `Bearer ${KEY}`);
    }
    // The helper on its own, with the key: POST .../cancel of the ended run.
    assert.deepEqual(await cancel(runs, it.runId, { apiKey: OTHER, method: 'POST' }), { id: it.runId, state: 'canceled' });
  });
}

test('apiKey is checked before anything is sent: visible ASCII without spaces', async () => {
  const first = proxy.requests.length;
  for (const apiKey of ['two words', 'line\nbreak', 'clé', 42, { key: KEY }]) {
    const got = await collect(ask(stream, { question: QUESTION, apiKey }));
    assert.ok(got.error instanceof TypeError, `${JSON.stringify(apiKey)}: ${got.error}`);
    assert.match(got.error.message, /apiKey/);
    await assert.rejects(cancel(runs, 'x', { apiKey }), TypeError);
    await assert.rejects(askAxios(axios, stream, { question: QUESTION, apiKey }, () => {}), TypeError);
  }
  assert.equal(proxy.requests.length, first, 'nothing was sent');
  // "" and null are no key, as absent is: the server says one is needed.
  for (const apiKey of ['', null]) {
    const got = await collect(ask(stream, { question: QUESTION, apiKey }));
    assert.equal(got.error?.code, 'unauthorized');
    assert.match(got.error.message, /needs an API key/);
  }
});

test('askAxios sends apiKey as Bearer: unauthorized without it, the answer with it', async () => {
  const err = await askAxios(axios, stream, { question: QUESTION }, () => {}).catch((e) => e);
  assert.ok(err instanceof RunnelError, String(err));
  assert.equal(err.code, 'unauthorized');
  assert.equal(err.status, 401);
  const events = [];
  const done = await askAxios(axios, stream, { question: QUESTION, apiKey: KEY, config: { headers: { Authorization: 'Bearer stale' } } },
    (e) => events.push(e));
  assert.equal(done.finish_reason, 'stop');
  assert.equal(tokensOf(events), (await control.state()).answer);
  assert.equal(header(proxy.requests.at(-1), 'authorization'), `Bearer ${KEY}`);
});

test('the ws package, which can send headers, opens /runs/ws with a Bearer key, and is refused 401 without', async () => {
  const wsURL = proxy.url.replace(/^http/, 'ws') + '/runs/ws';
  const refused = new WebSocket(wsURL);
  refused.on('error', () => {}); // the handshake aborted below
  const status = await new Promise((resolve, reject) => {
    refused.once('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      res.resume();
      req.destroy();
    });
    refused.once('open', () => reject(new Error('opened without a key')));
  });
  assert.equal(status, 401);

  const got = await collect(ask(wsURL, { question: QUESTION, transport: 'websocket', WebSocket: class extends WebSocket {
    constructor(url) {
      // ws's own option, instead of the client's access_token: the key in a header.
      const u = new URL(url);
      u.searchParams.delete('access_token');
      super(u, { headers: { Authorization: `Bearer ${KEY}` } });
    }
  }, apiKey: KEY }));
  assert.equal(got.error, undefined, got.error?.stack);
  assert.equal(got.answer, (await control.state()).answer);
  const upgrade = proxy.requests.findLast(isUpgrade);
  assert.equal(header(upgrade, 'authorization'), `Bearer ${KEY}`);
  assert.ok(!upgrade.url.includes('access_token'));
});

/** listen opens an eventsource EventSource and collects a run's events until done or its failure. */
function listen(url, init) {
  const es = new EventSource(url, init);
  const events = [];
  return new Promise((resolve) => {
    for (const type of ['query', 'tags', 'titles', 'sources', 'token', 'done']) {
      es.addEventListener(type, (ev) => {
        events.push({ type, data: JSON.parse(ev.data) });
        if (type === 'done') {
          es.close();
          resolve({ events });
        }
      });
    }
    es.addEventListener('error', (ev) => {
      if (es.readyState !== es.CLOSED) return; // it reconnects by itself
      resolve({ events, error: { code: ev.code, message: ev.message } });
    });
  });
}

test('the eventsource package: refused 401 without a key; the answer with access_token, as a browser sends it, or a header', async () => {
  const url = `${proxy.url}/articles/stream?question=${encodeURIComponent(QUESTION)}`;
  let got = await listen(url);
  assert.deepEqual(got.error, { code: 401, message: 'Non-200 status code (401)' }, 'failed, not reconnecting');
  assert.deepEqual(got.events, []);
  got = await listen(`${url}&access_token=key-three`);
  assert.equal(got.error?.code, 401);

  got = await listen(`${url}&access_token=${encodeURIComponent(KEY)}`);
  assert.equal(got.error, undefined);
  assert.equal(tokensOf(got.events), (await control.state()).answer);

  await control.reset();
  got = await listen(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${KEY}` } }),
  });
  assert.equal(got.error, undefined);
  assert.equal(tokensOf(got.events), (await control.state()).answer);
  assert.equal(header(proxy.requests.at(-1), 'authorization'), `Bearer ${KEY}`);

  // access_token is for GET only: a POST must carry the key in a header.
  const res = await fetch(`${stream}?access_token=${encodeURIComponent(KEY)}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ question: QUESTION }),
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error.code, 'unauthorized');
});
