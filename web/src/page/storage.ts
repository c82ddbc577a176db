/**
 * What the page remembers in the browser: the display name, and per room the token that
 * admits us (the link's, and the member token an invite join hands out). Tokens come in the
 * URL's fragment, which never reaches the server's logs; we take them out of the address bar
 * at once and keep them here so that a later visit to `/` needs no link.
 *
 * Storage can be unavailable (private modes, disabled cookies): then nothing is remembered and
 * nothing fails.
 */

const NAME_KEY = "codesphere:name";
const LAST_ROOM_KEY = "codesphere:lastRoom";
/** An invite link without `room=`: its room is known only once joined. */
const PENDING_ROOM = "?";
const CLIENT_ID_KEY = "codesphere:clientId";

export interface StoredAccess {
  /** The token of the link we came in with. */
  readonly token: string;
  /** The member token an invite join returned: what admits us from then on. */
  readonly memberToken?: string;
}

function accessKey(roomId: string): string {
  return `codesphere:access:${roomId}`;
}

function read(storage: () => Storage, key: string): string | null {
  try {
    return storage().getItem(key);
  } catch {
    return null;
  }
}

function write(storage: () => Storage, key: string, value: string | null): void {
  try {
    if (value === null) storage().removeItem(key);
    else storage().setItem(key, value);
  } catch {
    // Not remembered; the session goes on.
  }
}

const local = (): Storage => window.localStorage;
const session = (): Storage => window.sessionStorage;

export function readName(): string | null {
  const name = read(local, NAME_KEY)?.trim();
  return name !== undefined && name.length > 0 ? name : null;
}

export function saveName(name: string): void {
  write(local, NAME_KEY, name);
}

export function readAccess(roomId: string | null): StoredAccess | null {
  const raw = read(local, accessKey(roomId ?? PENDING_ROOM));
  if (raw === null) return null;
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value !== "object" || value === null) return null;
    const { token, memberToken } = value as Record<string, unknown>;
    if (typeof token !== "string" || token.length === 0) return null;
    return typeof memberToken === "string" && memberToken.length > 0 ? { token, memberToken } : { token };
  } catch {
    return null;
  }
}

export function saveAccess(roomId: string | null, access: StoredAccess): void {
  write(local, accessKey(roomId ?? PENDING_ROOM), JSON.stringify(access));
  if (roomId !== null) {
    write(local, LAST_ROOM_KEY, roomId);
    write(local, accessKey(PENDING_ROOM), null);
  }
}

/** The token no longer admits us (invalid, revoked, room deleted): do not try it again. */
export function forgetAccess(roomId: string | null): void {
  write(local, accessKey(roomId ?? PENDING_ROOM), null);
  if (roomId !== null && read(local, LAST_ROOM_KEY) === roomId) write(local, LAST_ROOM_KEY, null);
}

export function lastRoom(): string | null {
  return read(local, LAST_ROOM_KEY);
}

/**
 * This tab's client id (protocol §2, §6.5). Per tab, not per browser: two tabs with one id
 * would keep taking the connection from each other (close code 4001). sessionStorage keeps it
 * across a reload, so a reloaded page replaces its old connection at once instead of leaving a
 * ghost behind until the server's heartbeat notices.
 */
export function tabClientId(): string {
  const stored = read(session, CLIENT_ID_KEY);
  if (stored !== null && /^[A-Za-z0-9_.-]{1,64}$/.test(stored)) return stored;
  // getRandomValues works in insecure contexts too (a LAN server over plain http).
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const id = `web-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  write(session, CLIENT_ID_KEY, id);
  return id;
}
