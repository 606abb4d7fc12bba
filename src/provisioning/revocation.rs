//! The port through which provisioning ends a person's access when Lucca says they have left.
//!
//! The directory sync, Lucca webhooks, sign-in and the refresh re-check learn that someone's
//! contract has ended (or that they were removed from Lucca); they call
//! [`AccessRevocation::revoke_person`], and the access side (sessions, grants, access and
//! refresh tokens) implements it. Provisioning never touches sessions or tokens itself.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::Serialize;

/// Whom to revoke: our subject and/or their email (either may be unknown to the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl PersonRef {
    pub fn new(subject: Option<&str>, email: Option<&str>) -> PersonRef {
        PersonRef {
            subject: subject.map(str::to_owned),
            email: email.map(str::to_owned),
        }
    }
}

/// Why access ends; written to the audit log as `{"reason": …, …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RevocationReason {
    /// Lucca's contract end date has passed (the last day worked was `on`).
    ContractEnded { on: NaiveDate },
    /// The account was disabled (a directory or an upstream says so).
    Disabled,
    /// Lucca no longer has the account (deleted, or hidden from the API key).
    RemovedFromDirectory,
    /// An admin asked (`POST /admin/people/{email}/revoke`).
    Admin { who: String },
}

impl RevocationReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            RevocationReason::ContractEnded { .. } => "contract_ended",
            RevocationReason::Disabled => "disabled",
            RevocationReason::RemovedFromDirectory => "removed_from_directory",
            RevocationReason::Admin { .. } => "admin",
        }
    }
}

/// What was ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevokeSummary {
    pub sessions: u64,
    pub grants: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation failed: {0}")]
    Failed(String),
}

/// Ends every session, grant, access token and refresh token of one person, and audits it.
/// Must be idempotent: the callers may ask twice (a webhook and the sync) for the same person.
#[async_trait]
pub trait AccessRevocation: Send + Sync {
    async fn revoke_person(
        &self,
        person: &PersonRef,
        reason: RevocationReason,
    ) -> Result<RevokeSummary, RevocationError>;
}

/// Stands in until the access side is wired: revokes nothing itself and says so in the log.
/// Provisioning still records the person's link as `ended`, which the refresh grant already
/// refuses.
#[derive(Debug, Default)]
pub struct LinkOnlyRevocation;

#[async_trait]
impl AccessRevocation for LinkOnlyRevocation {
    async fn revoke_person(
        &self,
        person: &PersonRef,
        reason: RevocationReason,
    ) -> Result<RevokeSummary, RevocationError> {
        tracing::warn!(
            subject = person.subject.as_deref().unwrap_or(""),
            reason = reason.as_str(),
            "access revocation is not wired: sessions and tokens are left; the refresh grant refuses this person from now on"
        );
        Ok(RevokeSummary::default())
    }
}

/// Records every call, for tests of the callers.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingRevocation {
    pub calls: std::sync::Mutex<Vec<(PersonRef, RevocationReason)>>,
    /// When set, every call fails (the caller must retry later).
    pub fail: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl RecordingRevocation {
    pub fn calls(&self) -> Vec<(PersonRef, RevocationReason)> {
        self.calls.lock().unwrap().clone()
    }
}

#[cfg(test)]
#[async_trait]
impl AccessRevocation for RecordingRevocation {
    async fn revoke_person(
        &self,
        person: &PersonRef,
        reason: RevocationReason,
    ) -> Result<RevokeSummary, RevocationError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RevocationError::Failed("recording: told to fail".into()));
        }
        self.calls.lock().unwrap().push((person.clone(), reason));
        Ok(RevokeSummary {
            sessions: 1,
            ..Default::default()
        })
    }
}
