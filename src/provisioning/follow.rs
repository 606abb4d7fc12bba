//! What to do when Lucca tells us about one account outside a sign-in: the directory sync, a
//! webhook's re-read and the refresh re-check all end here, so they agree. The account's links
//! are refreshed (status, `checked_at`), and a person whose contract has ended or whose account
//! is gone loses their access through [`AccessRevocation`], once per change, audited.

use std::sync::{Arc, RwLock};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::decision;
use super::revocation::{AccessRevocation, LinkOnlyRevocation, PersonRef, RevocationReason};
use crate::lucca::{ContractStatus, LuccaUser};
use crate::store::{AuditEvent, AuditLog, LuccaLinks, Store, StoreError};

/// The link status of an account Lucca no longer has (next to `active`, `ended`, `not_started`).
pub const REMOVED: &str = "removed";

/// What Lucca said about an account.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    Present(&'a LuccaUser),
    /// A read by id answered 404.
    Gone {
        lucca_id: i64,
    },
}

/// What came of it, for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// Nobody signs in with this account through Passerelle: nothing to do.
    NotLinked,
    Unchanged,
    StatusChanged,
    Revoked,
    /// The revocation failed: the link is left as it was, so the next pass tries again.
    RevokeFailed,
}

/// Counts of a run (a sync, a batch of webhook events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowCounts {
    /// Accounts Lucca returned.
    pub seen: u64,
    /// Of those, accounts somebody signs in with.
    pub linked: u64,
    pub status_changed: u64,
    pub revoked: u64,
    pub revoke_failed: u64,
    /// Lucca roles written (`[lucca] apply_roles`).
    pub roles_changed: u64,
    pub errors: u64,
}

impl FollowCounts {
    pub fn add(&mut self, followed: Followed) {
        self.seen += 1;
        match followed {
            Followed::NotLinked => return,
            Followed::Unchanged => {}
            Followed::StatusChanged => self.status_changed += 1,
            Followed::Revoked => self.revoked += 1,
            Followed::RevokeFailed => self.revoke_failed += 1,
        }
        self.linked += 1;
    }
}

pub struct Follower {
    links: Arc<dyn LuccaLinks>,
    audit: Arc<dyn AuditLog>,
    /// Swappable so the composition root can wire the access side after building rooms.
    revocation: RwLock<Arc<dyn AccessRevocation>>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

impl Follower {
    /// Revoking through [`LinkOnlyRevocation`] until [`set_revocation`](Self::set_revocation).
    pub fn new(store: &Store) -> Follower {
        Follower {
            links: store.lucca_links().clone(),
            audit: store.audit().clone(),
            revocation: RwLock::new(Arc::new(LinkOnlyRevocation)),
        }
    }

    pub fn set_revocation(&self, revocation: Arc<dyn AccessRevocation>) {
        *self.revocation.write().unwrap_or_else(|e| e.into_inner()) = revocation;
    }

    fn revocation(&self) -> Arc<dyn AccessRevocation> {
        self.revocation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Apply what Lucca said about one account to everyone linked to it. `source` names the
    /// caller in the audit log (`sync`, `webhook`, `refresh`, `sign_in`).
    pub async fn observe(
        &self,
        seen: Seen<'_>,
        today: NaiveDate,
        source: &'static str,
    ) -> Result<Followed, StoreError> {
        let (lucca_id, status, reason) = match seen {
            Seen::Present(user) => match user.contract_status(today) {
                ContractStatus::Ended(on) => (
                    user.id,
                    "ended",
                    Some(RevocationReason::ContractEnded { on }),
                ),
                other => (user.id, decision::link_status(other), None),
            },
            Seen::Gone { lucca_id } => (
                lucca_id,
                REMOVED,
                Some(RevocationReason::RemovedFromDirectory),
            ),
        };
        let links = self.links.with_lucca_id(lucca_id).await?;
        if links.is_empty() {
            return Ok(Followed::NotLinked);
        }
        let mut result = Followed::Unchanged;
        for link in links {
            let subject = link.subject.as_str();
            let changed = link.status != status;
            if let Some(reason) = reason.clone().filter(|_| changed) {
                let revoked = self
                    .revoke(
                        subject,
                        link.email.as_deref(),
                        lucca_id,
                        &link.status,
                        reason,
                        source,
                    )
                    .await;
                if !revoked {
                    if result != Followed::Revoked {
                        result = Followed::RevokeFailed;
                    }
                    continue;
                }
                result = Followed::Revoked;
            } else if changed && result == Followed::Unchanged {
                result = Followed::StatusChanged;
            }
            self.links
                .put(subject, lucca_id, link.email.as_deref(), status)
                .await?;
        }
        Ok(result)
    }

    /// End one subject's access through the port, audited; `false` when it failed (the
    /// caller leaves the link as it was, so a later pass tries again).
    pub async fn revoke(
        &self,
        subject: &str,
        email: Option<&str>,
        lucca_id: i64,
        previous_status: &str,
        reason: RevocationReason,
        source: &'static str,
    ) -> bool {
        let person = PersonRef::new(Some(subject), email);
        let detail = json!({"source": source, "lucca_id": lucca_id, "from": previous_status, "reason": reason});
        match self
            .revocation()
            .revoke_person(&person, reason.clone())
            .await
        {
            Ok(summary) => {
                metrics::counter!("passerelle_revocations_total", "reason" => reason.as_str(), "source" => source).increment(1);
                self.record(
                    subject,
                    "requested",
                    extend(detail, json!({"revoked": summary})),
                )
                .await;
                tracing::info!(
                    subject,
                    lucca_id,
                    reason = reason.as_str(),
                    source,
                    "access revoked: Lucca says this person has left"
                );
                true
            }
            Err(e) => {
                metrics::counter!("passerelle_revocations_failed_total", "source" => source)
                    .increment(1);
                self.record(
                    subject,
                    "failed",
                    extend(detail, json!({"error": e.to_string()})),
                )
                .await;
                tracing::error!(subject, lucca_id, error = %e, "revoking a leaver's access failed; retried at the next pass");
                false
            }
        }
    }

    async fn record(&self, subject: &str, outcome: &str, detail: serde_json::Value) {
        let entry = AuditEvent {
            event: "revocation",
            outcome,
            subject: Some(subject),
            detail: Some(detail),
            ..Default::default()
        };
        if let Err(e) = self.audit.record(entry).await {
            tracing::warn!(error = %e, "could not write the audit log");
        }
    }
}

fn extend(mut target: serde_json::Value, more: serde_json::Value) -> serde_json::Value {
    if let (Some(t), serde_json::Value::Object(m)) = (target.as_object_mut(), more) {
        t.extend(m);
    }
    target
}

#[cfg(test)]
mod tests {
    use super::super::revocation::RecordingRevocation;
    use super::*;
    use crate::lucca::parse_lucca_datetime;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    async fn setup() -> (Store, Follower, Arc<RecordingRevocation>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let follower = Follower::new(&store);
        let recording = Arc::new(RecordingRevocation::default());
        follower.set_revocation(recording.clone());
        (store, follower, recording, dir)
    }

