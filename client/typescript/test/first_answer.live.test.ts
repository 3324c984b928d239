/**
 * The first answer, before the invalidation stream's hello, against a real
 * sidecar: the client's parts (Coherence, Flights, Watcher) over a
 * connection whose WatchInvalidations waits for the test to open a gate, so
 * that the answer surely arrives first.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { DefinitionCache } from "../src/cache.js";
import { Coherence } from "../src/coherence.js";
import { Flights } from "../src/flights.js";
import type { EgressPool } from "../src/gen/kumo/egress/v1/egress_pool_pb.js";
import type { EgressSource } from "../src/gen/kumo/egress/v1/egress_source_pb.js";
import { EgressResolverService } from "../src/gen/kumo/egress/v1/resolver_service_pb.js";
import { parseTarget } from "../src/target.js";
import { Watcher } from "../src/watch.js";
import { copyPolicy, DEADLINE_MS, type PolicyCopy } from "./helpers.js";
import { startServer, type RunningServer } from "./server.js";

/** A cached client's parts whose stream starts only once `open()` is called. */
function gatedParts(target: string) {
  const { baseUrl, sessionOptions } = parseTarget(target);
  const sessionManager = new Http2SessionManager(baseUrl, {}, sessionOptions);
  const client = createClient(EgressResolverService, createGrpcTransport({ baseUrl, sessionManager }));
  let open = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  const gated: Client<typeof EgressResolverService> = {
    ...client,
    watchInvalidations(request, options) {
      return (async function* () {
        await gate;
        yield* client.watchInvalidations(request, options);
      })();
    },
  };
  const settings = { maxEntries: 100, clock: () => performance.now(), wallClock: Date.now, staleIfErrorMs: 0 };
  const state = new Coherence(new DefinitionCache<EgressSource>(settings), new DefinitionCache<EgressPool>(settings));
  const flights = new Flights(client, DEADLINE_MS, state);
  const watcher = new Watcher(gated, state); // as createResolver does: at once
  const close = async () => {
    open();
    await watcher.stop();
    sessionManager.abort();
  };
  return { client, state, flights, watcher, open, close };
}

describe("the first answer, before the hello", () => {
  let copy: PolicyCopy;
  let server: RunningServer | undefined;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    copy = await copyPolicy();
    server = await startServer({ policy: copy.policy, dir: copy.dir, args: ["--watch-interval", "0s"] });
  });

  after(async () => {
    await Promise.all(closers.map((close) => close()));
    await server?.stop();
    await copy?.remove();
  });

  test("is stored when the hello names its revision", async () => {
    assert.ok(server !== undefined);
    const parts = gatedParts(server.unixTarget);
    closers.push(parts.close);
    assert.equal((await parts.flights.source("v-first")).ehloDomain, "v1");
    assert.deepEqual([parts.state.watching, parts.state.sources.size, parts.state.held], [false, 0, 1]);
    parts.open();
    assert.ok(await parts.watcher.waitUntilConnected(DEADLINE_MS));
    assert.equal(parts.state.sources.get("v-first")?.ehloDomain, "v1");
    assert.equal(parts.flights.rpcs, 1);
  });

  test("is dropped when the hello names another revision", async () => {
    assert.ok(server !== undefined);
    const parts = gatedParts(server.unixTarget);
    closers.push(parts.close);
    assert.equal((await parts.flights.source("v-second")).ehloDomain, "v1");
    await copy.setVersion("v2");
    server.reload();
    const started = Date.now();
    while ((await parts.client.getEgressSource({ name: "v-probe" })).source?.ehloDomain !== "v2") {
      assert.ok(Date.now() - started < DEADLINE_MS, "the sidecar did not serve v2 in time");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    parts.open();
    assert.ok(await parts.watcher.waitUntilConnected(DEADLINE_MS));
    assert.deepEqual([parts.state.sources.size, parts.state.held], [0, 0]);
    assert.equal((await parts.flights.source("v-second")).ehloDomain, "v2");
    assert.equal(parts.state.sources.get("v-second")?.ehloDomain, "v2");
  });
});
