/** Runs `fn` while holding the lock `name`; no two holders at once. */
export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

interface LockManager {
  request<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

const held = new Map<string, Promise<unknown>>();

/** A lock shared by every client in this JavaScript realm (one tab, one Node process). */
export const processLock: LockFn = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const previous = held.get(name) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  held.set(name, tail);
  try {
    return await run;
  } finally {
    if (held.get(name) === tail) held.delete(name);
  }
};

/** `navigator.locks` (Web Locks: shared by every tab of an origin) where there is one, else {@link processLock}. */
export function defaultLock(): LockFn {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks && typeof locks.request === 'function') return (name, fn) => locks.request(name, fn);
  return processLock;
}

/** The part of BroadcastChannel the SDK uses to tell other tabs that the session changed. */
export interface TabChannel {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}

export function openTabChannel(name: string): TabChannel | null {
  const Ctor = (globalThis as { BroadcastChannel?: new (name: string) => TabChannel & { unref?: () => void } })
    .BroadcastChannel;
  if (!Ctor) return null;
  const channel = new Ctor(name);
  channel.unref?.(); // Node: an open channel must not keep the process alive
  return channel;
}
