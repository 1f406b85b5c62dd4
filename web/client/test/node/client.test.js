// The client in Node against the real Go server (web/testserver: rhttp.Server,
// the SQLite store, the embedded articles, the extractive answers) and against
// tiny Node servers that misbehave on purpose. The rules of protocol v1 that
// v1.1 keeps: this server cancels a run as soon as its reader leaves (linger
// 0), and the truncation tests turn resuming off (retries: 0) to see the
// break itself; resume.test.js resumes.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, beforeEach, test } from 'node:test';

import { RunnelError, ask, askEach } from '../../runnel.js';
import { startTestServer, waitFor } from '../support/server.js';
import { numbered, transcript, transcriptAnswer, transcriptEvents } from '../support/transcript.js';

let server; // the Go test server
let stream; // its stream endpoint
let control;

before(async () => {
  server = await startTestServer({ linger: '0s' });
  stream = server.url + '/articles/stream';
  control = server.control;
});

after(async () => {
  await server?.stop();
});

beforeEach(async () => {
  await control.reset();
});

async function collect(url, options) {
  const events = [];
  let error;
  try {
    for await (const e of typeof url === 'object' && Symbol.asyncIterator in url ? url : ask(url, options)) events.push(e);
  } catch (err) {
    error = err;
  }
  return { events, error, types: events.map((e) => e.type), answer: answerOf(events) };
}

/** The events as on the wire, without the run and number ask() adds. */
const plain = (events) => events.map(({ type, data }) => ({ type, data }));

function answerOf(events) {
  return events.filter((e) => e.type === 'token').map((e) => e.data).join('');
}

/** A Node server for one test; handler gets (req, res). */
async function nodeServer(handler) {
  const srv = createServer(handler);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    close: () => {
      srv.closeAllConnections();
      return new Promise((r) => srv.close(r));
    },
  };
}

const ndjsonHeaders = { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache' };

test('a normal answer from the real server', async () => {
  const it = ask(stream, { question: 'what is websocket?' });
  assert.equal(it.runId, undefined, 'no run id before the server names it');
  const { events, error, types, answer } = await collect(it);
  assert.equal(error, undefined);
  assert.match(it.runId, /^[A-Za-z0-9_-]{22}$/, 'the run id: 22 characters of base64url');
  events.forEach((e, i) => {
    assert.equal(e.run, it.runId, `event ${i} names its run`);
    assert.equal(e.seq, i, `event ${i} has its number`);
  });
  assert.deepEqual(types.slice(0, 4), ['query', 'tags', 'titles', 'sources']);
  assert.equal(types.at(-1), 'done');
  assert.ok(types.slice(4, -1).every((t) => t === 'token') && types.length > 20, types.join(' '));
  assert.equal(events[0].data, 'what is websocket?');
  assert.ok(events[1].data.includes('websocket'), events[1].data.join());
  assert.equal(events[3].data[0].url, '/articles/websocket');
  assert.equal(events.at(-1).data.finish_reason, 'stop');
  const st = await control.state();
  assert.equal(answer, st.answer, 'the tokens are exactly the generated answer');
  assert.equal(st.finished, 1);
});

test('the GET form and the callback form', async () => {
  const events = [];
  const done = await askEach(stream, { question: 'what is websocket', method: 'GET' }, async (e) => {
    events.push(e);
  });
  assert.equal(done.finish_reason, 'stop');
  assert.equal(events[0].data, 'what is websocket?');
  assert.equal(answerOf(events), (await control.state()).answer);
});

test('tokens arrive while the answer is produced: each step before the next is generated', async () => {
  await control.mode('gated', { steps: 4 });
  const it = ask(stream, { question: 'what is websocket?' });
  let answer = '';
  let step = 0;
  for await (const e of it) {
    if (e.type === 'token') answer += e.data;
    if (e.type === 'done') break;
    const st = await control.state();
    // Once the client holds everything the generator emitted and the
    // generator is parked at its gate, release the next step.
    if (st.waiting && st.step === step + 1 && answer === st.emitted) {
      step++;
      await control.release();
    }
  }
  assert.equal(step, 3, 'the answer arrived in 4 steps, each released after the previous one was read');
  assert.equal(answer, (await control.state()).answer);
});

test('byte splits at every position, through fetch and the whole ask() path', async () => {
  const bytes = new TextEncoder().encode(transcript);
  for (let i = 0; i <= bytes.length; i++) {
    const fakeFetch = async () =>
      new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(bytes.slice(0, i));
            c.enqueue(bytes.slice(i));
            c.close();
          },
        }),
        { status: 200, headers: ndjsonHeaders },
      );
    const { events, error } = await collect('http://127.0.0.1:1/articles/stream', { question: 'q', fetch: fakeFetch });
    assert.equal(error, undefined, `split at ${i}: ${error}`);
    assert.deepEqual(events, numbered(transcriptEvents), `split at byte ${i}`);
  }
});

