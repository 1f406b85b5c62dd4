// runnel's JS client: ask a runnel server a question and read the answer as it
// streams (protocol v1: NDJSON over chunked HTTP/1.1). An ES module with no
// dependencies, for browsers and Node 18+.
//
//   for await (const event of ask(url, { question, signal })) { ... }
//   const done = await askEach(url, { question, signal }, (event) => { ... });
//
// The iterator yields query, tags, titles, sources, token... and done, then
// ends. Everything that is not a complete answer is thrown, never returned:
// a RunnelError for an HTTP error before the stream, an error event, a stream
// that ended or broke without done (code "truncated"), an unreachable server
// (code "network") and anything that is not protocol v1; the signal's reason
// (an AbortError unless you gave another) when you abort.

/** The longest line accepted by default, in UTF-16 code units (1 MiB). */
export const MAX_LINE = 1 << 20;

/** Event types of protocol v1 that the iterator yields; ping and unknown types are skipped. */
const YIELDED = new Set(['query', 'tags', 'titles', 'sources', 'token', 'done']);

/**
 * An error meant for users: a stable code and a sentence. status is the HTTP
 * status when the server refused the question before the stream began.
 */
export class RunnelError extends Error {
  constructor(code, message, { status, retryable = false, retryAfter, cause } = {}) {
    super(message || code, cause === undefined ? undefined : { cause });
    this.name = 'RunnelError';
    this.code = code;
    this.retryable = Boolean(retryable);
    if (status !== undefined) this.status = status;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }
}

const truncated = (message, cause) =>
  new RunnelError('truncated', message, { retryable: true, cause });
const malformed = (message, cause) => new RunnelError('malformed', message, { cause });

/**
 * EventDecoder turns the bytes of a stream into events, whatever the chunking:
 * bytes are decoded with one streaming TextDecoder, so a character split
 * between chunks survives; the incomplete last line waits for the next chunk;
 * end() reads a final line that has no newline. Blank lines are skipped. A
 * line longer than maxLine throws RunnelError "line_too_long" as soon as it is
 * known to be too long, instead of growing the buffer without bound.
 *
 * When a chunk holds good events and then a broken line, push returns the
 * good events and keeps the failure in error; the next push or end throws it.
 * So events are delivered in order up to the fault, as the Go client does.
 */
export class EventDecoder {
  #text = new TextDecoder('utf-8');
  #parts = []; // pieces of the incomplete last line
  #pending = 0; // their total length
  #max;
  /** A failure found after the events the last push returned, or undefined. */
  error = undefined;

  constructor({ maxLine = MAX_LINE } = {}) {
    if (!(maxLine > 0)) throw new RangeError('maxLine must be a positive number');
    this.#max = maxLine;
  }

  /** push takes a chunk (bytes, or text already decoded) and returns the events it completes. */
  push(chunk) {
    if (this.error) throw this.error;
    const text = typeof chunk === 'string' ? chunk : this.#text.decode(chunk, { stream: true });
    return this.#guard((out) => this.#feed(text, out));
  }

  /** end returns the events of whatever is left at the end of the stream. */
  end() {
    if (this.error) throw this.error;
    return this.#guard((out) => {
      this.#feed(this.#text.decode(), out);
      if (this.#parts.length > 0) {
        const line = this.#take();
        this.#line(line, true, out);
      }
    });
  }

  #guard(fn) {
    const out = [];
    try {
      fn(out);
    } catch (err) {
      this.error = err;
      if (out.length === 0) throw err;
    }
    return out;
  }

  #take() {
    const line = this.#parts.join('');
    this.#parts = [];
    this.#pending = 0;
    return line;
  }

  #feed(text, out) {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      let line = text.slice(start, nl);
      if (this.#parts.length > 0) {
        this.#parts.push(line);
        line = this.#take();
      }
      this.#line(line, false, out);
      start = nl + 1;
    }
    if (start < text.length) {
      const rest = start === 0 ? text : text.slice(start);
      this.#parts.push(rest);
      this.#pending += rest.length;
      if (this.#pending > this.#max) throw this.#tooLong();
    }
  }

  #tooLong() {
    return new RunnelError('line_too_long', `The stream sent a line longer than ${this.#max} characters.`);
  }

  #line(line, final, out) {
    if (line.length > this.#max) throw this.#tooLong();
    if (/^\s*$/.test(line)) return;
    let event;
    try {
      event = JSON.parse(line);
    } catch (err) {
      if (final) throw truncated('The stream ended in the middle of an event.', err);
      throw malformed(`The stream sent a line that is not an event: ${err.message}`, err);
    }
    out.push(validate(event));
  }
}

