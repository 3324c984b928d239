//! `connect_source` through SOCKS5 over real loopback sockets, against a
//! SOCKS5 server written here from kumod's other side of the exchange (no
//! KumoMTA proxy can be installed for the tests): greeting,
//! username/password, BIND, CONNECT; its refusals; a proxy host name; and
//! the one deadline over the handshake.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use egress_client::{EgressSource, KeySource, PROXY_UNHEALTHY, VaultKeySource, key_source::Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::net::{BANNER, assert_unavailable, banner, resolver, source};

/// How the in-test SOCKS5 server behaves.
#[derive(Clone, Copy, PartialEq)]
enum Socks {
    /// Accepts, checks `mta`/`hunter2` when offered, BINDs and CONNECTs, says the banner.
    Serve,
    /// Refuses the BIND with reply 4 (host unreachable).
    RefuseBind,
    /// Accepts the connection and never answers.
    Silent,
}

/// What the SOCKS5 server saw: the methods offered, the credentials, the
/// BIND and the CONNECT requests.
#[derive(Debug, Default)]
struct SocksSeen {
    methods: Vec<u8>,
    credentials: Option<(String, String)>,
    bind: Vec<u8>,
    connect: Vec<u8>,
}

/// kumod's peer: a SOCKS5 server for one connection.
async fn socks5_server(mode: Socks) -> (SocketAddr, JoinHandle<SocksSeen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut seen = SocksSeen::default();
        if mode == Socks::Silent {
            let _ = stream.read(&mut [0u8; 64]).await; // until the client gives up
            let _ = stream.read(&mut [0u8; 64]).await;
            return seen;
        }
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(head[0], 5);
        seen.methods = vec![0u8; usize::from(head[1])];
        stream.read_exact(&mut seen.methods).await.unwrap();
        if seen.methods.contains(&2) {
            stream.write_all(&[5, 2]).await.unwrap();
            // A client that cannot get its password closes the connection.
            let Some(user) = read_field(&mut stream, true).await else {
                return seen;
            };
            let password = read_field(&mut stream, false).await.unwrap();
            let accepted = user == "mta" && password == "hunter2";
            stream.write_all(&[1, u8::from(!accepted)]).await.unwrap();
            seen.credentials = Some((user, password));
            if !accepted {
                return seen;
            }
        } else {
            stream.write_all(&[5, 0]).await.unwrap();
        }
        seen.bind = read_request(&mut stream).await;
        let reply = if mode == Socks::RefuseBind { 4 } else { 0 };
        stream
            .write_all(&[5, reply, 0, 1, 127, 0, 0, 1, 0x04, 0x38])
            .await
            .unwrap();
        if reply != 0 {
            return seen;
        }
        seen.connect = read_request(&mut stream).await;
        // A domain-name reply, read in full by the client before the banner.
        stream
            .write_all(&[5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 25])
            .await
            .unwrap();
        stream.write_all(BANNER).await.unwrap();
        seen
    });
    (address, served)
}

/// RFC 1929's version byte (when `first`), then a length-prefixed field;
/// `None` when the client closed the connection instead.
async fn read_field(stream: &mut TcpStream, first: bool) -> Option<String> {
    if first {
        assert_eq!(stream.read_u8().await.ok()?, 1);
    }
    let mut field = vec![0u8; usize::from(stream.read_u8().await.ok()?)];
    stream.read_exact(&mut field).await.ok()?;
    Some(String::from_utf8(field).unwrap())
}

/// A request `05 CMD 00 ATYP ADDR PORT` (IPv4), in full.
async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut request = vec![0u8; 10];
    stream.read_exact(&mut request).await.unwrap();
    request
}

fn socks_source(name: &str, proxy: SocketAddr, password: Option<Source>) -> EgressSource {
    EgressSource {
        socks5_proxy_server: Some(proxy.to_string()),
        socks5_proxy_source_address: Some("10.0.0.3".into()),
        socks5_proxy_username: password.as_ref().map(|_| "mta".into()),
        socks5_proxy_password: password.map(|source| KeySource {
            source: Some(source),
        }),
        ..source(name)
    }
}

#[tokio::test]
async fn socks5_without_auth_binds_then_connects() {
    let (proxy, served) = socks5_server(Socks::Serve).await;
    let socks = socks_source("socks-1", proxy, None);
    let connected = resolver()
        .connect_source(&socks, "192.0.2.25:25")
        .await
        .expect("connected through SOCKS5");
    assert_eq!(banner(connected.stream).await, BANNER);
    let seen = served.await.unwrap();
    assert_eq!(seen.methods, [0]);
    assert_eq!(seen.bind, [5, 2, 0, 1, 10, 0, 0, 3, 0, 0]);
    assert_eq!(seen.connect, [5, 1, 0, 1, 192, 0, 2, 25, 0, 25]);
}