test('one byte per chunk over a real socket (Node server)', async () => {
  const bytes = Buffer.from(transcript);
  const srv = await nodeServer(async (req, res) => {
    res.writeHead(200, ndjsonHeaders);
    res.socket.setNoDelay(true);
    for (const b of bytes) {
      if (!res.write(Buffer.of(b))) await once(res, 'drain');
      await new Promise(setImmediate);
    }
    res.end();
  });
  try {
    const { events, error, answer } = await collect(srv.url, { question: 'q' });
    assert.equal(error, undefined);
    assert.deepEqual(events, numbered(transcriptEvents), 'a server that names no run: run is ""');
    assert.equal(answer, transcriptAnswer);
  } finally {
    await srv.close();
  }
});

test('one byte per chunk from the real Go server, multi-byte characters included', async () => {
  await control.mode('bytes');
  const { error, answer, types } = await collect(stream, { question: 'utf-8 streaming replacement character' });
  assert.equal(error, undefined);
  assert.equal(types.at(-1), 'done');
  const st = await control.state();
  assert.ok(/[^\x00-\x7f]/.test(st.answer), 'the answer has a multi-byte character');
  assert.equal(answer, st.answer);
});

test('truncation: the Go server cuts the connection mid-stream (undici: terminated, UND_ERR_SOCKET)', async () => {
  await control.mode('cut', { after: 3 });
  const { error, types } = await collect(stream, { question: 'what is websocket?', retries: 0 });
  assert.deepEqual(types, ['query', 'tags', 'titles', 'sources', 'token', 'token', 'token']);
  assert.ok(error instanceof RunnelError, String(error));
  assert.equal(error.code, 'truncated');
  assert.equal(error.retryable, true);
  // The Node-specific shape of a cut chunked body, kept as the cause.
  assert.equal(error.cause?.name, 'TypeError');
  assert.equal(error.cause?.message, 'terminated');
  assert.equal(error.cause?.cause?.code, 'UND_ERR_SOCKET');
  assert.match(error.run, /^[A-Za-z0-9_-]{22}$/, 'the error names the run it ended');
});

test('a connection cut right after done is harmless', async () => {
  await control.mode('cut-after-done');
  const { error, types, answer } = await collect(stream, { question: 'what is websocket?' });
  assert.equal(error, undefined);
  assert.equal(types.at(-1), 'done');
  assert.equal(answer, (await control.state()).answer);
});

