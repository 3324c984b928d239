/**
 * Host-wide suspension through a real sidecar (test/fixtures/connect.lua):
 * a connect whose source address is not on the host reports SOURCE_UNPLUMBED,
 * the sidecar suspends the source (Immediate, 30 s), and another client on
 * the same sidecar stops selecting it, learning it from the invalidation
 * stream or from GetEgressPool's answer; a pool whose every source is
 * suspended fails with POOL_SUSPENDED; Invalidate ends a suspension. A
 * PROXY_UNHEALTHY found before any connection attempt (address family
 * mismatch) is not reported, one from a proxy that refuses connections is.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createResolver, ResolverError, type Resolver } from "../src/client.js";
import { CONNECT_POLICY, DEADLINE_MS, invalidate, startExample, until } from "./helpers.js";
import { listen, type Listening } from "./peers.js";
import { startServer, type RunningServer } from "./server.js";

async function rejection(promise: Promise<unknown>): Promise<ResolverError> {
  const error = await promise.then(
    () => assert.fail("expected a rejection"),
    (failure: unknown) => failure,
  );
  assert.ok(error instanceof ResolverError, String(error));
  return error;
}

describe("suspension, host-wide, through a live sidecar", () => {
  let server: RunningServer | undefined;
  let smtp: Listening | undefined;
  const peers: string[] = [];
  let reporter: Resolver;
  let watching: Resolver;
  let uncached: Resolver;

  before(async () => {
    server = await startServer({ policy: CONNECT_POLICY });
    smtp = await listen("127.0.0.1", (socket) => {
      peers.push(socket.remoteAddress ?? "");
      socket.write("220 recorder\r\n");
      socket.on("data", (data: Buffer) => {
        if (data.toString().startsWith("EHLO")) {
          socket.write("250 recorder\r\n");
        } else {
          socket.end("221 bye\r\n");
        }
      });
    });
    const options = { target: server.tcpTarget, timeoutMs: DEADLINE_MS };
    reporter = createResolver({ ...options, cache: true });
    watching = createResolver({ ...options, cache: true });
    uncached = createResolver(options);
    assert.ok(await watching.waitUntilWatching(DEADLINE_MS));
  });

  after(async () => {
    await reporter?.close();
    await watching?.close();
    await uncached?.close();
    await smtp?.close();
    await server?.stop();
  });

  test("an unplumbed source is reported and suspended; every client on the host skips it", async () => {
    const to = `127.0.0.1:${smtp?.port}`;
    assert.deepEqual(
      await Promise.all(Array.from({ length: 3 }, () => watching.select("mixed"))),
      ["ip-2", "ip-3", "ip-9"],
    );
    const failure = await rejection(reporter.connect("ip-9", to));
    assert.equal(failure.code, "UNAVAILABLE");
    assert.equal(failure.reason, "SOURCE_UNPLUMBED");
    assert.match(failure.message, /^source ip-9: bind 192\.0\.2\.1:0: .*EADDRNOTAVAIL/);
    assert.deepEqual(reporter.suspended().map((s) => s.name), ["ip-9"]);
    const learned = await watching.whenSuspended("ip-9", DEADLINE_MS);
    assert.ok(learned !== undefined, "the watching client never learned of the suspension");
    const picks = await Promise.all(Array.from({ length: 30 }, () => watching.select("mixed")));
    assert.ok(!picks.includes("ip-9"), picks.join());
    const again = await rejection(reporter.connect("ip-9", to));
    assert.equal(again.reason, "SOURCE_SUSPENDED");
    assert.match(again.message, /^source ip-9 is suspended until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+s\)/);
  });

  test("a client without cache learns suspensions from GetEgressPool; every source suspended is POOL_SUSPENDED", async () => {
    const to = `127.0.0.1:${smtp?.port}`;
    assert.equal((await rejection(reporter.connect("ip-8", to))).reason, "SOURCE_UNPLUMBED");
    const error = await rejection(uncached.select("down"));
    assert.equal(error.code, "RESOURCE_EXHAUSTED");
    assert.equal(error.reason, "POOL_SUSPENDED");
    assert.match(error.message, /^pool down: every source is suspended; ip-9 resumes first, at \S+Z \(in \d+s\)$/);
    assert.deepEqual(uncached.suspended().map((s) => s.name), ["ip-8", "ip-9"]);
  });

  test("a good source connects and says its ehlo_domain; Invalidate ends a suspension", async () => {
    const { socket, ehlo } = await reporter.connect("ip-2", `127.0.0.1:${smtp?.port}`);
    socket.destroy();
    assert.equal(ehlo, "mta2.example.com");
    assert.equal(peers.at(-1), "127.0.0.2");
    assert.ok(server !== undefined);
    await invalidate(server.tcpTarget, { names: ["ip-9"] });
    await until(() => !watching.suspended().some((s) => s.name === "ip-9"), "ip-9 resumed on the stream");
    assert.deepEqual(watching.suspended().map((s) => s.name), ["ip-8"]);
  });

  test("the example program: connect, connect_pool, suspended, wait_suspended", async () => {
    assert.ok(server !== undefined);
    const to = `127.0.0.1:${smtp?.port}`;
    const first = startExample(["--target", server.tcpTarget, "--cache"]);
    const second = startExample(["--target", server.tcpTarget, "--cache"]);
    try {
      assert.deepEqual(await first.ask({ connect: "ip-3", to }), { connected: { source: "ip-3", ehlo: "mta3.example.com" } });
      assert.deepEqual(await first.ask({ connect_pool: "haraka", to }), { connected: { source: "ip-3", ehlo: "mta3.example.com" } });
      assert.ok("at_ns" in ((await second.ask({ wait_suspended: "ip-8", timeout: DEADLINE_MS / 1000 })) as object));
      assert.deepEqual(await second.ask({ suspended: {} }), { names: ["ip-8"] });
      const waiting = second.ask({ wait_suspended: "px-1", timeout: DEADLINE_MS / 1000 });
      const failed = (await first.ask({ connect: "px-1", to, timeout: 5 })) as { error: { reason: string } };
      assert.equal(failed.error.reason, "PROXY_UNHEALTHY");
      const known = (await waiting) as { at_ns: number };
      assert.ok(known.at_ns > Date.now() * 1e6 - 60e9, JSON.stringify(known));
      assert.deepEqual(await first.ask({ suspended: {} }), { names: ["ip-8", "px-1"] });
      const late = (await second.ask({ wait_suspended: "ip-2", timeout: 0.05 })) as { error: { code: string } };
      assert.equal(late.error.code, "DEADLINE_EXCEEDED");
    } finally {
      assert.equal((await first.end()).status, 0);
      assert.equal((await second.end()).status, 0);
    }
  });

  test("a proxy family mismatch is not reported; a proxy that refuses connections is", async () => {
    // px-6 (Immediate): a report would suspend it, and the report's answer
    // would tell the reporter before connect rejects.
    const mismatch = await rejection(reporter.connect("px-6", `127.0.0.1:${smtp?.port}`));
    assert.equal(mismatch.reason, "PROXY_UNHEALTHY");
    assert.match(mismatch.message, /^source px-6: ha_proxy_source_address ::1 address family does not match/);
    assert.ok(!reporter.suspended().some((s) => s.name === "px-6"), "the family mismatch was reported");
    assert.equal(await watching.whenSuspended("px-6", 500), undefined);
    // An IPv6 destination matches ::1: the proxy at 127.0.0.1:9 refuses, which is reported.
    const refused = await rejection(reporter.connect("px-6", "[::1]:25"));
    assert.equal(refused.reason, "PROXY_UNHEALTHY");
    assert.match(refused.message, /^source px-6: proxy 127\.0\.0\.1:9: .*ECONNREFUSED/);
    assert.ok(reporter.suspended().some((s) => s.name === "px-6"), "the refused proxy was not reported");
    assert.ok((await watching.whenSuspended("px-6", DEADLINE_MS)) !== undefined);
    assert.ok(server !== undefined);
    await invalidate(server.tcpTarget, { names: ["px-6"] });
  });
});
