//! The authorization request, checked without HTTP: who asks, where the answer goes, and then
//! everything else (response type and mode, scopes, PKCE, prompt, max_age). A bad `client_id`
//! or `redirect_uri` is to be shown to the person and never redirected to; every other refusal
//! is told to the client at its verified redirect URI (RFC 6749 §4.1.2.1).

use serde::{Deserialize, Serialize};

use super::{Client, Clients};

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

/// The parameters of an authorization request, as received.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub domain_hint: Option<String>,
    pub response_mode: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// A validated request, stored while the person signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub max_age: Option<i64>,
    pub prompt_none: bool,
    pub form_post: bool,
    pub login_hint: Option<String>,
    pub domain_hint: Option<String>,
}

/// Why an authorization request is refused, and how the refusal is delivered.
#[derive(Debug)]
pub enum RequestRefusal {
    /// The client or its redirect URI cannot be trusted: shown as a page, never redirected.
    Show(&'static str),
    /// Told to the client at its (verified) redirect URI, RFC 6749 §4.1.2.1.
    Tell {
        redirect_uri: String,
        state: Option<String>,
        form_post: bool,
        error: &'static str,
        description: String,
    },
}

/// The whole check of an authorization request, without HTTP: who asks, where the answer goes,
/// and then everything else.
pub fn check_request<'c>(
    clients: &'c Clients,
    p: &AuthorizeParams,
) -> Result<(&'c Client, ValidRequest), RequestRefusal> {
    // 1. Who is asking and where the answer goes: failures here are shown, never redirected.
    let client = match p.client_id.as_deref().filter(|c| !c.is_empty()) {
        None => return Err(RequestRefusal::Show("oidc.no_client")),
        Some(id) => clients
            .get(id)
            .ok_or(RequestRefusal::Show("oidc.unknown_client"))?,
    };
    let redirect_uri = match p.redirect_uri.as_deref().filter(|r| !r.is_empty()) {
        None => return Err(RequestRefusal::Show("oidc.no_redirect_uri")),
        Some(r) if client.accepts_redirect_uri(r) => r.to_string(),
        Some(_) => return Err(RequestRefusal::Show("oidc.redirect_uri_mismatch")),
    };
    let form_post = p.response_mode.as_deref() == Some("form_post");
    let tell = |state: Option<String>, error, description| RequestRefusal::Tell {
        redirect_uri: redirect_uri.clone(),
        state,
        form_post,
        error,
        description,
    };
    if p.state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(tell(None, "invalid_request", "state is too long".into()));
    }

    // 2. Everything else is reported to the client.
    match validate(client, p, redirect_uri.clone()) {
        Err((error, description)) => Err(tell(p.state.clone(), error, description)),
        Ok(request) => Ok((client, request)),
    }
}

fn validate(
    client: &Client,
    p: &AuthorizeParams,
    redirect_uri: String,
) -> Result<ValidRequest, (&'static str, String)> {
    if p.request.is_some() {
        return Err((
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    if p.request_uri.is_some() {
        return Err((
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => return Err(("invalid_request", "response_type is required".into())),
        Some(other) => {
            return Err((
                "unsupported_response_type",
                format!(
                    "response_type `{}` is not supported; use `code`",
                    super::quoted(other)
                ),
            ))
        }
    }
    match p.response_mode.as_deref() {
        None | Some("query") | Some("form_post") => {}
        Some(other) => {
            return Err((
                "invalid_request",
                format!("response_mode `{}` is not supported", super::quoted(other)),
            ))
        }
    }
    let scopes = client.grantable_scopes(p.scope.as_deref().unwrap_or(""));
    if !p
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .any(|s| s == "openid")
    {
        return Err(("invalid_scope", "the openid scope is required".into()));
    }
    if p.nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(("invalid_request", "nonce is too long".into()));
    }
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, Some(_)) => {
            return Err((
                "invalid_request",
                "code_challenge_method without code_challenge".into(),
            ))
        }
        (None, None) if client.require_pkce => return Err((
            "invalid_request",
            "PKCE is required for this client: send code_challenge with code_challenge_method=S256"
                .into(),
        )),
        (None, None) => None,
        (Some(_), None | Some("plain")) => {
            return Err((
                "invalid_request",
                "PKCE method `plain` is not supported; use code_challenge_method=S256".into(),
            ))
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err((
                "invalid_request",
                format!(
                    "PKCE method `{}` is not supported; use S256",
                    super::quoted(m)
                ),
            ))
        }
        (Some(c), Some(_)) => {
            // A SHA-256 digest in base64url is exactly 43 characters.
            let well_formed = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err((
                    "invalid_request",
                    "code_challenge is not a base64url SHA-256 digest".into(),
                ));
            }
            Some(c.to_string())
        }
    };
    let prompts: Vec<&str> = p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Err((
            "invalid_request",
            "prompt=none cannot be combined with other prompt values".into(),
        ));
    }
    if let Some(unknown) = prompts
        .iter()
        .find(|p| !["none", "login", "consent", "select_account"].contains(p))
    {
        return Err((
            "invalid_request",
            format!("unknown prompt value `{}`", super::quoted(unknown)),
        ));
    }
    let max_age = match p.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(m.parse::<u32>().map_err(|_| {
            (
                "invalid_request",
                "max_age must be a non-negative integer".to_string(),
            )
        })? as i64),
    };
    // prompt=login and select_account are served by a fresh authentication, like max_age=0.
    let force = prompts
        .iter()
        .any(|p| *p == "login" || *p == "select_account");
    Ok(ValidRequest {
        client_id: client.id.clone(),
        redirect_uri,
        scopes,
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        code_challenge,
        max_age: if force { Some(0) } else { max_age },
        prompt_none: prompts.contains(&"none"),
        form_post: p.response_mode.as_deref() == Some("form_post"),
        login_hint: p.login_hint.clone().filter(|h| h.len() <= 256),
        domain_hint: p.domain_hint.clone().filter(|h| h.len() <= 256),
    })
}
