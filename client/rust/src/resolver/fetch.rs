//! How a [`Resolver`] makes its calls: the deadline, the `rpcs` count,
//! storing answers in the cache, and what a failed call does to it
//! (`stale_if_error`, or the removal of an expired entry it cannot serve).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tonic::Code;
use tonic::transport::Channel;

use super::Resolver;
use crate::ResolverError;
use crate::cache::{DefinitionCache, Now};
use crate::coherence::{Answer, Caches};
use crate::pb::egress_resolver_service_client::EgressResolverServiceClient;
use crate::pb::{EgressPool, EgressSource, GetEgressPoolRequest, GetEgressSourceRequest};

impl Resolver {
    pub(super) async fn fetch_source(
        &self,
        name: &str,
    ) -> Result<Arc<EgressSource>, ResolverError> {
        let epoch = self.epoch();
        let mut client = self.client();
        let request = self.request(GetEgressSourceRequest {
            name: name.to_owned(),
        });
        let reply = match self.deadline(client.get_egress_source(request), name).await {
            Ok(response) => response.into_inner(),
            Err(error) => return self.failed(name, error, |caches| &caches.sources),
        };
        let Some(source) = reply.source else {
            return self.failed(name, missing(name, "source"), |caches| &caches.sources);
        };
        let source = Arc::new(source);
        let answer = Answer {
            epoch,
            revision: &reply.revision,
            produced_at: reply.produced_at,
            ttl: source.ttl,
        };
        if let Some(caches) = &self.inner.caches {
            caches.keep_source(name, &source, answer, self.moment());
        }
        Ok(source)
    }

    pub(super) async fn fetch_pool(&self, name: &str) -> Result<Arc<EgressPool>, ResolverError> {
        let epoch = self.epoch();
        let mut client = self.client();
        let request = self.request(GetEgressPoolRequest {
            name: name.to_owned(),
        });
        let reply = match self.deadline(client.get_egress_pool(request), name).await {
            Ok(response) => response.into_inner(),
            Err(error) => return self.failed(name, error, |caches| &caches.pools),
        };
        self.inner
            .suspensions
            .add(&reply.suspensions, SystemTime::now());
        let Some(pool) = reply.pool else {
            return self.failed(name, missing(name, "pool"), |caches| &caches.pools);
        };
        let pool = Arc::new(pool);
        let answer = Answer {
            epoch,
            revision: &reply.revision,
            produced_at: reply.produced_at,
            ttl: pool.ttl,
        };
        if let Some(caches) = &self.inner.caches {
            caches.keep_pool(name, &pool, answer, self.moment());
        }
        Ok(pool)
    }

    /// What a failed call for `name` answers: under `stale_if_error`, the
    /// expired entry instead of an UNAVAILABLE error (counted and logged);
    /// else the error, and an expired entry that could not be served is
    /// removed (see [`DefinitionCache::after_failure`]).
    pub(super) fn failed<V>(
        &self,
        name: &str,
        error: ResolverError,
        cache: impl Fn(&Caches) -> &DefinitionCache<V>,
    ) -> Result<Arc<V>, ResolverError> {
        let Some(caches) = &self.inner.caches else {
            return Err(error);
        };
        let unavailable = error.code == Code::Unavailable;
        let Some(stale) = cache(caches).after_failure(name, unavailable, self.now()) else {
            return Err(error);
        };
        let served = self.inner.stale_served.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            name = %name,
            stale_served = served,
            error = %error.message,
            "egress-resolver unreachable; serving an expired definition (stale_if_error)"
        );
        Ok(stale)
    }

    /// Moves this resolver's monotonic clock (the one cache expiry is kept
    /// on) `by` forward: for tests of ttls without waiting.
    #[doc(hidden)]
    pub fn advance_clock(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.inner.skew.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Now on the cache's monotonic clock.
    pub(super) fn now(&self) -> Instant {
        Instant::now() + Duration::from_nanos(self.inner.skew.load(Ordering::Relaxed))
    }

    pub(super) fn moment(&self) -> Now {
        Now {
            monotonic: self.now(),
            wall: SystemTime::now(),
        }
    }

    pub(super) fn epoch(&self) -> u64 {
        self.inner
            .caches
            .as_ref()
            .map_or(0, |caches| caches.epoch())
    }

    /// Wraps `message` in a request that tells the sidecar the call's deadline.
    pub(super) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    pub(super) fn client(&self) -> EgressResolverServiceClient<Channel> {
        self.inner.client.clone()
    }

    /// Runs one unary call (counted in `rpcs`) within the per-call time-out;
    /// the time-out is also sent to the sidecar as the call's deadline. A
    /// call that passes it fails with DEADLINE_EXCEEDED, without a reason
    /// unless the sidecar sent its own.
    pub(super) async fn deadline<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
        name: &str,
    ) -> Result<tonic::Response<T>, ResolverError> {
        self.inner.rpcs.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let passed = || ResolverError {
            name: name.to_owned(),
            ..ResolverError::local(
                Code::DeadlineExceeded,
                format!("no answer within {:?}", self.timeout),
            )
        };
        match tokio::time::timeout(self.timeout, call).await {
            // tonic times the call out too (from the deadline sent), with
            // CANCELLED "Timeout expired"; under load its timer may fire first.
            Ok(Err(status))
                if status.code() == Code::Cancelled && started.elapsed() >= self.timeout =>
            {
                Err(passed())
            }
            Ok(result) => result.map_err(|status| ResolverError::from_status(&status, name)),
            Err(_) => Err(passed()),
        }
    }
}

/// The error of a response without the message it should carry.
fn missing(name: &str, what: &str) -> ResolverError {
    ResolverError {
        name: name.to_owned(),
        ..ResolverError::local(Code::Internal, format!("the response has no {what}"))
    }
}
