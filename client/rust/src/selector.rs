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

use std::collections::HashMap;
use std::sync::Mutex;

use tonic::Code;

use crate::ResolverError;
use crate::pb::{EgressPool, EgressPoolEntry};

/// The reason of the error [`Resolver::select`](crate::Resolver::select)
/// returns for a pool with no source of a weight above 0.
pub const POOL_HAS_NO_SOURCES: &str = "POOL_HAS_NO_SOURCES";

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

    /// The next source name, or the POOL_HAS_NO_SOURCES error.
    pub(crate) fn next(&mut self) -> Result<&str, ResolverError> {
        let len = self.entries.len();
        if len == 0 {
            return Err(ResolverError {
                code: Code::FailedPrecondition,
                reason: Some(POOL_HAS_NO_SOURCES.to_owned()),
                message: format!("pool '{}' has no source with a weight above 0", self.name),
                name: self.name.clone(),
            });
        }
        if len == 1 {
            return Ok(&self.entries[0].0);
        }
        // Ends: every round lowers `weight` by gcd down to max_weight's
        // entries, and at least one entry has max_weight.
        loop {
            self.index = (self.index + 1) % len;
            if self.index == 0 {
                self.weight = self.weight.saturating_sub(self.gcd);
                if self.weight == 0 {
                    self.weight = self.max_weight;
                }
            }
            if self.entries[self.index].1 >= self.weight {
                return Ok(&self.entries[self.index].0);
            }
        }
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
    /// The next source of `pool`.
    pub(crate) fn select(&self, pool: &EgressPool) -> Result<String, ResolverError> {
        let mut selectors = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let selector = match selectors.get_mut(&pool.name) {
            Some(selector) if selector.same_definition(pool) => selector,
            _ => {
                selectors.insert(pool.name.clone(), PoolSelector::new(pool));
                selectors.get_mut(&pool.name).expect("just inserted")
            }
        };
        selector.next().map(str::to_owned)
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
        (0..n).map(|_| selectors.select(pool).unwrap()).collect()
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
            let error = Selectors::default()
                .select(&pool("empty", entries))
                .unwrap_err();
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
        assert_eq!(selectors.select(&first).unwrap(), "b");
        assert_eq!(selectors.select(&first.clone()).unwrap(), "a");
        let changed = pool("p", &[("a", 1), ("c", 1)]);
        assert_eq!(selectors.select(&changed).unwrap(), "c");
    }

    #[test]
    fn gcd_of_weights() {
        assert_eq!(gcd(0, 6), 6);
        assert_eq!(gcd(4, 6), 2);
        assert_eq!(gcd(5, 3), 1);
    }
}
