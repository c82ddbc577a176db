/**
 * The few host globals the core uses, reached through `globalThis` so that the core type-checks
 * without DOM or Node types: browsers, Node and VS Code extension hosts all provide these.
 */

/** An opaque timer handle (a number in browsers, an object in Node). */
export type TimerHandle = unknown;

interface HostGlobals {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  console?: { error(...args: unknown[]): void };
  TextEncoder?: new () => { encode(text: string): Uint8Array };
  crypto?: { subtle?: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> } };
}

const host = globalThis as unknown as HostGlobals;

/** Run `callback` once after `ms` milliseconds. */
export function startTimer(callback: () => void, ms: number): TimerHandle {
  return host.setTimeout(callback, ms);
}

/** Cancel a timer from `startTimer` (a no-op for one that already ran). */
export function stopTimer(handle: TimerHandle): void {
  host.clearTimeout(handle);
}

/** Milliseconds from an arbitrary origin, only for measuring intervals. */
export function now(): number {
  return Date.now();
}

/**
 * Report an error nobody can handle (a listener that threw). It must not stop the protocol:
 * the message that triggered the listener still has to be processed in order.
 */
export function reportUncaught(context: string, error: unknown): void {
  reporter(context, error);
}

let reporter: (context: string, error: unknown) => void = (context, error) => {
  host.console?.error(`codesphere: ${context}:`, error);
};

/** Send the core's unhandleable errors somewhere else than the console (an app's log). */
export function setUncaughtReporter(report: (context: string, error: unknown) => void): void {
  reporter = report;
}

/** SHA-256 of the UTF-8 bytes of `text`, in hex, as `textDocument/checksum` computes it (WebCrypto). */
export async function sha256Hex(text: string): Promise<string> {
  const subtle = host.crypto?.subtle;
  if (subtle === undefined || host.TextEncoder === undefined) {
    throw new Error("this host has no WebCrypto (browsers need a secure context for it)");
  }
  const digest = await subtle.digest("SHA-256", new host.TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
