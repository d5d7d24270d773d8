import { test } from 'node:test';
import assert from 'node:assert/strict';
import { URL, error, fakeFetch, fakeRealtime, jwt, record, reply, sdk, settle, signedIn, tokens } from '../helpers.mjs';
import { renewAt } from '../../build/src/auth.js';

const doc = (client) => sdk.doc(client, 'notes', 'n1');
const getNote = (call) => (call.headers.authorization ? reply(200, record({ id: 'n1' })) : error(401, 'unauthenticated'));

test('sign up persists the session, currentUser and onAuthStateChanged follow it', async () => {
  const storage = sdk.memoryStorage();
  const answer = { ...tokens({ id: 'u9', email: 'new@example.com' }) };
  const fake = fakeFetch({ 'POST /v1/auth/signup': () => reply(201, answer) });
  const client = sdk.createClient({ url: URL, fetch: fake.fetch, storage });
  const seen = [];
  sdk.onAuthStateChanged(client, (u) => seen.push(u?.id ?? null));
  await sdk.authStateReady(client);
  const user = await sdk.signUp(client, 'new@example.com', 'password1');
  assert.deepEqual(user, { id: 'u9', email: 'new@example.com' });
  assert.equal(sdk.currentUser(client)?.id, 'u9');
  assert.deepEqual(seen, [null, 'u9']);
  assert.deepEqual(fake.calls[0].body, { email: 'new@example.com', password: 'password1' });
  assert.equal(fake.calls[0].headers.authorization, undefined, 'signup sends no bearer');
  const stored = JSON.parse(await storage.getItem(`telestack:${URL}:session`));
  assert.equal(stored.refresh_token, answer.refresh_token);

  // a new client on the same storage (a reload) resumes the session
  const again = sdk.createClient({ url: URL, fetch: fakeFetch({ 'GET *': getNote }).fetch, storage });
  await sdk.authStateReady(again);
  assert.equal(sdk.currentUser(again)?.id, 'u9');
  assert.equal((await sdk.getDoc(doc(again))).id, 'n1');
});

test('an access token near its expiry is renewed before use, once for concurrent requests', async () => {
  let refreshes = 0;
  const fresh = tokens();
  const { client, calls, signin } = await signedIn({
    'POST /v1/auth/refresh': async (call) => {
      refreshes++;
      assert.equal(call.body.refresh_token, signin.refresh_token);
      await settle(2);
      return reply(200, { ...fresh, user: undefined });
    },
    'GET *': getNote,
  }, {});
  // make the stored token due for renewal (its lifetime is over)
  client.session.session.renew_at = Date.now() - 1;
  await Promise.all([1, 2, 3, 4, 5].map(() => sdk.getDoc(doc(client))));
  assert.equal(refreshes, 1);
  const gets = calls.filter((c) => c.method === 'GET');
  assert.equal(gets.length, 5);
  for (const g of gets) assert.equal(g.headers.authorization, `Bearer ${fresh.access_token}`);
  assert.equal(sdk.currentUser(client)?.id, 'u1', 'the user survives a refresh (its answer has none)');
});

test('a token_expired 401 refreshes once and retries each request', async () => {
  let refreshes = 0;
  const fresh = tokens();
  const { client, calls } = await signedIn({
    'POST /v1/auth/refresh': () => (refreshes++, reply(200, fresh)),
    'GET *': (call) =>
      call.headers.authorization === `Bearer ${fresh.access_token}` ? reply(200, record({ id: 'n1' })) : error(401, 'token_expired'),
  });
  const snaps = await Promise.all([1, 2, 3].map(() => sdk.getDoc(doc(client))));
  assert.equal(refreshes, 1);
  assert.ok(snaps.every((s) => s.exists()));
  assert.equal(calls.filter((c) => c.method === 'GET').length, 6, 'each request: refused once, retried once');
});

test('two clients sharing storage (two tabs) never spend the same refresh token', async () => {
  const storage = sdk.memoryStorage();
  const issued = tokens();
  const spent = new Set();
  let refreshes = 0;
  const routes = {
    'POST /v1/auth/signin': () => reply(200, issued),
    'POST /v1/auth/refresh': async (call) => {
      refreshes++;
      if (spent.has(call.body.refresh_token)) return error(401, 'token_reuse_detected');
      spent.add(call.body.refresh_token);
      await settle(2);
      return reply(200, tokens());
    },
    'GET *': getNote,
  };
  const a = sdk.createClient({ url: URL, fetch: fakeFetch(routes).fetch, storage });
  await sdk.signIn(a, 'a@example.com', 'password1');
  const b = sdk.createClient({ url: URL, fetch: fakeFetch(routes).fetch, storage });
  await sdk.authStateReady(b);
  a.session.session.renew_at = Date.now() - 1;
  b.session.session.renew_at = Date.now() - 1;
  await Promise.all([sdk.getDoc(doc(a)), sdk.getDoc(doc(b))]);
  assert.equal(refreshes, 1, 'the second client adopted the first one\'s new tokens');
  assert.equal(sdk.currentUser(a)?.id, 'u1');
  assert.equal(sdk.currentUser(b)?.id, 'u1');
  assert.equal(a.session.session.access_token, b.session.session.access_token);
});

