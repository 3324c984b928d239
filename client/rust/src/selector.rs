//! Choosing a source from a pool exactly as kumod does.
//!
//! kumod's `EgressPoolSourceSelector` (crates/kumod/src/egress_source.rs) is
//! an LVS-style weighted round robin: entries of weight 0 are left out; with
//! one entry left it is always chosen; otherwise each pick moves the index on
//! by one and, each time the index wraps to 0, lowers the current weight by
//! the gcd of the weights (back to the largest weight when it reaches 0),
//! choosing the first entry whose weight is at least the current weight. The
//! state starts at index 0 and weight 0, so the first pick is the second
//! entry. Every client of egress-resolver implements these same steps, so a
//! pool yields the same sequence in every language and in kumod (for weights
//! 5, 2, 3: two, three, one, one, one, ...; 50/20/30 in every 100 picks).
//! Written here rather than taken from kumod: kumod is not a library crate.
//!
//! Suspended sources are skipped as kumod's `select_and_insert` skips them:
//! the same state steps over the entries not suspended (their own largest
//! weight and gcd), so the others keep the order they would have had; when
//! every entry is suspended, the error says which comes back first, and when.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use tonic::Code;

use crate::ResolverError;
use crate::pb::{EgressPool, EgressPoolEntry};
use crate::suspension::{self, Suspensions};

/// The reason of the error [`Resolver::select`](crate::Resolver::select)
/// returns for a pool with no source of a weight above 0.
pub const POOL_HAS_NO_SOURCES: &str = "POOL_HAS_NO_SOURCES";
/// The reason of the error [`Resolver::select`](crate::Resolver::select)
/// returns (code `RESOURCE_EXHAUSTED`) when every source of the pool with a
/// weight above 0 is suspended.
pub const POOL_SUSPENDED: &str = "POOL_SUSPENDED";

/// The round-robin state of one pool definition.
#[derive(Debug)]
pub(crate) struct PoolSelector {
    name: String,
    /// The pool's entries as defined (weight 0 included), to spot a change.
    definition: Vec<EgressPoolEntry>,
    /// The entries that take part: weight above 0.
    entries: Vec<(String, u32)>,
    max_weight: u32,
    gcd: u32,
    index: usize,
    weight: u32,
}

impl PoolSelector {
    pub(crate) fn new(pool: &EgressPool) -> Self {
        let entries: Vec<(String, u32)> = pool
            .entries
            .iter()
            .filter(|entry| entry.weight > 0)
            .map(|entry| (entry.name.clone(), entry.weight))
            .collect();
        Self {
            name: pool.name.clone(),
            definition: pool.entries.clone(),
            max_weight: entries.iter().map(|(_, w)| *w).max().unwrap_or(0),
            gcd: entries.iter().fold(0, |acc, (_, w)| gcd(acc, *w)),
            entries,
            index: 0,
            weight: 0,
        }
    }

    /// Whether `pool` has this state's name and entries.
    fn same_definition(&self, pool: &EgressPool) -> bool {
        self.name == pool.name && self.definition == pool.entries
    }

    /// The next source name, or the POOL_HAS_NO_SOURCES error; sources
    /// suspended at `now` are skipped (POOL_SUSPENDED when that is all).
    pub(crate) fn next(
        &mut self,
        suspensions: &Suspensions,
        now: SystemTime,
    ) -> Result<String, ResolverError> {
        if self.entries.is_empty() {
            return Err(ResolverError {
                code: Code::FailedPrecondition,
                reason: Some(POOL_HAS_NO_SOURCES.to_owned()),
                message: format!("pool '{}' has no source with a weight above 0", self.name),
                name: self.name.clone(),
            });
        }
        if suspensions.none() {
            let weights = Weights {
                len: self.entries.len(),
                max: self.max_weight,
                gcd: self.gcd,
            };
            let at = pick(&mut self.index, &mut self.weight, weights, |i| {
                self.entries[i].1
            });
            return Ok(self.entries[at].0.clone());
        }
        // kumod's select_and_insert: the same state goes on over the entries
        // not suspended, with their own largest weight and gcd.
        let mut first_back: Option<(SystemTime, &str)> = None;
        let mut ready: Vec<usize> = Vec::with_capacity(self.entries.len());
        for (position, (name, _)) in self.entries.iter().enumerate() {
            match suspensions.get(name, now) {
                Some((_, until)) => {
                    if first_back.is_none_or(|(first, _)| until < first) {
                        first_back = Some((until, name));
                    }
                }
                None => ready.push(position),
            }
        }
        if let Some((until, name)) = first_back.filter(|_| ready.is_empty()) {
            return Err(all_suspended(&self.name, name, until, now));
        }
        let weight_of = |i: usize| self.entries[ready[i]].1;
        let weights = Weights {
            len: ready.len(),
            max: (0..ready.len()).map(weight_of).max().unwrap_or(0),
            gcd: (0..ready.len()).fold(0, |acc, i| gcd(acc, weight_of(i))),
        };
        let at = pick(&mut self.index, &mut self.weight, weights, weight_of);
        Ok(self.entries[ready[at]].0.clone())
    }
}

