// The SDK in real headless Chromium against the real stack, the page on another origin than the
// gateway (so every request is a CORS request). Run by tests/integration/test_sdk_browser.py.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { gateway, harness, launch, newUser, origin, PASSWORD, random, servePages, until } from './support.mjs';

const screenshots = process.env.TELESTACK_SCREENSHOTS;
assert.ok(screenshots, 'TELESTACK_SCREENSHOTS (a directory) is required');
let browser;
let server;
before(async () => {
  server = await servePages();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
});

const notesQuery = () => sdk.query(sdk.collection(t.client, 'notes'), sdk.limit(50));
const postsQuery = () => sdk.query(sdk.collection(t.client, 'posts'), sdk.limit(200));

test("A's private writes reach A's listener, never B's; B sees A's shared post appear, change and disappear", async () => {
  const a = await newUser(browser);
  const b = await newUser(browser);
  for (const u of [a, b]) {
    await u.page.evaluate(`t.listen('notes', (${notesQuery})()); t.listen('posts', (${postsQuery})())`);
  }
  const noteId = await a.page.evaluate(async () => (await sdk.addDoc(sdk.collection(t.client, 'notes'), { title: 'secret of A' })).id);
  await until(a.page, "A's note in A's listener, confirmed", (id) => t.last('notes')?.docs.some((d) => d.id === id && !d.pending), noteId);
  // B's own write after A's: once B's listener has it, A's event (earlier) would have arrived too
  const bNote = await b.page.evaluate(async () => (await sdk.addDoc(sdk.collection(t.client, 'notes'), { title: 'note of B' })).id);
  await until(b.page, "B's note in B's listener", (id) => t.last('notes')?.docs.some((d) => d.id === id), bNote);

  const postId = await a.page.evaluate(
    async () => (await sdk.addDoc(sdk.collection(t.client, 'posts'), { title: 'hello from A', published_at: 1 })).id,
  );
  await until(b.page, "A's post appears in B's listener", (id) => t.last('posts')?.docs.some((d) => d.id === id && d.data.title === 'hello from A'), postId);
  await a.page.evaluate((id) => sdk.updateDoc(sdk.doc(t.client, 'posts', id), { title: 'hello again' }), postId);
  await until(b.page, "A's post changes in B's listener", (id) => t.last('posts')?.docs.some((d) => d.id === id && d.data.title === 'hello again'), postId);
  await a.page.evaluate((id) => sdk.deleteDoc(sdk.doc(t.client, 'posts', id)), postId);
  await until(b.page, "A's post disappears from B's listener", (id) => !t.last('posts')?.docs.some((d) => d.id === id), postId);

  const bSawA = await b.page.evaluate((id) => t.events.notes.some((s) => s.docs?.some((d) => d.id === id)), noteId);
  assert.equal(bSawA, false, "B's notes listener saw A's private note");
  assert.deepEqual(await b.page.evaluate(() => t.events.notes.filter((e) => e.error)), []);
  await Promise.all([a.context.close(), b.context.close()]);
});

test('a live query with a filter and a limit equals a fresh getDocs after 100 random writes by two users', async () => {
  const users = [await newUser(browser), await newUser(browser)];
  const live = `t.q = sdk.query(sdk.collection(t.client, 'posts'), sdk.where('published_at', '>=', 30), sdk.orderBy('published_at', 'desc'), sdk.limit(7)); t.listen('q', t.q)`;
  for (const u of users) await u.page.evaluate(live);
  const rnd = random(20261203);
  const mine = [[], []];
  for (let i = 0; i < 100; i++) {
    const who = rnd(2);
    const ids = mine[who];
    const roll = rnd(10);
    const page = users[who].page;
    if (!ids.length || roll < 4) {
      ids.push(await page.evaluate(async (n, at) => (await sdk.addDoc(sdk.collection(t.client, 'posts'), { title: `p${n}`, published_at: at })).id, i, rnd(60)));
    } else if (roll < 8) {
      await page.evaluate((id, at) => sdk.updateDoc(sdk.doc(t.client, 'posts', id), { published_at: at }), ids[rnd(ids.length)], rnd(60));
    } else {
      await page.evaluate((id) => sdk.deleteDoc(sdk.doc(t.client, 'posts', id)), ids.splice(rnd(ids.length), 1)[0]);
    }
  }
  for (const [n, u] of users.entries()) {
    const equal = async () =>
      u.page.evaluate(async () => {
        const fresh = (await sdk.getDocs(t.q)).docs.map((d) => [d.id, d.data().published_at]);
        const seen = t.last('q')?.docs.map((d) => [d.id, d.data.published_at]);
        return { same: JSON.stringify(fresh) === JSON.stringify(seen), fresh, seen };
      });
    const end = Date.now() + 20000;
    let r = await equal();
    while (!r.same && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 200));
      r = await equal();
    }
    assert.ok(r.same, `user ${n}: live ${JSON.stringify(r.seen)} != fresh ${JSON.stringify(r.fresh)}`);
    assert.equal(r.fresh.length, 7, 'the query should be full (more than 7 posts match), or the limit is not exercised');
  }
  await Promise.all(users.map((u) => u.context.close()));
});

