/**
 * The protocol's error codes (protocol.md §9) and close codes (§10), and the errors the client
 * core throws. Act on codes, never on messages: messages are for people.
 */

export const ParseError = -32700;
export const InvalidRequest = -32600;
export const MethodNotFound = -32601;
export const InvalidParams = -32602;
export const InternalError = -32603;
export const ServerNotInitialized = -32002;
export const NotInRoom = 1001;
export const RoomNotFound = 1002;
export const DocumentNotFound = 1003;
export const AlreadyExists = 1004;
export const Forbidden = 1005;
export const DocumentNotOpen = 1006;
export const Unauthorized = 1007;
export const NotFound = 1008;
export const InvalidPosition = 1010;
export const InvalidChange = 1011;
export const InvalidRevision = 1012;
export const ResyncRequired = 1013;
export const RateLimited = 1020;
export const TooLarge = 1021;

/** Every code of §9 by its name, for code that prefers `ErrorCode.Forbidden`. */
export const ErrorCode = {
  ParseError,
  InvalidRequest,
  MethodNotFound,
  InvalidParams,
  InternalError,
  ServerNotInitialized,
  NotInRoom,
  RoomNotFound,
  DocumentNotFound,
  AlreadyExists,
  Forbidden,
  DocumentNotOpen,
  Unauthorized,
  NotFound,
  InvalidPosition,
  InvalidChange,
  InvalidRevision,
  ResyncRequired,
  RateLimited,
  TooLarge,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

const NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** The protocol's name for `code`, or `Error<code>` for one it does not define. */
export function errorName(code: number): string {
  return NAMES.get(code) ?? `Error${code}`;
}

/** WebSocket close codes with a meaning in the protocol (§10). */
export const CloseCode = {
  /** After `exit` (or our own orderly close). */
  Normal: 1000,
  /** The server is shutting down: reconnect. */
  GoingAway: 1001,
  BinaryFrame: 1003,
  NotUtf8: 1007,
  /** Sustained request flooding. */
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  /** The server reloaded a room after a storage failure: reconnect and resend. */
  ServerError: 1011,
  /** Another connection initialized with our clientId: it took over, so we must not. */
  Replaced: 4001,
  TooSlow: 4002,
  /** We were removed from the room or our invite was revoked: our token no longer admits. */
  AccessRevoked: 4003,
  RoomDeleted: 4004,
} as const;

/** An error response from the server. */
export class RpcError extends Error {
  override name = "RpcError";
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(`${errorName(code)} (${code}): ${message}`);
    this.code = code;
    this.data = data;
  }
}

/** There is no open connection to send on, or it closed before the answer came. */
export class ConnectionLost extends Error {
  override name = "ConnectionLost";
  readonly closeCode: number | undefined;
  readonly reason: string;

  constructor(message: string, closeCode?: number, reason = "") {
    super(message);
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

/** A request got no answer in time. */
export class RequestTimeout extends Error {
  override name = "RequestTimeout";
}

/** The server sent something that is not what the protocol says it sends. */
export class ProtocolViolation extends Error {
  override name = "ProtocolViolation";
}

/** The document was closed (by us, or deleted on the server). */
export class DocumentClosed extends Error {
  override name = "DocumentClosed";
}
