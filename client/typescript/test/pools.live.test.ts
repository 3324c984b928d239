/**
 * Pools and selection against a real sidecar, and the example program's
 * stdin protocol (the one tests/conformance drives in every language).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createResolver, ResolverError, type Resolver } from "../src/client.js";
import { copyPolicy, DEADLINE_MS, startExample, type ExampleSession, type PolicyCopy } from "./helpers.js";
import { startServer, type RunningServer } from "./server.js";

const KUMOD_ORDER = ["two", "three", "one", "one", "one", "three", "one", "two", "three", "one", "two", "three", "one", "one"];

async function picks(resolver: Resolver, pool: string, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(await resolver.select(pool));
  }
  return names;
}

function assertNoSources(error: unknown, pool: string): void {
  assert.ok(error instanceof ResolverError, String(error));
  assert.equal(error.code, "FAILED_PRECONDITION");
  assert.equal(error.reason, "POOL_HAS_NO_SOURCES");
  assert.equal(error.message, `pool '${pool}' has no source with a weight above 0`);
  assert.equal(error.name, pool);
}

/** Asks `stats` until the example's invalidation stream is connected (answers are stored from then on). */
async function untilWatching(example: ExampleSession): Promise<void> {
  for (let i = 0; ; i++) {
    const stats = (await example.ask({ stats: {} })) as { watching: boolean };
    if (stats.watching) {
      return;
    }
    assert.ok(i < DEADLINE_MS / 10, "the example's stream connected");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("pools against a live sidecar", () => {
  let copy: PolicyCopy;
  let server: RunningServer;
  const resolvers: Resolver[] = [];

  function resolver(cache: boolean): Resolver {
    const created = createResolver({ target: server.tcpTarget, cache, timeoutMs: DEADLINE_MS });
    resolvers.push(created);
    return created;
  }

  before(async () => {
    copy = await copyPolicy();
    server = await startServer({ policy: copy.policy });
  });

  after(async () => {
    await Promise.all(resolvers.map((created) => created.close()));
    await server?.stop();
    await copy?.remove();
  });

  test("getPool returns every entry with its weight, and the ttl", async () => {
    const pool = await resolver(false).getPool("with-zero");
    assert.equal(pool.name, "with-zero");
    assert.deepEqual(
      pool.entries.map((entry) => [entry.name, entry.weight]),
      [["one", 2], ["off", 0], ["two", 1]],
    );
    assert.equal(pool.ttl?.seconds, 300n);
  });

  test("a cached pool makes one call; select follows kumod's order", async () => {
    const cached = resolver(true);
    assert.ok(await cached.waitUntilWatching(DEADLINE_MS));
    assert.deepEqual(await picks(cached, "wrr", 14), KUMOD_ORDER);
    assert.equal(cached.stats().rpcs, 1);
    assert.ok(cached.getPoolCached("wrr") !== undefined);
    const tally = new Map<string, number>();
    for (const name of await picks(cached, "wrr", 100)) {
      tally.set(name, (tally.get(name) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(tally), { one: 50, two: 20, three: 30 });
  });

  test("without the cache every select fetches the pool and keeps its place", async () => {
    const uncached = resolver(false);
    assert.deepEqual(await picks(uncached, "wrr", 14), KUMOD_ORDER);
    assert.equal(uncached.stats().rpcs, 14);
  });

  test("a weight-0 entry is never chosen; a single entry always is", async () => {
    const uncached = resolver(false);
    assert.deepEqual(await picks(uncached, "with-zero", 6), ["two", "one", "one", "two", "one", "one"]);
    assert.deepEqual(await picks(uncached, "single", 3), ["one", "one", "one"]);
  });

  test("an empty or all-zero pool is FAILED_PRECONDITION / POOL_HAS_NO_SOURCES", async () => {
    for (const cache of [false, true]) {
      const created = resolver(cache);
      for (const pool of ["empty", "all-zero"]) {
        assertNoSources(await created.select(pool).catch((error: unknown) => error), pool);
      }
    }
  });

  test("an unknown pool is NOT_FOUND", async () => {
    const error = await resolver(true).getPool("nope").catch((rejection: unknown) => rejection);
    assert.ok(error instanceof ResolverError);
    assert.deepEqual([error.code, error.name], ["NOT_FOUND", "nope"]);
  });

  test("the example answers each command line with one JSON line", async () => {
    const example = startExample(["--target", server.tcpTarget, "--cache"]);
    try {
      await untilWatching(example);
      const source = { source: { name: "v-example", ehlo_domain: "v1", ttl: "3600s" } };
      assert.deepEqual(await example.ask({ get: "v-example" }), source);
      assert.deepEqual(await example.ask({ get: "v-example" }), source);
      assert.deepEqual(await example.ask({ stats: {} }), { rpcs: 1, entries: 1, watching: true });
      assert.deepEqual(await example.ask({ pool: "with-zero" }), {
        pool: {
          name: "with-zero",
          entries: [
            { name: "one", weight: 2 },
            { name: "off", weight: 0 },
            { name: "two", weight: 1 },
          ],
          ttl: "300s",
        },
      });
      assert.deepEqual(await example.ask({ select: "wrr", n: 14 }), { sources: KUMOD_ORDER });
      assert.deepEqual(await example.ask({ select: "wrr", n: 0 }), { sources: [] });
      const empty = (await example.ask({ select: "empty", n: 2 })) as { error: Record<string, string> };
      assert.deepEqual(empty, {
        error: {
          code: "FAILED_PRECONDITION",
          reason: "POOL_HAS_NO_SOURCES",
          message: "pool 'empty' has no source with a weight above 0",
        },
      });
      const missing = (await example.ask({ get: "missing" })) as { error: Record<string, string> };
      assert.deepEqual([missing.error["code"], missing.error["reason"]], ["NOT_FOUND", "SOURCE_NOT_FOUND"]);
      const bench = (await example.ask({ bench: "v-example", n: 1000 })) as { ns_per_call: number };
      assert.ok(typeof bench.ns_per_call === "number" && bench.ns_per_call > 0, JSON.stringify(bench));
      for (const bad of [{ frobnicate: 1 }, { get: 7 }, { select: "wrr", n: -1 }, [1, 2]]) {
        const answer = (await example.ask(bad)) as { error: Record<string, string> };
        assert.deepEqual([answer.error["code"], answer.error["reason"]], ["INVALID_ARGUMENT", "BAD_COMMAND"]);
      }
      assert.deepEqual(await example.ask({ stats: {} }), { rpcs: 5, entries: 4, watching: true });
    } finally {
      const { status, stderr } = await example.end();
      assert.equal(stderr, "");
      assert.equal(status, 0);
    }
  });

  test("the example: options from EXAMPLE_OPTIONS win over the variables; cached, get_many, concurrent_get", async () => {
    const example = startExample(["--target", server.tcpTarget], {
      EXAMPLE_OPTIONS: '{"cache": true, "max_entries": 3, "timeout": "1500ms"}',
      EGRESS_CLIENT_MAX_ENTRIES: "7",
      EGRESS_CLIENT_TIMEOUT: "9",
      EGRESS_CLIENT_STALE_IF_ERROR: "30",
    });
    try {
      assert.deepEqual(await example.ask({ options: {} }), {
        options: {
          target: server.tcpTarget,
          timeout: "1500ms",
          cache: true,
          max_entries: 3,
          stale_if_error: "30s",
          keepalive_interval: "30s",
          connect_timeout: "60s",
        },
      });
      await untilWatching(example);
      for (const name of ["v-a", "v-b", "v-c", "v-a", "v-d"]) {
        await example.ask({ get: name });
      }
      assert.deepEqual(await example.ask({ cached: {} }), { names: ["v-c", "v-a", "v-d"] });
      const many = (await example.ask({ get_many: ["v-b", "missing", "v-a"] })) as { results: Record<string, Record<string, string>>[] };
      assert.deepEqual(
        many.results.map((result) => result["source"]?.["name"] ?? result["error"]?.["reason"]),
        ["v-b", "SOURCE_NOT_FOUND", "v-a"],
      );
      assert.deepEqual(await example.ask({ cached: {} }), { names: ["v-c", "v-a", "v-d"] }); // never read nor filled
      const { rpcs } = (await example.ask({ stats: {} })) as { rpcs: number };
      assert.deepEqual(await example.ask({ concurrent_get: "counted-flight", n: 8 }), { sources: 8 });
      assert.deepEqual(await example.ask({ stats: {} }), { rpcs: rpcs + 1, entries: 3, watching: true });
      const missing = (await example.ask({ concurrent_get: "missing", n: 3 })) as { error: Record<string, string> };
      assert.deepEqual([missing.error["code"], missing.error["reason"]], ["NOT_FOUND", "SOURCE_NOT_FOUND"]);
      const bad = (await example.ask({ get_many: "v-a" })) as { error: Record<string, string> };
      assert.deepEqual([bad.error["code"], bad.error["reason"]], ["INVALID_ARGUMENT", "BAD_COMMAND"]);
    } finally {
      const { status, stderr } = await example.end();
      assert.equal(stderr, "");
      assert.equal(status, 0);
    }
  });

  test("the example refuses an EXAMPLE_OPTIONS it cannot use, naming it", async () => {
    const example = startExample(["--target", server.tcpTarget], { EXAMPLE_OPTIONS: '{"max_entries": 0}' });
    const { status, stderr } = await example.end();
    assert.equal(status, 2);
    assert.match(stderr, /maxEntries: 0 must be at least 1/);
  });
});
