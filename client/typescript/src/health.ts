/**
 * Host-wide source suspensions, as this client knows them
 * (docs/clients/connect.md, "Reporting and suspension").
 *
 * The sidecar holds the suspensions for the whole host; the client learns of
 * them from the invalidation stream (the hello's `suspended` replaces what it
 * held, later messages add `suspended` and remove `resumed`), from
 * GetEgressPool's `suspensions` and from ReportSourceFailure's answer. Each
 * one is forgotten at its `until` on the client's own wall clock (the sidecar
 * runs on the same host), or when the stream says it resumed.
 */
import { timestampMs } from "./cache.js";
import { FailureClass, type SourceSuspension } from "./gen/kumo/egress/v1/resolver_service_pb.js";

/** A failure class by name, as the error reasons spell it. */
export type FailureClassName = "SOURCE_UNPLUMBED" | "PROXY_UNHEALTHY" | "CONNECT_FAILED";

/** The reason of the error `connect` raises for a source the client knows to be suspended. */
export const SOURCE_SUSPENDED = "SOURCE_SUSPENDED";
/** The reason of the error `select` raises when every weighted source of the pool is suspended. */
export const POOL_SUSPENDED = "POOL_SUSPENDED";

/** One source suspended from selection. */
export interface Suspension {
  readonly name: string;
  /** The class whose rule fired ("" if the sidecar sent none this client knows). */
  readonly failureClass: FailureClassName | "";
  /** When it ends by itself, in milliseconds since the epoch. */
  readonly untilMs: number;
  /** The reported failure that fired the rule (its address and message). */
  readonly reason: string;
}

interface Known extends Suspension {
  /** Unix time in nanoseconds at which this client first knew of it. */
  readonly knownSinceNs: bigint;
}

/** The protobuf enum value of a failure class name. */
export function failureClassValue(name: FailureClassName): FailureClass {
  return FailureClass[name];
}

function className(value: FailureClass): FailureClassName | "" {
  switch (value) {
    case FailureClass.SOURCE_UNPLUMBED:
    case FailureClass.PROXY_UNHEALTHY:
    case FailureClass.CONNECT_FAILED:
      return FailureClass[value] as FailureClassName;
    default:
      return "";
  }
}

/** `2026-12-03T18:40:00Z (in 29s)`: when `untilMs` is, and how far from `nowMs`. */
export function describeUntil(untilMs: number, nowMs: number): string {
  const at = new Date(untilMs).toISOString().replace(/\.\d{3}Z$/, "Z");
  return `${at} (in ${Math.max(0, Math.ceil((untilMs - nowMs) / 1000))}s)`;
}

/** The suspensions this client knows, forgotten at their `until`. */
export class Suspensions {
  private readonly known = new Map<string, Known>();
  private readonly listeners = new Set<() => void>();
  private readonly wallBaseNs: bigint;
  private readonly monoBaseNs: bigint;

  constructor(private readonly wallClock: () => number = Date.now) {
    this.monoBaseNs = process.hrtime.bigint();
    this.wallBaseNs = BigInt(Math.round(Date.now() * 1e6));
  }

  /** How many are held (expired ones not yet dropped included); 0 makes `select` skip nothing at no cost. */
  get size(): number {
    return this.known.size;
  }

  /** The suspension of `name` in force, if any. */
  get(name: string): Suspension | undefined {
    const entry = this.known.get(name);
    if (entry !== undefined && entry.untilMs <= this.wallClock()) {
      this.known.delete(name);
      return undefined;
    }
    return entry;
  }

  /** Whether `name` is suspended now. */
  has(name: string): boolean {
    return this.known.size > 0 && this.get(name) !== undefined;
  }

  /** When this client first knew `name` suspended (Unix ns), while it is. */
  knownSince(name: string): bigint | undefined {
    return this.get(name) === undefined ? undefined : this.known.get(name)?.knownSinceNs;
  }

  /** Every suspension in force, sorted by name. */
  list(): Suspension[] {
    const now = this.wallClock();
    const result: Suspension[] = [];
    for (const [name, entry] of this.known) {
      if (entry.untilMs <= now) {
        this.known.delete(name);
      } else {
        const { knownSinceNs: _, ...suspension } = entry;
        result.push(suspension);
      }
    }
    return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Adds (or renews) the suspensions the sidecar sent. */
  add(suspensions: Iterable<SourceSuspension>): void {
    let changed = false;
    const now = this.wallClock();
    for (const suspension of suspensions) {
      const untilMs = timestampMs(suspension.until);
      if (suspension.name === "" || untilMs === undefined || untilMs <= now) {
        continue;
      }
      const previous = this.known.get(suspension.name);
      this.known.set(suspension.name, {
        name: suspension.name,
        failureClass: className(suspension.failureClass),
        untilMs,
        reason: suspension.reason,
        knownSinceNs: previous !== undefined && previous.untilMs > now ? previous.knownSinceNs : this.nowNs(),
      });
      changed = true;
    }
    if (changed) {
      this.notify();
    }
  }

  /** The stream's hello: these are every suspension in force (when each was first known is kept). */
  replace(suspensions: readonly SourceSuspension[]): void {
    const fresh = new Set(suspensions.map((suspension) => suspension.name));
    for (const name of [...this.known.keys()]) {
      if (!fresh.has(name)) {
        this.known.delete(name);
      }
    }
    this.add(suspensions);
  }

  /** Names whose suspension ended. */
  resume(names: Iterable<string>): void {
    for (const name of names) {
      this.known.delete(name);
    }
  }

  /** Calls `listener` after each change that added a suspension; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The suspension among `names` that ends first, if every one of them is suspended. */
  firstToResume(names: readonly string[]): Suspension | undefined {
    let first: Suspension | undefined;
    for (const name of names) {
      const suspension = this.get(name);
      if (suspension === undefined) {
        return undefined;
      }
      if (first === undefined || suspension.untilMs < first.untilMs) {
        first = suspension;
      }
    }
    return first;
  }

  /** The wall clock in milliseconds, as this store reads it. */
  now(): number {
    return this.wallClock();
  }

  private nowNs(): bigint {
    return this.wallBaseNs + (process.hrtime.bigint() - this.monoBaseNs);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      listener();
    }
  }
}
