// The page that asks: it reads the answer with runnel's own JS client (the
// same module published on npm) and shows each event as it arrives. Every URL
// is relative to this page, so the site works under any path prefix.
//
// A connection that drops mid-answer is resumed by the client where it broke
// (the page says "Reconnecting…" meanwhile); Stop cancels the run on the
// server, which ends the answer with its canceled event.
//
// The answer is Markdown, rendered by ./markdown.js into DOM nodes (never
// markup: the answer's text cannot become HTML), again on each animation
// frame while tokens arrive. Its citations, [1] or [1, 3], link to the
// numbered sources.
//
// A server that needs an API key refuses the question with unauthorized: the
// page then asks for the key, keeps it in sessionStorage (this tab, until it
// is closed; never localStorage) and asks again with it. A server without
// keys never sees the field.
//
// The page is a conversation: a question asked after a complete answer is a
// follow-up, sent with the turns before it ({"messages": [...]}) so that the
// server reads "how does it reconnect?" in the light of "what is SSE?". Each
// complete answer moves up into the list of earlier turns, with its own
// sources; the conversation lives in this tab only (sessionStorage, like the
// key) and "New conversation" forgets it. An answer that failed or was
// stopped is not part of it.
//
// document.body.dataset.state tells the page's state, for CSS and for tests:
// idle, asking (request sent), streaming, reconnecting (the connection broke;
// the client is resuming the answer), done, stopped or error; when it is
// error, dataset.error says which: http, event, truncated, network,
// unauthorized (the key is missing or wrong) or other.

import { ask, cancel, RunnelError } from './client/runnel.js';
import { renderAnswer } from './markdown.js';

const $ = (id) => document.getElementById(id);
const form = $('ask');
const input = $('q');
const stopButton = $('stop');
const statusEl = $('status');
const alertEl = $('alert');
const alertText = $('alert-text');
const retryButton = $('retry');
const result = $('result');
const queryEl = $('query');
const tagsEl = $('tags');
const answerEl = $('answer');
const sourcesHeading = $('sources-heading');
const sourcesEl = $('sources');
const keyForm = $('key-form');
const keyInput = $('key');
const turnsEl = $('turns');
const newButton = $('new-conversation');
const questionLabel = $('q-label');

const streamURL = new URL('articles/stream', document.baseURI);
const runsURL = new URL('runs/', document.baseURI);

// The API key, for this tab only. Named by the site's path, so that two
// runnel sites under one origin (/a/ and /b/ behind a proxy) keep their own.
const KEY_ITEM = 'runnel.apiKey ' + new URL('.', document.baseURI).pathname;

function savedKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM) || undefined;
  } catch {
    return undefined; // storage turned off: the key lasts until the page is left
  }
}

let unsavedKey; // the key, where sessionStorage cannot keep it

function saveKey(key) {
  unsavedKey = key;
  try {
    if (key === undefined) sessionStorage.removeItem(KEY_ITEM);
    else sessionStorage.setItem(KEY_ITEM, key);
  } catch {
    // kept in unsavedKey only
  }
}

const currentKey = () => savedKey() ?? unsavedKey;

// The conversation: the complete turns, oldest first, each {question, query,
// tags, answer, sources}. Kept in sessionStorage, named like the key.
const TURNS_ITEM = 'runnel.conversation ' + new URL('.', document.baseURI).pathname;
let turns = loadTurns();

function loadTurns() {
  try {
    const v = JSON.parse(sessionStorage.getItem(TURNS_ITEM) || '[]');
    return Array.isArray(v) ? v.filter((t) => t && typeof t.question === 'string' && typeof t.answer === 'string') : [];
  } catch {
    return [];
  }
}

function saveTurns() {
  try {
    if (turns.length) sessionStorage.setItem(TURNS_ITEM, JSON.stringify(turns));
    else sessionStorage.removeItem(TURNS_ITEM);
  } catch {
    // storage full or off: the conversation lasts until the page is left
  }
}

