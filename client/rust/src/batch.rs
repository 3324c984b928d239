//! The results of BatchGetEgressSources as `Result`s.

use tonic::Code;

use crate::ResolverError;
use crate::pb::egress_source_result::Result as BatchResult;
use crate::pb::{BatchGetEgressSourcesResponse, EgressSource, EgressSourceResult};

/// One `Result` per name, in order; an error if the count is not `requested`.
pub(crate) fn results(
    response: BatchGetEgressSourcesResponse,
    requested: usize,
) -> Result<Vec<Result<EgressSource, ResolverError>>, ResolverError> {
    let results = response.results;
    if results.len() != requested {
        return Err(ResolverError::local(
            Code::Internal,
            format!("asked for {requested} names, got {} results", results.len()),
        ));
    }
    Ok(results.into_iter().map(result).collect())
}

/// One batch result as a `Result`.
fn result(result: EgressSourceResult) -> Result<EgressSource, ResolverError> {
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
