/**
 * The Centrifugo side of live data: one connection per client, one subscription per collection
 * channel (shared by every listener on that collection), tokens from `POST /v1/realtime/token`
 * renewed through the centrifuge client's `getToken` callbacks. Each publication is a change event,
 * handed to the LocalStore (which de-duplicates on version).
 */
import { Centrifuge, type Subscription } from 'centrifuge';
import type { LocalStore } from './cache.js';
import { TelestackError } from './errors.js';
import type { Http } from './http.js';
import type { ChangeEvent, DocumentRecord } from './types.js';

interface Grant {
  channel: string;
  collection: string;
  token: string | null;
}

interface TokenAnswer {
  url: string | null;
  token: string;
  channels: Grant[];
}

/** What a listener hears from its collection's channel. */
export interface ChannelWatcher {
  /** subscribed; `gap` is true when events may have been missed (first subscribe, or recovery failed) */
  online(gap: boolean): void;
  /** the channel is not delivering events right now (reconnecting) */
  offline(): void;
  /** the subscription failed for good (e.g. not allowed) */
  failed(err: TelestackError): void;
}

interface Channel {
  sub: Subscription;
  watchers: Set<ChannelWatcher>;
  live: boolean;
}

export interface RealtimeOptions {
  /** the WebSocket constructor where there is no global one (Node 20: the `ws` package) */
  websocket?: unknown;
  /** overrides the URL the gateway announces */
  url?: string;
}

export class Realtime {
  private client: Centrifuge | null = null;
  private connecting: Promise<Centrifuge> | null = null;
  private grants = new Map<string, Grant>();
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly http: Http,
    private readonly store: LocalStore,
    private readonly options: RealtimeOptions,
  ) {}

  /** Start hearing `collection`'s events; returns the function that stops. */
  async watch(collection: string, watcher: ChannelWatcher): Promise<() => void> {
    const client = await this.connect();
    const grant = this.grants.get(collection);
    if (!grant) throw new TelestackError('forbidden', 403, `no realtime channel for collection ${collection}`);
    let channel = this.channels.get(collection);
    if (!channel) channel = this.subscribe(client, grant);
    channel.watchers.add(watcher);
    if (channel.live) watcher.online(true);
    const ch = channel;
    return () => {
      ch.watchers.delete(watcher);
      if (ch.watchers.size === 0 && this.channels.get(collection) === ch) {
        this.channels.delete(collection);
        ch.sub.unsubscribe();
        client.removeSubscription(ch.sub);
      }
    };
  }

  /** Signed out or another user: drop the connection; the next watch connects with new tokens. */
  reset(): void {
    for (const ch of this.channels.values()) ch.sub.removeAllListeners();
    this.channels.clear();
    this.client?.disconnect();
    this.client = null;
    this.connecting = null;
    this.grants.clear();
  }

  private async token(): Promise<TokenAnswer> {
    const answer = (await this.http.request({ method: 'POST', path: '/v1/realtime/token', body: {} })).body as TokenAnswer;
    this.grants = new Map(answer.channels.map((g) => [g.collection, g]));
    return answer;
  }

  private connect(): Promise<Centrifuge> {
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = this.token().then((first) => {
        const url = this.options.url ?? first.url;
        if (!url) throw new TelestackError('realtime_unavailable', 503, 'the gateway announced no realtime URL');
        const client = new Centrifuge(url, {
          token: first.token,
          getToken: async () => (await this.token()).token,
          ...(this.options.websocket ? { websocket: this.options.websocket } : {}),
        });
        client.connect();
        this.client = client;
        return client;
      });
      this.connecting.catch(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  private subscribe(client: Centrifuge, grant: Grant): Channel {
    const opts = grant.token
      ? {
          token: grant.token,
          getToken: async () => {
            const reply = await this.http.request({ method: 'POST', path: '/v1/realtime/token', body: { channels: [grant.channel] } });
            return ((reply.body as TokenAnswer).channels[0]?.token ?? '') as string;
          },
        }
      : {};
    const sub = client.newSubscription(grant.channel, opts);
    const channel: Channel = { sub, watchers: new Set(), live: false };
    sub.on('publication', (ctx) => {
      const ev = ctx.data as ChangeEvent;
      this.store.applyServer(ev.collection, ev.id, ev.version, eventDoc(ev, this.store), ev.updated_at);
    });
    sub.on('subscribed', (ctx) => {
      channel.live = true;
      const gap = !ctx.wasRecovering || !ctx.recovered;
      for (const w of [...channel.watchers]) w.online(gap);
    });
    sub.on('subscribing', () => {
      channel.live = false;
      for (const w of [...channel.watchers]) w.offline();
    });
    sub.on('unsubscribed', (ctx) => {
      channel.live = false;
      if (ctx.code !== 0 && ctx.code !== 2) { // 0: we unsubscribed, 2: client closed
        const err = new TelestackError('realtime_refused', 403, `channel ${grant.channel}: ${ctx.reason}`);
        for (const w of [...channel.watchers]) w.failed(err);
      }
    });
    this.channels.set(grant.collection, channel);
    sub.subscribe();
    return channel;
  }
}

/** The document an event describes (null for a deletion or a removal from this reader's view). */
export function eventDoc(ev: ChangeEvent, store: LocalStore): DocumentRecord | null {
  if (ev.type === 'deleted' || ev.type === 'removed' || ev.data === null) return null;
  const known = store.known(ev.collection, ev.id)?.doc;
  const createdAt = ev.created_at ?? (ev.type === 'created' ? ev.updated_at : (known?.created_at ?? ''));
  return {
    id: ev.id,
    collection: ev.collection,
    owner_id: ev.owner_id,
    version: ev.version,
    created_at: createdAt,
    updated_at: ev.updated_at,
    data: ev.data,
  };
}