test('offline: writes queued, page reloaded, back online: the server and the listener are right; a conflict reaches onWriteError, not the listener', async () => {
  const store = 'offline-test';
  const u = await newUser(browser, store);
  const listen = `t.listen('notes', sdk.query(sdk.collection(t.client, 'notes'), sdk.orderBy('$id'), sdk.limit(50)))`;
  await u.page.evaluate(listen);
  await u.page.evaluate(async () => {
    await sdk.setDoc(sdk.doc(t.client, 'notes', 'n1'), { title: 'one' });
    await sdk.setDoc(sdk.doc(t.client, 'notes', 'n3'), { title: 'three' });
  });
  await until(u.page, 'n1 and n3 confirmed', () => t.last('notes')?.docs.filter((d) => !d.pending).length === 2);

  await u.page.setOfflineMode(true);
  await u.page.evaluate(() => {
    t.pending = [
      sdk.updateDoc(sdk.doc(t.client, 'notes', 'n1'), { title: 'one offline' }),
      sdk.setDoc(sdk.doc(t.client, 'notes', 'n2'), { title: 'two offline' }),
      sdk.updateDoc(sdk.doc(t.client, 'notes', 'n3'), { title: 'three offline' }, { ifVersion: 1 }),
    ];
  });
  const titles = `t.titles = () => t.last('notes')?.docs.map((d) => d.id + ':' + d.data.title + ':' + d.pending).join(',')`;
  await u.page.evaluate(titles);
  const queued = 'n1:one offline:true,n2:two offline:true,n3:three offline:true';
  await until(u.page, 'the offline writes in the listener at once', (want) => t.titles() === want, queued);

  // meanwhile another session of the same user changes n3 on the server: the queued If-Match is stale
  const other = await harness(browser);
  const server = (id) => other.page.evaluate(async (id) => (await sdk.getDoc(sdk.doc(t.client, 'notes', id))).data()?.title ?? null, id);
  await other.page.evaluate(async (address, password) => {
    t.open();
    await sdk.signIn(t.client, address, password);
    await sdk.updateDoc(sdk.doc(t.client, 'notes', 'n3'), { title: 'three elsewhere' });
  }, u.email, PASSWORD);

  // reload with the gateway still unreachable (the page itself must load, so the block is by URL)
  await u.page.setRequestInterception(true);
  // a request in flight when interception ends is no longer ours to settle: its rejection is expected
  const block = (r) => void (r.url().startsWith(gateway) ? r.abort('internetdisconnected') : r.continue()).catch(() => {});
  u.page.on('request', block);
  await u.page.setOfflineMode(false);
  await u.page.reload();
  await u.page.waitForFunction(() => window.t);
  await u.page.evaluate((store) => t.open(store), store);
  await u.page.evaluate(listen);
  await u.page.evaluate(titles);
  await until(u.page, 'after the reload, offline: the cache and the restored queue', (want) => t.titles() === want && t.last('notes').meta.fromCache, queued);
  assert.deepEqual([await server('n1'), await server('n2'), await server('n3')], ['one', null, 'three elsewhere']);

  // back online: the browser's `online` event sends the queue at once
  await u.page.setOfflineMode(true);
  u.page.off('request', block);
  await u.page.setRequestInterception(false);
  await u.page.setOfflineMode(false);
  const settled = 'n1:one offline:false,n2:two offline:false,n3:three elsewhere:false';
  await until(u.page, 'the queue sent; the conflicting write rolled back', (want) => t.titles() === want && !t.last('notes').meta.fromCache, settled, 30000);
  assert.deepEqual(await u.page.evaluate(() => t.writeErrors), [['version_mismatch', 412, 'n3']]);
  assert.deepEqual([await server('n1'), await server('n2'), await server('n3')], ['one offline', 'two offline', 'three elsewhere']);
  // the refusal went to onWriteError alone: the listener's error callback (which would end it) was not
  // called, and the listener stays live: another session's next change to n3 reaches it
  assert.deepEqual(await u.page.evaluate(() => t.events.notes.filter((e) => e.error)), []);
  await other.page.evaluate(() => sdk.updateDoc(sdk.doc(t.client, 'notes', 'n3'), { title: 'three again' }));
  await until(u.page, 'the listener still live after the refused write', (want) => t.titles() === want, settled.replace('three elsewhere', 'three again'));
  assert.equal((await u.page.evaluate(() => t.writeErrors)).length, 1);
  await Promise.all([u.context.close(), other.context.close()]);
});

