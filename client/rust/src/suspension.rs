//! [`Suspensions`]: the host-wide suspensions of sources this client knows,
//! as the sidecar announced them (docs/clients/connect.md).
//!
//! They arrive on the invalidation stream (its hello replaces them all, later
//! messages add `suspended` and drop `resumed`), in `GetEgressPool` answers and
//! in `ReportSourceFailure` answers. Each is forgotten at its `until` on this
//! host's wall clock (the sidecar's clock: it runs on the same host). A count
//! of the entries held lets `select` skip the lock when nothing is suspended,
//! as kumod's selector does with one relaxed atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::pb::SourceSuspension;

/// One suspension held, its end on the wall clock and when it was learnt.
#[derive(Clone, Debug)]
struct Held {
    suspension: SourceSuspension,
    until: SystemTime,
    learnt: SystemTime,
}

/// The suspensions one resolver knows, by source name. Thread-safe.
#[derive(Debug)]
pub(crate) struct Suspensions {
    held: Mutex<HashMap<String, Held>>,
    /// How many entries `held` has (expired ones not yet dropped included).
    count: AtomicUsize,
    /// Bumped at every change, to wake whoever waits for one.
    changes: watch::Sender<u64>,
}

impl Default for Suspensions {
    fn default() -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            changes: watch::Sender::new(0),
        }
    }
}

/// The wall-clock end of `suspension`; `None` when it has none (never in force).
fn until_of(suspension: &SourceSuspension) -> Option<SystemTime> {
    SystemTime::try_from(suspension.until?).ok()
}

impl Suspensions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        // Every update is a single map operation: usable after a panic.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self, held: &HashMap<String, Held>) {
        self.count.store(held.len(), Ordering::Relaxed);
        self.changes.send_modify(|version| *version += 1);
    }

    /// Whether nothing is held (one atomic load: the fast path of `select`).
    pub(crate) fn none(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Adds (or replaces) these suspensions, learnt at `now`; those already
    /// over at `now` are ignored.
    pub(crate) fn add(&self, suspensions: &[SourceSuspension], now: SystemTime) {
        if suspensions.is_empty() {
            return;
        }
        let mut held = self.lock();
        for suspension in suspensions {
            let Some(until) = until_of(suspension).filter(|until| *until > now) else {
                continue;
            };
            let learnt = match held.get(&suspension.name) {
                Some(known) if known.until > now => known.learnt,
                _ => now,
            };
            let entry = Held {
                suspension: suspension.clone(),
                until,
                learnt,
            };
            held.insert(suspension.name.clone(), entry);
        }
        self.changed(&held);
    }

    /// The hello of a stream: these are all the suspensions in force.
    pub(crate) fn replace(&self, suspensions: &[SourceSuspension], now: SystemTime) {
        {
            let mut held = self.lock();
            held.retain(|name, _| suspensions.iter().any(|s| &s.name == name));
        }
        self.add(suspensions, now);
        let held = self.lock();
        self.changed(&held);
    }

    /// Forgets the suspensions of these names (they resumed).
    pub(crate) fn resume<S: AsRef<str>>(&self, names: &[S]) {
        if names.is_empty() {
            return;
        }
        let mut held = self.lock();
        for name in names {
            held.remove(name.as_ref());
        }
        self.changed(&held);
    }

    /// The suspension of `name` in force at `now`, if any.
    pub(crate) fn get(
        &self,
        name: &str,
        now: SystemTime,
    ) -> Option<(SourceSuspension, SystemTime)> {
        if self.none() {
            return None;
        }
        let mut held = self.lock();
        let entry = held.get(name)?;
        if entry.until > now {
            return Some((entry.suspension.clone(), entry.until));
        }
        held.remove(name);
        self.changed(&held);
        None
    }

    /// When `name`'s suspension in force at `now` was learnt.
    pub(crate) fn learnt(&self, name: &str, now: SystemTime) -> Option<SystemTime> {
        let held = self.lock();
        held.get(name).filter(|e| e.until > now).map(|e| e.learnt)
    }

    /// Every suspension in force at `now`, by name; the others are dropped.
    pub(crate) fn list(&self, now: SystemTime) -> Vec<SourceSuspension> {
        let mut held = self.lock();
        let before = held.len();
        held.retain(|_, entry| entry.until > now);
        if held.len() != before {
            self.changed(&held);
        }
        let mut list: Vec<SourceSuspension> = held.values().map(|e| e.suspension.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// A receiver woken at every change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// `at` in RFC 3339 to the second, and how far from `now` it is, rounded up:
/// `2026-12-03T18:40:00Z (in 29s)`.
pub(crate) fn when(at: SystemTime, now: SystemTime) -> String {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let stamp = prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: 0,
    };
    let left = at.duration_since(now).unwrap_or_default();
    let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format!("{stamp} (in {})", human(Duration::from_secs(seconds)))
}

/// `29s`, `5m0s`, `1h2m3s`.
fn human(duration: Duration) -> String {
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspension(name: &str, until: SystemTime) -> SourceSuspension {
        SourceSuspension {
            name: name.into(),
            until: Some(until.into()),
            ..Default::default()
        }
    }

    #[test]
    fn held_until_their_end_then_forgotten() {
        let now = SystemTime::now();
        let store = Suspensions::default();
        assert!(store.none());
        let ends = now + Duration::from_secs(30);
        store.add(&[suspension("a", ends), suspension("old", now)], now);
        assert!(store.get("a", now).is_some());
        assert!(store.get("old", now).is_none(), "already over: ignored");
        assert_eq!(store.list(now).len(), 1);
        assert!(store.get("a", ends).is_none(), "forgotten at until");
        assert!(store.none());
    }

    #[test]
    fn a_hello_replaces_and_resumed_names_are_dropped() {
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let store = Suspensions::default();
        store.add(&[suspension("a", later), suspension("b", later)], now);
        store.replace(&[suspension("b", later), suspension("c", later)], now);
        let names: Vec<String> = store.list(now).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["b", "c"]);
        store.resume(&["b"]);
        let names: Vec<String> = store.list(now).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["c"]);
        store.replace(&[], now);
        assert!(store.none());
    }

    #[test]
    fn learnt_is_the_first_time_a_suspension_in_force_was_known() {
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let store = Suspensions::default();
        store.add(&[suspension("a", later)], now);
        store.add(&[suspension("a", later)], now + Duration::from_secs(1));
        assert_eq!(store.learnt("a", now), Some(now));
    }

    #[test]
    fn when_says_the_moment_and_what_is_left() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_323_200);
        let now = at - Duration::from_millis(28_500);
        assert_eq!(when(at, now), "2026-12-03T18:40:00Z (in 29s)");
        assert_eq!(human(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(human(Duration::from_secs(300)), "5m0s");
    }
}
