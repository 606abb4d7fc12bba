//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole grant; an access
//! token is revoked alone. Unknown tokens, and tokens of other clients, are left alone without
//! saying so, so the endpoint tells nobody which tokens exist.

use super::grants::GrantContext;
use super::{Client, OidcError};
use crate::store::token_hash;

/// Revoke `token` for the (authenticated) `client`. `hint` is `token_type_hint`: which kind is
/// looked up first.
pub async fn revoke(
    cx: &GrantContext<'_>,
    client: &Client,
    token: Option<&str>,
    hint: Option<&str>,
) -> Result<(), OidcError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OidcError::invalid_request("token is required"))?;
    let hash = token_hash(token);
    let order = if hint == Some("access_token") {
        [Kind::Access, Kind::Refresh]
    } else {
        [Kind::Refresh, Kind::Access]
    };
    for kind in order {
        match kind {
            Kind::Refresh => {
                if let Some(found) = cx.store.oauth().lookup_refresh(&hash).await? {
                    if found.grant.client_id == client.id {
                        cx.store
                            .oauth()
                            .revoke_grant(&found.grant.id, "revoked by the client")
                            .await?;
                        cx.audit(
                            "token.revoke",
                            "refresh_token",
                            Some(&found.grant.subject),
                            &client.id,
                            None,
                        )
                        .await;
                    }
                    return Ok(());
                }
            }
            Kind::Access => {
                if let Some(crate::store::TokenOwner {
                    client_id: owner, ..
                }) = cx.store.oauth().access_token_owner(&hash).await?
                {
                    if owner == client.id {
                        cx.store.oauth().revoke_access_token(&hash).await?;
                        cx.audit("token.revoke", "access_token", None, &client.id, None)
                            .await;
                    }
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Access,
    Refresh,
}

/// What [`revoke_subject`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectRevoked {
    pub grants: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
}

/// End every grant of `subject` with its access and refresh tokens (an admin revoke, a leaver).
/// Idempotent: a second call finds nothing left.
pub async fn revoke_subject(
    store: &crate::store::Store,
    subject: &str,
    reason: &str,
) -> Result<SubjectRevoked, crate::store::StoreError> {
    let live = store.person_revocations().live_tokens(subject).await?;
    let mut revoked = SubjectRevoked {
        access_tokens: live.access_tokens,
        refresh_tokens: live.refresh_tokens,
        ..Default::default()
    };
    for grant in store.oauth().grants_of_subject(subject).await? {
        if store.oauth().revoke_grant(&grant.id, reason).await? {
            revoked.grants += 1;
        }
    }
    Ok(revoked)
}
