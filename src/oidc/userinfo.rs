//! The userinfo answer for an access token: the claims released at the sign-in behind it,
//! scoped as in the ID token, while the token and the person are still valid.

use serde_json::{Map, Value};

use super::claims::scoped_claims;
use super::grants::{words, OAuthPort};
use super::stored::StoredRelease;
use super::{OidcError, Provider};
use crate::pipeline::Pipeline;
use crate::store::token_hash;

pub async fn userinfo(
    store: &OAuthPort,
    provider: &Provider,
    pipeline: &Pipeline,
    access_token: Option<&str>,
) -> Result<Map<String, Value>, OidcError> {
    let token = access_token
        .filter(|t| !t.is_empty())
        .ok_or(OidcError::TokenRequired)?;
    let invalid = |why: &str| OidcError::InvalidToken(why.into());
    let grant = store
        .oauth()
        .grant_for_access_token(&token_hash(token))
        .await?
        .ok_or_else(|| invalid("the access token is invalid, expired or revoked"))?;
    let client = provider
        .clients
        .get(&grant.client_id)
        .ok_or_else(|| invalid("the client of this token is no longer registered"))?;
    let stored = StoredRelease::decode(&grant.identity, pipeline)
        .map_err(|e| OidcError::internal("stored identity is unreadable", e))?;
    if pipeline.current_identity(&stored.identity).is_err() {
        return Err(invalid("the account behind this token is no longer active"));
    }
    let scopes = words(&grant.scope);
    let mut body = scoped_claims(
        &stored.claims,
        &scopes,
        client,
        pipeline.module_roles_claim().as_deref(),
    );
    body.insert("sub".into(), Value::String(stored.claims.subject.clone()));
    Ok(body)
}
