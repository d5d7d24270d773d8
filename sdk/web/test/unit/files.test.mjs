import { test } from 'node:test';
import assert from 'node:assert/strict';
import { error, reply, sdk, signedIn } from '../helpers.mjs';

const SIGNED = {
  method: 'PUT',
  url: 'http://s3.test/bucket/users/u1/a.txt?X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature=S',
  headers: { 'Content-Type': 'text/plain' },
  key: 'users/u1/a.txt',
  content_type: 'text/plain',
  size: 5,
  expires_at: '2026-12-01T00:00:00Z',
};

/** Routes requests to the bucket (s3.test) to `bucket`, everything else to the client's fake gateway. */
function routeBucket(client, bucket) {
  const gatewayFetch = client.http.fetchImpl;
  client.http.fetchImpl = async (url, init) => (url.startsWith('http://s3.test') ? bucket(url, init) : gatewayFetch(url, init));
}

/** A stand-in XMLHttpRequest on globalThis for one test: records what is sent, reports progress in two steps. */
function installXhr(t, status = 200, responseText = '') {
  const sent = [];
  class FakeXhr {
    constructor() {
      this.headers = {};
      this.upload = { onprogress: null };
    }
    open(method, url) {
      Object.assign(this, { method, url });
    }
    setRequestHeader(name, value) {
      this.headers[name] = value;
    }
    send(body) {
      sent.push({ method: this.method, url: this.url, headers: this.headers, body });
      queueMicrotask(() => {
        this.upload.onprogress?.({ loaded: Math.floor(body.size / 2), total: body.size });
        this.upload.onprogress?.({ loaded: body.size, total: body.size });
        Object.assign(this, { status, responseText });
        this.onload();
      });
    }
  }
  const before = globalThis.XMLHttpRequest;
  globalThis.XMLHttpRequest = FakeXhr;
  t.after(() => {
    globalThis.XMLHttpRequest = before;
  });
  return sent;
}

test('uploadFile asks for a PUT signed for the blob\'s size and type, then PUTs the bytes with the signed headers', async () => {
  let put = null;
  const { client, calls } = await signedIn({ 'POST /v1/storage/upload-url': () => reply(200, SIGNED) });
  routeBucket(client, async (url, init) => {
    put = { url, init };
    return reply(200, '');
  });
  const progress = [];
  const blob = new Blob(['hello'], { type: 'text/plain' });
  const result = await sdk.uploadFile(client, 'users/u1/a.txt', blob, { onProgress: (l, t) => progress.push([l, t]) });
  assert.deepEqual(result, { key: 'users/u1/a.txt', contentType: 'text/plain', size: 5 });
  assert.deepEqual(calls[0].body, { key: 'users/u1/a.txt', content_type: 'text/plain', size: 5 });
  assert.equal(put.url, SIGNED.url);
  assert.equal(put.init.method, 'PUT');
  assert.deepEqual(put.init.headers, { 'Content-Type': 'text/plain' });
  assert.equal(put.init.body, blob, 'the blob itself is the body: its length is the signed Content-Length');
  assert.deepEqual(progress, [[5, 5]], 'without XMLHttpRequest there is one event, at the end');
});

test('the contentType option overrides the blob\'s type; a typeless blob is application/octet-stream', async () => {
  const { client, calls } = await signedIn({ 'POST /v1/storage/upload-url': (call) => reply(200, { ...SIGNED, headers: { 'Content-Type': call.body.content_type }, content_type: call.body.content_type }) });
  const sentTypes = [];
  routeBucket(client, async (_url, init) => {
    sentTypes.push(init.headers['Content-Type']);
    return reply(200, '');
  });
  await sdk.uploadFile(client, 'users/u1/a.txt', new Blob(['hello'], { type: 'text/plain' }), { contentType: 'image/png' });
  await sdk.uploadFile(client, 'users/u1/a.txt', new Blob(['hello']));
  assert.deepEqual(calls.map((c) => c.body.content_type), ['image/png', 'application/octet-stream']);
  assert.deepEqual(sentTypes, ['image/png', 'application/octet-stream']);
});

