import { test } from 'node:test';
import assert from 'node:assert/strict';
import { error, record, reply, sdk, signedIn } from '../helpers.mjs';

test('errors carry the gateway\'s code, status and message', async () => {
  const { client } = await signedIn({
    'PATCH *': (call) => {
      assert.equal(call.headers['if-match'], '"3"');
      return error(412, 'version_mismatch', 'document is at version 4');
    },
  });
  const err = await sdk.updateDoc(sdk.doc(client, 'notes', 'n1'), { title: 'x' }, { ifVersion: 3 }).catch((e) => e);
  assert.ok(err instanceof sdk.TelestackError);
  assert.ok(err instanceof Error);
  assert.deepEqual([err.code, err.status, err.message], ['version_mismatch', 412, 'document is at version 4']);
});

test('an error carries the request id of the refused request: the body\'s, else the header\'s', async () => {
  const { client } = await signedIn({
    'GET /v1/collections/notes/documents/n1': () =>
      reply(403, { error: { code: 'forbidden', message: 'not yours', request_id: 'req-from-body-1' } },
        { 'X-Request-Id': 'req-from-body-1' }),
    'GET /v1/collections/notes/documents/n2': () => reply(502, '<html>bad gateway</html>', { 'x-request-id': 'req-header-only' }),
    'GET /v1/collections/notes/documents/n3': () => error(500, 'internal'),
  });
  const fromBody = await sdk.getDoc(sdk.doc(client, 'notes', 'n1')).catch((e) => e);
  assert.deepEqual([fromBody.code, fromBody.requestId], ['forbidden', 'req-from-body-1']);
  const fromHeader = await sdk.getDoc(sdk.doc(client, 'notes', 'n2')).catch((e) => e);
  assert.deepEqual([fromHeader.code, fromHeader.requestId], ['http_502', 'req-header-only']);
  const none = await sdk.getDoc(sdk.doc(client, 'notes', 'n3')).catch((e) => e);
  assert.deepEqual([none.code, none.requestId], ['internal', null]);
});

test('an error without an answer has no request id', async () => {
  const { client } = await signedIn({
    'GET *': () => {
      throw new TypeError('fetch failed');
    },
  });
  const err = await sdk.getDoc(sdk.doc(client, 'notes', 'n1')).catch((e) => e);
  assert.deepEqual([err.code, err.requestId], ['network_error', null]);
});

test('a non-JSON error answer still becomes a TelestackError', async () => {
  const { client } = await signedIn({ 'GET *': () => reply(502, '<html>bad gateway</html>') });
  const err = await sdk.getDoc(sdk.doc(client, 'notes', 'n1')).catch((e) => e);
  assert.deepEqual([err.code, err.status], ['http_502', 502]);
});

test('no answer at all is network_error with status 0', async () => {
  const { client } = await signedIn({
    'GET *': () => {
      throw new TypeError('fetch failed');
    },
  });
  const err = await sdk.getDoc(sdk.doc(client, 'notes', 'n1')).catch((e) => e);
  assert.deepEqual([err.code, err.status], ['network_error', 0]);
});

test('the read-consistency bookmark rides from each response to the next request', async () => {
  let n = 0;
  const { client, calls } = await signedIn({
    'GET *': () => reply(200, record({ id: 'n1' }), ++n === 2 ? { 'x-telestack-bookmark': 'bm-2' } : n === 3 ? { 'X-Telestack-Bookmark': 'bm-3' } : {}),
  });
  const ref = sdk.doc(client, 'notes', 'n1');
  for (let i = 0; i < 4; i++) await sdk.getDoc(ref);
  assert.deepEqual(calls.map((c) => c.headers['x-telestack-bookmark']), [undefined, undefined, 'bm-2', 'bm-3']);
});

test('getDocs sends the query in the wire format and pages with the cursor', async () => {
  const { client, calls } = await signedIn({
    'POST /v1/collections/notes/query': (call) =>
      reply(200, call.body.cursor ? { documents: [record({ id: 'b' })], next_cursor: null } : { documents: [record({ id: 'a' })], next_cursor: 'CUR' }),
  });
  const base = sdk.query(sdk.collection(client, 'notes'), sdk.where('status', '==', 'open'), sdk.where('tags', 'array-contains', 'x'), sdk.orderBy('priority', 'desc'), sdk.orderBy('title'), sdk.limit(1));
  const first = await sdk.getDocs(base);
  assert.deepEqual(calls[0].body, { where: [['status', '==', 'open'], ['tags', 'array-contains', 'x']], order_by: [['priority', 'desc'], 'title'], limit: 1 });
  assert.deepEqual([first.docs.map((d) => d.id), first.nextCursor, first.size, first.empty], [['a'], 'CUR', 1, false]);
  const second = await sdk.getDocs(sdk.query(base, sdk.startAfter(first.nextCursor)));
  assert.equal(calls[1].body.cursor, 'CUR');
  assert.deepEqual([second.docs.map((d) => d.id), second.nextCursor], [['b'], null]);
});

test('getCount asks for the count only (limit 0, no cursor)', async () => {
  const { client, calls } = await signedIn({ 'POST /v1/collections/notes/query': () => reply(200, { documents: [], next_cursor: null, count: 7 }) });
  const q = sdk.query(sdk.collection(client, 'notes'), sdk.where('status', '==', 'open'), sdk.limit(5), sdk.startAfter('C'));
  assert.equal(await sdk.getCount(q), 7);
  assert.deepEqual(calls[0].body, { where: [['status', '==', 'open']], limit: 0, count: true });
});

test('getDoc of a missing document is a snapshot that does not exist; other errors throw', async () => {
  const { client } = await signedIn({ 'GET /v1/collections/notes/documents/gone': () => error(404, 'not_found'), 'GET /v1/collections/secret/documents/x': () => error(403, 'forbidden') });
  const snap = await sdk.getDoc(sdk.doc(client, 'notes', 'gone'));
  assert.equal(snap.exists(), false);
  assert.equal(snap.data(), undefined);
  await assert.rejects(sdk.getDoc(sdk.doc(client, 'secret', 'x')), (e) => e.code === 'forbidden' && e.status === 403);
});
