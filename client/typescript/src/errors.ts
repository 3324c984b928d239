/**
 * ResolverError: why a name did not resolve, with its gRPC code name and the
 * stable ErrorInfo reason the server put into the status details.
 */
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import type { Status } from "./gen/google/rpc/status_pb.js";
import { anyUnpack } from "@bufbuild/protobuf/wkt";

/** gRPC status code names, indexed by their numeric code. */
const GRPC_CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** A gRPC status code name such as "NOT_FOUND". */
export type GrpcCodeName = (typeof GRPC_CODE_NAMES)[number];

/** The gRPC name of a numeric status code; unknown numbers map to "UNKNOWN". */
export function grpcCodeName(code: number): GrpcCodeName {
  return GRPC_CODE_NAMES[code] ?? "UNKNOWN";
}

/**
 * A failed resolution (the same error type in every language of egress-resolver).
 *
 * `code` is the gRPC status code name (e.g. "NOT_FOUND"), `reason` the
 * ErrorInfo reason (e.g. "SOURCE_NOT_FOUND"; undefined when the server sent
 * none, as for transport errors), `message` the server's text without any
 * prefix, and `name` the requested name ("" when the failure concerns a whole
 * batch). Unlike most JavaScript errors, `name` is therefore not the class
 * name: test with `instanceof ResolverError`. Stack traces still begin with
 * "ResolverError: ".
 */
export class ResolverError extends Error {
  constructor(
    readonly code: GrpcCodeName,
    message: string,
    readonly reason: string | undefined = undefined,
    name: string = "",
  ) {
    super(message);
    // V8 writes the stack's first line when it is first read, from `name`:
    // read it now, while `name` is still the prototype's "ResolverError"
    // (some µs, on a path that made a call anyway).
    void this.stack;
    /** The requested source or pool name. */
    this.name = name;
  }

  /** The requested name (the same as `name`; kept from earlier versions). */
  get sourceName(): string {
    return this.name;
  }

  /** The one-line form the example program prints: `CODE: message [REASON]`. */
  describe(): string {
    const suffix = this.reason ? ` [${this.reason}]` : "";
    return `${this.code}: ${this.message}${suffix}`;
  }

  /** Builds the error from a google.rpc.Status, as found in batch results. */
  static fromStatus(status: Status, sourceName = ""): ResolverError {
    let reason: string | undefined;
    for (const detail of status.details) {
      const info = anyUnpack(detail, ErrorInfoSchema);
      if (info !== undefined) {
        reason = info.reason;
        break;
      }
    }
    return new ResolverError(grpcCodeName(status.code), status.message, reason, sourceName);
  }

  /** Builds the error from whatever a call threw (normally a ConnectError). */
  static fromCallError(error: unknown, sourceName = ""): ResolverError {
    const connectError = ConnectError.from(error);
    const [info] = connectError.findDetails(ErrorInfoSchema);
    // Connect reports a unix socket that does not exist (ENOENT) as INTERNAL;
    // like gRPC core, call every failed connect() UNAVAILABLE (retryable).
    const code = failedToConnect(connectError) ? "UNAVAILABLE" : grpcCodeName(connectError.code);
    return new ResolverError(
      code,
      connectError.rawMessage,
      info?.reason,
      sourceName,
    );
  }
}

ResolverError.prototype.name = "ResolverError";

/** Whether `error` or one of its causes is a failed connect() system call. */
function failedToConnect(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 8; cause = cause.cause, depth++) {
    if ((cause as NodeJS.ErrnoException).syscall === "connect") {
      return true;
    }
  }
  return false;
}
