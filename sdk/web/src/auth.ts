import { SESSION_ENDED_CODES, SIGNED_OUT, TelestackError } from './errors.js';
import type { Http, TokenSource } from './http.js';
import type { KeyValueStorage } from './kv.js';
import type { LockFn, TabChannel } from './locks.js';
import type { User } from './types.js';

/** What is persisted: enough to resume the session after a reload, in this tab or another. */
export interface StoredSession {
  user: User;
  access_token: string;
  /** local clock (ms) after which the access token is renewed before use */
  renew_at: number;
  refresh_token: string;
}

interface TokenAnswer {
  user?: { id: string; email?: string | null };
  access_token: string;
  access_token_expires_at: number;
  refresh_token: string;
}

export type AuthListener = (user: User | null) => void;

/**
 * The signed-in session: sign up/in/out, access tokens renewed before expiry and on `token_expired`,
 * one refresh at a time (single-flight in this client, a named lock across clients and tabs, so a
 * refresh token is never spent twice), and a clean sign-out when the gateway says the session ended.
 */
export class Session implements TokenSource {
  private session: StoredSession | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly listeners = new Set<AuthListener>();
  readonly ready: Promise<void>;

  constructor(
    private readonly http: Http,
    private readonly storage: KeyValueStorage,
    private readonly key: string,
    private readonly lock: LockFn,
    private readonly channel: TabChannel | null,
  ) {
    this.ready = this.load().then((s) => {
      this.session = s;
    });
    if (channel) channel.onmessage = () => void this.adoptStored();
  }

  close(): void {
    this.channel?.close();
  }

  get user(): User | null {
    return this.session?.user ?? null;
  }

  onChange(listener: AuthListener): () => void {
    this.listeners.add(listener);
    void this.ready.then(() => this.listeners.has(listener) && listener(this.user));
    return () => this.listeners.delete(listener);
  }

  async signUp(email: string, password: string): Promise<User> {
    return this.start('/v1/auth/signup', email, password);
  }

  async signIn(email: string, password: string): Promise<User> {
    return this.start('/v1/auth/signin', email, password);
  }

  /** Ends the session on the server (best effort) and always here. */
  async signOut(): Promise<void> {
    await this.ready;
    const current = this.session;
    if (!current) return;
    try {
      await this.http.request({ method: 'POST', path: '/v1/auth/signout' });
    } catch {
      // offline or already revoked: the local session ends anyway, and its refresh token with it
    }
    await this.end(current);
  }

  async accessToken(): Promise<string | null> {
    await this.ready;
    if (this.session && Date.now() >= this.session.renew_at) await this.refresh(this.session.access_token);
    return this.session?.access_token ?? null;
  }

  async expired(token: string): Promise<void> {
    await this.refresh(token);
  }

  /** Renew the access token `stale` unless someone already did (single-flight). */
  private refresh(stale: string): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.lock(`telestack-refresh:${this.key}`, () => this.refreshLocked(stale)).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async refreshLocked(stale: string): Promise<void> {
    const stored = await this.load(); // another tab or client may have rotated it while we waited
    if (!stored) {
      if (this.session) await this.end(this.session);
      throw new TelestackError(SIGNED_OUT, 401, 'signed out');
    }
    if (stored.access_token !== stale && Date.now() < stored.renew_at) {
      this.replace(stored);
      return;
    }
    let answer: TokenAnswer;
    try {
      answer = (await this.http.request({
        method: 'POST',
        path: '/v1/auth/refresh',
        body: { refresh_token: stored.refresh_token },
        auth: false,
      })).body as TokenAnswer;
    } catch (err) {
      if (err instanceof TelestackError && SESSION_ENDED_CODES.has(err.code)) await this.end(stored);
      throw err;
    }
    await this.save(toStored(answer, stored.user));
  }

  private async start(path: string, email: string, password: string): Promise<User> {
    await this.ready;
    const reply = await this.http.request({ method: 'POST', path, body: { email, password }, auth: false });
    const answer = reply.body as TokenAnswer;
    const user: User = { id: answer.user?.id ?? '', email: answer.user?.email ?? email };
    await this.save(toStored(answer, user));
    return user;
  }

  private async save(next: StoredSession): Promise<void> {
    await this.storage.setItem(this.key, JSON.stringify(next));
    this.replace(next);
    this.channel?.postMessage('session');
  }

  private async end(ended: StoredSession): Promise<void> {
    const stored = await this.load();
    if (!stored || stored.refresh_token === ended.refresh_token) await this.storage.removeItem(this.key);
    this.replace(null);
    this.channel?.postMessage('session');
  }

  private async adoptStored(): Promise<void> {
    this.replace(await this.load());
  }

  private replace(next: StoredSession | null): void {
    const before = this.session?.user.id ?? null;
    this.session = next;
    if ((next?.user.id ?? null) !== before) for (const l of [...this.listeners]) l(this.user);
  }

  private async load(): Promise<StoredSession | null> {
    const raw = await this.storage.getItem(this.key);
    if (!raw) return null;
    try {
      const s = JSON.parse(raw) as StoredSession;
      return typeof s.refresh_token === 'string' && typeof s.access_token === 'string' && s.user ? s : null;
    } catch {
      return null;
    }
  }
}

/**
 * When to renew: a fifth of the token's lifetime (at most a minute) before it ends. The lifetime comes
 * from the token's own `iat`/`exp`, measured from now on the local clock, so a skewed clock does not
 * matter; `access_token_expires_at` (server clock) is the fallback.
 */
export function renewAt(answer: { access_token: string; access_token_expires_at: number }, now = Date.now()): number {
  let lifetime = answer.access_token_expires_at - now;
  const claims = jwtClaims(answer.access_token);
  if (claims && typeof claims.exp === 'number' && typeof claims.iat === 'number') {
    lifetime = (claims.exp - claims.iat) * 1000;
  }
  return now + lifetime - Math.min(60_000, Math.max(0, lifetime) / 5);
}

function toStored(answer: TokenAnswer, user: User): StoredSession {
  return {
    user,
    access_token: answer.access_token,
    renew_at: renewAt(answer),
    refresh_token: answer.refresh_token,
  };
}

function jwtClaims(token: string): { exp?: unknown; iat?: unknown } | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown; iat?: unknown };
  } catch {
    return null;
  }
}
