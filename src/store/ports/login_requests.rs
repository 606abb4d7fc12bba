//! Pending sign-in requests: a protocol request waiting for the person to authenticate, kept
//! server-side so that nothing but an opaque id travels in URLs.

use async_trait::async_trait;

use crate::store::error::bounded;
use crate::store::StoreError;

/// A pending request's stored form: the protocol request (OIDC parameters with `state` up to
/// 2 KiB, SAML request fields) and the sign-in context, or a logout chain. Legitimate ones stay
/// under a few KiB.
pub const MAX_PENDING_PAYLOAD_BYTES: usize = 32 * 1024;
const MAX_ID_BYTES: usize = 128;
const MAX_PROTOCOL_BYTES: usize = 64;

/// A pending request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub protocol: String,
    pub payload: String,
    /// Unix seconds.
    pub created_at: i64,
}

#[async_trait]
pub trait LoginRequests: Send + Sync {
    /// Store a request that expires `ttl_secs` from now. Refuses oversized values
    /// ([`check_request`]) and an id already in use.
    async fn put(
        &self,
        id: &str,
        protocol: &str,
        payload: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError>;

    /// The request, if it exists and has not expired.
    async fn get(&self, id: &str) -> Result<Option<PendingRequest>, StoreError>;

    async fn delete(&self, id: &str) -> Result<(), StoreError>;
}

/// The size limits every backend applies before storing a request.
pub fn check_request(id: &str, protocol: &str, payload: &str) -> Result<(), StoreError> {
    bounded("a pending request id", id, MAX_ID_BYTES)?;
    bounded("a pending request's protocol", protocol, MAX_PROTOCOL_BYTES)?;
    bounded("a pending request", payload, MAX_PENDING_PAYLOAD_BYTES)
}
