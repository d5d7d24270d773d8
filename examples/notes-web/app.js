// A notes app on the TelestackDB Web SDK, no framework: sign up/in, a live list of my (private) notes
// with edit, delete and a file attachment, and a live list of posts every signed-in user reads.
// telestack.js is the SDK bundle built into this folder (see README.md); it is not committed.
import * as sdk from './telestack.js';

const params = new URLSearchParams(location.search);
const gateway = params.get('gateway') ?? 'http://127.0.0.1:8787';
const errors = [];
const client = sdk.createClient({
  url: gateway,
  // notes written offline survive a reload and are sent when the network returns
  persistence: sdk.indexedDbPersistence(`notes-web:${gateway}`),
  onWriteError: (err, write) => show(`a saved change to ${write.ops[0].id} was refused: ${err.message}`),
});
// the tests and the curious reach the app's state from the console
window.notesApp = { sdk, client, errors };

const $ = (id) => document.getElementById(id);
let stops = [];
let editing = null; // the note being edited: { id, version }

function show(message) {
  errors.push(message);
  $('error').textContent = message;
}

function setStatus() {
  const offline = !navigator.onLine;
  $('status').textContent = offline ? 'offline: changes are queued' : 'online';
  $('status').classList.toggle('offline', offline);
}
addEventListener('online', setStatus);
addEventListener('offline', setStatus);
setStatus();

$('auth-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const mode = event.submitter?.dataset.mode ?? 'signin';
  $('auth-error').textContent = '';
  try {
    const email = $('email').value;
    const password = $('password').value;
    await (mode === 'signup' ? sdk.signUp(client, email, password) : sdk.signIn(client, email, password));
  } catch (err) {
    $('auth-error').textContent = err.message;
  }
});
$('signout').addEventListener('click', () => sdk.signOut(client));

sdk.onAuthStateChanged(client, (user) => {
  stops.forEach((stop) => stop());
  stops = [];
  $('auth').hidden = Boolean(user);
  $('app').hidden = !user;
  $('signout').hidden = !user;
  $('who').textContent = user ? user.email : '';
  if (user) listen(user);
});

function listen(user) {
  const notes = sdk.query(sdk.collection(client, 'notes'), sdk.orderBy('$updated_at', 'desc'), sdk.limit(50));
  stops.push(sdk.onSnapshot(notes, (snap) => renderNotes(snap), (err) => show(err.message)));
  const posts = sdk.query(sdk.collection(client, 'posts'), sdk.orderBy('published_at', 'desc'), sdk.limit(20));
  stops.push(sdk.onSnapshot(posts, (snap) => renderPosts(snap, user), (err) => show(err.message)));
}

function item(snap, text, meta) {
  const li = document.createElement('li');
  li.dataset.id = snap.id;
  li.classList.toggle('pending', snap.metadata.hasPendingWrites);
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = text;
  const info = document.createElement('div');
  info.className = 'meta';
  info.textContent = meta;
  li.append(title, info);
  return li;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.textContent = label;
  b.addEventListener('click', () => onClick().catch((err) => show(err.message)));
  return b;
}

function renderNotes(snap) {
  const list = $('notes');
  list.replaceChildren(
    ...snap.docs.map((d) => {
      const data = d.data();
      const saving = d.metadata.hasPendingWrites ? ' · saving…' : '';
      const li = item(d, data.title, `${data.body ?? ''}${saving}`);
      li.append(
        button('Edit', async () => {
          editing = { id: d.id, version: d.version };
          $('note-title').value = data.title;
          $('note-body').value = data.body ?? '';
          $('note-save').textContent = 'Save';
          $('note-cancel').hidden = false;
        }),
        button('Delete', () => sdk.deleteDoc(d.ref)),
      );
      const file = data.meta?.attachment;
      if (file) {
        li.append(
          button(`Download ${file.name}`, async () => {
            window.open(await sdk.getDownloadURL(client, file.key), '_blank');
          }),
        );
      }
      return li;
    }),
  );
}

function renderPosts(snap, user) {
  $('posts').replaceChildren(
    ...snap.docs.map((d) => {
      const mine = d.record.owner_id === user.id;
      const li = item(d, d.data().title, mine ? 'by you' : 'by another user');
      if (mine) li.append(button('Delete', () => sdk.deleteDoc(d.ref)));
      return li;
    }),
  );
}

function resetNoteForm() {
  editing = null;
  $('note-form').reset();
  $('note-save').textContent = 'Add note';
  $('note-cancel').hidden = true;
}
$('note-cancel').addEventListener('click', resetNoteForm);

$('note-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = { title: $('note-title').value, body: $('note-body').value };
  const file = $('note-file').files[0];
  const target = editing;
  resetNoteForm();
  try {
    // the write shows in the list at once; the promise settles when the server has it
    const ref = target ? sdk.doc(client, 'notes', target.id) : sdk.doc(sdk.collection(client, 'notes'));
    const saved = target ? sdk.updateDoc(ref, data, { ifVersion: target.version }) : sdk.setDoc(ref, data);
    if (file) await attach(ref, file);
    await saved;
  } catch (err) {
    show(err.code === 'version_mismatch' ? 'the note changed meanwhile: edit it again' : err.message);
  }
});

async function attach(ref, file) {
  const user = sdk.currentUser(client);
  const key = `users/${user.id}/notes/${ref.id}/${file.name}`;
  const bar = $('upload-progress');
  bar.hidden = false;
  try {
    await sdk.uploadFile(client, key, file, { onProgress: (loaded, total) => (bar.value = total ? loaded / total : 1) });
  } finally {
    bar.hidden = true;
  }
  await sdk.updateDoc(ref, { meta: { attachment: { key, name: file.name, size: file.size } } });
}

$('post-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const title = $('post-title').value;
  $('post-form').reset();
  await sdk.addDoc(sdk.collection(client, 'posts'), { title, published_at: Date.now() }).catch((err) => show(err.message));
});
