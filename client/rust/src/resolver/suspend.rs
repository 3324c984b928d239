//! A [`Resolver`]'s side of host-wide suspension: reporting a failure to the
//! sidecar, and the suspensions the resolver knows.

use std::time::{Duration, SystemTime};

use super::Resolver;
use crate::ResolverError;
use crate::pb::{FailureClass, ReportSourceFailureRequest, SourceSuspension};

impl Resolver {
    /// Reports a classified failure of a connect through the source `name`
    /// (for an MTA that connects by itself; [`Resolver::connect_source`]
    /// reports its own): `address` is the source address, or the proxy's
    /// `IP:port`. The sidecar's rule for the class decides whether the
    /// source is now suspended; the suspension in force after the report,
    /// if any, is returned and applied to this resolver at once.
    pub async fn report_failure(
        &self,
        name: &str,
        failure_class: FailureClass,
        address: &str,
        message: &str,
    ) -> Result<Option<SourceSuspension>, ResolverError> {
        let mut client = self.client();
        let request = self.request(ReportSourceFailureRequest {
            name: name.to_owned(),
            failure_class: failure_class.into(),
            address: address.to_owned(),
            message: message.to_owned(),
        });
        let call = client.report_source_failure(request);
        let reply = self.deadline(call, name).await?.into_inner();
        if let Some(suspension) = &reply.suspension {
            let now = SystemTime::now();
            self.suspensions()
                .add(std::slice::from_ref(suspension), now);
        }
        Ok(reply.suspension)
    }

    /// The suspensions this resolver knows (from the invalidation stream,
    /// pool answers and reports), by name; ended ones are forgotten.
    pub fn suspended(&self) -> Vec<SourceSuspension> {
        self.suspensions().list(SystemTime::now())
    }

    /// The suspension of the source `name` this resolver knows, if any.
    pub fn suspension(&self, name: &str) -> Option<SourceSuspension> {
        let now = SystemTime::now();
        self.suspensions().get(name, now).map(|(s, _)| s)
    }

    /// Waits until this resolver knows `name` to be suspended: when it
    /// first knew it, or `None` after `timeout`. Woken by every change
    /// (and the stream's messages), and checks at least every millisecond.
    pub async fn wait_suspended(&self, name: &str, timeout: Duration) -> Option<SystemTime> {
        let store = self.suspensions();
        let mut changes = store.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(learnt) = store.learnt(name, SystemTime::now()) {
                return Some(learnt);
            }
            let tick = deadline.min(tokio::time::Instant::now() + Duration::from_millis(1));
            let _ = tokio::time::timeout_at(tick, changes.changed()).await;
            if tokio::time::Instant::now() >= deadline {
                return store.learnt(name, SystemTime::now());
            }
        }
    }
}