test('an upload reports progress; the download URL gives back the same bytes', async () => {
  const u = await newUser(browser);
  const r = await u.page.evaluate(async (userId) => {
    const bytes = new Uint8Array(700 * 1024);
    for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
    const progress = [];
    const key = `users/${userId}/browser/blob.bin`;
    const result = await sdk.uploadFile(t.client, key, new Blob([bytes], { type: 'application/octet-stream' }), {
      onProgress: (loaded, total) => progress.push([loaded, total]),
    });
    const back = new Uint8Array(await (await fetch(await sdk.getDownloadURL(t.client, key))).arrayBuffer());
    const same = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
    return { result, progress, same, size: bytes.length };
  }, u.user.id);
  assert.equal(r.same, true, 'downloaded bytes differ');
  assert.equal(r.result.size, r.size);
  assert.ok(r.progress.length >= 1);
  assert.deepEqual(r.progress.at(-1), [r.size, r.size]);
  // as a progress bar shows it: the fraction done never goes back (the byte counts of the transfer's
  // own events include the request's framing, so only the fraction is comparable across events)
  const fractions = r.progress.map(([loaded, total]) => loaded / total);
  for (let i = 1; i < fractions.length; i++) assert.ok(fractions[i] >= fractions[i - 1], `progress went backwards: ${JSON.stringify(r.progress)}`);
  await u.context.close();
});

test('access tokens (4 s here) are renewed mid-session without the app noticing', async () => {
  const u = await newUser(browser);
  let refreshes = 0;
  u.page.on('request', (r) => r.url() === `${gateway}/v1/auth/refresh` && r.method() === 'POST' && refreshes++);
  await u.page.evaluate(`t.listen('notes', (${notesQuery})())`);
  const written = await u.page.evaluate(async () => {
    const ids = [];
    const end = Date.now() + 11000;
    while (Date.now() < end) {
      ids.push((await sdk.addDoc(sdk.collection(t.client, 'notes'), { title: `n${ids.length}` })).id);
      await new Promise((r) => setTimeout(r, 300));
    }
    return ids;
  });
  await until(u.page, 'every note in the listener', (n) => t.last('notes')?.docs.filter((d) => !d.pending).length === n, written.length);
  assert.ok(refreshes >= 2, `expected at least 2 token renewals in 11 s, saw ${refreshes}`);
  // null once the state is known (before the sign-up), then the user: no change after that
  assert.deepEqual(await u.page.evaluate(() => t.auth), [null, u.user.id], 'the auth state changed');
  assert.deepEqual(await u.page.evaluate(() => t.events.notes.filter((e) => e.error)), []);
  await u.context.close();
});

