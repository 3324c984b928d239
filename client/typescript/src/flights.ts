/**
 * The calls a Resolver sends, and what it does with their outcome: one call
 * for concurrent misses of one name (each caller waits within its own
 * deadline), the store rules of the cache, staleIfError (an expired entry
 * a failed call cannot serve is removed), and the counters. Errors are
 * never cached; getMany neither reads nor fills the cache.
 */
import type { Client } from "@connectrpc/connect";
import type { DefinitionCache } from "./cache.js";
import type { Answer, Coherence } from "./coherence.js";
import { ResolverError } from "./errors.js";
import type { EgressPool } from "./gen/kumo/egress/v1/egress_pool_pb.js";
import type { EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";
import type { EgressResolverService } from "./gen/kumo/egress/v1/resolver_service_pb.js";
import type { Suspensions } from "./health.js";
import type { Duration } from "./options.js";
import { parseSeconds } from "./options.js";

/** Options of a single call. */
export interface CallOptions {
  /** This call's deadline, instead of the resolver's timeout. */
  readonly timeout?: Duration;
  /** This call's deadline in milliseconds (kept from earlier versions; `timeout` wins). */
  readonly timeoutMs?: number;
  /** Gives up (CANCELLED) when aborted; a call other callers share goes on for them. */
  readonly signal?: AbortSignal;
}

/** What one unary call is sent with. */
interface RpcOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

type Warn = (message: string, fields: Readonly<Record<string, unknown>>) => void;

const defaultWarn: Warn = (message, fields) => console.warn(`egress-client: ${message} ${JSON.stringify(fields)}`);

/** The calls of one Resolver. */
export class Flights {
  /** Unary calls sent to the sidecar (the invalidation stream not counted). */
  rpcs = 0;
  /** Expired entries served under staleIfError. */
  staleServed = 0;
  private readonly pendingSources = new Map<string, Promise<EgressSource>>();
  private readonly pendingPools = new Map<string, Promise<EgressPool>>();

  constructor(
    private readonly client: Client<typeof EgressResolverService>,
    private readonly timeoutMs: number,
    private readonly state: Coherence<EgressSource, EgressPool> | undefined,
    private readonly warn: Warn = defaultWarn,
    private readonly suspensions?: Suspensions,
  ) {}

  /** The source `name` from the sidecar (a cache miss, or the cache is off). */
  source(name: string, call: CallOptions = {}): Promise<EgressSource> {
    const keep = (answer: Answer<EgressSource>, epoch: number) => this.state?.keepSource(name, answer, epoch);
    return this.shared(this.pendingSources, name, call, (options) =>
      this.fetch(name, options, this.state?.sources, keep, async (options) => {
        const response = await this.client.getEgressSource({ name }, options);
        const source = response.source;
        if (source === undefined) {
          throw new ResolverError("INTERNAL", `server returned no source for ${JSON.stringify(name)}`, undefined, name);
        }
        return { value: source, revision: response.revision, producedAt: response.producedAt, ttl: source.ttl };
      }),
    );
  }

  /** The pool `name` from the sidecar (a cache miss, or the cache is off). */
  pool(name: string, call: CallOptions = {}): Promise<EgressPool> {
    const keep = (answer: Answer<EgressPool>, epoch: number) => this.state?.keepPool(name, answer, epoch);
    return this.shared(this.pendingPools, name, call, (options) =>
      this.fetch(name, options, this.state?.pools, keep, async (options) => {
        const response = await this.client.getEgressPool({ name }, options);
        this.suspensions?.add(response.suspensions);
        const pool = response.pool;
        if (pool === undefined) {
          throw new ResolverError("INTERNAL", `server returned no pool for ${JSON.stringify(name)}`, undefined, name);
        }
        return { value: pool, revision: response.revision, producedAt: response.producedAt, ttl: pool.ttl };
      }),
    );
  }

  /** BatchGetEgressSources: one EgressSource or ResolverError per name, in order. */
  async batch(names: readonly string[], call: CallOptions = {}): Promise<(EgressSource | ResolverError)[]> {
    this.rpcs += 1;
    let response;
    try {
      response = await this.client.batchGetEgressSources(
        { names: [...names] },
        { timeoutMs: this.deadline(call), ...(call.signal ? { signal: call.signal } : {}) },
      );
    } catch (error) {
      throw ResolverError.fromCallError(error);
    }
    return response.results.map((result) => {
      switch (result.result.case) {
        case "source":
          return result.result.value;
        case "error":
          return ResolverError.fromStatus(result.result.value, result.name);
        default:
          return new ResolverError("INTERNAL", "server returned an empty result", undefined, result.name);
      }
    });
  }

  /** The deadline of one call in milliseconds. */
  private deadline(call: CallOptions): number {
    if (call.timeout !== undefined) {
      return parseSeconds(call.timeout, "timeout");
    }
    return call.timeoutMs ?? this.timeoutMs;
  }

  /**
   * Without the cache: the call itself. With it: the call in flight for
   * `name` if there is one, else a new one that later callers share. Each
   * caller stops waiting at its own deadline or signal; the shared call runs
   * with the deadline of the caller that started it and no signal, so that
   * one caller giving up does not fail the others.
   */
  private shared<T>(
    pending: Map<string, Promise<T>>,
    name: string,
    call: CallOptions,
    start: (options: RpcOptions) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = this.deadline(call);
    if (this.state === undefined) {
      return start(call.signal === undefined ? { timeoutMs } : { timeoutMs, signal: call.signal });
    }
    let flight = pending.get(name);
    const owner = flight === undefined;
    if (flight === undefined) {
      flight = start({ timeoutMs }).finally(() => pending.delete(name));
      pending.set(name, flight);
    }
    return owner && call.signal === undefined ? flight : waitFor(flight, timeoutMs, call.signal, name);
  }

  /** Sends one call, hands its answer to the store rules (`keep`), or serves a stale entry. */
  private async fetch<T>(
    name: string,
    options: RpcOptions,
    cache: DefinitionCache<T> | undefined,
    keep: (answer: Answer<T>, epoch: number) => void,
    send: (options: RpcOptions) => Promise<Answer<T>>,
  ): Promise<T> {
    const epoch = this.state?.epoch ?? 0;
    this.rpcs += 1;
    let answer: Answer<T>;
    try {
      answer = await send(options);
    } catch (error) {
      const failure = error instanceof ResolverError ? error : ResolverError.fromCallError(error, name);
      const stale = cache?.afterFailure(name, failure.code === "UNAVAILABLE");
      if (stale === undefined) {
        throw failure;
      }
      this.staleServed += 1;
      this.warn("egress-resolver unreachable; serving an expired definition (stale_if_error)", {
        name,
        stale_served: this.staleServed,
        error: failure.message,
      });
      return stale;
    }
    keep(answer, epoch);
    return answer.value;
  }
}

/** `flight`'s outcome, or DEADLINE_EXCEEDED / CANCELLED when this caller stops waiting first. */
function waitFor<T>(flight: Promise<T>, timeoutMs: number, signal: AbortSignal | undefined, name: string): Promise<T> {
  if (signal?.aborted) {
    return Promise.reject(new ResolverError("CANCELLED", "the call was aborted", undefined, name));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      finish();
      reject(new ResolverError("DEADLINE_EXCEEDED", "deadline passed waiting for a shared lookup", undefined, name));
    }, timeoutMs);
    const onAbort = () => {
      finish();
      reject(new ResolverError("CANCELLED", "the call was aborted", undefined, name));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
    flight.then(
      (value) => {
        finish();
        resolve(value);
      },
      (error: unknown) => {
        finish();
        reject(error);
      },
    );
  });
}
