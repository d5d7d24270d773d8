/** Auth as functions over the client, Firebase-style. */
import type { TelestackClient } from './client.js';
import type { User } from './types.js';

export function signUp(client: TelestackClient, email: string, password: string): Promise<User> {
  return client.session.signUp(email, password);
}

export function signIn(client: TelestackClient, email: string, password: string): Promise<User> {
  return client.session.signIn(email, password);
}

export function signOut(client: TelestackClient): Promise<void> {
  return client.session.signOut();
}

/** The signed-in user, or null (also null until a stored session is loaded: see `authStateReady`). */
export function currentUser(client: TelestackClient): User | null {
  return client.session.user;
}

/** Resolves once a session persisted by an earlier run (or another tab) has been loaded. */
export function authStateReady(client: TelestackClient): Promise<void> {
  return client.session.ready;
}

/** Called with the current user once it is known, then on every sign-in, sign-out or revoked session. */
export function onAuthStateChanged(client: TelestackClient, callback: (user: User | null) => void): () => void {
  return client.session.onChange(callback);
}
