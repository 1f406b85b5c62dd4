// The client asks a follow-up as the conversation so far (options.messages)
// over each transport, against the Go test server on the embedded articles:
// the second question, which names nothing, finds the article its first
// question was about.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { RunnelError, ask, askEach } from '../../runnel.js';
import { startTestServer } from '../support/server.js';

let server;
let stream;

before(async () => {
  server = await startTestServer();
  stream = server.url + '/articles/stream';
});

after(async () => {
  await server?.stop();
});

const conversation = [
  { role: 'user', content: 'what is SSE?' },
  { role: 'assistant', content: 'Server-Sent Events push text events over one HTTP response.' },
  { role: 'user', content: 'how does it reconnect?' },
];

for (const transport of ['ndjson', 'sse', 'websocket']) {
  test(`a follow-up as messages over ${transport}`, async () => {
    const events = [];
    for await (const e of ask(stream, { messages: conversation, transport, WebSocket })) events.push(e);
    assert.equal(events[0].type, 'query');
    assert.equal(events[0].data, 'how does it reconnect?');
    const sources = events.find((e) => e.type === 'sources').data.map((s) => s.slug);
    assert.ok(['server-sent-events', 'websocket-vs-sse'].includes(sources[0]), `sources ${sources}`);
    assert.equal(events.at(-1).type, 'done');
  });
}

test('the server refuses a conversation that does not end with a question', async () => {
  await assert.rejects(
    askEach(stream, { messages: conversation.slice(0, 2) }, () => {}),
    (err) => err instanceof RunnelError && err.code === 'invalid' && /must end with a user message/.test(err.message),
  );
});

test('messages and question together, or messages with GET, are a TypeError', async () => {
  await assert.rejects(askEach(stream, { question: 'what is SSE?', messages: conversation }, () => {}), TypeError);
  await assert.rejects(askEach(stream, { messages: 'what is SSE?' }, () => {}), TypeError);
  await assert.rejects(askEach(stream, { messages: conversation, method: 'GET' }, () => {}), TypeError);
});
