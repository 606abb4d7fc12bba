//! The refresh-token grant: rotation on every use; reuse of a rotated token revokes the whole
//! family, except within a short grace window where a concurrent retry gets the same answer.
//! A refresh re-checks the person (still there, Lucca contract not ended) and keeps the claims
//! released at their sign-in.

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use serde_json::json;

use super::{words, GrantContext};
use crate::oidc::mint::{mint, refresh_family_end, MintInput, TokenResponse};
use crate::oidc::stored::StoredRelease;
use crate::oidc::{quoted, Client, OidcError};
use crate::store::{token_hash, RefreshLookup};

/// The token request's parameters for this grant, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefreshRequest<'a> {
    pub refresh_token: Option<&'a str>,
    /// A narrower set of the granted scopes, or none for all of them.
    pub scope: Option<&'a str>,
}

pub async fn refresh(
    cx: &GrantContext<'_>,
    client: &Client,
    request: RefreshRequest<'_>,
) -> Result<TokenResponse, OidcError> {
    let token = request
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OidcError::invalid_request("refresh_token is required"))?;
    let hash = token_hash(token);
    let Some(found) = cx.store.oauth().lookup_refresh(&hash).await? else {
        cx.audit("token.refresh", "unknown_token", None, &client.id, None)
            .await;
        return Err(OidcError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    };
    let grant = &found.grant;
    if grant.client_id != client.id {
        cx.audit(
            "token.refresh",
            "wrong_client",
            Some(&grant.subject),
            &client.id,
            None,
        )
        .await;
        return Err(OidcError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if grant.revoked_at.is_some() {
        return Err(OidcError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if cx.now >= refresh_family_end(&cx.provider.settings, grant.auth_time) {
        cx.audit(
            "token.refresh",
            "max_lifetime",
            Some(&grant.subject),
            &client.id,
            None,
        )
        .await;
        return Err(OidcError::invalid_grant(
            "the sign-in behind this refresh token is too old: sign in again",
        ));
    }
    if found.expires_at < cx.now {
        return Err(OidcError::invalid_grant("the refresh token has expired"));
    }
    if found.rotated_at.is_some() {
        return replayed(cx, client, token, &found).await;
    }

    let stored = StoredRelease::decode(&grant.identity, cx.pipeline)
        .map_err(|e| OidcError::internal("stored identity is unreadable", e))?;
    // The person must still exist; also refuses one whose Lucca contract JIT last found ended
    // or not started. The grant keeps the claims of its sign-in.
    let access = crate::pipeline::Access {
        name: &client.name,
        allowed_groups: &client.allowed_groups,
    };
    if let Err(refusal) = cx.pipeline.recheck(&stored.identity, access).await {
        if let crate::pipeline::Refusal::Storage(e) = refusal {
            return Err(e.into());
        }
        cx.store
            .oauth()
            .revoke_grant(&grant.id, &refusal.to_string())
            .await?;
        cx.audit(
            "token.refresh",
            "account_inactive",
            Some(&grant.subject),
            &client.id,
            None,
        )
        .await;
        return Err(OidcError::invalid_grant(format!(
            "refresh refused: {refusal}"
        )));
    }
    let granted = words(&grant.scope);
    let scopes = match request.scope.filter(|s| !s.trim().is_empty()) {
        None => granted,
        Some(requested) => {
            let requested = words(requested);
            if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
                return Err(OidcError::InvalidScope(format!(
                    "scope `{}` was not granted originally",
                    quoted(extra)
                )));
            }
            requested
        }
    };
    let amr = words(&grant.amr);
    let minted = mint(
        cx,
        MintInput {
            client,
            claims: &stored.claims,
            scopes: &scopes,
            nonce: None,
            auth_time: grant.auth_time,
            amr: &amr,
            sid: grant.session_id.as_deref(),
            force_refresh: true,
        },
    )?;
    let Some((new_refresh_hash, new_refresh_exp)) = minted.refresh.clone() else {
        return Err(OidcError::internal("rotation", "no refresh token minted"));
    };
    let sealed = seal(token, &minted.response)
        .map_err(|e| OidcError::internal("sealing the grace answer", e))?;
    let rotated = cx
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
        return match cx.store.oauth().lookup_refresh(&hash).await? {
            Some(found) => replayed(cx, client, token, &found).await,
            None => Err(OidcError::invalid_grant(
                "the refresh token has been revoked",
            )),
        };
    }
    cx.audit(
        "token.refresh",
        "success",
        Some(&grant.subject),
        &client.id,
        None,
    )
    .await;
    Ok(minted.response)
}

/// A rotated token presented again: the same answer inside the grace window, else revoke all.
async fn replayed(
    cx: &GrantContext<'_>,
    client: &Client,
    token: &str,
    found: &RefreshLookup,
) -> Result<TokenResponse, OidcError> {
    let grace = cx.provider.settings.refresh_grace.as_secs() as i64;
    // grace = 0 means no grace at all, not "within the same second".
    let within = grace > 0 && found.rotated_at.is_some_and(|at| cx.now - at <= grace);
    if within {
        if let Some(answer) = found
            .grace_response
            .as_deref()
            .and_then(|sealed| open(token, sealed))
        {
            cx.audit(
                "token.refresh",
                "grace_retry",
                Some(&found.grant.subject),
                &client.id,
                None,
            )
            .await;
            return Ok(answer);
        }
    }
    let revoked = cx
        .store
        .oauth()
        .revoke_grant(&found.grant.id, "refresh token reused")
        .await?;
    tracing::warn!(client_id = %client.id, subject = %found.grant.subject, "refresh token reuse detected; family revoked");
    cx.audit(
        "token.refresh",
        "reuse_detected",
        Some(&found.grant.subject),
        &client.id,
        Some(json!({"family_revoked": revoked})),
    )
    .await;
    Err(OidcError::invalid_grant(
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
