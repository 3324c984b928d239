//! [`Resolver`]: a typed wrapper over the generated tonic client, with an
//! opt-in cache of sources and pools and kumod's pool selection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::transport::Channel;

use crate::coherence::Caches;
use crate::flight::Flights;
use crate::options::{Builder, Options};
use crate::pb::egress_resolver_service_client::EgressResolverServiceClient;
use crate::pb::{BatchGetEgressSourcesRequest, EgressPool, EgressSource};
use crate::selector::Selectors;
use crate::suspension::Suspensions;
use crate::{ResolverError, batch, watch};

mod fetch;
mod suspend;

/// A client of one egress-resolver sidecar. Cloning is cheap and clones
/// share the connection, the caches and the pool selection state, so one
/// `Resolver` can serve a whole program.
///
/// With the cache on (see [`Builder::cache`]) a `Resolver` keeps each source
/// and pool until `produced_at + ttl` (a bounded LRU of each kind: a lookup
/// that returns an entry, and storing one, make it the most recently used),
/// makes one call for concurrent misses of one name, follows
/// WatchInvalidations in a tokio task (resuming across sidecar restarts),
/// keeps serving cached entries while the sidecar is unreachable and, with
/// `stale_if_error`, expired ones for at most that long.
#[derive(Clone, Debug)]
pub struct Resolver {
    inner: Arc<Inner>,
    timeout: Duration,
    connect_timeout: Duration,
}

/// What the clones of one resolver share.
struct Inner {
    client: EgressResolverServiceClient<Channel>,
    options: Options,
    caches: Option<Arc<Caches>>,
    source_flights: Flights<EgressSource>,
    pool_flights: Flights<EgressPool>,
    selectors: Selectors,
    suspensions: Arc<Suspensions>,
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

    pub(crate) fn start(options: Options, channel: Channel) -> Self {
        let client = EgressResolverServiceClient::new(channel);
        let caches = options.cache.then(|| Arc::new(Caches::new(&options)));
        let suspensions = Arc::new(Suspensions::default());
        let watcher = caches.as_ref().map(|caches| {
            let follow =
                watch::follow(client.clone(), Arc::clone(caches), Arc::clone(&suspensions));
            tokio::spawn(follow).abort_handle()
        });
        Self {
            timeout: options.timeout,
            connect_timeout: options.connect_timeout,
            inner: Arc::new(Inner {
                client,
                options,
                caches,
                source_flights: Flights::default(),
                pool_flights: Flights::default(),
                selectors: Selectors::default(),
                suspensions,
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

    /// The same resolver with another deadline for a whole connect through
    /// a source (see [`Resolver::connect_source`]).
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// The deadline of a whole connect through a source.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub(crate) fn suspensions(&self) -> &Suspensions {
        &self.inner.suspensions
    }

    /// The options in force (given, or from the environment, or defaults).
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The egress source called `name`, as the policy defines it: from the
    /// cache when it holds it (no await point is reached then), else from
    /// the sidecar.
    pub async fn get(&self, name: &str) -> Result<Arc<EgressSource>, ResolverError> {
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        // Boxed: the call's future is large, and a future of that size
        // would be moved on every get, a hit included (≈ 0.7 µs measured).
        Box::pin(self.miss_source(name)).await
    }

    async fn miss_source(&self, name: &str) -> Result<Arc<EgressSource>, ResolverError> {
        if self.inner.caches.is_none() {
            return self.fetch_source(name).await;
        }
        let flights = &self.inner.source_flights;
        flights
            .run(name, self.timeout, || self.fetch_source(name))
            .await
    }

    /// The cached source `name` if the cache holds it within its ttl (and
    /// then the most recently used): synchronous, no call. `None` also when
    /// the cache is off.
    pub fn cached(&self, name: &str) -> Option<Arc<EgressSource>> {
        let caches = self.inner.caches.as_ref()?;
        caches.sources.get(name, self.now())
    }

    /// The names of the sources the cache holds, from the least to the most
    /// recently used, expired ones not yet removed included; empty when the
    /// cache is off. Looks nothing up: the order does not change.
    pub fn cached_names(&self) -> Vec<String> {
        self.inner
            .caches
            .as_ref()
            .map_or_else(Vec::new, |caches| caches.sources.names())
    }

    /// The egress pool called `name`, cached like sources.
    pub async fn get_pool(&self, name: &str) -> Result<Arc<EgressPool>, ResolverError> {
        let hit = self
            .inner
            .caches
            .as_ref()
            .and_then(|c| c.pools.get(name, self.now()));
        if let Some(hit) = hit {
            return Ok(hit);
        }
        Box::pin(self.miss_pool(name)).await // boxed as in `get`
    }

    async fn miss_pool(&self, name: &str) -> Result<Arc<EgressPool>, ResolverError> {
        if self.inner.caches.is_none() {
            return self.fetch_pool(name).await;
        }
        let flights = &self.inner.pool_flights;
        flights
            .run(name, self.timeout, || self.fetch_pool(name))
            .await
    }

    /// The next source name of the pool called `pool`, chosen as kumod
    /// chooses (weighted round robin) among the sources not suspended;
    /// `FAILED_PRECONDITION` with reason
    /// [`POOL_HAS_NO_SOURCES`](crate::POOL_HAS_NO_SOURCES) for a pool without
    /// a source of weight above 0, `RESOURCE_EXHAUSTED` with reason
    /// [`POOL_SUSPENDED`](crate::POOL_SUSPENDED) when all of them are suspended.
    pub async fn select(&self, pool: &str) -> Result<String, ResolverError> {
        let pool = self.get_pool(pool).await?;
        self.select_from(&pool)
    }

    /// The next source name of `pool` (a definition already in hand). The
    /// round-robin state is kept per pool name, and starts over when the
    /// pool's definition changes.
    pub fn select_from(&self, pool: &EgressPool) -> Result<String, ResolverError> {
        let suspensions = &self.inner.suspensions;
        self.inner
            .selectors
            .select(pool, suspensions, std::time::SystemTime::now())
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
}
