//! [`Resolver`]: a typed wrapper over the generated tonic client, with an
//! opt-in cache of sources and pools and kumod's pool selection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tonic::Code;
use tonic::transport::Channel;

use crate::cache::{DefinitionCache, Now};
use crate::coherence::{Answer, Caches};
use crate::flight::Flights;
use crate::options::{Builder, Options};
use crate::pb::egress_resolver_service_client::EgressResolverServiceClient;
use crate::pb::{
    BatchGetEgressSourcesRequest, EgressPool, EgressSource, GetEgressPoolRequest,
    GetEgressSourceRequest,
};
use crate::selector::Selectors;
use crate::{ResolverError, batch, watch};

/// A client of one egress-resolver sidecar. Cloning is cheap and clones
/// share the connection, the caches and the pool selection state, so one
/// `Resolver` can serve a whole program.
///
/// With the cache on (see [`Builder::cache`]) a `Resolver` keeps each source
/// and pool until `produced_at + ttl` (bounded LRU), makes one call for
/// concurrent misses of one name, follows WatchInvalidations in a tokio
/// task (resuming across sidecar restarts), keeps serving cached entries
/// while the sidecar is unreachable and, with `stale_if_error`, expired ones
/// for at most that long.
#[derive(Clone, Debug)]
pub struct Resolver {
    inner: Arc<Inner>,
    timeout: Duration,
}

/// What the clones of one resolver share.
struct Inner {
    client: EgressResolverServiceClient<Channel>,
    options: Options,
    caches: Option<Arc<Caches>>,
    source_flights: Flights<EgressSource>,
    pool_flights: Flights<EgressPool>,
    selectors: Selectors,
    rpcs: AtomicU64,
    stale_served: AtomicU64,
    /// How far tests moved this resolver's monotonic clock on, in ns.
    skew: AtomicU64,
    watcher: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(watcher) = &self.watcher {
            watcher.abort();
        }
    }
}

/// Counters and state of a resolver, as [`Resolver::stats`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Unary calls sent to the sidecar (Get, GetPool, batch; not the stream).
    pub rpcs: u64,
    /// Sources and pools cached.
    pub entries: usize,
    /// Whether the invalidation stream is connected.
    pub watching: bool,
    /// Expired entries served under `stale_if_error`.
    pub stale_served: u64,
}

impl Builder {
    /// Connects now: fails with `UNAVAILABLE` when nothing answers within the
    /// timeout, `INVALID_ARGUMENT` for a bad option. Starts following
    /// invalidations when the cache is on. Must run inside a tokio runtime.
    pub async fn connect(self) -> Result<Resolver, ResolverError> {
        let options = self.options()?;
        let endpoint = crate::target::endpoint(&options)?;
        let channel = endpoint.connect().await.map_err(|err| {
            ResolverError::local(
                Code::Unavailable,
                format!(
                    "cannot connect to {}: {}",
                    options.target,
                    error_chain(&err)
                ),
            )
        })?;
        Ok(Resolver::start(options, channel))
    }

    /// Builds without connecting: the first call connects (and fails with
    /// `UNAVAILABLE` while nothing answers). With the cache on it must be
    /// called inside a tokio runtime, which runs the invalidation follower.
    pub fn build(self) -> Result<Resolver, ResolverError> {
        let options = self.options()?;
        if options.cache && tokio::runtime::Handle::try_current().is_err() {
            return Err(ResolverError::local(
                Code::FailedPrecondition,
                "a resolver with the cache on is built inside a tokio runtime",
            ));
        }
        let channel = crate::target::endpoint(&options)?.connect_lazy();
        Ok(Resolver::start(options, channel))
    }
}

impl Resolver {
    /// A [`Builder`]: options not set on it come from `EGRESS_CLIENT_*`.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Connects to `target` (`127.0.0.1:50051`, `[::1]:50051`,
    /// `http://127.0.0.1:50051` or `unix:/run/egress-resolver.sock`), the
    /// other options from `EGRESS_CLIENT_*` or their defaults; see
    /// [`Builder::connect`].
    pub async fn connect(target: &str) -> Result<Self, ResolverError> {
        Self::builder().target(target).connect().await
    }

