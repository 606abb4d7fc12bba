//! The registered clients: exact redirect-URI matching (with RFC 8252 loopback ports) and
//! client authentication with a constant-time secret comparison.

use std::collections::HashMap;

use base64::Engine;
use url::Url;

use super::OidcError;
use crate::config::{ClientConfig, RefreshPolicy};

pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 of the secret; None for a public client.
    secret_sha256: Option<[u8; 32]>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub require_pkce: bool,
    pub refresh: RefreshPolicy,
    pub allowed_scopes: Vec<String>,
    pub groups_claim: String,
    pub release_claims: Vec<String>,
    /// Exempt from `[login] allowed_networks` at the token endpoint.
    pub token_from_any_network: bool,
    /// `allowed_groups`, trimmed: empty = everyone.
    pub allowed_groups: Vec<String>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_sha256.is_none()
    }

    /// Is `uri` one of the registered redirect URIs? Exact string comparison, except that a
    /// registered loopback IP URI (`http://127.0.0.1/cb`, `http://[::1]/cb`) accepts any port,
    /// as native apps pick a free port at run time (RFC 8252 §7.3).
    pub fn accepts_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, uri))
    }

    pub fn accepts_post_logout_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, uri))
    }

    /// The scopes of `requested` this client may have, in request order, without duplicates.
    pub fn grantable_scopes(&self, requested: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in requested.split(' ').filter(|s| !s.is_empty()) {
            let known = super::SUPPORTED_SCOPES.contains(&s);
            let allowed = self.allowed_scopes.is_empty()
                || self.allowed_scopes.iter().any(|a| a == s)
                || s == "openid";
            if known && allowed && !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        out
    }
}

/// Constant time whatever is presented: both sides are SHA-256 digests, compared with
/// `CRYPTO_memcmp`.
fn digest_matches(presented: &str, expected: &[u8; 32]) -> bool {
    openssl::memcmp::eq(&openssl::sha::sha256(presented.as_bytes()), expected)
}

fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(reg), Ok(pre)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback_ip = |u: &Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    // Compare everything but the port, on the raw strings, so that no normalisation can
    // widen the match.
    if !(loopback_ip(&reg) && loopback_ip(&pre) && reg.port().is_none()) {
        return false;
    }
    let strip_port = |u: &Url| {
        let mut u = u.clone();
        let _ = u.set_port(None);
        u.to_string()
    };
    strip_port(&reg) == strip_port(&pre)
        && reg.host() == pre.host()
        && presented.starts_with("http://")
}

/// Why client authentication failed. Those about who the client is (unknown, wrong or missing
/// secret) all become one identical `invalid_client` answer; the details go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("unknown client")]
    UnknownClient,
    #[error("wrong client secret")]
    WrongSecret,
    #[error("client authentication is required for this client")]
    MissingSecret,
    #[error("a public client has no secret to present")]
    UnexpectedSecret,
    #[error("client credentials were sent in more than one way")]
    MultipleMethods,
    #[error("malformed Authorization header")]
    MalformedHeader,
    #[error("client_id is missing")]
    MissingClientId,
}

/// How the client presented itself.
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub basic: bool,
}

impl ClientCredentials {
    /// From `Authorization: Basic` (RFC 6749 §2.3.1: form-urlencoded id and secret) and/or the body.
    pub fn from_request(
        authorization: Option<&str>,
        body_id: Option<&str>,
        body_secret: Option<&str>,
    ) -> Result<ClientCredentials, ClientAuthError> {
        if let Some(value) = authorization.and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        }) {
            if body_secret.is_some() {
                return Err(ClientAuthError::MultipleMethods);
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| ClientAuthError::MalformedHeader)?;
            let text = String::from_utf8(decoded).map_err(|_| ClientAuthError::MalformedHeader)?;
            let (id, secret) = text
                .split_once(':')
                .ok_or(ClientAuthError::MalformedHeader)?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let id = decode(id);
            if body_id.is_some_and(|b| b != id) {
                return Err(ClientAuthError::MultipleMethods);
            }
            return Ok(ClientCredentials {
                client_id: Some(id),
                client_secret: Some(decode(secret)),
                basic: true,
            });
        }
        Ok(ClientCredentials {
            client_id: body_id.map(str::to_string),
            client_secret: body_secret.map(str::to_string),
            basic: false,
        })
    }
}

