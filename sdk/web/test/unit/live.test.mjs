import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeGateway } from '../fake-gateway.mjs';
import { fakeRealtime, record, sdk, settle, signedIn } from '../helpers.mjs';
import { eventDoc } from '../../build/src/realtime.js';
import { plan, run } from '../../build/src/evaluate.js';

/** Deliver a change event as the realtime channel does. */
const publish = (client, ev) => client.store.applyServer(ev.collection, ev.id, ev.version, eventDoc(ev, client.store), ev.updated_at);

async function setup() {
  const gw = new FakeGateway();
  const { client } = await signedIn(gw.routes());
  const channel = fakeRealtime(client);
  return { gw, client, channel };
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

test('a document listener applies events in version order and drops duplicates', async () => {
  const { gw, client } = await setup();
  gw.write('notes', 'n1', 'create', { title: 'v1' });
  const seen = [];
  sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), (s) => seen.push([s.version, s.data()?.title ?? null]));
  await settle();
  gw.write('notes', 'n1', 'patch', { title: 'v2' });
  gw.write('notes', 'n1', 'patch', { title: 'v3' });
  const [, e2, e3] = gw.events;
  for (const ev of [e3, e2, e3, e2]) publish(client, ev); // late, duplicated, reordered
  await settle();
  gw.write('notes', 'n1', 'delete');
  publish(client, gw.events.at(-1));
  publish(client, e3);
  await settle();
  assert.deepEqual(seen, [[1, 'v1'], [3, 'v3'], [0, null]]);
});

test('a document re-created after a deletion is taken even though its version restarts', async () => {
  const { gw, client } = await setup();
  gw.write('notes', 'n1', 'create', { title: 'first' });
  const seen = [];
  sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), (s) => seen.push(s.data()?.title ?? null));
  await settle();
  const created = gw.events[0];
  gw.write('notes', 'n1', 'delete');
  publish(client, gw.events.at(-1));
  publish(client, created); // a late duplicate of the first creation: stays deleted
  await settle();
  gw.write('notes', 'n1', 'create', { title: 'second' });
  publish(client, gw.events.at(-1));
  await settle();
  assert.deepEqual(seen, ['first', null, 'second']);
});

test('a live query with filter, order and limit equals a fresh query after random writes', async () => {
  const { gw, client } = await setup();
  const rand = random(42);
  for (let i = 0; i < 30; i++) gw.write('notes', `d${i}`, 'create', { status: rand(2) ? 'open' : 'done', priority: rand(6) });
  const wire = { where: [['status', '==', 'open']], order_by: [['priority', 'desc']], limit: 5 };
  const q = sdk.query(sdk.collection(client, 'notes'), sdk.where('status', '==', 'open'), sdk.orderBy('priority', 'desc'), sdk.limit(5));
  let latest = null;
  sdk.onSnapshot(q, (s) => (latest = s.docs.map((d) => d.id)));
  await settle();
  for (let step = 0; step < 150; step++) {
    const id = `d${rand(40)}`;
    const exists = gw.docs.has(`notes/${id}`);
    const r = rand(10);
    if (!exists) gw.write('notes', id, 'create', { status: rand(2) ? 'open' : 'done', priority: rand(6) });
    else if (r < 2) gw.write('notes', id, 'delete');
    else gw.write('notes', id, 'patch', r < 6 ? { priority: rand(6) } : { status: rand(2) ? 'open' : 'done' });
    publish(client, gw.events.at(-1));
    if (rand(4) === 0) publish(client, gw.events[rand(gw.events.length)]); // a stale duplicate
    await settle(3);
    const fresh = run([...gw.docs.values()], plan(wire)).map((d) => d.id);
    assert.deepEqual(latest, fresh, `after step ${step}`);
  }
});

test('a live query refetches when its window runs short while more documents match', async () => {
  const { gw, client } = await setup();
  for (let i = 0; i < 20; i++) gw.write('notes', `d${String(i).padStart(2, '0')}`, 'create', { n: i });
  const q = sdk.query(sdk.collection(client, 'notes'), sdk.orderBy('n'), sdk.limit(3));
  let latest = null;
  sdk.onSnapshot(q, (s) => (latest = s.docs.map((d) => d.data().n)));
  await settle();
  assert.deepEqual(latest, [0, 1, 2]);
  assert.equal(gw.queries, 1);
  for (let i = 0; i < 12; i++) {
    gw.write('notes', `d${String(i).padStart(2, '0')}`, 'delete');
    publish(client, gw.events.at(-1));
    await settle();
  }
  assert.deepEqual(latest, [12, 13, 14]);
  assert.equal(gw.queries, 2, 'one refetch, when 13 fetched documents (limit + slack) fell under the limit');
  gw.write('notes', 'late', 'create', { n: 100 }); // sorts after the window's end: not shown, no refetch
  publish(client, gw.events.at(-1));
  gw.write('notes', 'early', 'create', { n: -1 });
  publish(client, gw.events.at(-1));
  await settle();
  assert.deepEqual(latest, [-1, 12, 13]);
  assert.equal(gw.queries, 2);
});

test('a reconnect whose events could not be recovered refetches; a recovered one does not', async () => {
  const { gw, client, channel } = await setup();
  gw.write('notes', 'a', 'create', { title: 'a' });
  let latest = null;
  let metas = [];
  sdk.onSnapshot(sdk.query(sdk.collection(client, 'notes')), (s) => {
    latest = s.docs.map((d) => d.id);
    metas.push(s.metadata.fromCache);
  });
  await settle();
  assert.equal(gw.queries, 1);
  channel.offline();
  await settle();
  gw.write('notes', 'b', 'create', { title: 'b' }); // missed while offline, no event
  channel.online(false); // recovered: Centrifugo replays what was missed, no refetch
  await settle();
  assert.equal(gw.queries, 1);
  channel.offline();
  channel.online(true); // not recovered
  await settle();
  assert.equal(gw.queries, 2);
  assert.deepEqual(latest, ['a', 'b']);
  assert.deepEqual(metas, [false, true, false, false]);
});

