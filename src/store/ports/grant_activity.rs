//! What the admin console shows of a person's live grants: the client, since when, and when
//! each was last used. A read-only port of its own, beside the token paths' `OAuthStore`.

use async_trait::async_trait;

use crate::store::StoreError;

/// One unrevoked grant of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantActivity {
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    /// When the grant was made (the code exchange), unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    /// When it last issued tokens: its newest refresh token, or its creation (unix seconds).
    pub last_used_at: i64,
}

#[async_trait]
pub trait GrantActivityLog: Send + Sync {
    /// `subject`'s unrevoked, unexpired grants, most recently used first.
    async fn grant_activity(&self, subject: &str) -> Result<Vec<GrantActivity>, StoreError>;
}
