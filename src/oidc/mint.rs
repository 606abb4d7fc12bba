//! Minting what a grant issues: the signed ID token and the opaque access and refresh tokens
//! (stored by hash only). The signer is a port: the key ring in production.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::claims::scoped_claims;
use super::grants::GrantContext;
use super::{Client, OidcError};
use crate::config::{OidcConfig, RefreshPolicy};
use crate::identity::Claims;
use crate::keys::{KeyError, Keys};
use crate::store::token_hash;
use crate::web::random_token;

/// Signs a JWT with the current signing key.
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    fn sign_jwt(&self, claims: &Value) -> Result<String, KeyError>;

    /// [`Signer::sign_jwt`] where it costs the async workers nothing: the key ring signs on the
    /// CPU pool ([`crate::cpu`]); a signer without a key to hand over signs in place.
    async fn sign_jwt_off_workers(&self, claims: Value) -> Result<String, OidcError> {
        self.sign_jwt(&claims)
            .map_err(|e| OidcError::internal("signing the ID token", e))
    }
}

#[async_trait::async_trait]
impl Signer for Keys {
    fn sign_jwt(&self, claims: &Value) -> Result<String, KeyError> {
        self.signer().sign_jwt(claims)
    }

    async fn sign_jwt_off_workers(&self, claims: Value) -> Result<String, OidcError> {
        let key = self.signer();
        crate::cpu::pool()
            .run(move || key.sign_jwt(&claims))
            .await
            .map_err(|e| OidcError::internal("signing the ID token", e))?
            .map_err(|e| OidcError::internal("signing the ID token", e))
    }
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = openssl::sha::sha256(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client: &'a Client,
    pub claims: &'a Claims,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub access_token: &'a str,
    pub now: i64,
    pub ttl_secs: i64,
    pub module_roles_claim: Option<&'a str>,
}

pub fn issue_id_token(signer: &dyn Signer, input: IdTokenInput<'_>) -> Result<String, KeyError> {
    signer.sign_jwt(&id_token_claims(input))
}

/// The claims of an ID token, to be signed.
pub fn id_token_claims(input: IdTokenInput<'_>) -> Value {
    let mut body = scoped_claims(
        input.claims,
        input.scopes,
        input.client,
        input.module_roles_claim,
    );
    body.insert("iss".into(), json!(input.issuer));
    body.insert("sub".into(), json!(input.claims.subject));
    body.insert("aud".into(), json!(input.client.id));
    body.insert("azp".into(), json!(input.client.id));
    body.insert("iat".into(), json!(input.now));
    body.insert("exp".into(), json!(input.now + input.ttl_secs));
    body.insert("auth_time".into(), json!(input.auth_time));
    body.insert("amr".into(), json!(input.amr));
    body.insert("at_hash".into(), json!(at_hash(input.access_token)));
    if let Some(nonce) = input.nonce {
        body.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = input.sid {
        body.insert("sid".into(), json!(sid));
    }
    Value::Object(body)
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// What a grant issues in one go, with the hashes to store.
pub struct Minted {
    pub response: TokenResponse,
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh: Option<(String, i64)>,
}

pub struct MintInput<'a> {
    pub client: &'a Client,
    pub claims: &'a Claims,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    /// Issue a refresh token whatever the policy (rotation in the refresh grant).
    pub force_refresh: bool,
}

pub fn wants_refresh_token(client: &Client, scopes: &[String]) -> bool {
    match client.refresh {
        RefreshPolicy::Always => true,
        RefreshPolicy::Never => false,
        RefreshPolicy::OfflineAccess => scopes.iter().any(|s| s == "offline_access"),
    }
}

/// When a refresh family started by a sign-in at `auth_time` ends, whatever its rotations.
pub fn refresh_family_end(settings: &OidcConfig, auth_time: i64) -> i64 {
    let max = i64::try_from(settings.refresh_token_max_lifetime.as_secs()).unwrap_or(i64::MAX);
    auth_time.saturating_add(max)
}

/// Mint an access token, an ID token and (if the client gets one) a refresh token.
pub async fn mint(cx: &GrantContext<'_>, input: MintInput<'_>) -> Result<Minted, OidcError> {
    let settings = &cx.provider.settings;
    let access_token = random_token(32);
    let access_ttl = settings.access_token_ttl.as_secs() as i64;
    let module_roles_claim = cx.pipeline.module_roles_claim();
    let claims = id_token_claims(IdTokenInput {
        issuer: &cx.provider.issuer,
        client: input.client,
        claims: input.claims,
        scopes: input.scopes,
        nonce: input.nonce,
        auth_time: input.auth_time,
        amr: input.amr,
        sid: input.sid,
        access_token: &access_token,
        now: cx.now,
        ttl_secs: settings.id_token_ttl.as_secs() as i64,
        module_roles_claim: module_roles_claim.as_deref(),
    });
    let id_token = cx.signer.sign_jwt_off_workers(claims).await?;
    let refresh_token = (input.force_refresh || wants_refresh_token(input.client, input.scopes))
        .then(|| random_token(32));
    // A rotation never extends the family past its absolute end.
    let family_end = refresh_family_end(settings, input.auth_time);
    let refresh = refresh_token.as_ref().map(|t| {
        (
            token_hash(t),
            (cx.now + settings.refresh_token_ttl.as_secs() as i64).min(family_end),
        )
    });
    metrics::counter!("passerelle_oidc_tokens_issued_total").increment(1);
    Ok(Minted {
        access_hash: token_hash(&access_token),
        access_expires_at: cx.now + access_ttl,
        refresh,
        response: TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: access_ttl,
            id_token,
            refresh_token,
            scope: input.scopes.join(" "),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OIDC Core A.3/A.4 example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
