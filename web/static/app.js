// The page that asks: it reads the answer with runnel's own JS client (the
// same module published on npm) and shows each event as it arrives. Every URL
// is relative to this page, so the site works under any path prefix.
//
// document.body.dataset.state tells the page's state, for CSS and for tests:
// idle, asking (request sent), streaming, done, stopped or error; when it is
// error, dataset.error says which: http, event, truncated, network or other.

import { ask, RunnelError } from './client/runnel.js';

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

const streamURL = new URL('articles/stream', document.baseURI);

// Why a request was aborted: the abort reason travels back as the error.
const STOP = new DOMException('Stopped by the user.', 'AbortError');
const REPLACED = new DOMException('Replaced by a new question.', 'AbortError');
const OFFLINE = new RunnelError('network', 'The network connection was lost.', { retryable: true });

let current = null; // the AbortController of the answer in progress
let lastQuestion = '';

function setState(state, error) {
  document.body.dataset.state = state;
  if (error) document.body.dataset.error = error;
  else delete document.body.dataset.error;
  const busy = state === 'asking' || state === 'streaming';
  stopButton.disabled = !busy;
  answerEl.setAttribute('aria-busy', String(busy));
}

function status(text) {
  statusEl.textContent = text;
}

function showAlert(text, retryable) {
  alertText.textContent = text;
  retryButton.hidden = !retryable;
  alertEl.hidden = false;
}

function clear() {
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

function chip(tag) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.className = 'chip';
  a.href = 'articles?tag=' + encodeURIComponent(tag);
  a.textContent = tag;
  li.append(a);
  return li;
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

function describe(err) {
  if (!(err instanceof RunnelError)) {
    return ['other', 'Something went wrong in this page: ' + (err?.message || err) + '.', true];
  }
  switch (err.code) {
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

async function run(question) {
  current?.abort(REPLACED);
  const controller = new AbortController();
  current = controller;
  lastQuestion = question;
  clear();
  setState('asking');
  status('Asking…');

  const url = new URL(location.href);
  url.searchParams.set('q', question);
  history.replaceState(null, '', url);

  let text = null; // the answer's text node, grown token by token
  try {
    for await (const e of ask(streamURL, { question, signal: controller.signal })) {
      if (current !== controller) break;
      switch (e.type) {
        case 'query':
          setState('streaming');
          queryEl.textContent = e.data;
          result.hidden = false;
          status('Searching the articles…');
          break;
        case 'tags':
          tagsEl.replaceChildren(...e.data.map(chip));
          break;
        case 'sources':
          sourcesEl.replaceChildren(...e.data.map(source));
          sourcesHeading.hidden = e.data.length === 0;
          status(e.data.length ? 'Writing the answer…' : 'No article matches; writing what can be said…');
          break;
        case 'token':
          if (!text) {
            text = document.createTextNode('');
            answerEl.append(text);
          }
          text.appendData(e.data);
          break;
        case 'done':
          setState('done');
          status(e.data.finish_reason === 'length' ? 'Done: the answer reached its length limit.' : 'Done.');
          break;
      }
    }
  } catch (err) {
    if (current !== controller || err === REPLACED) return;
    if (err === STOP) {
      setState('stopped');
      status(text ? 'Stopped. The answer above is incomplete.' : 'Stopped.');
      return;
    }
    const [kind, message, retryable] = describe(err);
    setState('error', kind);
    status('');
    if (kind === 'truncated' || kind === 'event') result.hidden = !queryEl.textContent;
    showAlert(message, retryable);
  } finally {
    if (current === controller) current = null;
  }
}

function stop() {
  current?.abort(STOP);
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const question = input.value.trim();
  if (question) run(question);
});

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

// A lost network can leave a fetch waiting for minutes: say so at once.
window.addEventListener('offline', () => current?.abort(OFFLINE));

const initial = new URLSearchParams(location.search).get('q');
if (initial && initial.trim()) {
  input.value = initial;
  run(initial.trim());
} else {
  input.focus();
}
