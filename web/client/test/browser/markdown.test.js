// The answer's Markdown and citations in Debian's Chromium, against the real
// Go server (web/testserver) with scripted answers (POST /test/script): the
// sources are the real search's, the tokens the test's. A gated answer is
// observed at each step: an open bold or code fence mid-stream, then the
// whole answer. An answer that tries to inject HTML must stay text. And the
// stream's own URL, opened in the browser, shows its events as text.
// Screenshots go to web/testoutput/.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { launch, shot } from '../support/browser.js';
import { startTestServer, waitFor } from '../support/server.js';

const QUESTION = 'what is websocket?';
let server;
let control;
let browser;
let page;

before(async () => {
  [server, browser] = await Promise.all([startTestServer(), launch()]);
  control = server.control;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

beforeEach(async () => {
  await control.reset();
  page = await browser.newPage();
  page.dialogs = [];
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
});

afterEach(async () => {
  const { errors, dialogs } = page;
  await page.close();
  assert.deepEqual(errors, [], 'uncaught errors in the page');
  assert.deepEqual(dialogs, [], 'no dialog opened');
});

/** What the answer is made of, in the page. */
function answer() {
  return page.evaluate(() => {
    const el = document.getElementById('answer');
    const all = (sel) => [...el.querySelectorAll(sel)];
    const text = (sel) => all(sel).map((e) => e.textContent);
    return {
      state: document.body.dataset.state,
      text: el.textContent,
      html: el.innerHTML,
      tags: [...new Set(all('*').map((e) => e.localName))].sort(),
      blocks: [...el.children].map((e) => e.localName),
      strong: text('strong'),
      em: text('em'),
      code: text(':not(pre) > code'),
      pre: all('pre > code').map((e) => ({ text: e.textContent, lang: e.className })),
      items: all(':scope > ul > li').map((li) => li.firstChild.textContent),
      nested: text(':scope > ul > li > ul > li'),
      links: all('a:not(.cite)').map((a) => ({ text: a.textContent, href: a.href, rel: a.rel })),
      cites: all('a.cite').map((a) => ({ n: a.textContent, href: a.getAttribute('href'), label: a.getAttribute('aria-label') })),
      citesInCode: all('code a, pre a').length,
      caret: all('.caret').map((c) => c.parentElement.localName),
      sources: [...document.querySelectorAll('#sources > li > a')].map((a) => ({ href: a.getAttribute('href'), title: a.textContent })),
      marker: getComputedStyle(document.querySelector('#sources > li') ?? el, '::marker').content,
    };
  });
}

function until(pred, what) {
  return waitFor(async () => {
    const v = await answer();
    return pred(v) ? v : undefined;
  }, { what });
}

// An answer as a model writes it, one token a step: the bold is cut in two,
// and step 7 leaves a code fence open.
const TOKENS = [
  'WebSocket gives you **one conn',
  'ection** both ways [1], unlike SSE [2]; there is no source [9].\n\n',
  '### Trying it\n\n',
  '- install `websocat` (an index: `arr[1]`)\n',
  '- run it against _a server_\n  - nested, with *care*\n\n',
  'See [the RFC](https://www.rfc-editor.org/rfc/rfc6455), [the article](/articles/websocket) or [1, 2].\n\n',
  '```sh\nwebsocat ws://localhost:8080/\n',
  'echo "[1] **not bold**"\n```\n\n',
  'Both [1][2].',
];

test('a Markdown answer renders as it streams: lists, code, bold, links, citations', async () => {
  await control.script(TOKENS);
  await control.mode('gated', { steps: TOKENS.length });
  await page.goto(server.url + '/?q=' + encodeURIComponent(QUESTION));

  // Step 1: the bold is open; it shows as bold already, without its stars.
  await control.until((s) => s.waiting && s.step === 1, 'the first step');
  let v = await until((v) => v.strong.length === 1, 'the open bold');
  assert.equal(v.state, 'streaming');
  assert.deepEqual(v.strong, ['one conn']);
  assert.equal(v.text, 'WebSocket gives you one conn');
  assert.deepEqual(v.caret, ['p'], 'the caret is in the paragraph');
  await control.release();

  // Step 2: citations. [1] and [2] link to the first two sources, [9] is text.
  await control.until((s) => s.waiting && s.step === 2, 'the second step');
  v = await until((v) => v.cites.length === 2, 'the citations');
  assert.ok(v.sources.length >= 2, `two sources at least: ${JSON.stringify(v.sources)}`);
  assert.deepEqual(v.cites.map((c) => [c.n, c.href]), [['1', v.sources[0].href], ['2', v.sources[1].href]]);
  assert.equal(v.cites[0].label, `source 1: ${v.sources[0].title}`);
  assert.match(v.text, /there is no source \[9\]\./);
  assert.equal(v.marker, '"[" counter(list-item) "] "', 'the sources are numbered as they are cited');
  for (let step = 2; step < 7; step++) await control.release();

  // Step 7: the code fence is open: a code block that holds what arrived,
  // with the caret in it, and the rest of the page intact.
  await control.until((s) => s.waiting && s.step === 7, 'the open fence');
  v = await until((v) => v.pre.length === 1, 'the open code block');
  assert.deepEqual(v.pre, [{ text: 'websocat ws://localhost:8080/', lang: 'language-sh' }]);
  assert.deepEqual(v.caret, ['code']);
  assert.equal(v.state, 'streaming');
  assert.ok(!v.text.includes('```'), v.text);
  await page.screenshot({ path: shot('markdown-streaming.png') });
  await control.release();

  await control.until((s) => s.waiting && s.step === 8, 'the closed fence');
  v = await until((v) => v.pre[0]?.text.includes('echo'), 'the code block closed');
  assert.equal(v.pre[0].text, 'websocat ws://localhost:8080/\necho "[1] **not bold**"');
  await control.release();

  v = await until((v) => v.state === 'done', 'done');
  assert.deepEqual(v.blocks, ['p', 'h5', 'ul', 'p', 'pre', 'p']);
  assert.deepEqual(v.strong, ['one connection']);
  assert.deepEqual(v.em, ['a server', 'care']);
  assert.deepEqual(v.code, ['websocat', 'arr[1]']);
  assert.deepEqual(v.items, ['install ', 'run it against ']);
  assert.deepEqual(v.nested, ['nested, with care']);
  assert.deepEqual(v.links, [
    { text: 'the RFC', href: 'https://www.rfc-editor.org/rfc/rfc6455', rel: 'noopener noreferrer' },
    { text: 'the article', href: server.url + '/articles/websocket', rel: '' },
  ]);
  // [1] [2], [1, 2], [1][2]: each a link to its source; none inside code.
  assert.deepEqual(v.cites.map((c) => c.n), ['1', '2', '1', '2', '1', '2']);
  for (const c of v.cites) assert.equal(c.href, v.sources[c.n - 1].href);
  assert.equal(v.citesInCode, 0);
  assert.match(v.text, /or \[1, 2\]\./);
  assert.match(v.text, /Both \[1\]\[2\]\.$/);
  assert.deepEqual(v.caret, [], 'no caret once done');
  const prose = v.text.replace(v.pre[0].text, ''); // the code block keeps its stars, as code
  for (const marker of ['**', '```', '###', '](', '`']) assert.ok(!prose.includes(marker), `no ${marker} in ${prose}`);

  // A citation leads to its source.
  await page.click('#answer a.cite >> nth=0');
  await page.waitForURL('**/articles/websocket');
  assert.equal(await page.locator('h1').textContent(), 'WebSocket');
  await page.goBack();
});

test('the extractive answer is paragraphs whose text is the answer, at every step', async () => {
  await control.mode('gated', { steps: 3 });
  await page.goto(server.url + '/?q=' + encodeURIComponent(QUESTION));
  for (let step = 1; step <= 2; step++) {
    const st = await control.until((s) => s.waiting && s.step === step, `step ${step}`);
    await until((v) => v.text === st.emitted, `the page to show step ${step}`);
    await control.release();
  }
  const v = await until((v) => v.state === 'done', 'done');
  const st = await control.state();
  assert.equal(v.text, st.answer);
  const paragraphs = st.answer.split('\n\n');
  assert.ok(paragraphs.length >= 2, st.answer);
  assert.deepEqual(v.blocks, paragraphs.map(() => 'p'));
  const shown = await page.locator('#answer p').allTextContents();
  assert.deepEqual(shown, paragraphs);
});

// Every way into the page an answer might try. None must run or become an
// element; each must show as the text it is.
const INJECTION = [
  'Look: <img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script>\n\n',
  '[x](javascript:alert(1)) [y](JaVaScRiPt:window.pwned=3) [z](java\tscript:window.pwned=4) ',
  '[d](data:text/html,<script>window.pwned=5</script>) [v](vbscript:msgbox)\n\n',
  '"><svg onload="window.pwned=6"> **<b onclick="window.pwned=7">bold</b>** `<i>code</i>`\n\n',
  '<iframe src="javascript:window.pwned=8"></iframe> <a href="javascript:window.pwned=9">a</a>\n\n',
  '```html\n<script>window.pwned=10</script>\n```\n\n',
  '[ok](https://example.com/"onmouseover="window.pwned=11) [1](javascript:window.pwned=12)',
];

test('an answer that tries to inject HTML or script shows as text, and nothing runs', async () => {
  await control.script(INJECTION);
  await page.goto(server.url + '/?q=' + encodeURIComponent(QUESTION));
  const v = await until((v) => v.state === 'done', 'done');
  await page.locator('#answer a >> nth=0').hover();
  await page.locator('#answer strong').click();

  assert.equal(await page.evaluate(() => window.pwned), undefined, 'no injected script ran');
  for (const tag of ['img', 'script', 'svg', 'iframe', 'b', 'i']) {
    assert.ok(!v.tags.includes(tag), `no <${tag}> in the answer: ${v.html}`);
  }
  assert.deepEqual(v.tags, ['a', 'code', 'p', 'pre', 'strong']);
  // The only link is the https one, its quotes part of the URL.
  assert.deepEqual(v.links, [{ text: 'ok', href: 'https://example.com/%22onmouseover=%22window.pwned=11', rel: 'noopener noreferrer' }]);
  assert.deepEqual(v.cites, []);

  const shown = await page.locator('#answer').innerText();
  for (const s of [
    '<img src=x onerror="window.pwned=1">', '<script>window.pwned=2</script>', '[x](javascript:alert(1))',
    '[y](JaVaScRiPt:window.pwned=3)', '[d](data:text/html,<script>window.pwned=5</script>)',
    '"><svg onload="window.pwned=6">', '<b onclick="window.pwned=7">bold</b>', '<i>code</i>',
    '<iframe src="javascript:window.pwned=8"></iframe>', '[1](javascript:window.pwned=12)',
  ]) {
    assert.ok(shown.includes(s), `${JSON.stringify(s)} is shown as text in:\n${shown}`);
  }
  assert.deepEqual(v.pre, [{ text: '<script>window.pwned=10</script>', lang: 'language-html' }]);
  await page.screenshot({ path: shot('markdown-injection.png') });
});

test('the stream URL opened in the browser shows the events as text, not a download', async () => {
  const downloads = [];
  page.on('download', (d) => downloads.push(d.suggestedFilename()));
  const url = server.url + '/articles/stream?question=' + encodeURIComponent(QUESTION);
  const res = await page.goto(url);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()['content-type'], 'text/plain; charset=utf-8');
  assert.equal(res.headers()['x-content-type-options'], 'nosniff');
  const body = await page.locator('body').innerText();
  const lines = body.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], { type: 'query', data: QUESTION });
  assert.equal(lines.at(-1).type, 'done');
  assert.equal(lines.filter((e) => e.type === 'token').map((e) => e.data).join(''), (await control.state()).answer);
  await page.screenshot({ path: shot('stream-in-browser.png') });

  // The run's own address too.
  const run = res.headers()['runnel-run-id'];
  const again = await page.goto(server.url + '/runs/' + run);
  assert.equal(again.headers()['content-type'], 'text/plain; charset=utf-8');
  assert.equal(await page.locator('body').innerText(), body);
  assert.deepEqual(downloads, []);

  // A script's fetch still gets NDJSON.
  const type = await page.evaluate(async (u) => (await fetch(u)).headers.get('content-type'), url);
  assert.equal(type, 'application/x-ndjson');
});
