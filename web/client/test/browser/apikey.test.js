// The page in Chromium against the test server with an API key on
// (web/testserver -api-keys): the question is refused as unauthorized, the
// page asks for the key, a wrong one is refused with its message and the
// field comes back, the right one brings the answer, streamed, and the key is
// remembered for the tab's session (sessionStorage), across a reload. The
// browser's own EventSource and WebSocket carry the key as access_token, and
// are refused without it. Stop and leaving the page cancel the run with the
// key. Screenshots go to web/testoutput/.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { launch, shot } from '../support/browser.js';
import { startProxy } from '../support/proxy.js';
import { startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
const KEY = 'page-key-7f3a';
const ITEM = 'runnel.apiKey /'; // the page's sessionStorage item, named by the site's path
let server;
let control;
let proxy;
let browser;
let page;
let requests; // {method, url, path, auth} of every request the page made
let sockets; // the URL of every WebSocket the page opened

before(async () => {
  // Linger 30 s: a run canceled within the test was canceled, not abandoned.
  [server, browser] = await Promise.all([startTestServer({ linger: '30s', apiKeys: [KEY] }), launch()]);
  control = server.control;
  proxy = await startProxy(server.url);
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await server?.stop();
});

beforeEach(async () => {
  await control.reset();
  page = await browser.newPage();
  requests = [];
  sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  page.on('request', (r) => {
    const u = new URL(r.url());
    requests.push({ method: r.method(), url: r.url(), path: u.pathname, auth: r.headers().authorization });
  });
});

afterEach(async () => {
  const errors = page.errors;
  await page.close();
  assert.deepEqual(errors, [], 'uncaught errors in the page');
});

/** What the page shows, the key field and the tab's storage included. */
function view() {
  return page.evaluate((item) => {
    const $ = (id) => document.getElementById(id);
    return {
      state: document.body.dataset.state,
      error: document.body.dataset.error,
      answer: $('answer').textContent,
      status: $('status').textContent,
      alert: $('alert').hidden ? '' : $('alert-text').textContent,
      retry: !$('retry').hidden,
      keyField: !$('key-form').hidden,
      key: $('key').value,
      focus: document.activeElement?.id,
      stored: sessionStorage.getItem(item),
      local: localStorage.length,
    };
  }, ITEM);
}

function until(pred, what) {
  return waitFor(async () => {
    const v = await view();
    return pred(v) ? v : undefined;
  }, { what });
}

const asked = () => requests.filter((r) => r.method === 'POST' && r.path === '/articles/stream');

/** enterKey types key in the key field and submits it with Enter. */
async function enterKey(key) {
  await page.locator('#key').fill(key);
  await page.locator('#key').press('Enter');
}

test('a keyed server: ask, the key field, a wrong key refused, the right one streams the answer, and a reload remembers it', async () => {
  await control.mode('gated', { steps: 3 });
  await page.goto(server.url + '/');
  assert.ok(await page.locator('#key-form').isHidden(), 'no key field before the server asks for one');
  await page.locator('#q').fill(QUESTION);
  await page.keyboard.press('Enter');

  let v = await until((v) => v.state === 'error' && v.keyField, 'the key field');
  assert.equal(v.error, 'unauthorized');
  assert.equal(v.alert, 'This server answers only with its API key. Enter the key to ask.');
  assert.ok(!v.retry, 'the key field, not Try again, is the way on');
  assert.equal(v.focus, 'key', 'the focus is in the key field');
  assert.equal(v.stored, null);
  // The field is a labelled password input, with its hint.
  const field = await page.evaluate(() => {
    const el = document.getElementById('key');
    return {
      type: el.type,
      label: el.labels[0]?.textContent,
      hint: document.getElementById(el.getAttribute('aria-describedby')).textContent,
      button: el.form.querySelector('button[type=submit]').textContent,
    };
  });
  assert.deepEqual({ type: field.type, label: field.label, button: field.button }, { type: 'password', label: 'API key', button: 'Use key' });
  assert.match(field.hint, /keeps the key in this tab until you close it/);
  assert.equal(asked().length, 1);
  assert.equal(asked()[0].auth, undefined, 'no key sent before there was one');
  assert.equal((await control.state()).started, 0, 'nothing generated');
  await page.screenshot({ path: shot('key-prompt.png') });

  await enterKey('not-the-key');
  v = await until((v) => v.state === 'error' && v.alert.startsWith('The server refused the key'), 'the wrong key refused');
  assert.equal(v.alert, 'The server refused the key: The API key is not one this server accepts. (401, unauthorized)');
  assert.ok(v.keyField, 'the field again');
  assert.equal(v.key, '', 'emptied');
  assert.equal(v.focus, 'key');
  assert.equal(v.stored, null, 'a refused key is not kept');
  assert.equal(asked().at(-1).auth, 'Bearer not-the-key');
  await page.screenshot({ path: shot('key-refused.png') });

  await page.locator('#key').fill(KEY);
  await page.click('#key-submit');
  for (let step = 1; step <= 2; step++) {
    // The answer streams in: the page shows each step while the generator
    // waits at its gate, before the next is released.
    const st = await control.until((s) => s.waiting && s.step === step, `the generator to park after step ${step}`);
    v = await until((v) => v.state === 'streaming' && v.answer === st.emitted, `the page to show step ${step}`);
    assert.ok(!v.keyField, 'the key field is gone');
    assert.equal(v.alert, '');
    await control.release();
  }
  v = await until((v) => v.state === 'done', 'done');
  let st = await control.state();
  assert.equal(v.answer, st.answer);
  assert.equal(st.started, 1);
  assert.equal(v.stored, KEY, 'kept for the session');
  assert.equal(v.local, 0, 'nothing in localStorage');
  assert.equal(asked().at(-1).auth, `Bearer ${KEY}`);
  assert.ok(requests.every((r) => !r.url.includes(KEY)), 'the key is never in a URL');

  // A reload asks again at once (?q= follows the question) with the kept key.
  await control.reset();
  const before = asked().length;
  await page.reload();
  v = await until((v) => v.state === 'done', 'the answer after the reload');
  st = await control.state();
  assert.equal(v.answer, st.answer);
  assert.ok(!v.keyField, 'no key field: the key was remembered');
  assert.equal(v.alert, '');
  assert.equal(asked().length, before + 1, 'asked once');
  assert.equal(asked().at(-1).auth, `Bearer ${KEY}`);
  await page.screenshot({ path: shot('key-answer.png') });

  // At a phone's width the field fits too.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate((item) => sessionStorage.removeItem(item), ITEM);
  await page.reload();
  await until((v) => v.keyField, 'the key field at phone width');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, 'nothing wider than the phone');
  await page.screenshot({ path: shot('key-phone.png') });
});

