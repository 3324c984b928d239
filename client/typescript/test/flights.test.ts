/**
 * The calls a cached Resolver sends and what it does with their outcome,
 * without a server: a fake EgressResolverService client, fake clocks, and
 * the stream's hello applied by hand (so answers are stored).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { DefinitionCache, type CacheSettings } from "../src/cache.js";
import { Coherence } from "../src/coherence.js";
import { ResolverError } from "../src/errors.js";
import { Flights } from "../src/flights.js";
import { EgressSourceSchema, type EgressSource } from "../src/gen/kumo/egress/v1/egress_source_pb.js";
import type { EgressPool } from "../src/gen/kumo/egress/v1/egress_pool_pb.js";
import {
  BatchGetEgressSourcesResponseSchema,
  EgressSourceResultSchema,
  GetEgressSourceResponseSchema,
  WatchInvalidationsResponseSchema,
  type EgressResolverService,
  type GetEgressSourceResponse,
} from "../src/gen/kumo/egress/v1/resolver_service_pb.js";
import { applyEvent } from "../src/watch.js";
import { FakeClock } from "./helpers.js";

const WALL_START = Date.UTC(2030, 0, 1);
const REVISION = "r1";

/** What the fake sidecar answers a GetEgressSource with (its ttl in seconds), or the error it fails with. */
type Reply = { ttl: number } | ConnectError;

interface Rig {
  readonly mono: FakeClock;
  readonly wall: FakeClock;
  readonly flights: Flights;
  readonly sources: DefinitionCache<EgressSource>;
  /** Names GetEgressSource was called with, in order. */
  readonly calls: string[];
  /** The lookup as Resolver.get does it: the cache, else a call. */
  get(name: string): Promise<EgressSource>;
  /** What the next calls answer. */
  reply: Reply;
  /** When set, every call waits for it before answering. */
  gate: Promise<void> | undefined;
  readonly warnings: string[];
}

function rig(settings: Partial<CacheSettings> = {}): Rig {
  const mono = new FakeClock();
  const wall = new FakeClock(WALL_START);
  const full: CacheSettings = { maxEntries: 100, clock: mono.read, wallClock: wall.read, staleIfErrorMs: 0, ...settings };
  const sources = new DefinitionCache<EgressSource>(full);
  const state = new Coherence(sources, new DefinitionCache<EgressPool>(full));
  applyEvent(state, create(WatchInvalidationsResponseSchema, { revision: REVISION, instance: "i1" }), true);
  const calls: string[] = [];
  const warnings: string[] = [];
  const fake = {
    async getEgressSource({ name }: { name: string }): Promise<GetEgressSourceResponse> {
      calls.push(name);
      await self.gate;
      const reply = self.reply;
      if (reply instanceof ConnectError) {
        throw reply;
      }
      return create(GetEgressSourceResponseSchema, {
        source: create(EgressSourceSchema, { name, ttl: create(DurationSchema, { seconds: BigInt(reply.ttl) }) }),
        revision: REVISION,
        producedAt: create(TimestampSchema, { seconds: BigInt(Math.floor(wall.now / 1000)) }),
      });
    },
    async batchGetEgressSources({ names }: { names: string[] }) {
      calls.push(`batch:${names.join(",")}`);
      return create(BatchGetEgressSourcesResponseSchema, {
        results: names.map((name) =>
          create(EgressSourceResultSchema, {
            name,
            result: name.startsWith("missing")
              ? { case: "error", value: { code: Code.NotFound, message: `no source ${name}`, details: [] } }
              : { case: "source", value: create(EgressSourceSchema, { name, ttl: create(DurationSchema, { seconds: 60n }) }) },
          }),
        ),
      });
    },
  } as unknown as Client<typeof EgressResolverService>;
  const flights = new Flights(fake, 2000, state, (message) => warnings.push(message));
  const self: Rig = {
    mono,
    wall,
    flights,
    sources,
    calls,
    warnings,
    reply: { ttl: 60 },
    gate: undefined,
    get: (name) => {
      const hit = sources.get(name);
      return hit !== undefined ? Promise.resolve(hit) : flights.source(name);
    },
  };
  return self;
}

