/**
 * Where the session (refresh token) is persisted. Any object with these three methods works, sync or
 * async: `localStorage`, React Native's AsyncStorage, a file-backed store in Node.
 */
export interface KeyValueStorage {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/** Keeps values for the life of the process only (the default where there is no `localStorage`). */
export function memoryStorage(): KeyValueStorage {
  const values = new Map<string, string>();
  return {
    getItem: (key) => values.get(key) ?? null,
    setItem: (key, value) => void values.set(key, value),
    removeItem: (key) => void values.delete(key),
  };
}

/** `localStorage` when the platform has a working one (browsers), otherwise memory. */
export function defaultStorage(): KeyValueStorage {
  const candidate = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
  try {
    if (candidate) {
      candidate.getItem('telestack:probe');
      return candidate;
    }
  } catch {
    // access denied (e.g. storage disabled by the user): fall back to memory
  }
  return memoryStorage();
}
