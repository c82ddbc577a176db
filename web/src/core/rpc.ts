/**
 * JSON-RPC 2.0 over one WebSocket (protocol.md §1): requests matched by id, notifications,
 * error responses, timeouts, and a send rate kept under the server's limit.
 *
 * It takes any object shaped like the browser's `WebSocket` (Node's `ws` package and Node 22's
 * global `WebSocket` are too), so the same code runs in a page and in an editor extension.
 *
 * Ordering matters to the revision rule: an acknowledgement must be applied before the
 * `remoteChange` the server sent after it. Promise continuations run later than the next
 * message can be dispatched (a socket may deliver several frames in one task), so the callers
 * that care pass `onReply`, which runs synchronously, right when the reply is read.
 */

import { ConnectionLost, RequestTimeout, RpcError, MethodNotFound, ProtocolViolation } from "./errors.js";
import { now, reportUncaught, startTimer, stopTimer, type TimerHandle } from "./host.js";

// A method-shaped type is checked bivariantly, so that the browser's handler types (taking a
// `MessageEvent`) and `ws`'s (taking its own event classes) both fit the narrower shapes here.
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** What the core needs of a WebSocket: the browser's, Node's or the `ws` package's all fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ readonly data: unknown }> | null;
  onclose: Handler<{ readonly code: number; readonly reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/** Makes a socket for a URL, e.g. `(url) => new WebSocket(url)`. */
export type SocketFactory = (url: string) => WebSocketLike;

const OPEN = 1; // WebSocket.OPEN, the same number in every implementation

/** How a connection ended. `local` when we closed it ourselves. */
export interface CloseInfo {
  readonly code: number | undefined;
  readonly reason: string;
  readonly local: boolean;
}

/** Called with `(result, null)`, or `(undefined, error)`: an `RpcError`, `RequestTimeout` or `ConnectionLost`. */
export type ReplyCallback = (result: unknown, error: Error | null) => void;

export interface RpcHandlers {
  /** Each notification, in the order the server sent them. */
  onNotification(method: string, params: unknown): void;
  /** Once, when the connection has closed (after every pending request failed). */
  onClose(info: CloseInfo): void;
}

export interface RpcOptions {
  /** Default milliseconds to wait for a response; `null` waits forever. */
  requestTimeoutMs?: number | null;
  /** Sustained frames per second sent (the server refuses requests past its limit); `null`: unlimited. */
  framesPerSecond?: number | null;
  /** How many frames may go out at once before the rate applies. */
  burst?: number;
}

interface Pending {
  readonly method: string;
  readonly onReply: ReplyCallback;
  timer: TimerHandle | null;
}

/** Open a socket and wait until it is open (rejects on close, error or timeout). */
export function openSocket(factory: SocketFactory, url: string, timeoutMs: number): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = factory(url);
    } catch (error) {
      reject(error instanceof Error ? error : new ConnectionLost(String(error)));
      return;
    }
    const timer = startTimer(() => {
      finish();
      try {
        socket.close();
      } catch {
        // closing a socket that never opened may throw in some implementations
      }
      reject(new ConnectionLost(`could not connect to ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (): void => {
      stopTimer(timer);
      // No-ops rather than null: some implementations (Node's `ws`) throw on an error event
      // that has no listener, and a socket we gave up on may still report one.
      socket.onopen = null;
      socket.onclose = ignore;
      socket.onerror = ignore;
    };
    socket.onopen = () => {
      finish();
      resolve(socket);
    };
    socket.onerror = () => {
      // A close event follows; it carries the code, so wait for it.
    };
    socket.onclose = (event) => {
      finish();
      reject(new ConnectionLost(`could not connect to ${url}`, event.code, event.reason));
    };
  });
}

function ignore(): void {
  // Deliberately nothing: see openSocket.
}

export class RpcConnection {
  private readonly socket: WebSocketLike;
  private readonly handlers: RpcHandlers;
  private readonly pending = new Map<number, Pending>();
  private readonly outbox: string[] = [];
  private nextId = 1;
  private closeInfo: CloseInfo | null = null;
  private requestTimeoutMs: number | null;
  private rate: number | null;
  private burst: number;
  private tokens: number;
  private refilledAt = now();
  private drainTimer: TimerHandle | null = null;
  /** When the last message arrived (for a heartbeat). */
  lastReceivedAt = now();

  /** `socket` must be open (see `openSocket`). */
  constructor(socket: WebSocketLike, handlers: RpcHandlers, options: RpcOptions = {}) {
    this.socket = socket;
    this.handlers = handlers;
    this.requestTimeoutMs = options.requestTimeoutMs ?? null;
    this.rate = options.framesPerSecond ?? null;
    this.burst = Math.max(1, options.burst ?? 100);
    this.tokens = this.burst;
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.closed({ code: event.code, reason: event.reason, local: false });
    socket.onerror = () => {
      // Always followed by a close event, which is where the connection is given up.
    };
    if (socket.readyState !== OPEN) this.closed({ code: undefined, reason: "socket not open", local: false });
  }

  get isOpen(): boolean {
    return this.closeInfo === null;
  }

  /** How the connection ended, once it has. */
  get closedWith(): CloseInfo | null {
    return this.closeInfo;
  }

  /** Change the send rate, e.g. to just under the limit the server announced. */
  setRate(framesPerSecond: number | null, burst?: number): void {
    this.rate = framesPerSecond;
    if (burst !== undefined) {
      this.burst = Math.max(1, burst);
      this.tokens = Math.min(this.tokens, this.burst);
    }
  }

  setRequestTimeout(ms: number | null): void {
    this.requestTimeoutMs = ms;
  }

  /**
   * Queue a request; `onReply` runs synchronously when its answer is read (or when it fails:
   * timeout, connection lost). Queued frames go out strictly in order.
   */
  send(method: string, params: unknown, onReply: ReplyCallback, timeoutMs?: number | null): void {
    if (this.closeInfo !== null) {
      onReply(undefined, this.lostError());
      return;
    }
    const id = this.nextId++;
    const entry: Pending = { method, onReply, timer: null };
    const timeout = timeoutMs === undefined ? this.requestTimeoutMs : timeoutMs;
    if (timeout !== null) {
      entry.timer = startTimer(() => {
        if (this.pending.get(id) !== entry) return;
        this.pending.delete(id);
        this.deliver(entry, undefined, new RequestTimeout(`${method} got no answer within ${timeout} ms`));
      }, timeout);
    }
    this.pending.set(id, entry);
    this.enqueue(frame({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) }));
  }

  /** Send a request and resolve with its result (reject with `RpcError`, `RequestTimeout` or `ConnectionLost`). */
  request(method: string, params?: unknown, timeoutMs?: number | null): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.send(method, params, (result, error) => (error === null ? resolve(result) : reject(error)), timeoutMs);
    });
  }

  /** Send a notification (no answer comes). Throws `ConnectionLost` when closed. */
  notify(method: string, params?: unknown): void {
    if (this.closeInfo !== null) throw this.lostError();
    this.enqueue(frame({ jsonrpc: "2.0", method, ...(params === undefined ? {} : { params }) }));
  }

  /**
   * Close now. The connection counts as closed at once (pending requests fail, `onClose` runs)
   * even if the socket takes long to finish its closing handshake, as a dead one would.
   */
  close(code = 1000, reason = ""): void {
    if (this.closeInfo !== null) return;
    try {
      this.socket.close(code, reason);
    } catch (error) {
      reportUncaught("closing the socket failed", error);
    }
    this.closed({ code, reason, local: true });
  }

  // -- internals ------------------------------------------------------------------------------

  private lostError(): ConnectionLost {
    const info = this.closeInfo;
    return new ConnectionLost(
      info === null ? "connection closed" : `connection closed (code ${String(info.code)})`,
      info?.code,
      info?.reason ?? "",
    );
  }

  private closed(info: CloseInfo): void {
    if (this.closeInfo !== null) return;
    this.closeInfo = info;
    // Ignore whatever the socket still says: a message read after this would be applied to
    // state the client has already handed over to the next connection.
    this.socket.onmessage = null;
    this.socket.onclose = ignore;
    if (this.drainTimer !== null) stopTimer(this.drainTimer);
    this.drainTimer = null;
    this.outbox.length = 0;
    const error = this.lostError();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const entry of pending) this.deliver(entry, undefined, error);
    try {
      this.handlers.onClose(info);
    } catch (err) {
      reportUncaught("the close handler threw", err);
    }
  }

  private deliver(entry: Pending, result: unknown, error: Error | null): void {
    if (entry.timer !== null) stopTimer(entry.timer);
    entry.timer = null;
    try {
      entry.onReply(result, error);
    } catch (err) {
      reportUncaught(`handling the answer to ${entry.method} failed`, err);
    }
  }

  private enqueue(data: string): void {
    this.outbox.push(data);
    this.drain();
  }

  private drain(): void {
    if (this.closeInfo !== null) return;
    if (this.rate !== null) {
      const t = now();
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.refilledAt) / 1000) * this.rate);
      this.refilledAt = t;
    }
    while (this.rate === null || this.tokens >= 1) {
      const data = this.outbox.shift();
      if (data === undefined) break;
      if (this.rate !== null) this.tokens -= 1;
      try {
        this.socket.send(data);
      } catch (error) {
        // The socket died under us; its close event (or the heartbeat) ends the connection.
        reportUncaught("sending failed", error);
        return;
      }
    }
    if (this.outbox.length > 0 && this.drainTimer === null && this.rate !== null) {
      const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1000));
      this.drainTimer = startTimer(() => {
        this.drainTimer = null;
        this.drain();
      }, wait);
    }
  }

  private receive(data: unknown): void {
    this.lastReceivedAt = now();
    if (typeof data !== "string") {
      reportUncaught("ignored a binary frame", new ProtocolViolation("the server sends text frames only"));
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch (error) {
      reportUncaught("ignored a frame that is not JSON", error);
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      reportUncaught("ignored a frame that is not a JSON-RPC object", new ProtocolViolation(data.slice(0, 80)));
      return;
    }
    const m = message as Readonly<Record<string, unknown>>;
    const method = m["method"];
    if (typeof method === "string") {
      if ("id" in m) {
        // The server never sends requests (§1); answer as JSON-RPC says rather than stay silent.
        this.enqueue(frame({ jsonrpc: "2.0", id: m["id"] ?? null, error: { code: MethodNotFound, message: "no methods here" } }));
        return;
      }
      try {
        this.handlers.onNotification(method, m["params"]);
      } catch (error) {
        reportUncaught(`handling ${method} failed`, error);
      }
      return;
    }
    const id = m["id"];
    if (typeof id !== "number") return; // our ids are numbers: not an answer to us
    const entry = this.pending.get(id);
    if (entry === undefined) return; // an answer to a request that timed out: nobody waits for it
    this.pending.delete(id);
    const error = m["error"];
    if (error !== undefined && error !== null) {
      this.deliver(entry, undefined, toRpcError(error));
    } else {
      this.deliver(entry, m["result"] ?? null, null);
    }
  }
}

function frame(message: Record<string, unknown>): string {
  return JSON.stringify(message);
}

function toRpcError(error: unknown): RpcError {
  if (typeof error === "object" && error !== null) {
    const e = error as Readonly<Record<string, unknown>>;
    const code = typeof e["code"] === "number" ? e["code"] : 0;
    const message = typeof e["message"] === "string" ? e["message"] : "error";
    return new RpcError(code, message, e["data"]);
  }
  return new RpcError(0, "malformed error response", error);
}
