/**
 * The client-side cache: one bounded LRU per kind, each definition fresh
 * until `produced_at + ttl` (docs/clients/spec.md states the rules; this
 * file implements them):
 *
 * - Expiry: the sidecar says when its policy produced each answer
 *   (`produced_at`), so an entry fetched when it is already 59 s old (ttl
 *   60 s) is fresh for 1 s here, never a full ttl from the client's own
 *   request. The end is computed once, at store, on the wall clock, and kept
 *   on the monotonic clock (a wall clock step after that moves nothing).
 * - The one refresh rule: every lookup that returns an entry from the cache
 *   (fresh, or expired but served under `staleIfError`) makes it the most
 *   recently used. Nothing else refreshes: a miss, or an expired entry not
 *   served, changes no order.
 * - Store: a stored answer becomes the most recently used; beyond
 *   `maxEntries` the least recently used goes. An expired entry that a
 *   failed call cannot serve (past `produced_at + ttl + staleIfError`, or
 *   the call failed with another code than UNAVAILABLE) is removed.
 *
 * Which answers are stored (the coherence rules) is coherence.ts's
 * business; this file keeps what it is given.
 *
 * The recency order is a doubly linked list beside a Map (name → node), so
 * a hit costs one Map lookup and a few pointer moves. Not the Map's own
 * insertion order with "delete and set again" on every hit: measured on
 * Node 20 that costs 1 to 80 µs per hit on a hot key, because V8's ordered
 * hash table keeps each deleted slot in the key's bucket chain until the
 * next rehash, so a key hit a million times walks an ever longer chain.
 */
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";

/** One cached definition, a link of the recency list. */
interface Entry<T> {
  readonly name: string;
  value: T;
  /** Monotonic milliseconds at which its ttl ends. */
  expiresAt: number;
  /** The next older entry (undefined: this is the least recently used). */
  older: Entry<T> | undefined;
  /** The next younger entry (undefined: this is the most recently used). */
  younger: Entry<T> | undefined;
}

/** A protobuf Duration in milliseconds. */
export function durationMs(duration: Duration | undefined): number {
  return duration === undefined ? 0 : Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}

/** A protobuf Timestamp in milliseconds since the epoch; undefined when unset. */
export function timestampMs(timestamp: Timestamp | undefined): number | undefined {
  if (timestamp === undefined || (timestamp.seconds === 0n && timestamp.nanos === 0)) {
    return undefined;
  }
  return Number(timestamp.seconds) * 1000 + timestamp.nanos / 1e6;
}

/** The clocks and limits of one cache. */
export interface CacheSettings {
  readonly maxEntries: number;
  /** Monotonic milliseconds. */
  readonly clock: () => number;
  /** Milliseconds since the epoch. */
  readonly wallClock: () => number;
  readonly staleIfErrorMs: number;
}

/** Name → definition until its policy ttl ends; bounded by `maxEntries`, least recently used out first. */
export class DefinitionCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /** The least recently used entry. */
  private oldest: Entry<T> | undefined;
  /** The most recently used entry. */
  private youngest: Entry<T> | undefined;

  constructor(private readonly settings: CacheSettings) {}

  /** The cached definition if its ttl has not ended, made the most recently used; a miss changes nothing. */
  get(name: string): T | undefined {
    const entry = this.entries.get(name);
    if (entry === undefined || entry.expiresAt <= this.settings.clock()) {
      return undefined;
    }
    if (entry !== this.youngest) {
      this.unlink(entry);
      this.append(entry);
    }
    return entry.value;
  }

  /**
   * After a call for `name` failed: the expired entry if `staleIfError`
   * still covers it and the call was UNAVAILABLE (it becomes the most
   * recently used); otherwise an expired entry is removed. A fresh entry
   * (stored while the call was in flight) is left as it is, not served.
   */
  afterFailure(name: string, unavailable: boolean): T | undefined {
    const entry = this.entries.get(name);
    const now = this.settings.clock();
    if (entry === undefined || entry.expiresAt > now) {
      return undefined;
    }
    if (!unavailable || entry.expiresAt + this.settings.staleIfErrorMs <= now) {
      this.remove(entry);
      return undefined;
    }
    if (entry !== this.youngest) {
      this.unlink(entry);
      this.append(entry);
    }
    return entry.value;
  }

  /** The bound of this cache (and of the answers held aside for it). */
  get maxEntries(): number {
    return this.settings.maxEntries;
  }

  /** Keeps `value` until `producedAt + ttl` (a ttl of 0 or an answer already too old: not at all). */
  put(name: string, value: T, ttl: Duration | undefined, producedAt: Timestamp | undefined): void {
    const expiresAt = this.expiry(ttl, producedAt);
    if (expiresAt !== undefined) {
      this.putUntil(name, value, expiresAt);
    }
  }

  /** When an answer ends on the monotonic clock; undefined when it must not be kept. */
  expiry(ttl: Duration | undefined, producedAt: Timestamp | undefined): number | undefined {
    const lifetime = durationMs(ttl);
    if (lifetime <= 0) {
      return undefined;
    }
    const produced = timestampMs(producedAt);
    const left = produced === undefined ? lifetime : produced + lifetime - this.settings.wallClock();
    return left > 0 ? this.settings.clock() + left : undefined;
  }

  /**
   * Keeps `value` until `expiresAt` (monotonic milliseconds), if that is
   * still ahead, as the most recently used; evicts the least recently used
   * beyond `maxEntries`.
   */
  putUntil(name: string, value: T, expiresAt: number): void {
    if (expiresAt <= this.settings.clock()) {
      return;
    }
    let entry = this.entries.get(name);
    if (entry === undefined) {
      entry = { name, value, expiresAt, older: undefined, younger: undefined };
      this.entries.set(name, entry);
    } else {
      entry.value = value;
      entry.expiresAt = expiresAt;
      this.unlink(entry);
    }
    this.append(entry);
    while (this.entries.size > this.settings.maxEntries && this.oldest !== undefined) {
      this.remove(this.oldest);
    }
  }

  /** Drops these names, or everything when `names` is undefined. */
  drop(names?: Iterable<string>): void {
    if (names === undefined) {
      this.entries.clear();
      this.oldest = this.youngest = undefined;
      return;
    }
    for (const name of names) {
      const entry = this.entries.get(name);
      if (entry !== undefined) {
        this.remove(entry);
      }
    }
  }

  /** The names held (expired ones included), least to most recently used; changes no order. */
  names(): string[] {
    const names: string[] = [];
    for (let entry = this.oldest; entry !== undefined; entry = entry.younger) {
      names.push(entry.name);
    }
    return names;
  }

  /** Entries held, expired ones included. */
  get size(): number {
    return this.entries.size;
  }

  /** Takes `entry` out of the recency list (it stays in the Map). */
  private unlink(entry: Entry<T>): void {
    if (entry.older === undefined) {
      this.oldest = entry.younger;
    } else {
      entry.older.younger = entry.younger;
    }
    if (entry.younger === undefined) {
      this.youngest = entry.older;
    } else {
      entry.younger.older = entry.older;
    }
    entry.older = entry.younger = undefined;
  }

  /** Puts `entry`, out of the list, at its young end. */
  private append(entry: Entry<T>): void {
    entry.older = this.youngest;
    entry.younger = undefined;
    if (this.youngest === undefined) {
      this.oldest = entry;
    } else {
      this.youngest.younger = entry;
    }
    this.youngest = entry;
  }

  private remove(entry: Entry<T>): void {
    this.unlink(entry);
    this.entries.delete(entry.name);
  }
}
