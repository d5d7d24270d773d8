// The SDK (the published bundle, dist/index.js) against a real gateway + Centrifugo + auth core.
// Started by tests/integration/test_sdk_node.py, which passes TELESTACK_GATEWAY_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as sdk from '../../dist/index.js';
import { open, url } from './stack.mjs';

const PASSWORD = 'correct horse 1';

async function user() {
  const client = open({ websocket: WebSocket });
  const email = `sdk-${Math.random().toString(36).slice(2, 12)}@example.com`;
  const me = await sdk.signUp(client, email, PASSWORD);
  return { client, me, notes: sdk.collection(client, 'notes') };
}

/** Resolves when `check()` holds, polling; fails with `what` after `ms`. */
async function until(check, what, ms = 15000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** mulberry32: a small seeded PRNG (an LCG's low bits alternate, which made every status the same) */
function random(seed) {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

test('A\'s listener gets A\'s private writes and never B\'s', async () => {
  const a = await user();
  const b = await user();
  const seenByA = new Set();
  const seenByB = new Set();
  let latestA = [];
  const stopA = sdk.onSnapshot(sdk.query(a.notes, sdk.limit(50)), (s) => {
    latestA = s.docs.map((d) => d.id);
    latestA.forEach((id) => seenByA.add(id));
  });
  const stopB = sdk.onSnapshot(sdk.query(b.notes, sdk.limit(50)), (s) => s.docs.forEach((d) => seenByB.add(d.id)));
  const sharedId = `doc-${Math.random().toString(36).slice(2)}`;
  const docA = sdk.doc(a.client, 'notes', sharedId);
  const docEvents = [];
  const stopDoc = sdk.onSnapshot(docA, (s) => docEvents.push(s.exists() ? s.data().title : null));
  await until(() => docEvents.length > 0, 'first doc snapshot');

  const mineA = [];
  for (let i = 0; i < 3; i++) mineA.push((await sdk.addDoc(a.notes, { title: `a${i}` })).id);
  const mineB = (await sdk.addDoc(b.notes, { title: 'b0' })).id;
  await sdk.setDoc(docA, { title: 'from A' });
  // B cannot write A's document (ids are per collection; A's stays hidden from B)
  const refused = await sdk.setDoc(sdk.doc(b.client, 'notes', sharedId), { title: 'from B' }).catch((e) => e);
  assert.ok(refused instanceof sdk.TelestackError && refused.status >= 400, 'B overwrote A\'s document');

  await until(() => mineA.every((id) => latestA.includes(id)), 'A sees its notes');
  await until(() => seenByB.has(mineB), 'B sees its note');
  await until(() => docEvents.at(-1) === 'from A', 'A\'s document listener');
  // give B's events time to (wrongly) arrive
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!seenByA.has(mineB), 'A saw B\'s note');
  for (const id of mineA) assert.ok(!seenByB.has(id), 'B saw A\'s note');
  assert.ok(!docEvents.includes('from B'), 'A\'s document listener saw B\'s document');
  assert.equal((await sdk.getDoc(docA)).data().title, 'from A');
  stopA();
  stopB();
  stopDoc();
  await sdk.signOut(a.client);
  await sdk.signOut(b.client);
  sdk.terminate(a.client);
  sdk.terminate(b.client);
});

test('a live query with a filter and a limit equals a fresh getDocs after a sequence of writes', async () => {
  const a = await user();
  const live = sdk.query(a.notes, sdk.where('status', '==', 'open'), sdk.orderBy('priority', 'desc'), sdk.limit(5));
  let latest = null;
  const stop = sdk.onSnapshot(live, (s) => (latest = s));
  await until(() => latest !== null, 'first snapshot');
  const rand = random(7);
  const ids = [];
  const writes = [];
  for (let step = 0; step < 60; step++) {
    const r = rand(10);
    if (ids.length < 4 || r < 4) {
      const ref = sdk.doc(a.notes);
      ids.push(ref.id);
      writes.push(sdk.setDoc(ref, { title: `n${step}`, status: rand(2) ? 'open' : 'done', priority: rand(6) }));
    } else if (r < 6) {
      const [id] = ids.splice(rand(ids.length), 1);
      writes.push(sdk.deleteDoc(sdk.doc(a.client, 'notes', id)));
    } else {
      const id = ids[rand(ids.length)];
      const patch = r < 8 ? { priority: rand(6) } : { status: rand(2) ? 'open' : 'done' };
      writes.push(sdk.updateDoc(sdk.doc(a.client, 'notes', id), patch));
    }
  }
  await Promise.all(writes);
  const signature = (snap) => snap.docs.map((d) => `${d.id}@${d.version}`).join(',');
  let fresh = '';
  await until(async () => {
    fresh = signature(await sdk.getDocs(live));
    return !latest.metadata.hasPendingWrites && signature(latest) === fresh;
  }, `live query converges on the fresh one`);
  assert.equal(latest.metadata.fromCache, false);
  assert.ok(latest.size > 0 && latest.size <= 5);
  assert.equal(signature(latest), fresh);
  stop();
  sdk.terminate(a.client);
});

test('updateDoc with a stale ifVersion rejects with version_mismatch; the listener rolls back', async () => {
  const a = await user();
  const ref = await sdk.addDoc(a.notes, { title: 'v1' });
  assert.equal(await sdk.updateDoc(ref, { title: 'v2' }, { ifVersion: 1 }), 2);
  const seen = [];
  const stop = sdk.onSnapshot(ref, (s) => seen.push([s.data().title, s.version, s.metadata.hasPendingWrites]));
  await until(() => seen.length > 0, 'first snapshot');
  const err = await sdk.updateDoc(ref, { title: 'stale' }, { ifVersion: 1 }).catch((e) => e);
  assert.ok(err instanceof sdk.TelestackError);
  assert.deepEqual([err.code, err.status], ['version_mismatch', 412]);
  await until(() => seen.at(-1)[0] === 'v2' && !seen.at(-1)[2], 'rolled back');
  assert.deepEqual(seen, [['v2', 2, false], ['stale', 2, true], ['v2', 2, false]]);
  assert.equal((await sdk.getDoc(ref)).data().title, 'v2');
  stop();
  sdk.terminate(a.client);
});

test('the refused caller: no session means 401 unauthenticated, a wrong password 401 invalid_credentials', async () => {
  const anon = open({});
  const err = await sdk.getDocs(sdk.collection(anon, 'notes')).catch((e) => e);
  assert.deepEqual([err.code, err.status], ['unauthenticated', 401]);
  const bad = await sdk.signIn(anon, 'nobody@example.com', 'wrong password').catch((e) => e);
  assert.deepEqual([bad.code, bad.status], ['invalid_credentials', 401]);
});

test('access tokens (4 s here) are renewed before they expire, without the app noticing', async () => {
  const refreshes = [];
  const expiredSent = [];
  const counting = (u, init) => {
    if (u.endsWith('/v1/auth/refresh')) refreshes.push(Date.now());
    const bearer = init.headers.authorization?.split('.')[1];
    if (bearer) {
      const { exp } = JSON.parse(Buffer.from(bearer, 'base64url').toString());
      if (exp * 1000 <= Date.now()) expiredSent.push(u);
    }
    return fetch(u, init);
  };
  const client = open({ fetch: counting, websocket: WebSocket });
  await sdk.signUp(client, `renew-${Math.random().toString(36).slice(2, 12)}@example.com`, PASSWORD);
  const notes = sdk.collection(client, 'notes');
  let latest = [];
  const stop = sdk.onSnapshot(sdk.query(notes), (s) => (latest = s.docs.map((d) => d.data().title)));
  const titles = [];
  for (let i = 0; i < 4; i++) {
    titles.push(`t${i}`);
    await sdk.addDoc(notes, { title: `t${i}` });
    await new Promise((r) => setTimeout(r, 2000));
  }
  await until(() => latest.length === 4, 'the listener saw every write');
  assert.deepEqual([...latest].sort(), titles);
  assert.ok(refreshes.length >= 1, 'renewed at least once over 8 s of 4 s tokens');
  assert.deepEqual(expiredSent, [], 'an expired access token was sent');
  assert.ok(sdk.currentUser(client));
  stop();
  sdk.terminate(client);
});
