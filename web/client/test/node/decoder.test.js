// The decoders on their own: any split of the bytes gives the same events.

import assert from 'node:assert/strict';
import test from 'node:test';

import { CumulativeDecoder, EventDecoder, MAX_LINE, RunnelError } from '../../runnel.js';
import { transcript, transcriptEvents } from '../support/transcript.js';

const bytes = new TextEncoder().encode(transcript);

function decodeChunks(chunks, options) {
  const d = new EventDecoder(options);
  const out = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

test('the transcript has characters of every UTF-8 length', () => {
  for (const ch of ['é', '€', '漢', '😀']) assert.ok(transcript.includes(ch), ch);
  assert.ok(bytes.length > transcript.length + 10);
});

test('one chunk', () => {
  assert.deepEqual(decodeChunks([bytes]), transcriptEvents);
});

test('split into two chunks at every byte position', () => {
  for (let i = 0; i <= bytes.length; i++) {
    const got = decodeChunks([bytes.subarray(0, i), bytes.subarray(i)]);
    assert.deepEqual(got, transcriptEvents, `split at byte ${i}`);
  }
});

test('one byte per chunk', () => {
  const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
  assert.deepEqual(decodeChunks(chunks), transcriptEvents);
});

test('split into three chunks around every multi-byte character', () => {
  // Every pair of cut points within 4 bytes of each other: both cuts can fall
  // inside the same character.
  for (let i = 0; i < bytes.length; i++) {
    for (let j = i; j <= Math.min(bytes.length, i + 4); j++) {
      const got = decodeChunks([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
      assert.deepEqual(got, transcriptEvents, `cuts at ${i} and ${j}`);
    }
  }
});

test('random splits (fixed seed)', () => {
  let seed = 42;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    const chunks = [];
    for (let at = 0; at < bytes.length;) {
      const n = 1 + rand(40);
      chunks.push(bytes.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(decodeChunks(chunks), transcriptEvents, `round ${round}`);
  }
});

test('text chunks, already decoded', () => {
  const chunks = [...transcript].map((ch) => ch); // one code point at a time
  assert.deepEqual(decodeChunks(chunks), transcriptEvents);
});

test('a final line without a newline', () => {
  const text = '{"type":"token","data":"a"}\n{"type":"done","data":{"finish_reason":"stop"}}';
  const d = new EventDecoder();
  assert.deepEqual(d.push(new TextEncoder().encode(text)), [{ type: 'token', data: 'a' }]);
  assert.deepEqual(d.end(), [{ type: 'done', data: { finish_reason: 'stop' } }]);
});

test('blank lines and CRLF are skipped', () => {
  const got = decodeChunks([new TextEncoder().encode('\n\r\n{"type":"token","data":"a"}\r\n  \n\n')]);
  assert.deepEqual(got, [{ type: 'token', data: 'a' }]);
});

test('only a newline ends a line: U+2028 and U+2029 do not', () => {
  const got = decodeChunks(['{"type":"token","data":"a\u2028b\u2029c"}\n']);
  assert.deepEqual(got, [{ type: 'token', data: 'a\u2028b\u2029c' }]);
});

test('a character cut off at the very end becomes U+FFFD, inside a broken event', () => {
  const euro = new TextEncoder().encode('{"type":"token","data":"€"}');
  const d = new EventDecoder();
  assert.deepEqual(d.push(euro.subarray(0, 25)), []);
  assert.throws(() => d.end(), (err) => err instanceof RunnelError && err.code === 'truncated');
});

test('the line limit', () => {
  assert.equal(MAX_LINE, 1 << 20);
  const line = `{"type":"token","data":"${'x'.repeat(70)}"}`; // 96 characters
  assert.deepEqual(decodeChunks([line + '\n'], { maxLine: 96 }).length, 1);
  const tooLong = (err) => err instanceof RunnelError && err.code === 'line_too_long';
  assert.throws(() => decodeChunks([line + '\n'], { maxLine: 95 }), tooLong);
  // A long line is refused as it grows, before any newline arrives.
  const d = new EventDecoder({ maxLine: 1000 });
  assert.throws(() => {
    for (let i = 0; i < 200; i++) d.push('xxxxxxxxxx');
  }, tooLong);
  // The default accepts a 1 MiB line.
  const big = `{"type":"token","data":"${'y'.repeat(MAX_LINE - 30)}"}`;
  assert.equal(decodeChunks([big, '\n'])[0].data.length, MAX_LINE - 30);
});

test('lines that are not events', () => {
  const malformed = (err) => err instanceof RunnelError && err.code === 'malformed';
  for (const line of ['not json', '[]', '42', '{"data":"x"}', '{"type":""}', '{"type":"token","data":7}',
    '{"type":"tags","data":"x"}', '{"type":"error","data":{"message":"no code"}}', '{"type":"query"}']) {
    assert.throws(() => decodeChunks([line + '\n']), malformed, line);
  }
});

test('unknown types, ping and a done without data pass through the decoder', () => {
  const got = decodeChunks(['{"type":"ping"}\n{"type":"future","data":{"x":1}}\n{"type":"done"}\n']);
  assert.deepEqual(got, [{ type: 'ping' }, { type: 'future', data: { x: 1 } }, { type: 'done', data: {} }]);
});

test('CumulativeDecoder: growing text, every prefix, each event once', () => {
  for (let step = 1; step <= 13; step += 3) {
    const d = new CumulativeDecoder();
    const got = [];
    for (let n = 0; n < transcript.length; n += step) got.push(...d.update(transcript.slice(0, n)));
    got.push(...d.end(transcript));
    assert.deepEqual(got, transcriptEvents, `step ${step}`);
  }
});

test('CumulativeDecoder: the same text twice gives nothing new', () => {
  const d = new CumulativeDecoder();
  const first = d.update(transcript);
  assert.deepEqual(d.update(transcript), []);
  assert.deepEqual([...first, ...d.end(transcript)], transcriptEvents);
});

test('CumulativeDecoder: a provisional U+FFFD at the end is not read', () => {
  // A browser may show a partly received character as U+FFFD, then the
  // character once the rest arrives: the incomplete line is never parsed.
  const d = new CumulativeDecoder();
  assert.deepEqual(d.update('{"type":"token","data":"a"}\n{"type":"token","data":"\uFFFD'), [
    { type: 'token', data: 'a' },
  ]);
  assert.deepEqual(d.end('{"type":"token","data":"a"}\n{"type":"token","data":"€"}\n'), [
    { type: 'token', data: '€' },
  ]);
});

test('CumulativeDecoder: text that shrinks is refused', () => {
  const d = new CumulativeDecoder();
  d.update('{"type":"token","data":"a"}\n');
  assert.throws(() => d.update('{"ty'), (err) => err.code === 'malformed');
});

test('CumulativeDecoder: the line limit applies before a newline', () => {
  const d = new CumulativeDecoder({ maxLine: 10 });
  assert.throws(() => d.update('x'.repeat(11)), (err) => err.code === 'line_too_long');
});

test('events before a broken line are returned first; the failure comes next', () => {
  const d = new EventDecoder();
  const got = d.push('{"type":"query","data":"q"}\n{"type":"tags","data":[]}\nnot json\n{"type":"token","data":"x"}\n');
  assert.deepEqual(got, [{ type: 'query', data: 'q' }, { type: 'tags', data: [] }]);
  assert.equal(d.error?.code, 'malformed');
  assert.throws(() => d.push('{"type":"token","data":"y"}\n'), (err) => err === d.error);
  assert.throws(() => d.end(), (err) => err === d.error);
});
