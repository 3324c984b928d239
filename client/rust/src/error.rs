//! [`ResolverError`]: why a name did not resolve, with the gRPC code and the
//! stable `google.rpc.ErrorInfo` reason the server put in the status details.

use std::fmt;

use prost::Message as _;
use tonic::Code;
use tonic_types::pb::{ErrorInfo, Status as RpcStatus};

/// The `type_url` of a `google.rpc.ErrorInfo` packed in a `google.protobuf.Any`.
const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// Why a name did not resolve (or why a call failed as a whole).
///
/// Displays as `CODE_NAME: message [REASON]`, e.g.
/// `NOT_FOUND: get_egress_source 'x': the policy returned nil (no such source) [SOURCE_NOT_FOUND]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverError {
    /// The gRPC status code, e.g. [`Code::NotFound`].
    pub code: Code,
    /// The `ErrorInfo` reason, e.g. `SOURCE_NOT_FOUND` or `HANDLER_ERROR`;
    /// `None` when the server sent none (transport errors, time-outs).
    pub reason: Option<String>,
    /// The server's (or the transport's) description of the failure.
    pub message: String,
    /// The requested name; empty for failures not tied to one name.
    pub name: String,
}

impl ResolverError {
    /// An error raised on this side (bad target, malformed response).
    pub(crate) fn local(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: None,
            message: message.into(),
            name: String::new(),
        }
    }

    /// Builds the error of a failed call from its status and trailers.
    pub(crate) fn from_status(status: &tonic::Status, name: &str) -> Self {
        let reason = RpcStatus::decode(status.details())
            .ok()
            .and_then(|details| error_info_reason(&details));
        Self {
            code: status.code(),
            reason,
            message: status.message().to_owned(),
            name: name.to_owned(),
        }
    }

    /// Builds the error of one failed name from a batch result's `google.rpc.Status`.
    pub(crate) fn from_rpc_status(status: &RpcStatus, name: &str) -> Self {
        Self {
            code: Code::from_i32(status.code),
            reason: error_info_reason(status),
            message: status.message.clone(),
            name: name.to_owned(),
        }
    }

    /// The code as gRPC spells it, e.g. `NOT_FOUND`.
    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }
}

impl fmt::Display for ResolverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code_name(), self.message)?;
        match &self.reason {
            Some(reason) => write!(f, " [{reason}]"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ResolverError {}

/// The reason of the first `ErrorInfo` among the status details, if any.
fn error_info_reason(status: &RpcStatus) -> Option<String> {
    status
        .details
        .iter()
        .filter(|any| any.type_url == ERROR_INFO_TYPE_URL)
        .find_map(|any| ErrorInfo::decode(any.value.as_slice()).ok())
        .map(|info| info.reason)
}

/// The upper-snake name gRPC gives `code` (tonic only has CamelCase ones).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Any;

    fn not_found_status() -> RpcStatus {
        let info = ErrorInfo {
            reason: "SOURCE_NOT_FOUND".into(),
            domain: "egress-resolver.kumo".into(),
            metadata: Default::default(),
        };
        RpcStatus {
            code: Code::NotFound as i32,
            message: "no such source".into(),
            details: vec![Any {
                type_url: ERROR_INFO_TYPE_URL.into(),
                value: info.encode_to_vec(),
            }],
        }
    }

    #[test]
    fn reason_comes_from_the_error_info_detail() {
        let error = ResolverError::from_rpc_status(&not_found_status(), "x");
        assert_eq!(error.code, Code::NotFound);
        assert_eq!(error.reason.as_deref(), Some("SOURCE_NOT_FOUND"));
        assert_eq!(error.name, "x");
        assert_eq!(
            error.to_string(),
            "NOT_FOUND: no such source [SOURCE_NOT_FOUND]"
        );
    }

    #[test]
    fn status_details_trailer_is_decoded() {
        let details = not_found_status().encode_to_vec();
        let status = tonic::Status::with_details(Code::NotFound, "no such source", details.into());
        let error = ResolverError::from_status(&status, "x");
        assert_eq!(error.reason.as_deref(), Some("SOURCE_NOT_FOUND"));
    }

    #[test]
    fn status_without_details_has_no_reason() {
        let status = tonic::Status::unavailable("connection refused");
        let error = ResolverError::from_status(&status, "");
        assert_eq!(error.reason, None);
        assert_eq!(error.to_string(), "UNAVAILABLE: connection refused");
    }

    #[test]
    fn every_code_has_an_upper_snake_name() {
        for value in 0..=16 {
            let name = code_name(Code::from_i32(value));
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
        }
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
    }
}