#[tokio::test]
async fn socks5_authenticates_with_key_data_or_a_file_read_at_connect_time() {
    let file = std::env::temp_dir().join(format!("egress-client-socks-{}", std::process::id()));
    std::fs::write(&file, "hunter2").unwrap();
    let passwords = [
        Source::KeyData("hunter2".into()),
        Source::File(file.display().to_string()),
    ];
    for password in passwords {
        let (proxy, served) = socks5_server(Socks::Serve).await;
        let socks = socks_source("socks-auth", proxy, Some(password));
        let connected = resolver()
            .connect_source(&socks, "127.0.0.1:2525")
            .await
            .expect("connected through SOCKS5");
        assert_eq!(banner(connected.stream).await, BANNER);
        let seen = served.await.unwrap();
        assert_eq!(seen.methods, [0, 2]);
        assert_eq!(seen.credentials, Some(("mta".into(), "hunter2".into())));
    }
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn socks5_refusals_are_proxy_unhealthy() {
    let (proxy, served) = socks5_server(Socks::Serve).await;
    let wrong = socks_source("socks-wrong", proxy, Some(Source::KeyData("nope".into())));
    let error = resolver()
        .connect_source(&wrong, "127.0.0.1:25")
        .await
        .unwrap_err();
    let incorrect = "SOCKS5 username/password was incorrect";
    assert_unavailable(&error, PROXY_UNHEALTHY, "socks-wrong", &[incorrect]);
    served.await.unwrap();

    let (proxy, served) = socks5_server(Socks::RefuseBind).await;
    let error = resolver()
        .connect_source(&socks_source("socks-bind", proxy, None), "127.0.0.1:25")
        .await
        .unwrap_err();
    let refused = "the proxy server failed to bind 10.0.0.3";
    assert_unavailable(&error, PROXY_UNHEALTHY, "socks-bind", &[refused]);
    served.await.unwrap();

    let (proxy, served) = socks5_server(Socks::Serve).await;
    let vault = Source::Vault(VaultKeySource::default());
    let error = resolver()
        .connect_source(
            &socks_source("socks-vault", proxy, Some(vault)),
            "127.0.0.1:25",
        )
        .await
        .unwrap_err();
    let unsupported = "vault KeySource is not supported by the egress-resolver clients";
    assert_unavailable(&error, PROXY_UNHEALTHY, "socks-vault", &[unsupported]);
    assert_eq!(served.await.unwrap().credentials, None);
}

#[tokio::test]
async fn a_proxy_host_name_is_resolved_at_connect_time_and_filtered_by_family() {
    let (proxy, served) = socks5_server(Socks::Serve).await;
    let by_name = EgressSource {
        source_address: Some("127.0.0.1".into()),
        socks5_proxy_server: Some(format!("localhost:{}", proxy.port())),
        ..socks_source("socks-name", proxy, None)
    };
    let connected = resolver()
        .connect_source(&by_name, "192.0.2.25:25")
        .await
        .expect("connected through localhost");
    assert_eq!(banner(connected.stream).await, BANNER);
    served.await.unwrap();
    let v6_only = EgressSource {
        source_address: Some("::1".into()),
        socks5_proxy_server: Some(format!("127.0.0.1:{}", proxy.port())),
        socks5_proxy_source_address: Some("2001:db8::3".into()),
        ..by_name
    };
    let error = resolver()
        .connect_source(&v6_only, "[2001:db8::25]:25")
        .await
        .unwrap_err();
    let filtered = "no socks5_proxy_server candidates remain after filtering 1 resolved";
    assert_unavailable(&error, PROXY_UNHEALTHY, "socks-name", &[filtered]);
}

#[tokio::test]
async fn one_deadline_covers_the_proxy_handshake() {
    let (proxy, served) = socks5_server(Socks::Silent).await;
    let silent = socks_source("socks-silent", proxy, None);
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let error = resolver()
        .with_connect_timeout(timeout)
        .connect_source(&silent, "192.0.2.25:25")
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_unavailable(&error, PROXY_UNHEALTHY, "socks-silent", &["deadline"]);
    assert!(took >= timeout, "gave up after {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    served.await.unwrap();
}
