// Test helpers: a real CodeSphere server in a child process, tokens from its CLI, sockets from
// the `ws` package (Node 20 has no global WebSocket), and bounded waiting.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { WebSocket } from "ws";

import type { Emitter, SocketFactory, WebSocketLike } from "../../src/core/index.js";

// npm runs the tests in web/; the server comes from the repository's virtual environment.
export const CODESPHERE_BIN =
  process.env["CODESPHERE_BIN"] ?? resolve(process.cwd(), "../.venv/bin/codesphere");

/** 40 characters, for tests only: the server and the token minting must share it. */
const JWT_SECRET = "web-client-tests-secret-0123456789abcdef";

function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, JWT_SECRET, PYTHONUNBUFFERED: "1" };
}

export function makeDataDir(): string {
  return mkdtempSync(join(tmpdir(), "codesphere-web-test-"));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface TestServer {
  readonly url: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string | null>;
  /** Send `signal` to the server's PID and wait (bounded) for it to exit; SIGKILL if it hangs. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** What it wrote on stderr (its log), for failure messages. */
  log(): string;
}

/** Start `codesphere serve` on a free loopback port; resolves once it prints its ws:// URL. */
export function startServer(dataDir: string, timeoutMs = 20_000): Promise<TestServer> {
  const child = spawn(
    CODESPHERE_BIN,
    ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--no-owner-link", "--log-level", "warning"],
    { env: serverEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  const exited = new Promise<number | string | null>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal));
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server did not start within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${String(code)}) before it was ready:\n${stdout}\n${stderr}`));
    });
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const match = /Clients connect to (ws:\/\/\S+)/.exec(stdout);
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      const url = match[1];
      const pid = child.pid;
      resolve({
        url,
        dataDir,
        process: child,
        exited,
        log: () => stderr,
        async stop(signal: NodeJS.Signals = "SIGTERM") {
          if (child.exitCode !== null || child.signalCode !== null || pid === undefined) return;
          process.kill(pid, signal);
          const killer = setTimeout(() => process.kill(pid, "SIGKILL"), 10_000);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}

/** A user token from the CLI (`--admin`: it admits to every room). */
export function mintUserToken(dataDir: string, user: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      CODESPHERE_BIN,
      ["token", "mint-user", user, "--admin", "--data-dir", dataDir],
      { env: serverEnv(), timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`mint-user failed: ${error.message}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/**
 * A `ws` socket behind the browser-style interface, with two faults a test can inject: drop
 * everything the server sends (`muted`), or tear the connection down with no closing handshake.
 */
export class TestSocket implements WebSocketLike {
  private readonly ws: WebSocket;
  /** While set, frames from the server are dropped, as if lost on the way. */
  muted = false;
  /** How many frames were dropped so far. */
  dropped = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { readonly data: unknown }) => void) | null = null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.onopen = (event) => this.onopen?.(event);
    this.ws.onmessage = (event) => {
      if (this.muted) this.dropped += 1;
      else this.onmessage?.(event);
    };
    this.ws.onclose = (event) => this.onclose?.(event);
    this.ws.onerror = (event) => this.onerror?.(event);
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  send(data: string): void {
    this.ws.send(data);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }

  /** Tear the connection down at once, as a failing network would. */
  terminate(): void {
    this.ws.terminate();
  }
}

/** Makes test sockets and remembers them, so a test can fault the one a client uses. */
export class Sockets {
  readonly all: TestSocket[] = [];

  readonly factory: SocketFactory = (url: string): WebSocketLike => {
    const socket = new TestSocket(url);
    this.all.push(socket);
    return socket;
  };

  get latest(): TestSocket {
    const socket = this.all.at(-1);
    if (socket === undefined) throw new Error("no socket yet");
    return socket;
  }

  /** The newest socket: tear it down without a closing handshake. */
  cutLatest(): void {
    this.latest.terminate();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `predicate` until it holds; fail after `timeoutMs` saying `what`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** The next `event` (matching `predicate`) of an emitter; fails after `timeoutMs`. */
export function nextEvent<E extends object, K extends keyof E>(
  emitter: Emitter<E>,
  event: K,
  predicate: (payload: E[K]) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<E[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${String(event)}"`));
    }, timeoutMs);
    const off = emitter.on(event, (payload) => {
      if (!predicate(payload)) return;
      off();
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

/** Bound any promise. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A small seeded PRNG (mulberry32), so a failing random schedule can be replayed by its seed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