// What a follow-up sends of the conversation: the latest turns, within the
// server's limits (64 messages, 64 KiB), the oldest dropped first.
const MAX_TURNS = 20;
const MAX_CHARS = 24000;

function messagesFor(question) {
  const msgs = [{ role: 'user', content: question }];
  let chars = question.length;
  for (let i = turns.length - 1; i >= 0 && turns.length - i <= MAX_TURNS; i--) {
    const t = turns[i];
    chars += t.question.length + t.answer.length;
    if (chars > MAX_CHARS) break;
    if (t.answer.trim()) msgs.unshift({ role: 'assistant', content: t.answer });
    msgs.unshift({ role: 'user', content: t.question });
  }
  return msgs;
}

// Why a request was aborted: the abort reason travels back as the error.
const STOP = new DOMException('Stopped by the user.', 'AbortError');
const REPLACED = new DOMException('Replaced by a new question.', 'AbortError');
const OFFLINE = new RunnelError('network', 'The network connection was lost.', { retryable: true });

// The answer in progress: {answer, controller, stopping}. answer is what
// ask() returned (its runId, cancel(), reconnect()); the controller closes
// its connection.
let current = null;
let lastQuestion = '';
let shownStatus = ''; // the status to show again once a connection is resumed

function setState(state, error) {
  document.body.dataset.state = state;
  if (error) document.body.dataset.error = error;
  else delete document.body.dataset.error;
  const busy = state === 'asking' || state === 'streaming' || state === 'reconnecting';
  stopButton.disabled = !busy || Boolean(current?.stopping);
  answerEl.setAttribute('aria-busy', String(busy));
}

function status(text) {
  statusEl.textContent = text;
}

/** progress shows where the answer is, and keeps it to show again after a reconnection. */
function progress(text) {
  shownStatus = text;
  status(text);
}

function showAlert(text, retryable) {
  alertText.textContent = text;
  retryButton.hidden = !retryable;
  alertEl.hidden = false;
}

function clear() {
  keyForm.hidden = true;
  alertEl.hidden = true;
  alertText.textContent = '';
  queryEl.textContent = '';
  tagsEl.replaceChildren();
  answerEl.replaceChildren();
  sourcesEl.replaceChildren();
  sourcesHeading.hidden = true;
  result.hidden = true;
}

// A server's source URL is a path from its root ("/articles/x"): keep it
// relative to this page, which is the site's root.
function siteLink(path) {
  return /^[a-z][a-z0-9+.-]*:/i.test(path) ? path : './' + path.replace(/^\/+/, '');
}

/**
 * painter renders the answer at most once a frame: schedule() asks for a
 * render, flush() renders now (at the end, so the final answer is shown at
 * once). A timer backs the frame up, since a hidden page gets no frames.
 */
function painter(paint) {
  let frame = 0;
  let timer = 0;
  const cancel = () => {
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    frame = timer = 0;
  };
  const flush = () => {
    cancel();
    paint();
  };
  return {
    schedule() {
      if (frame || timer) return;
      frame = requestAnimationFrame(flush);
      timer = setTimeout(flush, 100);
    },
    flush,
    cancel,
  };
}

function chip(tag) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.className = 'chip';
  a.href = 'articles?tag=' + encodeURIComponent(tag);
  a.textContent = tag;
  li.append(a);
  return li;
}

/** citer returns the cite function of renderAnswer for the sources of one answer. */
function citer(sources) {
  return (n) => {
    const s = sources[n - 1];
    return s && { href: siteLink(s.url || 'articles/' + s.slug), title: s.title || s.slug };
  };
}

