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
 * An answer is stored only if it carries the revision the invalidation
 * stream announced, and only if no invalidation (nor a hello or an end of
 * the stream) happened while it was in flight (the epoch): so nothing stored
 * can have missed an invalidation. One exception, the hello: an answer that
 * arrives before a stream's hello is held aside (at most `maxEntries` of
 * each kind) and stored when the hello names its revision and does not drop
 * its name; one sent before the hello that arrives after it, with nothing
 * else applied since, is checked the same way. A stream that ends before its
 * hello discards what was held. Invalidated entries are removed at once.
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

/** An answer that arrived before the stream's hello. */
interface Held<T> {
  readonly value: T;
  readonly revision: string;
  readonly expiresAt: number;
}

/** The last hello applied: what answers sent before it are checked against. */
interface HelloRecord {
  /** The epoch while the stream was not connected (answers sent then carry it). */
  readonly before: number;
  /** The epoch the hello set. */
  readonly after: number;
  readonly all: boolean;
  readonly sources: ReadonlySet<string>;
  readonly pools: ReadonlySet<string>;
}

/** What one call gave back, as the store rules need it. */
export interface Answer<T> {
  readonly value: T;
  readonly revision: string;
  readonly producedAt: Timestamp | undefined;
  readonly ttl: Duration | undefined;
}

/**
 * What the client's caches hold, as the invalidation stream last said.
 *
 * `epoch` grows at every invalidation, at every hello and at every end of a
 * stream; an answer is stored if the epoch did not move while it was in
 * flight and its revision is the one the stream announced, or, sent before
 * a hello, if that hello names its revision and spares its name (the hello
 * is the first message of a stream: nothing was invalidated in between).
 */
export class Coherence<S, P> {
  epoch = 0;
  revision = "";
  instance = "";
  sequence = 0n;
  previousStreamEnded = false;
  watching = false;
  private readonly heldSources = new Map<string, Held<S>>();
  private readonly heldPools = new Map<string, Held<P>>();
  private hello: HelloRecord | undefined;

  constructor(
    readonly sources: DefinitionCache<S>,
    readonly pools: DefinitionCache<P>,
  ) {}

  /** Stores (or, before the hello, holds aside) a source answer sent at `epoch`. */
  keepSource(name: string, answer: Answer<S>, epoch: number): void {
    this.keep(this.sources, this.heldSources, false, name, answer, epoch);
  }

  /** Stores (or, before the hello, holds aside) a pool answer sent at `epoch`. */
  keepPool(name: string, answer: Answer<P>, epoch: number): void {
    this.keep(this.pools, this.heldPools, true, name, answer, epoch);
  }

  /** Answers held aside until the next hello. */
  get held(): number {
    return this.heldSources.size + this.heldPools.size;
  }

  private keep<T>(
    cache: DefinitionCache<T>,
    held: Map<string, Held<T>>,
    pool: boolean,
    name: string,
    answer: Answer<T>,
    epoch: number,
  ): void {
    const expiresAt = cache.expiry(answer.ttl, answer.producedAt);
    if (expiresAt === undefined) {
      return;
    }
    if (epoch === this.epoch && !this.watching) {
      held.delete(name);
      held.set(name, { value: answer.value, revision: answer.revision, expiresAt });
      for (const oldest of held.keys()) {
        if (held.size <= cache.maxEntries) {
          break;
        }
        held.delete(oldest);
      }
      return;
    }
    if (answer.revision === this.revision && (epoch === this.epoch || this.sentBeforeHello(epoch, name, pool))) {
      cache.putUntil(name, answer.value, expiresAt);
    }
  }

  /** Whether an answer sent at `epoch` was sent before the last hello, arrived after it with nothing else since, and the hello spared it. */
  private sentBeforeHello(epoch: number, name: string, pool: boolean): boolean {
    const hello = this.hello;
    return (
      hello !== undefined &&
      epoch === hello.before &&
      this.epoch === hello.after &&
      !hello.all &&
      !(pool ? hello.pools : hello.sources).has(name)
    );
  }

  /** Drops these sources and pools, or everything (a message after the hello). */
  invalidate(names: Iterable<string>, pools: Iterable<string>, everything: boolean): void {
    this.epoch += 1;
    if (everything) {
      this.sources.drop();
      this.pools.drop();
    } else {
      this.sources.drop(names);
      this.pools.drop(pools);
    }
  }

  /** A stream's first message: drops what it says, stores the held answers it spares, and watches. */
  applyHello(revision: string, names: readonly string[], pools: readonly string[], all: boolean): void {
    const hello: HelloRecord = {
      before: this.epoch,
      after: this.epoch + 1,
      all,
      sources: new Set(names),
      pools: new Set(pools),
    };
    this.epoch = hello.after;
    this.hello = hello;
    this.watching = true;
    this.revision = revision;
    if (all) {
      this.sources.drop();
      this.pools.drop();
    } else {
      this.sources.drop(names);
      this.pools.drop(pools);
    }
    storeHeld(this.sources, this.heldSources, revision, hello, hello.sources);
    storeHeld(this.pools, this.heldPools, revision, hello, hello.pools);
  }

  /** The stream ended, before its hello or after: stop storing, and discard what was held aside. */
  disconnected(): void {
    this.epoch += 1;
    this.watching = false;
    this.hello = undefined;
    this.heldSources.clear();
    this.heldPools.clear();
  }
}

function storeHeld<T>(
  cache: DefinitionCache<T>,
  held: Map<string, Held<T>>,
  revision: string,
  hello: HelloRecord,
  dropped: ReadonlySet<string>,
): void {
  if (!hello.all) {
    for (const [name, answer] of held) {
      if (answer.revision === revision && !dropped.has(name)) {
        cache.putUntil(name, answer.value, answer.expiresAt);
      }
    }
  }
  held.clear();
}
