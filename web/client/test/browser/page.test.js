// The page in Debian's Chromium, against the real Go server (web/testserver),
// whose generator waits at gates the test opens: every intermediate state is
// observed, not hoped for. The tests that break connections load the page
// through a TCP proxy in front of the server (support/proxy.js), so that the
// page resumes through the real server. Screenshots go to web/testoutput/.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { launch, shot } from '../support/browser.js';
import { startProxy } from '../support/proxy.js';
import { startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
let server;
let control;
let proxy;
let browser;
let page;

before(async () => {
  // Linger 5s: long enough for the page to come back after a cut, short
  // enough to see the server give up on a page that does not.
  [server, browser] = await Promise.all([startTestServer({ linger: '5s' }), launch()]);
  control = server.control;
  proxy = await startProxy(server.url);
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await server?.stop();
});

beforeEach(async () => {
  proxy.unblock();
  proxy.clearRules();
  await control.reset();
  page = await browser.newPage();
});

afterEach(async () => {
  const errors = page.errors;
  await page.close();
  assert.deepEqual(errors, [], 'uncaught errors in the page');
});

/** What the page shows. */
function view() {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    return {
      state: document.body.dataset.state,
      error: document.body.dataset.error,
      query: $('query').textContent,
      tags: [...document.querySelectorAll('#tags a')].map((a) => a.textContent),
      sources: [...document.querySelectorAll('#sources a')].map((a) => a.getAttribute('href')),
      answer: $('answer').textContent,
      busy: $('answer').getAttribute('aria-busy'),
      status: $('status').textContent,
      alert: $('alert').hidden ? '' : $('alert-text').textContent,
      retry: !$('retry').hidden,
      stop: !$('stop').disabled,
      input: $('q').value,
    };
  });
}

/** until waits for the page to show what pred accepts, and returns it. */
function until(pred, what) {
  return waitFor(async () => {
    const v = await view();
    return pred(v) ? v : undefined;
  }, { what });
}

async function askByKeyboard(question) {
  await page.locator('#q').fill(question);
  await page.keyboard.press('Enter');
}

