// A protocol v1 transcript with characters of every UTF-8 length (é: 2 bytes,
// € and 漢: 3, 😀: 4), in tokens, tags, titles and sources, for split tests.

export const transcriptEvents = [
  { type: 'query', data: 'qu’est-ce qu’un WebSocket ? 漢字?' },
  { type: 'tags', data: ['websocket', 'réseau', '漢字', 'émoji-😀'] },
  { type: 'titles', data: ['WebSocket', 'Événements serveur'] },
  {
    type: 'sources',
    data: [
      { slug: 'websocket', title: 'WebSocket', url: '/articles/websocket', tags: ['websocket'], score: 9.06, snippet: 'Un canal « full-duplex » …' },
      { slug: 'sse', title: 'Événements serveur', url: '/articles/sse', tags: ['sse', 'réseau'], score: 4.5, snippet: '😀 one way' },
    ],
  },
  ...['Un ', 'WebSocket ', 'coûte ', '5 € ', 'et ', '漢字 ', 'de ', 'plus: ', '😀😀', '.\n\n', 'Ça ', 'marche', '.'].map(
    (data) => ({ type: 'token', data }),
  ),
  { type: 'done', data: { finish_reason: 'stop', id: 'abc123' } },
];

/** The transcript as the server writes it: one JSON object a line. */
export const transcript = transcriptEvents.map((e) => JSON.stringify(e) + '\n').join('');

/** The answer: every token's data, in order. */
export const transcriptAnswer = transcriptEvents
  .filter((e) => e.type === 'token')
  .map((e) => e.data)
  .join('');

/** The run id the SSE transcript's events name. */
export const transcriptRun = 'AbCdEfGhIjKlMnOpQrStUv';

/**
 * sseTranscript is the transcript as runnel's SSE framing writes it: a retry
 * field, then for each event "event:", "id: <run>.<seq>" and "data:" lines
 * and a blank line, with a heartbeat comment among them. eol is the line end
 * to use ("\n", "\r\n" or "\r": the format allows all three).
 */
export function sseTranscript(eol = '\n') {
  const blocks = [`retry: 1000${eol}`];
  transcriptEvents.forEach((e, seq) => {
    if (seq === 2) blocks.push(`: ping${eol}`);
    blocks.push(`event: ${e.type}${eol}id: ${transcriptRun}.${seq}${eol}data: ${JSON.stringify(e.data)}${eol}`);
  });
  return blocks.join(eol) + eol;
}

/** numbered is events as ask() yields them: with their run and their number in it. */
export function numbered(events, run = '') {
  return events.map((e, seq) => ({ ...e, run, seq }));
}
