/**
 * Following WatchInvalidations so the client's caches drop what the sidecar
 * says is stale.
 *
 * Each stream starts by telling the sidecar what the caches hold (the
 * revision, the instance and sequence of the last message applied, and
 * whether the previous stream ended in order); the sidecar's first message
 * (the hello) says what of that to drop. So a client keeps its cache across a
 * sidecar restart with the same policy, drops it when the policy changed, and
 * never keeps an entry invalidated while it was away. While the stream is
 * down the caches keep serving entries within their ttl; new answers are
 * held aside until the next hello and stored if it names their revision.
 *
 * Connect has no wait-for-ready: a stream opened while the sidecar is away
 * fails at once with UNAVAILABLE, and the loop opens the next one after the
 * backoff (50 ms doubling to 500 ms, ±20 % jitter, back to 50 ms after a
 * stream that delivered its hello), which is what wait-for-ready with gRPC
 * core's reconnect backoff does. So an attempt that delivered no message (it
 * could not connect, or broke off before its hello) leaves
 * `previousStreamEnded` as the last stream that did deliver one left it: it
 * speaks of the stream from `instance`, and nothing of any other was applied.
 * Each message also carries suspensions: the hello's `suspended` replaces
 * what the client held, later ones add `suspended` and remove `resumed`.
 * Hand-written: the loop is a few lines and a
 * retry library would not know the resume rules.
 */
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import {
  WatchInvalidationsRequestSchema,
  type EgressResolverService,
  type WatchInvalidationsRequest,
  type WatchInvalidationsResponse,
} from "./gen/kumo/egress/v1/resolver_service_pb.js";
import type { Coherence } from "./coherence.js";
import type { Suspensions } from "./health.js";

export const INITIAL_BACKOFF_MS = 50;
export const MAX_BACKOFF_MS = 500;

/** The next wait: doubled up to MAX_BACKOFF_MS, with ±20 % jitter. */
export function nextBackoff(currentMs: number, random: () => number = Math.random): number {
  return Math.min(currentMs * 2, MAX_BACKOFF_MS) * (0.8 + 0.4 * random());
}

/** What the caches hold, for a new stream. */
export function watchRequest(state: Coherence<unknown, unknown>): WatchInvalidationsRequest {
  return create(WatchInvalidationsRequestSchema, {
    revision: state.revision,
    instance: state.instance,
    sequence: state.sequence,
    previousStreamEnded: state.previousStreamEnded,
  });
}

/** Applies one stream message (the first of a stream is the hello: the answers sent before it are stored if they carry its revision). */
export function applyEvent(
  state: Coherence<unknown, unknown>,
  event: WatchInvalidationsResponse,
  first: boolean,
  suspensions?: Suspensions,
): void {
  if (first) {
    suspensions?.replace(event.suspended);
  } else {
    suspensions?.resume(event.resumed);
    suspensions?.add(event.suspended);
  }
  state.instance = event.instance;
  state.sequence = event.sequence;
  if (first) {
    state.previousStreamEnded = false;
    state.applyHello(event.revision, event.names, event.poolNames, event.all);
    return;
  }
  if (event.all || event.names.length > 0 || event.poolNames.length > 0) {
    state.invalidate(event.names, event.poolNames, event.all);
  }
  state.revision = event.revision;
}

/** Runs the watch loop until stop(). */
export class Watcher {
  /** Streams opened so far. */
  streams = 0;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();
  private readonly done: Promise<void>;

  constructor(
    private readonly client: Client<typeof EgressResolverService>,
    private readonly state: Coherence<unknown, unknown>,
    private readonly suspensions?: Suspensions,
  ) {
    this.done = this.run();
  }

  /** Whether the current stream delivered its hello. */
  get connected(): boolean {
    return this.state.watching;
  }

  /** Resolves true once a stream is connected, false after `timeoutMs` or stop(). */
  waitUntilConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(finish);
        resolve(this.connected);
      };
      const timer = setTimeout(finish, timeoutMs);
      this.waiters.add(finish);
    });
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let backoff = INITIAL_BACKOFF_MS;
    while (!signal.aborted) {
      let first = true;
      try {
        const stream = this.client.watchInvalidations(watchRequest(this.state), { signal });
        this.streams += 1;
        for await (const event of stream) {
          applyEvent(this.state, event, first, this.suspensions);
          if (first) {
            first = false;
            backoff = INITIAL_BACKOFF_MS;
            for (const wake of [...this.waiters]) {
              wake();
            }
          }
        }
        if (!first) {
          this.state.previousStreamEnded = true; // ended with OK after its hello
        }
      } catch {
        if (!first) {
          this.state.previousStreamEnded = false;
        }
      }
      this.state.disconnected();
      if (signal.aborted) {
        break;
      }
      await sleep(backoff, signal);
      backoff = nextBackoff(backoff);
    }
    for (const wake of [...this.waiters]) {
      wake();
    }
  }

  /** Ends the stream and the loop. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
