//! SAML request IDs already answered, so that each AuthnRequest is answered once.

use async_trait::async_trait;

use crate::store::error::bounded;
use crate::store::StoreError;

/// SAML IDs are `xs:ID` values, in practice 20–50 characters.
pub const MAX_SAML_REQUEST_ID_BYTES: usize = 256;
/// Entity IDs are URIs of at most 1024 characters (SAML core §8.3.6).
const MAX_ENTITY_ID_BYTES: usize = 1024;

#[async_trait]
pub trait SamlRequestIds: Send + Sync {
    /// Record that `sp`'s request `request_id` is being answered, remembered for `ttl_secs`.
    /// True for the first claim only: of two concurrent claims, exactly one wins.
    async fn claim(&self, sp: &str, request_id: &str, ttl_secs: i64) -> Result<bool, StoreError>;
}

/// The size limits every backend applies before storing a request id.
pub fn check_request_id(sp: &str, request_id: &str) -> Result<(), StoreError> {
    bounded("a SAML request ID", request_id, MAX_SAML_REQUEST_ID_BYTES)?;
    bounded("a SAML entity ID", sp, MAX_ENTITY_ID_BYTES)
}
