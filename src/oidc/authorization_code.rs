//! The authorization-code grant: single-use codes bound to client, redirect URI and PKCE
//! challenge; a replayed code revokes what the first exchange issued.

use base64::Engine;
use serde_json::json;

use super::token::{audit, mint, MintInput, TokenForm, TokenResponse};
use super::Client;
use crate::identity::Identity;
use crate::store::{token_hash, ConsumedCode, NewGrant};
use crate::web::{random_token, AppState, OAuthError};

pub async fn exchange(
    state: &AppState,
    client: &Client,
    form: &TokenForm,
    ip: &str,
) -> Result<TokenResponse, OAuthError> {
    let code = form
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let code_hash = token_hash(code);
    let record = match state.store.oauth().consume_code(&code_hash).await? {
        ConsumedCode::Fresh(record) => record,
        ConsumedCode::Unknown => {
            audit(
                state,
                "token.code",
                "unknown_code",
                None,
                &client.id,
                ip,
                None,
            )
            .await;
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid or has expired",
            ));
        }
        ConsumedCode::Replayed {
            client_id,
            grant_id,
        } => {
            let mut revoked = false;
            if let Some(grant_id) = grant_id {
                revoked = state
                    .store
                    .oauth()
                    .revoke_grant(&grant_id, "authorization code replayed")
                    .await?;
            }
            tracing::warn!(client_id = %client.id, code_client = %client_id, revoked, "authorization code replayed");
            audit(
                state,
                "token.code",
                "replayed",
                None,
                &client.id,
                ip,
                Some(json!({"tokens_revoked": revoked})),
            )
            .await;
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; tokens issued from it have been revoked",
            ));
        }
    };
    if record.client_id != client.id {
        audit(
            state,
            "token.code",
            "wrong_client",
            Some(&record.subject),
            &client.id,
            ip,
            None,
        )
        .await;
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if record.expires_at < crate::store::now() {
        audit(
            state,
            "token.code",
            "expired",
            Some(&record.subject),
            &client.id,
            ip,
            None,
        )
        .await;
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if form.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        audit(
            state,
            "token.code",
            "redirect_uri_mismatch",
            Some(&record.subject),
            &client.id,
            ip,
            None,
        )
        .await;
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    verify_pkce(
        record.code_challenge.as_deref(),
        form.code_verifier.as_deref(),
    )
    .inspect_err(|_| {
        tracing::info!(client_id = %client.id, "PKCE verification failed");
    })?;

    let identity: Identity = serde_json::from_str(&record.identity)
        .map_err(|e| OAuthError::server_error("stored identity is unreadable", e))?;
    let live = state.live();
    let claims = crate::identity::map_claims(&identity, &live.role_mapping, &live.claims).claims;
    let scopes: Vec<String> = record
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let amr: Vec<String> = record
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
            nonce: record.nonce.as_deref(),
            auth_time: record.auth_time,
            amr: &amr,
            sid: record.session_id.as_deref(),
            force_refresh: false,
        },
    )?;
    let grant_id = random_token(16);
    let grant_expires = minted
        .refresh
        .as_ref()
        .map(|r| r.1)
        .unwrap_or(minted.access_expires_at);
    let stored = state
        .store
        .oauth()
        .create_grant(
            &NewGrant {
                id: &grant_id,
                client_id: &client.id,
                subject: &record.subject,
                scope: &record.scope,
                identity: &record.identity,
                auth_time: record.auth_time,
                amr: &record.amr,
                session_id: record.session_id.as_deref(),
                expires_at: grant_expires,
            },
            Some(&code_hash),
            (&minted.access_hash, minted.access_expires_at),
            minted.refresh.as_ref().map(|(h, e)| (h.as_str(), *e)),
        )
        .await?;
    if !stored {
        // The code was presented again while we were minting: what we minted is dropped unseen.
        tracing::warn!(client_id = %client.id, "authorization code replayed during its exchange; nothing issued");
        audit(
            state,
            "token.code",
            "replayed_during_exchange",
            Some(&record.subject),
            &client.id,
            ip,
            None,
        )
        .await;
        return Err(OAuthError::invalid_grant(
            "the authorization code was used twice; nothing has been issued for it",
        ));
    }
    audit(
        state,
        "token.code",
        "success",
        Some(&record.subject),
        &client.id,
        ip,
        Some(json!({"scope": record.scope, "refresh_token": minted.refresh.is_some()})),
    )
    .await;
    Ok(minted.response)
}

/// RFC 7636: S256 only. A verifier without a challenge is refused too (downgrade protection).
pub(crate) fn verify_pkce(
    challenge: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "code_verifier is required (PKCE)",
        )),
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed {
                return Err(OAuthError::invalid_grant(
                    "code_verifier is malformed (43-128 unreserved characters)",
                ));
            }
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(openssl::sha::sha256(verifier.as_bytes()));
            if computed.len() == challenge.len()
                && openssl::memcmp::eq(computed.as_bytes(), challenge.as_bytes())
            {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify_pkce(Some(challenge), Some(verifier)).is_ok());
        assert!(verify_pkce(
            Some(challenge),
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx")
        )
        .is_err());
        assert!(verify_pkce(Some(challenge), None).is_err());
        assert!(verify_pkce(None, Some(verifier)).is_err());
        assert!(verify_pkce(Some(challenge), Some("short")).is_err());
        assert!(verify_pkce(None, None).is_ok());
    }
}