test('the answer grows token by token through several states before done', async () => {
  await control.mode('gated', { steps: 4 });
  const requested = [];
  page.on('request', (r) => requested.push(new URL(r.url()).pathname));
  await page.goto(server.url + '/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'q', 'the question box has focus');
  await askByKeyboard(QUESTION);

  const seen = [];
  for (let step = 1; step <= 3; step++) {
    // The generator has emitted step `step` and is parked at its gate: the
    // page must show exactly what was emitted, with the answer still open.
    const st = await control.until((s) => s.waiting && s.step === step, `the generator to park after step ${step}`);
    const v = await until((v) => v.answer === st.emitted, `the page to show step ${step}`);
    assert.equal(v.state, 'streaming');
    assert.equal(v.busy, 'true');
    assert.ok(v.stop, 'Stop is enabled while the answer streams');
    assert.equal(v.query, QUESTION);
    assert.ok(v.tags.includes('websocket'), v.tags.join());
    assert.equal(v.sources[0], './articles/websocket');
    assert.equal(v.status, 'Writing the answer…');
    seen.push(v.answer);
    if (step === 2) await page.screenshot({ path: shot('streaming.png') });
    await control.release();
  }
  const done = await until((v) => v.state === 'done', 'done');
  const st = await control.state();
  assert.equal(done.answer, st.answer, 'the page shows the whole answer');
  assert.equal(done.busy, 'false');
  assert.equal(done.status, 'Done.');
  assert.ok(!done.stop, 'Stop is disabled after done');
  assert.ok(await page.locator('#key-form').isHidden(), 'a server without keys never shows the key field');

  // Three intermediate states, each a strict prefix of the next.
  const states = [...seen, done.answer];
  for (let i = 0; i < states.length - 1; i++) {
    assert.ok(states[i].length > 0 && states[i + 1].startsWith(states[i]) && states[i + 1].length > states[i].length,
      `state ${i + 1} grows into state ${i + 2}`);
  }
  assert.ok(requested.includes('/static/client/runnel.js'), 'the page reads the stream with the JS client module');
  assert.ok(requested.every((p) => !p.startsWith('//')), 'no other origin');
  assert.equal(new URL(page.url()).searchParams.get('q'), QUESTION, 'the URL names the question');
  await page.screenshot({ path: shot('answer.png') });
});

test('Stop and Esc cancel the run on the server, and the page shows stopped', async () => {
  await control.mode('hang', { after: 5 });
  const requests = [];
  page.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  await page.goto(server.url + '/?q=' + encodeURIComponent(QUESTION)); // ?q= asks at once
  let st = await control.until((s) => s.waiting && s.running === 1, 'the generator to hang');
  await until((v) => v.state === 'streaming' && v.answer === st.emitted, 'the first tokens');

  await page.click('#stop');
  const v = await until((v) => v.state === 'stopped', 'the stopped state');
  assert.equal(v.answer, st.emitted, 'what arrived stays');
  assert.equal(v.status, 'Stopped. The answer above is incomplete.');
  assert.equal(v.alert, '', 'stopping is not an error');
  assert.ok(!v.stop, 'Stop is disabled once stopped');
  // The cancel, not a closed connection, stopped it: at once, whatever the linger window.
  assert.ok(requests.some((r) => /^DELETE \/runs\/[A-Za-z0-9_-]{22}$/.test(r)), requests.join('\n'));
  st = await control.until((s) => s.cancelled === 1 && s.running === 0, "the server's generation to be cancelled");
  assert.equal(st.finished, 0);
  await page.screenshot({ path: shot('stopped.png') });

  // Enter asks again; Esc stops, and keeps the question in the box.
  await page.locator('#q').focus();
  await page.keyboard.press('Enter');
  await control.until((s) => s.started === 2 && s.waiting, 'the second answer to hang');
  await until((v) => v.state === 'streaming', 'the second answer');
  await page.keyboard.press('Escape');
  const v2 = await until((v) => v.state === 'stopped', 'Esc to stop');
  assert.equal(v2.input, QUESTION);
  await control.until((s) => s.cancelled === 2 && s.running === 0, 'the second generation to be cancelled');
});

test('a connection cut mid-answer: the page says reconnecting, resumes, and the answer completes', async () => {
  await control.mode('gated', { steps: 3 });
  await page.goto(proxy.url + '/');
  await askByKeyboard(QUESTION);
  const st = await control.until((s) => s.waiting && s.step === 1, 'the first step');
  await until((v) => v.state === 'streaming' && v.answer === st.emitted, 'the first step on the page');

  proxy.block(); // the resumes fail until the network "comes back"
  proxy.cutAll();
  let v = await until((v) => v.state === 'reconnecting', 'the reconnecting state');
  assert.equal(v.status, 'Reconnecting…');
  assert.equal(v.answer, st.emitted, 'what arrived stays');
  assert.ok(v.stop, 'Stop still works while reconnecting');
  assert.equal(v.busy, 'true');
  await page.screenshot({ path: shot('reconnecting.png') });
  proxy.unblock();
  // The next step reaches the page once it has resumed. (It is released
  // without waiting for the page to leave "reconnecting": an NDJSON resume
  // with nothing new to send may not show itself before its next event.)
  await control.release();
  const st2 = await control.until((s) => s.waiting && s.step === 2, 'the second step');
  v = await until((v) => v.state === 'streaming' && v.answer === st2.emitted, 'the resumed answer');
  assert.equal(v.status, 'Writing the answer…');
  await control.release();
  v = await until((v) => v.state === 'done', 'done');
  const end = await control.state();
  assert.equal(v.answer, end.answer, 'nothing missing, nothing twice');
  assert.equal(v.alert, '');
  assert.equal(end.started, 1, 'generated once');
  assert.ok(proxy.requests.some((r) => r.path.startsWith('/runs/') && r.method === 'GET'), 'resumed on the run route');
});

test('a cut the page cannot resume (the server forgot the run) shows an error and keeps what arrived', async () => {
  await control.mode('gated', { steps: 3 });
  await page.goto(proxy.url + '/');
  await askByKeyboard(QUESTION);
  const st = await control.until((s) => s.waiting && s.step === 1, 'the first step');
  await until((v) => v.state === 'streaming' && v.answer === st.emitted, 'the first step on the page');
  await control.expire();
  proxy.cutAll();

  const v = await until((v) => v.state === 'error', 'the error state');
  assert.equal(v.error, 'truncated');
  assert.match(v.alert, /cut off/);
  assert.match(v.alert, /incomplete/);
  assert.ok(v.retry, 'a truncated answer can be asked again');
  assert.equal(v.answer, st.emitted, 'the partial answer stays');
  assert.ok(st.answer.startsWith(v.answer) && v.answer.length < st.answer.length);
  assert.equal(v.busy, 'false');
  await page.screenshot({ path: shot('truncated.png') });
  await control.reset(); // the parked generator is forgotten; the next answer starts afresh

  await control.mode('instant');
  await page.click('#retry');
  const again = await until((v) => v.state === 'done', 'the retried answer');
  assert.equal(again.alert, '');
  assert.equal(again.answer, (await control.state()).answer);
});

test('an error event and an HTTP error before the stream', async () => {
  await control.mode('error', { after: 3 });
  await page.goto(server.url + '/');
  await askByKeyboard(QUESTION);
  let v = await until((v) => v.state === 'error', 'the error event');
  assert.equal(v.error, 'event');
  assert.equal(v.alert, 'The answer failed: The model stopped answering. (upstream)');
  assert.ok(v.retry, 'the server said it is retryable');
  assert.ok(v.answer.length > 0, 'the tokens before the error stay');
  await page.screenshot({ path: shot('error-event.png') });

  await askByKeyboard('?!*'); // no searchable words: 400 before the stream
  v = await until((v) => v.state === 'error' && v.error === 'http', 'the HTTP error');
  assert.match(v.alert, /^The server refused the question: .+ \(400, invalid\)$/);
  assert.ok(!v.retry, 'a refused question is not retried as is');
  assert.equal(v.answer, '', 'nothing of the previous answer is left');
  await page.screenshot({ path: shot('http-error.png') });
});

test('offline for a moment mid-answer: the page resumes when the network is back', async () => {
  await control.mode('gated', { steps: 3 });
  await page.goto(server.url + '/');
  await askByKeyboard(QUESTION);
  const st = await control.until((s) => s.waiting && s.step === 1, 'the first step');
  await until((v) => v.state === 'streaming' && v.answer === st.emitted, 'the first step on the page');

  await browser.context.setOffline(true);
  try {
    const v = await until((v) => v.state === 'reconnecting', 'the page to try to resume');
    assert.equal(v.alert, '', 'not an error yet');
  } finally {
    await browser.context.setOffline(false);
  }
  await control.release();
  const st2 = await control.until((s) => s.waiting && s.step === 2, 'the second step');
  await until((v) => v.state === 'streaming' && v.answer === st2.emitted, 'the resumed answer');
  await control.release();
  const v = await until((v) => v.state === 'done', 'done');
  const end = await control.state();
  assert.equal(v.answer, end.answer);
  assert.equal(end.started, 1, 'generated once');
});

test('offline for longer than the retries: a clear message, the server gives up after its linger window, asking again works', async () => {
  await control.mode('hang', { after: 3 });
  await page.goto(server.url + '/');
  await askByKeyboard(QUESTION);
  await control.until((s) => s.waiting, 'the generator to hang');
  await until((v) => v.state === 'streaming' && v.answer.length > 0, 'the first tokens');

  await browser.context.setOffline(true);
  try {
    let v = await until((v) => v.state === 'reconnecting', 'the page to try to resume');
    v = await until((v) => v.state === 'error', 'the network error, once the retries are spent');
    assert.equal(v.error, 'network');
    assert.match(v.alert, /network connection was lost/);
    assert.ok(v.answer.length > 0, 'what arrived stays');
    await control.until((s) => s.cancelled === 1 && s.running === 0, 'the server to give up on the run');
    await page.screenshot({ path: shot('offline.png') });

    await page.click('#retry');
    v = await until((v) => v.state === 'error' && v.status === '', 'the retry to fail while offline');
    assert.equal(v.error, 'network');
  } finally {
    await browser.context.setOffline(false);
  }
  await control.mode('instant');
  await page.click('#retry');
  const v = await until((v) => v.state === 'done', 'the answer once online');
  assert.equal(v.answer, (await control.state()).answer);
});

test('the axios adapter in the page: each event once, as it arrives', async () => {
  await page.goto(server.url + '/');
  await page.addScriptTag({ url: 'test/axios.min.js' }); // axios's browser build, from node_modules
  await page.evaluate(async () => {
    const { askAxios } = await import(new URL('static/client/axios.js', document.baseURI).href);
    window.askWithAxios = (question) => {
      const run = { events: [], done: null, error: null };
      window.run = run;
      askAxios(window.axios, 'articles/stream', { question }, (e) => run.events.push(e)).then(
        (d) => { run.done = d; },
        (e) => { run.error = { name: e.name, code: e.code, status: e.status, message: e.message }; },
      );
    };
  });
  const run = () => page.evaluate(() => window.run);
  const tokens = (r) => r.events.filter((e) => e.type === 'token').map((e) => e.data).join('');

  await control.mode('gated', { steps: 3 });
  await page.evaluate((q) => window.askWithAxios(q), QUESTION);
  for (let step = 1; step <= 2; step++) {
    const st = await control.until((s) => s.waiting && s.step === step, `step ${step}`);
    // Delivered from onDownloadProgress while the response is still open.
    const r = await waitFor(async () => {
      const r = await run();
      return tokens(r) === st.emitted ? r : undefined;
    }, { what: `axios to deliver step ${step}` });
    assert.equal(r.done, null);
    await control.release();
  }
  const r = await waitFor(async () => {
    const r = await run();
    return r.done || r.error ? r : undefined;
  }, { what: 'the axios answer to end' });
  const st = await control.state();
  assert.equal(r.error, null);
  assert.equal(r.done.finish_reason, 'stop');
  const types = r.events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 4), ['query', 'tags', 'titles', 'sources']);
  assert.equal(types.at(-1), 'done');
  assert.equal(types.filter((t) => t === 'token').length, st.tokens, 'no token delivered twice or lost');
  assert.equal(tokens(r), st.answer);

  const failure = async (question) => {
    await page.evaluate((q) => window.askWithAxios(q), question);
    return waitFor(async () => (await run()).error, { what: 'the axios error' });
  };
  await control.mode('cut', { after: 3, gate: 1 });
  const cut = failure(QUESTION);
  const held = await control.until((s) => s.cutting, 'the relay to hold the connection');
  await waitFor(async () => tokens(await run()) === held.relayed, { what: 'axios to deliver the 3 tokens' });
  await control.release();
  assert.equal((await cut).code, 'truncated');
  assert.equal(tokens(await run()), held.relayed);
  await control.mode('error', { after: 1 });
  assert.equal((await failure(QUESTION)).code, 'upstream');
  const refused = await failure('?!*');
  assert.equal(refused.code, 'invalid');
  assert.equal(refused.status, 400);
});

