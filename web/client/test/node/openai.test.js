// The official openai npm package as a client of runnel's OpenAI-compatible
// API (/v1): a streamed completion, one that is not streamed, the models,
// errors as the SDK's error classes, and an abort (AbortController) that
// closes the connection, after which the server cancels the run as
// abandoned once its linger window has passed.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';

import OpenAI, { BadRequestError, NotFoundError } from 'openai';

import { startTestServer } from '../support/server.js';

const QUESTION = 'what is websocket?';
let server;
let control;
let client;

before(async () => {
  server = await startTestServer({ linger: '300ms' });
  control = server.control;
  client = new OpenAI({ baseURL: server.url + '/v1', apiKey: 'not-needed', maxRetries: 0 });
});

after(async () => {
  await server?.stop();
});

beforeEach(async () => {
  await control.reset();
});

/** replay reads a run's whole log from the native route, as NDJSON. */
async function replay(id) {
  const res = await fetch(`${server.url}/runs/${id}`);
  assert.equal(res.status, 200);
  return (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
}

test('a streamed completion: role, content deltas, finish with sources, usage, [DONE]', async () => {
  const { data: stream, response } = await client.chat.completions
    .create({
      model: 'runnel',
      messages: [{ role: 'user', content: QUESTION }],
      stream: true,
      stream_options: { include_usage: true },
    })
    .withResponse();
  const runId = response.headers.get('runnel-run-id');
  assert.ok(runId);
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);

  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  for (const c of chunks) {
    assert.equal(c.id, `chatcmpl-${runId}`);
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, 'runnel');
  }
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.match(text, /WebSocket/);
  assert.match(text, /\n\nSources:\n\n- \[1\] \[.+\]\(http:\/\/127\.0\.0\.1:\d+\/articles\/.+\)/);

  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.ok(usage.usage.completion_tokens > 0);
  const finish = chunks.at(-2);
  assert.equal(finish.choices[0].finish_reason, 'stop');
  assert.ok(finish.sources.length > 0);
  assert.equal(finish.sources[0].index, 1);
  assert.ok(text.includes(`[1] [${finish.sources[0].title}](${finish.sources[0].url})`));

  // The answer is a run like any other.
  assert.equal((await replay(runId)).at(-1).type, 'done');
});

test('a completion that is not streamed', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'runnel', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: QUESTION }] })
    .withResponse();
  assert.equal(data.id, `chatcmpl-${response.headers.get('runnel-run-id')}`);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.match(data.choices[0].message.content, /WebSocket[\s\S]*\n\nSources:\n/);
  assert.ok(data.sources.length > 0);
  assert.ok(data.usage.completion_tokens > 0);
});

test('models, and errors as the SDK reports them', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.deepEqual(models, ['runnel']);
  assert.equal((await client.models.retrieve('runnel')).id, 'runnel');

  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: QUESTION }] }),
    (err) => err instanceof NotFoundError && err.status === 404 && err.code === 'model_not_found' && err.param === 'model',
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'runnel', messages: [], stream: true }),
    (err) => err instanceof BadRequestError && err.type === 'invalid_request_error' && err.param === 'messages',
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'runnel', n: 2, messages: [{ role: 'user', content: QUESTION }] }),
    (err) => err instanceof BadRequestError && err.param === 'n',
  );
  assert.equal((await control.state()).started, 0, 'nothing was asked');
});

test('abort mid-stream: the connection closes, and the run is canceled as abandoned after the linger window', async () => {
  await control.mode('hang', { after: 3 });
  const controller = new AbortController();
  const { data: stream, response } = await client.chat.completions
    .create({ model: 'runnel', messages: [{ role: 'user', content: QUESTION }], stream: true }, { signal: controller.signal })
    .withResponse();
  const runId = response.headers.get('runnel-run-id');
  let tokens = 0;
  // The SDK ends the iteration without an error when its request is aborted.
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) tokens++;
    if (tokens === 3) {
      await control.until((s) => s.waiting, 'the generator to hang');
      controller.abort();
    }
    assert.notEqual(chunk.choices[0]?.finish_reason, 'stop', 'no finish for an aborted answer');
  }
  assert.equal(tokens, 3);
  assert.ok(controller.signal.aborted);
  const st = await control.until((s) => s.cancelled === 1 && s.running === 0, "the server's generation to be cancelled");
  assert.equal(st.finished, 0);
  assert.deepEqual((await replay(runId)).at(-1), { type: 'canceled', data: { reason: 'abandoned' } });
});
