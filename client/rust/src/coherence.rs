//! [`Caches`]: the source and pool caches and what the invalidation stream
//! last said about them.
//!
//! An answer is stored only if it carries the revision the stream announced
//! and no invalidation, no hello and no end of the stream happened while it
//! was in flight (the `epoch` did not move), with one exception, the hello:
//! an answer sent before a stream's hello is stored when the hello comes
//! (held aside until then, at most `max_entries` of each kind; or checked on
//! arrival when it arrives after the hello and nothing else came since) if
//! the hello names its revision and does not drop its name. The hello is the
//! first message of a stream, so nothing was invalidated in between; a
//! stream that ends before its hello discards what was held. So nothing
//! stored can have missed an invalidation. The check and the store happen
//! under one lock that every stream message also takes, so an invalidation
//! either comes first (and the answer is not stored) or after (and drops
//! it). Lock order: this state, then a cache; lookups take only a cache's
//! lock.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use lru::LruCache;
use tokio::sync::watch;

use crate::cache::{DefinitionCache, Lifetime, Now};
use crate::options::Options;
use crate::pb::{EgressPool, EgressSource, WatchInvalidationsRequest, WatchInvalidationsResponse};

/// An answer that arrived before the stream's hello.
struct Held<V> {
    value: Arc<V>,
    revision: String,
    expires: Instant,
}

/// The last hello applied: what an answer sent before it is checked against
/// when it arrives after it.
struct HelloRecord {
    /// The epoch while the stream was not connected (answers sent then carry it).
    before: u64,
    /// The epoch the hello set.
    after: u64,
    all: bool,
    sources: HashSet<String>,
    pools: HashSet<String>,
}

/// What the invalidation stream last said, the epoch, and the answers held
/// aside for the next hello.
struct Coherence {
    /// Grows at every invalidation, at every hello and at every end of a stream.
    epoch: u64,
    revision: String,
    instance: String,
    sequence: u64,
    previous_stream_ended: bool,
    watching: bool,
    held_sources: LruCache<String, Held<EgressSource>>,
    held_pools: LruCache<String, Held<EgressPool>>,
    hello: Option<HelloRecord>,
}

impl Coherence {
    fn new(max_entries: usize) -> Self {
        let capacity = NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            epoch: 0,
            revision: String::new(),
            instance: String::new(),
            sequence: 0,
            previous_stream_ended: false,
            watching: false,
            held_sources: LruCache::new(capacity),
            held_pools: LruCache::new(capacity),
            hello: None,
        }
    }

    /// Whether an answer sent at `epoch` was sent before the last hello,
    /// arrived after it with nothing else since, and the hello spared `name`.
    fn sent_before_hello(&self, epoch: u64, name: &str, pool: bool) -> bool {
        self.hello.as_ref().is_some_and(|hello| {
            let dropped = if pool { &hello.pools } else { &hello.sources };
            epoch == hello.before
                && self.epoch == hello.after
                && !hello.all
                && !dropped.contains(name)
        })
    }
}

/// The caches of one resolver and their coherence state.
pub(crate) struct Caches {
    pub(crate) sources: DefinitionCache<EgressSource>,
    pub(crate) pools: DefinitionCache<EgressPool>,
    coherence: Mutex<Coherence>,
    watching: watch::Sender<bool>,
}

