//! One candidate of a connect (kumod's `connect_one`): a socket of the
//! candidate's family with TCP_NODELAY, the bind of `source_address`, the
//! connect, then the proxy's handshake; and how failures are classified
//! once every candidate failed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::route::Proxy;
use super::{proxy_header, socks5};
use crate::pb::FailureClass;

/// What failed in one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Binding `source_address`; `unplumbed` for EADDRNOTAVAIL.
    Bind { unplumbed: bool },
    /// A proxy once it is tried: reaching it, its handshake, its refusals.
    Proxy,
    /// A proxy found unusable before any connection to it (an address
    /// family that does not match, a name that does not resolve, no
    /// candidate left, a unix path): PROXY_UNHEALTHY too, but not reported,
    /// as kumod's `connect_to` returns from `resolve_proxy_protocols` before
    /// `maybe_record_health_failure`.
    ProxyRoute,
    /// Reaching the destination directly (or finding its addresses).
    Direct,
}

/// One failed attempt: its kind, the address it concerns (the source
/// address, or the proxy's `IP:port`, or the destination) and the cause,
/// which names that address.
#[derive(Clone, Debug)]
pub(crate) struct Failed {
    pub(crate) kind: Kind,
    pub(crate) address: String,
    pub(crate) cause: String,
}

/// One attempt: `candidate` is the proxy's address, or the destination's.
pub(crate) struct Attempt<'a> {
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) proxy: Option<&'a Proxy<'a>>,
    pub(crate) candidate: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
}

impl Attempt<'_> {
    /// The connected stream, or why not.
    pub(crate) async fn run(&self) -> Result<TcpStream, Failed> {
        let candidate = self.candidate;
        let (kind, what) = match self.proxy {
            Some(_) => (Kind::Proxy, "proxy"),
            None => (Kind::Direct, "connect"),
        };
        let failed = |cause: String| Failed {
            kind,
            address: candidate.to_string(),
            cause: format!("{what} {candidate}: {cause}"),
        };
        let socket = match candidate {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|err| failed(format!("cannot make a socket: {err}")))?;
        socket
            .set_nodelay(true)
            .map_err(|err| failed(format!("cannot set TCP_NODELAY: {err}")))?;
        if let Some(source_ip) = self.source_ip {
            let local = SocketAddr::new(source_ip, 0);
            socket.bind(local).map_err(|err| Failed {
                kind: Kind::Bind {
                    unplumbed: err.kind() == std::io::ErrorKind::AddrNotAvailable,
                },
                address: source_ip.to_string(),
                cause: format!("bind {local} failed: {err}"),
            })?;
        }
        let connecting = tokio::time::timeout_at(self.deadline, socket.connect(candidate));
        let mut stream = match connecting.await {
            Err(_) => return Err(failed(self.too_late("connecting"))),
            Ok(Err(err)) => return Err(failed(err.to_string())),
            Ok(Ok(stream)) => stream,
        };
        if let Some(proxy) = self.proxy {
            let handshake = self.handshake(&mut stream, proxy);
            match tokio::time::timeout_at(self.deadline, handshake).await {
                Err(_) => return Err(failed(self.too_late("in the proxy handshake"))),
                Ok(Err(cause)) => return Err(failed(cause)),
                Ok(Ok(())) => {}
            }
        }
        Ok(stream)
    }

    fn too_late(&self, doing: &str) -> String {
        format!("the deadline ({:?}) passed {doing}", self.timeout)
    }

    /// The PROXY v2 header, or kumod's SOCKS5 exchange.
    async fn handshake(&self, stream: &mut TcpStream, proxy: &Proxy<'_>) -> Result<(), String> {
        if proxy.socks5 {
            let request = socks5::Request {
                bind: proxy.via,
                destination: self.destination,
                credentials: proxy.credentials,
            };
            return socks5::handshake(stream, &request).await;
        }
        let header = proxy_header::header(proxy.via, self.destination)
            .ok_or_else(|| "address family does not match".to_owned())?;
        stream
            .write_all(&header)
            .await
            .map_err(|err| format!("sending the PROXY v2 header: {err}"))
    }
}

/// How a connect whose every attempt failed is classified, as kumod does:
/// all binds → SOURCE_UNPLUMBED; else a proxy involved → PROXY_UNHEALTHY;
/// else CONNECT_FAILED. With it: whether the failure is reported to the
/// sidecar, and the attempt it is reported for (an EADDRNOTAVAIL bind, or
/// a proxy that was tried: never a [`Kind::ProxyRoute`]).
pub(crate) fn classify(failures: &[Failed]) -> (FailureClass, Option<&Failed>) {
    if failures.iter().all(|f| matches!(f.kind, Kind::Bind { .. })) {
        let first = failures.first();
        let unplumbed = first.is_some_and(|f| f.kind == Kind::Bind { unplumbed: true });
        return (FailureClass::SourceUnplumbed, first.filter(|_| unplumbed));
    }
    if failures
        .iter()
        .any(|f| matches!(f.kind, Kind::Proxy | Kind::ProxyRoute))
    {
        let tried = failures.iter().find(|f| f.kind == Kind::Proxy);
        return (FailureClass::ProxyUnhealthy, tried);
    }
    (FailureClass::ConnectFailed, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: Kind, address: &str) -> Failed {
        Failed {
            kind,
            address: address.into(),
            cause: String::new(),
        }
    }

    #[test]
    fn classes_follow_kumods_rules() {
        let unplumbed = failed(Kind::Bind { unplumbed: true }, "192.0.2.1");
        let denied = failed(Kind::Bind { unplumbed: false }, "192.0.2.1");
        let proxy = failed(Kind::Proxy, "127.0.0.1:1080");
        let mismatch = failed(Kind::ProxyRoute, "127.0.0.1:1080");
        let direct = failed(Kind::Direct, "127.0.0.1:25");
        let (class, report) = classify(std::slice::from_ref(&unplumbed));
        assert_eq!(class, FailureClass::SourceUnplumbed);
        assert_eq!(report.unwrap().address, "192.0.2.1");
        let (class, report) = classify(std::slice::from_ref(&denied));
        assert_eq!(
            (class, report.is_none()),
            (FailureClass::SourceUnplumbed, true)
        );
        let mixed = [unplumbed.clone(), proxy.clone()];
        let (class, report) = classify(&mixed);
        assert_eq!(class, FailureClass::ProxyUnhealthy);
        assert_eq!(report.unwrap().address, "127.0.0.1:1080");
        // Found before any connection: the class, but no report...
        let (class, report) = classify(std::slice::from_ref(&mismatch));
        assert_eq!(
            (class, report.is_none()),
            (FailureClass::ProxyUnhealthy, true)
        );
        let early = [unplumbed.clone(), mismatch.clone()];
        let (class, report) = classify(&early);
        assert_eq!(
            (class, report.is_none()),
            (FailureClass::ProxyUnhealthy, true)
        );
        // ...while a proxy tried on another destination address is.
        let both = [mismatch, proxy.clone()];
        let (class, report) = classify(&both);
        assert_eq!(class, FailureClass::ProxyUnhealthy);
        assert_eq!(report.unwrap().kind, Kind::Proxy);
        let direct_too = [unplumbed, direct.clone()];
        let (class, report) = classify(&direct_too);
        assert_eq!(
            (class, report.is_none()),
            (FailureClass::ConnectFailed, true)
        );
        assert_eq!(classify(&[direct]).0, FailureClass::ConnectFailed);
    }
}
