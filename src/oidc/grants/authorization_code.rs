//! The authorization-code grant. A code ends a sign-in ([`issue_code`]): single-use, short-lived,
//! bound to the client, its redirect URI and the PKCE challenge, and carrying what the pipeline
//! released. Its exchange ([`exchange`]) checks every binding; a replayed code revokes what the
//! first exchange issued.

use base64::Engine;
use serde_json::json;

use super::{words, GrantContext, OAuthPort};
use crate::login::SignedIn;
use crate::oidc::mint::{mint, MintInput, TokenResponse};
use crate::oidc::stored::StoredRelease;
use crate::oidc::{Client, OidcError, Provider, ValidRequest};
use crate::pipeline::Released;
use crate::store::{token_hash, CodeRecord, ConsumedCode, NewGrant};
use crate::web::random_token;

/// Issue the code for a request whose sign-in the pipeline released.
pub async fn issue_code(
    store: &OAuthPort,
    provider: &Provider,
    request: &ValidRequest,
    signed_in: &SignedIn,
    released: Released,
    now: i64,
) -> Result<String, OidcError> {
    let stored = StoredRelease {
        identity: released.identity,
        claims: released.claims,
    };
    let code = random_token(32);
    let record = CodeRecord {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scopes.join(" "),
        subject: stored.identity.subject.clone(),
        session_id: Some(signed_in.sid.clone()),
        auth_time: signed_in.auth_time,
        amr: signed_in.amr.join(" "),
        identity: stored
            .encode()
            .map_err(|e| OidcError::internal("serialising identity", e))?,
        expires_at: now + provider.settings.code_ttl.as_secs() as i64,
    };
    store.oauth().put_code(&token_hash(&code), &record).await?;
    metrics::counter!("passerelle_oidc_codes_issued_total").increment(1);
    Ok(code)
}

/// The token request's parameters for this grant, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeExchange<'a> {
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// Exchange a code for tokens, for the (authenticated) `client`.
pub async fn exchange(
    cx: &GrantContext<'_>,
    client: &Client,
    request: CodeExchange<'_>,
) -> Result<TokenResponse, OidcError> {
    let code = request
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OidcError::invalid_request("code is required"))?;
    let code_hash = token_hash(code);
    // Read first, spend with the grant: the code is spent in the transaction that stores what
    // it issued, so an exchange costs one read and one write, and of two concurrent exchanges
    // the one whose write loses is a replay.
    let peeked = match cx.store.oauth().peek_code(&code_hash).await? {
        Some(peeked) if !peeked.used => peeked,
        Some(_) => return Err(replayed(cx, client, &code_hash).await),
        None => {
            cx.audit("token.code", "unknown_code", None, &client.id, None)
                .await;
            return Err(OidcError::invalid_grant(
                "the authorization code is invalid or has expired",
            ));
        }
    };
    let record = peeked.record;
    let subject: &str = &record.subject;
    // A refused code is spent all the same: single-use whatever happened.
    let refuse = |outcome: &'static str, description: &'static str| {
        let code_hash = &code_hash;
        async move {
            if let Err(e) = spend_refused(cx, client, code_hash).await {
                return e;
            }
            cx.audit("token.code", outcome, Some(subject), &client.id, None)
                .await;
            OidcError::invalid_grant(description)
        }
    };
    if record.client_id != client.id {
        return Err(refuse(
            "wrong_client",
            "the authorization code was issued to another client",
        )
        .await);
    }
    if record.expires_at < cx.now {
        return Err(refuse("expired", "the authorization code has expired").await);
    }
    if request.redirect_uri != Some(record.redirect_uri.as_str()) {
        return Err(refuse(
            "redirect_uri_mismatch",
            "redirect_uri does not match the authorization request",
        )
        .await);
    }
    if let Err(e) = verify_pkce(record.code_challenge.as_deref(), request.code_verifier) {
        tracing::info!(client_id = %client.id, "PKCE verification failed");
        spend_refused(cx, client, &code_hash).await?;
        return Err(e);
    }
    // A code from a session revoked after it was issued must not start a new grant. The code
    // knows its sign-in to the second: a revocation in a later second than the sign-in ends it
    // (a new sign-in in the very second of a revocation keeps working).
    let revoked_at = peeked.subject_revoked_at;
    if revoked_at.is_some_and(|at| at >= record.auth_time.saturating_add(1).saturating_mul(1000)) {
        return Err(refuse(
            "revoked",
            "the sign-in behind this authorization code has been revoked",
        )
        .await);
    }

    let stored = StoredRelease::decode(&record.identity, cx.pipeline)
        .map_err(|e| OidcError::internal("stored identity is unreadable", e))?;
    // A code written before claims were stored is mapped once, here; the grant keeps that.
    let stored_text = stored
        .encode()
        .map_err(|e| OidcError::internal("serialising identity", e))?;
    let scopes = words(&record.scope);
    let amr = words(&record.amr);
    let minted = mint(
        cx,
        MintInput {
            client,
            claims: &stored.claims,
            scopes: &scopes,
            nonce: record.nonce.as_deref(),
            auth_time: record.auth_time,
            amr: &amr,
            sid: record.session_id.as_deref(),
            force_refresh: false,
        },
    )
    .await?;
    let grant_id = random_token(16);
    let grant_expires = minted
        .refresh
        .as_ref()
        .map(|r| r.1)
        .unwrap_or(minted.access_expires_at);
    let redeemed = cx
        .store
        .oauth()
        .redeem_code(
            &code_hash,
            &NewGrant {
                id: &grant_id,
                client_id: &client.id,
                subject: &record.subject,
                scope: &record.scope,
                identity: &stored_text,
                auth_time: record.auth_time,
                amr: &record.amr,
                session_id: record.session_id.as_deref(),
                expires_at: grant_expires,
            },
            (&minted.access_hash, minted.access_expires_at),
            minted.refresh.as_ref().map(|(h, e)| (h.as_str(), *e)),
        )
        .await?;
    if !redeemed {
        // Another exchange spent the code while we were minting: what we minted is dropped
        // unseen, and this second use is a replay like any other.
        tracing::warn!(client_id = %client.id, "authorization code spent during its exchange; nothing issued");
        return Err(replayed(cx, client, &code_hash).await);
    }
    cx.audit(
        "token.code",
        "success",
        Some(&record.subject),
        &client.id,
        Some(json!({"scope": record.scope, "refresh_token": minted.refresh.is_some()})),
    )
    .await;
    Ok(minted.response)
}

