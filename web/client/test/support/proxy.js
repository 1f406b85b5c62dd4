// A TCP proxy in front of the test server that breaks connections when the
// test says: the requests still go to the real server, and a client that
// resumes does so through the real server too. It forwards bytes unchanged
// in both directions (HTTP, SSE, WebSocket alike) and can
//
//   - cut the response to the next request that matches, after exactly N
//     of its bytes (status line and headers included): cutNext(n, {path});
//   - cut every connection open now: cutAll();
//   - drop the requests of new connections until told otherwise: block()
//     and unblock().
//
// It also records the head of every request (requests) and the response
// bytes of the last ones (responses), to choose cut points from an
// uninterrupted response and to check what a client sent when it came back.

import { once } from 'node:events';
import net from 'node:net';

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.1\r\n/;

export async function startProxy(target) {
  const { hostname, port } = new URL(target);
  const conns = new Set();
  const rules = []; // {at, path, resolve}, the first match is used once
  const requests = []; // {method, path, head}
  const responses = []; // {method, path, head, bytes: Buffer[]} for the last 50 requests
  let blocked = false;

  const server = net.createServer((client) => {
    if (blocked) {
      // Dropped once the request arrives, as a proxy that fails does: Node's
      // fetch (undici 6) waits forever on a connection closed before it
      // wrote its request.
      client.on('error', () => {});
      client.once('data', () => client.destroy());
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    const c = { client, upstream, head: '', rule: null, sent: 0, answered: true, dead: false, response: null };
    conns.add(c);
    const kill = () => {
      c.dead = true;
      client.destroy();
      upstream.destroy();
      conns.delete(c);
    };
    c.kill = kill;

    client.on('data', (buf) => {
      if (c.answered) startRequest(c, buf);
      else if (c.head.length < 8192) c.head += buf.toString('latin1');
      upstream.write(buf);
    });
    upstream.on('data', (buf) => {
      if (c.dead) return;
      c.answered = true;
      if (c.rule) {
        const room = c.rule.at - c.sent;
        if (buf.length >= room) {
          const part = buf.subarray(0, room);
          c.response?.bytes.push(part);
          const rule = c.rule;
          c.rule = null;
          c.dead = true;
          upstream.pause();
          client.write(part, () => {
            kill();
            rule.resolve({ sent: Buffer.concat(c.response?.bytes ?? []) });
          });
          return;
        }
      }
      c.sent += buf.length;
      c.response?.bytes.push(buf);
      client.write(buf);
    });
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      a.on('error', () => {});
      a.on('end', () => b.end());
      a.on('close', () => {
        b.destroy();
        conns.delete(c);
      });
    }
  });

  // A new request on a connection: its response starts counting from zero.
  function startRequest(c, buf) {
    const text = buf.toString('latin1');
    const m = REQUEST_LINE.exec(text);
    c.answered = false;
    c.sent = 0;
    c.head = text;
    c.rule = null;
    c.response = null;
    if (!m) return; // WebSocket frames after an upgrade
    const [, method, url] = m;
    const path = url.split('?')[0];
    const req = { method, path, url, head: text.split('\r\n\r\n')[0] };
    requests.push(req);
    c.response = { ...req, bytes: [] };
    responses.push(c.response);
    if (responses.length > 50) responses.shift();
    const i = rules.findIndex((r) => r.path === undefined || r.path === path);
    if (i >= 0) [c.rule] = rules.splice(i, 1);
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    /**
     * cutNext cuts the response to the next request for path (any path when
     * it is undefined) after n bytes. It resolves, once cut, to {sent}: the
     * bytes the client got.
     */
    cutNext(n, { path } = {}) {
      return new Promise((resolve) => rules.push({ at: n, path, resolve }));
    },
    /** cutAll breaks every open connection now. */
    cutAll() {
      for (const c of [...conns]) c.kill();
    },
    block() {
      blocked = true;
    },
    unblock() {
      blocked = false;
    },
    /** responseTo returns the bytes of the last response to a request for path. */
    responseTo(path) {
      const r = responses.findLast((r) => r.path === path);
      return r && Buffer.concat(r.bytes);
    },
    /** pending is the number of cuts asked for that have not happened. */
    get pending() {
      return rules.length;
    },
    clearRules() {
      rules.length = 0;
    },
    async close() {
      for (const c of [...conns]) c.kill();
      await new Promise((r) => server.close(r));
    },
  };
}
