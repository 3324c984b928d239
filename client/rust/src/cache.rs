//! [`DefinitionCache`]: name → definition until `produced_at + ttl`, bounded
//! LRU, with the rules of docs/clients/spec.md.
//!
//! The sidecar says when its policy produced each answer (`produced_at`), so
//! an answer that is already 59 s old (ttl 60 s) lives 1 s here, never a full
//! ttl from the client's own request. The LRU is the `lru` crate's, behind a
//! `std::sync::Mutex`: a hit is one lock, two hash lookups (look, then move
//! to the front), a relink and an `Arc` clone (well under a microsecond); a
//! lookup may reorder the entries, so a reader-writer lock would not help.
//!
//! The order follows one rule: a lookup that returns an entry (fresh, or
//! expired but served under `stale_if_error`) makes it the most recently
//! used, and so does storing an answer; nothing else moves an entry. An
//! expired entry stays (it may still be served under `stale_if_error`) until
//! a failed call cannot serve it, an answer replaces it, an invalidation
//! drops it or it is evicted as the least recently used.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;

/// One cached definition and the moment its ttl ends.
struct Entry<V> {
    value: Arc<V>,
    expires: Instant,
}

/// Name → definition until its ttl ends; LRU beyond `max_entries`. Thread-safe.
pub(crate) struct DefinitionCache<V> {
    entries: Mutex<LruCache<String, Entry<V>>>,
    stale_if_error: Duration,
}

