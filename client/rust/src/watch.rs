//! Following WatchInvalidations, as a tokio task, so that the caches drop
//! what the sidecar says is stale.
//!
//! Each stream starts by telling the sidecar what the caches hold (the
//! revision, the instance and sequence of the last message applied, and
//! whether the previous stream ended in order); the sidecar's first message
//! (the hello) says what of that to drop. So a client keeps its cache across
//! a sidecar restart with the same policy, drops it when the policy changed,
//! and never keeps an entry invalidated while it was away. While the stream
//! is down the caches keep serving entries within their ttl; new answers are
//! held aside until the next hello and stored if it names their revision.
//! The messages also carry host-wide suspensions: the hello all of those in
//! force (replacing what the resolver held), later ones new and ended ones.
//! tonic has no wait-for-ready: a call to a sidecar that is down fails at
//! once, so the loop retries after 50 ms doubling to 500 ms (±20 % jitter),
//! back to 50 ms after a stream that delivered its hello.
//! Hand-written: the loop is a few lines and a retry crate would not know
//! the resume rules.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;

use crate::coherence::Caches;
use crate::pb::WatchInvalidationsResponse;
use crate::pb::egress_resolver_service_client::EgressResolverServiceClient;
use crate::suspension::Suspensions;

/// The first wait before a new stream, and the one after a stream that connected.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two streams.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// The wait after `current`: doubled, at most [`MAX_BACKOFF`].
fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

/// `base` with ±20 % jitter, so that clients of one sidecar spread out.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(fastrand::f64().mul_add(0.4, 0.8))
}

/// Follows the stream until the task is aborted (when the resolver is dropped).
pub(crate) async fn follow(
    client: EgressResolverServiceClient<Channel>,
    caches: Arc<Caches>,
    suspensions: Arc<Suspensions>,
) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if stream_once(client.clone(), &caches, &suspensions).await {
            backoff = INITIAL_BACKOFF;
        }
        tokio::time::sleep(jittered(backoff)).await;
        backoff = next_backoff(backoff);
    }
}

/// Runs one stream to its end; true if it delivered its hello.
///
/// Only a stream that delivered its hello sets `previous_stream_ended`
/// (true when it then ended with OK). An attempt that never got a hello (the
/// sidecar unreachable, or failing before its first message) leaves the flag
/// as the last real stream left it: with gRPC's wait-for-ready, which tonic
/// lacks, such an attempt would have been the same call still waiting.
async fn stream_once(
    mut client: EgressResolverServiceClient<Channel>,
    caches: &Caches,
    suspensions: &Suspensions,
) -> bool {
    let mut hello = true;
    let ended_ok = match client.watch_invalidations(caches.watch_request()).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(event)) => {
                        apply_suspensions(suspensions, &event, hello);
                        caches.apply(event, hello);
                        hello = false;
                    }
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            }
        }
        Err(_) => false,
    };
    let connected = !hello;
    caches.stream_ended(connected.then_some(ended_ok));
    connected
}

/// The suspensions a stream message carries: on the hello, all of those in
/// force (replacing what was held); later, new ones and ended ones.
fn apply_suspensions(suspensions: &Suspensions, event: &WatchInvalidationsResponse, hello: bool) {
    let now = std::time::SystemTime::now();
    if hello {
        suspensions.replace(&event.suspended, now);
    } else {
        suspensions.add(&event.suspended, now);
    }
    suspensions.resume(&event.resumed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut waits = vec![INITIAL_BACKOFF];
        for _ in 0..5 {
            waits.push(next_backoff(*waits.last().unwrap()));
        }
        let millis: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [50, 100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let wait = jittered(Duration::from_millis(100));
            assert!(wait >= Duration::from_millis(80), "{wait:?}");
            assert!(wait <= Duration::from_millis(120), "{wait:?}");
        }
    }
}
