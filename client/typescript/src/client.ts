/**
 * A typed client of egress-resolver (kumo.egress.v1.EgressResolverService)
 * over HTTP/2 gRPC, on TCP or on a unix socket, with an opt-in cache:
 *
 *     const resolver = createResolver({ target: "unix:/run/egress-resolver.sock", cache: true });
 *     const source = await resolver.get(await resolver.select("pool-1")); // throws ResolverError
 *     resolver.close();
 *
 * With `cache: true` the client keeps each source and pool until
 * `produced_at + ttl` (bounded by maxEntries, least recently used out first;
 * every lookup the cache answers makes its entry the most recently used),
 * makes one call for concurrent misses of one name, follows
 * WatchInvalidations (resuming across sidecar restarts), keeps serving cached
 * entries while the sidecar is unreachable and, with staleIfError, expired
 * ones for at most that long. Options not given come from the
 * EGRESS_CLIENT_* variables (see options.ts).
 *
 * `connect(source or name, "HOST:PORT")` opens a connection through the
 * source as kumod does (bind, remote_port, HAProxy, SOCKS5; see connect.ts),
 * reports a failure that may suspend the source to the sidecar, and `select`
 * skips the sources the client knows to be suspended (see health.ts):
 *
 *     const { socket, ehlo } = await resolver.connect(await resolver.select("pool-1"), "mx.example.com:25");
 *
 * The hit path is synchronous: `getCached(name)` returns the definition (or
 * undefined) without a promise, and `get(name)` on a hit returns an already
 * resolved promise without entering an async function; awaiting it costs the
 * caller one microtask turn (measured in test/bench.ts).
 */
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { DefinitionCache } from "./cache.js";
import { Coherence } from "./coherence.js";
import { ResolverError } from "./errors.js";
import type { EgressPool } from "./gen/kumo/egress/v1/egress_pool_pb.js";
import type { EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";
import { EgressResolverService } from "./gen/kumo/egress/v1/resolver_service_pb.js";
import { resolveOptions, type Options, type ResolverOptions } from "./options.js";
import { AllSuspendedError, NO_SOURCES, NoSourcesError, PoolSelector } from "./selector.js";
import type { Connection } from "./connect.js";
import { Connector, poolSuspended, type ConnectOptions } from "./connector.js";
import { Suspensions, type FailureClassName, type Suspension } from "./health.js";
import { Flights, type CallOptions } from "./flights.js";
import { parseTarget } from "./target.js";
import { Watcher } from "./watch.js";

export { ResolverError, grpcCodeName, type GrpcCodeName } from "./errors.js";
export { sourceToJson, poolToJson, REDACTED } from "./json.js";
export { NO_SOURCES } from "./selector.js";
export { POOL_SUSPENDED, SOURCE_SUSPENDED, type FailureClassName, type Suspension } from "./health.js";
export type { Connection } from "./connect.js";
export type { ConnectOptions } from "./connector.js";
export type { CallOptions } from "./flights.js";
export {
  DEFAULT_TARGET,
  DEFAULT_TIMEOUT,
  OptionError,
  type Duration,
  type Options,
  type ResolverOptions,
} from "./options.js";
export type { EgressSource, KeySource, VaultKeySource } from "./gen/kumo/egress/v1/egress_source_pb.js";
export type { EgressPool, EgressPoolEntry } from "./gen/kumo/egress/v1/egress_pool_pb.js";

/** Milliseconds a call may take unless the caller says otherwise (a cache miss runs Lua). */
export const DEFAULT_TIMEOUT_MS = 2000;

/** One result of getMany: the source, or why that name did not resolve. */
export type BatchResult = EgressSource | ResolverError;

/** What stats() reports. */
export interface Stats {
  /** Unary calls sent to the sidecar (the invalidation stream not counted). */
  readonly rpcs: number;
  /** Sources and pools cached (expired ones kept for staleIfError included). */
  readonly entries: number;
  /** Whether the invalidation stream is connected (its hello applied). */
  readonly watching: boolean;
  /** Expired entries served under staleIfError. */
  readonly staleServed: number;
  /** The policy revision the stream last announced ("" before the first). */
  readonly revision: string;
  /** The sequence of the last stream message applied. */
  readonly sequence: bigint;
  /** Invalidation streams opened so far. */
  readonly streams: number;
}

/** A connection to one egress-resolver sidecar. */
export interface Resolver {
  /** The options in force (given, or from the environment, or the defaults). */
  readonly options: Options;
  /** The egress source `name`; rejects with a ResolverError. */
  get(name: string, options?: CallOptions): Promise<EgressSource>;
  /** The cached source `name` if it is cached and within its ttl (it becomes the most recently used); never calls the sidecar. */
  getCached(name: string): EgressSource | undefined;
  /** The egress pool `name`; rejects with a ResolverError. */
  getPool(name: string, options?: CallOptions): Promise<EgressPool>;
  /** The cached pool `name` if it is cached and within its ttl (it becomes the most recently used); never calls the sidecar. */
  getPoolCached(name: string): EgressPool | undefined;
  /**
   * The next source name of pool `pool`, chosen as kumod chooses (weighted
   * round robin); FAILED_PRECONDITION / POOL_HAS_NO_SOURCES when no entry
   * has a weight above 0.
   */
  select(pool: string, options?: CallOptions): Promise<string>;
  /**
   * One result per name, in request order: an EgressSource or a
   * ResolverError (never cached). Rejects only when the whole call fails.
   */
  getMany(names: readonly string[], options?: CallOptions): Promise<BatchResult[]>;
  /**
   * Connects to `to` ("HOST:PORT") through the source (or the source named),
   * as kumod does: the socket is connected (through the proxy, if any) and
   * no byte was read from it; `ehlo` is the name to say in EHLO. Rejects with
   * a ResolverError: UNAVAILABLE with the reason SOURCE_SUSPENDED,
   * SOURCE_UNPLUMBED, PROXY_UNHEALTHY or CONNECT_FAILED (a failure that may
   * suspend the source is reported to the sidecar first).
   */
  connect(source: EgressSource | string, to: string, options?: ConnectOptions): Promise<Connection>;
  /**
   * Reports a failure of a connection the caller made through source `name`
   * (ReportSourceFailure); resolves with the suspension in force after it, if
   * any, which this client then knows at once. Rejects with a ResolverError.
   */
  reportFailure(
    name: string,
    failureClass: FailureClassName,
    address: string,
    message: string,
    options?: CallOptions,
  ): Promise<Suspension | undefined>;
  /** The suspensions this client knows, sorted by name. */
  suspended(): Suspension[];
  /**
   * Resolves with the Unix time in nanoseconds at which this client first
   * knew `name` suspended, once it does; undefined after `timeoutMs`.
   */
  whenSuspended(name: string, timeoutMs: number): Promise<bigint | undefined>;
  /**
   * The cached source names, least to most recently used (expired entries
   * still held included; [] with the cache off). Changes no order.
   */
  cachedNames(): string[];
  /** Calls sent, cached entries, and whether the invalidation stream is connected. */
  stats(): Stats;
  /** Resolves true once the invalidation stream is connected (cache on), false after `timeoutMs`. */
  waitUntilWatching(timeoutMs: number): Promise<boolean>;
  /** Stops watching and closes the HTTP/2 connection; calls made afterwards open a new one. */
  close(): Promise<void>;
}

/**
 * A resolver. `createResolver("127.0.0.1:50051")` or
 * `createResolver({ target, cache: true, ... })`; the target is "HOST:PORT",
 * "[V6]:PORT" or "unix:/abs/path". The connection opens on the first call
 * (at once with the cache on, for the invalidation stream) and stays open.
 */
export function createResolver(target?: string | ResolverOptions, options: ResolverOptions = {}): Resolver {
  const given = typeof target === "string" ? { ...options, target } : { ...target, ...options };
  const resolved = resolveOptions(given);
  const { baseUrl, sessionOptions } = parseTarget(resolved.target);
  const sessionManager = new Http2SessionManager(
    baseUrl,
    {
      pingIntervalMs: resolved.keepaliveIntervalMs,
      pingTimeoutMs: Math.max(1000, resolved.keepaliveIntervalMs),
      pingIdleConnection: true,
    },
    sessionOptions,
  );
  const transport = createGrpcTransport({ baseUrl, sessionManager });
  const client: Client<typeof EgressResolverService> = createClient(EgressResolverService, transport);
  const clock = given.clock ?? (() => performance.now());
  const wallClock = given.wallClock ?? Date.now;
  const settings = { maxEntries: resolved.maxEntries, clock, wallClock, staleIfErrorMs: resolved.staleIfErrorMs };
  const state = resolved.cache
    ? new Coherence(new DefinitionCache<EgressSource>(settings), new DefinitionCache<EgressPool>(settings))
    : undefined;
  const suspensions = new Suspensions(wallClock);
  const flights = new Flights(client, resolved.timeoutMs, state, given.warn, suspensions);
  const watcher = state === undefined ? undefined : new Watcher(client, state, suspensions);
  const sources = state?.sources;
  const pools = state?.pools;
  const selectors = new Map<string, PoolSelector>();
  const connector = new Connector(client, suspensions, resolved.connectTimeoutMs, (name, call) => resolver.get(name, call));

  function pick(pool: EgressPool): string {
    let selector = selectors.get(pool.name);
    if (selector === undefined || !selector.sameDefinition(pool)) {
      selector = new PoolSelector(pool);
      selectors.set(pool.name, selector);
    }
    try {
      return suspensions.size === 0 ? selector.next() : selector.next((name) => suspensions.has(name));
    } catch (error) {
      if (error instanceof NoSourcesError) {
        throw new ResolverError("FAILED_PRECONDITION", error.message, NO_SOURCES, pool.name);
      }
      if (error instanceof AllSuspendedError) {
        throw poolSuspended(pool.name, error.names, suspensions);
      }
      throw error;
    }
  }

  const resolver: Resolver = {
    options: resolved,

    get(name, call) {
      const hit = sources?.get(name);
      return hit !== undefined ? Promise.resolve(hit) : flights.source(name, call);
    },

    getCached(name) {
      return sources?.get(name);
    },

    getPool(name, call) {
      const hit = pools?.get(name);
      return hit !== undefined ? Promise.resolve(hit) : flights.pool(name, call);
    },

    getPoolCached(name) {
      return pools?.get(name);
    },

    select(poolName, call) {
      const hit = pools?.get(poolName);
      if (hit !== undefined) {
        try {
          return Promise.resolve(pick(hit));
        } catch (error) {
          return Promise.reject(error);
        }
      }
      return flights.pool(poolName, call).then(pick);
    },

    getMany(names, call) {
      return flights.batch(names, call);
    },

    connect(source, to, options) {
      return connector.connect(source, to, options);
    },

    reportFailure(name, failureClass, address, message, call = {}) {
      return connector.report(name, failureClass, address, message, call.timeoutMs ?? resolved.timeoutMs);
    },

    suspended() {
      return suspensions.list();
    },

    whenSuspended(name, timeoutMs) {
      return connector.whenSuspended(name, timeoutMs);
    },

    cachedNames() {
      return sources?.names() ?? [];
    },

    stats() {
      return {
        rpcs: flights.rpcs,
        entries: (sources?.size ?? 0) + (pools?.size ?? 0),
        watching: state?.watching ?? false,
        staleServed: flights.staleServed,
        revision: state?.revision ?? "",
        sequence: state?.sequence ?? 0n,
        streams: watcher?.streams ?? 0,
      };
    },

    waitUntilWatching(timeoutMs) {
      return watcher === undefined ? Promise.resolve(false) : watcher.waitUntilConnected(timeoutMs);
    },

    async close() {
      await watcher?.stop();
      sessionManager.abort();
    },
  };
  return resolver;
}
