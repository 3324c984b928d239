/**
 * Offline tests: target parsing and the error of an unreachable server.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createResolver, ResolverError } from "../src/client.js";
import { parseTarget } from "../src/target.js";

test("TCP targets become http base URLs", () => {
  assert.equal(parseTarget("127.0.0.1:50051").baseUrl, "http://127.0.0.1:50051");
  assert.equal(parseTarget("[::1]:50051").baseUrl, "http://[::1]:50051");
  assert.equal(parseTarget("localhost:7").baseUrl, "http://localhost:7");
});

test("unix targets open the socket themselves", () => {
  for (const target of ["unix:/run/egress.sock", "unix:///run/egress.sock"]) {
    const parsed = parseTarget(target);
    assert.equal(parsed.baseUrl, "http://localhost");
    assert.equal(typeof parsed.sessionOptions.createConnection, "function");
  }
});

test("malformed targets throw a TypeError", () => {
  for (const target of ["", "127.0.0.1", "unix:relative.sock", "a b:1"]) {
    assert.throws(() => parseTarget(target), TypeError, target);
  }
});

test("an unreachable server gives UNAVAILABLE without a reason", async () => {
  const dir = await mkdtemp(join(tmpdir(), "egress-ts-"));
  const resolver = createResolver(`unix:${join(dir, "nobody-listens.sock")}`, { timeoutMs: 10_000 });
  try {
    const error = await resolver.get("full").catch((rejection: unknown) => rejection);
    assert.ok(error instanceof ResolverError);
    assert.equal(error.code, "UNAVAILABLE");
    assert.equal(error.reason, undefined);
    assert.equal(error.name, "full");
  } finally {
    await resolver.close();
    await rm(dir, { recursive: true, force: true });
  }
});
