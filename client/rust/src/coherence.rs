//! [`Caches`]: the source and pool caches and what the invalidation stream
//! last said about them.
//!
//! An answer is stored only while the stream is connected (its hello
//! applied), only if it carries the revision that stream last announced, and
//! only if no invalidation and no connect or disconnect happened while it was
//! in flight (the `epoch` did not move): so nothing stored can have missed an
//! invalidation. The check and the store happen under one lock that every
//! invalidation also takes, so an invalidation either comes first (and the
//! answer is not stored) or after (and drops it). Lock order: this state,
//! then a cache; lookups take only a cache's lock.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::cache::{DefinitionCache, Lifetime, Now};
use crate::options::Options;
use crate::pb::{EgressPool, EgressSource, WatchInvalidationsRequest, WatchInvalidationsResponse};

/// What the invalidation stream last said, and the epoch.
#[derive(Debug, Default)]
struct Coherence {
    /// Grows at every invalidation and at every change of `watching`.
    epoch: u64,
    revision: String,
    instance: String,
    sequence: u64,
    previous_stream_ended: bool,
    watching: bool,
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
            coherence: Mutex::new(Coherence::default()),
            watching: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Coherence> {
        // Every update of Coherence is a few plain assignments: usable after a panic.
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

    /// Caches `value` (an answer sent at `answer.epoch`) in `cache`, one of
    /// this state's two, if nothing made it doubtful while it was in flight.
    pub(crate) fn keep<V>(
        &self,
        cache: &DefinitionCache<V>,
        name: &str,
        value: &Arc<V>,
        answer: Answer<'_>,
        now: Now,
    ) {
        let lifetime = Lifetime::new(answer.ttl, answer.produced_at);
        let coherence = self.lock();
        if answer.may_be_stored(&coherence) {
            cache.put(name, Arc::clone(value), lifetime, now);
        }
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
        coherence.instance = event.instance;
        coherence.sequence = event.sequence;
        if hello {
            coherence.previous_stream_ended = false;
            coherence.watching = true;
            coherence.epoch += 1;
            self.watching.send_replace(true);
        }
    }

    /// A stream ended; `in_order` is whether it ended with OK after its
    /// hello, `None` for a stream that delivered no hello (which leaves
    /// `previous_stream_ended` as it was).
    pub(crate) fn stream_ended(&self, in_order: Option<bool>) {
        let mut coherence = self.lock();
        if let Some(in_order) = in_order {
            coherence.previous_stream_ended = in_order;
        }
        coherence.watching = false;
        coherence.epoch += 1;
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
    fn may_be_stored(&self, coherence: &Coherence) -> bool {
        coherence.watching && self.epoch == coherence.epoch && self.revision == coherence.revision
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
        caches.keep(&caches.sources, name, &source(name), answer, Now::current());
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
}
