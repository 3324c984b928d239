//! Rust client of egress-resolver, the gRPC sidecar that runs a KumoMTA Lua
//! policy and serves egress source definitions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), egress_client::ResolverError> {
//! let resolver = egress_client::Resolver::connect("127.0.0.1:50051").await?;
//! let source = resolver.get("ip-1").await?;
//! println!("{} binds {:?}", source.name, source.source_address);
//! # Ok(())
//! # }
//! ```
//!
//! The messages are generated at build time from the repository's
//! `proto/kumo/egress/v1/*.proto` (see build.rs) and live in [`pb`].

mod error;
pub mod pb;
mod redact;
mod resolver;
mod target;

pub use error::{ResolverError, code_name};
pub use pb::{
    EgressSource, KeySource, SuspendOnFailure, VaultKeySource, key_source, suspend_on_failure,
};
pub use redact::REDACTED;
pub use resolver::{DEFAULT_TIMEOUT, Resolver};
pub use tonic::Code;