/** Moves both clocks. */
function advance(r: Rig, ms: number): void {
  r.mono.advance(ms);
  r.wall.advance(ms);
}

const unavailable = () => new ConnectError("connection refused", Code.Unavailable);

test("a miss is stored as the most recently used; a hit makes no call and refreshes the order", async () => {
  const r = rig({ maxEntries: 3 });
  for (const name of ["a", "b", "c"]) {
    await r.get(name);
  }
  await r.get("a");
  await r.get("d");
  assert.deepEqual(r.sources.names(), ["c", "a", "d"]);
  assert.deepEqual(r.calls, ["a", "b", "c", "d"]);
  assert.equal(r.flights.rpcs, 4);
});

test("K concurrent gets of one name that miss share one call", async () => {
  const r = rig();
  let open = () => {};
  r.gate = new Promise((resolve) => (open = resolve));
  const gets = Array.from({ length: 8 }, () => r.get("a"));
  open();
  const sources = await Promise.all(gets);
  assert.ok(sources.every((source) => source.name === "a"));
  assert.deepEqual(r.calls, ["a"]);
  assert.equal(r.flights.rpcs, 1);
});

test("stale_if_error: UNAVAILABLE serves the expired entry within the window (most recently used), then the error, and removes it", async () => {
  const r = rig({ staleIfErrorMs: 30_000 });
  r.reply = { ttl: 1 };
  await r.get("a");
  r.reply = { ttl: 60 };
  await r.get("b");
  advance(r, 1_000); // a expired
  r.reply = unavailable();
  assert.equal((await r.get("a")).name, "a");
  assert.equal(r.flights.staleServed, 1);
  assert.equal(r.warnings.length, 1);
  assert.deepEqual(r.sources.names(), ["b", "a"]);
  advance(r, 30_000); // produced_at + ttl + stale_if_error: over
  await assert.rejects(r.get("a"), (error: unknown) => error instanceof ResolverError && error.code === "UNAVAILABLE");
  assert.deepEqual(r.sources.names(), ["b"]);
  assert.equal(r.flights.staleServed, 1);
});

test("a failure other than UNAVAILABLE is never served stale and removes the expired entry; errors are not cached", async () => {
  const r = rig({ staleIfErrorMs: 30_000 });
  r.reply = { ttl: 1 };
  await r.get("a");
  advance(r, 1_000);
  r.reply = new ConnectError("no such source", Code.NotFound);
  await assert.rejects(r.get("a"), (error: unknown) => error instanceof ResolverError && error.code === "NOT_FOUND");
  assert.deepEqual(r.sources.names(), []);
  await assert.rejects(r.get("a"));
  assert.equal(r.flights.rpcs, 3); // the error was not kept: each get calls
  assert.equal(r.flights.staleServed, 0);
});

test("an entry that expired is not served by a get: a fresh answer replaces it", async () => {
  const r = rig({ staleIfErrorMs: 30_000 });
  r.reply = { ttl: 1 };
  await r.get("a");
  advance(r, 1_000);
  r.reply = { ttl: 60 };
  await r.get("a");
  assert.equal(r.flights.rpcs, 2);
  advance(r, 30_000);
  await r.get("a"); // fresh for 60 s from its produced_at
  assert.equal(r.flights.rpcs, 2);
});

test("getMany is one call, in request order, never read from nor stored in the cache", async () => {
  const r = rig();
  await r.get("a");
  const results = await r.flights.batch(["b", "missing-1", "a"]);
  assert.deepEqual(
    results.map((result) => (result instanceof ResolverError ? `${result.code}:${result.name}` : result.name)),
    ["b", "NOT_FOUND:missing-1", "a"],
  );
  assert.deepEqual(r.calls, ["a", "batch:b,missing-1,a"]);
  assert.deepEqual(r.sources.names(), ["a"]);
});
