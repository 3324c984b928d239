/**
 * A resolver's `connect`, `reportFailure` and `whenSuspended`: the
 * suspension check before connecting, the report of a classified failure to
 * the sidecar (ReportSourceFailure) before the error is returned, and the
 * errors `connect` and `select` raise for suspended sources.
 */
import type { Client } from "@connectrpc/connect";
import { debuglog } from "node:util";
import { ConnectFailure, connectThrough, type Connection } from "./connect.js";
import { ResolverError } from "./errors.js";
import type { CallOptions } from "./flights.js";
import type { EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";
import type { EgressResolverService } from "./gen/kumo/egress/v1/resolver_service_pb.js";
import {
  describeUntil,
  failureClassValue,
  POOL_SUSPENDED,
  SOURCE_SUSPENDED,
  type FailureClassName,
  type Suspension,
  type Suspensions,
} from "./health.js";

/** Options of one `connect`. */
export interface ConnectOptions {
  /** The one deadline of this attempt in milliseconds (default: the connectTimeout option). */
  readonly timeoutMs?: number;
}

/** The least time a failure report is given, even when connect's deadline has passed. */
const REPORT_FLOOR_MS = 250;

const debug = debuglog("egress-client");

/** RESOURCE_EXHAUSTED / POOL_SUSPENDED for pool `pool`, saying which source resumes first and when. */
export function poolSuspended(pool: string, names: readonly string[], suspensions: Suspensions): ResolverError {
  const first = suspensions.firstToResume(names);
  const when =
    first === undefined ? "" : `; ${first.name} resumes first, at ${describeUntil(first.untilMs, suspensions.now())}`;
  return new ResolverError("RESOURCE_EXHAUSTED", `pool ${pool}: every source is suspended${when}`, POOL_SUSPENDED, pool);
}

/** Connects through sources and reports their failures for one resolver. */
export class Connector {
  constructor(
    private readonly client: Client<typeof EgressResolverService>,
    private readonly suspensions: Suspensions,
    private readonly connectTimeoutMs: number,
    private readonly get: (name: string, call: CallOptions) => Promise<EgressSource>,
  ) {}

  /** ReportSourceFailure; the suspension in force after it (then known to this client), if any. */
  async report(
    name: string,
    failureClass: FailureClassName,
    address: string,
    message: string,
    timeoutMs: number,
  ): Promise<Suspension | undefined> {
    let response;
    try {
      response = await this.client.reportSourceFailure(
        { name, failureClass: failureClassValue(failureClass), address, message },
        { timeoutMs },
      );
    } catch (error) {
      throw ResolverError.fromCallError(error, name);
    }
    if (response.suspension === undefined) {
      return undefined;
    }
    this.suspensions.add([response.suspension]);
    return this.suspensions.get(name);
  }

  /** Resolver.connect. */
  async connect(source: EgressSource | string, to: string, options: ConnectOptions = {}): Promise<Connection> {
    const deadline = performance.now() + (options.timeoutMs ?? this.connectTimeoutMs);
    const remaining = () => Math.max(1, Math.ceil(deadline - performance.now()));
    const definition = typeof source === "string" ? await this.get(source, { timeoutMs: remaining() }) : source;
    const suspension = this.suspensions.get(definition.name);
    if (suspension !== undefined) {
      const until = describeUntil(suspension.untilMs, this.suspensions.now());
      const message = `source ${definition.name} is suspended until ${until}: ${suspension.reason}`;
      throw new ResolverError("UNAVAILABLE", message, SOURCE_SUSPENDED, definition.name);
    }
    try {
      return await connectThrough(definition, to, deadline);
    } catch (error) {
      if (error instanceof RangeError) {
        throw new ResolverError("INVALID_ARGUMENT", error.message, undefined, definition.name);
      }
      if (!(error instanceof ConnectFailure)) {
        throw error;
      }
      if (error.reportable) {
        // Within the deadline, but with at least REPORT_FLOOR_MS: a proxy that
        // never answered used the whole deadline, and must still be reported.
        const timeoutMs = Math.max(REPORT_FLOOR_MS, remaining());
        await this.report(definition.name, error.failureClass, error.address, error.message, timeoutMs).catch(
          (failure: unknown) => debug("reporting %s failed: %s", definition.name, String(failure)),
        );
      }
      throw new ResolverError("UNAVAILABLE", error.message, error.failureClass, definition.name);
    }
  }

  /** The Unix time in ns at which this client first knew `name` suspended; undefined after `timeoutMs`. */
  whenSuspended(name: string, timeoutMs: number): Promise<bigint | undefined> {
    const known = this.suspensions.knownSince(name);
    if (known !== undefined) {
      return Promise.resolve(known);
    }
    return new Promise((resolve) => {
      const check = () => {
        const at = this.suspensions.knownSince(name);
        if (at !== undefined) {
          finish(at);
        }
      };
      const unsubscribe = this.suspensions.subscribe(check);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (at: bigint | undefined) => {
        clearTimeout(timer);
        unsubscribe();
        resolve(at);
      };
    });
  }
}
