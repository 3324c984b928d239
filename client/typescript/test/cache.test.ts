/**
 * The cache, the coherence state and the watch rules without a server: fake
 * clocks, synthetic answers and stream messages.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { DurationSchema, TimestampSchema, type Duration, type Timestamp } from "@bufbuild/protobuf/wkt";
import { DefinitionCache, type CacheSettings } from "../src/cache.js";
import { Coherence } from "../src/coherence.js";
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

/** Stores each name with a ttl of 60 s (or `ttl`), in order. */
function fill(cache: DefinitionCache<string>, names: readonly string[], ttl = 60): void {
  for (const name of names) {
    cache.put(name, name.toUpperCase(), seconds(ttl), undefined);
  }
}

test("a stored answer is the most recently used; beyond maxEntries the least recently used goes", () => {
  const { cache } = setup({ maxEntries: 4 });
  fill(cache, ["a", "b", "c", "d"]);
  assert.deepEqual(cache.names(), ["a", "b", "c", "d"]);
  cache.put("c", "C2", seconds(60), undefined); // stored again: the youngest, with the new value
  assert.deepEqual(cache.names(), ["a", "b", "d", "c"]);
  fill(cache, ["e"]);
  assert.deepEqual(cache.names(), ["b", "d", "c", "e"]);
  fill(cache, ["f"]);
  assert.deepEqual(cache.names(), ["d", "c", "e", "f"]);
  assert.equal(cache.size, 4);
  assert.equal(cache.get("c"), "C2");
});

test("every hit makes its entry the most recently used (get a, b, c; get a; get d -> c, a, d)", () => {
  const { cache } = setup({ maxEntries: 3 });
  fill(cache, ["a", "b", "c"]);
  assert.equal(cache.get("a"), "A");
  assert.deepEqual(cache.names(), ["b", "c", "a"]);
  fill(cache, ["d"]);
  assert.deepEqual(cache.names(), ["c", "a", "d"]);
  assert.equal(cache.get("c"), "C"); // the oldest, hit: youngest
  assert.equal(cache.get("c"), "C"); // already the youngest: stays so
  assert.deepEqual(cache.names(), ["a", "d", "c"]);
});

test("a miss, or an expired entry not served, changes no order; names() changes none", () => {
  const { mono, cache } = setup({ maxEntries: 3, staleIfErrorMs: 30_000 });
  fill(cache, ["short"], 10);
  fill(cache, ["b", "c"]);
  mono.advance(10_000);
  assert.equal(cache.get("short"), undefined); // expired: not served, still held
  assert.equal(cache.get("nope"), undefined);
  assert.deepEqual(cache.names(), ["short", "b", "c"]);
  assert.deepEqual(cache.names(), ["short", "b", "c"]);
  fill(cache, ["d"]); // the expired entry is the oldest: it goes first
  assert.deepEqual(cache.names(), ["b", "c", "d"]);
});

test("a hot key hit before every store is never evicted", () => {
  const maxEntries = 50;
  const { cache } = setup({ maxEntries });
  cache.put("hot", "H", seconds(3600), undefined);
  for (let i = 0; i < 10_000; i++) {
    assert.equal(cache.get("hot"), "H", `store ${i}`);
    cache.put(`cold-${i}`, "C", seconds(3600), undefined);
    assert.ok(cache.size <= maxEntries);
  }
  assert.deepEqual(cache.names().slice(-2), ["hot", "cold-9999"]);
});

test("stale_if_error: after UNAVAILABLE an expired entry is served within the window and becomes the most recently used", () => {
  const { mono, cache } = setup({ staleIfErrorMs: 30_000 });
  fill(cache, ["a"], 10);
  fill(cache, ["b"]);
  assert.equal(cache.afterFailure("a", true), undefined); // fresh: neither served nor moved nor removed
  assert.deepEqual(cache.names(), ["a", "b"]);
  mono.advance(10_000);
  assert.equal(cache.afterFailure("a", true), "A");
  assert.deepEqual(cache.names(), ["b", "a"]);
  mono.advance(29_999);
  assert.equal(cache.afterFailure("a", true), "A");
  mono.advance(1); // produced_at + ttl + stale_if_error: over
  assert.equal(cache.afterFailure("a", true), undefined);
  assert.deepEqual(cache.names(), ["b"]); // removed
});

test("an expired entry a failed call cannot serve is removed: another code than UNAVAILABLE, or no stale_if_error", () => {
  const { mono, cache } = setup({ staleIfErrorMs: 30_000 });
  fill(cache, ["a", "b"], 10);
  mono.advance(10_000);
  assert.equal(cache.afterFailure("a", false), undefined); // e.g. NOT_FOUND or DEADLINE_EXCEEDED
  assert.deepEqual(cache.names(), ["b"]);
  const off = setup({ staleIfErrorMs: 0 });
  fill(off.cache, ["a"], 10);
  off.mono.advance(10_000);
  assert.equal(off.cache.afterFailure("a", true), undefined);
  assert.equal(off.cache.size, 0);
  assert.equal(off.cache.afterFailure("never", true), undefined);
});

test("drop removes names at once, or everything", () => {
  const { mono, cache } = setup({ staleIfErrorMs: 60_000 });
  fill(cache, ["a", "b", "c"]);
  cache.drop(["b", "nope"]);
  assert.equal(cache.get("b"), undefined);
  mono.advance(60_000);
  assert.equal(cache.afterFailure("b", true), undefined); // never served stale
  assert.deepEqual(cache.names(), ["a", "c"]);
  cache.drop();
  assert.equal(cache.size, 0);
  assert.deepEqual(cache.names(), []);
  fill(cache, ["d"]);
  assert.deepEqual(cache.names(), ["d"]);
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