impl Caches {
    pub(crate) fn new(options: &Options) -> Self {
        Self {
            sources: DefinitionCache::new(options.max_entries, options.stale_if_error),
            pools: DefinitionCache::new(options.max_entries, options.stale_if_error),
            coherence: Mutex::new(Coherence::new(options.max_entries)),
            watching: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Coherence> {
        // Every update of Coherence leaves it consistent at each step: usable after a panic.
        self.coherence
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The epoch to note before a call is sent.
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Whether the stream is connected (its hello applied).
    pub(crate) fn watching(&self) -> bool {
        *self.watching.borrow()
    }

    /// A receiver that sees every change of [`Caches::watching`].
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.watching.subscribe()
    }

    /// Caches a source answer (sent at `answer.epoch`), or holds it aside
    /// until the hello, if nothing made it doubtful while it was in flight.
    pub(crate) fn keep_source(
        &self,
        name: &str,
        value: &Arc<EgressSource>,
        answer: Answer<'_>,
        now: Now,
    ) {
        let Some(expires) = Lifetime::new(answer.ttl, answer.produced_at).expires(now) else {
            return;
        };
        let mut coherence = self.lock();
        let coherence = &mut *coherence;
        if answer.epoch == coherence.epoch && !coherence.watching {
            coherence
                .held_sources
                .put(name.to_owned(), answer.held(value, expires));
        } else if answer.may_be_stored(coherence, name, false) {
            self.sources.put_until(name, Arc::clone(value), expires);
        }
    }

    /// Caches a pool answer, or holds it aside, as [`Caches::keep_source`].
    pub(crate) fn keep_pool(
        &self,
        name: &str,
        value: &Arc<EgressPool>,
        answer: Answer<'_>,
        now: Now,
    ) {
        let Some(expires) = Lifetime::new(answer.ttl, answer.produced_at).expires(now) else {
            return;
        };
        let mut coherence = self.lock();
        let coherence = &mut *coherence;
        if answer.epoch == coherence.epoch && !coherence.watching {
            coherence
                .held_pools
                .put(name.to_owned(), answer.held(value, expires));
        } else if answer.may_be_stored(coherence, name, true) {
            self.pools.put_until(name, Arc::clone(value), expires);
        }
    }

    /// Answers held aside until the next hello.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        let coherence = self.lock();
        coherence.held_sources.len() + coherence.held_pools.len()
    }

    /// What the caches hold, for a new stream.
    pub(crate) fn watch_request(&self) -> WatchInvalidationsRequest {
        let coherence = self.lock();
        WatchInvalidationsRequest {
            revision: coherence.revision.clone(),
            instance: coherence.instance.clone(),
            sequence: coherence.sequence,
            previous_stream_ended: coherence.previous_stream_ended,
        }
    }

    /// Applies one stream message; the first of a stream is its hello.
    pub(crate) fn apply(&self, event: WatchInvalidationsResponse, hello: bool) {
        let mut coherence = self.lock();
        let coherence = &mut *coherence;
        coherence.instance = event.instance;
        coherence.sequence = event.sequence;
        if hello {
            self.apply_hello(
                coherence,
                event.revision,
                event.names,
                event.pool_names,
                event.all,
            );
            return;
        }
        if event.all {
            self.sources.clear();
            self.pools.clear();
            coherence.epoch += 1;
        } else if !event.names.is_empty() || !event.pool_names.is_empty() {
            self.sources.drop_names(&event.names);
            self.pools.drop_names(&event.pool_names);
            coherence.epoch += 1;
        }
        coherence.revision = event.revision;
    }

    /// A hello: drops what it says, stores the answers held aside that it
    /// spares and that carry its revision, and starts watching.
    fn apply_hello(
        &self,
        coherence: &mut Coherence,
        revision: String,
        names: Vec<String>,
        pool_names: Vec<String>,
        all: bool,
    ) {
        if all {
            self.sources.clear();
            self.pools.clear();
        } else {
            self.sources.drop_names(&names);
            self.pools.drop_names(&pool_names);
        }
        let record = HelloRecord {
            before: coherence.epoch,
            after: coherence.epoch + 1,
            all,
            sources: names.into_iter().collect(),
            pools: pool_names.into_iter().collect(),
        };
        store_held(
            &self.sources,
            &mut coherence.held_sources,
            &revision,
            &record,
            &record.sources,
        );
        store_held(
            &self.pools,
            &mut coherence.held_pools,
            &revision,
            &record,
            &record.pools,
        );
        coherence.epoch = record.after;
        coherence.hello = Some(record);
        coherence.revision = revision;
        coherence.previous_stream_ended = false;
        coherence.watching = true;
        self.watching.send_replace(true);
    }

    /// A stream ended; `in_order` is whether it ended with OK after its
    /// hello, `None` for a stream that delivered no hello (which leaves
    /// `previous_stream_ended` as it was). What was held aside is discarded.
    pub(crate) fn stream_ended(&self, in_order: Option<bool>) {
        let mut coherence = self.lock();
        if let Some(in_order) = in_order {
            coherence.previous_stream_ended = in_order;
        }
        coherence.watching = false;
        coherence.epoch += 1;
        coherence.hello = None;
        coherence.held_sources.clear();
        coherence.held_pools.clear();
        self.watching.send_replace(false);
    }

    /// How many sources and pools are cached.
    pub(crate) fn len(&self) -> usize {
        self.sources.len() + self.pools.len()
    }

    /// The revision and sequence last applied (for tests and diagnostics).
    pub(crate) fn position(&self) -> (String, u64) {
        let coherence = self.lock();
        (coherence.revision.clone(), coherence.sequence)
    }
}

/// Stores the held answers of `revision` that the hello spared; forgets the rest.
fn store_held<V>(
    cache: &DefinitionCache<V>,
    held: &mut LruCache<String, Held<V>>,
    revision: &str,
    hello: &HelloRecord,
    dropped: &HashSet<String>,
) {
    if !hello.all {
        // oldest first, so that the LRU order of the cache follows arrival
        for (name, answer) in held.iter().rev() {
            if answer.revision == revision && !dropped.contains(name) {
                cache.put_until(name, Arc::clone(&answer.value), answer.expires);
            }
        }
    }
    held.clear();
}

/// What an answer says about its own freshness, and when it was asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answer<'a> {
    /// The epoch noted before the call was sent.
    pub(crate) epoch: u64,
    pub(crate) revision: &'a str,
    pub(crate) produced_at: Option<prost_types::Timestamp>,
    /// The definition's ttl.
    pub(crate) ttl: Option<prost_types::Duration>,
}

