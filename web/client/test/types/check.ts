// Compiled (never run) by test/node/types.test.js: the declarations describe
// the API as the README shows it.
import { ask, askEach, EventDecoder, CumulativeDecoder, RunnelError, MAX_LINE, type Done, type Event } from '@runnel/client';
import { askAxios } from '@runnel/client/axios';

declare const axios: { request(config: Record<string, unknown>): Promise<{ data: unknown; status: number; statusText: string; headers: unknown }> };

export async function example(signal: AbortSignal): Promise<string> {
  let answer = '';
  for await (const event of ask('http://localhost:8080/articles/stream', { question: 'what is websocket?', signal })) {
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
    }
  }
  const done: Done = await askEach('/articles/stream', { question: 'q', method: 'GET', maxLine: MAX_LINE }, (e: Event) => {
    if (e.type === 'tags') e.data.join(',');
  });
  await askAxios(axios, '/articles/stream', { question: 'q', signal }, (e) => void e.type);
  try {
    await askEach('/articles/stream', { question: 'q' }, () => {});
  } catch (err) {
    if (err instanceof RunnelError && err.code === 'truncated' && err.retryable) return done.finish_reason;
    if (err instanceof RunnelError && err.status === 400) return err.message;
  }
  const d = new EventDecoder({ maxLine: 1024 });
  d.push(new Uint8Array(0)).concat(d.end());
  new CumulativeDecoder().update('').length satisfies number;
  return answer;
}
