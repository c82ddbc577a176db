// Reconnecting without losing edits (protocol.md §6.5) against a real server process: the
// server is stopped (SIGTERM) while two clients type, they keep typing offline, a new server
// starts on the same data directory (on a new port, given to the clients by a URL provider),
// and every edit must arrive exactly once.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CodeSphereClient, type ConnectionState, type RemoteDocument } from "../src/core/index.js";
import { ShadowEditor } from "./helpers/editor.js";
import {
  makeDataDir,
  mintUserToken,
  random,
  removeDataDir,
  sleep,
  Sockets,
  startServer,
  waitFor,
  within,
  type TestServer,
} from "./helpers/server.js";

let dataDir: string;
const servers: TestServer[] = [];
const clients: CodeSphereClient[] = [];

before(() => {
  dataDir = makeDataDir();
});

after(async () => {
  await Promise.all(clients.map((c) => within(c.close(), 5_000, "closing").catch(() => undefined)));
  for (const server of servers) await server.stop("SIGTERM");
  removeDataDir(dataDir);
});

/** A marker edit: a unique, countable piece of text with UTF-16 pitfalls and a line break. */
function marker(who: string, i: number): string {
  return `<${who}${i}${i % 3 === 0 ? "😀" : "字"}>${i % 5 === 0 ? "\n" : ""}`;
}

