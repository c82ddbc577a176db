// Two (and more) TypeScript clients against a real server: concurrent typing converges, chat,
// presence, members, files, a viewer's refused edit, invite member tokens, and takeover (4001).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  CloseCode,
  CodeSphereClient,
  Forbidden,
  sha256Hex,
  splitsSurrogatePair,
  type ClientOptions,
  type ConnectionState,
  type RemoteDocument,
} from "../src/core/index.js";
import { ShadowEditor } from "./helpers/editor.js";
import {
  makeDataDir,
  mintUserToken,
  nextEvent,
  random,
  removeDataDir,
  sleep,
  Sockets,
  startServer,
  waitFor,
  within,
  type TestServer,
  type TestSocket,
} from "./helpers/server.js";

const TEST_TIMEOUT = 60_000;

let server: TestServer;
let dataDir: string;
let aliceToken: string;
let bobToken: string;
let erinToken: string;
let carolToken: string;
let twinToken: string;
let roomId: string;
const sockets = new Sockets();
const clients: CodeSphereClient[] = [];

async function connect(name: string, token: string, extra: ClientOptions = {}): Promise<CodeSphereClient> {
  const client = await within(
    CodeSphereClient.connect(server.url, {
      token,
      name,
      createSocket: sockets.factory,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      requestTimeoutMs: 15_000,
      ...extra,
    }),
    10_000,
    `${name} connecting`,
  );
  clients.push(client);
  return client;
}

/** Pieces of text that exercise UTF-16: emoji (surrogate pairs, ZWJ), CJK, combining marks, newlines. */
const PIECES = ["a", "b", "z", " ", "字", "漢字", "😀", "👩‍💻", "e\u0301", "\n", "ñ", "🇫🇷", "x\ny"];

/** A random edit of `text`: an insertion, a deletion or a replacement, never cutting a surrogate pair. */
function randomEdit(rand: () => number, text: string): [number, number, string] {
  const pick = (n: number) => Math.floor(rand() * n);
  const piece = () => PIECES[pick(PIECES.length)] ?? "?";
  const whole = (offset: number, direction: -1 | 1) => (splitsSurrogatePair(text, offset) ? offset + direction : offset);
  if (text.length > 0 && rand() < 0.35) {
    const start = whole(pick(text.length), -1);
    const end = whole(Math.min(text.length, start + 1 + pick(4)), 1);
    return [start, end, rand() < 0.3 ? piece() : ""];
  }
  const at = whole(pick(text.length + 1), -1);
  return [at, at, piece() + (rand() < 0.3 ? piece() : "")];
}

