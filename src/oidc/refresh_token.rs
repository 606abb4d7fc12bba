//! The refresh-token grant: rotation on every use; reuse of a rotated token revokes the whole
//! family, except within a short grace window where a concurrent retry gets the same answer.

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use serde_json::json;

use super::token::{audit, mint, MintInput, TokenForm, TokenResponse};
use super::Client;
use crate::identity::Identity;
use crate::store::{token_hash, RefreshLookup};
use crate::web::{AppState, OAuthError};

pub async fn refresh(
    state: &AppState,
    client: &Client,
    form: &TokenForm,
    ip: &str,
) -> Result<TokenResponse, OAuthError> {
    let token = form
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let hash = token_hash(token);
    let Some(found) = state.store.oauth().lookup_refresh(&hash).await? else {
        audit(
            state,
            "token.refresh",
            "unknown_token",
            None,
            &client.id,
            ip,
            None,
        )
        .await;
        return Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    };
    let grant = &found.grant;
    if grant.client_id != client.id {
        audit(
            state,
            "token.refresh",
            "wrong_client",
            Some(&grant.subject),
            &client.id,
            ip,
            None,
        )
        .await;
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if found.expires_at < crate::store::now() {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    if found.rotated_at.is_some() {
        return replayed(state, client, token, &found, ip).await;
    }

    let snapshot: Identity = serde_json::from_str(&grant.identity)
        .map_err(|e| OAuthError::server_error("stored identity is unreadable", e))?;
    // Also refuses a person whose Lucca contract JIT last found ended or not started.
    let identity = match crate::pipeline::recheck(state, &snapshot).await {
        Ok(identity) => identity,
        Err(crate::pipeline::Refusal::Storage(e)) => return Err(e.into()),
        Err(refusal) => {
            state
                .store
                .oauth()
                .revoke_grant(&grant.id, &refusal.to_string())
                .await?;
            audit(
                state,
                "token.refresh",
                "account_inactive",
                Some(&grant.subject),
                &client.id,
                ip,
                None,
            )
            .await;
            return Err(OAuthError::invalid_grant(format!(
                "refresh refused: {refusal}"
            )));
        }
    };
    let granted: Vec<String> = grant
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let scopes = match form.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        None => granted,
        Some(requested) => {
            let requested: Vec<String> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!(
                        "scope `{}` was not granted originally",
                        super::quoted(extra)
                    ),
                ));
            }
            requested
        }
    };
    let live = state.live();
    let claims = crate::identity::map_claims(&identity, &live.role_mapping, &live.claims).claims;
    let amr: Vec<String> = grant
        .amr
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let minted = mint(
        state,
        MintInput {
            client,
            claims: &claims,
            scopes: &scopes,
            nonce: None,
            auth_time: grant.auth_time,
            amr: &amr,
            sid: grant.session_id.as_deref(),
            force_refresh: true,
        },
    )?;
    let Some((new_refresh_hash, new_refresh_exp)) = minted.refresh.clone() else {
        return Err(OAuthError::server_error(
            "rotation",
            "no refresh token minted",
        ));
    };
    let sealed = seal(token, &minted.response)
        .map_err(|e| OAuthError::server_error("sealing the grace answer", e))?;
    let rotated = state
        .store
        .oauth()
        .rotate_refresh(
            &hash,
            &grant.id,
            &sealed,
            (&minted.access_hash, minted.access_expires_at),
            (&new_refresh_hash, new_refresh_exp),
        )
        .await?;
    if !rotated {
        // A concurrent request rotated this token between our read and our write.
        let again = state.store.oauth().lookup_refresh(&hash).await?;
        return match again {
            Some(found) => replayed(state, client, token, &found, ip).await,
            None => Err(OAuthError::invalid_grant(
                "the refresh token has been revoked",
            )),
        };
    }
    audit(
        state,
        "token.refresh",
        "success",
        Some(&grant.subject),
        &client.id,
        ip,
        None,
    )
    .await;
    Ok(minted.response)
}

/// A rotated token presented again: the same answer inside the grace window, else revoke all.
async fn replayed(
    state: &AppState,
    client: &Client,
    token: &str,
    found: &RefreshLookup,
    ip: &str,
) -> Result<TokenResponse, OAuthError> {
    let grace = state.oidc.settings.refresh_grace.as_secs() as i64;
    // grace = 0 means no grace at all, not "within the same second".
    let within = grace > 0
        && found
            .rotated_at
            .is_some_and(|at| crate::store::now() - at <= grace);
    if within {
        if let Some(answer) = found
            .grace_response
            .as_deref()
            .and_then(|sealed| open(token, sealed))
        {
            audit(
                state,
                "token.refresh",
                "grace_retry",
                Some(&found.grant.subject),
                &client.id,
                ip,
                None,
            )
            .await;
            return Ok(answer);
        }
    }
    let revoked = state
        .store
        .oauth()
        .revoke_grant(&found.grant.id, "refresh token reused")
        .await?;
    tracing::warn!(client_id = %client.id, subject = %found.grant.subject, "refresh token reuse detected; family revoked");
    audit(
        state,
        "token.refresh",
        "reuse_detected",
        Some(&found.grant.subject),
        &client.id,
        ip,
        Some(json!({"family_revoked": revoked})),
    )
    .await;
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; all tokens of this sign-in have been revoked",
    ))
}

/// AES-256-GCM under a key derived from the refresh token: only its holder can read the answer.
fn grace_key(token: &str) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(b"passerelle/refresh-grace/v1\0");
    h.update(token.as_bytes());
    h.finish()
}

fn seal(token: &str, response: &TokenResponse) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let plain = serde_json::to_vec(response).unwrap_or_default();
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut iv)?;
    let mut tag = [0u8; 16];
    let cipher = encrypt_aead(
        Cipher::aes_256_gcm(),
        &grace_key(token),
        Some(&iv),
        b"",
        &plain,
        &mut tag,
    )?;
    Ok([&iv[..], &tag[..], &cipher[..]].concat())
}

fn open(token: &str, sealed: &[u8]) -> Option<TokenResponse> {
    if sealed.len() < 28 {
        return None;
    }
    let (iv, rest) = sealed.split_at(12);
    let (tag, cipher) = rest.split_at(16);
    let plain = decrypt_aead(
        Cipher::aes_256_gcm(),
        &grace_key(token),
        Some(iv),
        b"",
        cipher,
        tag,
    )
    .ok()?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_answers_open_only_with_their_token() {
        let r = TokenResponse {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            expires_in: 1,
            id_token: "i".into(),
            refresh_token: Some("r".into()),
            scope: "openid".into(),
        };
        let sealed = seal("token-1", &r).unwrap();
        assert_eq!(open("token-1", &sealed).unwrap().access_token, "a");
        assert!(open("token-2", &sealed).is_none());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open("token-1", &tampered).is_none());
    }
}