impl<V> DefinitionCache<V> {
    pub(crate) fn new(max_entries: usize, stale_if_error: Duration) -> Self {
        let capacity = NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
            stale_if_error,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Entry<V>>> {
        // A panic while holding the lock leaves the LRU consistent (every
        // operation on it is a single call), so a poisoned lock is usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The definition of `name` if its ttl has not ended at `now`, made the
    /// most recently used. An expired entry is neither returned nor moved
    /// (nor removed: a failed call may still serve it).
    pub(crate) fn get(&self, name: &str, now: Instant) -> Option<Arc<V>> {
        let mut entries = self.lock();
        let entry = entries.peek(name)?;
        if entry.expires <= now {
            return None;
        }
        let value = Arc::clone(&entry.value);
        entries.promote(name);
        Some(value)
    }

    /// After a call for `name` failed at `now` (`unavailable`: with
    /// UNAVAILABLE): its expired entry when `stale_if_error` lets it be
    /// served (`now < expiry + stale_if_error`), made the most recently
    /// used. An expired entry it cannot serve is removed. A fresh entry
    /// (stored by another call meanwhile) is left as it is and not returned.
    pub(crate) fn after_failure(
        &self,
        name: &str,
        unavailable: bool,
        now: Instant,
    ) -> Option<Arc<V>> {
        let mut entries = self.lock();
        let entry = entries.peek(name)?;
        if entry.expires > now {
            return None;
        }
        if unavailable && now < entry.expires + self.stale_if_error {
            let value = Arc::clone(&entry.value);
            entries.promote(name);
            return Some(value);
        }
        entries.pop(name);
        None
    }

    /// Keeps `value` until `produced_at + ttl`, or `now + ttl` when the
    /// sidecar did not say when it was produced; not at all when that moment
    /// has passed or the ttl is zero. The expiry is kept on the monotonic
    /// clock: `now.monotonic + (produced_at + ttl - now.wall)`.
    #[cfg(test)]
    pub(crate) fn put(&self, name: &str, value: Arc<V>, lifetime: Lifetime, now: Now) {
        if let Some(expires) = lifetime.expires(now) {
            self.put_until(name, value, expires);
        }
    }

    /// Keeps `value` until `expires` on the monotonic clock (an answer's
    /// end worked out when it arrived: see [`Lifetime::expires`]) as the most
    /// recently used entry, evicting the least recently used one when the
    /// cache is full.
    pub(crate) fn put_until(&self, name: &str, value: Arc<V>, expires: Instant) {
        self.lock().put(name.to_owned(), Entry { value, expires });
    }

    /// Drops these names.
    pub(crate) fn drop_names<S: AsRef<str>>(&self, names: &[S]) -> bool {
        let mut entries = self.lock();
        let mut dropped = false;
        for name in names {
            dropped |= entries.pop(name.as_ref()).is_some();
        }
        dropped
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// How many entries are held (expired ones not yet removed included).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The names held (expired ones not yet removed included), from the
    /// least to the most recently used.
    pub(crate) fn names(&self) -> Vec<String> {
        self.lock()
            .iter()
            .rev()
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// One moment on both clocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    pub(crate) monotonic: Instant,
    pub(crate) wall: SystemTime,
}

#[cfg(test)]
impl Now {
    pub(crate) fn current() -> Self {
        Self {
            monotonic: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// How long an answer may be kept: its ttl, from when it was produced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetime {
    ttl: Option<prost_types::Duration>,
    produced_at: Option<prost_types::Timestamp>,
}

impl Lifetime {
    pub(crate) fn new(
        ttl: Option<prost_types::Duration>,
        produced_at: Option<prost_types::Timestamp>,
    ) -> Self {
        Self { ttl, produced_at }
    }

    /// When the lifetime ends on the monotonic clock of `now`; `None` when
    /// nothing of it is left.
    pub(crate) fn expires(&self, now: Now) -> Option<Instant> {
        self.left(now.wall).map(|left| now.monotonic + left)
    }

    /// How much of the lifetime is left at `wall_now`; `None` when nothing is.
    fn left(&self, wall_now: SystemTime) -> Option<Duration> {
        let ttl = Duration::try_from(self.ttl?)
            .ok()
            .filter(|d| !d.is_zero())?;
        let produced = self
            .produced_at
            .filter(|at| at.seconds != 0 || at.nanos != 0)
            .and_then(|at| SystemTime::try_from(at).ok());
        let Some(produced) = produced else {
            return Some(ttl);
        };
        let ends = produced.checked_add(ttl)?;
        ends.duration_since(wall_now).ok().filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache reads no clock: every call is given its moment, taken from
    /// this fake one (a fixed wall time, so produced_at is exact).
    struct FakeClock(Now);

    impl FakeClock {
        fn new() -> Self {
            Self(Now {
                monotonic: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            })
        }

        /// The moment an answer arrives.
        fn start(&self) -> Now {
            self.0
        }

        /// `seconds` after the start, on the monotonic clock.
        fn at(&self, seconds: f64) -> Instant {
            self.0.monotonic + Duration::from_secs_f64(seconds)
        }

        /// `seconds` before the start, on the wall clock.
        fn ago(&self, seconds: u64) -> Option<prost_types::Timestamp> {
            Some(prost_types::Timestamp::from(
                self.0.wall - Duration::from_secs(seconds),
            ))
        }
    }

    fn ttl(seconds: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos: 0 })
    }

    fn fresh_for(seconds: i64) -> Lifetime {
        Lifetime::new(ttl(seconds), None)
    }

    fn cache(max: usize, stale: u64) -> (DefinitionCache<&'static str>, FakeClock) {
        (
            DefinitionCache::new(max, Duration::from_secs(stale)),
            FakeClock::new(),
        )
    }

    /// Stores each name with `lifetime`, in order.
    fn store(
        cache: &DefinitionCache<&'static str>,
        clock: &FakeClock,
        names: &[&'static str],
        lifetime: Lifetime,
    ) {
        for name in names {
            cache.put(name, Arc::new(*name), lifetime, clock.start());
        }
    }

    #[test]
    fn an_entry_is_fresh_until_produced_at_plus_ttl() {
        let (cache, clock) = cache(10, 0);
        let lifetime = Lifetime::new(ttl(60), clock.ago(59));
        cache.put("a", Arc::new("A"), lifetime, clock.start());
        assert_eq!(cache.get("a", clock.at(0.999)).as_deref(), Some(&"A"));
        assert_eq!(cache.get("a", clock.at(1.0)), None);
        assert_eq!(
            cache.len(),
            1,
            "an expired entry is not removed by a lookup"
        );
    }

    #[test]
    fn no_produced_at_means_arrival_plus_ttl() {
        let (cache, clock) = cache(10, 0);
        cache.put("a", Arc::new("A"), fresh_for(5), clock.start());
        assert!(cache.get("a", clock.at(4.999)).is_some());
        assert!(cache.get("a", clock.at(5.0)).is_none());
    }

    #[test]
    fn zero_ttl_and_answers_past_their_ttl_are_not_stored() {
        let (cache, clock) = cache(10, 0);
        let now = clock.start();
        cache.put("zero", Arc::new("Z"), fresh_for(0), now);
        cache.put("none", Arc::new("N"), Lifetime::new(None, None), now);
        let old = Lifetime::new(ttl(60), clock.ago(61));
        cache.put("old", Arc::new("O"), old, now);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_hit_makes_the_entry_the_most_recently_used() {
        let (cache, clock) = cache(10, 0);
        store(&cache, &clock, &["a", "b", "c"], fresh_for(60));
        assert_eq!(
            cache.names(),
            ["a", "b", "c"],
            "least to most recently used"
        );
        assert!(cache.get("a", clock.at(1.0)).is_some());
        assert_eq!(cache.names(), ["b", "c", "a"]);
        assert!(cache.get("c", clock.at(2.0)).is_some());
        assert_eq!(cache.names(), ["b", "a", "c"]);
    }

    #[test]
    fn a_miss_or_an_expired_entry_changes_no_order() {
        let (cache, clock) = cache(10, 30);
        store(&cache, &clock, &["a"], fresh_for(10));
        store(&cache, &clock, &["b", "c"], fresh_for(60));
        assert!(cache.get("x", clock.at(1.0)).is_none());
        assert!(cache.get("a", clock.at(11.0)).is_none(), "expired");
        assert_eq!(
            cache.names(),
            ["a", "b", "c"],
            "nothing moved, nothing removed"
        );
    }

    #[test]
    fn storing_makes_the_most_recently_used_and_evicts_the_least() {
        let (cache, clock) = cache(3, 0);
        store(&cache, &clock, &["a", "b", "c"], fresh_for(60));
        assert!(cache.get("a", clock.at(1.0)).is_some());
        store(&cache, &clock, &["d"], fresh_for(60));
        assert_eq!(
            cache.names(),
            ["c", "a", "d"],
            "b, the least recently used, went"
        );
        store(&cache, &clock, &["c"], fresh_for(60)); // a new answer for c
        assert_eq!(cache.names(), ["a", "d", "c"]);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn an_expired_entry_is_evicted_in_its_turn() {
        let (cache, clock) = cache(2, 0);
        store(&cache, &clock, &["a"], fresh_for(1));
        store(&cache, &clock, &["b"], fresh_for(60));
        assert!(cache.get("b", clock.at(2.0)).is_some());
        assert!(cache.get("a", clock.at(2.0)).is_none());
        store(&cache, &clock, &["c"], fresh_for(60));
        assert_eq!(cache.names(), ["b", "c"]);
    }

    #[test]
    fn stale_if_error_serves_an_expired_entry_within_its_window_as_a_hit() {
        let (cache, clock) = cache(10, 30);
        store(&cache, &clock, &["a"], fresh_for(10));
        store(&cache, &clock, &["b"], fresh_for(60));
        assert!(cache.get("a", clock.at(20.0)).is_none());
        let served = cache.after_failure("a", true, clock.at(20.0));
        assert_eq!(served.as_deref(), Some(&"a"));
        assert_eq!(
            cache.names(),
            ["b", "a"],
            "served stale: the most recently used"
        );
        let last = cache.after_failure("a", true, clock.at(39.999));
        assert_eq!(last.as_deref(), Some(&"a"));
    }

    #[test]
    fn a_failed_call_removes_the_expired_entry_it_cannot_serve() {
        let (cache, clock) = cache(10, 30);
        store(&cache, &clock, &["late", "other_code", "b"], fresh_for(10));
        // past produced_at + ttl + stale_if_error
        assert!(cache.after_failure("late", true, clock.at(40.0)).is_none());
        // within the window, but the call failed with another code
        assert!(
            cache
                .after_failure("other_code", false, clock.at(20.0))
                .is_none()
        );
        assert!(
            cache
                .after_failure("missing", true, clock.at(20.0))
                .is_none()
        );
        assert_eq!(cache.names(), ["b"]);

        let off = DefinitionCache::new(10, Duration::ZERO); // stale_if_error off
        store(&off, &clock, &["a"], fresh_for(10));
        assert!(off.after_failure("a", true, clock.at(10.0)).is_none());
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn a_failed_call_leaves_a_fresh_entry_alone() {
        let (cache, clock) = cache(10, 30);
        store(&cache, &clock, &["a", "b"], fresh_for(60));
        assert!(cache.after_failure("a", false, clock.at(1.0)).is_none());
        assert!(cache.after_failure("a", true, clock.at(1.0)).is_none());
        assert_eq!(cache.names(), ["a", "b"]);
    }

    #[test]
    fn dropped_names_are_gone_even_for_stale_use() {
        let (cache, clock) = cache(10, 30);
        store(&cache, &clock, &["a", "b"], fresh_for(10));
        assert!(cache.drop_names(&["a", "x"]));
        assert!(!cache.drop_names(&["x"]));
        assert!(cache.after_failure("a", true, clock.at(11.0)).is_none());
        assert_eq!(cache.names(), ["b"]);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
