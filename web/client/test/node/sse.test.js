// The SSE decoder on its own: any split of the bytes, any line end, gives the
// same events; comments and retry are read as the format says.

import assert from 'node:assert/strict';
import test from 'node:test';

import { RunnelError, SSEDecoder, eventFromSSE } from '../../runnel.js';
import { numbered, sseTranscript, transcriptEvents, transcriptRun } from '../support/transcript.js';

const expected = numbered(transcriptEvents, transcriptRun);
const encoder = new TextEncoder();

function decodeChunks(chunks, options) {
  const d = new SSEDecoder(options);
  const out = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return { events: out.map(eventFromSSE), decoder: d };
}

for (const [name, eol] of [['LF', '\n'], ['CRLF', '\r\n'], ['CR', '\r']]) {
  const bytes = encoder.encode(sseTranscript(eol));

  test(`${name}: one chunk, then split at every byte position`, () => {
    const whole = decodeChunks([bytes]);
    assert.deepEqual(whole.events, expected);
    assert.equal(whole.decoder.retry, 1000);
    assert.equal(whole.decoder.lastEventId, `${transcriptRun}.${transcriptEvents.length - 1}`);
    for (let i = 0; i <= bytes.length; i++) {
      const { events } = decodeChunks([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(events, expected, `split at byte ${i}`);
    }
  });

  test(`${name}: one byte per chunk, and three chunks around every multi-byte character`, () => {
    assert.deepEqual(decodeChunks(Array.from(bytes, (b) => Uint8Array.of(b))).events, expected);
    for (let i = 0; i < bytes.length; i++) {
      for (let j = i; j <= Math.min(bytes.length, i + 4); j++) {
        const { events } = decodeChunks([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
        assert.deepEqual(events, expected, `cuts at ${i} and ${j}`);
      }
    }
  });
}

test('random splits of a transcript that mixes line ends (fixed seed)', () => {
  let seed = 7;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  // Any line end after any other, except an LF right after a CR: that pair
  // is one CRLF, and would swallow a blank line.
  let prev = '';
  const text = sseTranscript('\n').replace(/\n/g, () => {
    const ends = prev === '\r' ? ['\r', '\r\n'] : ['\n', '\r\n', '\r'];
    prev = ends[rand(ends.length)];
    return prev;
  });
  const bytes = encoder.encode(text);
  for (let round = 0; round < 300; round++) {
    const chunks = [];
    for (let at = 0; at < bytes.length;) {
      const n = 1 + rand(30);
      chunks.push(bytes.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(decodeChunks(chunks).events, expected, `round ${round}`);
  }
});

test('CR at the end of a chunk and LF at the start of the next are one line end', () => {
  const d = new SSEDecoder();
  assert.deepEqual(d.push('event: token\r'), []);
  assert.deepEqual(d.push('\ndata: "a"\r'), []);
  assert.deepEqual(d.push('\n\r'), [{ event: 'token', data: '"a"', id: undefined }]);
  // That LF ends no new line: a blank line here would dispatch nothing anyway,
  // but it must not swallow the next field either.
  assert.deepEqual(d.push('\nevent: done\ndata: {}\n\n'), [{ event: 'done', data: '{}', id: undefined }]);
});

test('the fields as the format reads them', () => {
  const { events, decoder } = (() => {
    const d = new SSEDecoder();
    const text = [
      '\uFEFF: a comment first, after a byte order mark',
      'retry: soon', // not digits: ignored
      'retry: 250',
      'unknown: field',
      'event:token', // no space after the colon
      'data:"x"',
      'id: r.1',
      '',
      'data', // a field name alone: empty data
      'event: query',
      '',
      'id', // an id without value resets the last id
      'event: tags',
      'data: [',
      'data: "multi", "line"',
      'data: ]',
      '',
      'id: only an id', // no data: no message, but the id counts
      '',
      '',
    ].join('\n');
    return { events: d.push(text), decoder: d };
  })();
  assert.deepEqual(events, [
    { event: 'token', data: '"x"', id: 'r.1' },
    { event: 'query', data: '', id: undefined },
    { event: 'tags', data: '[\n"multi", "line"\n]', id: '' },
  ]);
  assert.equal(decoder.retry, 250);
  assert.equal(decoder.lastEventId, 'only an id');
  assert.deepEqual(eventFromSSE(events[2]), { type: 'tags', data: ['multi', 'line'], run: undefined, seq: undefined });
});

test('a message the end cuts off is dropped; a message without event is "message"', () => {
  const d = new SSEDecoder();
  assert.deepEqual(d.push('data: 1\n\nevent: token\ndata: "cut'), [{ event: 'message', data: '1', id: undefined }]);
  assert.deepEqual(d.end(), []);
});

test('a character cut off at the very end is dropped with its message', () => {
  const euro = encoder.encode('event: token\ndata: "€"\n\n');
  const d = new SSEDecoder();
  assert.deepEqual(d.push(euro.subarray(0, 21)), []);
  assert.deepEqual(d.end(), []);
});

test('the line limit, and the limit on the data of one message', () => {
  const tooLong = (err) => err instanceof RunnelError && err.code === 'line_too_long';
  assert.throws(() => new SSEDecoder({ maxLine: 10 }).push('data: 123456789\n'), tooLong);
  assert.deepEqual(new SSEDecoder({ maxLine: 10 }).push('data: 1234'), [], 'a short partial line waits');
  const d = new SSEDecoder({ maxLine: 1000 });
  assert.throws(() => {
    for (let i = 0; i < 200; i++) d.push('data: xxxxxx\n'); // each line is short; the message is not
  }, tooLong);
  // Messages before the failure come first; the failure waits in error.
  const e = new SSEDecoder({ maxLine: 20 });
  const got = e.push('event: token\ndata: "a"\n\ndata: ' + 'y'.repeat(30) + '\n');
  assert.deepEqual(got, [{ event: 'token', data: '"a"', id: undefined }]);
  assert.ok(tooLong(e.error));
  assert.throws(() => e.push('\n'), (err) => err === e.error);
});

test('eventFromSSE: ids name the run and the number; bad data is malformed', () => {
  assert.deepEqual(eventFromSSE({ event: 'token', data: '"A "', id: 'AbC.5' }), { type: 'token', data: 'A ', run: 'AbC', seq: 5 });
  assert.deepEqual(eventFromSSE({ event: 'error', data: '{"code":"timeout","message":"m"}', id: undefined }),
    { type: 'error', data: { code: 'timeout', message: 'm' }, run: undefined, seq: undefined });
  assert.deepEqual(eventFromSSE({ event: 'done', data: '', id: 'a.b.c.9' }), { type: 'done', data: {}, run: 'a.b.c', seq: 9 });
  assert.equal(eventFromSSE({ event: 'token', data: '"x"', id: 'nodot' }).seq, undefined);
  const malformed = (err) => err instanceof RunnelError && err.code === 'malformed';
  assert.throws(() => eventFromSSE({ event: 'token', data: 'not json', id: 'a.1' }), malformed);
  assert.throws(() => eventFromSSE({ event: 'token', data: '7', id: 'a.1' }), malformed);
  assert.throws(() => eventFromSSE({ event: 'canceled', data: '"client"', id: 'a.1' }), malformed);
});
