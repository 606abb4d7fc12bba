//! Revoking a person: login's sessions and oidc's grants, composed here because no room may
//! import the other front end. Installed as provisioning's [`AccessRevocation`] (the sync,
//! webhooks, sign-in and refresh re-checks) and behind `POST /admin/people/{email}/revoke`.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde_json::json;

use crate::login::Live;
use crate::provisioning::revocation::{
    AccessRevocation, PersonRef, RevocationError, RevocationReason, RevokeSummary,
};
use crate::store::{AuditEvent, Store, StoreError};

/// The longest email the admin endpoint looks up.
const MAX_EMAIL_BYTES: usize = 320;

pub struct PersonRevoker {
    store: Store,
    live: Arc<ArcSwap<Live>>,
}

impl PersonRevoker {
    pub fn new(store: Store, live: Arc<ArcSwap<Live>>) -> PersonRevoker {
        PersonRevoker { store, live }
    }

    /// Every subject the person is known by: the one given, those that signed in with the
    /// email (matched case-insensitively), and the local directory's.
    async fn subjects(&self, person: &PersonRef) -> Result<BTreeSet<String>, StoreError> {
        let mut subjects: BTreeSet<String> = person.subject.iter().cloned().collect();
        if let Some(email) = person.email.as_deref() {
            subjects.extend(
                self.store
                    .person_revocations()
                    .subjects_with_email(email)
                    .await?,
            );
            if let Some(local) = self.live.load().directory.by_name(email) {
                subjects.insert(local.subject);
            }
        }
        Ok(subjects)
    }

    /// Does Passerelle know anything of this subject (a sign-in, a grant, a Lucca link)?
    async fn known(&self, subject: &str, by_email: &BTreeSet<String>) -> Result<bool, StoreError> {
        Ok(by_email.contains(subject)
            || !self
                .store
                .oauth()
                .grants_of_subject(subject)
                .await?
                .is_empty()
            || self.store.lucca_links().get(subject).await?.is_some())
    }

    async fn revoke_subject(
        &self,
        subject: &str,
        reason: &RevocationReason,
    ) -> Result<RevokeSummary, StoreError> {
        let sessions = crate::login::revoke_sessions(&self.store, subject).await?;
        let tokens =
            crate::oidc::revocation::revoke_subject(&self.store, subject, reason.as_str()).await?;
        let summary = RevokeSummary {
            sessions: u64::from(sessions),
            grants: tokens.grants,
            access_tokens: tokens.access_tokens,
            refresh_tokens: tokens.refresh_tokens,
        };
        let detail = json!({"reason": reason, "revoked": summary});
        if let Err(e) = self
            .store
            .audit()
            .record(AuditEvent {
                event: "revoked",
                outcome: reason.as_str(),
                subject: Some(subject),
                detail: Some(detail),
                ..Default::default()
            })
            .await
        {
            tracing::warn!(error = %e, "could not write the audit log");
        }
        tracing::info!(
            subject,
            reason = reason.as_str(),
            grants = summary.grants,
            "access revoked"
        );
        Ok(summary)
    }

    async fn revoke_all(
        &self,
        subjects: &BTreeSet<String>,
        reason: &RevocationReason,
    ) -> Result<RevokeSummary, StoreError> {
        let mut total = RevokeSummary::default();
        for subject in subjects {
            let one = self.revoke_subject(subject, reason).await?;
            total.sessions += one.sessions;
            total.grants += one.grants;
            total.access_tokens += one.access_tokens;
            total.refresh_tokens += one.refresh_tokens;
        }
        Ok(total)
    }

    /// The admin revoke: `None` when Passerelle knows nothing of anyone with this email.
    pub async fn revoke_email(
        &self,
        email: &str,
        who: &str,
    ) -> Result<Option<(Vec<String>, RevokeSummary)>, StoreError> {
        let person = PersonRef::new(None, Some(email));
        let by_email: BTreeSet<String> = self
            .store
            .person_revocations()
            .subjects_with_email(email)
            .await?
            .into_iter()
            .collect();
        let mut known = BTreeSet::new();
        for subject in self.subjects(&person).await? {
            if self.known(&subject, &by_email).await? {
                known.insert(subject);
            }
        }
        if known.is_empty() {
            return Ok(None);
        }
        let reason = RevocationReason::Admin { who: who.into() };
        let summary = self.revoke_all(&known, &reason).await?;
        Ok(Some((known.into_iter().collect(), summary)))
    }
}

#[async_trait]
impl AccessRevocation for PersonRevoker {
    async fn revoke_person(
        &self,
        person: &PersonRef,
        reason: RevocationReason,
    ) -> Result<RevokeSummary, RevocationError> {
        let subjects = self
            .subjects(person)
            .await
            .map_err(|e| RevocationError::Failed(e.to_string()))?;
        self.revoke_all(&subjects, &reason)
            .await
            .map_err(|e| RevocationError::Failed(e.to_string()))
    }
}

pub(super) mod http {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::Json;
    use serde_json::json;

    use super::MAX_EMAIL_BYTES;
    use crate::app::AppState;
    use crate::web::{Admin, AdminError};

    /// `POST /admin/people/{email}/revoke`.
    pub async fn revoke(
        _: Admin,
        State(state): State<AppState>,
        Path(email): Path<String>,
    ) -> Result<Json<serde_json::Value>, AdminError> {
        let email = email.trim();
        if email.is_empty() || email.len() > MAX_EMAIL_BYTES || !email.contains('@') {
            return Err(AdminError(
                StatusCode::BAD_REQUEST,
                format!("`{email:.80}` is not an email address"),
            ));
        }
        match state.revoker.revoke_email(email, "admin API").await {
            Ok(Some((subjects, summary))) => {
                metrics::counter!("passerelle_revocations_total", "reason" => "admin", "source" => "admin").increment(1);
                Ok(Json(
                    json!({"email": email, "subjects": subjects, "revoked": summary}),
                ))
            }
            Ok(None) => Err(AdminError(
                StatusCode::NOT_FOUND,
                format!("Passerelle knows nobody with the email {email}: no session, grant or Lucca link"),
            )),
            Err(e) => Err(AdminError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the revocation failed: {e}"),
            )),
        }
    }
}
