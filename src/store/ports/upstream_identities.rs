//! The last identity seen from each upstream (bridge-mode) person, so that the claims preview
//! can show people who are not in the local directory, and whether their IdP reported a group
//! overage.

use async_trait::async_trait;

use crate::store::error::bounded;
use crate::store::StoreError;

/// An upstream person's claims as kept: names, department, manager and groups (Entra sends at
/// most ~200 group ids before it switches to an overage marker, about 8 KiB).
pub const MAX_UPSTREAM_IDENTITY_BYTES: usize = 64 * 1024;

/// What was kept of an upstream person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The `Identity` as JSON.
    pub identity: String,
    pub groups_overage: bool,
}

#[async_trait]
pub trait UpstreamIdentities: Send + Sync {
    /// Record (or replace) what `upstream` said about `subject`; `seen_at` is now.
    async fn put(
        &self,
        subject: &str,
        email: &str,
        upstream: &str,
        identity_json: &str,
        groups_overage: bool,
    ) -> Result<(), StoreError>;

    /// The person last seen with this email (compared trimmed and lowercased).
    async fn by_email(&self, email: &str) -> Result<Option<UpstreamIdentity>, StoreError>;
}

/// The size limits every backend applies before storing an upstream identity.
pub fn check_identity(
    subject: &str,
    email: &str,
    upstream: &str,
    identity_json: &str,
) -> Result<(), StoreError> {
    bounded("an upstream subject", subject, 256)?;
    bounded("an upstream email", email, 320)?;
    bounded("an upstream name", upstream, 256)?;
    bounded(
        "an upstream identity",
        identity_json,
        MAX_UPSTREAM_IDENTITY_BYTES,
    )
}
