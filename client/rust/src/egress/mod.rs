//! Connecting through an egress source as kumod's `EgressSource::connect_to`
//! does (docs/clients/connect.md): [`Resolver::connect_source`] and
//! [`Resolver::connect_name`].
//!
//! In order: a source known to be suspended fails at once; `remote_port`
//! replaces the destination's port; the destination's addresses are tried in
//! turn, each through the source's proxy (HAProxy's PROXY v2 header, or
//! kumod's SOCKS5 exchange; a proxy host name is resolved now and each of
//! its addresses tried) or directly, binding `source_address` first, all
//! within one deadline. When every attempt failed the error is classified
//! (SOURCE_UNPLUMBED, PROXY_UNHEALTHY, CONNECT_FAILED) and, when kumod would
//! record it (an EADDRNOTAVAIL bind; a proxy that was tried, not one found
//! unusable before any connection), reported to the sidecar before it is
//! returned.

mod attempt;
mod host_name;
mod proxy_header;
mod route;
mod socks5;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::time::Instant;
use tonic::Code;

use crate::pb::{EgressSource, FailureClass, SourceSuspension};
use crate::{Resolver, ResolverError, suspension};
use attempt::{Attempt, Failed, Kind, classify};
use route::{Route, same_family};

/// The reason of a connect whose bind of `source_address` failed.
pub const SOURCE_UNPLUMBED: &str = "SOURCE_UNPLUMBED";
/// The reason of a connect whose proxy could not be reached or used.
pub const PROXY_UNHEALTHY: &str = "PROXY_UNHEALTHY";
/// The reason of a connect that could not reach the destination directly.
pub const CONNECT_FAILED: &str = "CONNECT_FAILED";
/// The reason of a connect through a source known to be suspended.
pub const SOURCE_SUSPENDED: &str = "SOURCE_SUSPENDED";

/// The least time a failure report gets, even when the connect's deadline
/// has passed (a proxy that never answers must still be reported).
const REPORT_GRACE: Duration = Duration::from_millis(250);

/// A connection made through a source, ready for SMTP: the next byte read
/// is the server's banner.
#[derive(Debug)]
pub struct Connected {
    /// The connection (to the destination, or to the proxy that relays it).
    pub stream: TcpStream,
    /// The name to say in EHLO: the source's `ehlo_domain`, else this host's name.
    pub ehlo: String,
}

/// The reason that goes with a failure class.
pub fn reason_of(class: FailureClass) -> &'static str {
    match class {
        FailureClass::SourceUnplumbed => SOURCE_UNPLUMBED,
        FailureClass::ProxyUnhealthy => PROXY_UNHEALTHY,
        FailureClass::ConnectFailed | FailureClass::Unspecified => CONNECT_FAILED,
    }
}

impl Resolver {
    /// Connects to `destination` (`HOST:PORT`, HOST an IP literal or a DNS
    /// name) through the source called `name`, resolved first with
    /// [`Resolver::get`] (from the cache when it is on), all within the
    /// `connect_timeout` (see [`Resolver::with_connect_timeout`]).
    pub async fn connect_name(
        &self,
        name: &str,
        destination: &str,
    ) -> Result<Connected, ResolverError> {
        let timeout = self.connect_timeout();
        let deadline = Instant::now() + timeout;
        let source = match tokio::time::timeout_at(deadline, self.get(name)).await {
            Ok(source) => source?,
            Err(_) => {
                return Err(ResolverError {
                    name: name.to_owned(),
                    ..ResolverError::local(
                        Code::DeadlineExceeded,
                        format!("source {name}: no definition within {timeout:?}"),
                    )
                });
            }
        };
        self.connect_until(&source, destination, deadline).await
    }

    /// Connects to `destination` through `source`, as kumod does, within the
    /// `connect_timeout`. Fails with `UNAVAILABLE` and the reason
    /// [`SOURCE_SUSPENDED`], [`SOURCE_UNPLUMBED`], [`PROXY_UNHEALTHY`] or
    /// [`CONNECT_FAILED`]; `INVALID_ARGUMENT` for a malformed destination.
    pub async fn connect_source(
        &self,
        source: &EgressSource,
        destination: &str,
    ) -> Result<Connected, ResolverError> {
        let deadline = Instant::now() + self.connect_timeout();
        self.connect_until(source, destination, deadline).await
    }