pub struct Clients {
    by_id: HashMap<String, Client>,
    /// Compared against when the client is unknown or public, so every failure costs the same.
    dummy_sha256: [u8; 32],
}

impl Clients {
    pub fn new(configs: &[ClientConfig]) -> Clients {
        let by_id = configs
            .iter()
            .map(|c| {
                let secret_sha256 = c
                    .client_secret
                    .as_ref()
                    .filter(|s| !s.is_empty())
                    .map(|s| openssl::sha::sha256(s.expose().as_bytes()));
                let client = Client {
                    id: c.client_id.clone(),
                    name: c.name.clone().unwrap_or_else(|| c.client_id.clone()),
                    secret_sha256,
                    redirect_uris: c.redirect_uris.clone(),
                    post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                    require_pkce: c.require_pkce || c.is_public(),
                    refresh: c.refresh_tokens,
                    allowed_scopes: c.allowed_scopes.clone(),
                    groups_claim: c.groups_claim.clone().unwrap_or_else(|| "groups".into()),
                    release_claims: c.release_claims.clone(),
                    token_from_any_network: c.token_from_any_network,
                    allowed_groups: crate::pipeline::clean_groups(&c.allowed_groups),
                };
                (c.client_id.clone(), client)
            })
            .collect();
        let mut dummy_sha256 = [0u8; 32];
        // A random digest no secret hashes to; a failed RNG leaves zeros, equally unmatchable.
        let _ = openssl::rand::rand_bytes(&mut dummy_sha256);
        Clients {
            by_id,
            dummy_sha256,
        }
    }

    pub fn get(&self, client_id: &str) -> Option<&Client> {
        self.by_id.get(client_id)
    }

    /// Authenticate a client at the token or revocation endpoint.
    pub fn authenticate(&self, creds: &ClientCredentials) -> Result<&Client, ClientAuthError> {
        let id = creds
            .client_id
            .as_deref()
            .ok_or(ClientAuthError::MissingClientId)?;
        let client = self.get(id);
        // One digest and one comparison on every path that carries a secret, found or not.
        let expected = client
            .and_then(|c| c.secret_sha256.as_ref())
            .unwrap_or(&self.dummy_sha256);
        let secret_ok = creds
            .client_secret
            .as_deref()
            .is_some_and(|s| digest_matches(s, expected));
        let Some(client) = client else {
            return Err(ClientAuthError::UnknownClient);
        };
        match (&creds.client_secret, client.is_public()) {
            (Some(_), false) if secret_ok => Ok(client),
            (Some(_), false) => Err(ClientAuthError::WrongSecret),
            (None, false) => Err(ClientAuthError::MissingSecret),
            (None, true) => Ok(client),
            (Some(_), true) => Err(ClientAuthError::UnexpectedSecret),
        }
    }
}

