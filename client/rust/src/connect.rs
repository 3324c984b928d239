//! Connecting: [`Builder::connect`] (now) and [`Builder::build`] (lazily).

use tonic::Code;

use crate::options::Builder;
use crate::{Resolver, ResolverError};

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
    /// `UNAVAILABLE` while nothing answers). Must be called inside a tokio
    /// runtime, which runs the channel's worker (and, with the cache on, the
    /// invalidation follower): `FAILED_PRECONDITION` outside one.
    pub fn build(self) -> Result<Resolver, ResolverError> {
        let options = self.options()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ResolverError::local(
                Code::FailedPrecondition,
                "Builder::build must be called inside a tokio runtime",
            ));
        }
        let channel = crate::target::endpoint(&options)?.connect_lazy();
        Ok(Resolver::start(options, channel))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_needs_a_tokio_runtime_but_no_sidecar() {
        let outside = Builder::default().target("127.0.0.1:1").build();
        assert_eq!(outside.unwrap_err().code, Code::FailedPrecondition);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let resolver = Builder::default().target("127.0.0.1:1").cache(true).build();
        assert!(resolver.unwrap().options().cache);
    }
}
