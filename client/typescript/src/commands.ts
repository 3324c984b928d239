/**
 * The scriptable example's protocol: one JSON command per line in, one JSON
 * line per command out, in order (the same in every language's example;
 * tests/conformance drives it):
 *
 *     {"get": NAME}              -> {"source": {...}} | {"error": {...}}
 *     {"get_many": [NAMES]}      -> {"results": [{"source": {...}} | {"error": {...}}, ...]}   (one batch call, in order)
 *     {"concurrent_get": NAME, "n": K} -> {"sources": K} | the first error   (K gets started at once)
 *     {"cached": {}}             -> {"names": [cached source names, least to most recently used]}
 *     {"options": {}}            -> {"options": {"target", "timeout": "2s", "cache", "max_entries", ...}}
 *     {"pool": NAME}             -> {"pool": {"name", "entries": [{"name", "weight"}], "ttl"}}
 *     {"select": POOL, "n": N}   -> {"sources": [N names in selection order]}
 *     {"bench": NAME, "n": N}    -> {"ns_per_call": X}   (N awaited gets, timed in process)
 *     {"bench_select": POOL, "n": N} -> {"ns_per_call": X}   (N awaited selects, timed in process)
 *     {"stats": {}}              -> {"rpcs": R, "entries": E, "watching": B}
 *     {"connect": SOURCE, "to": "HOST:PORT"[, "timeout": S]} -> {"connected": {"source": NAME, "ehlo": SENT}}
 *     {"connect_pool": POOL, "to": "HOST:PORT"[, "timeout": S]} -> the same, for the source `select` chose
 *     {"suspended": {}}          -> {"names": [sorted]}
 *     {"bench_connect": SOURCE, "to": "HOST:PORT", "n": N} -> {"ns_per_call": X, "plain_ns_per_call": Y}
 *     {"wait_suspended": NAME, "timeout": S} -> {"at_ns": T} | DEADLINE_EXCEEDED
 *
 * `connect` reads the banner, says EHLO and reads the reply, says QUIT
 * (docs/clients/connect.md, "The example protocol").
 *
 * Errors are {"error": {"code": "NOT_FOUND", "reason": "SOURCE_NOT_FOUND", "message": "..."}};
 * anything else is INVALID_ARGUMENT / BAD_COMMAND.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import type { Resolver } from "./client.js";
import { ResolverError } from "./errors.js";
import { errorToJson, poolToJson, sourceToJson } from "./json.js";
import { OptionError, type Options, type ResolverOptions } from "./options.js";
import { benchConnect, greet } from "./smtp.js";

type Command = Readonly<Record<string, unknown>>;
type Handler = (command: Command) => Promise<JsonValue>;

/** A command that cannot be carried out as written. */
class BadCommand extends Error {}

function bad(message: string): JsonValue {
  return { error: { code: "INVALID_ARGUMENT", reason: "BAD_COMMAND", message } };
}

function text(command: Command, key: string): string {
  const value = command[key];
  if (typeof value !== "string") {
    throw new BadCommand(`'${key}' takes a string`);
  }
  return value;
}

function count(command: Command): number {
  const value = command["n"] ?? 1;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new BadCommand("'n' takes an integer of 0 or more");
  }
  return value;
}

/** The optional "timeout" in seconds, as milliseconds. */
function seconds(command: Command, fallback?: number): number | undefined {
  const value = command["timeout"];
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new BadCommand("'timeout' takes a number of seconds");
  }
  return value * 1000;
}

/** A duration as the example prints it: whole seconds as "2s", else milliseconds as "500ms". */
export function formatDuration(ms: number): string {
  const rounded = Math.round(ms);
  return rounded % 1000 === 0 ? `${rounded / 1000}s` : `${rounded}ms`;
}

/** The options in force under their schema names (docs/clients/spec.md), durations formatted. */
export function optionsToJson(options: Options): JsonValue {
  return {
    target: options.target,
    timeout: formatDuration(options.timeoutMs),
    cache: options.cache,
    max_entries: options.maxEntries,
    stale_if_error: formatDuration(options.staleIfErrorMs),
    keepalive_interval: formatDuration(options.keepaliveIntervalMs),
    connect_timeout: formatDuration(options.connectTimeoutMs),
  };
}

/** Each option's schema name, its name here, and the JSON types it takes. */
const SCHEMA_OPTIONS: Readonly<Record<string, readonly [keyof ResolverOptions, readonly string[]]>> = {
  target: ["target", ["string"]],
  timeout: ["timeout", ["string", "number"]],
  cache: ["cache", ["boolean"]],
  max_entries: ["maxEntries", ["number"]],
  stale_if_error: ["staleIfError", ["string", "number"]],
  keepalive_interval: ["keepaliveInterval", ["string", "number"]],
  connect_timeout: ["connectTimeout", ["string", "number"]],
};

/**
 * Options given in code, from a JSON object of schema name → value
 * (`{"timeout": "500ms", "max_entries": 3, "cache": true}`): what the example
 * reads from EXAMPLE_OPTIONS. Values are checked by createResolver as any
 * option in code; an unknown name or a value of the wrong JSON type is an
 * OptionError naming `origin`.
 */