test('a reused refresh token signs the client out: auth state null, listeners end, session removed', async () => {
  const u = await newUser(browser);
  const key = `telestack:${gateway}:session`;
  const stored = () => u.page.evaluate((key) => JSON.parse(localStorage.getItem(key) ?? 'null')?.refresh_token ?? null, key);
  const spent = await stored();
  await u.page.evaluate(`t.listen('notes', (${notesQuery})())`);
  // keep the client busy so that it renews its 4 s token; then the first refresh token is spent
  await u.page.evaluate(() => {
    t.reads = [];
    t.busy = setInterval(() => sdk.getDocs(sdk.collection(t.client, 'notes')).then(() => t.reads.push('ok'), (e) => t.reads.push(e.code)), 300);
  });
  await until(u.page, 'the SDK renewed its session', (args) => (JSON.parse(localStorage.getItem(args[0]) ?? 'null')?.refresh_token ?? args[1]) !== args[1], [key, spent]);
  // a thief replays the spent token: the auth core revokes the whole session
  const replay = await fetch(`${gateway}/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: spent }),
  });
  assert.equal(replay.status, 401);
  assert.equal((await replay.json()).error.code, 'token_reuse_detected');
  await until(u.page, 'signed out', () => t.auth.at(-1) === null);
  await u.page.evaluate(() => clearInterval(t.busy));
  assert.equal(await stored(), null, 'the session is still stored');
  assert.deepEqual(await u.page.evaluate(() => t.events.notes.filter((e) => e.error)), [{ error: 'signed_out' }]);
  assert.equal(await u.page.evaluate(() => sdk.currentUser(t.client)), null);
  await u.context.close();
});

test('the example app: sign up, notes with an attachment, a post; the screenshot shows them', async () => {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1000, height: 700, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${origin}/?gateway=${encodeURIComponent(gateway)}`);
  await page.type('#email', `app-${Date.now()}@example.com`);
  await page.type('#password', PASSWORD);
  await page.click('button[data-mode="signup"]');
  await page.waitForSelector('#app:not([hidden])', { timeout: 20000 });
  for (const title of ['Buy milk', 'Call the plumber']) {
    await page.type('#note-title', title);
    await page.click('#note-save');
  }
  await page.type('#note-title', 'Quarterly report');
  await mkdir(screenshots, { recursive: true });
  const attachment = `${screenshots}/report.txt`;
  await writeFile(attachment, 'numbers\n'.repeat(1000));
  const input = await page.$('#note-file');
  await input.uploadFile(attachment);
  await page.click('#note-save');
  await page.type('#post-title', 'Hello from the notes app');
  await page.click('#post-form button');
  await until(page, 'three saved notes, one with its attachment, and the post', () => {
    const notes = [...document.querySelectorAll('#notes li')];
    return (
      notes.length === 3 &&
      notes.every((li) => !li.classList.contains('pending')) &&
      document.querySelector('#notes').innerText.includes('Download report.txt') &&
      document.querySelector('#posts').innerText.includes('Hello from the notes app')
    );
  });
  // edit a note in place (If-Match on the version shown)
  await page.evaluate(() => [...document.querySelectorAll('#notes li')].find((li) => li.innerText.includes('Buy milk')).querySelector('button').click());
  await page.type('#note-title', ' and bread');
  await page.click('#note-save');
  await until(page, 'the edited note', () => document.querySelector('#notes').innerText.includes('Buy milk and bread') && !document.querySelector('#notes li.pending'));
  const text = await page.evaluate(() => ({ notes: document.querySelector('#notes').innerText, posts: document.querySelector('#posts').innerText, who: document.querySelector('#who').innerText, error: document.querySelector('#error').innerText }));
  for (const want of ['Buy milk and bread', 'Call the plumber', 'Quarterly report', 'Download report.txt']) assert.ok(text.notes.includes(want), `notes list lacks ${want}: ${text.notes}`);
  assert.ok(text.posts.includes('Hello from the notes app') && text.posts.includes('by you'), text.posts);
  assert.match(text.who, /^app-\d+@example\.com$/);
  assert.equal(text.error, '');
  assert.deepEqual(errors, []);
  await page.screenshot({ path: `${screenshots}/notes-web.png` });
  await context.close();
});
