/**
 * `CodeSphereClient`: one connection to a CodeSphere server, one room, its documents,
 * presence and chat (protocol.md §2, §4, §5, §7, §8), with automatic reconnection (§6.5).
 *
 *     const client = await CodeSphereClient.connect("wss://host/ws", { token, name: "Ada" });
 *     await client.join(roomId);
 *     const doc = await client.open("main.py");
 *     doc.on("change", ({ changes }) => applyToEditor(changes));
 *     doc.insert(0, "# hello\n");
 *
 * After a dropped connection the client reconnects by itself with backoff, initializes with
 * the same clientId, re-joins the room (with the member token an invite join handed out), and
 * resumes every open document without losing the edits made meanwhile.
 */

import {
  CloseCode,
  ConnectionLost,
  DocumentClosed,
  Forbidden,
  ProtocolViolation,
  RequestTimeout,
  RoomNotFound,
  RpcError,
  Unauthorized,
} from "./errors.js";
import { Emitter } from "./events.js";
import { now, startTimer, stopTimer, type TimerHandle } from "./host.js";
import {
  object,
  parseChatMessage,
  parseFileInfo,
  parseFiles,
  parseInitialize,
  parseInvite,
  parseJoin,
  parseMember,
  parseOpen,
  parsePresence,
  parseRemoteChange,
  positionJson,
  type ChatMessage,
  type FileInfo,
  type InitializeResult,
  type Invite,
  type JoinResult,
  type Member,
  type Presence,
  type Role,
  type Selection,
} from "./protocol.js";
import { RemoteDocument, type DocumentHost, type ErrorInfo } from "./remote-document.js";
import { RpcConnection, openSocket, type CloseInfo, type SocketFactory } from "./rpc.js";

export const CLIENT_VERSION = "0.1.0";

/** A server URL, or a function giving the one to use now (asked again on every reconnect). */
export type UrlSource = string | (() => string | Promise<string>);

export interface ReconnectOptions {
  /** Wait before the first retry. */
  initialDelayMs?: number;
  /** The longest wait between retries. */
  maxDelayMs?: number;
  /** Each failure multiplies the wait by this. */
  factor?: number;
  /** Spread retries by up to this fraction either way, so clients do not all come back at once. */
  jitter?: number;
}

export interface ClientOptions {
  /** A user, invite or member token (sent in `initialize`, never in the URL). */
  token?: string;
  /** The name shown to others. */
  name?: string;
  /** A stable id for this client instance (1–64 of `[A-Za-z0-9_.-]`); the server makes one if absent. */
  clientId?: string;
  /** `clientInfo.name`, shown to operators. */
  clientName?: string;
  /** Makes sockets; defaults to the host's global `WebSocket`. */
  createSocket?: SocketFactory;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** `false` to never reconnect by itself (call `reconnect()`). */
  reconnect?: boolean | ReconnectOptions;
  /** Send `$/ping` after this long without hearing from the server; `null` never. */
  heartbeatIntervalMs?: number | null;
}

/**
 * - `connecting`: opening a connection and initializing it.
 * - `resyncing`: connected; re-joining the room or re-opening documents.
 * - `online`: connected, and every open document is open on the connection.
 * - `offline`: no connection (see `retryInMs` for whether one is coming).
 */
export type ConnectionState = "connecting" | "online" | "offline" | "resyncing";

export interface ConnectionStateEvent {
  readonly state: ConnectionState;
  /** When offline: milliseconds until the next attempt, or null when none will be made by itself. */
  readonly retryInMs: number | null;
  /** The close code of the connection that was lost, if any. */
  readonly closeCode: number | null;
}

/** What a status bar shows: is everything I typed on the server? */
export interface SyncHealth {
  readonly state: ConnectionState;
  /** Edits sent and not yet acknowledged, over all open documents. */
  readonly unacked: number;
  /** Local changes not yet sent, over all open documents. */
  readonly unsent: number;
  /** Edits lost to re-opens so far, over all open documents. */
  readonly lostEdits: number;
  readonly lastError: ErrorInfo | null;
}

