// What every integration file shares: the gateway URL tests/integration/test_sdk_node.py passes, and
// clients that are closed after the file's tests (node --test runs each file in its own process).
import { after } from 'node:test';
import assert from 'node:assert/strict';
import * as sdk from '../../dist/index.js';

export const url = process.env.TELESTACK_GATEWAY_URL;
assert.ok(url, 'TELESTACK_GATEWAY_URL is not set (run through tests/integration/test_sdk_node.py)');
const clients = [];
/** A client closed after the tests, also when an assertion fails (an open connection keeps Node running). */
export const open = (options) => {
  const client = sdk.createClient({ url, storage: sdk.memoryStorage(), ...options });
  clients.push(client);
  return client;
};
after(() => clients.forEach((c) => sdk.terminate(c)));
