//! The identity pipeline between authentication and a protocol answer: take the signed-in
//! person's current identity, apply policy and the group→role table, and (with JIT) make sure
//! their Lucca account is right. Both front ends call [`release`]; neither knows the details.

use axum::http::StatusCode;

use crate::identity::{map_claims, Identity, Mapped, Source};
use crate::web::{AppState, PageError};

/// Why a signed-in person may not be signed in to the application.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the account no longer exists or is disabled")]
    AccountGone,
}

impl Refusal {
    pub fn page(&self) -> PageError {
        match self {
            Refusal::AccountGone => PageError::new(
                StatusCode::FORBIDDEN,
                "Your account is not active",
                "Your account has been removed or disabled since you signed in. Contact your IT team if you think this is a mistake.",
            )
            .with_retry("/logout"),
        }
    }
}

/// The identity as it is now (a local user may have been edited or removed since sign-in).
pub fn current_identity(state: &AppState, identity: &Identity) -> Result<Identity, Refusal> {
    match &identity.source {
        Source::Local => state
            .live()
            .directory
            .by_subject(&identity.subject)
            .ok_or(Refusal::AccountGone),
        Source::Upstream { .. } => Ok(identity.clone()),
    }
}

/// Policy + mapping for a signed-in identity.
pub async fn release(state: &AppState, identity: &Identity) -> Result<(Identity, Mapped), Refusal> {
    let identity = current_identity(state, identity)?;
    let live = state.live();
    let mapped = map_claims(&identity, &live.role_mapping, &live.claims);
    if mapped.claims.roles_dropped > 0 {
        tracing::warn!(
            subject = %identity.subject,
            dropped = mapped.claims.roles_dropped,
            "role list cut to claims.max_roles"
        );
    }
    Ok((identity, mapped))
}