export interface ClientEvents {
  state: ConnectionStateEvent;
  health: SyncHealth;
  error: ErrorInfo;
  memberJoined: Member;
  memberLeft: { readonly memberId: string };
  presence: Presence;
  chat: ChatMessage;
  fileCreated: FileInfo & { readonly memberId: string };
  fileRenamed: { readonly path: string; readonly newPath: string; readonly memberId: string };
  fileDeleted: { readonly path: string; readonly memberId: string };
  /** Every notification, after the client's own handling (for methods it does not know yet). */
  notification: { readonly method: string; readonly params: unknown };
}

const DEFAULT_RECONNECT: Required<ReconnectOptions> = {
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.25,
};

/** Close codes after which reconnecting would be wrong: another instance took over, or access ended. */
const FINAL_CLOSE_CODES = new Set<number>([CloseCode.Replaced, CloseCode.AccessRevoked, CloseCode.RoomDeleted]);

/** Refusals that retrying cannot fix. */
const FINAL_ERROR_CODES = new Set<number>([Unauthorized, Forbidden, RoomNotFound]);

/** The close code we use for a connection we abandon (browsers allow 1000 and 3000–4999). */
const ABANDONED = 4000;

function defaultSocketFactory(): SocketFactory {
  const ctor = (globalThis as unknown as { WebSocket?: new (url: string) => unknown }).WebSocket;
  if (ctor === undefined) {
    return () => {
      throw new ConnectionLost("this host has no global WebSocket: pass createSocket");
    };
  }
  // The global WebSocket has the shape rpc.ts needs (see WebSocketLike).
  return (url) => new ctor(url) as ReturnType<SocketFactory>;
}

export class CodeSphereClient extends Emitter<ClientEvents> implements DocumentHost {
  private url: UrlSource;
  private token: string | undefined;
  private readonly name: string | undefined;
  private id: string | undefined;
  private readonly clientName: string;
  private readonly createSocket: SocketFactory;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectOptions: Required<ReconnectOptions> | null;
  private readonly heartbeatIntervalMs: number | null;

  private conn: RpcConnection | null = null;
  private connecting = false;
  private rejoining = false;
  private shut = false;
  private attemptInFlight: Promise<void> | null = null;
  private retryTimer: TimerHandle | null = null;
  private retryAt: number | null = null;
  private failures = 0;
  private heartbeatTimer: TimerHandle | null = null;
  private lastCloseCode: number | null = null;
  private reportedState: ConnectionState | null = null;
  /** Set while dropConnection detaches the documents (see there). */
  private dropping = false;
  private error: ErrorInfo | null = null;

  private init: InitializeResult | null = null;
  private joined: { roomId: string; role: Role | undefined; token: string | undefined } | null = null;
  private joinResult: JoinResult | null = null;
  private readonly memberMap = new Map<string, Member>();
  private readonly presenceMap = new Map<string, Presence>();
  private readonly fileMap = new Map<string, FileInfo>();
  private readonly docs = new Map<string, RemoteDocument>();
  private readonly opening = new Map<string, Promise<RemoteDocument>>();
  /** The last edit seq per path, kept across close and re-open (§6.1). */
  private readonly seqs = new Map<string, number>();

  constructor(url: UrlSource, options: ClientOptions = {}) {
    super();
    this.url = url;
    this.token = options.token;
    this.name = options.name;
    this.id = options.clientId;
    this.clientName = options.clientName ?? "codesphere-web";
    this.createSocket = options.createSocket ?? defaultSocketFactory();
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const reconnect = options.reconnect ?? true;
    this.reconnectOptions =
      reconnect === false ? null : { ...DEFAULT_RECONNECT, ...(reconnect === true ? {} : reconnect) };
    this.heartbeatIntervalMs = options.heartbeatIntervalMs === undefined ? 25_000 : options.heartbeatIntervalMs;
  }

