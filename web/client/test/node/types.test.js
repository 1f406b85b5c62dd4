// The TypeScript declarations compile, and match the API as documented.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { clientDir } from '../support/server.js';

test('the .d.ts files type-check an example of every entry point', async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [tsc, '-p', 'test/types'], { cwd: clientDir })
    .catch((err) => err);
  assert.equal(`${stdout}${stderr}`.trim(), '', 'tsc reported errors');
});