    fn start(options: Options, channel: Channel) -> Self {
        let client = EgressResolverServiceClient::new(channel);
        let caches = options.cache.then(|| Arc::new(Caches::new(&options)));
        let watcher = caches.as_ref().map(|caches| {
            tokio::spawn(watch::follow(client.clone(), Arc::clone(caches))).abort_handle()
        });
        Self {
            timeout: options.timeout,
            inner: Arc::new(Inner {
                client,
                options,
                caches,
                source_flights: Flights::default(),
                pool_flights: Flights::default(),
                selectors: Selectors::default(),
                rpcs: AtomicU64::new(0),
                stale_served: AtomicU64::new(0),
                skew: AtomicU64::new(0),
                watcher,
            }),
        }
    }

    /// The same resolver with another per-call time-out.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-call time-out in force.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The options in force (given, or from the environment, or defaults).
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The egress source called `name`, as the policy defines it: from the
    /// cache when it holds it (no await point is reached then), else from
    /// the sidecar.
    pub async fn get(&self, name: &str) -> Result<Arc<EgressSource>, ResolverError> {
        let Some(caches) = &self.inner.caches else {
            return self.fetch_source(name).await;
        };
        if let Some(hit) = caches.sources.get(name, self.now()) {
            return Ok(hit);
        }
        let flights = &self.inner.source_flights;
        flights
            .run(name, self.timeout, || self.fetch_source(name))
            .await
    }

    /// The cached source `name` if the cache holds it within its ttl:
    /// synchronous, no call. `None` also when the cache is off.
    pub fn cached(&self, name: &str) -> Option<Arc<EgressSource>> {
        let caches = self.inner.caches.as_ref()?;
        caches.sources.get(name, self.now())
    }

    /// The egress pool called `name`, cached like sources.
    pub async fn get_pool(&self, name: &str) -> Result<Arc<EgressPool>, ResolverError> {
        let Some(caches) = &self.inner.caches else {
            return self.fetch_pool(name).await;
        };
        if let Some(hit) = caches.pools.get(name, self.now()) {
            return Ok(hit);
        }
        let flights = &self.inner.pool_flights;
        flights
            .run(name, self.timeout, || self.fetch_pool(name))
            .await
    }

    /// The next source name of the pool called `pool`, chosen as kumod
    /// chooses (weighted round robin); `FAILED_PRECONDITION` with reason
    /// [`POOL_HAS_NO_SOURCES`](crate::POOL_HAS_NO_SOURCES) for a pool without
    /// a source of weight above 0.
    pub async fn select(&self, pool: &str) -> Result<String, ResolverError> {
        let pool = self.get_pool(pool).await?;
        self.select_from(&pool)
    }

    /// The next source name of `pool` (a definition already in hand). The
    /// round-robin state is kept per pool name, and starts over when the
    /// pool's definition changes.
    pub fn select_from(&self, pool: &EgressPool) -> Result<String, ResolverError> {
        self.inner.selectors.select(pool)
    }