  /** Connect and initialize. Rejects if the server cannot be reached or refuses (no retry). */
  static async connect(url: UrlSource, options: ClientOptions = {}): Promise<CodeSphereClient> {
    const client = new CodeSphereClient(url, options);
    await client.start();
    return client;
  }

  /** The first connection (use `connect`, or this after the constructor). */
  async start(): Promise<void> {
    this.connecting = true;
    this.updateState();
    try {
      await this.establish(false);
    } finally {
      this.connecting = false;
      this.updateState();
    }
  }

  // -- what is known ------------------------------------------------------------------------

  get state(): ConnectionState {
    if (this.conn === null) return this.connecting ? "connecting" : "offline";
    if (this.rejoining) return "resyncing";
    for (const doc of this.docs.values()) if (doc.status === "resyncing") return "resyncing";
    return "online";
  }

  /** Our client id (ours or the server's choice), sent again on every reconnect. */
  get clientId(): string | undefined {
    return this.id;
  }

  /** The token the next connection initializes with (a member token after an invite join). */
  get currentToken(): string | undefined {
    return this.token;
  }

  get serverLimits(): Readonly<Record<string, number>> {
    return this.init?.limits ?? {};
  }

  get room(): { readonly id: string; readonly name: string } | null {
    return this.joinResult?.room ?? null;
  }

  /** Ourselves in the room; `role` is this connection's. */
  get me(): Member | null {
    return this.joinResult?.you ?? null;
  }

  get role(): Role | null {
    return this.joinResult?.you.role ?? null;
  }

  get members(): ReadonlyMap<string, Member> {
    return this.memberMap;
  }

  /** The latest presence of each other member. */
  get presence(): ReadonlyMap<string, Presence> {
    return this.presenceMap;
  }

  get files(): ReadonlyMap<string, FileInfo> {
    return this.fileMap;
  }

  get documents(): ReadonlyMap<string, RemoteDocument> {
    return this.docs;
  }

  get lastError(): ErrorInfo | null {
    return this.error;
  }

  get health(): SyncHealth {
    let unacked = 0;
    let unsent = 0;
    let lostEdits = 0;
    for (const doc of this.docs.values()) {
      const s = doc.snapshot;
      unacked += s.unacked;
      unsent += s.unsent;
      lostEdits += s.lostEdits;
    }
    return { state: this.state, unacked, unsent, lostEdits, lastError: this.error };
  }

  // -- requests -----------------------------------------------------------------------------

  /** Send any request on the current connection (rejects with `ConnectionLost` when offline). */
  request(method: string, params?: unknown, timeoutMs?: number): Promise<unknown> {
    const conn = this.conn;
    if (conn === null || !conn.isOpen) return Promise.reject(new ConnectionLost("not connected"));
    return conn.request(method, params, timeoutMs ?? this.requestTimeoutMs);
  }

  /** Create a room (needs a user token; we become its owner but must still join it). */
  async createRoom(name: string, files?: readonly { path: string; text: string }[]): Promise<string> {
    const result = object(await this.request("room/create", { name, ...(files ? { files } : {}) }), "room/create");
    const roomId = result["roomId"];
    if (typeof roomId !== "string") throw new ProtocolViolation("room/create: no roomId");
    return roomId;
  }

  /**
   * Join a room, leaving any other. `roomId` may be left out with an invite or member token.
   * A join that redeemed an invite hands out a member token, which every reconnect then uses.
   */
  async join(roomId?: string, options: { role?: Role; token?: string } = {}): Promise<JoinResult> {
    const conn = this.requireConnection();
    const previous = this.joinResult?.room.id;
    const result = await this.sendJoin(conn, roomId, options.role, options.token);
    if (previous !== undefined && previous !== result.room.id) this.closeAllDocuments("left the room");
    return result;
  }