test('sources lead to article pages; tags lead to the articles that carry them', async () => {
  await page.goto(server.url + '/?q=' + encodeURIComponent(QUESTION));
  await until((v) => v.state === 'done', 'the answer');
  await page.click('#sources a >> nth=0');
  await page.waitForURL('**/articles/websocket');
  assert.equal(await page.locator('h1').textContent(), 'WebSocket');
  assert.ok(await page.locator('.prose h2').count() > 0, 'the Markdown is rendered');
  assert.ok(await page.locator('.prose pre code').count() > 0, 'code blocks too');
  await page.screenshot({ path: shot('article.png') });

  await page.click('.article .chips a:text-is("websocket")');
  await page.waitForURL('**/articles?tag=websocket');
  const titles = await page.locator('.listing .title').allTextContents();
  assert.ok(titles.includes('WebSocket') && titles.includes('WebSocket vs SSE vs Streamed Fetch'), titles.join());

  await page.click('nav a:text-is("Tags")');
  await page.waitForURL('**/tags');
  assert.ok(await page.locator('.chips-cloud a').count() > 10);
  await page.screenshot({ path: shot('tags.png') });

  const res = await page.goto(server.url + '/articles/no-such-article');
  assert.equal(res.status(), 404);
  assert.equal(await page.locator('h1').textContent(), 'Not found');
});

test('readable at phone width, light and dark', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto(server.url + '/?q=' + encodeURIComponent(QUESTION));
    await until((v) => v.state === 'done', 'the answer');
    const layout = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
      background: getComputedStyle(document.body).backgroundColor,
      color: getComputedStyle(document.body).color,
    }));
    assert.equal(layout.overflow, 0, `${scheme}: nothing wider than the phone`);
    assert.equal(layout.background, scheme === 'dark' ? 'rgb(21, 23, 27)' : 'rgb(255, 255, 255)', scheme);
    await page.screenshot({ path: shot(`phone-${scheme}.png`) });
  }
});
