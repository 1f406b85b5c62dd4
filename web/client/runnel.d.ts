// Types for @runnel/client: protocol v1 of runnel (docs/protocol.md).

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

export type QueryEvent = { type: 'query'; data: string };
export type TagsEvent = { type: 'tags'; data: string[] };
export type TitlesEvent = { type: 'titles'; data: string[] };
export type SourcesEvent = { type: 'sources'; data: Source[] };
export type TokenEvent = { type: 'token'; data: string };
export type DoneEvent = { type: 'done'; data: Done };

/** The events ask() yields, in this order: query, tags, titles, sources, token*, done. */
export type Event = QueryEvent | TagsEvent | TitlesEvent | SourcesEvent | TokenEvent | DoneEvent;

/** Every line of the protocol, as EventDecoder returns them (it skips nothing but blank lines). */
export type WireEvent =
  | Event
  | { type: 'error'; data: ErrorData }
  | { type: 'ping'; data?: undefined }
  | { type: string; data?: unknown };

/**
 * Codes the server sends (invalid, too_large, not_found, internal,
 * unavailable, timeout, upstream, ...) and the ones this client produces:
 * truncated, malformed, line_too_long and network.
 */
export type ErrorCode =
  | 'invalid' | 'too_large' | 'not_found' | 'internal' | 'unavailable' | 'timeout' | 'upstream'
  | 'truncated' | 'malformed' | 'line_too_long' | 'network'
  | (string & {});

export interface RunnelErrorOptions {
  status?: number;
  retryable?: boolean;
  retryAfter?: number;
  cause?: unknown;
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
}

/** The longest line accepted by default, in UTF-16 code units (1 MiB). */
export const MAX_LINE: number;

export interface AskOptions {
  question: string;
  /** Abort to stop the answer; the server stops working on it. */
  signal?: AbortSignal;
  /** POST (the default) sends {"question": ...}; GET sends ?question=. */
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** The fetch to use; default globalThis.fetch. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** The longest line accepted, in UTF-16 code units; default MAX_LINE. */
  maxLine?: number;
}

/**
 * Ask the server at url (the stream endpoint, such as
 * "http://localhost:8080/articles/stream") and yield the answer's events as
 * they arrive, ending after done. Throws RunnelError for an HTTP error, an
 * error event, a truncated stream, an unreachable server or a malformed
 * stream, and the signal's reason when aborted.
 */
export function ask(url: string | URL, options: AskOptions): AsyncGenerator<Event, void, undefined>;

/** Ask as ask() does and call onEvent with each event; resolves with done's data. */
export function askEach(
  url: string | URL,
  options: AskOptions,
  onEvent: (event: Event) => void | Promise<void>,
): Promise<Done>;

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

export function errorFromEvent(data: ErrorData): RunnelError;
export function errorFromStatus(
  status: number,
  statusText: string,
  body: string,
  retryAfter?: string | null,
): RunnelError;
