/**
 * The CodeSphere client core: everything a web page or an editor extension needs to take part
 * in a room, with no DOM and no editor in it. See client.ts for where to start.
 */

export {
  CodeSphereClient,
  CLIENT_VERSION,
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type ConnectionStateEvent,
  type ReconnectOptions,
  type SyncHealth,
  type UrlSource,
} from "./client.js";
export {
  RemoteDocument,
  type ChangeSource,
  type DocumentChange,
  type DocumentEvents,
  type DocumentState,
  type DocumentStatus,
  type ErrorInfo,
  type ResyncReport,
} from "./remote-document.js";
export { ClientDocument, OutOfSync, type PendingEdit } from "./document.js";
export {
  applyChanges,
  changeAt,
  differenceChange,
  hasLoneSurrogate,
  InvalidChangeError,
  normalizeChanges,
  normalizeEol,
  offsetAt,
  positionAt,
  PositionError,
  rangeOffsets,
  splitsSurrogatePair,
  type ContentChange,
  type Position,
  type Range,
} from "./positions.js";
export {
  openSocket,
  RpcConnection,
  type CloseInfo,
  type ReplyCallback,
  type RpcHandlers,
  type RpcOptions,
  type SocketFactory,
  type WebSocketLike,
} from "./rpc.js";
export * from "./errors.js";
export type {
  ChatMessage,
  Eol,
  FileInfo,
  Invite,
  JoinResult,
  Member,
  Presence,
  Role,
  Selection,
} from "./protocol.js";
export { Emitter } from "./events.js";
export { setUncaughtReporter, sha256Hex } from "./host.js";
