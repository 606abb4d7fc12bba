//! The entry point of the `oidc_params` fuzz target (`fuzz/`): arbitrary bytes through the
//! authorization and token parameter parsing and validation the handlers use, with the
//! security properties checked as assertions (a panic is a finding).

use std::sync::OnceLock;

use base64::Engine;

use super::clients::ClientCredentials;
use super::grants::authorization_code::verify_pkce;
use super::http::token::TokenForm;
use super::request::{check_request, AuthorizeParams, RequestRefusal};
use super::{quoted, Clients};
use crate::config::{ClientConfig, Secret};

pub const CONFIDENTIAL_SECRET: &str = "fuzz-client-secret-0123456789";
pub const CONFIDENTIAL_REDIRECT: &str = "https://acme.ilucca.test/identity/oidc/callback";
/// RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        Clients::new(&[
            ClientConfig {
                client_id: "lucca".into(),
                client_secret: Some(Secret::new(CONFIDENTIAL_SECRET)),
                redirect_uris: vec![CONFIDENTIAL_REDIRECT.into()],
                ..Default::default()
            },
            ClientConfig {
                client_id: "mobile".into(),
                redirect_uris: vec![
                    "com.example.app:/callback".into(),
                    "http://127.0.0.1/cb".into(),
                    "http://[::1]/cb".into(),
                ],
                ..Default::default()
            },
        ])
    })
}

/// `data` as an authorization request's query string, and (after an optional first line taken
/// as the `Authorization` header) as a token request's form body.
pub fn oidc_params(data: &[u8]) {
    authorize_request(data);
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    token_request(header.and_then(|h| std::str::from_utf8(h).ok()), body);
    token_request(None, data);
}

fn authorize_request(data: &[u8]) {
    let Ok(p) = serde_urlencoded::from_bytes::<AuthorizeParams>(data) else {
        return;
    };
    match check_request(clients(), &p) {
        Ok((client, request)) => {
            // Accepted: the answer goes to a registered address of the named client, with the
            // values the request carried, within their bounds.
            assert_eq!(Some(client.id.as_str()), p.client_id.as_deref());
            assert!(client.accepts_redirect_uri(&request.redirect_uri));
            assert_eq!(
                Some(request.redirect_uri.as_str()),
                p.redirect_uri.as_deref()
            );
            if client.id == "lucca" {
                assert_eq!(request.redirect_uri, CONFIDENTIAL_REDIRECT);
            } else {
                assert!(
                    request.redirect_uri == "com.example.app:/callback"
                        || request.redirect_uri.starts_with("http://127.0.0.1")
                        || request.redirect_uri.starts_with("http://[::1]"),
                    "{}",
                    request.redirect_uri
                );
            }
            assert!(request
                .scopes
                .iter()
                .all(|s| super::SUPPORTED_SCOPES.contains(&s.as_str())));
            if client.is_public() {
                assert!(request.code_challenge.is_some(), "public clients need PKCE");
            }
            if let Some(c) = &request.code_challenge {
                assert_eq!(c.len(), 43);
                assert_eq!(p.code_challenge_method.as_deref(), Some("S256"));
            }
            assert!(request.state.as_ref().is_none_or(|s| s.len() <= 2048));
            assert!(request.nonce.as_ref().is_none_or(|n| n.len() <= 512));
            assert!(request.login_hint.as_ref().is_none_or(|h| h.len() <= 256));
        }
        Err(RequestRefusal::Show(_)) => {}
        Err(RequestRefusal::Tell {
            redirect_uri,
            state,
            description,
            ..
        }) => {
            // Only a verified address is ever told anything, and errors stay short.
            let client = p
                .client_id
                .as_deref()
                .and_then(|id| clients().get(id))
                .expect("an error is told only to a known client");
            assert!(client.accepts_redirect_uri(&redirect_uri));
            assert!(state.as_ref().is_none_or(|s| s.len() <= 2048));
            assert!(description.len() < 400, "{} bytes", description.len());
        }
    }
}

fn token_request(authorization: Option<&str>, body: &[u8]) {
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(body) else {
        return;
    };
    if let Ok(creds) = ClientCredentials::from_request(
        authorization,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        if let Ok(client) = clients().authenticate(&creds) {
            // Authenticated: the right secret for the confidential client, none for the public.
            assert_eq!(creds.client_id.as_deref(), Some(client.id.as_str()));
            if client.is_public() {
                assert!(creds.client_secret.is_none());
            } else {
                assert_eq!(creds.client_secret.as_deref(), Some(CONFIDENTIAL_SECRET));
            }
        }
    }
    // PKCE: only the one verifier proves the known challenge.
    if verify_pkce(Some(CHALLENGE), form.code_verifier.as_deref()).is_ok() {
        assert_eq!(form.code_verifier.as_deref(), Some(VERIFIER));
    }
    if let (Some(challenge), Some(verifier)) = (form.code.as_deref(), form.code_verifier.as_deref())
    {
        if verify_pkce(Some(challenge), Some(verifier)).is_ok() {
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(openssl::sha::sha256(verifier.as_bytes()));
            assert_eq!(computed, challenge);
        }
    }
    for client in ["lucca", "mobile"]
        .iter()
        .filter_map(|id| clients().get(id))
    {
        let granted = client.grantable_scopes(form.scope.as_deref().unwrap_or(""));
        assert!(granted
            .iter()
            .all(|s| super::SUPPORTED_SCOPES.contains(&s.as_str())));
        if let Some(uri) = form.redirect_uri.as_deref() {
            if client.accepts_redirect_uri(uri) && client.id == "lucca" {
                assert_eq!(uri, CONFIDENTIAL_REDIRECT);
            }
        }
    }
    for value in [
        &form.grant_type,
        &form.scope,
        &form.code,
        &form.refresh_token,
    ]
    .into_iter()
    .flatten()
    {
        assert!(quoted(value).chars().count() <= 41);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_requests_pass_through_every_check() {
        oidc_params(
            format!("response_type=code&client_id=mobile&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcb&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256").as_bytes(),
        );
        oidc_params(
            format!("Basic bHVjY2E6ZnV6ei1jbGllbnQtc2VjcmV0LTAxMjM0NTY3ODk=\ngrant_type=authorization_code&code=x&code_verifier={VERIFIER}").as_bytes(),
        );
        oidc_params(
            b"client_id=lucca&client_secret=fuzz-client-secret-0123456789&scope=openid%20email",
        );
        oidc_params(b"");
        oidc_params(b"\xff\xfe=\x00&&==");
    }
}
