//! Turns the options into a tonic [`Endpoint`]: the target, the connect
//! time-out and the keepalive pings.
//!
//! Keepalive: HTTP/2 pings every `keepalive_interval`, a time-out of
//! max(1 s, interval), also while no call is open (so the WatchInvalidations
//! stream stays open and a dead sidecar is noticed); hyper does not limit
//! pings without data. tonic has no setting for the reconnect backoff: a
//! broken channel reconnects on its next call, and the invalidation follower
//! retries with a backoff of its own (see watch.rs).

use std::time::Duration;

use tonic::Code;
use tonic::transport::Endpoint;

use crate::ResolverError;
use crate::options::Options;

/// The endpoint of `options.target`, with the connect time-out and keepalive set.
pub(crate) fn endpoint(options: &Options) -> Result<Endpoint, ResolverError> {
    let interval = options.keepalive_interval;
    Ok(parse(&options.target)?
        .connect_timeout(options.timeout)
        .http2_keep_alive_interval(interval)
        .keep_alive_timeout(interval.max(Duration::from_secs(1)))
        .keep_alive_while_idle(true))
}

/// Parses `target`: `host:port` (`127.0.0.1:50051`, `[::1]:50051`), an
/// `http://` URI, or `unix:/absolute/path` for a unix socket. Plaintext only:
/// the sidecar listens on loopback or a unix socket.
fn parse(target: &str) -> Result<Endpoint, ResolverError> {
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
        let v4 = parse("127.0.0.1:50051").unwrap();
        assert_eq!(v4.uri().to_string(), "http://127.0.0.1:50051/");
        let v6 = parse("[::1]:50051").unwrap();
        assert_eq!(v6.uri().host(), Some("[::1]"));
    }

    #[test]
    fn uris_and_unix_paths_are_accepted() {
        assert!(parse("http://localhost:50051").is_ok());
        assert!(parse("unix:/run/egress-resolver.sock").is_ok());
    }

    #[test]
    fn garbage_is_an_invalid_argument() {
        let error = parse("not a target").unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument);
    }
}