/** turnView renders a complete turn of the conversation, as the live answer looked at its end. */
function turnView(t, n) {
  const section = document.createElement('section');
  section.className = 'turn';
  section.dataset.turn = String(n);
  const h = document.createElement('h2');
  h.className = 'query';
  h.id = 'turn-' + n;
  h.textContent = t.query || t.question;
  section.setAttribute('aria-labelledby', h.id);
  const tags = document.createElement('ul');
  tags.className = 'chips';
  tags.setAttribute('aria-label', 'Tags');
  tags.append(...(t.tags || []).map(chip));
  const answer = document.createElement('div');
  answer.className = 'answer prose';
  answer.setAttribute('aria-label', 'Answer');
  answer.append(renderAnswer(t.answer, { cite: citer(t.sources || []), base: document.baseURI }));
  section.append(h, tags, answer);
  if (t.sources?.length) {
    const sh = document.createElement('h3');
    sh.className = 'sources-heading';
    sh.textContent = 'Sources';
    const ol = document.createElement('ol');
    ol.className = 'sources';
    ol.append(...t.sources.map(source));
    section.append(sh, ol);
  }
  return section;
}

/** showTurns renders the turns the page does not show yet, and the controls a conversation has. */
function showTurns() {
  if (turnsEl.children.length > turns.length) turnsEl.replaceChildren();
  for (let n = turnsEl.children.length; n < turns.length; n++) turnsEl.append(turnView(turns[n], n + 1));
  conversing();
}

/** conversing shows what the page offers once a conversation has begun. */
function conversing() {
  const on = turns.length > 0 || !result.hidden;
  document.body.classList.toggle('conversing', on);
  newButton.hidden = !on;
  questionLabel.textContent = turns.length ? 'Ask a follow-up question, or a new one' : 'Ask a question about the articles';
  input.placeholder = turns.length ? 'how does it work?' : 'what is websocket?';
}

/** newConversation forgets the conversation and the answer shown, and stops one in progress. */
function newConversation() {
  if (current) leave(current, REPLACED);
  current = null;
  turns = [];
  saveTurns();
  turnsEl.replaceChildren();
  clear();
  status('');
  setState('idle');
  lastQuestion = '';
  input.value = '';
  const url = new URL(location.href);
  url.searchParams.delete('q');
  history.replaceState(null, '', url);
  conversing();
  input.focus();
}

function source(s) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = siteLink(s.url || 'articles/' + s.slug);
  a.textContent = s.title || s.slug;
  li.append(a);
  if (s.snippet) {
    const p = document.createElement('p');
    p.className = 'snippet';
    p.textContent = s.snippet;
    li.append(p);
  }
  return li;
}

function describe(err, apiKey) {
  if (!(err instanceof RunnelError)) {
    return ['other', 'Something went wrong in this page: ' + (err?.message || err) + '.', true];
  }
  if (err.code === 'not_found' && err.run) {
    // The connection broke and the server no longer has the run to resume.
    return ['truncated', 'The answer was cut off, and the server no longer has it to resume. ' +
      'What is shown is incomplete.', true];
  }
  switch (err.code) {
    case 'unauthorized':
      return ['unauthorized', apiKey === undefined
        ? 'This server answers only with its API key. Enter the key to ask.'
        : `The server refused the key: ${err.message} (${err.status ?? 401}, ${err.code})`, false];
    case 'truncated':
      return ['truncated', 'The answer was cut off: the connection ended before the server finished. ' +
        'What is shown is incomplete.', true];
    case 'network':
      return ['network', navigator.onLine === false || err === OFFLINE
        ? 'The network connection was lost. Check it and try again.'
        : 'The server could not be reached. Check the connection and try again.', true];
    case 'malformed':
    case 'line_too_long':
      return ['other', `The server sent something this page does not understand (${err.code}).`, false];
  }
  if (err.status !== undefined) {
    const refused = err.status < 500 ? 'The server refused the question' : 'The server could not answer';
    return ['http', `${refused}: ${err.message} (${err.status}, ${err.code})`, err.retryable];
  }
  return ['event', `The answer failed: ${err.message} (${err.code})`, err.retryable];
}

/** leave ends an answer this page no longer wants: canceled on the server, its connection closed. */
function leave(entry, reason) {
  entry.answer.cancel().catch(() => {}); // best effort: the server's linger window covers a failure
  entry.controller.abort(reason);
}

