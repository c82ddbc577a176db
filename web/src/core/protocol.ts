/**
 * The shapes of protocol.md's messages, and their checked parsing.
 *
 * Everything the server sends arrives as `unknown` from `JSON.parse`; this module is the one
 * boundary where it becomes typed. Each parser checks the fields the client relies on and
 * throws `ProtocolViolation` otherwise, so the rest of the core never trusts an unchecked cast.
 */

import { ProtocolViolation } from "./errors.js";
import type { ContentChange, Position, Range } from "./positions.js";

export type Role = "owner" | "editor" | "viewer";
export type Eol = "\n" | "\r\n";

export interface Member {
  memberId: string;
  name: string;
  color: string;
  role: Role;
  online: boolean;
}

export interface FileInfo {
  path: string;
  revision: number;
  eol: Eol;
}

export interface Selection {
  anchor: Position;
  /** Where the cursor is. */
  active: Position;
}

/** `presence/didChange`: where another member is (positions at `revision`, the head). */
export interface Presence {
  memberId: string;
  name: string;
  color: string;
  path: string | null;
  revision: number | null;
  selections: Selection[];
}

export interface ChatMessage {
  id: string;
  seq: number;
  memberId: string;
  name: string;
  /** Render as text, never as markup. */
  text: string;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
}

export interface Invite {
  inviteId: string;
  role: Role;
  createdAt: number;
  expiresAt: number;
  maxUses: number | null;
  uses: number;
  revoked: boolean;
  /** The token to share; null once revoked. */
  token: string | null;
}

export interface InitializeResult {
  clientId: string;
  positionEncoding: string;
  serverInfo: { name: string; version: string };
  limits: Readonly<Record<string, number>>;
}

export interface JoinResult {
  room: { id: string; name: string };
  you: Member;
  members: Member[];
  files: FileInfo[];
  memberToken: string | null;
}

export interface OpenResult {
  path: string;
  text: string;
  revision: number;
  eol: Eol;
  lastSeq: number;
}

export interface AckResult {
  revision: number;
  catchUp: ContentChange[];
}

export interface RemoteChangeParams {
  path: string;
  revision: number;
  memberId: string;
  contentChanges: ContentChange[];
}

// -- checking helpers -------------------------------------------------------------------------

type JsonObject = Readonly<Record<string, unknown>>;

function fail(what: string, expected: string, value: unknown): never {
  const shown = JSON.stringify(value);
  const clipped = shown === undefined ? String(value) : shown.slice(0, 80);
  throw new ProtocolViolation(`${what}: expected ${expected}, got ${clipped}`);
}

export function object(value: unknown, what: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(what, "an object", value);
  }
  return value as JsonObject;
}

function array(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) fail(what, "an array", value);
  return value;
}

function string(o: JsonObject, key: string, what: string): string {
  const value = o[key];
  if (typeof value !== "string") fail(`${what}.${key}`, "a string", value);
  return value;
}

function integer(o: JsonObject, key: string, what: string): number {
  const value = o[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    fail(`${what}.${key}`, "an integer", value);
  }
  return value;
}

function boolean(o: JsonObject, key: string, what: string): boolean {
  const value = o[key];
  if (typeof value !== "boolean") fail(`${what}.${key}`, "a boolean", value);
  return value;
}

function role(o: JsonObject, key: string, what: string): Role {
  const value = o[key];
  if (value !== "owner" && value !== "editor" && value !== "viewer") {
    fail(`${what}.${key}`, "a role", value);
  }
  return value;
}

function eol(o: JsonObject, what: string): Eol {
  const value = o["eol"] ?? "\n"; // absent only from an older server: the default style
  if (value !== "\n" && value !== "\r\n") fail(`${what}.eol`, '"\\n" or "\\r\\n"', value);
  return value;
}

// -- parsers ----------------------------------------------------------------------------------

export function parsePosition(value: unknown, what: string): Position {
  const o = object(value, what);
  const line = integer(o, "line", what);
  const character = integer(o, "character", what);
  if (line < 0 || character < 0) fail(what, "a non-negative position", value);
  return { line, character };
}

export function parseRange(value: unknown, what: string): Range {
  const o = object(value, what);
  return { start: parsePosition(o["start"], `${what}.start`), end: parsePosition(o["end"], `${what}.end`) };
}

export function parseChange(value: unknown, what: string): ContentChange {
  const o = object(value, what);
  const text = string(o, "text", what);
  const range = o["range"];
  return range === undefined || range === null ? { text } : { range: parseRange(range, `${what}.range`), text };
}

export function parseChanges(value: unknown, what: string): ContentChange[] {
  return array(value, what).map((c, i) => parseChange(c, `${what}[${i}]`));
}

export function parseMember(value: unknown, what = "member"): Member {
  const o = object(value, what);
  return {
    memberId: string(o, "memberId", what),
    name: string(o, "name", what),
    color: string(o, "color", what),
    role: role(o, "role", what),
    online: boolean(o, "online", what),
  };
}

export function parseFileInfo(value: unknown, what = "file"): FileInfo {
  const o = object(value, what);
  return { path: string(o, "path", what), revision: integer(o, "revision", what), eol: eol(o, what) };
}

