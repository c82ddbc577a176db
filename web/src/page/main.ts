/**
 * The CodeSphere page: join a room from a link, then edit its files together in Monaco, with
 * everyone's cursors, a member list with follow mode, chat and (for owners) invites.
 *
 * Everything that talks to the server goes through the client core (../core); this module
 * only wires the page's parts to it and to each other.
 */

// First: Monaco reads its environment (where its workers are) when it starts them.
import "./monaco-env.js";
import "./monaco-errors.js";
import "./styles.css";

import type * as monaco from "monaco-editor";

import { CloseCode, type CodeSphereClient, type ConnectionStateEvent, type JoinResult, type Role } from "../core/index.js";
import { ChatPanel } from "./chat.js";
import { RemoteCursors } from "./cursors.js";
import { describeError } from "./dom.js";
import { FileTree } from "./files.js";
import { Follower } from "./follow.js";
import { InvitePanel } from "./invites.js";
import { buildLayout } from "./layout.js";
import { MemberList } from "./members.js";
import { askName } from "./name-dialog.js";
import { PresenceSender } from "./presence.js";
import { connectAndJoin, takeEntry, type Entry } from "./session.js";
import { StatusView } from "./status.js";
import { forgetAccess, readName, saveName } from "./storage.js";
import { Workspace } from "./workspace.js";

/** For tests and debugging, in the browser console: `codesphere.text()`, `codesphere.client`… */
export interface CodeSphereDebug {
  readonly client: CodeSphereClient | null;
  /** The Monaco editor, once joined (for debugging: its cursor, its options…). */
  readonly editor: monaco.editor.IStandaloneCodeEditor | null;
  /** The Monaco model text of the active file, or of `path` if it is open in a tab. */
  text(path?: string): string | undefined;
  /** Resolves once the room is joined and the page is drawn; rejects if joining failed. */
  readonly ready: Promise<void>;
}

declare global {
  interface Window {
    codesphere: CodeSphereDebug;
  }
}

const layout = buildLayout(document.body);
const status = new StatusView(layout);
let client: CodeSphereClient | null = null;
let workspace: Workspace | null = null;
let markReady: () => void = () => undefined;
let failReady: (error: unknown) => void = () => undefined;
const ready = new Promise<void>((resolve, reject) => {
  markReady = resolve;
  failReady = reject;
});
ready.catch(() => undefined); // a failed start shows in the error banner; nobody has to await this

window.codesphere = {
  get client() {
    return client;
  },
  get editor() {
    return workspace?.editor ?? null;
  },
  text: (path?: string) => workspace?.text(path),
  ready,
};

void start().catch((error: unknown) => {
  console.error("codesphere: the page failed to start:", error);
  status.showError(`The page failed to start: ${describeError(error)}`);
  failReady(error);
});

async function start(): Promise<void> {
  const entry = takeEntry();
  if (entry === null) {
    layout.landing.hidden = false;
    status.showState({ state: "offline", retryInMs: null, closeCode: null });
    failReady(new Error("no token: open an invite link"));
    return;
  }
  const name = readName() ?? (await askName(document.body));
  saveName(name);
  layout.me.textContent = name;

  let joined: { client: CodeSphereClient; join: JoinResult };
  try {
    joined = await connectAndJoin(entry, name, (c) => {
      client = c;
      c.on("state", (event) => status.showState(event));
      c.on("health", (health) => status.showHealth(health));
      c.on("error", (info) => console.debug("codesphere:", info.message));
    });
  } catch (error) {
    status.showError(describeError(error));
    failReady(error);
    return;
  }
  setUp(joined.client, joined.join, entry);
}

function setUp(c: CodeSphereClient, join: JoinResult, entry: Entry): void {
  status.clearError();
  layout.roomName.textContent = join.room.name;
  document.title = `${join.room.name} — CodeSphere`;
  const role = join.you.role;
  status.showRole(role);

  const ws = new Workspace(layout, c, status, role === "viewer");
  workspace = ws;
  const files = new FileTree(layout.filesSection, c, ws, status);
  files.setCanEdit(role !== "viewer");
  const follower = new Follower(c, ws, layout.statusBar);
  const members = new MemberList(layout.membersSection, c, follower);
  members.render();
  const cursors = new RemoteCursors(ws.editor, c, ws);
  new PresenceSender(c, ws);
  const chat = new ChatPanel(layout.chatSection, c);
  const invites = new InvitePanel(layout.invitesSection, c);
  invites.setVisible(role === "owner");

  const applyRole = (now: Role): void => {
    status.showRole(now);
    ws.setReadOnly(now === "viewer");
    files.setCanEdit(now !== "viewer");
    invites.setVisible(now === "owner");
  };

  // After a reconnect the core has re-joined and resumed every open document by itself; the
  // page re-reads what the join refreshed (members, files, role) and what it may have missed.
  let lost = false;
  let ended = false;
  c.on("state", (event) => {
    if (event.state === "offline" || event.state === "connecting") lost = true;
    if (event.state === "online" && lost) {
      lost = false;
      applyRole(c.role ?? role);
      files.render();
      members.render();
      cursors.renderAll();
      void chat.refresh();
      if (c.role === "owner") void invites.refresh();
    }
    if (event.state === "offline" && event.retryInMs === null && !ended) {
      ended = true;
      endSession(c, event, entry, ws);
    }
  });

  const loads = [chat.refresh(), role === "owner" ? invites.refresh() : Promise.resolve()];
  void Promise.all(loads).then(() => markReady());
}

/** The core stopped reconnecting: say why, and stop taking edits that could never be sent. */
function endSession(c: CodeSphereClient, event: ConnectionStateEvent, entry: Entry, ws: Workspace): void {
  ws.setReadOnly(true);
  const roomId = c.room?.id ?? entry.roomId;
  switch (event.closeCode) {
    case CloseCode.AccessRevoked:
      forgetAccess(roomId);
      status.showError("Your access to this room was revoked. Ask its owner for a new link.");
      return;
    case CloseCode.RoomDeleted:
      forgetAccess(roomId);
      status.showError("This room was deleted.");
      return;
    case CloseCode.Replaced:
      status.showError("This room was opened again with this tab's session, in another tab or window: this page stopped. Reload it to take over again.");
      return;
    default: {
      const last = c.lastError;
      status.showError(`Disconnected, and reconnecting was refused: ${last?.message ?? "unknown reason"}.`);
    }
  }
}