test("the browser's own EventSource and WebSocket: access_token in the URL; without it, unauthorized over every transport", async () => {
  await page.goto(server.url + '/');
  const got = await page.evaluate(async ({ question, key }) => {
    const { ask } = await import(new URL('static/client/runnel.js', document.baseURI).href);
    const source = (url) => new Promise((resolve) => {
      const es = new EventSource(url);
      const tokens = [];
      es.addEventListener('token', (ev) => tokens.push(JSON.parse(ev.data)));
      es.addEventListener('done', () => {
        es.close();
        resolve({ answer: tokens.join('') });
      });
      // A 401 fails the EventSource for good: no reconnection.
      es.onerror = () => {
        if (es.readyState === EventSource.CLOSED) resolve({ failed: true });
      };
    });
    const read = async (options) => {
      const events = [];
      try {
        for await (const e of ask('articles/stream', { question, ...options })) events.push(e);
      } catch (err) {
        return { error: { name: err.name, code: err.code, status: err.status, message: err.message } };
      }
      return { answer: events.filter((e) => e.type === 'token').map((e) => e.data).join(''), last: events.at(-1).type };
    };
    const q = 'articles/stream?question=' + encodeURIComponent(question);
    return {
      sourceWithout: await source(q),
      sourceWith: await source(q + '&access_token=' + encodeURIComponent(key)),
      wsWithout: await read({ transport: 'websocket', backoff: { base: 1, max: 8 } }),
      wsWrong: await read({ transport: 'websocket', apiKey: 'not-the-key' }),
      wsWith: await read({ transport: 'websocket', apiKey: key }),
      sseWithout: await read({ transport: 'sse' }),
      sseWith: await read({ transport: 'sse', apiKey: key }),
    };
  }, { question: QUESTION, key: KEY });
  const { answer } = await control.state();
  assert.deepEqual(got.sourceWithout, { failed: true });
  assert.deepEqual(got.sourceWith, { answer });
  // A browser's WebSocket says nothing of a refused upgrade; the client asks
  // the URL once over fetch and throws what the server said.
  assert.deepEqual(got.wsWithout.error, {
    name: 'RunnelError', code: 'unauthorized', status: 401, message: 'This server needs an API key: send Authorization: Bearer <key>.',
  });
  assert.equal(got.wsWrong.error?.code, 'unauthorized');
  assert.match(got.wsWrong.error.message, /not one this server accepts/);
  assert.deepEqual(got.wsWith, { answer, last: 'done' });
  assert.equal(got.sseWithout.error?.code, 'unauthorized');
  assert.deepEqual(got.sseWith, { answer, last: 'done' });
  assert.equal(sockets.length, 3, 'a WebSocket for each ask: a refusal is not asked again');
  assert.deepEqual(sockets.map((u) => new URL(u).searchParams.get('access_token')), [null, 'not-the-key', KEY]);
  assert.equal((await control.state()).started, 3, 'generated once for each transport that had the key');
});

