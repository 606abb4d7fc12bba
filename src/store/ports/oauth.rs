//! Authorization codes, grants (refresh families), access and refresh tokens. Every code and
//! token crosses this port as its SHA-256 hash ([`crate::store::token_hash`]) and is stored so.

use async_trait::async_trait;

use crate::store::StoreError;

/// What an authorization code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub subject: String,
    pub session_id: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    /// JSON snapshot of the `Identity` at sign-in.
    pub identity: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumedCode {
    /// First use: the code is now spent. Its expiry is the caller's to check.
    Fresh(CodeRecord),
    /// Already spent: a replay. `grant_id` is what the first use issued.
    Replayed {
        client_id: String,
        grant_id: Option<String>,
    },
    Unknown,
}

/// A code as stored, read without spending it ([`OAuthStore::peek_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedCode {
    pub record: CodeRecord,
    /// Spent already: presenting it again is a replay.
    pub used: bool,
    /// When the code's person last had their sessions revoked (unix ms), read with the code
    /// so that the exchange needs no second statement to check it.
    pub subject_revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewGrant<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    pub scope: &'a str,
    pub identity: &'a str,
    pub auth_time: i64,
    pub amr: &'a str,
    pub session_id: Option<&'a str>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub identity: String,
    pub auth_time: i64,
    pub amr: String,
    pub session_id: Option<String>,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A refresh token found by its hash, whatever its state: the caller tells rotation, reuse
/// and the grace window apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLookup {
    pub grant: GrantRecord,
    pub expires_at: i64,
    /// When it was rotated (a later use is a reuse, or a retry inside the grace window).
    pub rotated_at: Option<i64>,
    /// The answer given when it was rotated, sealed under a key derived from the token.
    pub grace_response: Option<Vec<u8>>,
}

/// Which grant (and client) an access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub grant_id: String,
    pub client_id: String,
}

#[async_trait]
pub trait OAuthStore: Send + Sync {
    async fn put_code(&self, code_hash: &str, code: &CodeRecord) -> Result<(), StoreError>;

    /// Spend a code, atomically: of two concurrent exchanges exactly one gets `Fresh`. A code
    /// presented again is marked replayed in the same step that reads its grant, so a grant
    /// that [`OAuthStore::create_grant`] has not stored yet never will be (and one it stored is
    /// returned, to be revoked).
    async fn consume_code(&self, code_hash: &str) -> Result<ConsumedCode, StoreError>;

    /// Create a grant with its first access token `(hash, expires_at)` and refresh token, in
    /// one transaction. Returns false, storing nothing, when `from_code` was replayed since it
    /// was consumed.
    async fn create_grant(
        &self,
        grant: &NewGrant<'_>,
        from_code: Option<&str>,
        access: (&str, i64),
        refresh: Option<(&str, i64)>,
    ) -> Result<bool, StoreError>;

    /// A code and its person's last revocation, changing nothing; `None` for an unknown code.
    /// The exchange checks it, mints, then spends it with [`OAuthStore::redeem_code`].
    async fn peek_code(&self, code_hash: &str) -> Result<Option<PeekedCode>, StoreError>;

    /// Spend a fresh code and store the grant it starts with its first access token `(hash,
    /// expires_at)` and refresh token, all in one transaction: the code is spent if and only
    /// if the grant is stored. Returns false, storing nothing, when the code was spent (or
    /// replayed) since it was peeked: of two concurrent redemptions exactly one stores a grant.
    async fn redeem_code(
        &self,
        code_hash: &str,
        grant: &NewGrant<'_>,
        access: (&str, i64),
        refresh: Option<(&str, i64)>,
    ) -> Result<bool, StoreError>;

    /// Revoke a grant and with it every token it issued (access tokens marked revoked, refresh
    /// tokens deleted). Returns false if it was already revoked.
    async fn revoke_grant(&self, grant_id: &str, reason: &str) -> Result<bool, StoreError>;

    /// The live grant behind an access token (unexpired, unrevoked, grant unrevoked), if any.
    async fn grant_for_access_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<GrantRecord>, StoreError>;

    /// Which grant (and client) an access token belongs to, whatever its state.
    async fn access_token_owner(&self, token_hash: &str) -> Result<Option<TokenOwner>, StoreError>;

    async fn revoke_access_token(&self, token_hash: &str) -> Result<(), StoreError>;

    /// A refresh token and its grant, whatever their state (rotated, expired, revoked).
    async fn lookup_refresh(&self, token_hash: &str) -> Result<Option<RefreshLookup>, StoreError>;

    /// Rotate a refresh token: mark the old one rotated (keeping `grace_response` for the
    /// grace window) and store the new access and refresh tokens. Returns false, writing
    /// nothing, if it was rotated already (a concurrent request, or a reuse).
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        grant_id: &str,
        grace_response: &[u8],
        access: (&str, i64),
        refresh: (&str, i64),
    ) -> Result<bool, StoreError>;

    /// The unrevoked grants of a person.
    async fn grants_of_subject(&self, subject: &str) -> Result<Vec<GrantRecord>, StoreError>;
}
