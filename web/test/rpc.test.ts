// JSON-RPC over a scripted in-memory socket: ids, error objects, timeouts, ordering of reply
// callbacks against notifications, rate limiting and connection loss.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ConnectionLost,
  errorName,
  Forbidden,
  RequestTimeout,
  ResyncRequired,
  RpcConnection,
  RpcError,
  setUncaughtReporter,
  type CloseInfo,
  type WebSocketLike,
} from "../src/core/index.js";

/** A socket whose far end is the test: it records what is sent and delivers what we script. */
class FakeSocket implements WebSocketLike {
  readyState = 1;
  sent: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  /** Deliver several frames in one go, as a socket reading one TCP chunk does. */
  deliver(...messages: unknown[]): void {
    for (const m of messages) this.onmessage?.({ data: JSON.stringify(m) });
  }

  drop(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function setup(options: ConstructorParameters<typeof RpcConnection>[2] = {}) {
  const socket = new FakeSocket();
  const notifications: [string, unknown][] = [];
  const closes: CloseInfo[] = [];
  const conn = new RpcConnection(
    socket,
    { onNotification: (method, params) => notifications.push([method, params]), onClose: (info) => closes.push(info) },
    options,
  );
  return { socket, conn, notifications, closes };
}

describe("rpc", () => {
  test("requests carry increasing ids and resolve with their own result", async () => {
    const { socket, conn } = setup();
    const a = conn.request("a/one", { x: 1 });
    const b = conn.request("b/two");
    assert.deepEqual(socket.sent, [
      { jsonrpc: "2.0", id: 1, method: "a/one", params: { x: 1 } },
      { jsonrpc: "2.0", id: 2, method: "b/two" },
    ]);
    socket.deliver({ jsonrpc: "2.0", id: 2, result: "two" }, { jsonrpc: "2.0", id: 1, result: null });
    assert.equal(await b, "two");
    assert.equal(await a, null);
  });

  test("error responses become RpcError with the protocol's code", async () => {
    const { socket, conn } = setup();
    const pending = conn.request("textDocument/didChange", {});
    socket.deliver({ jsonrpc: "2.0", id: 1, error: { code: 1005, message: "viewers cannot edit", data: { x: 1 } } });
    await assert.rejects(pending, (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, Forbidden);
      assert.deepEqual(error.data, { x: 1 });
      assert.match(error.message, /Forbidden \(1005\)/);
      return true;
    });
    assert.equal(errorName(ResyncRequired), "ResyncRequired");
    assert.equal(errorName(4242), "Error4242");
  });

  test("reply callbacks run before notifications read after them", () => {
    const { socket, conn, notifications } = setup();
    const seen: string[] = [];
    conn.send("textDocument/didChange", {}, () => seen.push(`ack after ${notifications.length} notifications`));
    socket.deliver(
      { jsonrpc: "2.0", id: 1, result: { revision: 4, catchUp: [] } },
      { jsonrpc: "2.0", method: "textDocument/remoteChange", params: {} },
    );
    assert.deepEqual(seen, ["ack after 0 notifications"]);
    assert.equal(notifications.length, 1);
  });

  test("a request with no answer times out; a late answer is ignored", async () => {
    const { socket, conn } = setup({ requestTimeoutMs: 30 });
    await assert.rejects(conn.request("slow"), RequestTimeout);
    socket.deliver({ jsonrpc: "2.0", id: 1, result: "late" }); // nobody waits for it: no effect
    const next = conn.request("fast", undefined, null);
    socket.deliver({ jsonrpc: "2.0", id: 2, result: "fast" });
    assert.equal(await next, "fast");
  });

  test("a closed connection fails pending requests and refuses new ones", async () => {
    const { socket, conn, closes } = setup();
    const pending = conn.request("a");
    socket.drop(1001, "going away");
    await assert.rejects(pending, (error: unknown) => error instanceof ConnectionLost && error.closeCode === 1001);
    await assert.rejects(conn.request("b"), ConnectionLost);
    assert.throws(() => conn.notify("c"), ConnectionLost);
    assert.deepEqual(closes, [{ code: 1001, reason: "going away", local: false }]);
    assert.equal(conn.isOpen, false);
  });

  test("closing locally counts at once, and later socket events are ignored", () => {
    const { socket, conn, closes, notifications } = setup();
    conn.close(4000, "abandoned");
    assert.equal(socket.closedWith, 4000);
    assert.equal(closes.length, 1);
    socket.deliver({ jsonrpc: "2.0", method: "x", params: {} });
    socket.drop(1006);
    assert.equal(notifications.length, 0);
    assert.equal(closes.length, 1);
  });

  test("the send rate is limited and order is kept", async () => {
    const { socket, conn } = setup({ framesPerSecond: 200, burst: 3 });
    for (let i = 0; i < 8; i++) conn.notify("n", { i });
    assert.equal(socket.sent.length, 3, "the burst goes out at once");
    const started = Date.now();
    while (socket.sent.length < 8 && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(
      socket.sent.map((m) => (m["params"] as { i: number }).i),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.ok(Date.now() - started >= 20, "five more frames at 200/s take at least 20 ms");
    conn.close();
  });

  test("a request from the server is answered MethodNotFound; junk is ignored", () => {
    const { socket, notifications } = setup();
    const reported: string[] = [];
    setUncaughtReporter((context) => reported.push(context));
    socket.deliver({ jsonrpc: "2.0", id: 7, method: "client/doSomething" });
    socket.onmessage?.({ data: "not json" });
    socket.onmessage?.({ data: new Uint8Array([1, 2]) });
    assert.deepEqual(socket.sent, [{ jsonrpc: "2.0", id: 7, error: { code: -32601, message: "no methods here" } }]);
    assert.equal(notifications.length, 0);
    assert.deepEqual(reported, ["ignored a frame that is not JSON", "ignored a binary frame"]);
  });
});
