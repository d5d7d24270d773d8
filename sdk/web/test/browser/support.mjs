// What the real-browser tests and the benchmark share: the page server (another origin than the
// gateway), the distribution's Chromium through puppeteer-core, pages signed in as new users.
// Started by tests/integration/test_sdk_browser.py, which passes the environment read below.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

export const gateway = process.env.TELESTACK_GATEWAY_URL;
const pagePort = Number(process.env.TELESTACK_PAGE_PORT);
const bundle = process.env.TELESTACK_SDK_BUNDLE;
assert.ok(gateway && pagePort && bundle, 'TELESTACK_GATEWAY_URL, TELESTACK_PAGE_PORT and TELESTACK_SDK_BUNDLE are required');
export const origin = `http://127.0.0.1:${pagePort}`;
export const PASSWORD = 'correct horse 1';

const here = fileURLToPath(new URL('.', import.meta.url));
const app = fileURLToPath(new URL('../../../../examples/notes-web/', import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

/** Serves the example app at /, the harness at /harness.html and the SDK bundle at /telestack.js. */
export function servePages() {
  const server = createServer(async (req, res) => {
    const path = normalize(new URL(req.url, origin).pathname);
    const file =
      path === '/telestack.js' ? bundle : path === '/harness.html' ? join(here, 'harness.html') : join(app, path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(pagePort, '127.0.0.1', () => resolve(server)));
}

export function launch() {
  return puppeteer.launch({
    executablePath: process.env.TELESTACK_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // root in CI has no user namespaces for the sandbox; the pages are our own, on loopback
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

export const email = () => `browser-${Math.random().toString(36).slice(2, 12)}@example.com`;

/** A page on the harness in a browser context of its own (its own storage, IndexedDB, cookies). */
export async function harness(browser) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto(`${origin}/harness.html?gateway=${encodeURIComponent(gateway)}`);
  await page.waitForFunction(() => window.t);
  return { context, page };
}

/** A harness page whose client signed up as a new user; resolves with { context, page, user, email }. */
export async function newUser(browser, persist = null) {
  const h = await harness(browser);
  const address = email();
  const user = await h.page.evaluate(
    async (address, password, persist) => {
      t.open(persist);
      return sdk.signUp(t.client, address, password);
    },
    address,
    PASSWORD,
    persist,
  );
  return { ...h, user, email: address };
}

/** Waits until `fn(arg)` is true in the page (polling), failing with `what`. */
export async function until(page, what, fn, arg = null, timeout = 20000) {
  try {
    await page.waitForFunction(fn, { timeout, polling: 50 }, arg);
  } catch (err) {
    assert.fail(`timed out: ${what} (${err.message.split('\n')[0]})`);
  }
}

/** mulberry32: a small seeded PRNG */
export function random(seed) {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}