test('with XMLHttpRequest and onProgress, the PUT goes through it and progress is reported as it goes', async (t) => {
  const sent = installXhr(t);
  const { client } = await signedIn({ 'POST /v1/storage/upload-url': () => reply(200, SIGNED) });
  routeBucket(client, () => assert.fail('fetch must not be used for the bucket when XMLHttpRequest is there'));
  const progress = [];
  const blob = new Blob(['hello'], { type: 'text/plain' });
  await sdk.uploadFile(client, 'users/u1/a.txt', blob, { onProgress: (l, total) => progress.push([l, total]) });
  assert.equal(sent.length, 1);
  assert.deepEqual([sent[0].method, sent[0].url, sent[0].headers], ['PUT', SIGNED.url, { 'Content-Type': 'text/plain' }]);
  assert.equal(sent[0].body, blob);
  assert.deepEqual(progress, [[2, 5], [5, 5], [5, 5]]);
});

test('a refusal by the bucket is upload_refused with its status and S3 code, over fetch and over XMLHttpRequest', async (t) => {
  const { client } = await signedIn({ 'POST /v1/storage/upload-url': () => reply(200, SIGNED) });
  routeBucket(client, async () => reply(403, '<Error><Code>SignatureDoesNotMatch</Code></Error>'));
  const blob = new Blob(['hello']);
  const err = await sdk.uploadFile(client, 'users/u1/a.txt', blob).catch((e) => e);
  assert.deepEqual([err.code, err.status], ['upload_refused', 403]);
  assert.match(err.message, /SignatureDoesNotMatch/);
  installXhr(t, 403, '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
  const late = await sdk.uploadFile(client, 'users/u1/a.txt', blob, { onProgress: () => {} }).catch((e) => e);
  assert.deepEqual([late.code, late.status], ['upload_refused', 403]);
  assert.match(late.message, /AccessDenied/);
});

test('the gateway\'s refusals keep their codes, and nothing is sent to the bucket', async () => {
  const { client } = await signedIn({
    'POST /v1/storage/upload-url': (call) =>
      call.body.size > 10 ? error(413, 'too_large', 'uploads are limited to 10 bytes') : error(403, 'forbidden', 'key is outside your storage prefix'),
  });
  routeBucket(client, () => assert.fail('no URL, no upload'));
  const forbidden = await sdk.uploadFile(client, 'users/u2/a.txt', new Blob(['hello'])).catch((e) => e);
  assert.deepEqual([forbidden.code, forbidden.status], ['forbidden', 403]);
  const tooLarge = await sdk.uploadFile(client, 'users/u1/a.txt', new Blob(['x'.repeat(11)])).catch((e) => e);
  assert.deepEqual([tooLarge.code, tooLarge.status], ['too_large', 413]);
});

test('a network failure on the PUT is a network error', async () => {
  const { client } = await signedIn({ 'POST /v1/storage/upload-url': () => reply(200, SIGNED) });
  routeBucket(client, async () => {
    throw new TypeError('fetch failed');
  });
  const err = await sdk.uploadFile(client, 'users/u1/a.txt', new Blob(['hello'])).catch((e) => e);
  assert.deepEqual([err.code, err.status], ['network_error', 0]);
  assert.match(err.message, /fetch failed/);
});

test('getDownloadURL returns the presigned GET URL', async () => {
  const { client, calls } = await signedIn({ 'POST /v1/storage/download-url': () => reply(200, { method: 'GET', url: 'http://s3.test/bucket/users/u1/a.txt?X-Amz-Signature=x', key: 'users/u1/a.txt' }) });
  assert.equal(await sdk.getDownloadURL(client, 'users/u1/a.txt'), 'http://s3.test/bucket/users/u1/a.txt?X-Amz-Signature=x');
  assert.deepEqual(calls[0].body, { key: 'users/u1/a.txt' });
});
