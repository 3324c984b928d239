/**
 * Options: code wins over EGRESS_CLIENT_* variables, which win over the
 * defaults; durations, booleans and counts are parsed as in every language.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { OptionError, parseBool, parseCount, parseSeconds, resolveOptions } from "../src/options.js";
import { createResolver } from "../src/client.js";
import { codeOptions, formatDuration, optionsToJson } from "../src/commands.js";

test("the defaults", () => {
  assert.deepEqual(resolveOptions({ env: {} }), {
    target: "127.0.0.1:50051",
    timeoutMs: 2000,
    cache: false,
    maxEntries: 10_000,
    staleIfErrorMs: 0,
    keepaliveIntervalMs: 30_000,
    connectTimeoutMs: 60_000,
  });
});

test("the variables", () => {
  const env = {
    EGRESS_CLIENT_TARGET: " unix:/run/egress.sock ",
    EGRESS_CLIENT_TIMEOUT: "500ms",
    EGRESS_CLIENT_CACHE: "yes",
    EGRESS_CLIENT_MAX_ENTRIES: "12",
    EGRESS_CLIENT_STALE_IF_ERROR: "30s",
    EGRESS_CLIENT_KEEPALIVE_INTERVAL: "5",
    EGRESS_CLIENT_CONNECT_TIMEOUT: "1500ms",
  };
  assert.deepEqual(resolveOptions({ env }), {
    target: "unix:/run/egress.sock",
    timeoutMs: 500,
    cache: true,
    maxEntries: 12,
    staleIfErrorMs: 30_000,
    keepaliveIntervalMs: 5000,
    connectTimeoutMs: 1500,
  });
});

test("code wins over the variables; empty variables count as unset", () => {
  const env = { EGRESS_CLIENT_CACHE: "on", EGRESS_CLIENT_TIMEOUT: "9", EGRESS_CLIENT_TARGET: "  " };
  const options = resolveOptions({ env, cache: false, timeout: "250ms", maxEntries: 3, staleIfError: 1.5 });
  assert.equal(options.cache, false);
  assert.equal(options.timeoutMs, 250);
  assert.equal(options.maxEntries, 3);
  assert.equal(options.staleIfErrorMs, 1500);
  assert.equal(options.target, "127.0.0.1:50051");
  assert.equal(resolveOptions({ env, timeoutMs: 1234 }).timeoutMs, 1234);
  assert.equal(resolveOptions({ env, timeout: 2, timeoutMs: 1234 }).timeoutMs, 2000);
  const connect = { EGRESS_CLIENT_CONNECT_TIMEOUT: "9" };
  assert.equal(resolveOptions({ env: connect, connectTimeout: "2s" }).connectTimeoutMs, 2000);
  assert.throws(() => resolveOptions({ env: { EGRESS_CLIENT_CONNECT_TIMEOUT: "0" } }), OptionError);
});

test("durations: seconds, s or ms; negative and malformed refused", () => {
  assert.equal(parseSeconds("2", "x"), 2000);
  assert.equal(parseSeconds(" 2s ", "x"), 2000);
  assert.equal(parseSeconds("500ms", "x"), 500);
  assert.equal(parseSeconds("0.25", "x"), 250);
  assert.equal(parseSeconds(0, "x"), 0);
  for (const bad of ["-1", "-1s", "abc", "", "ms", "2m", "1h", "Infinity", "1e999"]) {
    assert.throws(() => parseSeconds(bad, "EGRESS_CLIENT_TIMEOUT"), OptionError, bad);
  }
  assert.throws(() => parseSeconds(-3, "timeout"), /timeout: -3 must be a finite duration of 0 or more/);
});

test("booleans and counts", () => {
  for (const yes of ["1", "true", "YES", " on "]) {
    assert.equal(parseBool(yes, "x"), true);
  }
  for (const no of ["0", "false", "No", "off"]) {
    assert.equal(parseBool(no, "x"), false);
  }
  assert.throws(() => parseBool("maybe", "EGRESS_CLIENT_CACHE"), /EGRESS_CLIENT_CACHE: "maybe" is not a boolean/);
  assert.equal(parseCount("10", "x"), 10);
  for (const bad of ["0", "-5", "1.5", "ten", ""]) {
    assert.throws(() => parseCount(bad, "EGRESS_CLIENT_MAX_ENTRIES"), OptionError, bad);
  }
  assert.throws(() => resolveOptions({ env: {}, maxEntries: 0 }), /maxEntries: 0 must be at least 1/);
});

test("a timeout or keepalive interval of 0 is refused", () => {
  assert.throws(() => resolveOptions({ env: {}, timeout: 0 }), OptionError);
  assert.throws(() => resolveOptions({ env: { EGRESS_CLIENT_KEEPALIVE_INTERVAL: "0" } }), OptionError);
});

test("createResolver reads the variables and reports the options in force", async () => {
  const resolver = createResolver({ env: { EGRESS_CLIENT_TARGET: "[::1]:7", EGRESS_CLIENT_TIMEOUT: "3" } });
  try {
    assert.equal(resolver.options.target, "[::1]:7");
    assert.equal(resolver.options.timeoutMs, 3000);
    assert.equal(resolver.options.cache, false);
  } finally {
    await resolver.close();
  }
  const positional = createResolver("unix:/nowhere.sock", { env: { EGRESS_CLIENT_TARGET: "[::1]:7" } });
  assert.equal(positional.options.target, "unix:/nowhere.sock");
  await positional.close();
  assert.throws(() => createResolver({ env: { EGRESS_CLIENT_TARGET: "no-port" } }), TypeError);
});

test("the example prints the options under their schema names, durations as 2s or 500ms", () => {
  assert.deepEqual([0, 500, 1000, 1500, 2000, 60_000, 0.4, 999.6].map(formatDuration), [
    "0s",
    "500ms",
    "1s",
    "1500ms",
    "2s",
    "60s",
    "0s",
    "1s",
  ]);
  assert.deepEqual(optionsToJson(resolveOptions({ env: {} })), {
    target: "127.0.0.1:50051",
    timeout: "2s",
    cache: false,
    max_entries: 10_000,
    stale_if_error: "0s",
    keepalive_interval: "30s",
    connect_timeout: "60s",
  });
});

test("EXAMPLE_OPTIONS: schema names become options in code, which win over the variables", () => {
  const given = codeOptions(
    '{"target": "unix:/x.sock", "timeout": "300ms", "cache": true, "max_entries": 3, "stale_if_error": 30, "keepalive_interval": "5s", "connect_timeout": "1500ms"}',
  );
  const env = { EGRESS_CLIENT_TIMEOUT: "9", EGRESS_CLIENT_MAX_ENTRIES: "7", EGRESS_CLIENT_CACHE: "off" };
  assert.deepEqual(optionsToJson(resolveOptions({ ...given, env })), {
    target: "unix:/x.sock",
    timeout: "300ms",
    cache: true,
    max_entries: 3,
    stale_if_error: "30s",
    keepalive_interval: "5s",
    connect_timeout: "1500ms",
  });
  assert.deepEqual(codeOptions("{}"), {});
  assert.throws(() => codeOptions("{"), /EXAMPLE_OPTIONS: not JSON/);
  assert.throws(() => codeOptions("[1]"), /EXAMPLE_OPTIONS: \[1\] is not a JSON object/);
  assert.throws(() => codeOptions('{"maxEntries": 3}'), /EXAMPLE_OPTIONS: unknown option "maxEntries"/);
  assert.throws(() => codeOptions('{"cache": "yes"}'), /EXAMPLE_OPTIONS: cache takes a boolean, not "yes"/);
  assert.throws(() => resolveOptions({ ...codeOptions('{"timeout": "soon"}'), env: {} }), /timeout: "soon" is not a duration/);
});
