//! The identity pipeline between authentication and a protocol answer: take the signed-in
//! person's current identity, apply policy and the group→role table, and (with JIT) make sure
//! their Lucca account is right. Both front ends call [`release`]; neither knows the details.

use axum::http::StatusCode;
use chrono::NaiveDate;

use crate::identity::{map_claims, Identity, Mapped, Source};
use crate::provisioning::Denied;
use crate::web::{AppState, PageError};

/// Why a signed-in person may not be signed in to the application.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the account no longer exists or is disabled")]
    AccountGone,
    #[error("the Lucca contract has ended")]
    ContractEnded {
        on: Option<NaiveDate>,
        contact: String,
    },
    #[error("the Lucca contract has not started yet")]
    ContractNotStarted {
        on: Option<NaiveDate>,
        contact: String,
    },
    #[error("several Lucca accounts match this person")]
    SeveralLuccaAccounts { contact: String },
    #[error("the person has no Lucca account")]
    NoLuccaAccount { contact: String },
    #[error("the Lucca account carries another email address or login")]
    LuccaIdentifierDiffers { contact: String },
    #[error("Lucca cannot be reached")]
    LuccaUnavailable,
    #[error("the Lucca account could not be checked or created: {reason}")]
    LuccaFailed { reason: String, contact: String },
    #[error(transparent)]
    Storage(#[from] crate::store::StoreError),
}

impl Refusal {
    fn from_jit(denied: Denied, contact: &str) -> Refusal {
        let contact = contact.to_string();
        match denied {
            Denied::ContractEnded { on } => Refusal::ContractEnded { on, contact },
            Denied::ContractNotStarted { on } => Refusal::ContractNotStarted { on, contact },
            Denied::SeveralAccounts { .. } => Refusal::SeveralLuccaAccounts { contact },
            Denied::NoAccount => Refusal::NoLuccaAccount { contact },
            Denied::IdentifierDiffers => Refusal::LuccaIdentifierDiffers { contact },
            Denied::Unavailable => Refusal::LuccaUnavailable,
            Denied::Failed(reason) => Refusal::LuccaFailed { reason, contact },
            Denied::Store(e) => Refusal::Storage(e),
        }
    }

    pub fn page(&self) -> PageError {
        let refused = |title: &str, message: String| {
            PageError::new(StatusCode::FORBIDDEN, title, message).with_retry("/logout")
        };
        match self {
            Refusal::AccountGone => PageError::new(
                StatusCode::FORBIDDEN,
                "Your account is not active",
                "Your account has been removed or disabled since you signed in. Contact your IT team if you think this is a mistake.",
            )
            .with_retry("/logout"),
            Refusal::ContractEnded { on, contact } => refused(
                "Your Lucca access has ended",
                format!(
                    "According to Lucca, your contract {}, so you can no longer sign in to Lucca. If you think this is a mistake, contact {contact}.",
                    match on {
                        Some(day) => format!("ended on {}", human_date(*day)),
                        None => "has ended".into(),
                    }
                ),
            ),
            Refusal::ContractNotStarted { on, contact } => refused(
                "Your Lucca account is not open yet",
                format!(
                    "According to Lucca, your contract {}. You can sign in to Lucca from that day. If this date is wrong, contact {contact}.",
                    match on {
                        Some(day) => format!("starts on {}", human_date(*day)),
                        None => "has not started yet".into(),
                    }
                ),
            ),
            Refusal::SeveralLuccaAccounts { contact } => refused(
                "Several Lucca accounts match you",
                format!(
                    "Lucca has more than one account with your email address or login, so it cannot tell which one is yours. Nothing was changed. Ask {contact} to correct the accounts in Lucca, then sign in again."
                ),
            ),
            Refusal::NoLuccaAccount { contact } => refused(
                "You have no Lucca account yet",
                format!(
                    "You signed in correctly, but there is no Lucca account for you yet, and Passerelle does not create accounts here. Ask {contact} to create yours in Lucca, then sign in again."
                ),
            ),
            Refusal::LuccaIdentifierDiffers { contact } => refused(
                "Your Lucca account uses another address",
                format!(
                    "Your Lucca account is registered under another email address or login than the one you signed in with, so Lucca would not recognise you. Ask {contact} to correct it in Lucca."
                ),
            ),
            Refusal::LuccaUnavailable => PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Lucca cannot be reached right now",
                "You signed in correctly, but Passerelle could not check your Lucca account because Lucca is not answering. Nothing was lost: please go back to Lucca and try again in a minute.",
            ),
            Refusal::LuccaFailed { contact, .. } => PageError::new(
                StatusCode::BAD_GATEWAY,
                "Your Lucca account could not be set up",
                format!(
                    "You signed in correctly, but Passerelle could not check or create your Lucca account because of a problem it has logged for the administrators. Please contact {contact}."
                ),
            ),
            Refusal::Storage(e) => PageError::internal("storage", e),
        }
    }
}

/// "31 December 2022": unambiguous whatever the reader's country.
fn human_date(day: NaiveDate) -> String {
    day.format("%-d %B %Y").to_string()
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

/// Policy + mapping + JIT for a signed-in identity.
pub async fn release(state: &AppState, identity: &Identity) -> Result<(Identity, Mapped), Refusal> {
    let identity = current_identity(state, identity)?;
    let mapped = {
        let live = state.live();
        map_claims(&identity, &live.role_mapping, &live.claims)
    };
    if mapped.claims.roles_dropped > 0 {
        tracing::warn!(
            subject = %identity.subject,
            dropped = mapped.claims.roles_dropped,
            "role list cut to claims.max_roles"
        );
    }
    if let Some(jit) = &state.provisioning {
        jit.at_sign_in(&mapped.claims)
            .await
            .map_err(|denied| Refusal::from_jit(denied, jit.support_contact()))?;
    }
    Ok((identity, mapped))
}

/// For a grant being renewed without the person (the refresh-token grant): the current
/// identity, refused when JIT last found their Lucca contract ended or not yet started. Reads
/// what the last sign-in recorded; never calls Lucca.
pub async fn recheck(state: &AppState, identity: &Identity) -> Result<Identity, Refusal> {
    let identity = current_identity(state, identity)?;
    if let Some(jit) = &state.provisioning {
        jit.check_cached(&identity.subject)
            .await
            .map_err(|denied| Refusal::from_jit(denied, jit.support_contact()))?;
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_pages_say_why_and_whom_to_contact() {
        let contact = "hr@acme.test".to_string();
        let page = Refusal::ContractEnded {
            on: NaiveDate::from_ymd_opt(2022, 12, 31),
            contact: contact.clone(),
        }
        .page();
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            page.message.contains("ended on 31 December 2022"),
            "{}",
            page.message
        );
        assert!(page.message.contains("hr@acme.test"), "{}", page.message);
        let page = Refusal::ContractNotStarted {
            on: NaiveDate::from_ymd_opt(2030, 9, 2),
            contact: contact.clone(),
        }
        .page();
        assert!(
            page.message.contains("starts on 2 September 2030"),
            "{}",
            page.message
        );
        let page = Refusal::LuccaUnavailable.page();
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(page.message.contains("try again in a minute"));
        let page = Refusal::LuccaFailed {
            reason: "the Lucca API key was refused (401)".into(),
            contact,
        }
        .page();
        assert!(!page.message.contains("401"), "no internals on the page");
    }
}
