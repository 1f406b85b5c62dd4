import type { Canceled, Done, Event } from './runnel.js';

/** The part of an axios instance (or the axios function) that askAxios uses. */
export type AxiosLike =
  | { request(config: Record<string, unknown>): Promise<AxiosLikeResponse> }
  | ((config: Record<string, unknown>) => Promise<AxiosLikeResponse>);

export interface AxiosLikeResponse {
  data: unknown;
  status: number;
  statusText: string;
  headers: unknown;
}

export interface AskAxiosOptions {
  question: string;
  /** Abort to stop the answer; the server stops working on it. */
  signal?: AbortSignal;
  /** The longest line accepted, in UTF-16 code units; default MAX_LINE. */
  maxLine?: number;
  /** The server's API key, sent as Authorization: Bearer (in place of one in config.headers). */
  apiKey?: string | null;
  /** Merged into the request config (headers, auth, baseURL ...). */
  config?: Record<string, unknown> & { headers?: Record<string, string> };
}

/**
 * Ask through axios: in a browser, events are delivered as they arrive, each
 * once, from onDownloadProgress's growing text. Resolves with done's data (or
 * {canceled: true, reason}); rejects with a RunnelError, or the signal's
 * reason when aborted. A broken connection is not resumed: it is truncated.
 */
export function askAxios(
  axios: AxiosLike,
  url: string | URL,
  options: AskAxiosOptions,
  onEvent: (event: Event) => void,
): Promise<Done | Canceled>;
