/**
 * What the client's caches may store, as the invalidation stream last said
 * (docs/clients/spec.md, "The cache", rule 4).
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
 */
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import type { DefinitionCache } from "./cache.js";

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