/** validate checks the shape of an event as the Go client does, and returns it. */
function validate(e) {
  if (e === null || typeof e !== 'object' || Array.isArray(e) || typeof e.type !== 'string' || e.type === '') {
    throw malformed('The stream sent a line that is not an event: it has no type.');
  }
  const { type, data } = e;
  const isObject = data !== null && typeof data === 'object' && !Array.isArray(data);
  let ok = true;
  switch (type) {
    case 'query':
    case 'token':
      ok = typeof data === 'string';
      break;
    case 'tags':
    case 'titles':
    case 'sources':
      ok = Array.isArray(data);
      break;
    case 'done':
      if (data === undefined || data === null) e.data = {};
      else ok = isObject;
      break;
    case 'error':
      ok = isObject && typeof data.code === 'string' && data.code !== '';
      break;
  }
  if (!ok) throw malformed(`The stream sent a ${type} event with data of the wrong shape.`);
  return e;
}

/**
 * CumulativeDecoder reads a stream whose text arrives cumulatively, as in an
 * XMLHttpRequest's responseText or axios's onDownloadProgress: each update
 * gives all the text so far. It parses only the lines completed since the
 * last update, so no event is returned twice, and it never reads past the
 * last newline until end(), because a browser may show the incomplete
 * character at the end of a partial response as U+FFFD until the rest arrives.
 */
export class CumulativeDecoder {
  #seen = 0;
  #lines;
  #max;

  constructor({ maxLine = MAX_LINE } = {}) {
    this.#lines = new EventDecoder({ maxLine });
    this.#max = maxLine;
  }

  /** A failure found after the events the last call returned (see EventDecoder). */
  get error() {
    return this.#lines.error;
  }

  /** update takes all the text received so far and returns the events it completes. */
  update(text) {
    if (typeof text !== 'string') return [];
    if (text.length < this.#seen) {
      throw malformed('The response text got shorter while it was being read.');
    }
    const nl = text.lastIndexOf('\n');
    if (nl < this.#seen) {
      if (text.length - this.#seen > this.#max) {
        throw new RunnelError('line_too_long', `The stream sent a line longer than ${this.#max} characters.`);
      }
      return [];
    }
    const events = this.#lines.push(text.slice(this.#seen, nl + 1));
    this.#seen = nl + 1;
    return events;
  }

  /** end takes the complete text of the response and returns the events left in it. */
  end(text) {
    const events = this.update(text);
    if (this.error) return events;
    if (typeof text === 'string' && text.length > this.#seen) {
      events.push(...this.#lines.push(text.slice(this.#seen)));
      this.#seen = text.length;
      if (this.error) return events;
    }
    events.push(...this.#lines.end());
    return events;
  }
}

/** errorFromEvent turns the data of an error event into a RunnelError. */
export function errorFromEvent(data) {
  return new RunnelError(data.code, data.message || `The answer failed (${data.code}).`, {
    retryable: data.retryable === true,
  });
}

/**
 * Error codes and the HTTP statuses of responses that refuse a request with
 * them: the same table, in the same order, as runnel.Statuses in the Go
 * package's error.go (a Go test keeps the two in step). A status without a
 * JSON body gets the first code listed for it.
 */
export const STATUSES = Object.freeze([
  ['invalid', 400],
  ['not_found', 404],
  ['method_not_allowed', 405],
  ['too_large', 413],
  ['unsupported_media_type', 415],
  ['unavailable', 503],
  ['internal', 500],
  ['upstream', 502],
  ['upstream_auth', 502],
  ['upstream_model', 502],
  ['upstream_malformed', 502],
  ['upstream_error', 502],
  ['upstream_truncated', 502],
  ['upstream_rate_limited', 503],
  ['upstream_unavailable', 503],
  ['timeout', 504],
  ['upstream_stalled', 504],
]);

/** codeOf returns the error code for a status without a JSON body, as the Go client infers it. */
function codeOf(status) {
  const row = STATUSES.find(([, s]) => s === status);
  if (row) return row[0];
  if (status === 429) return 'unavailable';
  return status >= 500 ? 'internal' : 'invalid';
}

/**
 * errorFromStatus builds the RunnelError of a response that is not 200: the
 * server's own code and message from its JSON body
 * ({"error":{"code","message"}}), or a code from the status.
 */
export function errorFromStatus(status, statusText, body, retryAfterHeader) {
  let err;
  try {
    err = JSON.parse(body).error;
  } catch {
    // not JSON: a proxy's error page, say
  }
  const retryAfter = retryAfterHeader != null && /^\d+$/.test(retryAfterHeader.trim())
    ? Number(retryAfterHeader) : undefined;
  const retryable = status === 429 || status >= 500;
  if (err && typeof err === 'object' && typeof err.code === 'string' && err.code !== '') {
    return new RunnelError(err.code, err.message || `The server answered ${status}.`, {
      status, retryable: err.retryable === true || retryable, retryAfter,
    });
  }
  const text = `${status}${statusText ? ' ' + statusText : ''}`;
  return new RunnelError(codeOf(status), `The server answered ${text}.`, { status, retryable, retryAfter });
}

function abortError() {
  return typeof DOMException === 'function'
    ? new DOMException('This operation was aborted', 'AbortError')
    : Object.assign(new Error('This operation was aborted'), { name: 'AbortError' });
}

function reasonOf(signal) {
  return signal.reason ?? abortError();
}

function request(url, { question, method = 'POST', headers, signal }) {
  const h = { Accept: 'application/x-ndjson', ...headers };
  if (method === 'GET') {
    const u = new URL(String(url), typeof location === 'object' && location ? location.href : undefined);
    u.searchParams.set('question', question);
    return [u.href, { method: 'GET', headers: h, signal }];
  }
  if (method !== 'POST') throw new TypeError(`runnel: method must be GET or POST, not ${method}`);
  return [String(url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...h },
    body: JSON.stringify({ question }),
    signal,
  }];
}

/**
 * ask asks the server at url (the stream endpoint, such as
 * "http://localhost:8080/articles/stream") and yields the events of the
 * answer as they arrive, ending after done. See the module comment for what
 * it throws. Leaving the loop early (break, return, an exception) closes the
 * connection, and the server stops working on the answer.
 */
export async function* ask(url, options = {}) {
  const { question, signal, maxLine = MAX_LINE } = options;
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof question !== 'string') throw new TypeError('runnel: options.question must be a string');
  if (typeof fetchFn !== 'function') throw new TypeError('runnel: no fetch; pass options.fetch');
  if (signal?.aborted) throw reasonOf(signal);