export function parseFiles(value: unknown, what = "files"): FileInfo[] {
  return array(value, what).map((f, i) => parseFileInfo(f, `${what}[${i}]`));
}

export function parseInitialize(value: unknown): InitializeResult {
  const o = object(value, "initialize");
  const capabilities = object(o["capabilities"], "initialize.capabilities");
  const serverInfo = object(o["serverInfo"] ?? {}, "initialize.serverInfo");
  const limits: Record<string, number> = {};
  for (const [key, limit] of Object.entries(object(o["limits"] ?? {}, "initialize.limits"))) {
    if (typeof limit === "number") limits[key] = limit;
  }
  return {
    clientId: string(o, "clientId", "initialize"),
    positionEncoding: string(capabilities, "positionEncoding", "initialize.capabilities"),
    serverInfo: {
      name: typeof serverInfo["name"] === "string" ? serverInfo["name"] : "",
      version: typeof serverInfo["version"] === "string" ? serverInfo["version"] : "",
    },
    limits,
  };
}

export function parseJoin(value: unknown): JoinResult {
  const o = object(value, "room/join");
  const room = object(o["room"], "room/join.room");
  const token = o["memberToken"];
  return {
    room: { id: string(room, "id", "room/join.room"), name: string(room, "name", "room/join.room") },
    you: parseMember(o["you"], "room/join.you"),
    members: array(o["members"], "room/join.members").map((m, i) => parseMember(m, `room/join.members[${i}]`)),
    files: parseFiles(o["files"], "room/join.files"),
    memberToken: typeof token === "string" && token.length > 0 ? token : null,
  };
}

export function parseOpen(value: unknown): OpenResult {
  const o = object(value, "didOpen");
  const lastSeq = o["lastSeq"];
  return {
    path: string(o, "path", "didOpen"),
    text: string(o, "text", "didOpen"),
    revision: integer(o, "revision", "didOpen"),
    eol: eol(o, "didOpen"),
    lastSeq: typeof lastSeq === "number" && Number.isSafeInteger(lastSeq) ? lastSeq : 0,
  };
}

export function parseAck(value: unknown): AckResult {
  const o = object(value, "didChange");
  const catchUp = o["catchUp"];
  return {
    revision: integer(o, "revision", "didChange"),
    catchUp: catchUp === undefined || catchUp === null ? [] : parseChanges(catchUp, "didChange.catchUp"),
  };
}

export function parseRemoteChange(value: unknown): RemoteChangeParams {
  const o = object(value, "remoteChange");
  return {
    path: string(o, "path", "remoteChange"),
    revision: integer(o, "revision", "remoteChange"),
    memberId: typeof o["memberId"] === "string" ? o["memberId"] : "",
    contentChanges: parseChanges(o["contentChanges"], "remoteChange.contentChanges"),
  };
}

export function parseSelections(value: unknown, what: string): Selection[] {
  if (value === undefined || value === null) return [];
  return array(value, what).map((s, i) => {
    const o = object(s, `${what}[${i}]`);
    return {
      anchor: parsePosition(o["anchor"], `${what}[${i}].anchor`),
      active: parsePosition(o["active"], `${what}[${i}].active`),
    };
  });
}

export function parsePresence(value: unknown): Presence {
  const o = object(value, "presence");
  const path = o["path"];
  const revision = o["revision"];
  return {
    memberId: string(o, "memberId", "presence"),
    name: typeof o["name"] === "string" ? o["name"] : "",
    color: typeof o["color"] === "string" ? o["color"] : "",
    path: typeof path === "string" ? path : null,
    revision: typeof revision === "number" && Number.isSafeInteger(revision) ? revision : null,
    selections: parseSelections(o["selections"], "presence.selections"),
  };
}

export function parseChatMessage(value: unknown, what = "chat message"): ChatMessage {
  const o = object(value, what);
  return {
    id: string(o, "id", what),
    seq: integer(o, "seq", what),
    memberId: string(o, "memberId", what),
    name: string(o, "name", what),
    text: string(o, "text", what),
    timestamp: integer(o, "timestamp", what),
  };
}

export function parseInvite(value: unknown): Invite {
  const o = object(value, "invite");
  const maxUses = o["maxUses"];
  const token = o["token"];
  return {
    inviteId: string(o, "inviteId", "invite"),
    role: role(o, "role", "invite"),
    createdAt: integer(o, "createdAt", "invite"),
    expiresAt: integer(o, "expiresAt", "invite"),
    maxUses: typeof maxUses === "number" ? maxUses : null,
    uses: integer(o, "uses", "invite"),
    revoked: boolean(o, "revoked", "invite"),
    token: typeof token === "string" ? token : null,
  };
}

/** A `Position` as sent on the wire (plain data, no prototype surprises). */
export function positionJson(position: Position): { line: number; character: number } {
  return { line: position.line, character: position.character };
}

/** A `ContentChange` as sent on the wire. */
export function changeJson(change: ContentChange): Record<string, unknown> {
  if (change.range === undefined) return { text: change.text };
  return {
    range: { start: positionJson(change.range.start), end: positionJson(change.range.end) },
    text: change.text,
  };
}
