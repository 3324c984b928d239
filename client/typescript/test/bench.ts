/**
 * The TypeScript client's figures against a real sidecar (127.0.0.1, TCP):
 *
 * - cached get: `await resolver.get(name)` on a hit, and `resolver.getCached(name)`;
 * - select: `await resolver.select(pool)` on a cached pool (weights 5/2/3);
 * - uncached get: a full round trip (the cache off);
 * - reload to fresh: SIGHUP of a changed policy until the cache no longer
 *   returns the old definition (p50 / p99 over the reloads; checked every
 *   millisecond or so). The client drops the entry as the stream message
 *   arrives, so this is mostly the sidecar's reload and the delivery.
 *
 * Per-call figures are the median over ROUNDS rounds of the mean of a round.
 * Prints one JSON line on stdout (and a summary on stderr):
 *
 *     node client/typescript/dist/test/bench.js [--reloads 100] [--out FILE]
 */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createResolver, type Resolver } from "../src/client.js";
import { copyPolicy, DEADLINE_MS, until } from "./helpers.js";
import { startServer } from "./server.js";

const ROUNDS = 7;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The p-th percentile (nearest rank). */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Median over ROUNDS of the mean ns of `count` calls of `call`. */
async function perCallNs(count: number, call: () => unknown): Promise<number> {
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      await call();
    }
    rounds.push(Number(process.hrtime.bigint() - started) / count);
  }
  return median(rounds);
}

/** Median over ROUNDS of the mean ns of `count` synchronous calls of `call`. */
function perSyncCallNs(count: number, call: () => unknown): number {
  const rounds: number[] = [];
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      sink += call() === undefined ? 1 : 0;
    }
    rounds.push(Number(process.hrtime.bigint() - started) / count);
  }
  if (sink !== 0) {
    throw new Error("a cached get missed during the benchmark");
  }
  return median(rounds);
}

/** Resolves after about 1 ms: a spinning wait would take the CPU the sidecar needs to reload. */
const shortWait = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { reloads: { type: "string", default: "100" }, out: { type: "string" } },
  });
  const reloads = Number(values.reloads);
  const copy = await copyPolicy();
  const server = await startServer({ policy: copy.policy, args: ["--watch-interval", "0s"] });
  const resolvers: Resolver[] = [];
  try {
    const cached = createResolver({ target: server.tcpTarget, cache: true, timeoutMs: DEADLINE_MS });
    const uncached = createResolver({ target: server.tcpTarget, timeoutMs: DEADLINE_MS });
    resolvers.push(cached, uncached);
    if (!(await cached.waitUntilWatching(DEADLINE_MS))) {
      throw new Error("the invalidation stream did not connect");
    }
    await cached.get("v-bench");
    await cached.getPool("wrr");
    await uncached.get("v-bench");
    if (cached.getCached("v-bench") === undefined || cached.getPoolCached("wrr") === undefined) {
      throw new Error("the cache did not keep the definitions");
    }
    const figures: Record<string, number> = {
      typescript_cached_get_ns: await perCallNs(500_000, () => cached.get("v-bench")),
      typescript_cached_get_sync_ns: perSyncCallNs(2_000_000, () => cached.getCached("v-bench")),
      typescript_select_ns: await perCallNs(500_000, () => cached.select("wrr")),
      typescript_uncached_get_ns: await perCallNs(1_000, () => uncached.get("v-bench")),
    };
    const rpcs = cached.stats().rpcs;
    if (rpcs !== 2) {
      throw new Error(`the cached benchmarks made calls: ${rpcs}`);
    }
    const latencies: number[] = [];
    for (let i = 0; i < reloads; i++) {
      const old = cached.getCached("v-bench");
      await copy.setVersion(`v${i + 2}`);
      const started = process.hrtime.bigint();
      server.reload();
      while (cached.getCached("v-bench") === old) {
        await shortWait();
        if (Number(process.hrtime.bigint() - started) > DEADLINE_MS * 1e6) {
          throw new Error(`reload ${i + 1}: the cache still returns the old definition`);
        }
      }
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      const fresh = await cached.get("v-bench");
      if (fresh.ehloDomain !== `v${i + 2}`) {
        throw new Error(`reload ${i + 1}: got ${fresh.ehloDomain}`);
      }
      await until(() => cached.getCached("v-bench") !== undefined, "the fresh definition cached");
    }
    if (reloads > 0) {
      figures["typescript_reload_to_fresh_p50_ms"] = percentile(latencies, 50);
      figures["typescript_reload_to_fresh_p99_ms"] = percentile(latencies, 99);
      figures["typescript_reloads"] = reloads;
    }
    const line = JSON.stringify(figures);
    console.log(line);
    if (values.out !== undefined) {
      await writeFile(values.out, `${line}\n`);
    }
    for (const [key, value] of Object.entries(figures)) {
      console.error(`${key.padEnd(36)} ${value.toFixed(key.endsWith("_ms") ? 1 : 0)}`);
    }
  } finally {
    await Promise.all(resolvers.map((resolver) => resolver.close()));
    await server.stop();
    await copy.remove();
  }
}

await main();