    fn user(id: i64, end: Option<&str>) -> LuccaUser {
        let mut u = LuccaUser::with_id(id);
        u.dt_contract_start = parse_lucca_datetime("2020-01-01");
        u.dt_contract_end = end.and_then(parse_lucca_datetime);
        u
    }

    #[tokio::test]
    async fn a_leaver_is_revoked_once_and_audited() {
        let (store, follower, recording, _dir) = setup().await;
        let links = store.lucca_links();
        links
            .put("alice", 2, Some("alice@acme.test"), "active")
            .await
            .unwrap();
        links.put("alice-corp", 2, None, "active").await.unwrap();
        let ended = user(2, Some("2026-11-30"));
        let first = follower
            .observe(Seen::Present(&ended), today(), "sync")
            .await
            .unwrap();
        assert_eq!(first, Followed::Revoked);
        let calls = recording.calls();
        assert_eq!(calls.len(), 2, "both subjects of the account");
        assert_eq!(
            calls[0],
            (
                PersonRef::new(Some("alice"), Some("alice@acme.test")),
                RevocationReason::ContractEnded {
                    on: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
                }
            )
        );
        assert_eq!(links.get("alice").await.unwrap().unwrap().status, "ended");
        // Seen again (a webhook after the sync): nothing more.
        let again = follower
            .observe(Seen::Present(&ended), today(), "webhook")
            .await
            .unwrap();
        assert_eq!(again, Followed::Unchanged);
        assert_eq!(recording.calls().len(), 2);
        let audit: Vec<_> = store
            .audit()
            .recent(10, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "revocation")
            .collect();
        assert_eq!(audit.len(), 2);
        assert!(audit[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("contract_ended"));

        // The last day worked is still a working day.
        links.put("bob", 3, None, "active").await.unwrap();
        let last_day = user(3, Some("2026-12-01"));
        assert_eq!(
            follower
                .observe(Seen::Present(&last_day), today(), "sync")
                .await
                .unwrap(),
            Followed::Unchanged
        );
    }

    #[tokio::test]
    async fn a_removed_account_is_revoked_and_a_failure_is_retried() {
        let (store, follower, recording, _dir) = setup().await;
        store
            .lucca_links()
            .put("carol", 9, None, "active")
            .await
            .unwrap();
        recording
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let gone = Seen::Gone { lucca_id: 9 };
        assert_eq!(
            follower.observe(gone, today(), "webhook").await.unwrap(),
            Followed::RevokeFailed
        );
        assert_eq!(
            store
                .lucca_links()
                .get("carol")
                .await
                .unwrap()
                .unwrap()
                .status,
            "active",
            "left for a retry"
        );
        recording
            .fail
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            follower.observe(gone, today(), "sync").await.unwrap(),
            Followed::Revoked
        );
        assert_eq!(
            recording.calls()[0].1,
            RevocationReason::RemovedFromDirectory
        );
        assert_eq!(
            store
                .lucca_links()
                .get("carol")
                .await
                .unwrap()
                .unwrap()
                .status,
            REMOVED
        );
        // Unlinked accounts cost nothing.
        assert_eq!(
            follower
                .observe(Seen::Present(&user(77, None)), today(), "sync")
                .await
                .unwrap(),
            Followed::NotLinked
        );
        // A future joiner is recorded, not revoked.
        store
            .lucca_links()
            .put("dan", 10, None, "active")
            .await
            .unwrap();
        let mut future = user(10, None);
        future.dt_contract_start = parse_lucca_datetime("2027-01-04");
        assert_eq!(
            follower
                .observe(Seen::Present(&future), today(), "sync")
                .await
                .unwrap(),
            Followed::StatusChanged
        );
        assert_eq!(recording.calls().len(), 1);
    }
}
