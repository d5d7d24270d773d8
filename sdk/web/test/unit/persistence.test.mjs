// The persisted write queue and document cache, with memoryPersistence() standing in for IndexedDB
// (same interface): a second client over the same persistence and storage is a reloaded page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { error, fakeFetch, fakeRealtime, record, reply, sdk, settle, tokens, URL } from '../helpers.mjs';

const NETWORK_DOWN = () => Promise.reject(new TypeError('fetch failed'));

/** A page: a client over `routes`, sharing `storage` (the session) and `persistence` with its reloads. */
function page(routes, shared, options = {}) {
  const fake = fakeFetch(routes);
  let online = true;
  const fetch = (url, init) => (online ? fake.fetch(url, init) : NETWORK_DOWN());
  const client = sdk.createClient({ url: URL, fetch, storage: shared.storage, persistence: shared.persistence, ...options });
  const realtime = fakeRealtime(client);
  return { client, calls: fake.calls, realtime, setOnline: (v) => (online = v) };
}

async function signedInShared() {
  const shared = { storage: sdk.memoryStorage(), persistence: sdk.memoryPersistence() };
  const first = page({ 'POST /v1/auth/signin': () => reply(200, tokens()) }, shared);
  await sdk.signIn(first.client, 'a@example.com', 'password1');
  return { shared, first };
}

test('writes queued offline survive a reload and are sent in the order they were made', async () => {
  const { shared, first } = await signedInShared();
  first.setOnline(false);
  const notes = sdk.collection(first.client, 'notes');
  void sdk.setDoc(sdk.doc(notes, 'n1'), { title: 'one' });
  void sdk.updateDoc(sdk.doc(notes, 'n1'), { title: 'two' });
  void sdk.deleteDoc(sdk.doc(notes, 'n0'));
  await settle();
  const saved = await shared.persistence.load();
  assert.equal(saved.user, 'u1');
  assert.deepEqual(saved.writes.map((w) => w.ops[0].op), ['set', 'patch', 'delete']);
  sdk.terminate(first.client);

  const sent = [];
  const log = (status, body, headers) => (call) => (sent.push(`${call.method} ${call.path}`), reply(status, body(call), headers));
  const second = page(
    {
      'PUT /v1/collections/notes/documents/n1': log(404, () => ({ error: { code: 'not_found', message: 'x' } })),
      'POST /v1/collections/notes/documents': log(201, (c) => record({ id: c.body.id, data: c.body.data, version: 1 })),
      'PATCH /v1/collections/notes/documents/n1': log(200, () => record({ id: 'n1', data: { title: 'two' }, version: 2 })),
      'DELETE /v1/collections/notes/documents/n0': log(204, () => undefined, { etag: '"5"' }),
    },
    shared,
  );
  // a write made by the reloaded page goes after the restored ones
  const later = sdk.addDoc(sdk.collection(second.client, 'notes'), { title: 'later' });
  await later;
  assert.deepEqual(sent, [
    'PUT /v1/collections/notes/documents/n1',
    'POST /v1/collections/notes/documents',
    'PATCH /v1/collections/notes/documents/n1',
    'DELETE /v1/collections/notes/documents/n0',
    'POST /v1/collections/notes/documents',
  ]);
  await settle();
  assert.deepEqual((await shared.persistence.load()).writes, []);
  sdk.terminate(second.client);
});

