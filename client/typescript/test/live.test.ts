/**
 * Live tests: the client and the example program against a real
 * egress-resolver server running tests/fixtures/clients.lua.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createResolver, ResolverError, sourceToJson, type EgressSource, type Resolver } from "../src/client.js";
import { startServer, type RunningServer } from "./server.js";

const EXAMPLE_PROGRAM = fileURLToPath(new URL("../src/example.js", import.meta.url));
const CALL_TIMEOUT_MS = 30_000;

/** The definition of "full" as the example program must print it. */
const FULL_JSON = {
  name: "full",
  source_address: "10.0.0.1",
  ehlo_domain: "mta1.examplecorp.com",
  remote_port: 2525,
  ha_proxy_server: "10.0.0.9:5000",
  ha_proxy_source_address: "10.0.0.2",
  ttl: "90s",
  socks5_proxy_server: "[2001:db8::1]:1080",
  socks5_proxy_source_address: "2001:db8::2",
  socks5_proxy_username: "mta",
  socks5_proxy_password: { key_data: "[redacted]" },
  suspend_when_unplumbed: { immediate: {}, duration: "300s" },
  suspend_when_proxy_unhealthy: { threshold: "3/300s", duration: "600s" },
};

/** Asserts every field of the fixture's "full" source, the secret and the ttl included. */
function assertFull(source: EgressSource): void {
  assert.equal(source.name, "full");
  assert.equal(source.sourceAddress, "10.0.0.1");
  assert.equal(source.ehloDomain, "mta1.examplecorp.com");
  assert.equal(source.remotePort, 2525);
  assert.equal(source.haProxyServer, "10.0.0.9:5000");
  assert.equal(source.haProxySourceAddress, "10.0.0.2");
  assert.equal(source.socks5ProxyServer, "[2001:db8::1]:1080");
  assert.equal(source.socks5ProxySourceAddress, "2001:db8::2");
  assert.equal(source.socks5ProxyUsername, "mta");
  assert.deepEqual(source.socks5ProxyPassword?.source, { case: "keyData", value: "hunter2" });
  assert.equal(source.ttl?.seconds, 90n);
  assert.equal(source.ttl?.nanos, 0);
  assert.equal(source.suspendWhenUnplumbed?.trigger.case, "immediate");
  assert.equal(source.suspendWhenUnplumbed?.duration?.seconds, 300n);
  assert.deepEqual(source.suspendWhenProxyUnhealthy?.trigger, { case: "threshold", value: "3/300s" });
  assert.equal(source.suspendWhenProxyUnhealthy?.duration?.seconds, 600n);
}

/** Asserts that `value` is a ResolverError with this code, reason and source name. */
function assertResolverError(value: unknown, code: string, reason: string, sourceName: string): ResolverError {
  assert.ok(value instanceof ResolverError, `expected a ResolverError, got ${String(value)}`);
  assert.equal(value.code, code);
  assert.equal(value.reason, reason);
  assert.equal(value.sourceName, sourceName);
  assert.equal(value.name, "ResolverError");
  return value;
}

/** Runs the compiled example program; never rejects, returns its exit status and output. */
async function runExample(target: string, name: string) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [EXAMPLE_PROGRAM, target, name], {
      timeout: CALL_TIMEOUT_MS,
    });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    return { status: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("egress-resolver TypeScript client against a live server", () => {
  let server: RunningServer | undefined;
  let resolver: Resolver;

  before(async () => {
    server = await startServer();
    resolver = createResolver(server.tcpTarget, { timeoutMs: CALL_TIMEOUT_MS });
  });

  after(async () => {
    resolver?.close();
    await server?.stop();
  });

  test("get full returns every field and the 90 s ttl", async () => {
    assertFull(await resolver.get("full"));
  });

  test("sourceToJson uses proto field names and redacts the secret", async () => {
    assert.deepEqual(sourceToJson(await resolver.get("full")), FULL_JSON);
  });

  test("get missing rejects with NOT_FOUND / SOURCE_NOT_FOUND", async () => {
    const error = await resolver.get("missing").then(
      () => assert.fail("missing resolved"),
      (rejection: unknown) => rejection,
    );
    const resolverError = assertResolverError(error, "NOT_FOUND", "SOURCE_NOT_FOUND", "missing");
    assert.match(resolverError.message, /^get_egress_source 'missing': /);
  });

  test("get broken rejects with FAILED_PRECONDITION / HANDLER_ERROR", async () => {
    const error = await resolver.get("broken").catch((rejection: unknown) => rejection);
    const resolverError = assertResolverError(error, "FAILED_PRECONDITION", "HANDLER_ERROR", "broken");
    assert.match(resolverError.message, /^get_egress_source 'broken': /);
    assert.equal(resolverError.describe(), `FAILED_PRECONDITION: ${resolverError.message} [HANDLER_ERROR]`);
  });

  test("getMany keeps request order and mixes sources and errors", async () => {
    const results = await resolver.getMany(["broken", "full", "missing", "full"]);
    assert.equal(results.length, 4);
    assertResolverError(results[0], "FAILED_PRECONDITION", "HANDLER_ERROR", "broken");
    assert.ok(!(results[1] instanceof ResolverError));
    assertFull(results[1] as EgressSource);
    assertResolverError(results[2], "NOT_FOUND", "SOURCE_NOT_FOUND", "missing");
    assertFull(results[3] as EgressSource);
  });

  test("a unix socket target works too", async () => {
    assert.ok(server !== undefined);
    const unixResolver = createResolver(server.unixTarget, { timeoutMs: CALL_TIMEOUT_MS });
    try {
      assertFull(await unixResolver.get("full"));
    } finally {
      unixResolver.close();
    }
  });

  test("example program prints full as one JSON line", async () => {
    assert.ok(server !== undefined);
    const run = await runExample(server.tcpTarget, "full");
    assert.equal(run.stderr, "");
    assert.equal(run.status, 0);
    assert.equal(run.stdout, `${JSON.stringify(FULL_JSON)}\n`);
    assert.ok(!run.stdout.includes("hunter2"));
  });

  test("example program reports missing on stderr and exits 1", async () => {
    assert.ok(server !== undefined);
    const run = await runExample(server.tcpTarget, "missing");
    assert.equal(run.stdout, "");
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^NOT_FOUND: get_egress_source 'missing': .+ \[SOURCE_NOT_FOUND\]\n$/);
  });
});
