// Benchmark (figures, not pass/fail), in headless Chromium on the local stack:
//   local:  a write made in page A, until A's own live query shows it (latency compensation);
//   remote: the same write, until page B's live query (another browser context, another user) shows
//           it: HTTP write -> commit -> outbox -> Centrifugo -> WebSocket -> B's SDK -> B's callback.
// Both over WRITES writes made one after another (each awaited), after WARMUP unmeasured ones. Times are
// performance.timeOrigin + performance.now() in each page (one machine, one clock).
// Run through scripts/bench_sdk_browser.py, which starts the services and passes the environment.
import { launch, newUser, servePages } from './support.mjs';

const WRITES = Number(process.env.BENCH_WRITES ?? 200);
const WARMUP = 10;

const server = await servePages();
const browser = await launch();
try {
  const a = await newUser(browser);
  const b = await newUser(browser);
  // each page records, per title, when its listener first showed the post
  const listen = () => {
    t.seen = {};
    const q = sdk.query(sdk.collection(t.client, 'posts'), sdk.orderBy('published_at', 'desc'), sdk.limit(5));
    t.listen('bench', q);
    sdk.onSnapshot(q, (s) => {
      const now = performance.timeOrigin + performance.now();
      for (const d of s.docs) t.seen[d.data().title] ??= now;
    });
  };
  await a.page.evaluate(listen);
  await b.page.evaluate(listen);
  await a.page.waitForFunction(() => t.events.bench?.length && !t.last('bench').meta.fromCache);
  await b.page.waitForFunction(() => t.events.bench?.length && !t.last('bench').meta.fromCache);
  const sent = await a.page.evaluate(async (n) => {
    const sent = {};
    for (let i = 0; i < n; i++) {
      const title = `bench-${i}`;
      sent[title] = performance.timeOrigin + performance.now();
      await sdk.addDoc(sdk.collection(t.client, 'posts'), { title, published_at: 1e12 + i });
    }
    return sent;
  }, WRITES + WARMUP);
  await b.page.waitForFunction((last) => t.seen[last] !== undefined, { timeout: 30000 }, `bench-${WRITES + WARMUP - 1}`);
  const seenA = await a.page.evaluate(() => t.seen);
  const seenB = await b.page.evaluate(() => t.seen);
  const latencies = (seen) =>
    Object.keys(sent)
      .filter((title) => Number(title.split('-')[1]) >= WARMUP && seen[title] !== undefined)
      .map((title) => seen[title] - sent[title])
      .sort((x, y) => x - y);
  const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
  for (const [name, xs] of [['local write -> own listener', latencies(seenA)], ['write in A -> listener in B', latencies(seenB)]]) {
    console.log(`${name.padEnd(30)} n=${xs.length}  p50 ${pct(xs, 50).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  max ${xs.at(-1).toFixed(2)} ms`);
  }
  console.log(`chromium ${await browser.version()}; page ${a.page.url().split('/harness')[0]}, writes awaited one at a time`);
} finally {
  await browser.close();
  server.close();
}
