// Helpers that build and run the Go servers the tests talk to, and drive the
// test server's controls (web/testserver). Every server listens on 127.0.0.1
// and is stopped by its PID when the test file ends.

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The repository root, where `go build` runs. */
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
/** The JS package's directory. */
export const clientDir = fileURLToPath(new URL('../../', import.meta.url));

const run = promisify(execFile);

/**
 * buildGo builds the Go package pkg (relative to the repository root) into a
 * fresh temporary directory and returns the binary's path and a cleanup.
 */
export async function buildGo(pkg, name) {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-js-test-'));
  const out = join(dir, name);
  try {
    await run('go', ['build', '-o', out, pkg], { cwd: repoRoot, maxBuffer: 16 << 20 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`go build ${pkg} failed:\n${err.stderr || err.message}`);
  }
  return { path: out, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * startServer runs bin with args and waits for it to print its URL
 * (http://127.0.0.1:PORT) on stdout. stop() ends it by its PID.
 */
export function startServer(bin, args, { timeout = 60_000 } = {}) {
  const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: repoRoot });
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s) => {
    stderr = (stderr + s).slice(-20_000);
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));

  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(proc.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    }
    proc.stdin.destroy();
  };

  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`${bin} printed no URL within ${timeout} ms; stderr:\n${stderr}`));
    }, timeout);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (s) => {
      out += s;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) {
        clearTimeout(timer);
        proc.stdout.removeAllListeners('data');
        proc.stdout.resume();
        resolve({ url: m[0], pid: proc.pid, stop, stderr: () => stderr });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited (${code ?? signal}) before printing its URL; stderr:\n${stderr}`));
    });
  });
}

/**
 * startTestServer builds and starts web/testserver; resolves to its URL and
 * controls. linger is the server's linger window ("30s" by default; "0s"
 * cancels a run as soon as its last reader leaves, as protocol v1 did).
 * apiKeys, when there are any, are the keys the stream and run routes then
 * need (keysForPages: the pages too); corsOrigins, the origins CORS allows.
 */
export async function startTestServer({ linger = '30s', apiKeys = [], keysForPages = false, corsOrigins = [] } = {}) {
  const bin = await buildGo('./web/testserver', 'testserver');
  let server;
  try {
    server = await startServer(bin.path, [
      '-addr', '127.0.0.1:0',
      '-linger', linger,
      '-axios', join(clientDir, 'node_modules/axios/dist/axios.min.js'),
      ...(apiKeys.length ? ['-api-keys', apiKeys.join(',')] : []),
      ...(keysForPages ? ['-keys-for-pages'] : []),
      ...(corsOrigins.length ? ['-cors-origins', corsOrigins.join(',')] : []),
    ]);
  } catch (err) {
    await bin.cleanup();
    throw err;
  }
  return {
    url: server.url,
    control: new Control(server.url),
    stderr: server.stderr,
    async stop() {
      await server.stop();
      await bin.cleanup();
    },
  };
}

/** Control drives the test server's /test/ routes. */
export class Control {
  constructor(url) {
    this.url = url;
  }

  async #call(method, path, body) {
    let res;
    try {
      res = await fetch(this.url + path, { method, body });
    } catch (err) {
      // A kept-alive connection that the server closed as the request went
      // out (after a test that cut its own connection): the controls are
      // idempotent, so ask once more on a new one.
      if (!(err instanceof TypeError)) throw err;
      res = await fetch(this.url + path, { method, body });
    }
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }

  reset() {
    return this.#call('POST', '/test/reset');
  }

  /** mode sets how the next answers are produced: instant, gated, hang, error, cut, cut-after-done, bytes. */
  mode(mode, params = {}) {
    const q = new URLSearchParams({ mode, ...params });
    return this.#call('POST', `/test/mode?${q}`);
  }

  release() {
    return this.#call('POST', '/test/release');
  }

  /** script makes the next answers' tokens these strings (until reset), the sources still the search's. */
  script(tokens) {
    return this.#call('POST', '/test/script', JSON.stringify(tokens));
  }

  /** expire makes the server forget every run (its Get finds none) until the next reset. */
  expire() {
    return this.#call('POST', '/test/expire');
  }

  state() {
    return this.#call('GET', '/test/state');
  }

  /** until polls the state until pred(state) holds, and returns that state. */
  until(pred, what, timeout) {
    return waitFor(async () => {
      const st = await this.state();
      return pred(st) ? st : undefined;
    }, { what, timeout });
  }
}

/**
 * waitFor calls check until it returns something truthy, and returns it. It
 * waits for a condition, not for a time: the timeout only bounds a failure.
 */
export async function waitFor(check, { what = 'a condition', timeout = 15_000, interval = 10 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** nodeServer starts a Node HTTP server for one test; handler gets (req, res). */
export async function nodeServer(handler) {
  const { createServer } = await import('node:http');
  const srv = createServer(handler);
  srv.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    close: () => {
      srv.closeAllConnections();
      return new Promise((r) => srv.close(r));
    },
  };
}

/** collect reads an ask() iterator to its end: the events, the error it threw, the answer. */
export async function collect(it) {
  const events = [];
  let error;
  try {
    for await (const e of it) events.push(e);
  } catch (err) {
    error = err;
  }
  const answer = events.filter((e) => e.type === 'token').map((e) => e.data).join('');
  return { events, error, answer, types: events.map((e) => e.type) };
}