/// The entries a round-robin step chooses among: how many, their largest
/// weight and the gcd of their weights.
#[derive(Clone, Copy)]
struct Weights {
    len: usize,
    max: u32,
    gcd: u32,
}

/// One step of kumod's `next_impl` (state `index`, `current`) over
/// `weights.len` entries whose weights `weight_of` gives: the position chosen.
fn pick(
    index: &mut usize,
    current: &mut u32,
    weights: Weights,
    weight_of: impl Fn(usize) -> u32,
) -> usize {
    if weights.len == 1 {
        return 0;
    }
    // Ends: every round lowers `current` by gcd down to the largest
    // weight, and at least one entry has it.
    loop {
        *index = (*index + 1) % weights.len;
        if *index == 0 {
            *current = current.saturating_sub(weights.gcd);
            if *current == 0 {
                *current = weights.max;
            }
        }
        if weight_of(*index) >= *current {
            return *index;
        }
    }
}

/// The RESOURCE_EXHAUSTED / POOL_SUSPENDED error of a pool whose every
/// source is suspended; `first` resumes first, at `until`.
fn all_suspended(pool: &str, first: &str, until: SystemTime, now: SystemTime) -> ResolverError {
    ResolverError {
        code: Code::ResourceExhausted,
        reason: Some(POOL_SUSPENDED.to_owned()),
        message: format!(
            "pool {pool}: every source is suspended; {first} resumes first, at {}",
            suspension::when(until, now)
        ),
        name: pool.to_owned(),
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The selectors of every pool a resolver has selected from, by pool name.
/// A pool whose definition changed starts over.
#[derive(Debug, Default)]
pub(crate) struct Selectors(Mutex<HashMap<String, PoolSelector>>);

impl Selectors {
    /// The next source of `pool` not suspended at `now`.
    pub(crate) fn select(
        &self,
        pool: &EgressPool,
        suspensions: &Suspensions,
        now: SystemTime,
    ) -> Result<String, ResolverError> {
        let mut selectors = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let selector = match selectors.get_mut(&pool.name) {
            Some(selector) if selector.same_definition(pool) => selector,
            _ => {
                selectors.insert(pool.name.clone(), PoolSelector::new(pool));
                selectors.get_mut(&pool.name).expect("just inserted")
            }
        };
        selector.next(suspensions, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, entries: &[(&str, u32)]) -> EgressPool {
        EgressPool {
            name: name.into(),
            entries: entries
                .iter()
                .map(|(name, weight)| EgressPoolEntry {
                    name: (*name).into(),
                    weight: *weight,
                })
                .collect(),
            ttl: None,
        }
    }

    fn picks(pool: &EgressPool, n: usize) -> Vec<String> {
        let selectors = Selectors::default();
        (0..n).map(|_| select(&selectors, pool).unwrap()).collect()
    }

    fn select(selectors: &Selectors, pool: &EgressPool) -> Result<String, ResolverError> {
        selectors.select(pool, &Suspensions::default(), SystemTime::now())
    }

    fn suspension(name: &str, until: SystemTime) -> crate::pb::SourceSuspension {
        crate::pb::SourceSuspension {
            name: name.into(),
            until: Some(until.into()),
            ..Default::default()
        }
    }

    #[test]
    fn suspended_sources_are_skipped_and_the_round_robin_goes_on() {
        let now = SystemTime::now();
        let later = now + std::time::Duration::from_secs(60);
        let (selectors, suspensions) = (Selectors::default(), Suspensions::default());
        let three = pool("p", &[("a", 1), ("b", 1), ("c", 1)]);
        let next = || selectors.select(&three, &suspensions, now).unwrap();
        let mut sequence = vec![next(), next()];
        suspensions.add(&[suspension("b", later)], now);
        sequence.extend([next(), next(), next()]);
        suspensions.resume(&["b"]);
        sequence.extend([next(), next(), next()]);
        // kumod's next_impl over [a, c] with the same index and weight.
        assert_eq!(sequence, ["b", "c", "c", "a", "c", "c", "a", "b"]);
    }

    #[test]
    fn every_source_suspended_is_pool_suspended_naming_the_first_back() {
        let now = SystemTime::now();
        let suspensions = Suspensions::default();
        let soon = now + std::time::Duration::from_secs(29);
        let late = now + std::time::Duration::from_secs(600);
        suspensions.add(&[suspension("ip-1", late), suspension("ip-2", soon)], now);
        let both = pool("pool-1", &[("ip-1", 1), ("ip-2", 2), ("off", 0)]);
        let error = Selectors::default()
            .select(&both, &suspensions, now)
            .unwrap_err();
        assert_eq!(error.code, Code::ResourceExhausted);
        assert_eq!(error.reason.as_deref(), Some(POOL_SUSPENDED));
        assert_eq!(error.name, "pool-1");
        let expected = format!(
            "pool pool-1: every source is suspended; ip-2 resumes first, at {}",
            suspension::when(soon, now)
        );
        assert_eq!(error.message, expected);
        assert!(error.message.ends_with("(in 29s)"), "{error}");
        let later = Selectors::default().select(&both, &suspensions, soon);
        assert_eq!(later.unwrap(), "ip-2", "ip-2 is back at its until");
    }

    #[test]
    fn weights_5_2_3_follow_kumods_sequence_and_shares() {
        let weighted = pool("p", &[("one", 5), ("two", 2), ("three", 3)]);
        let sequence = picks(&weighted, 100);
        let expected_start = [
            "two", "three", "one", "one", "one", "three", "one", "two", "three", "one", "two",
            "three", "one", "one",
        ];
        assert_eq!(sequence[..14], expected_start);
        let count = |name: &str| sequence.iter().filter(|s| *s == name).count();
        assert_eq!((count("one"), count("two"), count("three")), (50, 20, 30));
    }

    #[test]
    fn weight_zero_is_never_chosen() {
        let weighted = pool("p", &[("a", 1), ("off", 0), ("b", 1)]);
        let sequence = picks(&weighted, 10);
        assert!(!sequence.iter().any(|s| s == "off"), "{sequence:?}");
        assert_eq!(sequence[..4], ["b", "a", "b", "a"]);
        let single = pool("p", &[("off", 0), ("only", 4)]);
        assert_eq!(picks(&single, 3), ["only", "only", "only"]);
    }

    #[test]
    fn empty_and_all_zero_pools_are_an_error() {
        for entries in [&[][..], &[("a", 0), ("b", 0)][..]] {
            let error = select(&Selectors::default(), &pool("empty", entries)).unwrap_err();
            assert_eq!(error.code, Code::FailedPrecondition);
            assert_eq!(error.reason.as_deref(), Some(POOL_HAS_NO_SOURCES));
            assert_eq!(
                error.message,
                "pool 'empty' has no source with a weight above 0"
            );
            assert_eq!(error.name, "empty");
        }
    }

    #[test]
    fn a_changed_definition_starts_over_and_the_same_one_goes_on() {
        let selectors = Selectors::default();
        let first = pool("p", &[("a", 1), ("b", 1)]);
        assert_eq!(select(&selectors, &first).unwrap(), "b");
        assert_eq!(select(&selectors, &first.clone()).unwrap(), "a");
        let changed = pool("p", &[("a", 1), ("c", 1)]);
        assert_eq!(select(&selectors, &changed).unwrap(), "c");
    }

    #[test]
    fn gcd_of_weights() {
        assert_eq!(gcd(0, 6), 6);
        assert_eq!(gcd(4, 6), 2);
        assert_eq!(gcd(5, 3), 1);
    }
}
