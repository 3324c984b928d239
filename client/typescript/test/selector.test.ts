/**
 * kumod's weighted round robin (crates/kumod/src/egress_source.rs, its
 * `round_robin` test): the same sequence in every language.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { EgressPoolSchema, type EgressPool } from "../src/gen/kumo/egress/v1/egress_pool_pb.js";
import { AllSuspendedError, NoSourcesError, PoolSelector } from "../src/selector.js";

function pool(name: string, entries: [string, number][]): EgressPool {
  return create(EgressPoolSchema, { name, entries: entries.map(([entry, weight]) => ({ name: entry, weight })) });
}

function picks(selector: PoolSelector, n: number): string[] {
  return Array.from({ length: n }, () => selector.next());
}

function counts(names: string[]): Record<string, number> {
  const tally: Record<string, number> = {};
  for (const name of names) {
    tally[name] = (tally[name] ?? 0) + 1;
  }
  return tally;
}

const WRR = pool("pool", [
  ["one", 5],
  ["two", 2],
  ["three", 3],
]);

test("weights 5/2/3 give 50/20/30 in 100 picks", () => {
  assert.deepEqual(counts(picks(new PoolSelector(WRR), 100)), { one: 50, two: 20, three: 30 });
});

test("weights 5/2/3 start with kumod's sequence", () => {
  const expected = ["two", "three", "one", "one", "one", "three", "one", "two", "three", "one", "two", "three", "one", "one"];
  assert.deepEqual(picks(new PoolSelector(WRR), 14), expected);
});

test("the sequence repeats every 10 picks (sum of the weights over their gcd)", () => {
  const sequence = picks(new PoolSelector(WRR), 40);
  assert.deepEqual(sequence.slice(10, 20), sequence.slice(0, 10));
  assert.deepEqual(sequence.slice(30, 40), sequence.slice(0, 10));
});

test("the gcd of the weights steps the weight down", () => {
  // 4/2 has gcd 2: the same order as 2/1.
  const big = picks(new PoolSelector(pool("p", [["a", 4], ["b", 2]])), 12);
  const small = picks(new PoolSelector(pool("p", [["a", 2], ["b", 1]])), 12);
  assert.deepEqual(big, small);
  assert.deepEqual(counts(big), { a: 8, b: 4 });
});

test("a weight-0 entry is never chosen", () => {
  const selector = new PoolSelector(pool("with-zero", [["one", 2], ["off", 0], ["two", 1]]));
  const sequence = picks(selector, 30);
  assert.ok(!sequence.includes("off"));
  assert.deepEqual(counts(sequence), { one: 20, two: 10 });
  assert.deepEqual(sequence.slice(0, 6), ["two", "one", "one", "two", "one", "one"]);
});

test("a single weighted entry is always chosen", () => {
  assert.deepEqual(picks(new PoolSelector(pool("p", [["only", 7], ["off", 0]])), 3), ["only", "only", "only"]);
});

test("an empty or all-zero pool has no source", () => {
  for (const empty of [pool("empty", []), pool("all-zero", [["off", 0], ["off2", 0]])]) {
    assert.throws(
      () => new PoolSelector(empty).next(),
      (error: unknown) =>
        error instanceof NoSourcesError &&
        error.message === `pool '${empty.name}' has no source with a weight above 0`,
    );
  }
});

test("sameDefinition compares the name and every entry", () => {
  const selector = new PoolSelector(WRR);
  assert.ok(selector.sameDefinition(WRR));
  assert.ok(selector.sameDefinition(pool("pool", [["one", 5], ["two", 2], ["three", 3]])));
  assert.ok(!selector.sameDefinition(pool("pool", [["one", 5], ["two", 2], ["three", 4]])));
  assert.ok(!selector.sameDefinition(pool("other", [["one", 5], ["two", 2], ["three", 3]])));
  assert.ok(!selector.sameDefinition(pool("pool", [["one", 5], ["two", 2]])));
});

test("suspended sources are skipped: the round robin goes on over the others (kumod's select_and_insert)", () => {
  const selector = new PoolSelector(WRR);
  const twoDown = (name: string) => name === "two";
  const sequence = picks({ next: () => selector.next(twoDown) } as PoolSelector, 80);
  assert.deepEqual(sequence.slice(0, 10), ["three", "one", "one", "one", "three", "one", "three", "one", "three", "one"]);
  assert.deepEqual(counts(sequence), { one: 50, three: 30 });
});

test("with nothing suspended the skip changes nothing; after a suspension ends the sequence goes on", () => {
  const plain = picks(new PoolSelector(WRR), 30);
  const skipping = new PoolSelector(WRR);
  assert.deepEqual(picks({ next: () => skipping.next(() => false) } as PoolSelector, 30), plain);
  const mixed = new PoolSelector(WRR);
  const first = picks(mixed, 3);
  const during = Array.from({ length: 5 }, () => mixed.next((name) => name === "one"));
  assert.ok(!during.includes("one"));
  const afterwards = picks(mixed, 20);
  assert.deepEqual(first, ["two", "three", "one"]);
  assert.deepEqual(counts(afterwards), { one: 10, two: 4, three: 6 });
});

test("a single source left is always chosen; every source suspended is AllSuspendedError", () => {
  const selector = new PoolSelector(WRR);
  assert.deepEqual(
    Array.from({ length: 3 }, () => selector.next((name) => name !== "two")),
    ["two", "two", "two"],
  );
  assert.throws(
    () => new PoolSelector(WRR).next(() => true),
    (error: unknown) => error instanceof AllSuspendedError && error.names.join() === "one,two,three",
  );
  assert.throws(() => new PoolSelector(pool("empty", [])).next(() => true), NoSourcesError);
});