/** Insert `text` at a random boundary between markers, so markers never split each other. */
function typeMarker(editor: ShadowEditor, rand: () => number, insert: string): void {
  const boundaries = [0];
  const text = editor.text;
  for (let i = 0; i < text.length; i++) {
    // After a marker's line break, or after a marker that has none (never between the two).
    if (text[i] === "\n" || (text[i] === ">" && text[i + 1] !== "\n")) boundaries.push(i + 1);
  }
  const at = boundaries[Math.floor(rand() * boundaries.length)] ?? 0;
  editor.type(at, at, insert);
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

test("edits made before, during and after a server restart arrive exactly once", { timeout: 90_000 }, async (t) => {
  const first = await startServer(dataDir);
  servers.push(first);
  const [aliceToken, bobToken] = await Promise.all([mintUserToken(dataDir, "alice"), mintUserToken(dataDir, "bob")]);
  let currentUrl = first.url;
  const sockets = new Sockets();
  const options = {
    createSocket: sockets.factory,
    reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
    requestTimeoutMs: 15_000,
  };
  // The URL provider is asked on every attempt: after the restart it gives the new port.
  const alice = await CodeSphereClient.connect(() => currentUrl, { ...options, token: aliceToken, name: "Alice", clientId: "web-alice" });
  const bob = await CodeSphereClient.connect(() => currentUrl, { ...options, token: bobToken, name: "Bob", clientId: "web-bob" });
  clients.push(alice, bob);
  const roomId = await alice.createRoom("restart");
  await alice.join(roomId);
  await bob.join(roomId);
  await alice.createFile("log.txt", "");
  const docA = await alice.open("log.txt");
  const docB = await bob.open("log.txt");
  const editorA = new ShadowEditor(docA);
  const editorB = new ShadowEditor(docB);
  const states: Record<string, ConnectionState[]> = { alice: [], bob: [] };
  alice.on("state", (s) => states["alice"]?.push(s.state));
  bob.on("state", (s) => states["bob"]?.push(s.state));
  // Each "offline" here must promise a retry: `retryInMs: null` means none is coming (a page
  // shows the session as over), which was once announced for a moment on every disconnect.
  const offlineWithoutRetry: string[] = [];
  for (const [who, client] of [["alice", alice], ["bob", bob]] as const) {
    client.on("state", (s) => {
      if (s.state === "offline" && s.retryInMs === null) offlineWithoutRetry.push(`${who} (close code ${s.closeCode})`);
    });
  }
  let atDisconnect = "";
  alice.on("state", (s) => {
    if (s.state !== "offline" || atDisconnect !== "") return;
    atDisconnect = `kept ${docA.pendingEdits.length} edit(s) (${docA.unacked} unacknowledged), ${docA.snapshot.unsent} unsent change(s)`;
  });

  const randA = random(11);
  const randB = random(23);
  const typeRange = async (from: number, to: number, onStep?: (i: number) => void) => {
    for (let i = from; i <= to; i++) {
      typeMarker(editorA, randA, marker("a", i));
      typeMarker(editorB, randB, marker("b", i));
      onStep?.(i);
      await sleep(Math.floor(randA() * 4));
    }
  };

  // Phase 1: both type; at step 25 the server is told to stop, mid-typing.
  let stopping: Promise<void> | null = null;
  await typeRange(1, 40, (i) => {
    if (i === 25) stopping = first.stop("SIGTERM");
  });
  assert.ok(stopping !== null);
  await within(stopping, 15_000, "the first server stopping");
  await waitFor(() => alice.state === "offline" && bob.state === "offline", 5_000, "both clients to notice");

  // Phase 2: still typing with no server at all.
  await typeRange(41, 60);
  assert.ok(docA.snapshot.unsent > 0, "edits typed offline are kept");
  assert.equal(docA.text.includes(marker("a", 60)), true);

  // Phase 3: a new server on the same data, on another port; typing goes on while they reconnect.
  const second = await startServer(dataDir);
  servers.push(second);
  currentUrl = second.url;
  await typeRange(61, 80);
  await waitFor(() => alice.state === "online" && bob.state === "online", 15_000, "both clients to come back online");
  await typeRange(81, 90);

  await within(Promise.all([docA.settled(20_000), docB.settled(20_000)]), 25_000, "settling");
  await waitFor(() => docA.text === docB.text && docA.revision === docB.revision, 10_000, "convergence");

  for (let i = 1; i <= 90; i++) {
    for (const who of ["a", "b"]) {
      assert.equal(count(docA.text, marker(who, i)), 1, `${marker(who, i)} appears exactly once`);
    }
  }
  assert.equal(docA.text.length, [...Array(90).keys()].reduce((n, i) => n + marker("a", i + 1).length + marker("b", i + 1).length, 0));
  assert.deepEqual(editorA.mismatches, []);
  assert.deepEqual(editorB.mismatches, []);
  assert.equal(editorA.text, docA.text);
  assert.equal(editorB.text, docB.text);
  assert.equal(docA.snapshot.lostEdits + docB.snapshot.lostEdits, 0, "no edit was abandoned");
  assert.deepEqual(offlineWithoutRetry, [], "every offline state while the server was down announced a retry");
  assert.equal(await docA.checksum(), true);
  assert.equal(await docB.checksum(), true);

  // A fresh client on the new server sees the same bytes.
  const carol = await CodeSphereClient.connect(second.url, { ...options, token: aliceToken, name: "Carol" });
  clients.push(carol);
  await carol.join(roomId);
  const docC: RemoteDocument = await carol.open("log.txt");
  assert.equal(docC.text, docA.text);
  assert.equal(docC.revision, docA.revision);

  for (const who of ["alice", "bob"] as const) {
    const seen = states[who] ?? [];
    assert.ok(seen.includes("offline"), `${who} went offline: ${seen.join(",")}`);
    assert.equal(seen.at(-1), "online", `${who} ended online: ${seen.join(",")}`);
  }
  assert.equal(alice.clientId, "web-alice", "the same clientId is used after reconnecting");
  t.diagnostic(`when the server went away alice ${atDisconnect}`);
});

test("a dropped socket (no close handshake) is noticed, and edits made meanwhile are resent", { timeout: 60_000 }, async () => {
  const server = servers.at(-1);
  assert.ok(server !== undefined);
  const token = await mintUserToken(dataDir, "dora");
  const sockets = new Sockets();
  const dora = await CodeSphereClient.connect(server.url, {
    token,
    name: "Dora",
    createSocket: sockets.factory,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
  });
  clients.push(dora);
  const roomId = await dora.createRoom("drops");
  await dora.join(roomId);
  await dora.createFile("d.txt", "");
  const doc = await dora.open("d.txt");
  const editor = new ShadowEditor(doc);
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 10; i++) editor.type(editor.text.length, editor.text.length, `${round}.${i}😀\n`);
    sockets.cutLatest(); // with edits in flight and gathered
    for (let i = 10; i < 15; i++) editor.type(editor.text.length, editor.text.length, `${round}.${i}字\n`);
    await within(doc.settled(10_000), 12_000, `settling after drop ${round}`);
  }
  // An explicit reconnect (as an app's "reconnect now" button would do) with edits in flight.
  editor.type(editor.text.length, editor.text.length, "manual\n");
  await within(dora.reconnect(server.url), 10_000, "reconnecting on request");
  editor.type(editor.text.length, editor.text.length, "after\n");
  await within(doc.settled(10_000), 12_000, "settling after the explicit reconnect");
  const expected =
    Array.from({ length: 5 }, (_, round) =>
      Array.from({ length: 15 }, (__, i) => `${round}.${i}${i < 10 ? "😀" : "字"}\n`).join(""),
    ).join("") + "manual\nafter\n";
  assert.equal(doc.text, expected);
  assert.equal(await doc.checksum(), true);
  assert.ok(sockets.all.length >= 7, "one socket per reconnect");
  assert.equal(dora.state, "online");
});

