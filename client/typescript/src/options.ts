/**
 * The client's options, as docs/clients/spec.md ("Options") states them for
 * every client: target, timeout, cache, maxEntries, staleIfError,
 * keepaliveInterval and connectTimeout here (camelCase), each with the
 * spec's default and its EGRESS_CLIENT_* variable (the option's schema name
 * in upper case: EGRESS_CLIENT_MAX_ENTRIES).
 *
 * An option given in code wins over its variable, which wins over the
 * default; an empty variable counts as unset. Durations, in code as in
 * variables, are seconds: a number, or a string "2", "2s" or "500ms";
 * booleans in variables are 1/0, true/false, yes/no, on/off. A value that
 * does not parse or breaks a limit throws an OptionError naming the variable
 * (or option) and the value. Hand-written: seven options do not need a
 * config library, and the parsing rules must match the other languages
 * exactly.
 */

/** A duration: seconds as a number, or "2", "2s", "500ms". */
export type Duration = number | string;

export const DEFAULT_TARGET = "127.0.0.1:50051";
/** Seconds a call may take unless the caller says otherwise (a miss runs Lua). */
export const DEFAULT_TIMEOUT = 2;
export const DEFAULT_MAX_ENTRIES = 10_000;
export const DEFAULT_KEEPALIVE_INTERVAL = 30;
/** Seconds `connect` may take (name resolution, every candidate, the proxy handshake). */
export const DEFAULT_CONNECT_TIMEOUT = 60;
export const ENV_PREFIX = "EGRESS_CLIENT_";

/** What the caller may set; anything left out comes from the environment or the default. */
export interface ResolverOptions {
  /** "HOST:PORT", "[V6]:PORT" or "unix:/abs/path". */
  readonly target?: string;
  /** Deadline of each call. */
  readonly timeout?: Duration;
  /** Deadline of each call in milliseconds (kept from earlier versions; `timeout` wins). */
  readonly timeoutMs?: number;
  /** Keep sources and pools until `produced_at + ttl`, following WatchInvalidations. */
  readonly cache?: boolean;
  /** Most sources (and, separately, most pools) cached; least recently used out first. */
  readonly maxEntries?: number;
  /** How long past its ttl an entry may still be served when the sidecar is UNAVAILABLE. */
  readonly staleIfError?: Duration;
  /** HTTP/2 PING interval, also on idle connections (a dead sidecar is noticed). */
  readonly keepaliveInterval?: Duration;
  /** The one deadline of a `connect` unless the call gives its own. */
  readonly connectTimeout?: Duration;
  /** Monotonic clock in milliseconds (tests pass a fake one); performance.now by default. */
  readonly clock?: () => number;
  /** Wall clock in milliseconds since the epoch (tests pass a fake one); Date.now by default. */
  readonly wallClock?: () => number;
  /** Where the stale_if_error warning goes; console.warn by default. */
  readonly warn?: (message: string, fields: Readonly<Record<string, unknown>>) => void;
  /** The variables to read instead of process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Every option in force, durations in milliseconds. */
export interface Options {
  readonly target: string;
  readonly timeoutMs: number;
  readonly cache: boolean;
  readonly maxEntries: number;
  readonly staleIfErrorMs: number;
  readonly keepaliveIntervalMs: number;
  readonly connectTimeoutMs: number;
}

/** An option (or its variable) with a value that cannot be used. */
export class OptionError extends RangeError {
  override readonly name = "OptionError";
}

/** "2", "2s", "500ms" (or a number of seconds) as milliseconds; refuses negative and malformed values. */
export function parseSeconds(value: Duration, origin: string): number {
  let raw = typeof value === "number" ? String(value) : value.trim();
  let scale = 1000;
  if (raw.endsWith("ms")) {
    raw = raw.slice(0, -2);
    scale = 1;
  } else if (raw.endsWith("s")) {
    raw = raw.slice(0, -1);
  }
  const number = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw.trim()) ? Number(raw) : NaN;
  if (Number.isNaN(number)) {
    throw new OptionError(`${origin}: ${JSON.stringify(value)} is not a duration (e.g. 2, 2s, 500ms)`);
  }
  if (!(number >= 0) || !Number.isFinite(number)) {
    throw new OptionError(`${origin}: ${JSON.stringify(value)} must be a finite duration of 0 or more`);
  }
  return number * scale;
}

/** 1/0, true/false, yes/no, on/off. */
export function parseBool(text: string, origin: string): boolean {
  const lowered = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(lowered)) {
    return true;
  }
  if (["0", "false", "no", "off"].includes(lowered)) {
    return false;
  }
  throw new OptionError(`${origin}: ${JSON.stringify(text)} is not a boolean (true or false)`);
}

/** A positive integer. */
export function parseCount(value: number | string, origin: string): number {
  const text = String(value).trim();
  const count = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(count)) {
    throw new OptionError(`${origin}: ${JSON.stringify(value)} is not an integer`);
  }
  if (count < 1) {
    throw new OptionError(`${origin}: ${JSON.stringify(value)} must be at least 1`);
  }
  return count;
}

/** Options given in code, else from the EGRESS_CLIENT_* variables, else the defaults. */
export function resolveOptions(given: ResolverOptions = {}): Options {
  const env = given.env ?? process.env;
  const pick = <T>(name: string, value: T | undefined, parse: (text: string, origin: string) => T, fallback: T): T => {
    if (value !== undefined) {
      return value;
    }
    const key = ENV_PREFIX + name;
    const text = env[key] ?? "";
    return text.trim() ? parse(text, key) : fallback;
  };
  const inCode = (value: Duration | undefined, name: string) =>
    value === undefined ? undefined : parseSeconds(value, name);
  const timeoutGiven = inCode(given.timeout, "timeout") ?? given.timeoutMs;
  const options: Options = {
    target: pick("TARGET", given.target, (text) => text.trim(), DEFAULT_TARGET),
    timeoutMs: pick("TIMEOUT", timeoutGiven, parseSeconds, DEFAULT_TIMEOUT * 1000),
    cache: pick("CACHE", given.cache, parseBool, false),
    maxEntries: pick(
      "MAX_ENTRIES",
      given.maxEntries === undefined ? undefined : parseCount(given.maxEntries, "maxEntries"),
      parseCount,
      DEFAULT_MAX_ENTRIES,
    ),
    staleIfErrorMs: pick("STALE_IF_ERROR", inCode(given.staleIfError, "staleIfError"), parseSeconds, 0),
    keepaliveIntervalMs: pick(
      "KEEPALIVE_INTERVAL",
      inCode(given.keepaliveInterval, "keepaliveInterval"),
      parseSeconds,
      DEFAULT_KEEPALIVE_INTERVAL * 1000,
    ),
    connectTimeoutMs: pick(
      "CONNECT_TIMEOUT",
      inCode(given.connectTimeout, "connectTimeout"),
      parseSeconds,
      DEFAULT_CONNECT_TIMEOUT * 1000,
    ),
  };
  if (!(options.timeoutMs > 0) || !(options.keepaliveIntervalMs > 0) || !(options.connectTimeoutMs > 0)) {
    throw new OptionError("timeout, keepaliveInterval and connectTimeout must be more than 0");
  }
  return options;
}