  private sendJoin(conn: RpcConnection, roomId?: string, role?: Role, token?: string): Promise<JoinResult> {
    const params = {
      ...(roomId !== undefined ? { roomId } : {}),
      ...(role !== undefined ? { role } : {}),
      ...(token !== undefined ? { token } : {}),
    };
    return new Promise((resolve, reject) => {
      // Taken in the reply callback, before any notification that follows it is handled.
      conn.send(
        "room/join",
        params,
        (raw, error) => {
          if (error !== null) return reject(error);
          try {
            const result = parseJoin(raw);
            this.takeJoin(result, role, token);
            resolve(result);
          } catch (err) {
            reject(err);
          }
        },
        this.requestTimeoutMs,
      );
    });
  }

  private takeJoin(result: JoinResult, role: Role | undefined, token: string | undefined): void {
    let joinToken = token;
    if (result.memberToken !== null) {
      // Joining with the invite again would use it again (§4.1): from now on we are a member.
      this.token = result.memberToken;
      joinToken = undefined;
    }
    this.joined = { roomId: result.room.id, role, token: joinToken };
    this.joinResult = result;
    this.memberMap.clear();
    for (const m of result.members) this.memberMap.set(m.memberId, m);
    this.memberMap.set(result.you.memberId, result.you);
    this.fileMap.clear();
    for (const f of result.files) this.fileMap.set(f.path, f);
    this.presenceMap.clear();
  }

  /** Leave the room; its documents are closed. */
  async leave(): Promise<void> {
    await this.request("room/leave");
    this.closeAllDocuments("left the room");
    this.joined = null;
    this.joinResult = null;
    this.memberMap.clear();
    this.presenceMap.clear();
    this.fileMap.clear();
  }

  async listFiles(): Promise<FileInfo[]> {
    const files = parseFiles(object(await this.request("workspace/files"), "workspace/files")["files"]);
    this.fileMap.clear();
    for (const f of files) this.fileMap.set(f.path, f);
    return files;
  }

  /** Create a file; `text` may use `\r\n`, which sets its `eol`. */
  async createFile(path: string, text = ""): Promise<FileInfo> {
    const info = parseFileInfo(await this.request("workspace/createFile", { path, text }));
    this.fileMap.set(info.path, info);
    return info;
  }

  /** Rename a file; an open document follows it. */
  async renameFile(path: string, newPath: string): Promise<void> {
    await this.request("workspace/renameFile", { path, newPath });
    this.renamed(path, newPath);
  }

  /** Delete a file; if it is open here, its document is closed. */
  async deleteFile(path: string): Promise<void> {
    await this.request("workspace/deleteFile", { path });
    this.deleted(path, "deleted");
  }

  /** Open a document (an open one is returned as it is). */
  open(path: string): Promise<RemoteDocument> {
    const existing = this.docs.get(path);
    if (existing !== undefined) return Promise.resolve(existing);
    const inFlight = this.opening.get(path);
    if (inFlight !== undefined) return inFlight;
    const conn = this.conn;
    if (conn === null || !conn.isOpen || this.rejoining) return Promise.reject(new ConnectionLost("not connected"));
    const promise = new Promise<RemoteDocument>((resolve, reject) => {
      conn.send(
        "textDocument/didOpen",
        { path },
        (raw, error) => {
          // Made here, in the reply callback, so the document exists before its first remote change.
          this.opening.delete(path);
          if (error !== null) return reject(error);
          try {
            const opened = parseOpen(raw);
            const current = this.docs.get(opened.path);
            if (current !== undefined) return resolve(current);
            const doc = new RemoteDocument(this, conn, opened, this.seqs.get(opened.path) ?? 0);
            this.docs.set(doc.path, doc);
            resolve(doc);
            this.documentStateChanged(doc);
          } catch (err) {
            reject(err);
          }
        },
        this.requestTimeoutMs,
      );
    });
    this.opening.set(path, promise);
    return promise;
  }

  /** Show our selections (positions in the document's current text) to the others; `null`: in no document. */
  async updatePresence(path: string | null, selections: readonly Selection[] = []): Promise<void> {
    if (path === null) {
      await this.request("presence/update", { path: null });
      return;
    }
    const doc = this.docs.get(path);
    if (doc === undefined) throw new DocumentClosed(`${path} is not open`);
    await this.request("presence/update", {
      path,
      revision: doc.revision,
      selections: selections.map((s) => ({ anchor: positionJson(s.anchor), active: positionJson(s.active) })),
    });
  }