test("an edit committed but never acknowledged is not applied twice when resent", { timeout: 60_000 }, async () => {
  const server = servers.at(-1);
  assert.ok(server !== undefined);
  const [doraToken, eveToken] = await Promise.all([mintUserToken(dataDir, "dora2"), mintUserToken(dataDir, "eve")]);
  const sockets = new Sockets();
  const options = { createSocket: sockets.factory, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } };
  const dora = await CodeSphereClient.connect(server.url, { ...options, token: doraToken, name: "Dora" });
  clients.push(dora);
  const roomId = await dora.createRoom("exactly once");
  await dora.join(roomId);
  await dora.createFile("once.txt", "zero\n");
  const doc = await dora.open("once.txt");
  const eve = await CodeSphereClient.connect(server.url, { ...options, token: eveToken, name: "Eve" });
  clients.push(eve);
  await eve.join(roomId);
  const docE = await eve.open("once.txt");
  const doraSocket = sockets.all[0];
  assert.ok(doraSocket !== undefined);

  doc.insert(doc.text.length, "one 😀\n");
  await doc.settled();
  // The server commits "two" and answers, but the answer never reaches Dora.
  doraSocket.muted = true;
  doc.insert(doc.text.length, "two 字\n");
  await waitFor(() => docE.text.includes("two 字"), 5_000, "Eve to see the committed edit");
  doc.insert(doc.text.length, "three\n"); // gathered behind the unacknowledged one
  docE.insert(0, "eve\n"); // and the server moves on meanwhile
  assert.equal(doc.unacked, 1);
  doraSocket.terminate();
  await within(doc.settled(10_000), 12_000, "Dora settling after the resume");
  await waitFor(() => docE.text === doc.text, 5_000, "convergence");
  assert.equal(doc.text, "eve\nzero\none 😀\ntwo 字\nthree\n");
  assert.equal(await doc.checksum(), true);
  assert.equal(doc.snapshot.lostEdits, 0);
});

test("keystrokes typed while a reconnecting document re-opens are kept", { timeout: 60_000 }, async () => {
  const server = servers.at(-1);
  assert.ok(server !== undefined);
  const [token, otherToken] = await Promise.all([mintUserToken(dataDir, "fay"), mintUserToken(dataDir, "gus")]);
  const sockets = new Sockets();
  const options = { createSocket: sockets.factory, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } };
  const fay = await CodeSphereClient.connect(server.url, { ...options, token, name: "Fay" });
  const faySocket = sockets.latest;
  const gus = await CodeSphereClient.connect(server.url, { ...options, token: otherToken, name: "Gus" });
  clients.push(fay, gus);
  const roomId = await fay.createRoom("typing through");
  await fay.join(roomId);
  await gus.join(roomId);
  await fay.createFile("t.txt", "abc\n");
  const doc = await fay.open("t.txt");
  const docG = await gus.open("t.txt");
  const editor = new ShadowEditor(doc);
  await doc.settled();
  faySocket.muted = true; // Fay misses Gus's edit: the reconnect must bring it
  docG.insert(0, "gus ");
  await docG.settled();
  await waitFor(() => faySocket.dropped > 0, 5_000, "Fay to miss Gus's edit");
  // Type the moment the document starts re-opening, i.e. while its didOpen is in flight.
  let typed = false;
  const off = doc.on("state", (s) => {
    if (s.status !== "resyncing" || typed) return;
    typed = true;
    // A microtask runs after the didOpen has been queued, and before its answer can arrive.
    queueMicrotask(() => editor.type(editor.text.length, editor.text.length, "typed while re-opening\n"));
  });
  faySocket.terminate();
  await waitFor(() => typed, 5_000, "the re-open to start");
  off();
  await within(doc.settled(10_000), 12_000, "settling");
  await waitFor(() => docG.text === doc.text, 5_000, "convergence");
  assert.equal(doc.text, "gus abc\ntyped while re-opening\n");
  assert.equal(editor.text, doc.text);
  assert.deepEqual(editor.mismatches, []);
  assert.equal(doc.snapshot.lostEdits, 0);
});
