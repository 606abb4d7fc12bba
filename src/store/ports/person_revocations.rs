//! Who signed in, and when each person's access was last revoked ("sign out everywhere"). The
//! sessions themselves are opaque tower-sessions records; this is what every node consults when
//! it reads one, so a revocation holds across nodes.

use async_trait::async_trait;

use crate::store::error::bounded;
use crate::store::StoreError;

/// The longest subject or email kept (longer ones are refused, not cut).
pub const MAX_PERSON_FIELD_BYTES: usize = 1000;

/// Live tokens of a person's unrevoked grants (for the revocation summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveTokens {
    pub access_tokens: u64,
    pub refresh_tokens: u64,
}

#[async_trait]
pub trait PersonRevocations: Send + Sync {
    /// A sign-in of `subject` at `at`; `email` is kept lowercased, to find the person by it.
    async fn record_sign_in(&self, subject: &str, email: &str, at: i64) -> Result<(), StoreError>;

    /// Every session of `subject` signed in at or before `at` ends. Never moves backwards.
    /// Returns whether the person had signed in since the previous revocation.
    async fn revoke_sessions(&self, subject: &str, at: i64) -> Result<bool, StoreError>;

    /// When `subject`'s sessions were last revoked.
    async fn revoked_at(&self, subject: &str) -> Result<Option<i64>, StoreError>;

    /// The subjects that signed in with this email, matched case-insensitively.
    async fn subjects_with_email(&self, email: &str) -> Result<Vec<String>, StoreError>;

    /// The emails of people who signed in that contain `fragment` (case-insensitively), in
    /// order, at most `limit`: the console's search. `%`, `_` and `\` match themselves.
    async fn emails_containing(
        &self,
        fragment: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Unexpired, unrevoked access tokens and unrotated refresh tokens of `subject`'s grants.
    async fn live_tokens(&self, subject: &str) -> Result<LiveTokens, StoreError>;
}

/// The size limits every backend applies before storing a subject or an email.
pub fn check_person(subject: &str, email: Option<&str>) -> Result<(), StoreError> {
    bounded("a subject", subject, MAX_PERSON_FIELD_BYTES)?;
    bounded(
        "an email",
        email.unwrap_or_default(),
        MAX_PERSON_FIELD_BYTES,
    )
}