/// A code presented again: mark the replay and revoke what its first exchange issued, if that
/// exchange has stored its grant (one that has not yet never will: it refuses a replayed code).
async fn replayed(cx: &GrantContext<'_>, client: &Client, code_hash: &str) -> OidcError {
    let (code_client, revoked) = match revoke_what_was_issued(cx, code_hash).await {
        Ok(found) => found,
        Err(e) => return e,
    };
    tracing::warn!(client_id = %client.id, code_client = %code_client, revoked, "authorization code replayed");
    cx.audit(
        "token.code",
        "replayed",
        None,
        &client.id,
        Some(json!({"tokens_revoked": revoked})),
    )
    .await;
    OidcError::invalid_grant(
        "the authorization code was already used; tokens issued from it have been revoked",
    )
}

/// Spend `code_hash` as a replay would find it; `(the code's client, whether a grant was
/// revoked)`.
async fn revoke_what_was_issued(
    cx: &GrantContext<'_>,
    code_hash: &str,
) -> Result<(String, bool), OidcError> {
    match cx.store.oauth().consume_code(code_hash).await? {
        ConsumedCode::Replayed {
            client_id,
            grant_id: Some(grant_id),
        } => {
            let revoked = cx
                .store
                .oauth()
                .revoke_grant(&grant_id, "authorization code replayed")
                .await?;
            Ok((client_id, revoked))
        }
        ConsumedCode::Replayed {
            client_id,
            grant_id: None,
        } => Ok((client_id, false)),
        ConsumedCode::Fresh(record) => Ok((record.client_id, false)),
        ConsumedCode::Unknown => Ok((String::new(), false)),
    }
}

/// Spend a code whose exchange was refused, so that it cannot be tried again; if another
/// exchange had redeemed it meanwhile, that is a second use, and its grant is revoked.
async fn spend_refused(
    cx: &GrantContext<'_>,
    client: &Client,
    code_hash: &str,
) -> Result<(), OidcError> {
    let (_, revoked) = revoke_what_was_issued(cx, code_hash).await?;
    if revoked {
        tracing::warn!(client_id = %client.id, "authorization code used twice; the grant issued from it is revoked");
    }
    Ok(())
}

/// RFC 7636: S256 only. A verifier without a challenge is refused too (downgrade protection).
pub(crate) fn verify_pkce(
    challenge: Option<&str>,
    verifier: Option<&str>,
) -> Result<(), OidcError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OidcError::invalid_grant(
            "code_verifier sent but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(OidcError::invalid_grant("code_verifier is required (PKCE)")),
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed {
                return Err(OidcError::invalid_grant(
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
                Err(OidcError::invalid_grant(
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
