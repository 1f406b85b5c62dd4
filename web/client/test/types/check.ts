// Compiled (never run) by test/node/types.test.js: the declarations describe
// the API as the README shows it.
import {
  ask, askEach, cancel, EventDecoder, CumulativeDecoder, SSEDecoder, eventFromSSE, RunnelError, MAX_LINE, RETRIES, BACKOFF,
  type Done, type Event, type CancelResult, type Message,
} from '@runnel/client';
import { askAxios } from '@runnel/client/axios';

declare const axios: { request(config: Record<string, unknown>): Promise<{ data: unknown; status: number; statusText: string; headers: unknown }> };
declare const WS: new (url: string) => {
  send(data: string): void; close(code?: number): void;
  onopen: ((ev: unknown) => void) | null; onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null; onclose: ((ev: { code: number; reason: string }) => void) | null;
};

export async function example(signal: AbortSignal): Promise<string> {
  let answer = '';
  const it = ask('http://localhost:8080/articles/stream', { question: 'what is websocket?', signal });
  for await (const event of it) {
    event.run.length + event.seq satisfies number;
    switch (event.type) {
      case 'token':
        answer += event.data;
        break;
      case 'sources':
        event.data.forEach((s) => s.url.toUpperCase() + s.score.toFixed(2));
        break;
      case 'done':
        event.data.finish_reason satisfies string;
        break;
      case 'canceled':
        event.data.reason satisfies string;
        break;
    }
  }
  const runId: string | undefined = it.runId;
  const stopped: CancelResult | undefined = await it.cancel();
  it.reconnect() satisfies boolean;

  const result = await askEach('/articles/stream', { question: 'q', method: 'GET', maxLine: MAX_LINE }, (e: Event) => {
    if (e.type === 'tags') e.data.join(',');
  });
  if (result.canceled) return result.reason;
  const done: Done = result;

  for await (const e of ask('/articles/stream', {
    question: 'q', transport: 'sse', retries: RETRIES, backoff: { base: BACKOFF.base }, runsURL: '/runs/',
    onReconnect: (r) => void (r.attempt + r.delay + r.after), onResume: (r) => void r.run,
  })) void e;
  for await (const e of ask('ws://localhost:8080/runs/ws', { question: 'q', transport: 'websocket', WebSocket: WS, apiKey: 'k' })) void e;
  (await cancel('http://localhost:8080/runs/', runId ?? '')).state satisfies string;
  await cancel(`http://localhost:8080/runs/${runId}`, { method: 'POST', apiKey: 'k' });
  const stored: string | null = null as string | null; // sessionStorage.getItem gives string | null
  await askEach('/articles/stream', { question: 'q', apiKey: stored, headers: { 'X-Trace': '1' } }, () => {});

  const history: Message[] = [{ role: 'user', content: 'what is SSE?' }, { role: 'assistant', content: 'A stream.' }];
  await askEach('/articles/stream', { messages: [...history, { role: 'user', content: 'how does it reconnect?' }] }, () => {});
  // @ts-expect-error: a question or messages, not both
  await askEach('/articles/stream', { question: 'q', messages: history }, () => {});
  // @ts-expect-error: no role "tool"
  await askEach('/articles/stream', { messages: [{ role: 'tool', content: 'x' }] }, () => {});

  await askAxios(axios, '/articles/stream', { question: 'q', signal, apiKey: 'k' }, (e) => void e.type);
  try {
    await askEach('/articles/stream', { question: 'q' }, () => {});
  } catch (err) {
    if (err instanceof RunnelError && err.code === 'truncated' && err.retryable) return done.finish_reason;
    if (err instanceof RunnelError && err.code === 'not_found' && err.run) return err.run;
    if (err instanceof RunnelError && err.status === 400) return err.message;
    if (err instanceof RunnelError && err.code === 'unauthorized' && err.status === 401) return 'ask for the key';
  }
  const d = new EventDecoder({ maxLine: 1024 });
  d.push(new Uint8Array(0)).concat(d.end());
  new CumulativeDecoder().update('').length satisfies number;
  const s = new SSEDecoder();
  s.push('event: token\ndata: "x"\n\n').map(eventFromSSE).forEach((e) => void e.seq);
  return answer + String(stopped?.state);
}
