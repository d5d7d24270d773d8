// Local write -> the writer's own listener, in Node (the browser figure comes with the browser tests):
// p50/p99 over 200 updateDoc calls, the server answering after 5 ms. Run after `npm run build`.
import * as sdk from '../build/src/index.js';
import { performance } from 'node:perf_hooks';

const doc = (version, data) => ({ id: 'n1', collection: 'notes', owner_id: 'u1', version, created_at: '2026-12-01T00:00:00.000Z', updated_at: '2026-12-01T00:00:00.000Z', data });
let version = 1;
const answer = (status, body) => ({ status, headers: { get: () => null }, text: async () => JSON.stringify(body) });
const fetch = async (url, init) => {
  await new Promise((r) => setTimeout(r, 5));
  if (url.endsWith('/signin')) return answer(200, { user: { id: 'u1', email: 'a@b.c' }, access_token: 'x', access_token_expires_at: Date.now() + 9e5, refresh_token: 'r' });
  if (init.method === 'GET') return answer(200, doc(version, { n: -1 }));
  return answer(200, doc(++version, JSON.parse(init.body).data));
};
const client = sdk.createClient({ url: 'http://bench', fetch, storage: sdk.memoryStorage() });
client.realtime.watch = async (_c, w) => (queueMicrotask(() => w.online(true)), () => {});
await sdk.signIn(client, 'a@b.c', 'password1');
let waiting = null;
const stop = sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), (s) => {
  if (waiting && s.data().n === waiting.n) waiting.resolve(performance.now());
});
await new Promise((r) => setTimeout(r, 50));
const ms = [];
for (let n = 0; n < 200; n++) {
  const seen = new Promise((resolve) => (waiting = { n, resolve }));
  const t0 = performance.now();
  const write = sdk.updateDoc(sdk.doc(client, 'notes', 'n1'), { n });
  ms.push((await seen) - t0);
  await write;
}
stop();
ms.sort((a, b) => a - b);
const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(3);
console.log(`local write -> own listener (Node, 200 writes): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
sdk.terminate(client);