test('with the key, Stop cancels the run on the server, and so does leaving the page', async () => {
  await control.mode('hang', { after: 3 });
  // Through the recording proxy, which sees what the page sends as it leaves.
  await page.goto(proxy.url + '/?q=' + encodeURIComponent(QUESTION));
  await until((v) => v.keyField, 'the key field');
  await enterKey(KEY);
  let st = await control.until((s) => s.waiting && s.running === 1, 'the generator to hang');
  await until((v) => v.state === 'streaming' && v.answer === st.emitted, 'the first tokens');

  await page.click('#stop');
  await until((v) => v.state === 'stopped', 'stopped');
  const del = requests.find((r) => r.method === 'DELETE');
  assert.match(del?.path ?? '', /^\/runs\/[A-Za-z0-9_-]{22}$/);
  assert.equal(del.auth, `Bearer ${KEY}`);
  st = await control.until((s) => s.cancelled === 1 && s.running === 0, 'the generation to be cancelled');
  assert.equal(st.finished, 0);

  // Leaving mid-answer: a keepalive fetch carries the key that a beacon could
  // not. The server's linger window is 30 s: only the cancel ends it this soon.
  await page.locator('#q').press('Enter');
  st = await control.until((s) => s.started === 2 && s.waiting, 'the second answer to hang');
  await until((v) => v.state === 'streaming' && v.answer === st.emitted, 'the second answer');
  await page.goto(proxy.url + '/tags');
  await control.until((s) => s.cancelled === 2 && s.running === 0, 'the run canceled as the page left');
  // Chromium does not report a keepalive fetch of a page that is gone; the
  // proxy saw it on the wire.
  const post = proxy.requests.find((r) => r.method === 'POST' && /^\/runs\/[A-Za-z0-9_-]{22}\/cancel$/.test(r.path));
  assert.match(post?.head ?? '', new RegExp(`^authorization: Bearer ${KEY}\r?$`, 'im'), 'the cancel carried the key');
});
