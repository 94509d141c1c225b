// A headless Chromium for console tests: playwright-core drives Debian's chromium
// (no browser download). Skips without it, and fails under ADMP_E2E=1.
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { requirePackage } from './requires.js';

export const CHROMIUM = process.env.ADMP_CHROMIUM ?? '/usr/bin/chromium';

/** A launched browser, or undefined when the test was skipped. */
export async function launchBrowser(t: TestContext): Promise<Browser | undefined> {
  if (!requirePackage(t, existsSync(CHROMIUM), `needs Debian's chromium at ${CHROMIUM}`)) return undefined;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for the sandbox; the rest keeps
    // the browser off the network and quiet on a shared 2-core machine.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-extensions',
      '--disable-sync',
      '--metrics-recording-only',
      '--no-first-run',
      '--mute-audio',
    ],
  });
  t.after(() => browser.close());
  return browser;
}
