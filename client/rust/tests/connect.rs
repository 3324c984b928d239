//! `connect_source` over real loopback sockets: the peer sees the bound
//! source address, a loopback "HAProxy" reads the PROXY v2 header, and a
//! SOCKS5 server written here from kumod's other side of the exchange (no
//! KumoMTA proxy can be installed for the tests) answers greeting,
//! username/password, BIND and CONNECT. No sidecar is needed: the resolver
//! points at a closed port, so the failure reports fail (and are ignored).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use egress_client::{
    CONNECT_FAILED, Code, EgressSource, KeySource, PROXY_UNHEALTHY, Resolver, ResolverError,
    SOURCE_UNPLUMBED, VaultKeySource, key_source::Source,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The deadline of each connect here: generous, for a loaded 2-core machine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const BANNER: &[u8] = b"220 loopback ESMTP\r\n";

/// A resolver whose sidecar is not there (reports fail fast: refused).
fn resolver() -> Resolver {
    Resolver::builder()
        .target("127.0.0.1:1")
        .build()
        .expect("a resolver")
        .with_connect_timeout(CONNECT_TIMEOUT)
}

fn source(name: &str) -> EgressSource {
    EgressSource {
        name: name.into(),
        ..Default::default()
    }
}

/// A port nothing listens on (bound, then closed).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads what `connected.stream` says first: the banner.
async fn banner(mut stream: TcpStream) -> Vec<u8> {
    let mut banner = vec![0u8; BANNER.len()];
    stream.read_exact(&mut banner).await.expect("the banner");
    banner
}

fn assert_unavailable(error: &ResolverError, reason: &str, name: &str, parts: &[&str]) {
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
async fn destination() -> (SocketAddr, JoinHandle<SocketAddr>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await.unwrap();
        stream.write_all(BANNER).await.unwrap();
        peer
    });
    (address, served)
}

#[tokio::test]
async fn direct_binds_the_source_address_the_peer_sees_and_says_ehlo_domain() {
    let (address, served) = destination().await;
    let ip2 = EgressSource {
        source_address: Some("127.0.0.2".into()),
        ehlo_domain: Some("mta2.example.com".into()),
        ..source("ip-2")
    };
    let connected = resolver()
        .connect_source(&ip2, &address.to_string())
        .await
        .expect("connected");
    assert_eq!(connected.ehlo, "mta2.example.com");
    assert_eq!(banner(connected.stream).await, BANNER);
    let peer = served.await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.2");
}

#[tokio::test]
async fn remote_port_replaces_the_port_and_the_ehlo_defaults_to_the_host_name() {
    let (address, served) = destination().await;
    let ported = EgressSource {
        remote_port: Some(u32::from(address.port())),
        ..source("ported")
    };
    let connected = resolver()
        .connect_source(&ported, "127.0.0.1:1")
        .await
        .expect("connected");
    assert!(!connected.ehlo.is_empty());
    assert_eq!(banner(connected.stream).await, BANNER);
    served.await.unwrap();
}

#[tokio::test]
async fn an_address_not_on_the_host_is_source_unplumbed() {
    let ip9 = EgressSource {
        source_address: Some("192.0.2.1".into()),
        ..source("ip-9")
    };
    let port = closed_port().await;
    let error = resolver()
        .connect_source(&ip9, &format!("127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_unavailable(
        &error,
        SOURCE_UNPLUMBED,
        "ip-9",
        &["bind 192.0.2.1:0 failed"],
    );
}

#[tokio::test]
async fn a_closed_destination_is_connect_failed() {
    let port = closed_port().await;
    let error = resolver()
        .connect_source(&source("direct"), &format!("127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_unavailable(
        &error,
        CONNECT_FAILED,
        "direct",
        &[&format!("127.0.0.1:{port}")],
    );
}

#[tokio::test]
async fn a_refused_proxy_is_proxy_unhealthy() {
    let port = closed_port().await;
    let px = EgressSource {
        ha_proxy_server: Some(format!("127.0.0.1:{port}")),
        ha_proxy_source_address: Some("10.0.0.2".into()),
        ..source("px-1")
    };
    let error = resolver()
        .connect_source(&px, "192.0.2.25:25")
        .await
        .unwrap_err();
    let proxy = format!("proxy 127.0.0.1:{port}: ");
    assert_unavailable(&error, PROXY_UNHEALTHY, "px-1", &[&proxy]);
}

#[tokio::test]
async fn haproxy_gets_the_proxy_v2_header_before_any_other_byte() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let haproxy = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 28];
        stream.read_exact(&mut header).await.unwrap();
        stream.write_all(BANNER).await.unwrap();
        header
    });
    let ha = EgressSource {
        ha_proxy_server: Some(proxy.to_string()),
        ha_proxy_source_address: Some("10.0.0.2".into()),
        remote_port: Some(2525),
        ..source("ha-1")
    };
    let connected = resolver()
        .connect_source(&ha, "192.0.2.25:25")
        .await
        .expect("connected through the proxy");
    assert_eq!(banner(connected.stream).await, BANNER);
    let mut expected = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    expected.extend_from_slice(&[10, 0, 0, 2, 192, 0, 2, 25, 0, 0, 0x09, 0xdd]);
    assert_eq!(haproxy.await.unwrap().to_vec(), expected);
}

#[tokio::test]
async fn haproxy_over_ipv6_and_a_family_mismatch() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: [::1] cannot be bound on this host");
        return;
    };
    let proxy = listener.local_addr().unwrap();
    let haproxy = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 52];
        stream.read_exact(&mut header).await.unwrap();
        header
    });
    let mut ha6 = EgressSource {
        ha_proxy_server: Some(proxy.to_string()),
        ha_proxy_source_address: Some("2001:db8::2".into()),
        ..source("ha-6")
    };
    resolver()
        .connect_source(&ha6, "[2001:db8::25]:25")
        .await
        .expect("connected through the proxy");
    let header = haproxy.await.unwrap();
    assert_eq!(header[12..16], [0x21, 0x21, 0, 36]);
    assert_eq!(
        header[16..32],
        "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(header[48..], [0, 0, 0, 25]);
    ha6.ha_proxy_source_address = Some("10.0.0.2".into());
    let error = resolver()
        .connect_source(&ha6, "[2001:db8::25]:25")
        .await
        .unwrap_err();
    assert_unavailable(
        &error,
        PROXY_UNHEALTHY,
        "ha-6",
        &["address family does not match"],
    );
}

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

#[tokio::test]
async fn a_malformed_destination_is_invalid() {
    let error = resolver()
        .connect_source(&source("any"), "no-port")
        .await
        .unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument, "{error}");
}
