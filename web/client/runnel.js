// runnel's JS client: ask a runnel server a question and read the answer as it
// streams (protocol v1.1: NDJSON over chunked HTTP/1.1, SSE or WebSocket). An
// ES module with no dependencies, for browsers and Node 18+.
//
//   const answer = ask(url, { question, signal });
//   for await (const event of answer) { ... }      // answer.cancel() stops it
//   const done = await askEach(url, { question, signal }, (event) => { ... });
//
// The iterator yields query, tags, titles, sources, token... and done (or
// canceled), then ends. Every event carries the id of its run and its number
// in it. A dropped connection is resumed where it broke, on the run's own
// route, without a token missing or twice; a connection that breaks before
// the server named the run is asked again with the same idempotency key,
// which gets that run rather than a second answer. Everything that is neither a
// complete nor a canceled answer is thrown, never returned: a RunnelError for
// an HTTP error before the stream, an error event, a stream that ended or
// broke without its end and could not be resumed (code "truncated", or
// "not_found" when the server no longer has the run), an unreachable server
// (code "network") and anything that is not protocol v1.1; the signal's
// reason (an AbortError unless you gave another) when you abort.
//
// A server that needs an API key gets options.apiKey as Authorization: Bearer
// on every fetch, and as access_token in the WebSocket's URL, since a browser's
// WebSocket cannot send headers. Without the key, or with a wrong one, the
// answer is a RunnelError "unauthorized" (401), thrown at once.

/** The longest line accepted by default, in UTF-16 code units (1 MiB). */
export const MAX_LINE = 1 << 20;

/** How many times in a row ask() tries to resume a broken answer before it gives up. */
export const RETRIES = 5;

/**
 * The wait before each resume attempt: base ms before the first, doubling
 * each time up to max, then a random part of it taken off (jitter), so that
 * many clients cut at once do not come back at once.
 */
export const BACKOFF = Object.freeze({ base: 100, max: 2000 });

/** Event types the iterator yields; ping and unknown types are skipped. */
const YIELDED = new Set(['query', 'tags', 'titles', 'sources', 'token', 'done', 'canceled']);

/** Event types that end a run. */
const TERMINAL = new Set(['done', 'error', 'canceled']);

const TRANSPORTS = new Set(['ndjson', 'sse', 'websocket']);

/** What the server takes as an Idempotency-Key: 1 to 64 letters, digits, '-', '_' or '.'. */
const KEY = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * What an API key may be: visible ASCII, no spaces. Anything else could not
 * travel in an Authorization header (fetch would refuse it, and the refusal
 * would look like a network failure), so it is a TypeError up front.
 */
const API_KEY = /^[\x21-\x7E]+$/;

/**
 * apiKeyOf returns the API key of options (undefined when there is none: the
 * option absent, null or ""), or throws a TypeError for one that cannot be sent.
 */
function apiKeyOf(options) {
  const k = options?.apiKey;
  if (k === undefined || k === null || k === '') return undefined;
  if (typeof k !== 'string' || !API_KEY.test(k)) {
    throw new TypeError('runnel: apiKey must be a string of visible ASCII characters, without spaces');
  }
  return k;
}

/**
 * withKey returns headers with Authorization: Bearer <apiKey> when there is
 * a key; an Authorization of headers' own, in any case, gives way to it.
 */
function withKey(headers, apiKey) {
  if (apiKey === undefined) return { ...headers };
  const out = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() !== 'authorization') out[name] = value;
  }
  out.Authorization = `Bearer ${apiKey}`;
  return out;
}

/**
 * newKey returns a new idempotency key, 128 random bits in hex, or undefined
 * where there is no Web Crypto (Node 18 without --experimental-global-webcrypto):
 * a key that others could guess is worse than none.
 */
