//! Loopback helpers of the connect tests: a resolver without a sidecar,
//! sources, closed ports, a one-connection destination that says a banner.

use std::net::SocketAddr;
use std::time::Duration;

use egress_client::{Code, EgressSource, Resolver, ResolverError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The deadline of each connect here: generous, for a loaded 2-core machine.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
pub const BANNER: &[u8] = b"220 loopback ESMTP\r\n";

/// A resolver whose sidecar is not there: the failure reports fail fast
/// (connection refused) and are ignored.
pub fn resolver() -> Resolver {
    Resolver::builder()
        .target("127.0.0.1:1")
        .build()
        .expect("a resolver")
        .with_connect_timeout(CONNECT_TIMEOUT)
}

pub fn source(name: &str) -> EgressSource {
    EgressSource {
        name: name.into(),
        ..Default::default()
    }
}

/// A port nothing listens on (bound, then closed).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads what `connected.stream` says first: the banner.
pub async fn banner(mut stream: TcpStream) -> Vec<u8> {
    let mut banner = vec![0u8; BANNER.len()];
    stream.read_exact(&mut banner).await.expect("the banner");
    banner
}

pub fn assert_unavailable(error: &ResolverError, reason: &str, name: &str, parts: &[&str]) {
    assert_eq!(error.code, Code::Unavailable, "{error}");
    assert_eq!(error.reason.as_deref(), Some(reason), "{error}");
    assert_eq!(error.name, name, "{error}");
    assert!(
        error.message.starts_with(&format!("source {name}: ")),
        "{error}"
    );
    for part in parts {
        assert!(error.message.contains(part), "{part:?} not in {error}");
    }
}

/// An SMTP-ish server for one connection: says the banner, returns the peer.
pub async fn destination() -> (SocketAddr, JoinHandle<SocketAddr>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await.unwrap();
        stream.write_all(BANNER).await.unwrap();
        peer
    });
    (address, served)
}
