// The browser's own EventSource and WebSocket against runnel, in Debian's
// Chromium: an EventSource on /articles/stream?question=... resumes the same
// run by itself when the connection under it is cut (by the proxy), and a
// WebSocket on /runs/ws asks and reads to done, directly and through the JS
// client's transport "websocket".

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { launch } from '../support/browser.js';
import { startProxy } from '../support/proxy.js';
import { startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
let server;
let control;
let proxy;
let browser;
let page;

before(async () => {
  [server, browser] = await Promise.all([startTestServer({ linger: '30s' }), launch()]);
  control = server.control;
  proxy = await startProxy(server.url);
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await server?.stop();
});

beforeEach(async () => {
  proxy.clearRules();
  await control.reset();
  page = await browser.newPage();
  await page.goto(proxy.url + '/'); // same origin as the streams, as the page's CSP wants
});

afterEach(async () => {
  const errors = page.errors;
  await page.close();
  assert.deepEqual(errors, [], 'uncaught errors in the page');
});

const tokensOf = (events) => events.filter((e) => e.type === 'token').map((e) => e.data).join('');

test("the browser's EventSource resumes the same run by itself after a cut", async () => {
  await control.mode('gated', { steps: 3 });
  await page.evaluate((question) => {
    const got = { events: [], failures: 0, closed: false };
    window.got = got;
    const es = new EventSource('articles/stream?question=' + encodeURIComponent(question));
    for (const type of ['query', 'tags', 'titles', 'sources', 'token', 'done', 'error', 'canceled']) {
      es.addEventListener(type, (ev) => {
        if (ev.data === undefined) { // the EventSource's own error: the connection failed
          got.failures++;
          return;
        }
        got.events.push({ type, data: JSON.parse(ev.data), id: ev.lastEventId });
        if (type === 'done') {
          es.close();
          got.closed = true;
        }
      });
    }
  }, QUESTION);
  const got = () => page.evaluate(() => window.got);

  let cut = false;
  const end = await waitFor(async () => {
    const [g, st] = await Promise.all([got(), control.state()]);
    if (st.waiting && tokensOf(g.events) === st.emitted) {
      if (!cut) {
        cut = true;
        proxy.cutAll();
      }
      await control.release();
    }
    return g.closed ? g : undefined;
  }, { what: 'the EventSource to read the whole answer', interval: 20 });

  const st = await control.state();
  assert.equal(tokensOf(end.events), st.answer, 'the whole answer');
  const run = end.events[0].id.split('.')[0];
  assert.deepEqual(end.events.map((e) => e.id), end.events.map((e, i) => `${run}.${i}`), 'nothing missing or twice');
  assert.ok(end.failures >= 1, 'the connection did fail under it');
  assert.equal(st.started, 1, 'generated once');
  const again = proxy.requests.filter((r) => r.path === '/articles/stream');
  assert.equal(again.length, 2);
  assert.match(again[1].head, new RegExp(`\\r\\nlast-event-id: ${run}\\.\\d+`, 'i'), 'it came back with Last-Event-ID');
});

test("the browser's WebSocket asks on /runs/ws and reads to done; so does the client's transport", async () => {
  const raw = await page.evaluate((question) => new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL('runs/ws', document.baseURI.replace(/^http/, 'ws')));
    const messages = [];
    ws.onopen = () => ws.send(JSON.stringify({ type: 'ask', question }));
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      messages.push(msg);
      if (msg.type === 'done' || msg.type === 'error') ws.close(1000);
    };
    ws.onclose = (ev) => resolve({ messages, code: ev.code });
    ws.onerror = () => reject(new Error('the WebSocket failed'));
  }), QUESTION);
  assert.equal(raw.messages.at(-1).type, 'done');
  assert.equal(raw.messages[0].data, QUESTION);
  assert.deepEqual(raw.messages.map((m) => m.seq), raw.messages.map((m, i) => i));
  assert.ok(raw.messages.every((m) => m.run === raw.messages[0].run));
  assert.equal(tokensOf(raw.messages), (await control.state()).answer);

  const viaClient = await page.evaluate(async (question) => {
    const { ask } = await import(new URL('static/client/runnel.js', document.baseURI).href);
    const events = [];
    for await (const e of ask('articles/stream', { question, transport: 'websocket' })) events.push(e);
    return events;
  }, QUESTION);
  assert.equal(viaClient.at(-1).type, 'done');
  assert.equal(tokensOf(viaClient), (await control.state()).answer);
  assert.equal((await control.state()).started, 2);
});
