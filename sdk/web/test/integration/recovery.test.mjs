// Reconnects against the real Centrifugo (history and force_recovery on every collection's namespace,
// from config/realtime.yaml): the listener's WebSocket is cut while another client of the same user
// writes. Events the channel's history still holds are recovered after the reconnect, with no
// re-query; when they are more than the history keeps, the listener re-queries and is still exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import * as sdk from '../../dist/index.js';
import { open } from './stack.mjs';

const PASSWORD = 'correct horse 1';
/** publications Centrifugo keeps per channel: the shipped config/realtime.yaml's history.size */
const HISTORY_SIZE = Number(
  /^history:\s*\n\s+size:\s*(\d+)/m.exec(readFileSync(new URL('../../../../config/realtime.yaml', import.meta.url), 'utf8'))[1],
);

/** The `ws` WebSocket with a switch: `cut()` drops every connection, and none opens until `restore()`. */
class CuttableSocket extends WebSocket {
  static live = new Set();
  static down = false;

  constructor(...args) {
    super(...args);
    CuttableSocket.live.add(this);
    this.on('close', () => CuttableSocket.live.delete(this));
    // refused before the handshake, as with the network unplugged (close is emitted on the next tick,
    // after the centrifuge client has set its handlers)
    if (CuttableSocket.down) this.terminate();
  }

  static cut() {
    CuttableSocket.down = true;
    for (const socket of CuttableSocket.live) socket.terminate();
  }

  static restore() {
    CuttableSocket.down = false;
  }
}

async function until(check, what, ms = 30000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Three clients of one new user: the listener (cuttable socket, counting its queries), an observer, a writer. */
async function sameUserThrice() {
  const email = `recovery-${Math.random().toString(36).slice(2, 12)}@example.com`;
  const queries = [];
  const counting = (u, init) => {
    if (u.endsWith('/query')) queries.push(u);
    return fetch(u, init);
  };
  const listener = open({ fetch: counting, websocket: CuttableSocket });
  await sdk.signUp(listener, email, PASSWORD);
  const observer = open({ websocket: WebSocket });
  const writer = open({});
  await sdk.signIn(observer, email, PASSWORD);
  await sdk.signIn(writer, email, PASSWORD);
  return { listener, observer, writer, queries };
}

/** Every `subscribed` of the listener's notes channel: was it a recovery, and did it recover. */
function subscribedEvents(client) {
  const seen = [];
  client.realtime.channels.get('notes').sub.on('subscribed', (ctx) => seen.push([ctx.wasRecovering, ctx.recovered]));
  return seen;
}

/** a note whose `body` orders as its number (the notes schema has no number field but `priority`, 0..5) */
const note = (n) => ({ title: `n${n}`, body: String(n).padStart(4, '0') });
const ids = (snap) => snap?.docs.map((d) => `${d.id}@${d.version}`).join(',');

test('events published while the socket is cut are recovered from the history after the reconnect, without a re-query', async () => {
  const { listener, observer, writer, queries } = await sameUserThrice();
  const q = (client) => sdk.query(sdk.collection(client, 'notes'), sdk.orderBy('body'), sdk.limit(50));
  let latest = null;
  let observed = null;
  sdk.onSnapshot(q(listener), (s) => (latest = s));
  sdk.onSnapshot(q(observer), (s) => (observed = s));
  await sdk.addDoc(sdk.collection(writer, 'notes'), note(0));
  await until(() => latest?.size === 1 && !latest.metadata.fromCache, 'the listener live with the first note');
  const subscribed = subscribedEvents(listener);
  const queriesBefore = queries.length;

  CuttableSocket.cut();
  await until(() => latest.metadata.fromCache, 'the listener reports it is reconnecting');
  for (let n = 1; n <= 5; n++) await sdk.addDoc(sdk.collection(writer, 'notes'), note(n));
  // the observer hears only the channel: once it has all six, Centrifugo has published them (and keeps them)
  await until(() => observed?.size === 6, 'the observer hears the five writes');
  assert.equal(latest.size, 1, 'the cut listener got events it should have missed');

  CuttableSocket.restore();
  await until(() => !latest.metadata.fromCache && latest.size === 6, 'the listener catches up after the reconnect');
  assert.deepEqual(subscribed, [[true, true]], 'the resubscribe recovered from the history');
  assert.equal(queries.length, queriesBefore, 'the listener re-queried although the history had every event');
  assert.equal(ids(latest), ids(await sdk.getDocs(q(writer))));
  [listener, observer, writer].forEach((c) => sdk.terminate(c));
});

test('more events than the history keeps: the listener re-queries and equals a fresh query', async () => {
  const { listener, observer, writer, queries } = await sameUserThrice();
  const notes = (client) => sdk.collection(client, 'notes');
  const q = (client) => sdk.query(notes(client), sdk.where('body', '>=', note(0).body), sdk.orderBy('body', 'desc'), sdk.limit(10));
  let latest = null;
  let observed = 0;
  sdk.onSnapshot(q(listener), (s) => (latest = s));
  sdk.onSnapshot(sdk.query(notes(observer), sdk.limit(200)), (s) => (observed = s.size));
  await sdk.setDoc(sdk.doc(writer, 'notes', 'first'), { title: 'first', body: '' });
  await until(() => latest !== null && !latest.metadata.fromCache && observed === 1, 'both listeners live');
  const subscribed = subscribedEvents(listener);

  CuttableSocket.cut();
  await until(() => latest.metadata.fromCache, 'the listener reports it is reconnecting');
  const total = HISTORY_SIZE + 20;
  for (let start = 0; start < total; start += 50) {
    const batch = sdk.writeBatch(writer);
    for (let n = start; n < Math.min(total, start + 50); n++) batch.create(sdk.doc(notes(writer)), note(n));
    await batch.commit();
  }
  await until(() => observed === total + 1, `the observer hears all ${total} writes`);
  const queriesBefore = queries.length;

  CuttableSocket.restore();
  const fresh = ids(await sdk.getDocs(q(writer)));
  await until(() => !latest.metadata.fromCache && ids(latest) === fresh, 'the listener equals a fresh query');
  assert.deepEqual(subscribed, [[true, false]], 'Centrifugo recovered more than its history holds');
  assert.ok(queries.length > queriesBefore, 'the listener did not re-query after a failed recovery');
  assert.deepEqual(latest.docs.map((d) => d.data().body), [...Array(10).keys()].map((i) => note(total - 1 - i).body));
  [listener, observer, writer].forEach((c) => sdk.terminate(c));
});
