//! [`Flights`]: concurrent misses for one name make one call, and every
//! caller gets its outcome.
//!
//! Hand-written (a map of `tokio::sync::watch` channels) rather than taken
//! from a crate: it is a few lines, and it has to handle a first caller that
//! is cancelled mid-call (its followers then start a call of their own) and
//! a follower's own deadline, which general single-flight crates leave out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tonic::Code;

use crate::ResolverError;

/// The outcome of one call, shared by everyone waiting for it.
type Outcome<V> = Option<Result<Arc<V>, ResolverError>>;

/// The calls in flight, by name.
pub(crate) struct Flights<V> {
    pending: Mutex<HashMap<String, watch::Receiver<Outcome<V>>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

/// What a caller does: make the call, or wait for the one in flight.
enum Role<V> {
    Leader(watch::Sender<Outcome<V>>),
    Follower(watch::Receiver<Outcome<V>>),
}

impl<V> Flights<V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<Outcome<V>>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `fetch()`'s outcome for `name`, shared with concurrent callers for the
    /// same name; a follower gives up after `wait` with DEADLINE_EXCEEDED.
    pub(crate) async fn run<F, Fut>(
        &self,
        name: &str,
        wait: Duration,
        fetch: F,
    ) -> Result<Arc<V>, ResolverError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Arc<V>, ResolverError>>,
    {
        loop {
            match self.role(name) {
                Role::Leader(sender) => {
                    let _done = Landing {
                        flights: self,
                        name,
                    };
                    let outcome = fetch().await;
                    sender.send_replace(Some(outcome.clone()));
                    return outcome;
                }
                Role::Follower(mut receiver) => {
                    let waited = tokio::time::timeout(wait, receiver.wait_for(Option::is_some));
                    match waited.await {
                        Ok(Ok(outcome)) => return outcome.clone().expect("waited for Some"),
                        Ok(Err(_)) => continue, // the caller making it was cancelled: retry
                        Err(_) => {
                            return Err(ResolverError {
                                name: name.to_owned(),
                                ..ResolverError::local(
                                    Code::DeadlineExceeded,
                                    "deadline passed waiting for a shared lookup",
                                )
                            });
                        }
                    }
                }
            }
        }
    }

    fn role(&self, name: &str) -> Role<V> {
        let mut pending = self.lock();
        if let Some(receiver) = pending.get(name) {
            return Role::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        pending.insert(name.to_owned(), receiver);
        Role::Leader(sender)
    }

    /// How many calls are in flight.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

/// Removes a leader's entry when its call ends or is cancelled.
struct Landing<'a, V> {
    flights: &'a Flights<V>,
    name: &'a str,
}

impl<V> Drop for Landing<'_, V> {
    fn drop(&mut self) {
        self.flights.lock().remove(self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn concurrent_callers_share_one_call() {
        runtime().block_on(async {
            let flights = Flights::<u32>::default();
            let calls = AtomicUsize::new(0);
            let release = Notify::new();
            let fetch = || async {
                calls.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                Ok(Arc::new(7))
            };
            let wait = Duration::from_secs(60);
            let callers = async {
                tokio::join!(
                    flights.run("a", wait, fetch),
                    flights.run("a", wait, fetch),
                    flights.run("a", wait, fetch),
                )
            };
            let releaser = async {
                while flights.in_flight() == 0 {
                    tokio::task::yield_now().await;
                }
                release.notify_one();
            };
            let ((a, b, c), ()) = tokio::join!(callers, releaser);
            assert_eq!((*a.unwrap(), *b.unwrap(), *c.unwrap()), (7, 7, 7));
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(flights.in_flight(), 0);
        });
    }

    #[test]
    fn errors_are_shared_and_not_kept() {
        runtime().block_on(async {
            let flights = Flights::<u32>::default();
            let calls = AtomicUsize::new(0);
            let fetch = || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ResolverError::local(Code::NotFound, "no"))
            };
            let wait = Duration::from_secs(60);
            assert!(flights.run("a", wait, fetch).await.is_err());
            assert!(flights.run("a", wait, fetch).await.is_err());
            assert_eq!(
                calls.load(Ordering::SeqCst),
                2,
                "a later call is a new call"
            );
        });
    }

    #[test]
    fn a_cancelled_leader_hands_over_to_a_follower() {
        runtime().block_on(async {
            let flights = Flights::<u32>::default();
            let calls = AtomicUsize::new(0);
            let fetch = || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    std::future::pending::<()>().await; // the first call never ends
                }
                Ok(Arc::new(1))
            };
            let wait = Duration::from_secs(60);
            let leader =
                tokio::time::timeout(Duration::from_millis(50), flights.run("a", wait, fetch));
            let follower = async {
                while flights.in_flight() == 0 {
                    tokio::task::yield_now().await;
                }
                flights.run("a", wait, fetch).await
            };
            let (cancelled, shared) = tokio::join!(leader, follower);
            assert!(cancelled.is_err());
            assert_eq!(*shared.unwrap(), 1);
            assert_eq!(calls.load(Ordering::SeqCst), 2);
        });
    }
}
