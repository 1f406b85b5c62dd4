// Launches Debian's Chromium through playwright-core (never a browser that a
// test tool downloads) with a fresh profile, and collects the page errors.

import { access, constants, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

/** Where screenshots go: web/testoutput/ (git-ignored). */
export const outputDir = fileURLToPath(new URL('../../../testoutput/', import.meta.url));

const executablePath = process.env.RUNNEL_CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  try {
    await access(executablePath, constants.X_OK);
  } catch {
    throw new Error(`No Chromium at ${executablePath}. Install Debian's: apt-get install -y chromium ` +
      '(.ci/run does), or set RUNNEL_CHROMIUM to another Chromium.');
  }
  await mkdir(outputDir, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), 'runnel-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1000, height: 760 },
    colorScheme: 'light',
    reducedMotion: 'reduce', // no blinking caret in screenshots
  });
  return {
    context,
    /** newPage opens a page that records uncaught errors in errors. */
    async newPage() {
      const page = await context.newPage();
      page.errors = [];
      page.on('pageerror', (err) => page.errors.push(err.message));
      return page;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export function shot(name) {
  return join(outputDir, name);
}