async function typeRandomly(editor: ShadowEditor, rand: () => number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const [start, end, text] = randomEdit(rand, editor.text);
    editor.type(start, end, text);
    const pause = rand();
    // Mostly keep typing without waiting for anything; sometimes let the network in.
    if (pause < 0.25) await sleep(Math.floor(rand() * 4));
    else if (pause < 0.6) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Both documents settled, at the same revision with the same text. */
async function converged(docs: RemoteDocument[], timeoutMs = 20_000): Promise<void> {
  await within(Promise.all(docs.map((d) => d.settled(timeoutMs))), timeoutMs + 1_000, "settling");
  const [first, ...rest] = docs;
  assert.ok(first !== undefined);
  await waitFor(
    () => rest.every((d) => d.revision === first.revision && d.text === first.text),
    timeoutMs,
    "the documents to converge",
  );
}

before(async () => {
  dataDir = makeDataDir();
  [aliceToken, bobToken, carolToken, erinToken, twinToken] = (await Promise.all(
    ["alice", "bob", "carol", "erin", "twin"].map((user) => mintUserToken(dataDir, user)),
  )) as [string, string, string, string, string];
  server = await startServer(dataDir);
});

after(async () => {
  await Promise.all(clients.map((c) => within(c.close(), 5_000, "closing a client").catch(() => undefined)));
  await server.stop("SIGTERM");
  removeDataDir(dataDir);
});

describe("collaboration against a real server", () => {
  let alice: CodeSphereClient;
  let bob: CodeSphereClient;
  let bobSocket: TestSocket;

  test("connect, create a room and join it", { timeout: TEST_TIMEOUT }, async () => {
    const states: ConnectionState[] = [];
    alice = await connect("Alice", aliceToken);
    alice.on("state", (s) => states.push(s.state));
    assert.equal(alice.state, "online");
    assert.match(alice.clientId ?? "", /^[A-Za-z0-9_.-]{1,64}$/);
    roomId = await alice.createRoom("web tests", [{ path: "README.md", text: "# hi\r\nthere\r\n" }]);
    const joined = await alice.join(roomId);
    assert.equal(joined.you.role, "owner");
    assert.deepEqual(
      [...alice.files.values()].map((f) => [f.path, f.eol]),
      [["README.md", "\r\n"]],
    );
    const readme = await alice.open("README.md");
    assert.equal(readme.text, "# hi\nthere\n", "the canonical text uses \\n; eol is metadata");
    assert.equal(readme.eol, "\r\n");
    bob = await connect("Bob", bobToken);
    bobSocket = sockets.latest;
    const joinedSeen = nextEvent(alice, "memberJoined", (m) => m.name === "Bob");
    await bob.join(roomId);
    const member = await joinedSeen;
    assert.equal(member.online, true);
    assert.equal(alice.members.get(member.memberId)?.name, "Bob");
    assert.deepEqual(states, [], "no state change while online");
  });

  test("two clients typing at once converge byte for byte", { timeout: TEST_TIMEOUT }, async () => {
    await alice.createFile("race.txt", "start\n");
    const [docA, docB] = await Promise.all([alice.open("race.txt"), bob.open("race.txt")]);
    const editorA = new ShadowEditor(docA);
    const editorB = new ShadowEditor(docB);
    // Evidence that the schedule really was concurrent: catch-ups carrying the other's edits.
    const sources = { ack: 0, remote: 0, resync: 0 };
    for (const doc of [docA, docB]) doc.on("change", (e) => (sources[e.source] += 1));
    for (const seed of [1, 2, 3]) {
      await Promise.all([
        typeRandomly(editorA, random(seed * 7919), 250),
        typeRandomly(editorB, random(seed * 104729), 250),
      ]);
      await converged([docA, docB]);
    }
    assert.ok(sources.ack > 0, `no acknowledgement brought the other's edits: ${JSON.stringify(sources)}`);
    assert.ok(sources.remote > 0, `no remote change was applied: ${JSON.stringify(sources)}`);
    assert.equal(sources.resync, 0);
    assert.deepEqual(editorA.mismatches, []);
    assert.deepEqual(editorB.mismatches, []);
    assert.equal(editorA.text, docA.text);
    assert.equal(editorB.text, docB.text);
    assert.equal(docA.text, docB.text);
    assert.ok(docA.text.length > 0);
    // The server agrees: the head's checksum, and a fresh open by a third client.
    const head = await alice.checksum("race.txt");
    assert.equal(head.revision, docA.revision);
    assert.equal(head.sha256, await sha256Hex(docA.text));
    assert.equal(await docA.checksum(), true);
    assert.equal(await docB.checksum(), true);
    const carol = await connect("Carol", carolToken);
    await carol.join(roomId);
    const docC = await carol.open("race.txt");
    assert.equal(docC.text, docA.text);
    assert.equal(docC.revision, docA.revision);
    assert.equal(Buffer.from(docC.text, "utf8").equals(Buffer.from(docB.text, "utf8")), true);
    assert.equal(docA.snapshot.lostEdits + docB.snapshot.lostEdits, 0, "nothing was lost");
    assert.equal(alice.health.unacked, 0);
    await carol.close();
  });

  test("chat round trip", { timeout: TEST_TIMEOUT }, async () => {
    const atBob = nextEvent(bob, "chat", (m) => m.text === "hi Bob <b>not bold</b> 😀");
    const atAlice = nextEvent(alice, "chat", (m) => m.text === "hi Bob <b>not bold</b> 😀");
    const sent = await alice.sendChat("hi Bob <b>not bold</b> 😀");
    const [received, echoed] = await Promise.all([atBob, atAlice]);
    assert.deepEqual(received, sent);
    assert.deepEqual(echoed, sent, "the sender receives its own message too");
    assert.equal(sent.memberId, alice.me?.memberId);
    await bob.sendChat("hello Alice");
    const history = await bob.chatHistory({ limit: 10 });
    assert.deepEqual(
      history.messages.map((m) => m.text),
      ["hi Bob <b>not bold</b> 😀", "hello Alice"],
    );
    assert.equal(history.hasMore, false);
    const older = await bob.chatHistory({ before: history.messages[1]?.seq ?? 0, limit: 1 });
    assert.deepEqual(older.messages, [sent]);
  });

  test("a remote change lost on the way (a gap) makes the document re-open itself", { timeout: TEST_TIMEOUT }, async () => {
    await alice.createFile("gap.txt", "base\n");
    const [docA, docB] = await Promise.all([alice.open("gap.txt"), bob.open("gap.txt")]);
    const editorB = new ShadowEditor(docB);
    bobSocket.muted = true;
    const droppedBefore = bobSocket.dropped;
    docA.insert(0, "1");
    await docA.settled();
    await waitFor(() => bobSocket.dropped > droppedBefore, 5_000, "Bob's copy of the change to be lost");
    bobSocket.muted = false;
    const resynced = nextEvent(docB, "resync");
    docA.insert(0, "2"); // Bob, at the old revision with nothing pending, sees a gap
    const report = await resynced;
    assert.equal(report.lostEdits, 0);
    assert.match(report.reason, /got revision \d+ at revision \d+/);
    await docB.settled();
    await waitFor(() => docB.text === docA.text, 5_000, "Bob to catch up");
    assert.equal(docB.text, "21base\n");
    assert.equal(editorB.text, docB.text);
    assert.deepEqual(editorB.mismatches, []);
  });

  test("presence round trip", { timeout: TEST_TIMEOUT }, async () => {
    await alice.createFile("presence.txt", "😀 first line\n字 second\n");
    const [docA] = await Promise.all([alice.open("presence.txt"), bob.open("presence.txt")]);
    const seen = nextEvent(bob, "presence", (p) => p.memberId === alice.me?.memberId && p.path === "presence.txt");
    const cursor = docA.positionAt(docA.text.indexOf("second")); // line 1, after 字 and a space
    await alice.updatePresence("presence.txt", [{ anchor: { line: 0, character: 2 }, active: cursor }]);
    const presence = await seen;
    assert.equal(presence.name, "Alice");
    assert.deepEqual(presence.selections, [{ anchor: { line: 0, character: 2 }, active: { line: 1, character: 2 } }]);
    assert.equal(presence.revision, docA.revision);
    assert.deepEqual(bob.presence.get(presence.memberId), presence);
    // Whoever opens the document later is told where the others are.
    const carol = await connect("Carol", carolToken);
    const told = nextEvent(carol, "presence", (p) => p.memberId === alice.me?.memberId);
    await carol.join(roomId);
    await carol.open("presence.txt");
    assert.deepEqual((await told).selections, presence.selections);
    // Looking at no document: the server tells those in the previous one (path null).
    const left = nextEvent(bob, "presence", (p) => p.memberId === alice.me?.memberId && p.path === null);
    await alice.updatePresence(null);
    assert.deepEqual((await left).selections, []);
    await carol.close();
  });

  test("files: create, rename and delete reach the others; an open document follows a rename", { timeout: TEST_TIMEOUT }, async () => {
    const created = nextEvent(bob, "fileCreated", (f) => f.path === "old/name.ts");
    await alice.createFile("old/name.ts", "let x = 1;\n");
    assert.equal((await created).revision, 0);
    const docB = await bob.open("old/name.ts");
    const renamed = nextEvent(bob, "fileRenamed", (f) => f.path === "old/name.ts");
    await alice.renameFile("old/name.ts", "new/name.ts");
    assert.equal((await renamed).newPath, "new/name.ts");
    assert.equal(docB.path, "new/name.ts");
    assert.equal(bob.documents.get("new/name.ts"), docB);
    docB.insert(docB.text.length, "let y = 2;\n");
    await docB.settled();
    const docA = await alice.open("new/name.ts");
    assert.equal(docA.text, "let x = 1;\nlet y = 2;\n");
    const listed = await bob.listFiles();
    assert.ok(listed.some((f) => f.path === "new/name.ts"));
    const closed = nextEvent(docB, "closed");
    const deleted = nextEvent(bob, "fileDeleted", (f) => f.path === "new/name.ts");
    await alice.deleteFile("new/name.ts");
    await deleted;
    await closed;
    assert.equal(docB.isClosed, true);
    assert.equal(docA.isClosed, true);
    assert.throws(() => docB.insert(0, "x"), /closed/);
  });

  test("a viewer's edit is Forbidden and its document resyncs to the server's text", { timeout: TEST_TIMEOUT }, async () => {
    await alice.createFile("view.txt", "read only 😀\n");
    const docA = await alice.open("view.txt");
    const invite = await alice.createInvite("viewer", { maxUses: 1 });
    assert.equal(invite.role, "viewer");
    assert.ok(invite.token !== null);
    const viewer = await connect("Vic", invite.token);
    const joined = await viewer.join(); // the invite names the room
    assert.equal(joined.you.role, "viewer");
    assert.ok(joined.memberToken !== null);
    assert.equal(viewer.currentToken, joined.memberToken, "reconnects use the member token, not the invite");
    const docV = await viewer.open("view.txt");
    const editor = new ShadowEditor(docV);
    const resynced = nextEvent(docV, "resync");
    editor.type(0, 0, "viewer was here ");
    assert.equal(docV.text, "viewer was here read only 😀\n", "applied locally at once");
    const report = await resynced;
    assert.equal(report.lostEdits, 1);
    assert.equal(docV.snapshot.lastError?.code, Forbidden);
    assert.equal(viewer.lastError?.code, Forbidden);
    await docV.settled();
    assert.equal(docV.text, "read only 😀\n");
    assert.equal(editor.text, docV.text, "the editor's buffer was given the change back");
    assert.deepEqual(editor.mismatches, []);
    assert.equal(await docV.checksum(), true);
    // The viewer still follows everyone else's edits.
    docA.insert(0, ">> ");
    await waitFor(() => docV.text === ">> read only 😀\n", 5_000, "the viewer to see the edit");

    // The invite was for one use: a reconnect works only because it uses the member token.
    const offline = nextEvent(viewer, "state", (s) => s.state === "offline");
    const online = nextEvent(viewer, "state", (s) => s.state === "online", 10_000);
    sockets.all.at(-1)?.terminate(); // Vic's socket is the newest
    await offline;
    await online;
    assert.equal(viewer.role, "viewer");
    docA.insert(0, "again ");
    await waitFor(() => docV.text === "again >> read only 😀\n", 5_000, "the viewer to see edits after reconnecting");
  });

  test("a second connection with the same clientId takes over; the first does not fight back", { timeout: TEST_TIMEOUT }, async () => {
    const first = await connect("Twin", twinToken, { clientId: "web-twin-1" });
    await first.join(roomId);
    const replaced = nextEvent(first, "state", (s) => s.state === "offline");
    const second = await connect("Twin", twinToken, { clientId: "web-twin-1" });
    const state = await replaced;
    assert.equal(state.closeCode, CloseCode.Replaced);
    assert.equal(state.retryInMs, null, "no automatic reconnect after a takeover");
    await second.join(roomId);
    await sleep(300);
    assert.equal(first.state, "offline");
    assert.equal(second.state, "online");
  });

  test("members joining and leaving are announced", { timeout: TEST_TIMEOUT }, async () => {
    const erin = await connect("Erin", erinToken);
    const joined = nextEvent(alice, "memberJoined", (m) => m.name === "Erin");
    await erin.join(roomId);
    const member = await joined;
    const left = nextEvent(alice, "memberLeft", (m) => m.memberId === member.memberId);
    await erin.close();
    await left;
    assert.equal(alice.members.get(member.memberId)?.online, false);
    assert.equal(erin.state, "offline");
  });
});
