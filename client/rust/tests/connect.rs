//! `connect_source` over real loopback sockets, directly and through a
//! loopback "HAProxy" that reads the PROXY v2 header: the peer sees the
//! bound source address, 192.0.2.1 is unplumbed, a refused proxy is
//! unhealthy. No sidecar is needed (see support/net.rs).

mod support;

use egress_client::{CONNECT_FAILED, Code, EgressSource, PROXY_UNHEALTHY, SOURCE_UNPLUMBED};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::net::{
    BANNER, assert_unavailable, banner, closed_port, destination, resolver, source,
};

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

#[tokio::test]
async fn a_malformed_destination_is_invalid() {
    let error = resolver()
        .connect_source(&source("any"), "no-port")
        .await
        .unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument, "{error}");
}
