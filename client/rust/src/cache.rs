//! [`DefinitionCache`]: name → definition until `produced_at + ttl`, bounded
//! LRU.
//!
//! The sidecar says when its policy produced each answer (`produced_at`), so
//! an answer that is already 59 s old (ttl 60 s) lives 1 s here, never a full
//! ttl from the client's own request. The LRU is the `lru` crate's, behind a
//! `std::sync::Mutex`: a hit is one lock, one hash lookup, a relink and an
//! `Arc` clone (well under a microsecond), and a lookup must move the entry
//! to the front, so a reader-writer lock would not help. Expired entries
//! stay (up to `max_entries`, least recently used out first) while
//! `stale_if_error` may still serve them; invalidated ones are removed at once.

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

    /// The definition of `name` if its ttl has not ended at `now`.
    pub(crate) fn get(&self, name: &str, now: Instant) -> Option<Arc<V>> {
        let mut entries = self.lock();
        let entry = entries.get(name)?;
        if entry.expires > now {
            return Some(Arc::clone(&entry.value));
        }
        if entry.expires + self.stale_if_error <= now {
            entries.pop(name); // of no use any more, not even stale
        }
        None
    }

    /// An expired definition of `name` still within `stale_if_error` of its end.
    pub(crate) fn get_stale(&self, name: &str, now: Instant) -> Option<Arc<V>> {
        let entries = self.lock();
        let entry = entries.peek(name)?;
        (entry.expires + self.stale_if_error > now).then(|| Arc::clone(&entry.value))
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
    /// end worked out when it arrived: see [`Lifetime::expires`]).
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

    /// How many entries are held (expired ones kept for stale_if_error included).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
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

    fn ttl(seconds: i64) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos: 0 })
    }

    fn at(wall: SystemTime) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp::from(wall))
    }

    fn cache(max: usize, stale: u64) -> (DefinitionCache<&'static str>, Now) {
        (
            DefinitionCache::new(max, Duration::from_secs(stale)),
            Now::current(),
        )
    }

    #[test]
    fn an_entry_lives_until_produced_at_plus_ttl() {
        let (cache, now) = cache(10, 0);
        let produced = now.wall - Duration::from_secs(59);
        cache.put(
            "a",
            Arc::new("A"),
            Lifetime::new(ttl(60), at(produced)),
            now,
        );
        let almost = now.monotonic + Duration::from_millis(999);
        assert_eq!(cache.get("a", almost).as_deref(), Some(&"A"));
        assert_eq!(cache.get("a", now.monotonic + Duration::from_secs(1)), None);
        assert_eq!(cache.len(), 0, "expired and of no stale use: removed");
    }

    #[test]
    fn no_produced_at_means_now_plus_ttl() {
        let (cache, now) = cache(10, 0);
        cache.put("a", Arc::new("A"), Lifetime::new(ttl(5), None), now);
        assert!(
            cache
                .get("a", now.monotonic + Duration::from_millis(4999))
                .is_some()
        );
        assert!(
            cache
                .get("a", now.monotonic + Duration::from_secs(5))
                .is_none()
        );
    }

    #[test]
    fn zero_ttl_and_past_answers_are_not_stored() {
        let (cache, now) = cache(10, 0);
        cache.put("zero", Arc::new("Z"), Lifetime::new(ttl(0), None), now);
        cache.put("none", Arc::new("N"), Lifetime::new(None, None), now);
        let old = now.wall - Duration::from_secs(61);
        cache.put("old", Arc::new("O"), Lifetime::new(ttl(60), at(old)), now);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn least_recently_used_goes_first() {
        let (cache, now) = cache(2, 0);
        let life = Lifetime::new(ttl(60), None);
        cache.put("a", Arc::new("A"), life, now);
        cache.put("b", Arc::new("B"), life, now);
        assert!(cache.get("a", now.monotonic).is_some()); // a is now the most recent
        cache.put("c", Arc::new("C"), life, now);
        assert!(cache.get("b", now.monotonic).is_none());
        assert!(cache.get("a", now.monotonic).is_some());
        assert!(cache.get("c", now.monotonic).is_some());
    }

    #[test]
    fn stale_entries_are_served_only_within_stale_if_error() {
        let (cache, now) = cache(10, 30);
        cache.put("a", Arc::new("A"), Lifetime::new(ttl(10), None), now);
        let later = now.monotonic + Duration::from_secs(20);
        assert!(cache.get("a", later).is_none());
        assert_eq!(cache.get_stale("a", later).as_deref(), Some(&"A"));
        assert!(
            cache
                .get_stale("a", now.monotonic + Duration::from_secs(40))
                .is_none()
        );
    }

    #[test]
    fn dropped_names_are_gone_even_for_stale_use() {
        let (cache, now) = cache(10, 30);
        let life = Lifetime::new(ttl(10), None);
        cache.put("a", Arc::new("A"), life, now);
        cache.put("b", Arc::new("B"), life, now);
        assert!(cache.drop_names(&["a", "x"]));
        assert!(!cache.drop_names(&["x"]));
        assert!(cache.get_stale("a", now.monotonic).is_none());
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