export function codeOptions(json: string, origin = "EXAMPLE_OPTIONS"): ResolverOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new OptionError(`${origin}: not JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new OptionError(`${origin}: ${json} is not a JSON object`);
  }
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const known = SCHEMA_OPTIONS[key];
    if (known === undefined) {
      throw new OptionError(`${origin}: unknown option ${JSON.stringify(key)}; expected one of ${Object.keys(SCHEMA_OPTIONS).join(", ")}`);
    }
    const [name, types] = known;
    if (!types.includes(typeof value)) {
      throw new OptionError(`${origin}: ${key} takes a ${types.join(" or ")}, not ${JSON.stringify(value)}`);
    }
    options[name] = value;
  }
  return options as ResolverOptions;
}

/** The string list under `key`. */
function names(command: Command, key: string): string[] {
  const value = command[key];
  if (!Array.isArray(value) || !value.every((name) => typeof name === "string")) {
    throw new BadCommand(`'${key}' takes a list of strings`);
  }
  return value as string[];
}

/** K gets of `name` started at once: K when all succeed, else the first failure in start order. */
async function concurrentGet(resolver: Resolver, name: string, k: number): Promise<JsonValue> {
  const outcomes = await Promise.allSettled(Array.from({ length: k }, () => resolver.get(name)));
  for (const outcome of outcomes) {
    if (outcome.status === "rejected") {
      throw outcome.reason;
    }
  }
  return { sources: k };
}

/** Connects through `source`, says EHLO and QUIT; the `connected` answer. */
async function connectAndGreet(resolver: Resolver, source: string, command: Command): Promise<JsonValue> {
  const timeoutMs = seconds(command);
  const connection = await resolver.connect(source, text(command, "to"), timeoutMs === undefined ? {} : { timeoutMs });
  await greet(connection, timeoutMs ?? resolver.options.connectTimeoutMs);
  return { connected: { source, ehlo: connection.ehlo } };
}

/** N awaited calls of `call(name)` (after one that may be a miss), in nanoseconds per call. */
async function bench(call: (name: string) => Promise<unknown>, name: string, n: number): Promise<number> {
  await call(name);
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await call(name);
  }
  return Number(process.hrtime.bigint() - started) / Math.max(n, 1);
}

/** The handlers, in the order their keys are looked for. */
function handlers(resolver: Resolver): [string, Handler][] {
  return [
    ["get", async (c) => ({ source: sourceToJson(await resolver.get(text(c, "get"))) })],
    [
      "get_many",
      async (c) => ({
        results: (await resolver.getMany(names(c, "get_many"))).map(
          (result): JsonValue =>
            result instanceof ResolverError ? { error: errorToJson(result) } : { source: sourceToJson(result) },
        ),
      }),
    ],
    ["concurrent_get", (c) => concurrentGet(resolver, text(c, "concurrent_get"), count(c))],
    ["cached", async () => ({ names: resolver.cachedNames() })],
    ["options", async () => ({ options: optionsToJson(resolver.options) })],
    ["pool", async (c) => ({ pool: poolToJson(await resolver.getPool(text(c, "pool"))) })],
    [
      "select",
      async (c) => {
        const pool = text(c, "select");
        const sources: string[] = [];
        for (let i = count(c); i > 0; i--) {
          sources.push(await resolver.select(pool));
        }
        return { sources };
      },
    ],
    [
      "bench_select",
      async (c) => ({
        ns_per_call: await bench((pool) => resolver.select(pool), text(c, "bench_select"), count(c)),
      }),
    ],
    [
      "bench",
      async (c) => ({ ns_per_call: await bench((name) => resolver.get(name), text(c, "bench"), count(c)) }),
    ],
    ["connect", (c) => connectAndGreet(resolver, text(c, "connect"), c)],
    ["connect_pool", async (c) => connectAndGreet(resolver, await resolver.select(text(c, "connect_pool")), c)],
    ["suspended", async () => ({ names: resolver.suspended().map((suspension) => suspension.name) })],
    [
      "bench_connect",
      async (c) => {
        const source = await resolver.get(text(c, "bench_connect"));
        const figures = await benchConnect(resolver, source, text(c, "to"), count(c));
        return { ns_per_call: figures.connectNs, plain_ns_per_call: figures.plainNs };
      },
    ],
    [
      "wait_suspended",
      async (c): Promise<JsonValue> => {
        const name = text(c, "wait_suspended");
        const timeoutMs = seconds(c, 10_000) as number;
        const at = await resolver.whenSuspended(name, timeoutMs);
        if (at === undefined) {
          const message = `${name} was not known suspended within ${timeoutMs / 1000} s`;
          return { error: { code: "DEADLINE_EXCEEDED", reason: "", message } };
        }
        return { at_ns: Number(at) };
      },
    ],
    [
      "stats",
      async () => {
        const { rpcs, entries, watching } = resolver.stats();
        return { rpcs, entries, watching };
      },
    ],
  ];
}

/** The reply to one command line. */
export async function answer(resolver: Resolver, line: string): Promise<JsonValue> {
  let command: unknown;
  try {
    command = JSON.parse(line);
  } catch (error) {
    return bad(`not JSON: ${(error as Error).message}`);
  }
  if (command === null || typeof command !== "object" || Array.isArray(command)) {
    return bad("a command is a JSON object");
  }
  const known = handlers(resolver);
  for (const [key, handler] of known) {
    if (key in command) {
      try {
        return await handler(command as Command);
      } catch (error) {
        if (error instanceof ResolverError) {
          return { error: errorToJson(error) };
        }
        if (error instanceof BadCommand) {
          return bad(error.message);
        }
        throw error;
      }
    }
  }
  const keys = known.map(([key]) => key).join(", ");
  return bad(`unknown command ${JSON.stringify(line.trim())}; expected one of ${keys}`);
}