function newKey() {
  const c = globalThis.crypto;
  if (typeof c?.getRandomValues !== 'function') return undefined;
  return Array.from(c.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * An error meant for users: a stable code and a sentence. status is the HTTP
 * status when the server refused a request; run is the id of the run the
 * error ended, once the server had named it.
 */
export class RunnelError extends Error {
  constructor(code, message, { status, retryable = false, retryAfter, cause, run } = {}) {
    super(message || code, cause === undefined ? undefined : { cause });
    this.name = 'RunnelError';
    this.code = code;
    this.retryable = Boolean(retryable);
    if (status !== undefined) this.status = status;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
    if (run) this.run = run;
  }
}

const truncated = (message, cause) =>
  new RunnelError('truncated', message, { retryable: true, cause });
const malformed = (message, cause) => new RunnelError('malformed', message, { cause });
const tooLong = (max) =>
  new RunnelError('line_too_long', `The stream sent a line longer than ${max} characters.`);

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
    return guarded(this, (out) => this.#feed(text, out));
  }

  /** end returns the events of whatever is left at the end of the stream. */
  end() {
    if (this.error) throw this.error;
    return guarded(this, (out) => {
      this.#feed(this.#text.decode(), out);
      if (this.#parts.length > 0) {
        const line = this.#take();
        this.#line(line, true, out);
      }
    });
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
      if (this.#pending > this.#max) throw tooLong(this.#max);
    }
  }

  #line(line, final, out) {
    if (line.length > this.#max) throw tooLong(this.#max);
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
    case 'canceled':
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
 * guarded runs fn(out) for a decoder and returns the events it put in out.
 * When fn fails after it found some, they are returned and the failure is
 * kept in decoder.error, for the next call to throw: events are delivered in
 * order up to the fault.
 */
function guarded(decoder, fn) {
  const out = [];
  try {
    fn(out);
  } catch (err) {
    decoder.error = err;
    if (out.length === 0) throw err;
  }
  return out;
}

/**
 * SSEDecoder reads a text/event-stream (the WHATWG "server-sent events"
 * format) whatever the chunking: one streaming TextDecoder, so a character
 * split between chunks survives; lines end at CRLF, LF or CR, including a CR
 * at the end of one chunk and its LF at the start of the next; comments
 * (": ping") are skipped; "retry:" sets retry. push returns the messages a
 * chunk completes, each {event, data, id}: event is "message" when the block
 * named none, data the data lines joined by "\n", and id the block's own id
 * field, undefined when it had none (lastEventId keeps the last one seen, as
 * an EventSource does). A message that the stream's end cuts off is dropped,
 * as the format says. A line, or the data of one message, longer than maxLine
 * throws RunnelError "line_too_long"; good messages before it come first, the
 * failure waits in error, as in EventDecoder.
 */
export class SSEDecoder {
  #text = new TextDecoder('utf-8'); // strips a leading BOM, as the format asks
  #parts = []; // pieces of the incomplete last line
  #pending = 0;
  #cr = false; // the last chunk ended with CR: an LF first in the next ends nothing new
  #max;
  #event = '';
  #data = [];
  #size = 0;
  #id = undefined;
  /** The id of the last message that had one (an EventSource's lastEventId). */
  lastEventId = '';
  /** The reconnection time the stream asked for, in ms, or undefined. */
  retry = undefined;
  /** A failure found after the messages the last push returned, or undefined. */
  error = undefined;

  constructor({ maxLine = MAX_LINE } = {}) {
    if (!(maxLine > 0)) throw new RangeError('maxLine must be a positive number');
    this.#max = maxLine;
  }

  /** push takes a chunk (bytes, or text already decoded) and returns the messages it completes. */
  push(chunk) {
    if (this.error) throw this.error;
    const text = typeof chunk === 'string' ? chunk : this.#text.decode(chunk, { stream: true });
    return guarded(this, (out) => this.#feed(text, out));
  }

  /** end returns the messages left at the end of the stream: none, since an unterminated one is dropped. */
  end() {
    if (this.error) throw this.error;
    return guarded(this, (out) => {
      this.#feed(this.#text.decode(), out);
      this.#parts = [];
      this.#pending = 0;
      this.#reset();
    });
  }

  #feed(text, out) {
    if (text === '') return;
    let start = 0;
    if (this.#cr) {
      this.#cr = false;
      if (text[0] === '\n') start = 1;
    }
    const eol = /[\r\n]/g;
    eol.lastIndex = start;
    for (let m = eol.exec(text); m; m = eol.exec(text)) {
      let line = text.slice(start, m.index);
      if (this.#parts.length > 0) {
        this.#parts.push(line);
        line = this.#parts.join('');
        this.#parts = [];
        this.#pending = 0;
      }
      this.#line(line, out);
      start = m.index + 1;
      if (m[0] === '\r') {
        if (start === text.length) this.#cr = true;
        else if (text[start] === '\n') start++;
        eol.lastIndex = start;
      }
    }
    if (start < text.length) {
      const rest = text.slice(start);
      this.#parts.push(rest);
      this.#pending += rest.length;
      if (this.#pending > this.#max) throw tooLong(this.#max);
    }
  }

  #line(line, out) {
    if (line.length > this.#max) throw tooLong(this.#max);
    if (line === '') {
      this.#dispatch(out);
      return;
    }
    if (line[0] === ':') return; // a comment: a heartbeat, or padding
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#size += value.length + 1;
        if (this.#size > this.#max) throw tooLong(this.#max);
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.#id = value;
          this.lastEventId = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      // Any other field is ignored, as the format says.
    }
  }

  #dispatch(out) {
    // A block without data is no message (its id still counts, above).
    if (this.#data.length > 0) {
      out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
    }
    this.#reset();
  }

  #reset() {
    this.#event = '';
    this.#data = [];
    this.#size = 0;
    this.#id = undefined;
  }
}

/**
 * eventFromSSE turns a message of runnel's SSE framing (event: the type, data:
 * the event's data as JSON, id: "<run>.<seq>") into an event {type, data,
 * run, seq}; run and seq are undefined for a message without an id.
 */
export function eventFromSSE(message) {
  let data;
  if (message.data !== '') {
    try {
      data = JSON.parse(message.data);
    } catch (err) {
      throw malformed(`The stream sent a ${message.event} event whose data is not JSON: ${err.message}`, err);
    }
  }
  const e = validate({ type: message.event, data });
  const [run, seq] = splitEventID(message.id);
  return { type: e.type, data: e.data, run, seq };
}

/** splitEventID reads an SSE id "<run>.<seq>"; [undefined, undefined] for anything else. */
function splitEventID(id) {
  const dot = typeof id === 'string' ? id.lastIndexOf('.') : -1;
  if (dot <= 0 || !/^\d+$/.test(id.slice(dot + 1))) return [undefined, undefined];
  return [id.slice(0, dot), Number(id.slice(dot + 1))];
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
        throw tooLong(this.#max);
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
  ['unauthorized', 401],
  ['forbidden', 403],
  ['not_found', 404],
  ['method_not_allowed', 405],
  ['too_large', 413],
  ['unsupported_media_type', 415],
  ['rate_limited', 429],
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

/** resolve makes url absolute: against the page in a browser; in Node it must be absolute already. */
function resolve(url) {
  return new URL(String(url), typeof location === 'object' && location ? location.href : undefined);
}

function withSlash(u) {
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** setScheme gives u the scheme of its kind (http or ws), keeping it secure when it was. */
function setScheme(u, kind) {
  const secure = u.protocol === 'https:' || u.protocol === 'wss:';
  u.protocol = kind === 'ws' ? (secure ? 'wss:' : 'ws:') : (secure ? 'https:' : 'http:');
  return u;
}

/**
 * The body that asks: {"messages"} for a conversation, else {"question"}.
 */
function askBody(options) {
  return options.messages !== undefined ? { messages: options.messages } : { question: options.question };
}

/**
 * The request that asks: POST {"question"} or {"messages"}, or GET ?question=, accepting
 * NDJSON or SSE, with the answer's idempotency key when it has one and its
 * API key as a Bearer token (never in the URL: fetch can send headers).
 */
function request(run, accept) {
  const { question, method = 'POST', headers } = run.options;
  const key = run.key;
  const h = withKey({ Accept: accept, ...(key === undefined ? undefined : { 'Idempotency-Key': key }), ...headers }, run.apiKey);
  if (method === 'GET') {
    if (run.options.messages !== undefined) throw new TypeError('runnel: messages are sent with POST, not GET');
    const u = resolve(run.url);
    u.searchParams.set('question', question);
    return [u.href, { method: 'GET', headers: h }];
  }
  if (method !== 'POST') throw new TypeError(`runnel: method must be GET or POST, not ${method}`);
  return [String(run.url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...h },
    body: JSON.stringify(askBody(run.options)),
  }];
}

const MEDIA = { ndjson: 'application/x-ndjson', sse: 'text/event-stream' };

/**
 * Errors that a new connection may get past: a break, an end without the
 * terminal event, a server that cannot be reached, one that answers 5xx to
 * the question or 429/5xx while we resume. Everything else is thrown as it
 * is. Whether a new connection is made is read()'s decision: before the
 * server named the run, only while nothing was yielded.
 */
const RESUMABLE = new WeakSet();

function resumable(err) {
  RESUMABLE.add(err);
  return err;
}

/** The reason a connection is closed by reconnect(): never seen by callers. */
const RECONNECT = new Error('runnel: reconnecting');

/**
 * Run is the state of one ask(): the run's id once the server names it, the
 * number of the last event read (where a new connection resumes), the
 * connection in use (so that abort, reconnect and cancel can reach it) and
 * how the run ended.
 */
class Run {
  runId = '';
  last = -1;
  yielded = false; // an event was passed on: the question can no longer be asked again
  asks = 0; // connections that asked the question (more than one: asked again)
  phase = 'idle'; // idle (not iterated yet), running, ended
  state = undefined; // the terminal event's type once read: done, error or canceled
  cancelAsked = false;
  canceled = false; // the server confirmed a cancel
  #conn = null;
  #wake = null;
  #hurry = false; // the next wait is skipped: reconnect() or cancel() came before it
  #waiters = []; // cancel() calls waiting for the run's id
  #onAbort = null;

  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.transport = options.transport ?? 'ndjson';
    this.retries = options.retries ?? RETRIES;
    this.backoff = { ...BACKOFF, ...options.backoff };
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.maxLine = options.maxLine ?? MAX_LINE;
    this.key = options.idempotencyKey ?? newKey();
    this.apiKey = undefined; // set by check(), which vets it
  }

  check() {
    const o = this.options;
    if (o.messages !== undefined) {
      if (o.question !== undefined) throw new TypeError('runnel: pass options.question or options.messages, not both');
      if (!Array.isArray(o.messages)) throw new TypeError('runnel: options.messages must be an array of {role, content}');
    } else if (typeof o.question !== 'string') {
      throw new TypeError('runnel: options.question must be a string');
    }
    if (!TRANSPORTS.has(this.transport)) {
      throw new TypeError(`runnel: transport must be ndjson, sse or websocket, not ${this.transport}`);
    }
    if (o.method !== undefined && o.method !== 'GET' && o.method !== 'POST') {
      throw new TypeError(`runnel: method must be GET or POST, not ${o.method}`);
    }
    if (this.transport === 'websocket') {
      if (typeof this.WebSocket !== 'function') throw new TypeError('runnel: no WebSocket; pass options.WebSocket');
    } else if (typeof this.fetchFn !== 'function') {
      throw new TypeError('runnel: no fetch; pass options.fetch');
    }
    if (!Number.isInteger(this.retries) || this.retries < 0) {
      throw new TypeError('runnel: retries must be a whole number, 0 or more');
    }
    if (!(this.backoff.base >= 0 && this.backoff.max >= 0)) {
      throw new TypeError('runnel: backoff.base and backoff.max must be numbers of milliseconds');
    }
    if (this.key !== undefined && (typeof this.key !== 'string' || !KEY.test(this.key))) {
      throw new TypeError("runnel: idempotencyKey must be 1 to 64 letters, digits, '-', '_' or '.'");
    }
    this.apiKey = apiKeyOf(o);
  }

  /** runsBase is where the run routes are: options.runsURL, or ../runs/ next to the stream. */
  runsBase() {
    const base = this.options.runsURL != null
      ? withSlash(resolve(this.options.runsURL))
      : new URL('../runs/', resolve(this.url));
    return setScheme(base, 'http');
  }

  runURL(id) {
    return new URL(encodeURIComponent(id), this.runsBase());
  }

  /**
   * wsURL is the WebSocket endpoint: url itself when it is ws: or wss:, else
   * runs/ws; with the API key as access_token, since a browser's WebSocket
   * cannot send an Authorization header (the server takes the parameter on
   * GET only, which the upgrade is).
   */
  wsURL() {
    const u = resolve(this.url);
    const direct = this.options.runsURL == null && (u.protocol === 'ws:' || u.protocol === 'wss:');
    const ws = setScheme(direct ? u : new URL('ws', this.runsBase()), 'ws');
    if (this.apiKey !== undefined) ws.searchParams.set('access_token', this.apiKey);
    return ws.href;
  }

  begin() {
    this.phase = 'running';
    const { signal } = this.options;
    if (!signal) return;
    this.#onAbort = () => {
      this.#conn?.abort(reasonOf(signal));
      this.#nudge();
    };
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  end() {
    this.phase = 'ended';
    this.options.signal?.removeEventListener('abort', this.#onAbort);
    for (const w of this.#waiters.splice(0)) w('');
  }

  /** named records the run's id, the first time the server says it. */
  named(id) {
    if (this.runId || typeof id !== 'string' || id === '') return;
    this.runId = id;
    for (const w of this.#waiters.splice(0)) w(id);
  }

  resumed(after) {
    this.options.onResume?.({ run: this.runId, after });
  }

  /**
   * asking counts a connection that asks the question, and says whether it
   * asks again (after a connection that broke before the run was named).
   */
  asking() {
    return this.asks++ > 0;
  }

  /** use makes conn the connection that abort, reconnect and cancel reach; call the result when it ends. */
  use(conn) {
    this.#conn = conn;
    return () => {
      if (this.#conn === conn) this.#conn = null;
    };
  }

  /** delay is the wait before resume attempt n (1, 2, ...): exponential, capped, with jitter. */
  delay(n) {
    const cap = Math.min(this.backoff.max, this.backoff.base * 2 ** (n - 1));
    return cap / 2 + (Math.random() * cap) / 2;
  }

  /** sleep waits ms, or less if reconnect(), cancel() or an abort wakes it. */
  sleep(ms) {
    if (this.#hurry || this.options.signal?.aborted) {
      this.#hurry = false;
      return Promise.resolve();
    }
    return new Promise((done) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        done();
      };
      const timer = setTimeout(wake, ms);
      this.#wake = wake;
    });
  }

  #id() {
    if (this.runId || this.phase === 'ended') return Promise.resolve(this.runId);
    return new Promise((r) => this.#waiters.push(r));
  }

  /**
   * cancel asks the server to cancel the run, waiting for its id if the
   * server has not named it yet: over the WebSocket in use, or with DELETE on
   * the run's route. It resolves with {id, state}, or undefined when there is
   * no run to cancel (the iteration had not started, or ended before the
   * server named a run).
   */
  async cancel() {
    this.cancelAsked = true;
    if (this.phase === 'idle') return undefined; // the iteration will end at once, with canceled
    const id = await this.#id();
    if (!id) return undefined;
    if (this.state) return { id, state: this.state };
    let result = await this.#conn?.send?.({ type: 'cancel', run: id });
    result ??= await cancel(this.runsBase(), id, { fetch: this.fetchFn, headers: this.options.headers, apiKey: this.apiKey });
    if (result.state === 'canceled') this.canceled = true;
    this.#nudge(); // between two attempts: go and read the canceled event now
    return result;
  }

  /** reconnect closes the connection and resumes the run at once; false when there is nothing to resume. */
  reconnect() {
    if (this.phase !== 'running' || !this.runId || this.state || this.retries === 0) return false;
    this.#conn?.abort(RECONNECT);
    this.#nudge();
    return true;
  }

  /** nudge ends the wait between two attempts, or the next one if none is under way. */
  #nudge() {
    if (this.#wake) this.#wake();
    else this.#hurry = true;
  }

  /** The canceled event that ends an iteration canceled without the server's own. */
  canceledEvent() {
    this.state = 'canceled';
    return { type: 'canceled', data: { reason: 'client' }, run: this.runId, seq: this.last + 1 };
  }

  connect(resuming) {
    return this.transport === 'websocket' ? wsStream(this, resuming) : httpStream(this, resuming);
  }

  /** fault says why a connection failed when we closed it ourselves, or passes err on. */
  fault(reason, err) {
    const { signal } = this.options;
    if (signal?.aborted) return reasonOf(signal);
    if (reason === RECONNECT) return resumable(truncated('The connection was closed to reconnect.', err));
    return err;
  }
}

/**
 * ask asks the server at url (the stream endpoint, such as
 * "http://localhost:8080/articles/stream") and yields the events of the
 * answer as they arrive, ending after done or canceled. See the module
 * comment for what it throws. The object it returns is the iterator, with
 * runId (the run's id once the server has named it), cancel() and
 * reconnect(). Leaving the loop early (break, return, an exception) closes
 * the connection; the server cancels the run when no reader comes back
 * within its linger window.
 */
export function ask(url, options = {}) {
  const run = new Run(url, options ?? {});
  const it = read(run);
  Object.defineProperty(it, 'runId', { get: () => run.runId || undefined, enumerable: true });
  it.cancel = () => run.cancel();
  it.reconnect = () => run.reconnect();
  return it;
}

/**
 * read is the iteration: it connects, yields each event once, in order, and
 * when a connection fails in a way a new one may get past, resumes the run
 * after the last event read (or, before the server named it, asks again with
 * the same key), up to retries times in a row.
 */
async function* read(run) {
  run.check();
  const { signal, onReconnect } = run.options;
  if (signal?.aborted) throw reasonOf(signal);
  run.begin();
  let failures = 0; // attempts (resumes or asks) since the last new event
  try {
    if (run.cancelAsked) {
      yield run.canceledEvent();
      return;
    }
    for (;;) {
      try {
        for await (const e of run.connect(run.runId !== '')) {
          if (e.seq !== undefined) {
            if (e.seq <= run.last) continue; // read before the connection broke
            run.last = e.seq;
          }
          failures = 0;
          if (TERMINAL.has(e.type)) run.state = e.type;
          if (e.type === 'error') throw errorFromEvent(e.data);
          if (!YIELDED.has(e.type)) continue; // a newer server's event
          run.yielded = true;
          yield { type: e.type, data: e.data, run: run.runId, seq: e.seq ?? -1 };
          if (run.state) return;
        }
      } catch (err) {
        if (signal?.aborted) throw reasonOf(signal);
        if (run.state || !RESUMABLE.has(err) || run.retries === 0) throw err;
        // No run named yet: a break in the response's status line or headers,
        // an unreachable server, a 5xx, or a server that names no runs. The
        // question is asked again, with the same key, so a runnel server
        // streams the run it began (if it did) from its first event; but only
        // while nothing was passed on, since without a key, or from a server
        // that ignores it, asking again gets another answer.
        if (!run.runId && (run.key === undefined || run.yielded)) throw err;
        if (++failures > run.retries) throw gaveUp(err, run.retries, !run.runId);
        const delay = run.delay(failures);
        onReconnect?.({ run: run.runId, after: run.runId ? run.last : -1, attempt: failures, retries: run.retries, delay, error: err });
        await run.sleep(delay);
        if (signal?.aborted) throw reasonOf(signal);
      }
    }
  } catch (err) {
    // The server confirmed the cancel; whatever broke since, the run is canceled.
    if (run.canceled && !run.state && !signal?.aborted) {
      yield run.canceledEvent();
      return;
    }
    if (err instanceof RunnelError && run.runId && !err.run) err.run = run.runId;
    throw err;
  } finally {
    run.end();
  }
}

function gaveUp(err, n, asking) {
  const attempts = `${n} attempt${n === 1 ? '' : 's'}`;
  const what = asking ? 'The question could not be asked again' : 'The answer could not be resumed';
  return new RunnelError(err.code, `${err.message} ${what}: ${attempts} failed.`, {
    status: err.status, retryable: true, retryAfter: err.retryAfter, cause: err,
  });
}

/**
 * httpStream is one connection over fetch, NDJSON or SSE: the request that
 * asks, or the run's route after the last event read. It yields the events
 * with their numbers (counted for NDJSON, whose lines carry none; from the
 * ids for SSE), and throws when the stream fails or ends without its
 * terminal event.
 */
async function* httpStream(run, resuming) {
  const sse = run.transport === 'sse';
  const after = resuming ? run.last : -1; // a question (asked again or not) is read from its start
  const again = !resuming && run.asking();
  const controller = new AbortController();
  const release = run.use({ abort: (reason) => controller.abort(reason) });
  const fault = (err) => run.fault(controller.signal.reason, err);
  let reader = null;
  let finished = false;
  try {
    const accept = MEDIA[run.transport];
    const [target, init] = resuming ? resumeRequest(run, after, accept) : request(run, accept);
    init.signal = controller.signal;
    const fetchFn = run.fetchFn; // called unbound: a browser's fetch refuses any other this
    let res;
    try {
      res = await fetchFn(target, init);
    } catch (err) {
      const unreachable = new RunnelError('network', 'The server could not be reached.', {
        retryable: true, cause: err,
      });
      throw fault(resumable(unreachable));
    }
    if (res.status !== 200) {
      const err = await refusal(res, resuming);
      throw fault(err);
    }
    run.named(res.headers.get('Runnel-Run-Id'));
    const type = (res.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();
    if (type !== accept) {
      throw malformed(`The server sent ${JSON.stringify(type)}, not ${sse ? 'an SSE' : 'an NDJSON'} stream.`);
    }
    if (resuming || again) run.resumed(after);

    const decoder = sse ? new SSEDecoder({ maxLine: run.maxLine }) : new EventDecoder({ maxLine: run.maxLine });
    let next = after + 1; // an NDJSON line's number: the k-th non-ping line after `after` is after + k
    const number = sse
      ? (m) => {
        const e = eventFromSSE(m);
        run.named(e.run);
        return e.type === 'ping' ? null : e;
      }
      : (e) => (e.type === 'ping' ? null : { type: e.type, data: e.data, seq: next++ });

    // A fetch without streams (some polyfills) still gets a correct answer,
    // only not progressively.
    if (typeof res.body?.getReader === 'function') reader = res.body.getReader();
    for (;;) {
      let items;
      let ended = false;
      let broke;
      try {
        if (reader) {
          const { done, value } = await reader.read();
          ended = done;
          items = done ? decoder.end() : decoder.push(value);
        } else {
          items = decoder.push(await res.text());
          items.push(...decoder.end());
          ended = true;
        }
      } catch (err) {
        if (err instanceof RunnelError) throw err;
        const why = fault(err);
        if (why !== err) throw why;
        // The connection broke (in Node: TypeError "terminated", cause
        // UND_ERR_SOCKET). What arrived before it still counts: if it ends
        // with the terminal event, the answer is whole and the break harmless.
        broke = err;
        try {
          items = decoder.end();
        } catch {
          items = [];
        }
      }
      for (const item of items) {
        const e = number(item);
        if (!e) continue;
        if (TERMINAL.has(e.type)) finished = true;
        yield e;
        if (finished) return;
      }
      if (broke !== undefined) {
        // A half-received last event is a consequence of the break, not news.
        throw resumable(truncated('The connection broke before the answer was complete.', broke));
      }
      if (decoder.error) throw decoder.error;
      if (ended) throw resumable(truncated('The stream ended before the answer was complete.'));
    }
  } finally {
    release();
    if (finished) {
      // Whatever follows the terminal event (the end of the chunked body) is
      // not needed; cancelling frees the connection at once.
      reader?.cancel().catch(() => {});
    } else {
      // Closing the connection is how the server learns that we left.
      controller.abort(abortError());
    }
  }
}

function resumeRequest(run, after, accept) {
  const u = run.runURL(run.runId);
  u.searchParams.set('after', String(after));
  return [u.href, { method: 'GET', headers: withKey({ Accept: accept, ...run.options.headers }, run.apiKey) }];
}

/** refusal is the error of a response that is not 200, as it bears on the answer. */
async function refusal(res, resuming) {
  if (resuming && res.status === 204) {
    return truncated('The server says the answer has ended, but its end never arrived.');
  }
  let body = '';
  try {
    body = await res.text();
  } catch {
    // the body broke off too: the status says enough
  }
  const err = errorFromStatus(res.status, res.statusText, body, res.headers.get('Retry-After'));
  // Refused before any run was named: a 5xx may be a replica going down or a
  // proxy that lost the server, worth asking again; a 4xx (the question is
  // invalid, too long, too many of them) is the answer.
  if (!resuming) return res.status >= 500 ? resumable(err) : err;
  if (res.status === 404) {
    return new RunnelError(err.code, `The connection broke, and the answer can no longer be resumed: ${err.message}`, {
      status: err.status, retryable: true, cause: err,
    });
  }
  // A proxy or a server restarting between us and the run: try again.
  return err.retryable ? resumable(err) : err;
}

/** Inbox turns a WebSocket's callbacks into something to await, in order. */
class Inbox {
  #items = [];
  #taker = null;

  put(item) {
    if (this.#taker) {
      const take = this.#taker;
      this.#taker = null;
      take(item);
    } else {
      this.#items.push(item);
    }
  }

  take() {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift());
    return new Promise((r) => {
      this.#taker = r;
    });
  }
}

/**
 * wsStream is one WebSocket connection: it sends ask (or resume after the
 * last event read) once open, and yields the events of the messages, each of
 * which names its run and number. The socket is closed when the run ends.
 */
async function* wsStream(run, resuming) {
  const after = resuming ? run.last : -1;
  const again = !resuming && run.asking();
  const inbox = new Inbox();
  const socket = new run.WebSocket(run.wsURL());
  let open = false;
  let closed = false;
  let finished = false;
  let ended; // {id, state} once the run's terminal event has arrived
  const waiters = []; // cancel() calls waiting for it
  const settle = (result) => {
    ended ??= result;
    for (const w of waiters.splice(0)) w(result);
  };
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      socket.close(1000);
    } catch {
      // closing a socket that is failing anyway
    }
  };
  socket.onopen = () => inbox.put({ open: true });
  socket.onmessage = (m) => {
    const msg = parseMessage(m.data);
    // Seen here, not where the iteration reads, so that cancel() resolves
    // even when nobody is reading.
    if (TERMINAL.has(msg?.type) && typeof msg.run === 'string') settle({ id: msg.run, state: msg.type });
    inbox.put({ message: msg });
  };
  socket.onerror = () => {}; // a close event follows, with what can be known
  socket.onclose = (ev) => {
    closed = true;
    settle(undefined);
    inbox.put({ close: ev });
  };
  const release = run.use({
    abort(reason) {
      inbox.put({ fault: reason });
      close();
    },
    send(message) {
      if (ended) return Promise.resolve(ended);
      if (!open || closed) return Promise.resolve(undefined);
      socket.send(JSON.stringify(message));
      return new Promise((r) => waiters.push(r));
    },
  });
  try {
    for (;;) {
      const item = await inbox.take();
      if ('fault' in item) throw run.fault(item.fault, item.fault);
      if (item.close && !open) throw await upgradeRefusal(run, item.close);
      if (item.close) throw closedError(item.close, open);
      if (item.open) {
        open = true;
        socket.send(JSON.stringify(resuming
          ? { type: 'resume', run: run.runId, after }
          : { type: 'ask', ...askBody(run.options), key: run.key }));
        if (resuming || again) run.resumed(after);
        continue;
      }
      const msg = item.message;
      if (msg instanceof Error) throw msg;
      if (msg?.type === 'error' && msg.run === undefined) throw refusedOverWS(msg.data, resuming);
      const e = validate({ type: msg?.type, data: msg?.data });
      if (typeof msg.run !== 'string' || (msg.seq !== undefined && !(Number.isInteger(msg.seq) && msg.seq >= 0))) {
        throw malformed(`The server sent a ${e.type} message without its run and number.`);
      }
      run.named(msg.run);
      if (e.type === 'ping') continue;
      if (TERMINAL.has(e.type)) finished = true;
      yield { type: e.type, data: e.data, seq: msg.seq };
      if (finished) return;
    }
  } finally {
    release();
    close();
    settle(undefined);
  }
}

function parseMessage(data) {
  if (typeof data !== 'string') return malformed('The server sent a binary WebSocket message.');
  try {
    return JSON.parse(data);
  } catch (err) {
    return malformed(`The server sent a WebSocket message that is not JSON: ${err.message}`, err);
  }
}

/** refusedOverWS is the error of a command the server refused before any run existed. */
function refusedOverWS(data, resuming) {
  const code = typeof data?.code === 'string' && data.code !== '' ? data.code : 'internal';
  const err = new RunnelError(code, data?.message || `The server refused the request (${code}).`, {
    retryable: data?.retryable === true,
  });
  // An ask refused as HTTP would refuse it with a 5xx (a server shutting
  // down, a run it could not start) is worth asking again, as over HTTP.
  if (!resuming) return (STATUSES.find(([c]) => c === code)?.[1] ?? 0) >= 500 ? resumable(err) : err;
  if (code !== 'not_found') return err;
  return new RunnelError(code, `The connection broke, and the answer can no longer be resumed: ${err.message}`, {
    retryable: true, cause: err,
  });
}

/**
 * The statuses that refuse this client rather than fail: a missing or wrong
 * API key, an origin the server does not allow, a limit reached. A WebSocket
 * refused with one of them is thrown as it is, never tried again.
 */
const REFUSED = new Set([401, 403, 429]);

/**
 * upgradeRefusal is the error of a WebSocket that closed before it opened.
 * A WebSocket cannot tell why its upgrade failed (a browser's says 1006 for
 * a refused key and for a server that is down alike), so the same URL is
 * asked with fetch: when the server refuses this client there too (401, 403,
 * 429), that refusal, with the server's code and message, is the error.
 * Otherwise, or without fetch, the server could not be reached, as before.
 */
async function upgradeRefusal(run, ev) {
  const unreachable = closedError(ev, false);
  const fetchFn = run.fetchFn;
  if (typeof fetchFn !== 'function') return unreachable;
  const controller = new AbortController();
  const release = run.use({ abort: (reason) => controller.abort(reason) });
  try {
    const url = setScheme(new URL(run.wsURL()), 'http').href;
    const res = await fetchFn(url, { method: 'GET', headers: { Accept: 'application/json' }, signal: controller.signal });
    if (!REFUSED.has(res.status)) {
      res.body?.cancel?.().catch(() => {});
      return unreachable;
    }
    let body = '';
    try {
      body = await res.text();
    } catch {
      // the status says enough
    }
    return errorFromStatus(res.status, res.statusText, body, res.headers.get('Retry-After'));
  } catch {
    return run.fault(controller.signal.reason, unreachable);
  } finally {
    release();
  }
}

/** closedError is the error of a WebSocket that closed before the run's terminal event. */
function closedError(ev, opened) {
  const why = `${ev.code}${ev.reason ? ' ' + ev.reason : ''}`;
  if (!opened) {
    return resumable(new RunnelError('network', 'The server could not be reached.', { retryable: true, cause: ev }));
  }
  switch (ev.code) {
    case 1003: // we sent what it does not take
    case 1008:
      return new RunnelError('invalid', `The server closed the WebSocket (${why}).`);
    case 1009:
      return new RunnelError('too_large', `The server closed the WebSocket: a message was too big (${why}).`);
  }
  return resumable(truncated(`The WebSocket closed before the answer was complete (${why}).`, ev));
}

/**
 * cancel cancels a run on the server: DELETE on the run's route, or with
 * method "POST", POST .../cancel (the form navigator.sendBeacon can send).
 * url is the runs' base ("http://localhost:8080/runs/") and id the run's id,
 * or url is the run's own URL and id is left out. It resolves with the
 * server's {id, state}: state is the state the run ended in, "canceled", or
 * "done" or "error" when it had ended before. An unknown or expired run is a
 * RunnelError with code not_found; options.apiKey is sent as a Bearer token,
 * and a server that needs one refuses the cancel without it (unauthorized).
 */
export async function cancel(url, id, options) {
  if (id !== null && typeof id === 'object') [id, options] = [undefined, id];
  const { fetch: fetchFn = globalThis.fetch, headers, signal, method = 'DELETE' } = options ?? {};
  if (typeof fetchFn !== 'function') throw new TypeError('runnel: no fetch; pass options.fetch');
  const apiKey = apiKeyOf(options);
  if (method !== 'DELETE' && method !== 'POST') {
    throw new TypeError(`runnel: method must be DELETE or POST, not ${method}`);
  }
  const target = id === undefined ? resolve(url) : new URL(encodeURIComponent(id), withSlash(resolve(url)));
  if (method === 'POST') target.pathname += '/cancel';
  let res;
  try {
    res = await fetchFn(setScheme(target, 'http').href, {
      method, headers: withKey({ Accept: 'application/json', ...headers }, apiKey), signal,
    });
  } catch (err) {
    if (signal?.aborted) throw reasonOf(signal);
    throw new RunnelError('network', 'The server could not be reached.', { retryable: true, cause: err });
  }
  let body = '';
  try {
    body = await res.text();
  } catch {
    // judged by the status alone
  }
  if (res.status !== 200) throw errorFromStatus(res.status, res.statusText, body, res.headers.get('Retry-After'));
  let out;
  try {
    out = JSON.parse(body);
  } catch {
    // not JSON: refused below
  }
  if (typeof out?.state !== 'string') throw malformed('The server answered the cancel without the state of the run.');
  return { id: typeof out.id === 'string' ? out.id : id, state: out.state };
}

/**
 * askEach asks as ask does and calls onEvent with each event, awaiting it
 * (so a slow handler slows the reading, not the memory). It resolves with the
 * data of done, or with {canceled: true, reason} when the run was canceled,
 * and rejects as ask throws. If onEvent throws, the connection is closed and
 * askEach rejects with that error.
 */
export async function askEach(url, options, onEvent) {
  if (typeof onEvent !== 'function') throw new TypeError('runnel: askEach needs an onEvent function');
  let result;
  for await (const event of ask(url, options)) {
    await onEvent(event);
    if (event.type === 'done') result = event.data;
    if (event.type === 'canceled') result = { canceled: true, reason: event.data.reason };
  }
  return result;
}
