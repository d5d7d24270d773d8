import { test } from 'node:test';
import assert from 'node:assert/strict';
import { error, reply, sdk, signedIn } from '../helpers.mjs';

const FORM = { method: 'POST', url: 'http://s3.test/bucket', fields: { key: 'users/u1/a.txt', policy: 'P', 'x-amz-signature': 'S' }, key: 'users/u1/a.txt', content_type: 'text/plain', max_bytes: 5, expires_at: '2026-12-01T00:00:00Z' };

test('uploadFile posts the signed form fields, then the file, to the presigned URL', async () => {
  let posted = null;
  const { client, calls } = await signedIn({ 'POST /v1/storage/upload-url': () => reply(200, FORM) });
  // the presigned POST goes to the bucket, not the gateway: catch it before the JSON-only fake
  const gatewayFetch = client.http.fetchImpl;
  client.http.fetchImpl = async (url, init) => {
    if (url.startsWith('http://s3.test')) {
      posted = { url, init };
      return reply(204, undefined);
    }
    return gatewayFetch(url, init);
  };
  const progress = [];
  const blob = new Blob(['hello'], { type: 'text/plain' });
  const result = await sdk.uploadFile(client, 'users/u1/a.txt', blob, { onProgress: (l, t) => progress.push([l, t]) });
  assert.deepEqual(result, { key: 'users/u1/a.txt', contentType: 'text/plain', size: 5 });
  assert.deepEqual(calls[0].body, { key: 'users/u1/a.txt', content_type: 'text/plain', size: 5 });
  assert.equal(posted.url, 'http://s3.test/bucket');
  const entries = [...posted.init.body.entries()];
  assert.deepEqual(entries.slice(0, 3), [['key', 'users/u1/a.txt'], ['policy', 'P'], ['x-amz-signature', 'S']]);
  assert.equal(entries[3][0], 'file', 'the file comes last, after every policy field');
  assert.equal(await entries[3][1].text(), 'hello');
  assert.equal(posted.init.headers.authorization, undefined, 'no bearer token goes to the bucket');
  assert.deepEqual(progress, [[5, 5]]);
});

test('a refusal by the bucket is upload_refused with its status and S3 code; the gateway\'s refusals keep theirs', async () => {
  const { client } = await signedIn({
    'POST /v1/storage/upload-url': (call) => (call.body.key.startsWith('users/u1/') ? reply(200, FORM) : error(403, 'forbidden', 'key is outside your storage prefix')),
  });
  const gatewayFetch = client.http.fetchImpl;
  client.http.fetchImpl = async (url, init) =>
    url.startsWith('http://s3.test') ? reply(400, '<Error><Code>EntityTooLarge</Code></Error>') : gatewayFetch(url, init);
  const blob = new Blob(['too long for the policy']);
  const err = await sdk.uploadFile(client, 'users/u1/a.txt', blob).catch((e) => e);
  assert.deepEqual([err.code, err.status], ['upload_refused', 400]);
  assert.match(err.message, /EntityTooLarge/);
  const forbidden = await sdk.uploadFile(client, 'users/u2/a.txt', blob).catch((e) => e);
  assert.deepEqual([forbidden.code, forbidden.status], ['forbidden', 403]);
});

test('getDownloadURL returns the presigned GET URL', async () => {
  const { client, calls } = await signedIn({ 'POST /v1/storage/download-url': () => reply(200, { method: 'GET', url: 'http://s3.test/bucket/users/u1/a.txt?X-Amz-Signature=x', key: 'users/u1/a.txt' }) });
  assert.equal(await sdk.getDownloadURL(client, 'users/u1/a.txt'), 'http://s3.test/bucket/users/u1/a.txt?X-Amz-Signature=x');
  assert.deepEqual(calls[0].body, { key: 'users/u1/a.txt' });
});