test('truncation, Node servers: socket destroyed mid-line, clean end without done, done without a newline', async () => {
  const lines = transcript.split('\n');
  const cases = [
    {
      name: 'destroyed in the middle of a token line',
      write: (res) => {
        res.write(lines.slice(0, 6).join('\n') + '\n' + lines[6].slice(0, 10));
        setTimeout(() => res.socket.destroy(), 20);
      },
      code: 'truncated',
      undici: true,
    },
    {
      name: 'ended cleanly without done',
      write: (res) => res.end(lines.slice(0, 8).join('\n') + '\n'),
      code: 'truncated',
    },
    {
      name: 'ended cleanly in the middle of the done line',
      write: (res) => res.end(lines.slice(0, -2).join('\n') + '\n' + lines.at(-2).slice(0, 20)),
      code: 'truncated',
    },
    {
      name: 'done without a newline, then a clean end',
      write: (res) => res.end(transcript.trimEnd()),
    },
    {
      name: 'done without a newline, then the socket destroyed',
      write: (res) => {
        res.write(transcript.trimEnd());
        setTimeout(() => res.socket.destroy(), 20);
      },
    },
  ];
  for (const c of cases) {
    const srv = await nodeServer((req, res) => {
      res.writeHead(200, ndjsonHeaders);
      c.write(res);
    });
    try {
      const { events, error } = await collect(srv.url, { question: 'q' });
      if (c.code) {
        assert.ok(error instanceof RunnelError, `${c.name}: ${error}`);
        assert.equal(error.code, c.code, c.name);
        if (c.undici) assert.equal(error.cause?.cause?.code, 'UND_ERR_SOCKET', c.name);
      } else {
        assert.equal(error, undefined, `${c.name}: ${error}`);
        assert.deepEqual(events, numbered(transcriptEvents), c.name);
      }
    } finally {
      await srv.close();
    }
  }
});

test('abort stops the answer in the client and the work on the server', async () => {
  await control.mode('hang', { after: 3 });
  const controller = new AbortController();
  const reason = new DOMException('user stop', 'AbortError');
  let tokens = 0;
  let error;
  try {
    for await (const e of ask(stream, { question: 'what is websocket?', signal: controller.signal })) {
      if (e.type === 'token' && ++tokens === 3) {
        await control.until((s) => s.waiting && s.running === 1, 'the generator to hang');
        controller.abort(reason);
      }
    }
  } catch (err) {
    error = err;
  }
  assert.equal(error, reason, 'ask throws the signal\'s reason');
  const st = await control.until((s) => s.cancelled === 1 && s.running === 0, "the server's generation to be cancelled");
  assert.equal(st.finished, 0);
});

test('abort before the first event', async () => {
  await control.mode('hang', { after: 1 });
  const controller = new AbortController();
  const p = collect(stream, { question: 'what is websocket?', signal: controller.signal });
  await control.until((s) => s.waiting, 'the generator to hang');
  controller.abort();
  const { error } = await p;
  assert.equal(error?.name, 'AbortError');
  await control.until((s) => s.cancelled === 1 && s.running === 0, 'the generation to be cancelled');

  const aborted = AbortSignal.abort();
  const r = await collect(stream, { question: 'what is websocket?', signal: aborted });
  assert.equal(r.error?.name, 'AbortError');
  assert.deepEqual(r.events, []);
});

test('leaving the loop early closes the connection, and the server stops', async () => {
  await control.mode('hang', { after: 2 });
  for await (const e of ask(stream, { question: 'what is websocket?' })) {
    if (e.type === 'token') break;
  }
  await control.until((s) => s.cancelled === 1 && s.running === 0, 'the generation to be cancelled');
});

test('a callback that throws stops the answer and the server', async () => {
  await control.mode('hang', { after: 2 });
  const boom = new Error('boom');
  await assert.rejects(
    askEach(stream, { question: 'what is websocket?' }, (e) => {
      if (e.type === 'token') throw boom;
    }),
    (err) => err === boom,
  );
  await control.until((s) => s.cancelled === 1 && s.running === 0, 'the generation to be cancelled');
});

test('an error event becomes a RunnelError with the server\'s code', async () => {
  await control.mode('error', { after: 2 });
  const { error, types } = await collect(stream, { question: 'what is websocket?' });
  assert.deepEqual(types, ['query', 'tags', 'titles', 'sources', 'token', 'token']);
  assert.ok(error instanceof RunnelError);
  assert.equal(error.code, 'upstream');
  assert.equal(error.message, 'The model stopped answering.');
  assert.equal(error.retryable, true);
  assert.equal(error.status, undefined, 'an error in the stream has no HTTP status');
});

