// Shared pieces of the unit tests: a scripted fake fetch, fake JWTs, a fake realtime channel.
import * as sdk from '../build/src/index.js';

export { sdk };
export const URL = 'http://gateway.test';

/** A JWT-shaped token whose claims say it lives `lifetimeS` seconds (the SDK reads iat/exp only). */
export function jwt(lifetimeS, tag = Math.random().toString(36).slice(2)) {
  const iat = Math.floor(Date.now() / 1000);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none' })}.${b64({ iat, exp: iat + lifetimeS, tag })}.sig`;
}

export function reply(status, body, headers = {}) {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status,
    headers: { get: (name) => h.get(name.toLowerCase()) ?? null },
    text: async () => (body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)),
  };
}

export const error = (status, code, message = code) => reply(status, { error: { code, message } });

/**
 * A fetch that routes `METHOD /path` to handlers and records every call as
 * { method, path, headers, body } (body JSON-decoded).
 */
export function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init) => {
    const path = url.replace(URL, '');
    const call = { method: init.method, path, headers: init.headers, body: init.body ? JSON.parse(init.body) : undefined };
    calls.push(call);
    const handler = routes[`${init.method} ${path}`] ?? routes[`${init.method} *`];
    if (!handler) return error(404, 'not_found', `no fake route for ${init.method} ${path}`);
    return handler(call, calls);
  };
  return { fetch, calls };
}

export const tokens = (user = { id: 'u1', email: 'a@example.com' }, lifetimeS = 900) => ({
  user,
  access_token: jwt(lifetimeS),
  access_token_expires_at: Date.now() + lifetimeS * 1000,
  refresh_token: `rt-${Math.random().toString(36).slice(2)}`,
  refresh_token_expires_at: Date.now() + 86400e3,
  token_type: 'Bearer',
});

/** A signed-in client over `routes` (sign-in is answered here). */
export async function signedIn(routes, options = {}) {
  const signin = tokens();
  const fake = fakeFetch({ 'POST /v1/auth/signin': () => reply(200, signin), ...routes });
  const client = sdk.createClient({ url: URL, fetch: fake.fetch, storage: sdk.memoryStorage(), ...options });
  await sdk.signIn(client, 'a@example.com', 'password1');
  fake.calls.length = 0;
  return { client, calls: fake.calls, signin };
}

/** Replaces the client's Centrifugo side: `channel.online(gap)` etc. drive its listeners. */
export function fakeRealtime(client) {
  const watchers = new Set();
  client.realtime.watch = async (_collection, w) => {
    watchers.add(w);
    queueMicrotask(() => w.online(true));
    return () => watchers.delete(w);
  };
  client.realtime.reset = () => watchers.clear();
  return {
    watchers,
    online: (gap) => watchers.forEach((w) => w.online(gap)),
    offline: () => watchers.forEach((w) => w.offline()),
  };
}

export const tick = () => new Promise((r) => setTimeout(r, 0));
export async function settle(n = 5) {
  for (let i = 0; i < n; i++) await tick();
}

export function record(overrides) {
  const now = '2026-12-01T00:00:00.000Z';
  return { collection: 'notes', owner_id: 'u1', version: 1, created_at: now, updated_at: now, data: {}, ...overrides };
}