async function run(question) {
  if (current) leave(current, REPLACED);
  const controller = new AbortController();
  const apiKey = currentKey();
  showTurns(); // the answer before this one, if complete, moves up into the conversation
  const asking = turns.length ? { messages: messagesFor(question) } : { question };
  const entry = {
    controller,
    apiKey,
    stopping: false,
    answer: ask(streamURL, {
      ...asking,
      apiKey,
      signal: controller.signal,
      onReconnect: () => {
        if (current !== entry) return;
        setState('reconnecting');
        status('Reconnecting…');
      },
      onResume: () => {
        if (current !== entry) return;
        setState(queryEl.textContent ? 'streaming' : 'asking');
        status(entry.stopping ? 'Stopping…' : shownStatus);
      },
    }),
  };
  current = entry;
  lastQuestion = question;
  clear();
  setState('asking');
  progress('Asking…');

  const url = new URL(location.href);
  url.searchParams.set('q', question);
  history.replaceState(null, '', url);

  let text = ''; // the answer's Markdown so far
  let sources = [];
  let streaming = true;
  let incomplete = false; // the answer ended before done: it keeps its caret, as "…"
  const turn = { question, query: '', tags: [], answer: '', sources: [] };
  const cite = (n) => citer(sources)(n);
  const paint = painter(() => {
    if (current !== entry) return; // a newer answer has the page
    answerEl.replaceChildren(renderAnswer(text, { cite, streaming, caret: streaming || incomplete, base: document.baseURI }));
  });
  // end renders the answer as it ended, before the page says how it ended.
  const end = (cut = true) => {
    if (!streaming) return;
    streaming = false;
    incomplete = cut;
    if (text) paint.flush();
    else paint.cancel();
  };
  const stopped = (reason) => {
    end();
    setState('stopped');
    status(reason === 'abandoned'
      ? 'The server stopped the answer while this page was away. The answer above is incomplete.'
      : text ? 'Stopped. The answer above is incomplete.' : 'Stopped.');
  };
  try {
    for await (const e of entry.answer) {
      if (current !== entry) break;
      switch (e.type) {
        case 'query':
          setState('streaming');
          queryEl.textContent = e.data;
          turn.query = e.data;
          result.hidden = false;
          conversing();
          progress(entry.stopping ? 'Stopping…' : 'Searching the articles…');
          break;
        case 'tags':
          tagsEl.replaceChildren(...e.data.map(chip));
          turn.tags = e.data;
          break;
        case 'sources':
          sources = e.data;
          turn.sources = e.data.map(({ slug, title, url, snippet }) => ({ slug, title, url, snippet }));
          if (text) paint.schedule();
          sourcesEl.replaceChildren(...e.data.map(source));
          sourcesHeading.hidden = e.data.length === 0;
          progress(e.data.length ? 'Writing the answer…' : 'No article matches; writing what can be said…');
          if (entry.stopping) status('Stopping…');
          break;
        case 'token':
          text += e.data;
          paint.schedule();
          break;
        case 'done':
          end(false);
          // Complete: the next question follows up on it. It stays the live
          // answer until then.
          turn.answer = text;
          turns.push(turn);
          saveTurns();
          conversing();
          setState('done');
          status(e.data.finish_reason === 'length' ? 'Done: the answer reached its length limit.' : 'Done.');
          break;
        case 'canceled':
          stopped(e.data.reason);
          break;
      }
    }
  } catch (err) {
    if (current !== entry || err === REPLACED) return;
    if (err === STOP || entry.stopping) {
      stopped('client');
      return;
    }
    end();
    const [kind, message, retryable] = describe(err, apiKey);
    setState('error', kind);
    status('');
    if (kind === 'truncated' || kind === 'event') result.hidden = !queryEl.textContent;
    showAlert(message, retryable);
    if (kind === 'unauthorized') askForKey(apiKey);
  } finally {
    if (current === entry) end();
    else paint.cancel();
    if (current === entry) {
      current = null;
      stopButton.disabled = true;
    }
  }
}

