//! Where a connect through a source goes: the destination's addresses, the
//! proxy (if any) and its candidate addresses, as kumod's
//! `resolve_proxy_protocols` and `resolve_proxy_candidates` work them out.

use std::net::{IpAddr, SocketAddr};

use tokio::time::Instant;

use super::attempt::{Failed, Kind};
use crate::pb::{EgressSource, KeySource};

/// The proxy a source connects through.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proxy<'a> {
    /// `ha_proxy_server` or `socks5_proxy_server`: what the errors call it.
    pub(crate) field: &'static str,
    /// The server as the policy gave it: `IP:port`, `[v6]:port` or `host:port`.
    pub(crate) server: &'a str,
    /// The address the proxy connects onwards from (`*_proxy_source_address`).
    pub(crate) via: IpAddr,
    /// SOCKS5 (else HAProxy).
    pub(crate) socks5: bool,
    /// SOCKS5's username and password, when both are set.
    pub(crate) credentials: Option<(&'a str, &'a KeySource)>,
}

/// How a source connects: the address it binds and the proxy it goes through.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route<'a> {
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) proxy: Option<Proxy<'a>>,
}

impl<'a> Route<'a> {
    /// The route of `source`: HAProxy when both `ha_proxy_*` are set, else
    /// SOCKS5 when both `socks5_proxy_*` are, else direct.
    pub(crate) fn of(source: &'a EgressSource) -> Result<Self, Failed> {
        let source_ip = match source.source_address.as_deref() {
            Some(text) => Some(text.parse::<IpAddr>().map_err(|_| Failed {
                kind: Kind::Bind { unplumbed: false },
                address: text.to_owned(),
                cause: format!("source_address {text:?} is not an IP address"),
            })?),
            None => None,
        };
        let ha = (&source.ha_proxy_server, &source.ha_proxy_source_address);
        let socks = (
            &source.socks5_proxy_server,
            &source.socks5_proxy_source_address,
        );
        let proxy = match (ha, socks) {
            ((Some(server), Some(via)), _) => Some(proxy("ha_proxy", server, via, None)?),
            (_, (Some(server), Some(via))) => {
                let credentials =
                    match (&source.socks5_proxy_username, &source.socks5_proxy_password) {
                        (Some(user), Some(password)) => Some((user.as_str(), password)),
                        _ => None,
                    };
                Some(proxy("socks5_proxy", server, via, credentials)?)
            }
            _ => None,
        };
        Ok(Self { source_ip, proxy })
    }
}

fn proxy<'a>(
    prefix: &'static str,
    server: &'a str,
    via: &str,
    credentials: Option<(&'a str, &'a KeySource)>,
) -> Result<Proxy<'a>, Failed> {
    let socks5 = prefix == "socks5_proxy";
    let field = if socks5 {
        "socks5_proxy_server"
    } else {
        "ha_proxy_server"
    };
    let via = via.parse::<IpAddr>().map_err(|_| Failed {
        kind: Kind::ProxyRoute,
        address: server.to_owned(),
        cause: format!("{prefix}_source_address {via:?} is not an IP address"),
    })?;
    Ok(Proxy {
        field,
        server,
        via,
        socks5,
        credentials,
    })
}

/// Whether `a` and `b` are of the same family.
pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// `HOST:PORT` split: HOST without brackets (`[::1]:25` and `::1:25` both
/// give `::1`).
pub(crate) fn split_destination(destination: &str) -> Option<(&str, u16)> {
    let (host, port) = destination.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// The addresses of `host` (an IP literal, or a name resolved now, A and
/// AAAA) with `port`; the cause when there are none by `deadline`.
pub(crate) async fn addresses(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(format!("resolving {host}: the deadline passed")),
        Ok(Err(err)) => Err(format!("resolving {host}: {err}")),
        Ok(Ok(found)) => {
            let mut found: Vec<SocketAddr> = found.collect();
            found.dedup();
            if found.is_empty() {
                return Err(format!("resolving {host}: no address"));
            }
            Ok(found)
        }
    }
}

/// The proxy's candidate addresses, resolved now, of `source_ip`'s family
/// when it is set; a failure here is found before any connection (not
/// reported).
pub(crate) async fn proxy_candidates(
    proxy: &Proxy<'_>,
    source_ip: Option<IpAddr>,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Failed> {
    let (field, server) = (proxy.field, proxy.server);
    let failed = |cause: String| Failed {
        kind: Kind::ProxyRoute,
        address: server.to_owned(),
        cause,
    };
    if server.starts_with('/') {
        return Err(failed(format!(
            "{field} {server}: a unix-path proxy is not supported (kumod cannot use one either)"
        )));
    }
    let mut candidates = match server.parse::<SocketAddr>() {
        Ok(address) => vec![address],
        Err(_) => {
            let Some((host, port)) = split_destination(server) else {
                return Err(failed(format!("{field} {server:?} is not HOST:PORT")));
            };
            addresses(host, port, deadline)
                .await
                .map_err(|cause| failed(format!("{field} {server}: {cause}")))?
        }
    };
    if let Some(source_ip) = source_ip {
        let before = candidates.len();
        candidates.retain(|candidate| same_family(candidate.ip(), source_ip));
        if candidates.is_empty() {
            return Err(failed(format!(
                "no {field} candidates remain after filtering {before} resolved address(es) \
                 to match source_address {source_ip} family"
            )));
        }
    }
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_split_into_host_and_port() {
        assert_eq!(split_destination("127.0.0.1:25"), Some(("127.0.0.1", 25)));
        assert_eq!(split_destination("[::1]:2525"), Some(("::1", 2525)));
        assert_eq!(split_destination("::1:25"), Some(("::1", 25)));
        assert_eq!(
            split_destination("mx.example.com:25"),
            Some(("mx.example.com", 25))
        );
        assert_eq!(split_destination("mx.example.com"), None);
        assert_eq!(split_destination(":25"), None);
        assert_eq!(split_destination("host:99999"), None);
    }

    #[test]
    fn the_route_follows_the_fields_set() {
        let mut source = EgressSource {
            source_address: Some("127.0.0.2".into()),
            socks5_proxy_server: Some("127.0.0.1:1080".into()),
            socks5_proxy_source_address: Some("10.0.0.2".into()),
            ..Default::default()
        };
        let route = Route::of(&source).unwrap();
        assert_eq!(route.source_ip, Some("127.0.0.2".parse().unwrap()));
        assert!(route.proxy.unwrap().socks5);
        source.ha_proxy_server = Some("127.0.0.1:5000".into());
        assert!(
            Route::of(&source).unwrap().proxy.unwrap().socks5,
            "HAProxy needs both fields"
        );
        source.ha_proxy_source_address = Some("10.0.0.3".into());
        let proxy = Route::of(&source).unwrap().proxy.unwrap();
        assert_eq!((proxy.socks5, proxy.field), (false, "ha_proxy_server"));
        source.ha_proxy_source_address = Some("nope".into());
        assert!(matches!(
            Route::of(&source).unwrap_err().kind,
            Kind::ProxyRoute
        ));
    }
}
