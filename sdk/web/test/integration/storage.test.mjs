// Files through the SDK against the real gateway and SeaweedFS (see tests/integration/test_sdk_node.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sdk from '../../dist/index.js';
import { open, url } from './stack.mjs';


test('upload then download gives the same bytes; another user\'s prefix is refused', async () => {
  const client = open({});
  const me = await sdk.signUp(client, `files-${Math.random().toString(36).slice(2, 12)}@example.com`, 'correct horse 1');
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7919) % 256);
  const key = `users/${me.id}/blob.bin`;
  const progress = [];
  const done = await sdk.uploadFile(client, key, new Blob([bytes]), { contentType: 'application/x-test', onProgress: (l, t) => progress.push([l, t]) });
  assert.deepEqual(done, { key, contentType: 'application/x-test', size: bytes.length });
  assert.deepEqual(progress.at(-1), [bytes.length, bytes.length]);
  const download = await fetch(await sdk.getDownloadURL(client, key));
  assert.equal(download.status, 200);
  assert.equal(download.headers.get('content-type'), 'application/x-test');
  assert.deepEqual(new Uint8Array(await download.arrayBuffer()), bytes);

  // the type comes from the blob when no contentType is given; an empty file is a file too
  const typed = await sdk.uploadFile(client, `users/${me.id}/pic.png`, new Blob([bytes.subarray(0, 10)], { type: 'image/png' }));
  assert.deepEqual(typed, { key: `users/${me.id}/pic.png`, contentType: 'image/png', size: 10 });
  const pic = await fetch(await sdk.getDownloadURL(client, typed.key));
  assert.equal(pic.headers.get('content-type'), 'image/png');
  assert.deepEqual(new Uint8Array(await pic.arrayBuffer()), bytes.subarray(0, 10));
  await sdk.uploadFile(client, `users/${me.id}/empty`, new Blob([]));
  const empty = await fetch(await sdk.getDownloadURL(client, `users/${me.id}/empty`));
  assert.equal(empty.status, 200);
  assert.equal((await empty.arrayBuffer()).byteLength, 0);

  const outside = await sdk.uploadFile(client, 'users/someone-else/x.bin', new Blob([bytes])).catch((e) => e);
  assert.deepEqual([outside.code, outside.status], ['forbidden', 403]);
  const missing = await sdk.getDownloadURL(client, `users/${me.id}/nothing-here`);
  assert.equal((await fetch(missing)).status, 404);
  sdk.terminate(client);
});
