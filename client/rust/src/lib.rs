//! Rust client of egress-resolver, the gRPC sidecar that runs a KumoMTA Lua
//! policy and serves egress source and pool definitions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), egress_client::ResolverError> {
//! let resolver = egress_client::Resolver::builder()
//!     .target("unix:/run/egress-resolver.sock")
//!     .cache(true)
//!     .connect()
//!     .await?;
//! let name = resolver.select("pool-a").await?; // kumod's weighted round robin
//! let source = resolver.get(&name).await?;     // cached until produced_at + ttl
//! println!("{} binds {:?}", source.name, source.source_address);
//! # Ok(())
//! # }
//! ```
//!
//! [`Resolver::connect_name`] and [`Resolver::connect_source`] connect
//! through a source as kumod does (bind, HAProxy's PROXY v2 header, SOCKS5),
//! report the failures that can suspend a source to the sidecar, and refuse
//! a source suspended host-wide; [`Resolver::select`] skips those.
//!
//! Options not set on the [`Builder`] come from the `EGRESS_CLIENT_*`
//! variables (see [`Options`]). The messages are generated at build time from
//! the repository's `proto/kumo/egress/v1/*.proto` (see build.rs) and live
//! in [`pb`].

mod batch;
mod cache;
mod coherence;
mod connect;
mod egress;
mod error;
mod flight;
mod options;
pub mod pb;
mod redact;
mod resolver;
mod selector;
mod suspension;
mod target;
mod watch;

pub use egress::{
    CONNECT_FAILED, Connected, PROXY_UNHEALTHY, SOURCE_SUSPENDED, SOURCE_UNPLUMBED, reason_of,
};
pub use error::{ResolverError, code_name};
pub use options::{
    Builder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_ENTRIES,
    DEFAULT_TARGET, DEFAULT_TIMEOUT, ENV_PREFIX, Options, parse_seconds,
};
pub use pb::{
    EgressPool, EgressPoolEntry, EgressSource, FailureClass, KeySource, SourceSuspension,
    SuspendOnFailure, VaultKeySource, key_source, suspend_on_failure,
};
pub use redact::REDACTED;
pub use resolver::{Resolver, Stats};
pub use selector::{POOL_HAS_NO_SOURCES, POOL_SUSPENDED};
pub use tonic::Code;