/**
 * askForKey shows the key field, empty, with the focus in it. A key the
 * server refused is forgotten, so that a reload does not send it again.
 */
function askForKey(refused) {
  if (refused !== undefined && currentKey() === refused) saveKey(undefined);
  keyInput.value = '';
  keyInput.setCustomValidity('');
  keyForm.hidden = false;
  keyInput.focus();
}

keyForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const key = keyInput.value.trim();
  // What an Authorization header can carry; the client would refuse the rest.
  if (!/^[\x21-\x7E]+$/.test(key)) {
    keyInput.setCustomValidity('A key is letters, digits and punctuation, without spaces.');
    keyInput.reportValidity();
    return;
  }
  saveKey(key);
  keyForm.hidden = true;
  input.focus();
  const question = lastQuestion || input.value.trim();
  if (question) run(question);
});

keyInput.addEventListener('input', () => keyInput.setCustomValidity(''));

/**
 * stop cancels the run on the server: its generation stops at once, and the
 * answer ends with the canceled event. When there is no run to cancel yet,
 * or the server cannot be told, closing the connection is what is left (the
 * server then cancels the run after its linger window).
 */
async function stop() {
  const entry = current;
  if (!entry || entry.stopping) return;
  entry.stopping = true;
  stopButton.disabled = true;
  status('Stopping…');
  let ended;
  try {
    ended = await entry.answer.cancel();
  } catch {
    // unreachable: fall back to closing the connection
  }
  if (!ended) entry.controller.abort(STOP);
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const question = input.value.trim();
  if (question) run(question);
});

newButton.addEventListener('click', newConversation);

stopButton.addEventListener('click', () => {
  stop();
  input.focus();
});

retryButton.addEventListener('click', () => {
  if (lastQuestion) run(lastQuestion);
});

document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && current) {
    ev.preventDefault(); // in a search box, Esc would also clear the question
    stop();
  }
});

// A lost network can leave a fetch waiting for minutes on a dead connection:
// drop it and let the client resume the answer (it retries with backoff, and
// says network if the network does not come back in time). Before the server
// has named the run there is nothing to resume: the answer ends at once.
window.addEventListener('offline', () => {
  if (current && !current.stopping && !current.answer.reconnect()) current.controller.abort(OFFLINE);
});

// Back online while the client waits to try again: try now.
window.addEventListener('online', () => {
  if (document.body.dataset.state === 'reconnecting') current?.answer.reconnect();
});

// Leaving the page mid-answer: the run would linger on the server for a
// while in case this page came back; it will not, so cancel it now. A beacon
// cannot carry the API key: with one, a fetch with keepalive, which outlives
// the page as a beacon does, sends POST .../cancel with it.
window.addEventListener('pagehide', () => {
  const id = current?.answer.runId;
  if (!id) return;
  const { apiKey } = current;
  if (apiKey !== undefined) {
    const keepalive = (url, init) => fetch(url, { ...init, keepalive: true });
    cancel(runsURL, id, { method: 'POST', apiKey, fetch: keepalive }).catch(() => {});
  } else if (typeof navigator.sendBeacon === 'function') {
    navigator.sendBeacon(new URL(encodeURIComponent(id) + '/cancel', runsURL));
  }
});

// A reload shows the conversation of this tab again. When the address asks
// the conversation's latest question (the reload of a page that asked it),
// that one is asked again after the turns before it; an address that asks
// another question starts a new conversation.
const initial = new URLSearchParams(location.search).get('q')?.trim();
if (initial && turns.length && turns.at(-1).question !== initial) {
  turns = [];
  saveTurns();
} else if (initial && turns.length) {
  turns.pop();
  saveTurns();
}
showTurns();
if (initial) {
  input.value = initial;
  run(initial);
} else {
  input.focus();
}
