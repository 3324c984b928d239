/**
 * The cache, the coherence state and the watch rules without a server: fake
 * clocks, synthetic answers and stream messages.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, TimestampSchema, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Coherence, DefinitionCache, type CacheSettings } from "../src/cache.js";
import { WatchInvalidationsResponseSchema } from "../src/gen/kumo/egress/v1/resolver_service_pb.js";
import { applyEvent, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS, nextBackoff, watchRequest } from "../src/watch.js";
import { FakeClock } from "./helpers.js";

const WALL_START = Date.UTC(2030, 0, 1);

function seconds(s: number): Duration {
  return create(DurationSchema, { seconds: BigInt(Math.floor(s)), nanos: Math.round((s % 1) * 1e9) });
}

function at(ms: number): Timestamp {
  return create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

function setup(overrides: Partial<CacheSettings> = {}) {
  const mono = new FakeClock();
  const wall = new FakeClock(WALL_START);
  const settings: CacheSettings = { maxEntries: 100, clock: mono.read, wallClock: wall.read, staleIfErrorMs: 0, ...overrides };
  return { mono, wall, cache: new DefinitionCache<string>(settings) };
}

test("an entry lives until produced_at + ttl, not a full ttl from now", () => {
  const { mono, cache } = setup();
  cache.put("a", "A", seconds(60), at(WALL_START - 59_000)); // already 59 s old
  assert.equal(cache.get("a"), "A");
  mono.advance(999);
  assert.equal(cache.get("a"), "A");
  mono.advance(1);
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.size, 1); // expired entries stay (stale_if_error may serve them)
});

test("an unset produced_at means now + ttl", () => {
  const { mono, cache } = setup();
  cache.put("a", "A", seconds(10), undefined);
  mono.advance(9_999);
  assert.equal(cache.get("a"), "A");
  mono.advance(1);
  assert.equal(cache.get("a"), undefined);
});

test("a ttl of 0, or an answer already past its ttl, is not stored", () => {
  const { cache } = setup();
  cache.put("zero", "Z", seconds(0), at(WALL_START));
  cache.put("none", "N", undefined, at(WALL_START));
  cache.put("old", "O", seconds(60), at(WALL_START - 60_000));
  assert.equal(cache.size, 0);
});

test("sub-second ttls and timestamps count", () => {
  const { mono, cache } = setup();
  cache.put("a", "A", seconds(1.5), at(WALL_START - 250));
  mono.advance(1_249);
  assert.equal(cache.get("a"), "A");
  mono.advance(1);
  assert.equal(cache.get("a"), undefined);
});

test("beyond maxEntries the least recently used entry goes", () => {
  const { cache } = setup({ maxEntries: 4 });
  for (const name of ["a", "b", "c", "d"]) {
    cache.put(name, name.toUpperCase(), seconds(60), undefined);
  }
  cache.put("c", "C2", seconds(60), undefined); // stored again: young
  cache.put("e", "E", seconds(60), undefined);
  assert.equal(cache.size, 4);
  assert.equal(cache.get("a"), undefined);
  cache.put("f", "F", seconds(60), undefined);
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.get("c"), "C2");
  assert.equal(cache.get("d"), "D");
});

test("a hit moves an entry of the older half to the young end", () => {
  const { cache } = setup({ maxEntries: 4 });
  for (const name of ["a", "b", "c", "d"]) {
    cache.put(name, name, seconds(60), undefined);
  }
  assert.equal(cache.get("a"), "a"); // 3 stores since a: older half, moved
  cache.put("e", "e", seconds(60), undefined);
  cache.put("f", "f", seconds(60), undefined);
  assert.equal(cache.get("a"), "a");
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.get("c"), undefined);
});

test("no entry used within the last maxEntries / 2 stores is evicted", () => {
  const maxEntries = 50;
  const { cache } = setup({ maxEntries });
  cache.put("hot", "H", seconds(3600), undefined);
  for (let i = 0; i < 10_000; i++) {
    assert.equal(cache.get("hot"), "H", `store ${i}`);
    cache.put(`cold-${i}`, "C", seconds(3600), undefined);
    assert.ok(cache.size <= maxEntries);
  }
});

test("stale entries are served for stale_if_error past their end, then no more", () => {
  const { mono, cache } = setup({ staleIfErrorMs: 30_000 });
  cache.put("a", "A", seconds(10), undefined);
  assert.equal(cache.getStale("a"), "A");
  mono.advance(10_000);
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.getStale("a"), "A");
  mono.advance(29_999);
  assert.equal(cache.getStale("a"), "A");
  mono.advance(1);
  assert.equal(cache.getStale("a"), undefined);
});

test("drop removes names at once, or everything", () => {
  const { cache } = setup({ staleIfErrorMs: 60_000 });
  for (const name of ["a", "b", "c"]) {
    cache.put(name, name, seconds(60), undefined);
  }
  cache.drop(["a", "nope"]);
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.getStale("a"), undefined); // never served stale
  assert.equal(cache.size, 2);
  cache.drop();
  assert.equal(cache.size, 0);
});

function setupCoherence(maxEntries = 100) {
  const { cache: sources } = setup({ maxEntries });
  const { cache: pools } = setup({ maxEntries });
  return new Coherence(sources, pools);
}

function coherence() {
  return setupCoherence();
}

function event(fields: { all?: boolean; names?: string[]; poolNames?: string[]; revision?: string; instance?: string; sequence?: bigint }) {
  return create(WatchInvalidationsResponseSchema, { revision: "r1", instance: "i1", sequence: 0n, ...fields });
}

function answer(revision: string, value = "V") {
  return { value, revision, producedAt: undefined, ttl: seconds(60) };
}

test("answers are stored while watching only with the announced revision, at the same epoch", () => {
  const state = coherence();
  applyEvent(state, event({ revision: "r1" }), true);
  assert.ok(state.watching);
  const epoch = state.epoch;
  state.keepSource("old", answer("r0"), epoch);
  applyEvent(state, event({ names: ["x"], sequence: 1n }), false);
  state.keepSource("late", answer("r1"), epoch); // an invalidation while in flight
  state.keepSource("a", answer("r1"), state.epoch);
  assert.deepEqual([state.sources.get("old"), state.sources.get("late"), state.sources.get("a")], [undefined, undefined, "V"]);
  const before = state.epoch;
  state.disconnected();
  assert.ok(state.epoch > before);
  state.keepSource("b", answer("r1"), state.epoch);
  assert.equal(state.sources.get("b"), undefined); // held aside, not stored
  assert.equal(state.held, 1);
});

test("an answer before the hello is stored when the hello names its revision", () => {
  const state = coherence();
  state.keepSource("a", answer("r1", "A"), state.epoch);
  state.keepSource("b", answer("r0", "B"), state.epoch); // a policy the hello no longer serves
  state.keepPool("p", answer("r1", "P"), state.epoch);
  assert.deepEqual([state.sources.size, state.pools.size, state.held], [0, 0, 3]);
  applyEvent(state, event({ revision: "r1" }), true);
  assert.deepEqual([state.sources.get("a"), state.sources.get("b"), state.pools.get("p")], ["A", undefined, "P"]);
  assert.equal(state.held, 0);
});

test("an answer in flight across the hello is stored unless the hello dropped it or something came after", () => {
  const state = coherence();
  const before = state.epoch;
  applyEvent(state, event({ revision: "r1", names: ["dropped"] }), true);
  state.keepSource("a", answer("r1", "A"), before);
  state.keepSource("b", answer("r0", "B"), before);
  state.keepSource("dropped", answer("r1", "D"), before);
  assert.deepEqual([state.sources.get("a"), state.sources.get("b"), state.sources.get("dropped")], ["A", undefined, undefined]);
  applyEvent(state, event({ names: ["x"], sequence: 1n }), false);
  state.keepSource("c", answer("r1", "C"), before);
  assert.equal(state.sources.get("c"), undefined);
});

test("held answers: bounded, and discarded by a failed stream or a hello that says all", () => {
  const state = setupCoherence(2);
  for (const name of ["a", "b", "c"]) {
    state.keepSource(name, answer("r1", name), state.epoch);
  }
  assert.equal(state.held, 2);
  state.disconnected(); // the attempt failed before its hello
  applyEvent(state, event({ revision: "r1" }), true);
  assert.equal(state.sources.size, 0);
  state.disconnected();
  state.keepSource("d", answer("r1", "d"), state.epoch);
  applyEvent(state, event({ revision: "r1", all: true }), true);
  assert.equal(state.sources.size, 0);
  state.disconnected();
  for (const name of ["e", "f", "g"]) {
    state.keepSource(name, answer("r1", name), state.epoch); // e goes: at most 2 held
  }
  applyEvent(state, event({ revision: "r1", names: ["f"] }), true);
  assert.deepEqual([state.sources.get("e"), state.sources.get("f"), state.sources.get("g")], [undefined, undefined, "g"]);
});

test("messages drop names, pool names, or everything, and set the resume point", () => {
  const state = coherence();
  for (const name of ["a", "b"]) {
    state.sources.put(name, name, seconds(60), undefined);
    state.pools.put(name, name, seconds(60), undefined);
  }
  applyEvent(state, event({ revision: "r1", instance: "i1", sequence: 4n }), true);
  assert.equal(state.sources.size + state.pools.size, 4); // the hello dropped nothing
  const epoch = state.epoch;
  applyEvent(state, event({ revision: "r1", names: ["a"], poolNames: ["b"], sequence: 5n }), false);
  assert.ok(state.epoch > epoch);
  assert.equal(state.sources.get("a"), undefined);
  assert.equal(state.sources.get("b"), "b");
  assert.equal(state.pools.get("a"), "a");
  assert.equal(state.pools.get("b"), undefined);
  const quiet = state.epoch;
  applyEvent(state, event({ revision: "r2", sequence: 6n }), false); // names nothing
  assert.equal(state.epoch, quiet);
  assert.deepEqual([state.revision, state.instance, state.sequence], ["r2", "i1", 6n]);
  applyEvent(state, event({ all: true, revision: "r3", sequence: 7n }), false);
  assert.equal(state.sources.size + state.pools.size, 0);
});

test("a new stream tells the sidecar what the caches hold", () => {
  const state = coherence();
  assert.deepEqual(
    (({ revision, instance, sequence, previousStreamEnded }) => ({ revision, instance, sequence, previousStreamEnded }))(
      watchRequest(state),
    ),
    { revision: "", instance: "", sequence: 0n, previousStreamEnded: false },
  );
  applyEvent(state, event({ revision: "r9", instance: "i7", sequence: 3n }), true);
  state.previousStreamEnded = true; // the stream ended with OK after its hello
  const request = watchRequest(state);
  assert.deepEqual(
    [request.revision, request.instance, request.sequence, request.previousStreamEnded],
    ["r9", "i7", 3n, true],
  );
  applyEvent(state, event({ revision: "r9", instance: "i8", sequence: 0n }), true);
  assert.equal(state.previousStreamEnded, false); // a hello resets it
});

test("the backoff doubles up to 500 ms with ±20 % jitter", () => {
  assert.equal(nextBackoff(INITIAL_BACKOFF_MS, () => 0.5), 100);
  assert.equal(nextBackoff(100, () => 0), 160);
  assert.ok(Math.abs(nextBackoff(100, () => 1) - 240) < 1e-9);
  assert.equal(nextBackoff(400, () => 0.5), MAX_BACKOFF_MS);
  assert.equal(nextBackoff(MAX_BACKOFF_MS, () => 0.5), MAX_BACKOFF_MS);
  for (let i = 0; i < 100; i++) {
    const next = nextBackoff(MAX_BACKOFF_MS);
    assert.ok(next >= 400 && next <= 600, String(next));
  }
});
