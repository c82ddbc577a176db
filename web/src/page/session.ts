/**
 * Getting into the room: the token from the link (or the one remembered for the last room),
 * the connection, and the join.
 *
 * The link is `http://host/#token=<token>&room=<roomId>`. The token travels in the fragment so
 * that it never reaches the server's logs; it is taken out of the address bar at once (so it is
 * not bookmarked or shared by accident) and remembered in localStorage instead.
 */

import {
  CodeSphereClient,
  Forbidden,
  InvalidParams,
  RoomNotFound,
  RpcError,
  Unauthorized,
  type JoinResult,
} from "../core/index.js";
import { forgetAccess, lastRoom, readAccess, saveAccess, tabClientId, type StoredAccess } from "./storage.js";

export interface Entry {
  /** The token to connect with (a member token once an invite was redeemed). */
  readonly token: string;
  /** From the link; null for an invite link without `room=` (the token names the room). */
  readonly roomId: string | null;
  /** What to remember. */
  readonly access: StoredAccess;
}

/** Read (and remove) the link's token, or fall back to the remembered one; null if neither. */
export function takeEntry(): Entry | null {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token !== null && token.length > 0) {
    history.replaceState(history.state, "", window.location.pathname + window.location.search);
    const roomId = params.get("room") || null;
    const known = readAccess(roomId);
    // The same invite link opened again: reuse the membership it already gave us, instead of
    // redeeming the invite a second time (which would make another member).
    if (known !== null && known.token === token && known.memberToken !== undefined) {
      return { token: known.memberToken, roomId, access: known };
    }
    const access: StoredAccess = { token };
    saveAccess(roomId, access);
    return { token, roomId, access };
  }
  const roomId = lastRoom();
  const stored = readAccess(roomId) ?? (roomId !== null ? null : readAccess(null));
  if (stored === null) return null;
  return { token: stored.memberToken ?? stored.token, roomId, access: stored };
}

/** The server will not have us: a bad or revoked token, or a link for a room it does not open. */
export class Refused extends Error {
  override name = "Refused";
}

const REFUSALS = new Set<number>([Unauthorized, Forbidden, RoomNotFound, InvalidParams]);

function refusal(error: unknown): Refused | null {
  return error instanceof RpcError ? refusalOf(error.code, error.message) : null;
}

function refusalOf(code: number | undefined, message: string): Refused | null {
  if (code === undefined || !REFUSALS.has(code)) return null;
  const why =
    code === Unauthorized
      ? "This link's token is not valid"
      : code === Forbidden
        ? "This link does not (or no longer) give access to the room"
        : code === RoomNotFound
          ? "There is no such room"
          : "The server refused to join the room";
  return new Refused(`${why}. ${message}`);
}

export function socketUrl(): string {
  return `${window.location.protocol === "https:" ? "wss" : "ws"}://${window.location.host}/ws`;
}

/**
 * Connect and join. `onClient` gets the client before it connects, to listen to its states.
 * A server that cannot be reached is retried (by the core) until it answers; a refusal throws
 * `Refused` and forgets the remembered token.
 */
export async function connectAndJoin(
  entry: Entry,
  name: string,
  onClient: (client: CodeSphereClient) => void,
): Promise<{ client: CodeSphereClient; join: JoinResult }> {
  const client = new CodeSphereClient(socketUrl, {
    token: entry.token,
    name,
    clientId: tabClientId(),
    clientName: "codesphere-web",
  });
  onClient(client);
  try {
    await client.start();
  } catch (error) {
    const refused = refusal(error);
    if (refused !== null) throw forget(entry, refused);
    // Not reachable (yet): the core keeps trying with backoff from here.
    client.reconnect().catch(() => undefined);
  }
  for (;;) {
    await online(client);
    try {
      const join = await client.join(entry.roomId ?? undefined);
      saveAccess(join.room.id, {
        token: entry.access.token,
        ...(join.memberToken !== null ? { memberToken: join.memberToken } : entry.access.memberToken !== undefined ? { memberToken: entry.access.memberToken } : {}),
      });
      return { client, join };
    } catch (error) {
      const refused = refusal(error);
      if (refused !== null) throw forget(entry, refused);
      await new Promise((resolve) => window.setTimeout(resolve, 500)); // lost the connection: again
    }
  }
}

function forget(entry: Entry, error: Refused): Refused {
  forgetAccess(entry.roomId);
  return error;
}

/** Resolves once the client is connected; rejects if it stopped trying. */
function online(client: CodeSphereClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      if (client.state === "online") {
        resolve();
        return true;
      }
      return false;
    };
    if (check()) return;
    const off = client.on("state", ({ state, retryInMs }) => {
      if (check()) {
        off();
      } else if (state === "offline" && retryInMs === null) {
        off();
        const last = client.lastError;
        const refused = last !== null ? refusalOf(last.code, last.message) : null;
        reject(refused ?? new Error(last?.message ?? "could not connect"));
      }
    });
  });
}
