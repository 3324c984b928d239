/**
 * Choosing a source from a pool exactly as kumod does.
 *
 * kumod's `EgressPoolSourceSelector` (crates/kumod/src/egress_source.rs) is
 * an LVS-style weighted round robin: entries of weight 0 are left out; with
 * one entry left it is always chosen; otherwise each pick moves the index on
 * by one and, each time the index wraps to 0, lowers the current weight by the
 * gcd of the weights (back to the largest weight when it reaches 0), choosing
 * the first entry whose weight is at least the current weight. The state
 * starts at index 0 and weight 0, so the first pick is the second entry.
 * Every client of egress-resolver implements these same steps, so that a pool
 * yields the same sequence in every language and in kumod (for weights 5, 2,
 * 3: two, three, one, one, one, ...; 50/20/30 in every 100 picks).
 * Hand-written: the steps are the contract, and a dozen lines.
 *
 * Suspended sources are skipped as kumod's `select_and_insert` skips them:
 * the suspended entries are left out, and the same steps run over the
 * others with the same index and current weight (the largest weight and the
 * gcd taken over the others), so the round robin goes on over them. With
 * no source suspended this is exactly `next_ignoring_suspend`.
 *
 * JavaScript runs one pick at a time, so the state needs no lock.
 */
import type { EgressPool } from "./gen/kumo/egress/v1/egress_pool_pb.js";

/** The reason of the error `select` raises for a pool with no weighted source. */
export const NO_SOURCES = "POOL_HAS_NO_SOURCES";

/** The pool has no entry with a weight above 0. */
export class NoSourcesError extends Error {
  override readonly name = "NoSourcesError";
}

/** Every entry of weight above 0 is suspended. */
export class AllSuspendedError extends Error {
  override readonly name = "AllSuspendedError";

  constructor(readonly names: readonly string[]) {
    super("every source is suspended");
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    [a, b] = [b, a % b];
  }
  return a;
}

/** The round-robin state for one pool definition. */
export class PoolSelector {
  private readonly names: string[];
  private readonly weights: number[];
  private readonly maxWeight: number;
  private readonly gcd: number;
  private index = 0;
  private weight = 0;

  constructor(readonly pool: EgressPool) {
    const entries = pool.entries.filter((entry) => entry.weight > 0);
    this.names = entries.map((entry) => entry.name);
    this.weights = entries.map((entry) => entry.weight);
    this.maxWeight = Math.max(0, ...this.weights);
    this.gcd = this.weights.reduce(gcd, 0);
  }

  /** Whether `pool` has the same name and entries (so this state still applies). */
  sameDefinition(pool: EgressPool): boolean {
    if (pool === this.pool) {
      return true;
    }
    const mine = this.pool.entries;
    return (
      pool.name === this.pool.name &&
      pool.entries.length === mine.length &&
      pool.entries.every((entry, i) => entry.name === mine[i]?.name && entry.weight === mine[i]?.weight)
    );
  }

  /**
   * The next source name; NoSourcesError for an empty or all-zero pool,
   * AllSuspendedError when `suspended` says so of every weighted entry.
   */
  next(suspended?: (name: string) => boolean): string {
    if (this.names.length === 0) {
      throw new NoSourcesError(`pool '${this.pool.name}' has no source with a weight above 0`);
    }
    if (suspended === undefined || !this.names.some(suspended)) {
      return this.step(this.names, this.weights, this.maxWeight, this.gcd);
    }
    const names: string[] = [];
    const weights: number[] = [];
    this.names.forEach((name, i) => {
      if (!suspended(name)) {
        names.push(name);
        weights.push(this.weights[i] as number);
      }
    });
    if (names.length === 0) {
      throw new AllSuspendedError(this.names);
    }
    return this.step(names, weights, Math.max(...weights), weights.reduce(gcd, 0));
  }

  /** kumod's `next_impl` over these entries (none of weight 0). */
  private step(names: readonly string[], weights: readonly number[], maxWeight: number, divisor: number): string {
    const count = names.length;
    if (count === 1) {
      return names[0] as string;
    }
    for (;;) {
      this.index = (this.index + 1) % count;
      if (this.index === 0) {
        this.weight = Math.max(this.weight - divisor, 0);
        if (this.weight === 0) {
          this.weight = maxWeight;
        }
      }
      if ((weights[this.index] as number) >= this.weight) {
        return names[this.index] as string;
      }
    }
  }
}
