//! RP-initiated logout, checked without HTTP: is the `id_token_hint` ours, does it agree with
//! `client_id`, and is `post_logout_redirect_uri` registered for that client?

use serde::Deserialize;
use url::Url;

use super::Provider;
use crate::keys::Keys;

/// The parameters of `/oidc/logout`, as received.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    /// The confirmation form's token (POST only).
    pub csrf_token: Option<String>,
}

/// What the parameters amount to, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLogout {
    /// The hint's subject, when the hint is a token we signed.
    pub hint_subject: Option<String>,
    /// Where to send the person afterwards, with `state`.
    pub redirect: Option<String>,
}

/// Check a logout request; the refusal is the message (a catalogue key) to show the person.
pub fn check_logout(
    keys: &Keys,
    provider: &Provider,
    p: &LogoutParams,
) -> Result<CheckedLogout, &'static str> {
    let mut hint_subject = None;
    let mut hint_client = None;
    if let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        // Expired hints are fine (the spec expects them); the signature and issuer must hold.
        match keys.verify_jwt(hint) {
            Ok(claims)
                if claims.get("iss").and_then(|v| v.as_str()) == Some(provider.issuer.as_str()) =>
            {
                hint_subject = claims
                    .get("sub")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                hint_client = claims
                    .get("aud")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
            }
            _ => return Err("oidc.logout.foreign_hint"),
        }
    }
    let client_id = match (
        hint_client,
        p.client_id.as_deref().filter(|c| !c.is_empty()),
    ) {
        (Some(h), Some(c)) if h != c => return Err("oidc.logout.client_mismatch"),
        (Some(h), _) => Some(h),
        (None, c) => c.map(str::to_string),
    };
    let redirect = match p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => {
            let Some(client) = client_id.as_deref().and_then(|id| provider.clients.get(id)) else {
                return Err("oidc.logout.unidentified");
            };
            if !client.accepts_post_logout_uri(uri) {
                return Err("oidc.logout.unregistered");
            }
            let mut url = Url::parse(uri).map_err(|_| "oidc.logout.not_a_url")?;
            if let Some(s) = p.state.as_deref() {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.to_string())
        }
    };
    Ok(CheckedLogout {
        hint_subject,
        redirect,
    })
}
