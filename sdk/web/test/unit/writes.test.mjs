import { test } from 'node:test';
import assert from 'node:assert/strict';
import { error, fakeRealtime, record, reply, sdk, settle, signedIn } from '../helpers.mjs';

test('writeBatch encodes each write for /v1/batch and resolves with the versions', async () => {
  const { client, calls } = await signedIn({
    'POST /v1/batch': () =>
      reply(200, {
        results: [
          { op: 'create', document: record({ id: 'a', version: 1 }) },
          { op: 'replace', document: record({ id: 'b', version: 4 }) },
          { op: 'patch', document: record({ id: 'c', version: 8, collection: 'posts' }) },
          { op: 'delete', collection: 'notes', id: 'd', version: 3 },
        ],
      }),
  });
  const batch = sdk.writeBatch(client);
  batch
    .create(sdk.doc(client, 'notes', 'a'), { title: 'A' })
    .set(sdk.doc(client, 'notes', 'b'), { title: 'B' }, { ifVersion: 3 })
    .update(sdk.doc(client, 'posts', 'c'), { title: null, body: 'x' })
    .delete(sdk.doc(client, 'notes', 'd'), { ifVersion: 2 });
  assert.deepEqual(await batch.commit(), [1, 4, 8, 3]);
  assert.deepEqual(calls[0].body, {
    writes: [
      { op: 'create', collection: 'notes', id: 'a', data: { title: 'A' } },
      { op: 'replace', collection: 'notes', id: 'b', data: { title: 'B' }, if_match: 3 },
      { op: 'patch', collection: 'posts', id: 'c', data: { title: null, body: 'x' } },
      { op: 'delete', collection: 'notes', id: 'd', if_match: 2 },
    ],
  });
  await assert.rejects(batch.commit(), (e) => e.code === 'invalid_request');
});

test('single writes use the document routes; deleteDoc reads the version from the ETag', async () => {
  const { client, calls } = await signedIn({
    'POST /v1/collections/notes/documents': (call) => reply(201, record({ id: call.body.id, data: call.body.data })),
    'PUT /v1/collections/notes/documents/n1': () => reply(200, record({ id: 'n1', version: 2 })),
    'PATCH /v1/collections/notes/documents/n1': () => reply(200, record({ id: 'n1', version: 3 })),
    'DELETE /v1/collections/notes/documents/n1': () => reply(204, undefined, { etag: '"4"' }),
  });
  const ref = await sdk.addDoc(sdk.collection(client, 'notes'), { title: 'hello' });
  assert.match(ref.id, /^[A-Za-z0-9]{20}$/);
  assert.deepEqual(calls[0].body, { id: ref.id, data: { title: 'hello' } });
  const n1 = sdk.doc(client, 'notes', 'n1');
  assert.equal(await sdk.setDoc(n1, { title: 'x' }), 2);
  assert.equal(await sdk.updateDoc(n1, { body: 'y' }, { ifVersion: 2 }), 3);
  assert.equal(calls[2].headers['if-match'], '"2"');
  assert.equal(await sdk.deleteDoc(n1), 4);
  assert.deepEqual(calls.map((c) => c.method), ['POST', 'PUT', 'PATCH', 'DELETE']);
});

test('setDoc creates the document when the PUT finds none; not with ifVersion', async () => {
  const { client, calls } = await signedIn({
    'PUT *': () => error(404, 'not_found'),
    'POST /v1/collections/notes/documents': (call) => reply(201, record({ id: call.body.id })),
  });
  assert.equal(await sdk.setDoc(sdk.doc(client, 'notes', 'new1'), { title: 'x' }), 1);
  assert.deepEqual(calls.map((c) => `${c.method} ${c.body?.id ?? ''}`), ['PUT ', 'POST new1']);
  await assert.rejects(sdk.setDoc(sdk.doc(client, 'notes', 'new2'), { title: 'x' }, { ifVersion: 1 }), (e) => e.code === 'not_found');
});

test('a refused write: its promise rejects, listeners roll back and stay live, onWriteError is not called', async () => {
  const writeErrors = [];
  const { client } = await signedIn(
    {
      'GET /v1/collections/notes/documents/n1': () => reply(200, record({ id: 'n1', data: { title: 'server' }, version: 2 })),
      'PATCH /v1/collections/notes/documents/n1': () => error(403, 'forbidden'),
    },
    { onWriteError: (err) => writeErrors.push(err.code) },
  );
  fakeRealtime(client);
  const seen = [];
  const listenerErrors = [];
  sdk.onSnapshot(sdk.doc(client, 'notes', 'n1'), (s) => seen.push([s.data().title, s.metadata.hasPendingWrites]), (e) => listenerErrors.push(e.code));
  for (let i = 0; i < 20 && !seen.length; i++) await settle();
  await assert.rejects(sdk.updateDoc(sdk.doc(client, 'notes', 'n1'), { title: 'mine' }), (e) => e.code === 'forbidden' && e.status === 403);
  await settle();
  assert.deepEqual(seen, [['server', false], ['mine', true], ['server', false]]);
  assert.deepEqual([listenerErrors, writeErrors], [[], []], 'the promise holder alone gets the refusal');
  const later = record({ id: 'n1', data: { title: 'later' }, version: 3 });
  client.store.applyServer('notes', 'n1', 3, later, later.updated_at);
  await settle();
  assert.deepEqual(seen.at(-1), ['later', false]);
  sdk.terminate(client);
});