test('a local write shows at once with hasPendingWrites, then the server version', async () => {
  const { gw, client } = await setup();
  gw.write('notes', 'n1', 'create', { title: 'old', body: 'keep' });
  const seen = [];
  sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), (s) => seen.push([s.data()?.title, s.data()?.body, s.version, s.metadata.hasPendingWrites]));
  await settle();
  const done = sdk.updateDoc(sdk.doc(client, 'notes', 'n1'), { title: 'new' });
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(seen.at(-1), ['new', 'keep', 1, true], 'applied before the server answered');
  assert.equal(await done, 2);
  await settle();
  assert.deepEqual(seen, [['old', 'keep', 1, false], ['new', 'keep', 1, true], ['new', 'keep', 2, false]]);
});

test('a refused write is rolled back and its promise rejects with the server\'s error', async () => {
  const { gw, client } = await setup();
  gw.write('notes', 'n1', 'create', { title: 'old' });
  const seen = [];
  const list = [];
  sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), (s) => seen.push([s.data()?.title, s.metadata.hasPendingWrites]));
  sdk.onSnapshot(sdk.query(sdk.collection(client, 'notes')), (s) => list.push(s.docs.map((d) => d.id)));
  await settle();
  const stale = sdk.updateDoc(sdk.doc(client, 'notes', 'n1'), { title: 'mine' }, { ifVersion: 7 });
  await assert.rejects(stale, (e) => e.code === 'version_mismatch' && e.status === 412);
  gw.refuseNext = { status: 403, headers: { get: () => null }, text: async () => JSON.stringify({ error: { code: 'forbidden', message: 'no' } }) };
  const before = list.length;
  const added = sdk.addDoc(sdk.collection(client, 'notes'), { title: 'x' }).catch((e) => e);
  await settle(1);
  const refused = await added;
  assert.deepEqual([refused.code, refused.status], ['forbidden', 403]);
  await settle();
  assert.deepEqual(seen, [['old', false], ['mine', true], ['old', false]]);
  assert.deepEqual(list.slice(before).map((ids) => ids.length), [2, 1], 'the new document showed at once, then went away');
  assert.deepEqual(list.at(-1), ['n1']);
});

test('a write that cannot reach the server stays queued and is retried in order', async () => {
  const { gw, client } = await setup();
  gw.write('notes', 'n1', 'create', { n: 0 });
  const routes = gw.routes();
  let offline = true;
  const real = client.http.fetchImpl;
  client.http.fetchImpl = async (url, init) => {
    if (offline && init.method === 'PATCH') throw new TypeError('fetch failed');
    return real(url, init);
  };
  const ref = sdk.doc(client, 'notes', 'n1');
  const order = [];
  const w1 = sdk.updateDoc(ref, { n: 1 }).then((v) => order.push(['w1', v]));
  const w2 = sdk.updateDoc(ref, { n: 2 }).then((v) => order.push(['w2', v]));
  await settle(3);
  assert.equal(client.writes.size, 2);
  offline = false;
  client.writes.retryNow();
  await Promise.all([w1, w2]);
  assert.deepEqual(order, [['w1', 2], ['w2', 3]]);
  assert.equal(gw.docs.get('notes/n1').data.n, 2);
  void routes;
});

test('stopping a listener stops its callbacks', async () => {
  const { gw, client } = await setup();
  gw.write('notes', 'n1', 'create', { title: 'a' });
  let calls = 0;
  const stop = sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), () => calls++);
  await settle();
  stop();
  gw.write('notes', 'n1', 'patch', { title: 'b' });
  publish(client, gw.events.at(-1));
  await settle();
  assert.equal(calls, 1);
});

test('events are turned into documents with what is known of them', () => {
  const store = { known: () => ({ doc: record({ id: 'x', created_at: '2026-01-01T00:00:00.000Z' }) }) };
  const ev = { type: 'updated', collection: 'notes', id: 'x', version: 2, owner_id: 'u1', data: { a: 1 }, updated_at: '2026-02-01T00:00:00.000Z' };
  assert.equal(eventDoc(ev, store).created_at, '2026-01-01T00:00:00.000Z');
  assert.equal(eventDoc({ ...ev, type: 'created' }, store).created_at, ev.updated_at);
  assert.equal(eventDoc({ ...ev, type: 'deleted', data: null }, store), null);
});

test('an access change at the same version hides and shows the document (a looked-up document changed)', async () => {
  const { gw, client } = await setup();
  gw.write('tasks', 'k1', 'create', { title: 'a', team_id: 't1' });
  const seenDoc = [];
  const seenQuery = [];
  sdk.onSnapshot(sdk.doc(client, 'tasks', 'k1'), (s) => seenDoc.push([s.version, s.data()?.title ?? null]));
  sdk.onSnapshot(sdk.collection(client, 'tasks'), (s) => seenQuery.push(s.docs.map((d) => d.id)));
  await settle();
  const created = gw.events[0];
  // the gateway's events when the team drops this reader, then lets them in again: version unchanged
  const removed = { ...created, type: 'removed', data: null };
  const regained = { ...created, type: 'updated' };
  publish(client, removed);
  publish(client, removed); // a duplicate changes nothing
  await settle();
  publish(client, regained);
  publish(client, regained);
  await settle();
  assert.deepEqual(seenDoc, [[1, 'a'], [0, null], [1, 'a']]);
  assert.deepEqual(seenQuery, [['k1'], [], ['k1']]);
});
