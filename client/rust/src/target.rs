//! Turns a target string into a tonic [`Endpoint`].

use tonic::Code;
use tonic::transport::Endpoint;

use crate::ResolverError;

/// Parses `target`: `host:port` (`127.0.0.1:50051`, `[::1]:50051`), an
/// `http://` URI, or `unix:/absolute/path` for a unix socket. Plaintext only:
/// the sidecar listens on loopback or a unix socket.
pub(crate) fn endpoint(target: &str) -> Result<Endpoint, ResolverError> {
    let uri = if target.starts_with("unix:") || target.contains("://") {
        target.to_owned()
    } else {
        format!("http://{target}")
    };
    Endpoint::from_shared(uri).map_err(|err| {
        ResolverError::local(
            Code::InvalidArgument,
            format!("invalid target {target:?}: {err}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_gets_the_http_scheme() {
        let v4 = endpoint("127.0.0.1:50051").unwrap();
        assert_eq!(v4.uri().to_string(), "http://127.0.0.1:50051/");
        let v6 = endpoint("[::1]:50051").unwrap();
        assert_eq!(v6.uri().host(), Some("[::1]"));
    }

    #[test]
    fn uris_and_unix_paths_are_accepted() {
        assert!(endpoint("http://localhost:50051").is_ok());
        assert!(endpoint("unix:/run/egress-resolver.sock").is_ok());
    }

    #[test]
    fn garbage_is_an_invalid_argument() {
        let error = endpoint("not a target").unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument);
    }
}
