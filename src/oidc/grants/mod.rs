//! The token endpoint's grants, one file each: [`authorization_code`] (and the code it
//! exchanges, issued at the end of a sign-in) and [`refresh_token`]. They take typed inputs,
//! the ports and the clock in a [`GrantContext`], and answer a [`TokenResponse`] or an
//! [`OidcError`]; the HTTP layer only parses the form and maps the error.
//!
//! [`TokenResponse`]: super::TokenResponse
//! [`OidcError`]: super::OidcError

pub mod authorization_code;
pub mod refresh_token;

#[cfg(test)]
mod tests;

use serde_json::Value;

use super::mint::Signer;
use super::Provider;
use crate::pipeline::Pipeline;
use crate::store::AuditEvent;

/// The store bundle a grant reaches its ports through: `oauth()` (codes, grants, access and
/// refresh tokens), `audit()` and `person_revocations()`, each a `dyn` port with an adapter per
/// backend (SQLite, PostgreSQL).
pub type OAuthPort = crate::store::Store;

/// What a grant works with, for one request.
pub struct GrantContext<'a> {
    /// Codes, grants, tokens (and the audit log, until it has a port of its own).
    pub store: &'a OAuthPort,
    pub signer: &'a dyn Signer,
    /// Clients, lifetimes, the issuer.
    pub provider: &'a Provider,
    /// The re-check of a person renewing without signing in, and the claim settings.
    pub pipeline: &'a Pipeline,
    /// The client's address, for the audit log.
    pub ip: &'a str,
    /// Unix seconds.
    pub now: i64,
}

impl GrantContext<'_> {
    /// An audit row; a failed write is logged and does not fail the request.
    pub async fn audit(
        &self,
        event: &str,
        outcome: &str,
        subject: Option<&str>,
        client: &str,
        detail: Option<Value>,
    ) {
        if let Err(e) = self
            .store
            .audit()
            .record(AuditEvent {
                event,
                outcome,
                subject,
                client: Some(client),
                ip: Some(self.ip),
                detail,
            })
            .await
        {
            tracing::warn!(error = %e, "audit write failed");
        }
    }
}

/// A space-separated list (scopes, amr) as stored.
pub(crate) fn words(list: &str) -> Vec<String> {
    list.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