    /// Resolves several names in one call: one result per name, in order. A
    /// name that fails does not fail the others; the outer `Err` means the
    /// call itself failed (connection, time-out, invalid request). Never cached.
    pub async fn get_many<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<Vec<Result<EgressSource, ResolverError>>, ResolverError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_owned()).collect();
        let requested = names.len();
        let mut client = self.client();
        let call =
            client.batch_get_egress_sources(self.request(BatchGetEgressSourcesRequest { names }));
        let response = self.deadline(call, "").await?;
        batch::results(response.into_inner(), requested)
    }

    /// `rpcs` sent so far, cached `entries`, whether the stream is `watching`
    /// and how many stale entries were served.
    pub fn stats(&self) -> Stats {
        let caches = self.inner.caches.as_deref();
        Stats {
            rpcs: self.inner.rpcs.load(Ordering::Relaxed),
            entries: caches.map_or(0, Caches::len),
            watching: caches.is_some_and(Caches::watching),
            stale_served: self.inner.stale_served.load(Ordering::Relaxed),
        }
    }

    /// Waits until the invalidation stream is connected; false after
    /// `timeout`, or at once when the cache is off.
    pub async fn wait_until_watching(&self, timeout: Duration) -> bool {
        let Some(caches) = &self.inner.caches else {
            return false;
        };
        let mut watching = caches.subscribe();
        matches!(
            tokio::time::timeout(timeout, watching.wait_for(|on| *on)).await,
            Ok(Ok(_))
        )
    }

    /// The revision and sequence of the last invalidation message applied.
    #[doc(hidden)]
    pub fn watch_position(&self) -> Option<(String, u64)> {
        self.inner.caches.as_ref().map(|caches| caches.position())
    }

    async fn fetch_source(&self, name: &str) -> Result<Arc<EgressSource>, ResolverError> {
        let epoch = self.epoch();
        let mut client = self.client();
        let request = self.request(GetEgressSourceRequest {
            name: name.to_owned(),
        });
        let reply = match self.deadline(client.get_egress_source(request), name).await {
            Ok(response) => response.into_inner(),
            Err(error) => return self.stale(error, |caches| &caches.sources),
        };
        let source = Arc::new(reply.source.ok_or_else(|| missing(name, "source"))?);
        let answer = Answer {
            epoch,
            revision: &reply.revision,
            produced_at: reply.produced_at,
            ttl: source.ttl,
        };
        if let Some(caches) = &self.inner.caches {
            caches.keep(&caches.sources, name, &source, answer, self.moment());
        }
        Ok(source)
    }

    async fn fetch_pool(&self, name: &str) -> Result<Arc<EgressPool>, ResolverError> {
        let epoch = self.epoch();
        let mut client = self.client();
        let request = self.request(GetEgressPoolRequest {
            name: name.to_owned(),
        });
        let reply = match self.deadline(client.get_egress_pool(request), name).await {
            Ok(response) => response.into_inner(),
            Err(error) => return self.stale(error, |caches| &caches.pools),
        };
        let pool = Arc::new(reply.pool.ok_or_else(|| missing(name, "pool"))?);
        let answer = Answer {
            epoch,
            revision: &reply.revision,
            produced_at: reply.produced_at,
            ttl: pool.ttl,
        };
        if let Some(caches) = &self.inner.caches {
            caches.keep(&caches.pools, name, &pool, answer, self.moment());
        }
        Ok(pool)
    }

    /// Under `stale_if_error`, an expired entry instead of an UNAVAILABLE error.
    fn stale<V>(
        &self,
        error: ResolverError,
        cache: impl Fn(&Caches) -> &DefinitionCache<V>,
    ) -> Result<Arc<V>, ResolverError> {
        let stale = match &self.inner.caches {
            Some(caches) if error.code == Code::Unavailable => {
                cache(caches).get_stale(&error.name, self.now())
            }
            _ => None,
        };
        let Some(stale) = stale else {
            return Err(error);
        };
        let served = self.inner.stale_served.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            name = %error.name,
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
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_nanos(self.inner.skew.load(Ordering::Relaxed))
    }

    fn moment(&self) -> Now {
        Now {
            monotonic: self.now(),
            wall: SystemTime::now(),
        }
    }

    fn epoch(&self) -> u64 {
        self.inner
            .caches
            .as_ref()
            .map_or(0, |caches| caches.epoch())
    }

    /// Wraps `message` in a request that tells the sidecar the call's deadline.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    fn client(&self) -> EgressResolverServiceClient<Channel> {
        self.inner.client.clone()
    }

    /// Runs one unary call (counted in `rpcs`) within the per-call time-out;
    /// the time-out is also sent to the sidecar as the call's deadline.
    async fn deadline<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
        name: &str,
    ) -> Result<tonic::Response<T>, ResolverError> {
        self.inner.rpcs.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|status| ResolverError::from_status(&status, name)),
            Err(_) => Err(ResolverError {
                name: name.to_owned(),
                ..ResolverError::local(
                    Code::DeadlineExceeded,
                    format!("no answer within {:?}", self.timeout),
                )
            }),
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

/// `err` and its sources, joined by ": " (tonic's own message is terse),
/// skipping a cause that only repeats the text before it.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
