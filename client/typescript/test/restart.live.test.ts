/**
 * The cache across policy reloads, sidecar restarts and outages: what the
 * WatchInvalidations resume rules and stale_if_error promise.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createResolver, ResolverError, type Resolver, type ResolverOptions } from "../src/client.js";
import { copyPolicy, DEADLINE_MS, FakeClock, until, type PolicyCopy } from "./helpers.js";
import { startServer, type RunningServer } from "./server.js";

describe("reloads, restarts and outages", () => {
  let copy: PolicyCopy;
  let server: RunningServer | undefined;
  const resolvers: Resolver[] = [];

  /** (Re)starts the sidecar on the same unix socket. */
  async function start(): Promise<RunningServer> {
    server = await startServer({ policy: copy.policy, dir: copy.dir, args: ["--watch-interval", "0s"] });
    return server;
  }

  async function cached(options: ResolverOptions = {}): Promise<Resolver> {
    assert.ok(server !== undefined);
    const resolver = createResolver({ target: server.unixTarget, cache: true, timeoutMs: DEADLINE_MS, ...options });
    resolvers.push(resolver);
    assert.ok(await resolver.waitUntilWatching(DEADLINE_MS));
    return resolver;
  }

  before(async () => {
    copy = await copyPolicy();
    await start();
  });

  after(async () => {
    await Promise.all(resolvers.map((resolver) => resolver.close()));
    await server?.stop();
    await copy?.remove();
  });

  test("a reload that changes a definition drops it, and its pool; one that changes nothing keeps it", async () => {
    assert.ok(server !== undefined);
    const resolver = await cached();
    assert.equal((await resolver.get("v-reload")).ehloDomain, "v1");
    assert.deepEqual((await resolver.getPool("vpool")).entries.map((entry) => entry.name), ["v-v1"]);
    const unchanged = resolver.stats().sequence;
    server.reload();
    await until(() => resolver.stats().sequence > unchanged, "the reload's message");
    const { rpcs } = resolver.stats();
    assert.equal((await resolver.get("v-reload")).ehloDomain, "v1");
    assert.equal(resolver.stats().rpcs, rpcs);
    await copy.setVersion("v2");
    server.reload();
    await until(() => resolver.getCached("v-reload") === undefined, "the changed name dropped");
    await until(() => resolver.getPoolCached("vpool") === undefined, "the changed pool dropped");
    assert.equal((await resolver.get("v-reload")).ehloDomain, "v2");
    assert.deepEqual((await resolver.getPool("vpool")).entries.map((entry) => entry.name), ["v-v2"]);
  });

  test("cached entries are served while the sidecar is gone, and kept across a restart with the same policy", async () => {
    assert.ok(server !== undefined);
    const resolver = await cached();
    const source = await resolver.get("v-restart");
    const { rpcs, streams } = resolver.stats();
    await server.stop();
    await until(() => !resolver.stats().watching, "the stream to end");
    let failures = 0;
    for (let i = 0; i < 100; i++) {
      const again = await resolver.get("v-restart").catch(() => undefined);
      failures += again === source ? 0 : 1;
    }
    assert.equal(failures, 0);
    const down = await resolver.get("v-elsewhere").catch((error: unknown) => error);
    assert.ok(down instanceof ResolverError && down.code === "UNAVAILABLE", String(down));
    await start();
    await until(() => resolver.stats().watching, "the stream to come back");
    assert.ok(resolver.stats().streams > streams);
    assert.equal(await resolver.get("v-restart"), source); // the hello dropped nothing
    assert.equal(resolver.stats().rpcs, rpcs + 1); // only the failed v-elsewhere
  });

  test("a restart with a changed policy drops the cache", async () => {
    assert.ok(server !== undefined);
    const resolver = await cached();
    const before = resolver.stats().sequence;
    await copy.setVersion("v3");
    server.reload();
    await until(() => resolver.stats().sequence > before, "the reload");
    await resolver.get("v-changed"); // cached under v3
    assert.equal(resolver.stats().entries, 1);
    await server.stop();
    await until(() => !resolver.stats().watching, "the stream to end");
    await copy.setVersion("v4");
    await start();
    await until(() => resolver.stats().watching, "the stream to come back");
    assert.equal(resolver.stats().entries, 0);
    assert.equal((await resolver.get("v-changed")).ehloDomain, "v4");
  });

  test("stale_if_error serves an expired entry while the sidecar is UNAVAILABLE, for that long", async () => {
    assert.ok(server !== undefined);
    const mono = new FakeClock();
    const warnings: Record<string, unknown>[] = [];
    const resolver = await cached({ staleIfError: "30s", clock: mono.read, warn: (_, fields) => warnings.push(fields) });
    const source = await resolver.get("short-stale"); // ttl 10 s
    await server.stop();
    await until(() => !resolver.stats().watching, "the stream to end");
    mono.advance(11_000);
    assert.equal(resolver.getCached("short-stale"), undefined);
    assert.equal(await resolver.get("short-stale"), source);
    assert.equal(resolver.stats().staleServed, 1);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.["name"], "short-stale");
    mono.advance(30_000);
    const error = await resolver.get("short-stale").catch((rejection: unknown) => rejection);
    assert.ok(error instanceof ResolverError && error.code === "UNAVAILABLE", String(error));
    assert.equal(resolver.stats().staleServed, 1);
    await start();
  });
});
