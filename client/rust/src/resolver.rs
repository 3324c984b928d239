//! [`Resolver`]: a typed wrapper over the generated tonic client.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;

use crate::ResolverError;
use crate::pb::egress_resolver_service_client::EgressResolverServiceClient;
use crate::pb::egress_source_result::Result as BatchResult;
use crate::pb::{
    BatchGetEgressSourcesRequest, EgressSource, EgressSourceResult, GetEgressSourceRequest,
};
use crate::target;

/// How long a call (or connecting) may take unless [`Resolver::with_timeout`]
/// says otherwise. A cache miss runs the Lua policy, hence more than a few ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one egress-resolver sidecar. Cloning is cheap and clones share
/// the connection, so one `Resolver` can serve a whole program.
#[derive(Clone, Debug)]
pub struct Resolver {
    client: EgressResolverServiceClient<Channel>,
    timeout: Duration,
}

impl Resolver {
    /// Connects to `target`: `127.0.0.1:50051`, `[::1]:50051`,
    /// `http://127.0.0.1:50051` or `unix:/run/egress-resolver.sock`.
    ///
    /// Fails with `UNAVAILABLE` when nothing answers within [`DEFAULT_TIMEOUT`]
    /// and with `INVALID_ARGUMENT` when `target` cannot be parsed. Must run
    /// inside a tokio runtime.
    pub async fn connect(target: &str) -> Result<Self, ResolverError> {
        let channel = target::endpoint(target)?
            .connect_timeout(DEFAULT_TIMEOUT)
            .connect()
            .await
            .map_err(|err| {
                ResolverError::local(
                    Code::Unavailable,
                    format!("cannot connect to {target}: {}", error_chain(&err)),
                )
            })?;
        Ok(Self {
            client: EgressResolverServiceClient::new(channel),
            timeout: DEFAULT_TIMEOUT,
        })
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

    /// The egress source called `name`, as the policy defines it.
    pub async fn get(&self, name: &str) -> Result<EgressSource, ResolverError> {
        let request = self.request(GetEgressSourceRequest {
            name: name.to_owned(),
        });
        let response = self
            .client
            .clone()
            .get_egress_source(request)
            .await
            .map_err(|status| ResolverError::from_status(&status, name))?;
        response.into_inner().source.ok_or_else(|| ResolverError {
            name: name.to_owned(),
            ..ResolverError::local(Code::Internal, "the response has no source")
        })
    }

    /// Resolves several names in one call: one result per name, in order. A
    /// name that fails does not fail the others; the outer `Err` means the
    /// call itself failed (connection, time-out, invalid request).
    pub async fn get_many<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<Vec<Result<EgressSource, ResolverError>>, ResolverError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_owned()).collect();
        let requested = names.len();
        let request = self.request(BatchGetEgressSourcesRequest { names });
        let response = self
            .client
            .clone()
            .batch_get_egress_sources(request)
            .await
            .map_err(|status| ResolverError::from_status(&status, ""))?;
        let results = response.into_inner().results;
        if results.len() != requested {
            return Err(ResolverError::local(
                Code::Internal,
                format!("asked for {requested} names, got {} results", results.len()),
            ));
        }
        Ok(results.into_iter().map(batch_result).collect())
    }

    /// Wraps `message` in a request that carries the per-call deadline.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }
}

/// One batch result as a `Result`.
fn batch_result(result: EgressSourceResult) -> Result<EgressSource, ResolverError> {
    match result.result {
        Some(BatchResult::Source(source)) => Ok(source),
        Some(BatchResult::Error(status)) => {
            Err(ResolverError::from_rpc_status(&status, &result.name))
        }
        None => Err(ResolverError {
            name: result.name,
            ..ResolverError::local(Code::Internal, "the result has neither source nor error")
        }),
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