  async sendChat(text: string): Promise<ChatMessage> {
    const result = object(await this.request("chat/send", { text }), "chat/send");
    return parseChatMessage(result["message"]);
  }

  /** The newest `limit` messages before seq `before`, oldest first. */
  async chatHistory(options: { before?: number; limit?: number } = {}): Promise<{ messages: ChatMessage[]; hasMore: boolean }> {
    const result = object(await this.request("chat/history", { ...options }), "chat/history");
    const raw = result["messages"];
    if (!Array.isArray(raw)) throw new ProtocolViolation("chat/history: no messages");
    return {
      messages: raw.map((m: unknown, i: number) => parseChatMessage(m, `chat/history.messages[${i}]`)),
      hasMore: result["hasMore"] === true,
    };
  }

  /** (Owners) create an invite; share its `token`. */
  async createInvite(role: Role, options: { expiresInSeconds?: number; maxUses?: number } = {}): Promise<Invite> {
    return parseInvite(await this.request("invite/create", { role, ...options }));
  }

  async listInvites(): Promise<Invite[]> {
    const raw = object(await this.request("invite/list"), "invite/list")["invites"];
    if (!Array.isArray(raw)) throw new ProtocolViolation("invite/list: no invites");
    return raw.map((i: unknown) => parseInvite(i));
  }

  async revokeInvite(inviteId: string): Promise<void> {
    await this.request("invite/revoke", { inviteId });
  }

  async removeMember(memberId: string): Promise<void> {
    await this.request("member/remove", { memberId });
  }

  /** `textDocument/checksum`: the server's revision and SHA-256 of a document (default: the head). */
  async checksum(path: string, revision?: number): Promise<{ revision: number; sha256: string }> {
    const result = object(
      await this.request("textDocument/checksum", { path, ...(revision !== undefined ? { revision } : {}) }),
      "checksum",
    );
    const rev = result["revision"];
    const sha = result["sha256"];
    if (typeof rev !== "number" || typeof sha !== "string") throw new ProtocolViolation("checksum: bad result");
    return { revision: rev, sha256: sha };
  }

  /** Round-trip time of a `$/ping`, in milliseconds. */
  async ping(): Promise<number> {
    const started = now();
    await this.request("$/ping", {});
    return now() - started;
  }

  // -- connecting and reconnecting ----------------------------------------------------------

  /**
   * Reconnect now (dropping the current connection, if any) and resume (§6.5). With `url`,
   * use it from now on. Rejects if this attempt fails (automatic retries go on unless the
   * failure is final).
   */
  async reconnect(url?: UrlSource): Promise<void> {
    if (this.shut) throw new ConnectionLost("the client was closed");
    if (url !== undefined) this.url = url;
    if (this.attemptInFlight !== null) return this.attemptInFlight;
    this.cancelRetry();
    const old = this.conn;
    if (old !== null) {
      this.dropConnection();
      old.close(ABANDONED, "reconnecting");
    }
    return this.attempt();
  }

  /** Point future reconnects at another URL (takes effect on the next attempt). */
  setUrl(url: UrlSource): void {
    this.url = url;
  }

  /** Say goodbye (`shutdown`, `exit`) and close for good; documents are closed. */
  async close(): Promise<void> {
    if (this.shut) return;
    this.shut = true;
    this.cancelRetry();
    this.closeAllDocuments("the client was closed");
    const conn = this.conn;
    this.dropConnection();
    if (conn !== null && conn.isOpen) {
      try {
        await conn.request("shutdown", undefined, 2_000);
        conn.notify("exit");
      } catch {
        // Closing anyway.
      }
      conn.close(1000, "bye");
    }
    this.updateState();
  }