    async fn connect_until(
        &self,
        source: &EgressSource,
        destination: &str,
        deadline: Instant,
    ) -> Result<Connected, ResolverError> {
        let name = source.name.as_str();
        let now = SystemTime::now();
        if let Some((suspension, until)) = self.suspensions().get(name, now) {
            return Err(suspended(&suspension, until, now));
        }
        let Some((host, port)) = route::split_destination(destination) else {
            return Err(ResolverError {
                name: name.to_owned(),
                ..ResolverError::local(
                    Code::InvalidArgument,
                    format!("destination {destination:?} is not HOST:PORT"),
                )
            });
        };
        let port = match source.remote_port.map(u16::try_from) {
            None => port,
            Some(Ok(remote_port)) => remote_port,
            Some(Err(_)) => {
                return Err(ResolverError {
                    name: name.to_owned(),
                    ..ResolverError::local(
                        Code::InvalidArgument,
                        format!("source {name}: remote_port is above 65535"),
                    )
                });
            }
        };
        let failures = match self.attempts(source, host, port, deadline).await {
            Ok(stream) => {
                let ehlo = match &source.ehlo_domain {
                    Some(ehlo) => ehlo.clone(),
                    None => host_name::get().to_owned(),
                };
                return Ok(Connected { stream, ehlo });
            }
            Err(failures) => failures,
        };
        let (class, reported) = classify(&failures);
        let causes: Vec<&str> = failures.iter().map(|f| f.cause.as_str()).collect();
        let error = ResolverError {
            code: Code::Unavailable,
            reason: Some(reason_of(class).to_owned()),
            message: format!("source {name}: {}", causes.join("; ")),
            name: name.to_owned(),
        };
        if let Some(failed) = reported {
            let left = deadline.saturating_duration_since(Instant::now());
            let reporter = self.clone().with_timeout(left.max(REPORT_GRACE));
            let report = reporter.report_failure(name, class, &failed.address, &error.message);
            if let Err(err) = report.await {
                tracing::debug!(source = name, error = %err, "reporting a connect failure failed");
            }
        }
        Err(error)
    }

    /// Tries each destination address (each proxy candidate for each) in
    /// turn: the first stream connected, or every attempt's failure.
    async fn attempts(
        &self,
        source: &EgressSource,
        host: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<TcpStream, Vec<Failed>> {
        let route = Route::of(source).map_err(|failed| vec![failed])?;
        let direct = |cause: String| Failed {
            kind: Kind::Direct,
            address: host.to_owned(),
            cause,
        };
        let mut destinations = route::addresses(host, port, deadline)
            .await
            .map_err(|cause| vec![direct(cause)])?;
        if let (None, Some(source_ip)) = (route.proxy, route.source_ip) {
            destinations.retain(|d| same_family(d.ip(), source_ip));
            if destinations.is_empty() {
                return Err(vec![direct(format!(
                    "{host} has no address of source_address {source_ip}'s family"
                ))]);
            }
        }
        let mut failures = Vec::new();
        let mut proxy_candidates: Option<Vec<SocketAddr>> = None;
        'destinations: for destination in destinations {
            let candidates = match &route.proxy {
                None => vec![destination],
                Some(proxy) if !same_family(proxy.via, destination.ip()) => {
                    failures.push(Failed {
                        kind: Kind::ProxyRoute,
                        address: proxy.server.to_owned(),
                        cause: format!(
                            "proxy source address {} and destination {destination}: \
                             address family does not match",
                            proxy.via
                        ),
                    });
                    continue;
                }
                Some(proxy) => match &proxy_candidates {
                    Some(known) => known.clone(),
                    None => match route::proxy_candidates(proxy, route.source_ip, deadline).await {
                        Ok(found) => proxy_candidates.insert(found).clone(),
                        Err(failed) => {
                            failures.push(failed);
                            break;
                        }
                    },
                },
            };
            for candidate in candidates {
                let attempt = Attempt {
                    source_ip: route.source_ip,
                    proxy: route.proxy.as_ref(),
                    candidate,
                    destination,
                    deadline,
                    timeout: self.connect_timeout(),
                };
                match attempt.run().await {
                    Ok(stream) => return Ok(stream),
                    Err(failed) => {
                        // Every candidate has source_address's family: a
                        // bind that failed would fail the same way again.
                        let stop =
                            matches!(failed.kind, Kind::Bind { .. }) || Instant::now() >= deadline;
                        failures.push(failed);
                        if stop {
                            break 'destinations;
                        }
                    }
                }
            }
        }
        Err(failures)
    }
}

/// The UNAVAILABLE / SOURCE_SUSPENDED error of a source suspended until `until`.
fn suspended(suspension: &SourceSuspension, until: SystemTime, now: SystemTime) -> ResolverError {
    let class = FailureClass::try_from(suspension.failure_class).map_or(CONNECT_FAILED, reason_of);
    let mut message = format!(
        "source {} is suspended until {} after {class}",
        suspension.name,
        suspension::when(until, now)
    );
    if !suspension.reason.is_empty() {
        message.push_str(": ");
        message.push_str(&suspension.reason);
    }
    ResolverError {
        code: Code::Unavailable,
        reason: Some(SOURCE_SUSPENDED.to_owned()),
        message,
        name: suspension.name.clone(),
    }
}