test('HTTP errors before the stream become RunnelErrors with the server\'s code and status', async () => {
  const cases = [
    { question: '', status: 400, code: 'invalid' },
    { question: '?!*', status: 400, code: 'invalid' },
    { question: 'x'.repeat(2001), status: 413, code: 'too_large' },
  ];
  for (const c of cases) {
    const { error, events } = await collect(stream, { question: c.question });
    assert.deepEqual(events, []);
    assert.ok(error instanceof RunnelError, String(error));
    assert.equal(error.status, c.status, c.question.slice(0, 10));
    assert.equal(error.code, c.code);
    assert.ok(error.message.length > 5, error.message);
  }
  const { error } = await collect(server.url + '/articles/nope/stream', { question: 'x', method: 'GET' });
  assert.equal(error.status, 404);
  assert.equal(error.code, 'not_found');
});

test('an error status without a JSON body (a proxy) still has a code', async () => {
  const srv = await nodeServer((req, res) => {
    res.writeHead(503, { 'Content-Type': 'text/html', 'Retry-After': '7' });
    res.end('<h1>Service Unavailable</h1>');
  });
  try {
    const { error } = await collect(srv.url, { question: 'q' });
    assert.equal(error.code, 'unavailable');
    assert.equal(error.status, 503);
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfter, 7);
  } finally {
    await srv.close();
  }
});

test('ping and unknown event types are skipped', async () => {
  const srv = await nodeServer((req, res) => {
    res.writeHead(200, ndjsonHeaders);
    const lines = transcript.split('\n');
    res.end([lines[0], '{"type":"ping"}', '{"type":"future","data":[1]}', ...lines.slice(1)].join('\n'));
  });
  try {
    const { events, error } = await collect(srv.url, { question: 'q' });
    assert.equal(error, undefined);
    assert.deepEqual(plain(events), transcriptEvents);
    // Unknown types are numbered (they are events of the run); pings are not.
    assert.deepEqual(events.map((e) => e.seq), transcriptEvents.map((e, i) => (i === 0 ? 0 : i + 1)));
  } finally {
    await srv.close();
  }
});

test('not a stream: wrong content type, a line that is not JSON, a line over the limit', async () => {
  const srv = await nodeServer((req, res) => {
    if (req.url === '/html') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html>');
      return;
    }
    res.writeHead(200, ndjsonHeaders);
    res.end('{"type":"query","data":"q"}\nthis is not json\n');
  });
  try {
    let r = await collect(srv.url + '/html', { question: 'q' });
    assert.equal(r.error?.code, 'malformed');
    r = await collect(srv.url, { question: 'q' });
    assert.equal(r.error?.code, 'malformed');
    assert.deepEqual(r.types, ['query']);
  } finally {
    await srv.close();
  }
  const r = await collect(stream, { question: 'what is websocket?', maxLine: 200 });
  assert.equal(r.error?.code, 'line_too_long', 'the sources line is longer than 200 characters');
});

test('an unreachable server is a network error', async () => {
  const srv = await nodeServer(() => {});
  const url = srv.url;
  await srv.close(); // nothing listens there now
  const { error } = await collect(url, { question: 'q' });
  assert.ok(error instanceof RunnelError);
  assert.equal(error.code, 'network');
  assert.equal(error.retryable, true);
  assert.ok(error.cause, 'the fetch error is the cause');
});

test('bad arguments', async () => {
  await assert.rejects(ask(stream, {}).next(), TypeError);
  await assert.rejects(ask(stream, { question: 'q', method: 'PUT' }).next(), TypeError);
  await assert.rejects(ask(stream, { question: 'q', transport: 'carrier-pigeon' }).next(), TypeError);
  await assert.rejects(ask(stream, { question: 'q', retries: -1 }).next(), TypeError);
  await assert.rejects(ask(stream, { question: 'q', transport: 'websocket', WebSocket: null }).next(), TypeError);
  await assert.rejects(askEach(stream, { question: 'q' }), TypeError);
});

test('waitFor fails with a message when its condition never holds', async () => {
  await assert.rejects(waitFor(() => false, { what: 'never', timeout: 30 }), /never/);
});