/// Authenticate the client of a token or revocation request: `authorization` is the
/// `Authorization` header, `body_id`/`body_secret` the form's `client_id`/`client_secret`.
pub fn authenticate_client<'c>(
    clients: &'c Clients,
    authorization: Option<&str>,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<&'c Client, OidcError> {
    let creds =
        ClientCredentials::from_request(authorization, body_id, body_secret).map_err(|e| {
            tracing::info!(error = %e, "client authentication failed");
            OidcError::invalid_request(e.to_string())
        })?;
    clients.authenticate(&creds).map_err(|e| {
        let shown: String = creds
            .client_id
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect();
        tracing::info!(client_id = %shown, error = %e, "client authentication failed");
        // The same answer, byte for byte, whatever was wrong: an unknown client must not be
        // told apart from a wrong secret (the log has the reason).
        OidcError::InvalidClient { basic: creds.basic }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn clients() -> Clients {
        Clients::new(&[
            ClientConfig {
                client_id: "lucca".into(),
                client_secret: Some(Secret::new("0123456789abcdef-secret")),
                redirect_uris: vec!["https://acme.ilucca.net/identity/oidc/callback".into()],
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
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let c = clients();
        let lucca = c.get("lucca").unwrap();
        assert!(lucca.accepts_redirect_uri("https://acme.ilucca.net/identity/oidc/callback"));
        for bad in [
            "https://acme.ilucca.net/identity/oidc/callback/",
            "https://acme.ilucca.net/identity/oidc/callback?x=1",
            "https://ACME.ilucca.net/identity/oidc/callback",
            "https://acme.ilucca.net:443/identity/oidc/callback",
            "https://evil.example/identity/oidc/callback",
            "https://acme.ilucca.net.evil.example/identity/oidc/callback",
        ] {
            assert!(!lucca.accepts_redirect_uri(bad), "{bad}");
        }
    }

    #[test]
    fn native_app_redirects() {
        let c = clients();
        let m = c.get("mobile").unwrap();
        assert!(m.accepts_redirect_uri("com.example.app:/callback"));
        assert!(m.accepts_redirect_uri("http://127.0.0.1:51234/cb"));
        assert!(m.accepts_redirect_uri("http://127.0.0.1/cb"));
        assert!(m.accepts_redirect_uri("http://[::1]:8000/cb"));
        assert!(!m.accepts_redirect_uri("com.example.app:/callback2"));
        assert!(!m.accepts_redirect_uri("http://127.0.0.1:51234/other"));
        assert!(!m.accepts_redirect_uri("http://localhost:51234/cb"));
        assert!(!m.accepts_redirect_uri("https://127.0.0.1:51234/cb"));
        assert!(!m.accepts_redirect_uri("http://127.0.0.2:51234/cb"));
        assert!(!m.accepts_redirect_uri("http://127.0.0.1:51234/cb?x=1"));
    }

    #[test]
    fn client_authentication() {
        let c = clients();
        let basic = |id: &str, secret: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
            )
        };
        let ok = ClientCredentials::from_request(
            Some(&basic("lucca", "0123456789abcdef-secret")),
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.authenticate(&ok).unwrap().id, "lucca");
        let wrong =
            ClientCredentials::from_request(Some(&basic("lucca", "nope")), None, None).unwrap();
        assert!(matches!(
            c.authenticate(&wrong),
            Err(ClientAuthError::WrongSecret)
        ));
        let post =
            ClientCredentials::from_request(None, Some("lucca"), Some("0123456789abcdef-secret"))
                .unwrap();
        assert!(c.authenticate(&post).is_ok());
        let none = ClientCredentials::from_request(None, Some("lucca"), None).unwrap();
        assert!(matches!(
            c.authenticate(&none),
            Err(ClientAuthError::MissingSecret)
        ));
        let public = ClientCredentials::from_request(None, Some("mobile"), None).unwrap();
        assert!(c.authenticate(&public).unwrap().is_public());
        assert!(matches!(
            ClientCredentials::from_request(Some(&basic("lucca", "x")), None, Some("y")),
            Err(ClientAuthError::MultipleMethods)
        ));
        let unknown = ClientCredentials::from_request(None, Some("nobody"), None).unwrap();
        assert!(matches!(
            c.authenticate(&unknown),
            Err(ClientAuthError::UnknownClient)
        ));
    }

    #[test]
    fn scopes_are_filtered() {
        let c = clients();
        assert_eq!(
            c.get("lucca")
                .unwrap()
                .grantable_scopes("openid  email bogus email groups"),
            vec!["openid", "email", "groups"]
        );
    }
}
