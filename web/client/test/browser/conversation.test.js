// The page as a conversation, in Debian's Chromium against the Go test
// server (the embedded articles, the extractive answers): a follow-up that
// names nothing ("how does it reconnect?") is sent with the turns before it
// and finds the article of the first question; each answer keeps its own
// sources; a reload shows the conversation again; "New conversation"
// forgets it.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';

import { launch, shot } from '../support/browser.js';
import { startTestServer, waitFor } from '../support/server.js';

let server;
let browser;
let page;

before(async () => {
  [server, browser] = await Promise.all([startTestServer(), launch()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

beforeEach(async () => {
  await server.control.reset();
  page = await browser.newPage();
});

afterEach(async () => {
  const errors = page.errors;
  await page.close();
  assert.deepEqual(errors, [], 'uncaught errors in the page');
});

/** What the page shows: the earlier turns and the live answer. */
function view() {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    const sources = (el) => [...el.querySelectorAll('.sources a, #sources a')].map((a) => a.getAttribute('href'));
    return {
      state: document.body.dataset.state,
      turns: [...document.querySelectorAll('#turns .turn')].map((t) => ({
        query: t.querySelector('.query').textContent,
        answer: t.querySelector('.answer').textContent,
        sources: sources(t),
      })),
      live: $('result').hidden ? null : { query: $('query').textContent, answer: $('answer').textContent, sources: sources($('result')) },
      newConversation: !$('new-conversation').hidden,
      label: $('q-label').textContent,
      stored: sessionStorage.length,
    };
  });
}

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

const SSE = ['./articles/server-sent-events', './articles/websocket-vs-sse'];

test('ask, ask a follow-up: both answers with their own sources; a reload keeps them; New conversation clears', async () => {
  const bodies = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/articles/stream') bodies.push(JSON.parse(r.postData()));
  });
  await page.goto(server.url + '/');
  let v = await view();
  assert.ok(!v.newConversation, 'no conversation yet: no New conversation');

  await askByKeyboard('what is WebSocket?');
  v = await until((v) => v.state === 'done', 'the first answer');
  assert.equal(v.live.query, 'what is WebSocket?');
  assert.equal(v.live.sources[0], './articles/websocket');
  assert.ok(v.live.answer.length > 0);
  assert.deepEqual(v.turns, [], 'the first answer is the live one');
  assert.ok(v.newConversation);
  assert.match(v.label, /follow-up/);
  const first = v.live;

  await askByKeyboard('what are its limits?');
  v = await until((v) => v.state === 'done' && v.live.query === 'what are its limits?', 'the follow-up');
  assert.deepEqual(v.turns, [first], 'the first question and its answer moved up, with their own sources');
  assert.equal(v.live.sources[0], './articles/websocket', 'the follow-up finds the article of the first question');
  assert.ok(v.live.answer.length > 0 && v.live.answer !== first.answer);
  assert.deepEqual(bodies[0], { question: 'what is WebSocket?' });
  assert.deepEqual(bodies[1].messages.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.equal(bodies[1].messages[0].content, 'what is WebSocket?');
  assert.ok(bodies[1].messages[1].content.length > 0, 'the first answer goes with the follow-up');
  assert.equal(bodies[1].messages[2].content, 'what are its limits?');

  await askByKeyboard('what is SSE?');
  await until((v) => v.state === 'done' && v.live.query === 'what is SSE?', 'a question that stands alone');
  await askByKeyboard('how does it reconnect?');
  v = await until((v) => v.state === 'done' && v.live.query === 'how does it reconnect?', 'the second follow-up');
  assert.equal(v.turns.length, 3);
  assert.ok(SSE.includes(v.turns[2].sources[0]), 'each turn keeps its own sources');
  assert.equal(v.turns[1].sources[0], './articles/websocket');
  assert.ok(SSE.includes(v.live.sources[0]), v.live.sources.join());
  assert.equal(bodies.at(-1).messages.length, 7);
  await page.screenshot({ path: shot('conversation.png'), fullPage: true });

  // A reload shows the conversation again and asks its latest question again, as a follow-up.
  const before = v;
  await page.reload();
  v = await until((v) => v.state === 'done' && v.live?.query === 'how does it reconnect?', 'the reloaded conversation');
  assert.deepEqual(v.turns, before.turns);
  assert.deepEqual(v.live.sources, before.live.sources);
  assert.equal(bodies.at(-1).messages.length, 7);

  await page.click('#new-conversation');
  v = await until((v) => v.state === 'idle', 'a new conversation');
  assert.deepEqual(v.turns, []);
  assert.equal(v.live, null);
  assert.ok(!v.newConversation);
  assert.equal(v.stored, 0, 'the conversation is gone from the tab');
  assert.equal(new URL(page.url()).searchParams.get('q'), null);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'q');

  await askByKeyboard('how does it reconnect?');
  v = await until((v) => v.state === 'done', 'the same words, with nothing before them');
  assert.deepEqual(bodies.at(-1), { question: 'how does it reconnect?' });
  assert.deepEqual(v.turns, []);
});