impl Answer<'_> {
    /// Whether the answer may be stored now that the stream is connected:
    /// its revision is the announced one, and nothing but (at most) the
    /// hello that spared it happened while it was in flight.
    fn may_be_stored(&self, coherence: &Coherence, name: &str, pool: bool) -> bool {
        self.revision == coherence.revision
            && (self.epoch == coherence.epoch
                || coherence.sent_before_hello(self.epoch, name, pool))
    }

    fn held<V>(&self, value: &Arc<V>, expires: Instant) -> Held<V> {
        Held {
            value: Arc::clone(value),
            revision: self.revision.to_owned(),
            expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches() -> Caches {
        Caches::new(&Options {
            cache: true,
            ..Options::default()
        })
    }

    fn source(name: &str) -> Arc<EgressSource> {
        Arc::new(EgressSource {
            name: name.into(),
            ttl: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            ..Default::default()
        })
    }

    fn hello(revision: &str, sequence: u64) -> WatchInvalidationsResponse {
        WatchInvalidationsResponse {
            revision: revision.into(),
            instance: "i1".into(),
            sequence,
            ..Default::default()
        }
    }

    fn keep(caches: &Caches, name: &str, answer: Answer<'_>) {
        caches.keep_source(name, &source(name), answer, Now::current());
    }

    fn answer(epoch: u64, revision: &str) -> Answer<'_> {
        Answer {
            epoch,
            revision,
            produced_at: None,
            ttl: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn nothing_is_stored_before_the_hello() {
        let caches = caches();
        keep(&caches, "a", answer(caches.epoch(), ""));
        assert_eq!(caches.len(), 0);
        caches.apply(hello("r1", 0), true);
        assert!(caches.watching());
        keep(&caches, "a", answer(caches.epoch(), "r1"));
        assert_eq!(caches.len(), 1);
    }

    #[test]
    fn an_answer_of_another_revision_or_epoch_is_not_stored() {
        let caches = caches();
        caches.apply(hello("r1", 0), true);
        let before = caches.epoch();
        keep(&caches, "old", answer(before, "r0"));
        let invalidation = WatchInvalidationsResponse {
            names: vec!["x".into()],
            ..hello("r1", 1)
        };
        caches.apply(invalidation, false);
        keep(&caches, "late", answer(before, "r1"));
        assert_eq!(caches.len(), 0);
        assert_eq!(caches.position(), ("r1".to_owned(), 1));
    }

    #[test]
    fn invalidations_drop_names_or_everything_and_a_disconnect_stops_storing() {
        let caches = caches();
        caches.apply(hello("r1", 0), true);
        for name in ["a", "b"] {
            keep(&caches, name, answer(caches.epoch(), "r1"));
        }
        caches.apply(
            WatchInvalidationsResponse {
                names: vec!["a".into()],
                ..hello("r1", 1)
            },
            false,
        );
        assert_eq!(caches.len(), 1);
        caches.stream_ended(Some(true));
        caches.stream_ended(None); // an attempt that got no hello changes nothing
        assert!(caches.watch_request().previous_stream_ended);
        caches.stream_ended(Some(false));
        assert!(!caches.watch_request().previous_stream_ended);
        caches.stream_ended(Some(true));
        assert!(!caches.watching());
        assert_eq!(caches.len(), 1, "a disconnect keeps the cache");
        assert!(caches.watch_request().previous_stream_ended);
        keep(&caches, "c", answer(caches.epoch(), "r1"));
        assert_eq!(caches.len(), 1);
        caches.apply(
            WatchInvalidationsResponse {
                all: true,
                ..hello("r2", 0)
            },
            true,
        );
        assert_eq!(caches.len(), 0);
        let request = caches.watch_request();
        assert_eq!(request.revision, "r2");
        assert!(!request.previous_stream_ended);
    }

    fn cached(caches: &Caches, names: &[&str]) -> Vec<bool> {
        let now = std::time::Instant::now();
        names
            .iter()
            .map(|name| caches.sources.get(name, now).is_some())
            .collect()
    }

    #[test]
    fn an_answer_before_the_hello_is_stored_when_the_hello_names_its_revision() {
        let caches = caches();
        keep(&caches, "a", answer(caches.epoch(), "r1"));
        keep(&caches, "b", answer(caches.epoch(), "r0")); // a policy the hello no longer serves
        assert_eq!((caches.len(), caches.held()), (0, 2));
        caches.apply(hello("r1", 0), true);
        assert_eq!(cached(&caches, &["a", "b"]), [true, false]);
        assert_eq!(caches.held(), 0);
    }

    #[test]
    fn an_answer_in_flight_across_the_hello_is_stored_unless_dropped_or_followed() {
        let caches = caches();
        let before = caches.epoch();
        let dropping = WatchInvalidationsResponse {
            names: vec!["dropped".into()],
            ..hello("r1", 0)
        };
        caches.apply(dropping, true);
        keep(&caches, "a", answer(before, "r1")); // sent before the hello, arrived after it
        keep(&caches, "b", answer(before, "r0"));
        keep(&caches, "dropped", answer(before, "r1"));
        assert_eq!(
            cached(&caches, &["a", "b", "dropped"]),
            [true, false, false]
        );
        let event = WatchInvalidationsResponse {
            names: vec!["x".into()],
            ..hello("r1", 1)
        };
        caches.apply(event, false);
        keep(&caches, "c", answer(before, "r1")); // an event came after the hello
        assert_eq!(cached(&caches, &["c"]), [false]);
    }

    #[test]
    fn held_answers_are_bounded_and_discarded_by_a_failed_stream_or_a_hello_of_all() {
        let caches = Caches::new(&Options {
            cache: true,
            max_entries: 2,
            ..Options::default()
        });
        for name in ["a", "b", "c"] {
            keep(&caches, name, answer(caches.epoch(), "r1"));
        }
        assert_eq!(caches.held(), 2, "at most max_entries held");
        caches.stream_ended(None); // the attempt failed before its hello
        caches.apply(hello("r1", 0), true);
        assert_eq!(caches.len(), 0);
        caches.stream_ended(Some(true));
        keep(&caches, "d", answer(caches.epoch(), "r1"));
        let all = WatchInvalidationsResponse {
            all: true,
            ..hello("r1", 0)
        };
        caches.apply(all, true);
        assert_eq!(caches.len(), 0);
        caches.stream_ended(Some(true));
        for name in ["e", "f", "g"] {
            keep(&caches, name, answer(caches.epoch(), "r1")); // e goes
        }
        let dropping = WatchInvalidationsResponse {
            names: vec!["f".into()],
            ..hello("r1", 0)
        };
        caches.apply(dropping, true);
        assert_eq!(cached(&caches, &["e", "f", "g"]), [false, false, true]);
    }
}
