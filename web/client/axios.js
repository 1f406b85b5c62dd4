// askAxios reads a runnel answer through axios, for pages that already send
// their requests with axios (interceptors, auth, base URLs). In a browser,
// axios's XHR adapter calls onDownloadProgress as the response grows, with the
// XMLHttpRequest whose responseText holds all the text so far; this adapter
// parses only the lines completed since the last call, so each event is
// delivered exactly once, in order, as it arrives.
//
// axios is passed in, not imported: this package has no runtime dependencies.
//
// Elsewhere (axios's Node adapter) there is no growing text, and the events
// are delivered when the response ends: correct, but not progressive. In Node,
// use ask() from the main module, which streams with fetch.
//
// The adapter does not resume a broken answer (XMLHttpRequest cannot tell how
// far it got reliably): a break is truncated, as in protocol v1. Events carry
// their run and number as ask()'s do, and a canceled run ends it as canceled.

import { CumulativeDecoder, MAX_LINE, RunnelError, errorFromEvent, errorFromStatus } from './runnel.js';

const DELIVERED = new Set(['query', 'tags', 'titles', 'sources', 'token', 'done', 'canceled']);

/** The XMLHttpRequest behind an axios progress event, if there is one. */
function xhrOf(progress) {
  const xhr = progress?.event?.target ?? progress?.event?.currentTarget;
  return xhr && typeof xhr === 'object' && 'responseText' in xhr ? xhr : undefined;
}

function textOf(xhr) {
  try {
    return xhr.status === 200 ? xhr.responseText : undefined;
  } catch {
    return undefined; // a responseType other than text
  }
}

function runOf(xhr) {
  try {
    return xhr?.getResponseHeader?.('Runnel-Run-Id') ?? '';
  } catch {
    return '';
  }
}

function reasonOf(signal) {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * askAxios asks the server at url (the stream endpoint) with axios and calls
 * onEvent with each event: query, tags, titles, sources, tokens, done (or
 * canceled). It resolves with the data of done, or {canceled: true, reason}
 * for a canceled run, and rejects as ask() throws: a RunnelError
 * for an HTTP error, an error event, a truncated stream or an unreachable
 * server, and the signal's reason when aborted. If onEvent throws, the
 * request is aborted and askAxios rejects with that error.
 *
 * options.config is merged into the axios request config (headers, auth);
 * the adapter sets method, data, responseType, transformResponse,
 * validateStatus, signal and onDownloadProgress itself. options.apiKey is
 * sent as Authorization: Bearer, in place of any the config's headers carry.
 *
 * One limit comes from XMLHttpRequest: when the connection breaks, the text
 * received since the last progress event is lost, so a break right after done
 * can be reported as truncated. It is never reported as success without done.
 */
export async function askAxios(axios, url, options, onEvent) {
  const { question, signal, maxLine = MAX_LINE, config = {}, apiKey } = options ?? {};
  if (typeof question !== 'string') throw new TypeError('runnel: options.question must be a string');
  const sent = { Accept: 'application/x-ndjson', 'Content-Type': 'application/json', ...config.headers };
  if (apiKey !== undefined && apiKey !== null && apiKey !== '') {
    // As ask() vets it: what fetch or XMLHttpRequest could not send is refused here.
    if (typeof apiKey !== 'string' || !/^[\x21-\x7E]+$/.test(apiKey)) {
      throw new TypeError('runnel: apiKey must be a string of visible ASCII characters, without spaces');
    }
    for (const name of Object.keys(sent)) if (name.toLowerCase() === 'authorization') delete sent[name];
    sent.Authorization = `Bearer ${apiKey}`;
  }
  if (typeof onEvent !== 'function') throw new TypeError('runnel: askAxios needs an onEvent function');
  const request = typeof axios?.request === 'function' ? (c) => axios.request(c) : axios;
  if (typeof request !== 'function') throw new TypeError('runnel: askAxios needs an axios instance');
  if (signal?.aborted) throw reasonOf(signal);

  const controller = new AbortController();
  const onAbort = () => controller.abort(reasonOf(signal));
  signal?.addEventListener('abort', onAbort, { once: true });

  const decoder = new CumulativeDecoder({ maxLine });
  let finished = false;
  let done;
  let run = '';
  let seq = 0; // NDJSON lines carry no number: count the non-ping ones
  let failure; // an error found while reading, to reject with
  let answered = false; // a 200 response began to arrive

  const deliver = (events) => {
    for (const e of events) {
      if (finished || failure) return;
      if (e.type === 'ping') continue;
      const n = seq++;
      if (e.type === 'error') {
        finished = true;
        failure = errorFromEvent(e.data);
        if (run) failure.run = run;
        return;
      }
      if (!DELIVERED.has(e.type)) continue;
      onEvent({ type: e.type, data: e.data, run, seq: n });
      if (e.type === 'done') {
        finished = true;
        done = e.data;
      } else if (e.type === 'canceled') {
        finished = true;
        done = { canceled: true, reason: e.data.reason };
      }
    }
  };
  // Errors thrown inside axios's progress callback would be lost in the
  // XMLHttpRequest's event dispatch: keep them and stop the request.
  const guarded = (fn) => {
    try {
      fn();
    } catch (err) {
      failure ??= err;
      controller.abort(err);
    }
  };

  let response;
  try {
    response = await request({
      ...config,
      url: String(url),
      method: 'post',
      data: { question },
      headers: sent,
      responseType: 'text',
      transformResponse: [(data) => data],
      validateStatus: () => true,
      signal: controller.signal,
      onDownloadProgress: (progress) => {
        const xhr = xhrOf(progress);
        const text = xhr && textOf(xhr);
        if (text !== undefined) {
          answered = true;
          run ||= runOf(xhr);
          guarded(() => {
            deliver(decoder.update(text));
            if (decoder.error && !finished) throw decoder.error;
          });
        }
      },
    });
  } catch (err) {
    if (failure) throw failure;
    if (signal?.aborted) throw reasonOf(signal);
    if (finished) return done; // the connection broke after done: harmless
    // XMLHttpRequest forgets the response on a network error, so whether
    // one had begun is known only from the progress seen before.
    if (answered) {
      throw new RunnelError('truncated', 'The connection broke before the answer was complete.',
        { retryable: true, cause: err });
    }
    throw new RunnelError('network', 'The server could not be reached.', { retryable: true, cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }

  if (failure) throw failure;
  const { status, statusText, data, headers } = response;
  const header = (name) => (typeof headers?.get === 'function' ? headers.get(name) : headers?.[name]) ?? null;
  if (status !== 200) {
    throw errorFromStatus(status, statusText, typeof data === 'string' ? data : JSON.stringify(data ?? ''),
      header('retry-after'));
  }
  run ||= String(header('runnel-run-id') ?? '');
  const type = String(header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-ndjson') {
    throw new RunnelError('malformed', `The server sent ${JSON.stringify(type)}, not an NDJSON stream.`);
  }
  deliver(decoder.end(typeof data === 'string' ? data : ''));
  if (failure) throw failure;
  if (decoder.error && !finished) throw decoder.error;
  if (!finished) {
    throw new RunnelError('truncated', 'The stream ended before the answer was complete.', { retryable: true });
  }
  return done;
}