for (const code of ['token_reuse_detected', 'session_expired']) {
  test(`a revoked session (${code}) signs the client out cleanly`, async () => {
    const storage = sdk.memoryStorage();
    const { client } = await signedIn(
      {
        'POST /v1/auth/refresh': () => error(401, code),
        'GET *': () => error(401, 'token_expired'),
        'POST /v1/collections/notes/query': () => reply(200, { documents: [], next_cursor: null }),
      },
      { storage },
    );
    fakeRealtime(client);
    const seen = [];
    sdk.onAuthStateChanged(client, (u) => seen.push(u?.id ?? null));
    const listenerErrors = [];
    sdk.onSnapshot(sdk.query(sdk.collection(client, 'notes')), () => {}, (e) => listenerErrors.push(e.code));
    await settle();
    await assert.rejects(sdk.getDoc(doc(client)), (e) => e instanceof sdk.TelestackError && e.code === code && e.status === 401);
    assert.equal(sdk.currentUser(client), null);
    assert.equal(await storage.getItem(`telestack:${URL}:session`), null);
    assert.deepEqual(seen, ['u1', null]);
    assert.deepEqual(listenerErrors, ['signed_out']);
  });
}

test('a failed refresh for a network error keeps the session', async () => {
  const { client } = await signedIn({
    'POST /v1/auth/refresh': () => {
      throw new TypeError('fetch failed');
    },
    'GET *': getNote,
  });
  client.session.session.renew_at = Date.now() - 1;
  await assert.rejects(sdk.getDoc(doc(client)), (e) => e.code === 'network_error' && e.status === 0);
  assert.equal(sdk.currentUser(client)?.id, 'u1');
});

test('sign out revokes on the server with the bearer and forgets the session', async () => {
  const storage = sdk.memoryStorage();
  const { client, calls, signin } = await signedIn({ 'POST /v1/auth/signout': () => reply(200, { signed_out: true }) }, { storage });
  await sdk.signOut(client);
  assert.equal(calls[0].path, '/v1/auth/signout');
  assert.equal(calls[0].headers.authorization, `Bearer ${signin.access_token}`);
  assert.equal(sdk.currentUser(client), null);
  assert.equal(await storage.getItem(`telestack:${URL}:session`), null);
});

test('renewal is due a fifth of the lifetime (at most a minute) before expiry, by the token\'s own clock', () => {
  const now = 1_000_000;
  assert.equal(renewAt({ access_token: jwt(900), access_token_expires_at: 0 }, now), now + 900_000 - 60_000);
  assert.equal(renewAt({ access_token: jwt(10), access_token_expires_at: 0 }, now), now + 10_000 - 2_000);
  // not a JWT: the server's expiry is the fallback
  assert.equal(renewAt({ access_token: 'opaque', access_token_expires_at: now + 5_000 }, now), now + 5_000 - 1_000);
});

test('signing out in one tab signs the other tabs out (BroadcastChannel + shared storage)', async () => {
  const storage = sdk.memoryStorage();
  const url = `${URL}/tabs`; // its own channel name, apart from the other tests' clients
  const routes = { 'POST /tabs/v1/auth/signin': () => reply(200, tokens()), 'POST /tabs/v1/auth/signout': () => reply(200, { signed_out: true }) };
  const fetchFor = fakeFetch(Object.fromEntries(Object.entries(routes).map(([k, v]) => [k.replace('/tabs', ''), v]))).fetch;
  const tab = (f) => sdk.createClient({ url, fetch: (u, i) => f(u.replace('/tabs', ''), i), storage });
  const a = tab(fetchFor);
  await sdk.signIn(a, 'a@example.com', 'password1');
  const b = tab(fetchFor);
  await sdk.authStateReady(b);
  assert.equal(sdk.currentUser(b)?.id, 'u1');
  const changed = new Promise((resolve) => sdk.onAuthStateChanged(b, (u) => u === null && resolve()));
  await sdk.signOut(a);
  // the channel is unref'd (it must not keep Node alive): hold the loop open while the message travels
  let timer;
  await Promise.race([changed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('tab B never heard')), 2000)))]);
  clearTimeout(timer);
  assert.equal(sdk.currentUser(b), null);
  sdk.terminate(a);
  sdk.terminate(b);
});

test('terminate stops listeners without calling their error callback', async () => {
  const { client } = await signedIn({ 'POST /v1/collections/notes/query': () => reply(200, { documents: [], next_cursor: null }) });
  fakeRealtime(client);
  const errors = [];
  let snaps = 0;
  sdk.onSnapshot(sdk.query(sdk.collection(client, 'notes')), () => snaps++, (e) => errors.push(e));
  await settle();
  sdk.terminate(client);
  assert.equal(client.active.size, 0);
  client.store.applyServer('notes', 'x', 1, record({ id: 'x' }), '2026-12-01T00:00:00.000Z');
  await settle();
  assert.deepEqual([snaps, errors], [1, []]);
});
