/**
 * A small typed client of egress-resolver (kumo.egress.v1.EgressResolverService)
 * over HTTP/2 gRPC, on TCP or on a unix socket:
 *
 *     const resolver = createResolver("unix:/run/egress-resolver.sock");
 *     const source = await resolver.get("ip-1"); // throws ResolverError
 *     resolver.close();
 */
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";
import { EgressResolverService } from "./gen/kumo/egress/v1/resolver_service_pb.js";
import { ResolverError } from "./errors.js";
import { parseTarget } from "./target.js";

export { ResolverError, grpcCodeName, type GrpcCodeName } from "./errors.js";
export { sourceToJson, REDACTED } from "./json.js";
export type { EgressSource, KeySource, VaultKeySource } from "./gen/kumo/egress/v1/egress_source_pb.js";

/** Milliseconds a call may take unless the caller says otherwise (a cache miss runs Lua). */
export const DEFAULT_TIMEOUT_MS = 2000;

/** Options of createResolver. */
export interface ResolverOptions {
  /** Per-call deadline in milliseconds; DEFAULT_TIMEOUT_MS when unset. */
  readonly timeoutMs?: number;
}

/** Options of a single call. */
export interface CallOptions {
  /** This call's deadline in milliseconds, instead of the resolver's. */
  readonly timeoutMs?: number;
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
}

/** One result of getMany: the source, or why that name did not resolve. */
export type BatchResult = EgressSource | ResolverError;

/** A connection to one egress-resolver server. */
export interface Resolver {
  /** The egress source `name`; rejects with a ResolverError. */
  get(name: string, options?: CallOptions): Promise<EgressSource>;
  /**
   * One result per name, in request order: an EgressSource or a
   * ResolverError. Rejects with a ResolverError only when the whole call fails.
   */
  getMany(names: readonly string[], options?: CallOptions): Promise<BatchResult[]>;
  /** Closes the HTTP/2 connection; calls made afterwards open a new one. */
  close(): void;
}

/**
 * A resolver for `target`: "HOST:PORT", "[V6]:PORT" or "unix:/abs/path".
 * The connection opens on the first call and is kept open between calls.
 */
export function createResolver(target: string, options: ResolverOptions = {}): Resolver {
  const { baseUrl, sessionOptions } = parseTarget(target);
  const sessionManager = new Http2SessionManager(baseUrl, {}, sessionOptions);
  const transport = createGrpcTransport({ baseUrl, sessionManager });
  const client: Client<typeof EgressResolverService> = createClient(EgressResolverService, transport);
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const callOptions = (call: CallOptions) => ({
    timeoutMs: call.timeoutMs ?? defaultTimeoutMs,
    ...(call.signal ? { signal: call.signal } : {}),
  });

  return {
    async get(name, call = {}) {
      try {
        const response = await client.getEgressSource({ name }, callOptions(call));
        if (response.source === undefined) {
          throw new ResolverError("INTERNAL", `server returned no source for ${JSON.stringify(name)}`, undefined, name);
        }
        return response.source;
      } catch (error) {
        throw error instanceof ResolverError ? error : ResolverError.fromCallError(error, name);
      }
    },

    async getMany(names, call = {}) {
      let response;
      try {
        response = await client.batchGetEgressSources({ names: [...names] }, callOptions(call));
      } catch (error) {
        throw ResolverError.fromCallError(error);
      }
      return response.results.map((result): BatchResult => {
        switch (result.result.case) {
          case "source":
            return result.result.value;
          case "error":
            return ResolverError.fromStatus(result.result.value, result.name);
          default:
            return new ResolverError("INTERNAL", "server returned an empty result", undefined, result.name);
        }
      });
    },

    close() {
      sessionManager.abort();
    },
  };
}
