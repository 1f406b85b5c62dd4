// Types for @runnel/client: protocol v1.1 of runnel (docs/protocol.md).

/** An article the answer draws on. */
export interface Source {
  slug: string;
  title: string;
  /** The article's path on the server, such as "/articles/websocket". */
  url: string;
  tags: string[];
  /** Relevance of its best passage; higher is better, comparable within one answer. */
  score: number;
  snippet: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The data of the terminal done event. */
export interface Done {
  /** Never set on done's data: it tells a Done from a Canceled result of askEach. */
  canceled?: false;
  /** "stop": complete; "length": the answer reached its token cap. */
  finish_reason: 'stop' | 'length' | (string & {});
  usage?: Usage;
  /** The request id, also in the X-Request-Id header and the server log. */
  id?: string;
}

/** The data of an error event, and of an error response's "error" field. */
export interface ErrorData {
  code: string;
  message: string;
  retryable?: boolean;
}

/** Why a run was canceled: a client asked, or no reader came back within the linger window. */
export type CancelReason = 'client' | 'abandoned' | (string & {});

/** The data of the terminal canceled event. */
export interface CanceledData {
  reason: CancelReason;
}

/** What every event ask() yields carries besides its type and data. */
export interface Numbered {
  /** The run's id ("" from a protocol v1 server, which names no runs). */
  run: string;
  /**
   * The event's number in its run: query is 0, then +1 each. -1 for an event
   * the server sent outside the run's log (an SSE event without an id).
   */
  seq: number;
}

export type QueryEvent = { type: 'query'; data: string } & Numbered;
export type TagsEvent = { type: 'tags'; data: string[] } & Numbered;
export type TitlesEvent = { type: 'titles'; data: string[] } & Numbered;
export type SourcesEvent = { type: 'sources'; data: Source[] } & Numbered;
export type TokenEvent = { type: 'token'; data: string } & Numbered;
export type DoneEvent = { type: 'done'; data: Done } & Numbered;
/** The run was stopped before its answer was complete, and not by a failure. */
export type CanceledEvent = { type: 'canceled'; data: CanceledData } & Numbered;

/**
 * The events ask() yields, in this order: query, tags, titles, sources,
 * token*, then done or canceled (canceled may come at any point).
 */
export type Event = QueryEvent | TagsEvent | TitlesEvent | SourcesEvent | TokenEvent | DoneEvent | CanceledEvent;

type Unnumbered<E> = E extends unknown ? Omit<E, keyof Numbered> : never;

/** Every line of the protocol, as EventDecoder returns them (it skips nothing but blank lines). */
export type WireEvent =
  | Unnumbered<Event>
  | { type: 'error'; data: ErrorData }
  | { type: 'ping'; data?: undefined }
  | { type: string; data?: unknown };

/**
 * Codes the server sends (invalid, too_large, not_found, internal,
 * unavailable, timeout, upstream, unauthorized, forbidden, rate_limited, ...)
 * and the ones this client produces: truncated, malformed, line_too_long and
 * network. not_found after a break means the server no longer has the run to
 * resume; unauthorized, that the server needs an API key (apiKey) and got
 * none, or a wrong one.
 */
export type ErrorCode =
  | 'invalid' | 'too_large' | 'not_found' | 'internal' | 'unavailable' | 'timeout' | 'upstream'
  | 'unauthorized' | 'forbidden' | 'rate_limited'
  | 'truncated' | 'malformed' | 'line_too_long' | 'network'
  | (string & {});

export interface RunnelErrorOptions {
  status?: number;
  retryable?: boolean;
  retryAfter?: number;
  cause?: unknown;
  run?: string;
}

/** An error meant for users: a stable code and a sentence. Switch on code. */
export class RunnelError extends Error {
  constructor(code: ErrorCode, message?: string, options?: RunnelErrorOptions);
  readonly name: 'RunnelError';
  readonly code: ErrorCode;
  /** True when asking again may succeed. */
  readonly retryable: boolean;
  /** The HTTP status, when the server refused the question before the stream began. */
  readonly status?: number;
  /** Seconds from the Retry-After header, when the server sent one. */
  readonly retryAfter?: number;
  /** The id of the run this error ended, once the server had named it. */
  readonly run?: string;
}

/** The longest line accepted by default, in UTF-16 code units (1 MiB). */
export const MAX_LINE: number;

/** How many resume attempts in a row ask() makes by default: 5. */
export const RETRIES: number;

/** The default wait before resume attempt n: min(max, base * 2^(n-1)), less up to half of it (jitter). */
export const BACKOFF: Readonly<Backoff>;

export interface Backoff {
  /** Milliseconds before the first attempt (at most; jitter takes up to half off). Default 100. */
  base: number;
  /** The longest wait, in milliseconds. Default 2000. */
  max: number;
}

/** How ask() reaches the server. */
export type Transport = 'ndjson' | 'sse' | 'websocket';

/** The part of a WebSocket class that ask() uses: the browser's, or the npm ws package's. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: unknown }) => any) | null;
  onerror: ((ev: any) => any) | null;
  onclose: ((ev: { code: number; reason: string }) => any) | null;
}

/** What onReconnect is told before each resume attempt, or before asking again. */
export interface ReconnectInfo {
  /**
   * The run's id; "" when the server had not named one: the attempt asks the
   * question again, with the same idempotency key.
   */
  run: string;
  /** The number of the last event read: the attempt asks for the events after it (-1 when asking again). */
  after: number;
  /** 1 for the first attempt since the last new event, then 2, ... up to retries. */
  attempt: number;
  retries: number;
  /** The wait before this attempt, in milliseconds. */
  delay: number;
  /** Why the connection failed. */
  error: unknown;
}

/** A turn of a conversation, with the roles of OpenAI's chat API. */
export interface Message {
  role: 'user' | 'assistant' | 'system';
  content: string;
}

/** The question alone, or the conversation so far ending with it (messages, sent with POST). */
export type Asking =
  | { question: string; messages?: undefined }
  | {
      /**
       * The conversation so far, oldest first, ending with the new question as a
       * user message: the server reads the question in the light of the earlier
       * turns (docs/conversations.md). Append each answer as an assistant
       * message before the next question.
       */
      messages: Message[];
      question?: undefined;
    };

export type AskOptions = Asking & AskSettings;

export interface AskSettings {
  /**
   * Abort to stop reading: the connection closes and ask() throws the
   * signal's reason. The server cancels the run once no reader has come back
   * within its linger window; to stop it at once, use cancel().
   */
  signal?: AbortSignal;
  /** ndjson (the default), sse (read with fetch), or websocket. */
  transport?: Transport;
  /** POST (the default) sends {"question": ...} or {"messages": [...]}; GET sends ?question= (no messages). Not for websocket. */
  method?: 'GET' | 'POST';
  /** Extra headers on every request of the answer (not on a WebSocket, which cannot carry them). */
  headers?: Record<string, string>;
  /**
   * The API key of a server that needs one: sent as Authorization: Bearer on
   * every fetch (the question, each resume, cancel), in place of any
   * Authorization in headers, and as access_token in the WebSocket's URL. A
   * missing or wrong key is a RunnelError "unauthorized" (status 401), thrown
   * at once. Visible ASCII without spaces; anything else is a TypeError.
   * Absent, null or "": no key.
   */
  apiKey?: string | null;
  /** The fetch to use; default globalThis.fetch. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** The WebSocket class for transport websocket; default globalThis.WebSocket (in Node 20, pass ws's). */
  WebSocket?: new (url: string) => WebSocketLike;
  /**
   * Where the run routes are (GET {runsURL}{id}, DELETE {runsURL}{id},
   * {runsURL}ws); default ../runs/ next to the stream endpoint.
   */
  runsURL?: string | URL;
  /**
   * Resume attempts in a row (or new asks, before the run is named) before
   * giving up; 0 turns both off. Default RETRIES (5).
   */
  retries?: number;
  /** The waits between resume attempts; default BACKOFF. */
  backoff?: Partial<Backoff>;
  /** Called before each resume attempt, and before asking again (to show "Reconnecting…", say). */
  onReconnect?: (info: ReconnectInfo) => void;
  /**
   * Called when a resume attempt, or a new ask after a break before the run
   * was named, has connected (after is then -1; run is "" over a WebSocket,
   * whose server names the run in its first message).
   */
  onResume?: (info: { run: string; after: number }) => void;
  /** The longest line accepted, in UTF-16 code units; default MAX_LINE. */
  maxLine?: number;
  /**
   * The answer's idempotency key: sent as the Idempotency-Key header of the
   * request that asks (POST or GET) and as "key" in the WebSocket's ask. A
   * connection that breaks before the server names the run is asked again
   * with it (while no event has been yielded), and the server streams the
   * run the key names instead of starting another. Default: 128 random bits
   * in hex, new for each ask() (none where there is no crypto.getRandomValues,
   * as in Node 18 without --experimental-global-webcrypto: then a break
   * before the run is named is thrown). 1 to 64 letters, digits, '-', '_' or
   * '.'; anything else is a TypeError. Two ask() calls with the same key, while
   * the server keeps its run, read that one run.
   */
  idempotencyKey?: string;
}

/** The state a run ended in, as the server says after a cancel. */
export type RunState = 'canceled' | 'done' | 'error' | (string & {});

export interface CancelResult {
  id: string;
  state: RunState;
}

/** What ask() returns: the events, and a hand on the run. */
export interface Answer extends AsyncGenerator<Event, void, undefined> {
  /** The run's id, once the server has named it. */
  readonly runId: string | undefined;
  /**
   * Cancel the run on the server (DELETE on its route, or the WebSocket's
   * cancel message), waiting for its id if it is not known yet; the
   * iteration then ends with the canceled event. Resolves with the state the
   * run ended in (done or error if it had already ended), or undefined when
   * there was no run to cancel.
   */
  cancel(): Promise<CancelResult | undefined>;
  /**
   * Close the connection and resume the run at once, as after a break (when
   * the network is known to have changed). False when there is nothing to
   * resume: no run id yet, the run ended, or retries is 0.
   */
  reconnect(): boolean;
}

/**
 * Ask the server at url (the stream endpoint, such as
 * "http://localhost:8080/articles/stream"; for websocket, that or the
 * ws:// endpoint itself) and yield the answer's events as they arrive,
 * ending after done or canceled. A dropped connection is resumed; one that
 * drops before the server names the run is asked again with the same
 * idempotency key, as long as no event has been yielded. Throws
 * RunnelError for an HTTP error, an error event, a truncated stream that
 * could not be resumed, an unreachable server or a malformed stream, and the
 * signal's reason when aborted.
 */
export function ask(url: string | URL, options: AskOptions): Answer;

/** What askEach resolves with when the run was canceled. */
export interface Canceled {
  canceled: true;
  reason: CancelReason;
}

/**
 * Ask as ask() does and call onEvent with each event; resolves with done's
 * data, or with {canceled: true, reason} when the run was canceled.
 */
export function askEach(
  url: string | URL,
  options: AskOptions,
  onEvent: (event: Event) => void | Promise<void>,
): Promise<Done | Canceled>;

export interface CancelOptions {
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  headers?: Record<string, string>;
  /** The server's API key, sent as Authorization: Bearer; without it a keyed server answers unauthorized. */
  apiKey?: string | null;
  signal?: AbortSignal;
  /** DELETE (the default) on the run's route, or POST on .../cancel. */
  method?: 'DELETE' | 'POST';
}

/**
 * Cancel a run: url is the runs' base ("http://localhost:8080/runs/") and id
 * the run's id, or url is the run's own URL. Resolves with the state the run
 * ended in; a RunnelError not_found for an unknown or expired run.
 */
export function cancel(url: string | URL, id: string, options?: CancelOptions): Promise<CancelResult>;
export function cancel(runURL: string | URL, options?: CancelOptions): Promise<CancelResult>;

export interface DecoderOptions {
  /** The longest line accepted, in UTF-16 code units; default MAX_LINE. */
  maxLine?: number;
}

/** Bytes (or text) of a stream in, events out, whatever the chunking. */
export class EventDecoder {
  constructor(options?: DecoderOptions);
  /**
   * A failure found after the events the last push or end returned; the next
   * push or end throws it. Events before a broken line are delivered first.
   */
  error: RunnelError | undefined;
  /** Returns the events this chunk completes. */
  push(chunk: Uint8Array | ArrayBuffer | string): WireEvent[];
  /** Returns the events left at the end of the stream, including a final line without a newline. */
  end(): WireEvent[];
}

/** For text that arrives cumulatively (XMLHttpRequest.responseText): each event is returned once. */
export class CumulativeDecoder {
  constructor(options?: DecoderOptions);
  /** A failure found after the events the last update or end returned. */
  readonly error: RunnelError | undefined;
  /** Takes all the text so far; returns the events completed since the last call. */
  update(text: string): WireEvent[];
  /** Takes the complete text; returns the events left in it. */
  end(text: string): WireEvent[];
}

/** A message of an event stream: the block's event (default "message"), its data lines joined, its own id. */
export interface SSEMessage {
  event: string;
  data: string;
  /** The block's own id field; undefined when it had none. */
  id: string | undefined;
}

/** Bytes (or text) of a text/event-stream in, messages out, whatever the chunking and line ends. */
export class SSEDecoder {
  constructor(options?: DecoderOptions);
  /** The id of the last message that had one, as an EventSource keeps it. */
  lastEventId: string;
  /** The reconnection time the stream asked for (retry:), in ms. */
  retry: number | undefined;
  error: RunnelError | undefined;
  push(chunk: Uint8Array | ArrayBuffer | string): SSEMessage[];
  /** The end of the stream: a message it cuts off is dropped, so this returns none. */
  end(): SSEMessage[];
}

/** Turn a message of runnel's SSE framing into an event; run and seq come from its id "<run>.<seq>". */
export function eventFromSSE(message: SSEMessage): WireEvent & { run: string | undefined; seq: number | undefined };

export function errorFromEvent(data: ErrorData): RunnelError;
export function errorFromStatus(
  status: number,
  statusText: string,
  body: string,
  retryAfter?: string | null,
): RunnelError;