  // Our own controller, so that we can close the connection whatever the
  // caller's signal does. (AbortSignal.any is not in Node 18.)
  const controller = new AbortController();
  const onAbort = () => controller.abort(reasonOf(signal));
  signal?.addEventListener('abort', onAbort, { once: true });
  const decoder = new EventDecoder({ maxLine });
  let finished = false;
  let reader = null;
  try {
    const [target, init] = request(url, { ...options, signal: controller.signal });
    let res;
    try {
      res = await fetchFn(target, init);
    } catch (err) {
      if (signal?.aborted) throw reasonOf(signal);
      throw new RunnelError('network', 'The server could not be reached.', { retryable: true, cause: err });
    }
    if (res.status !== 200) {
      let body = '';
      try {
        body = await res.text();
      } catch {
        // the body broke off too: the status says enough
      }
      if (signal?.aborted) throw reasonOf(signal);
      throw errorFromStatus(res.status, res.statusText, body, res.headers.get('Retry-After'));
    }
    const type = (res.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/x-ndjson') {
      throw malformed(`The server sent ${JSON.stringify(type)}, not an NDJSON stream.`);
    }

    // A fetch without streams (some polyfills) still gets a correct answer,
    // only not progressively.
    if (typeof res.body?.getReader === 'function') reader = res.body.getReader();
    for (;;) {
      let events;
      let ended = false;
      let broke;
      try {
        if (reader) {
          const { done, value } = await reader.read();
          ended = done;
          events = done ? decoder.end() : decoder.push(value);
        } else {
          events = decoder.push(await res.text());
          events.push(...decoder.end());
          ended = true;
        }
      } catch (err) {
        if (signal?.aborted) throw reasonOf(signal);
        if (err instanceof RunnelError) throw err;
        // The connection broke (in Node: TypeError "terminated", cause
        // UND_ERR_SOCKET). What arrived before it still counts: if it ends
        // with done, the answer is complete and the break is harmless.
        broke = err;
        try {
          events = decoder.end();
        } catch {
          events = [];
        }
      }
      for (const e of events) {
        if (e.type === 'error') {
          finished = true;
          throw errorFromEvent(e.data);
        }
        if (!YIELDED.has(e.type)) continue; // ping, or a newer server's event
        if (e.type === 'done') finished = true;
        yield e;
        if (finished) return;
      }
      if (broke !== undefined) {
        // A half-received last line is a consequence of the break, not news.
        throw truncated('The connection broke before the answer was complete.', broke);
      }
      if (decoder.error) throw decoder.error;
      if (ended) throw truncated('The stream ended before the answer was complete.');
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (finished) {
      // Whatever follows done (the end of the chunked body) is not needed;
      // cancelling frees the connection at once.
      reader?.cancel().catch(() => {});
    } else {
      // Closing the connection is how the server learns to stop.
      controller.abort(abortError());
    }
  }
}

/**
 * askEach asks as ask does and calls onEvent with each event, awaiting it
 * (so a slow handler slows the reading, not the memory). It resolves with the
 * data of done, and rejects as ask throws. If onEvent throws, the connection
 * is closed and askEach rejects with that error.
 */
export async function askEach(url, options, onEvent) {
  if (typeof onEvent !== 'function') throw new TypeError('runnel: askEach needs an onEvent function');
  let done;
  for await (const event of ask(url, options)) {
    await onEvent(event);
    if (event.type === 'done') done = event.data;
  }
  return done;
}