  private attempt(): Promise<void> {
    const attempt = (async () => {
      this.connecting = true;
      this.updateState();
      try {
        await this.establish(true);
        this.failures = 0;
      } catch (error) {
        this.connecting = false;
        this.recordError(errorInfo(error));
        if (isFinal(error)) {
          this.giveUp();
        } else {
          this.scheduleRetry();
        }
        throw error;
      } finally {
        this.connecting = false;
        this.attemptInFlight = null;
        this.updateState();
      }
    })();
    this.attemptInFlight = attempt;
    return attempt;
  }

  /** Open, initialize and (when reconnecting) re-join and resume every document. */
  private async establish(rejoin: boolean): Promise<void> {
    const url = typeof this.url === "string" ? this.url : await this.url();
    const socket = await openSocket(this.createSocket, url, this.connectTimeoutMs);
    if (this.shut) {
      socket.close(1000, "closed");
      throw new ConnectionLost("the client was closed");
    }
    let conn: RpcConnection | undefined = undefined;
    conn = new RpcConnection(
      socket,
      {
        onNotification: (method, params) => {
          if (conn !== undefined && conn === this.conn) this.onNotification(method, params);
        },
        onClose: (info) => {
          if (conn !== undefined) this.onConnectionClosed(conn, info);
        },
      },
      // Until the server announces its limit: below its default (200/s, bursts of 400).
      { requestTimeoutMs: this.requestTimeoutMs, framesPerSecond: 180, burst: 200 },
    );
    try {
      const init = parseInitialize(await conn.request("initialize", this.initializeParams(), this.requestTimeoutMs));
      if (init.positionEncoding !== "utf-16") {
        throw new ProtocolViolation(`the server chose the ${init.positionEncoding} encoding; we asked for utf-16`);
      }
      conn.notify("initialized", {});
      this.init = init;
      this.id = init.clientId;
      const rate = init.limits["requestsPerSecond"];
      if (typeof rate === "number" && rate > 0) {
        // Stay under the server's limit so that no edit is ever refused for speed.
        conn.setRate(rate * 0.9, Math.max(1, Math.floor(rate)));
      }
    } catch (error) {
      conn.close(ABANDONED, "initialize failed");
      throw error;
    }
    if (this.shut) {
      conn.close(1000, "closed");
      throw new ConnectionLost("the client was closed");
    }
    this.conn = conn;
    this.lastCloseCode = null;
    this.startHeartbeat(conn);
    if (!rejoin || this.joined === null) return;
    const joined = this.joined;
    this.rejoining = true;
    this.updateState();
    try {
      await this.sendJoin(conn, joined.roomId, joined.role, joined.token);
      await Promise.all([...this.docs.values()].map((doc) => doc.resumeOn(conn)));
      if (this.conn !== conn) throw new ConnectionLost("the connection was lost while resuming");
    } catch (error) {
      if (this.conn === conn) {
        this.dropConnection();
        conn.close(ABANDONED, "resuming failed");
      }
      throw error;
    } finally {
      this.rejoining = false;
    }
  }

  private initializeParams(): Record<string, unknown> {
    return {
      clientInfo: { name: this.clientName, version: CLIENT_VERSION },
      capabilities: { general: { positionEncodings: ["utf-16"] } },
      ...(this.id !== undefined ? { clientId: this.id } : {}),
      ...(this.name !== undefined ? { displayName: this.name } : {}),
      ...(this.token !== undefined ? { token: this.token } : {}),
    };
  }

  private requireConnection(): RpcConnection {
    if (this.conn === null || !this.conn.isOpen) throw new ConnectionLost("not connected");
    return this.conn;
  }

  /**
   * Forget the current connection: documents keep their edits for the next one.
   *
   * Every caller reports the new state itself once it knows what comes next (a retry, giving
   * up, a new attempt, closing). The documents detaching here must not report it first: that
   * would announce "offline" with `retryInMs: null` ("no retry coming") and no close code just
   * before the retry is scheduled, and a page would take the session for over.
   */
  private dropConnection(): void {
    this.conn = null;
    this.stopHeartbeat();
    this.dropping = true;
    try {
      for (const doc of this.docs.values()) doc.detach();
    } finally {
      this.dropping = false;
    }
  }