test('a restored write the server refuses (412) reaches onWriteError once; the listener rolls back and stays live', async () => {
  const { shared, first } = await signedInShared();
  const base = record({ id: 'n1', data: { title: 'server' }, version: 3 });
  first.setOnline(false);
  void sdk.updateDoc(sdk.doc(first.client, 'notes', 'n1'), { title: 'mine' }, { ifVersion: 2 });
  await settle();
  sdk.terminate(first.client);

  const refused = [];
  const second = page(
    {
      'GET /v1/collections/notes/documents/n1': () => reply(200, base),
      'PATCH /v1/collections/notes/documents/n1': () => error(412, 'version_mismatch'),
    },
    shared,
    { onWriteError: (err, write) => refused.push([err.code, err.status, write.ops[0].data.title]) },
  );
  const seen = [];
  const listenerErrors = [];
  sdk.onSnapshot(
    sdk.doc(second.client, 'notes', 'n1'),
    (s) => seen.push([s.data()?.title, s.metadata.hasPendingWrites]),
    (err) => listenerErrors.push(err.code),
  );
  for (let i = 0; i < 20 && !refused.length; i++) await settle();
  await settle();
  assert.deepEqual(refused, [['version_mismatch', 412, 'mine']]);
  assert.deepEqual(seen.at(-1), ['server', false]);
  // Firestore's contract: the error callback ends a listener, so a refused write never goes there
  assert.deepEqual(listenerErrors, []);
  const later = record({ id: 'n1', data: { title: 'later' }, version: 4 });
  second.client.store.applyServer('notes', 'n1', 4, later, later.updated_at);
  await settle();
  assert.deepEqual(seen.at(-1), ['later', false], 'the listener stopped after the refused write');
  assert.equal(refused.length, 1);
  sdk.terminate(second.client);
});

test('a restored write that fails with a non-server error still reaches onWriteError, as a TelestackError', async () => {
  const { shared, first } = await signedInShared();
  first.setOnline(false);
  void sdk.updateDoc(sdk.doc(first.client, 'notes', 'n1'), { title: 'mine' });
  await settle();
  sdk.terminate(first.client);

  const refused = [];
  const second = page(
    { 'PATCH /v1/collections/notes/documents/n1': () => reply(200, null) }, // a malformed answer
    shared,
    { onWriteError: (err, write) => refused.push([err instanceof sdk.TelestackError, err.code, write.ops[0].id]) },
  );
  for (let i = 0; i < 20 && !refused.length; i++) await settle();
  assert.deepEqual(refused, [[true, 'internal', 'n1']]);
  sdk.terminate(second.client);
});

test('cached documents answer a query listener offline after a reload, marked fromCache', async () => {
  const { shared, first } = await signedInShared();
  const docs = [record({ id: 'a', data: { title: 'A', status: 'open' } }), record({ id: 'b', data: { title: 'B', status: 'done' } })];
  const online = page({ 'POST /v1/collections/notes/query': () => reply(200, { documents: docs, next_cursor: null }) }, shared);
  await sdk.getDocs(sdk.collection(online.client, 'notes'));
  await new Promise((res) => setTimeout(res, 120)); // the cache is saved in batches
  assert.equal((await shared.persistence.load()).documents.length, 2);
  sdk.terminate(online.client);
  sdk.terminate(first.client);

  const offline = page({}, shared);
  offline.setOnline(false);
  offline.client.realtime.watch = async () => Promise.reject(new sdk.TelestackError('network_error', 0, 'offline'));
  const seen = [];
  const open = sdk.query(sdk.collection(offline.client, 'notes'), sdk.where('status', '==', 'open'));
  sdk.onSnapshot(open, (s) => seen.push([s.docs.map((d) => d.id), s.metadata.fromCache]));
  for (let i = 0; i < 20 && !seen.length; i++) await settle();
  assert.deepEqual(seen.at(-1), [['a'], true]);
  sdk.terminate(offline.client);
});

test('what another user left is cleared, never replayed or shown', async () => {
  const { shared, first } = await signedInShared();
  first.setOnline(false);
  void sdk.updateDoc(sdk.doc(first.client, 'notes', 'n1'), { title: 'u1 only' });
  await settle();
  sdk.terminate(first.client);
  await shared.storage.removeItem(`telestack:${URL}:session`);

  const other = tokens({ id: 'u2', email: 'b@example.com' });
  const second = page({ 'POST /v1/auth/signin': () => reply(200, other) }, shared);
  await sdk.signIn(second.client, 'b@example.com', 'password1');
  await settle();
  assert.ok(!second.calls.some((c) => c.method === 'PATCH'), 'u1\'s write was sent in u2\'s session');
  const saved = await shared.persistence.load();
  assert.deepEqual([saved.writes, saved.documents], [[], []]);
  sdk.terminate(second.client);
});
