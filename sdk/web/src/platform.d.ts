// The few host APIs the core uses beyond ES2022 — present in browsers, Node >= 20 and React Native.
// Declared here (not through lib "DOM") so that nothing DOM-only can slip into the core unnoticed.
declare function setTimeout(fn: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare function atob(data: string): string;
declare const console: { warn(...args: unknown[]): void };
declare function queueMicrotask(fn: () => void): void;
