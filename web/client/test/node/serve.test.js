// The real program: `runnel serve` built from cmd/runnel, asked by the client,
// and its pages negotiated by Accept next to the unchanged JSON API.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ask } from '../../runnel.js';
import { buildGo, startServer } from '../support/server.js';

const browserAccept = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
let bin;
let server;

before(async () => {
  bin = await buildGo('./cmd/runnel', 'runnel');
  server = await startServer(bin.path, ['serve', '--addr', '127.0.0.1:0', '--log-level', 'warn']);
});

after(async () => {
  await server?.stop();
  await bin?.cleanup();
});

test('runnel serve answers "what is websocket?" as a stream', async () => {
  const events = [];
  for await (const e of ask(server.url + '/articles/stream', { question: 'what is websocket?' })) events.push(e);
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 4), ['query', 'tags', 'titles', 'sources']);
  assert.equal(types.at(-1), 'done');
  assert.equal(events[0].data, 'what is websocket?');
  assert.ok(events[1].data.length > 0, 'tags');
  assert.equal(events[3].data[0].slug, 'websocket');
  const answer = events.filter((e) => e.type === 'token').map((e) => e.data).join('');
  assert.match(answer, /WebSocket/);
});

test('browsers get pages; API clients keep their JSON', async () => {
  const get = (path, accept) => fetch(server.url + path, accept ? { headers: { Accept: accept } } : {});

  let res = await get('/', browserAccept);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  const html = await res.text();
  assert.match(html, /<script type="module" src="\.\/static\/app\.js">/);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no absolute or external URL');
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);

  res = await get('/');
  assert.match(res.headers.get('content-type'), /^text\/plain/, 'curl still gets the route list at /');
  await res.text();

  for (const accept of [undefined, '*/*', 'application/json', 'application/json, text/html']) {
    res = await get('/articles/websocket', accept);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json', `Accept: ${accept}`);
    assert.equal((await res.json()).slug, 'websocket');
  }
  res = await get('/articles/websocket', browserAccept);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(res.headers.get('vary'), /Accept/);
  assert.match(await res.text(), /<h1>WebSocket<\/h1>/);

  res = await get('/static/client/runnel.js');
  assert.match(res.headers.get('content-type'), /^text\/javascript/);
  assert.match(await res.text(), /export function ask\(/, 'the served file is the client module');
});