  private onConnectionClosed(conn: RpcConnection, info: CloseInfo): void {
    if (conn !== this.conn) return; // one we already replaced or gave up on
    this.lastCloseCode = info.code ?? null;
    this.dropConnection();
    if (this.shut) {
      this.updateState();
      return;
    }
    if (info.code !== undefined && FINAL_CLOSE_CODES.has(info.code)) {
      this.recordError({ message: `the server closed the connection: ${info.reason || info.code}`, at: Date.now() });
      this.giveUp();
      return;
    }
    if (this.attemptInFlight !== null) {
      this.updateState(); // that attempt fails and schedules the next
      return;
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const options = this.reconnectOptions;
    this.cancelRetry();
    if (options === null || this.shut) {
      this.updateState(true);
      return;
    }
    this.failures += 1;
    const base = Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** (this.failures - 1));
    const delay = Math.max(0, Math.round(base * (1 + options.jitter * (2 * Math.random() - 1))));
    this.retryAt = now() + delay;
    this.retryTimer = startTimer(() => {
      this.retryTimer = null;
      this.retryAt = null;
      this.attempt().catch(() => {
        // Recorded in lastError; the next attempt is scheduled.
      });
    }, delay);
    this.updateState(true);
  }

  private cancelRetry(): void {
    if (this.retryTimer !== null) stopTimer(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
  }

  private giveUp(): void {
    this.cancelRetry();
    this.updateState(true);
  }

  private startHeartbeat(conn: RpcConnection): void {
    this.stopHeartbeat();
    const interval = this.heartbeatIntervalMs;
    if (interval === null) return;
    const tick = (): void => {
      this.heartbeatTimer = null;
      if (conn !== this.conn || !conn.isOpen) return;
      if (now() - conn.lastReceivedAt >= interval) {
        // A dead network path shows no close event for minutes; a ping that gets no answer does.
        conn.request("$/ping", {}, Math.min(interval, 10_000)).catch((error: unknown) => {
          if (error instanceof RequestTimeout) this.connectionFailed("the server did not answer a ping");
        });
      }
      this.heartbeatTimer = startTimer(tick, interval);
    };
    this.heartbeatTimer = startTimer(tick, interval);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) stopTimer(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private updateState(force = false): void {
    const state = this.state;
    if (!force && state === this.reportedState) return;
    this.reportedState = state;
    const willRetry = state === "offline" && this.retryAt !== null;
    this.emit("state", {
      state,
      retryInMs: willRetry && this.retryAt !== null ? Math.max(0, this.retryAt - now()) : null,
      closeCode: this.lastCloseCode,
    });
    this.emit("health", this.health);
  }

  // -- DocumentHost -------------------------------------------------------------------------

  /** @internal */
  get activeConnection(): RpcConnection | null {
    return this.rejoining ? null : this.conn;
  }

  /** @internal */
  connectionFailed(reason: string): void {
    const conn = this.conn;
    if (conn === null) return;
    this.recordError({ message: reason, at: Date.now() });
    // A fixed reason: browsers refuse close reasons over 123 bytes, and paths can be long.
    conn.close(ABANDONED, "connection failed"); // onConnectionClosed then schedules a reconnect
  }

  /** @internal */
  forget(doc: RemoteDocument): void {
    if (this.docs.get(doc.path) === doc) this.docs.delete(doc.path);
    this.seqs.set(doc.path, Math.max(this.seqs.get(doc.path) ?? 0, doc.lastSeq));
  }

  /** @internal */
  recordError(error: ErrorInfo): void {
    this.error = error;
    this.emit("error", error);
  }

  /** @internal */
  documentStateChanged(_doc: RemoteDocument): void {
    if (this.dropping) return; // dropConnection's caller reports the state (and health) next
    const state = this.state;
    if (state !== this.reportedState) {
      this.updateState();
    } else {
      this.emit("health", this.health);
    }
  }

  // -- what the server says -------------------------------------------------------------------

  private onNotification(method: string, params: unknown): void {
    try {
      this.handleNotification(method, params);
    } catch (error) {
      this.recordError({ message: `could not handle ${method}: ${errorInfo(error).message}`, at: Date.now() });
    }
    this.emit("notification", { method, params });
  }

  private handleNotification(method: string, params: unknown): void {
    switch (method) {
      case "textDocument/remoteChange": {
        const change = parseRemoteChange(params);
        this.docs.get(change.path)?.onRemoteChange(change);
        return;
      }
      case "presence/didChange": {
        const presence = parsePresence(params);
        this.presenceMap.set(presence.memberId, presence);
        this.emit("presence", presence);
        return;
      }
      case "chat/message":
        this.emit("chat", parseChatMessage(object(params, "chat/message")["message"]));
        return;
      case "room/memberJoined": {
        const member = parseMember(object(params, "room/memberJoined")["member"]);
        this.memberMap.set(member.memberId, member);
        this.emit("memberJoined", member);
        return;
      }
      case "room/memberLeft": {
        const memberId = object(params, "room/memberLeft")["memberId"];
        if (typeof memberId !== "string") throw new ProtocolViolation("room/memberLeft: no memberId");
        const member = this.memberMap.get(memberId);
        if (member !== undefined) this.memberMap.set(memberId, { ...member, online: false });
        this.presenceMap.delete(memberId);
        this.emit("memberLeft", { memberId });
        return;
      }
      case "workspace/didCreateFile": {
        const info = parseFileInfo(params, "workspace/didCreateFile");
        this.fileMap.set(info.path, info);
        this.emit("fileCreated", { ...info, memberId: memberIdOf(params) });
        return;
      }
      case "workspace/didRenameFile": {
        const p = object(params, "workspace/didRenameFile");
        const path = p["path"];
        const newPath = p["newPath"];
        if (typeof path !== "string" || typeof newPath !== "string") {
          throw new ProtocolViolation("workspace/didRenameFile: no path or newPath");
        }
        this.renamed(path, newPath);
        this.emit("fileRenamed", { path, newPath, memberId: memberIdOf(params) });
        return;
      }
      case "workspace/didDeleteFile": {
        const path = object(params, "workspace/didDeleteFile")["path"];
        if (typeof path !== "string") throw new ProtocolViolation("workspace/didDeleteFile: no path");
        this.deleted(path, "deleted by another member");
        this.emit("fileDeleted", { path, memberId: memberIdOf(params) });
        return;
      }
      default:
        return; // reported through the "notification" event only
    }
  }

  private renamed(path: string, newPath: string): void {
    const info = this.fileMap.get(path);
    if (info !== undefined) {
      this.fileMap.delete(path);
      this.fileMap.set(newPath, { ...info, path: newPath });
    }
    const doc = this.docs.get(path);
    if (doc !== undefined) {
      this.docs.delete(path);
      this.docs.set(newPath, doc);
      doc.renamed(newPath);
    }
    const seq = this.seqs.get(path);
    if (seq !== undefined) {
      this.seqs.delete(path);
      this.seqs.set(newPath, Math.max(seq, this.seqs.get(newPath) ?? 0));
    }
  }

  private deleted(path: string, reason: string): void {
    this.fileMap.delete(path);
    this.docs.get(path)?.markClosed(reason);
  }

  private closeAllDocuments(reason: string): void {
    for (const doc of [...this.docs.values()]) doc.markClosed(reason);
  }
}

function memberIdOf(params: unknown): string {
  const id = object(params, "notification")["memberId"];
  return typeof id === "string" ? id : "";
}

function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof RpcError) return { message: error.message, code: error.code, at: Date.now() };
  return { message: error instanceof Error ? error.message : String(error), at: Date.now() };
}

function isFinal(error: unknown): boolean {
  return error instanceof RpcError && FINAL_ERROR_CODES.has(error.code);
}
