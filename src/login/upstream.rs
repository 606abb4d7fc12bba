//! Bridge mode: authenticate the person at the company's own OpenID Connect provider (Entra ID,
//! Google, Okta, Keycloak, another Passerelle…), then hand the resulting [`Identity`] to the
//! same pipeline as a local sign-in. `openidconnect` is the client: discovery (cached, and
//! fetched again when an unknown signing key appears), state + nonce + PKCE, full ID token
//! validation with a bounded clock skew.

use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::RwLock;

use super::OidcHttp;
use crate::config::UpstreamConfig;
use crate::identity::{Identity, Source};

/// How long discovery (and the JWKS) is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Allowed difference between the upstream's clock and ours.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{name} cannot be reached: {detail}")]
    Unreachable { name: String, detail: String },
    #[error("{name} refused the sign-in ({code}{})", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        name: String,
        code: String,
        description: Option<String>,
    },
    #[error("the answer from {name} could not be verified: {detail}")]
    InvalidToken { name: String, detail: String },
    #[error("{name} did not send an email address for this person")]
    NoEmail { name: String },
    #[error("your email address {email} is not verified at {name}")]
    UnverifiedEmail { name: String, email: String },
    #[error("accounts of {domain} cannot sign in here (allowed: {allowed})")]
    ForeignDomain { domain: String, allowed: String },
    #[error("this sign-in attempt is not known to this browser (it expired, or was started in another browser)")]
    UnknownState,
}

/// One configured upstream with its cached discovery.
pub struct Upstream {
    pub config: UpstreamConfig,
    redirect_uri: String,
    http: OidcHttp,
    discovery: RwLock<Option<(Instant, CoreProviderMetadata)>>,
}

/// What the browser session keeps during the round trip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub upstream: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The pending login request to resume afterwards, if any.
    pub req: Option<String>,
}

/// The result of a completed round trip.
pub struct Authenticated {
    pub identity: Identity,
    /// The upstream reported a group overage (Entra `_claim_names`/`hasgroups`).
    pub groups_overage: bool,
}

impl Upstream {
    pub fn new(config: &UpstreamConfig, public_base: &str, http: OidcHttp) -> Upstream {
        Upstream {
            redirect_uri: format!("{public_base}/login/upstream/{}/callback", config.name),
            http,
            config: config.clone(),
            discovery: RwLock::new(None),
        }
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> UpstreamError {
        UpstreamError::Unreachable {
            name: self.config.name.clone(),
            detail: detail.to_string(),
        }
    }

    fn invalid(&self, detail: impl std::fmt::Display) -> UpstreamError {
        UpstreamError::InvalidToken {
            name: self.config.name.clone(),
            detail: detail.to_string(),
        }
    }

    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, UpstreamError> {
        if !refresh {
            if let Some((at, meta)) = self.discovery.read().await.as_ref() {
                if at.elapsed() < DISCOVERY_TTL {
                    return Ok(meta.clone());
                }
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| self.unreachable(e))?;
        let meta = CoreProviderMetadata::discover_async(issuer, &self.http.transport())
            .await
            .map_err(|e| self.unreachable(format!("discovery failed: {e}")))?;
        *self.discovery.write().await = Some((Instant::now(), meta.clone()));
        Ok(meta)
    }

    async fn client(&self, refresh: bool) -> Result<Rp, UpstreamError> {
        let meta = self.metadata(refresh).await?;
        let redirect =
            RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| self.unreachable(e))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.config.client_id.clone()),
            self.config
                .client_secret
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(redirect))
    }

    /// The URL to send the browser to, and the flow to keep in the session.
    pub async fn begin(
        &self,
        req: Option<String>,
        force: bool,
        login_hint: Option<&str>,
        domain_hint: Option<&str>,
    ) -> Result<(String, Flow), UpstreamError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        let scopes = if self.config.scopes.is_empty() {
            vec!["openid".to_string(), "profile".into(), "email".into()]
        } else {
            self.config.scopes.clone()
        };
        for scope in scopes.into_iter().filter(|s| s != "openid") {
            request = request.add_scope(Scope::new(scope));
        }
        if force {
            // Forwarded re-authentication: prompt=login and max_age=0 (SAML ForceAuthn too).
            request = request
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(Duration::ZERO);
        }
        if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
            request = request.set_login_hint(LoginHint::new(hint.to_string()));
        }
        if let Some(hint) = domain_hint.filter(|h| !h.is_empty()) {
            request = request.add_extra_param("domain_hint", hint.to_string());
        }
        let (url, state, nonce) = request.url();
        let flow = Flow {
            upstream: self.config.name.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            req,
        };
        Ok((url.to_string(), flow))
    }

    /// Exchange the code, validate the ID token, build the identity.
    pub async fn complete(&self, flow: &Flow, code: &str) -> Result<Authenticated, UpstreamError> {
        let http = self.http.transport();
        let client = self.client(false).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| self.unreachable(e))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| self.invalid(format!("code exchange failed: {e}")))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| self.invalid("no ID token in the token response"))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let verify = |client: &Rp| {
            let verifier = client
                .id_token_verifier()
                .set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW)
                .set_issue_time_verifier_fn(|issued: chrono::DateTime<chrono::Utc>| {
                    if issued > chrono::Utc::now() + CLOCK_SKEW {
                        Err("issued in the future".to_string())
                    } else {
                        Ok(())
                    }
                });
            id_token
                .claims(&verifier, &nonce)
                .map(|c| c.subject().to_string())
                .map_err(|e| e.to_string())
        };
        let subject = match verify(&client) {
            Ok(s) => s,
            // A key we do not know yet: the upstream rotated. Fetch discovery and JWKS again, once.
            Err(first) if first.contains("key") || first.contains("signature") => {
                let fresh = self.client(true).await?;
                verify(&fresh).map_err(|e| self.invalid(e))?
            }
            Err(e) => return Err(self.invalid(e)),
        };
        let mut claims = jwt_payload(&id_token.to_string())
            .ok_or_else(|| self.invalid("unreadable ID token payload"))?;
        if self.config.use_userinfo {
            self.merge_userinfo(token.access_token().secret(), &subject, &mut claims)
                .await?;
        }
        self.identity_from_claims(&subject, &claims)
    }

    /// Read the userinfo endpoint raw (custom claims such as `department` included) and add what
    /// the ID token lacks. Its `sub` must be the ID token's (OIDC Core §5.3.2).
    async fn merge_userinfo(
        &self,
        access_token: &str,
        subject: &str,
        claims: &mut Value,
    ) -> Result<(), UpstreamError> {
        let meta = self.metadata(false).await?;
        let Some(endpoint) = meta.userinfo_endpoint() else {
            return Ok(());
        };
        let info: Value = self
            .http
            .client()
            .get(endpoint.url().as_str())
            .bearer_auth(access_token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| self.unreachable(format!("userinfo: {e}")))?
            .json()
            .await
            .map_err(|e| self.invalid(format!("userinfo is not JSON: {e}")))?;
        if info.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(self.invalid("userinfo is about another subject"));
        }
        if let (Value::Object(map), Value::Object(extra)) = (claims, info) {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
        Ok(())
    }

    /// Apply the claim names, the email policy and the overage fallback.
    pub fn identity_from_claims(
        &self,
        subject: &str,
        claims: &Value,
    ) -> Result<Authenticated, UpstreamError> {
        let c = &self.config;
        let text = |name: &Option<String>, default: &str| -> Option<String> {
            match claims.get(name.as_deref().unwrap_or(default)) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let email = text(&c.email_claim, "email")
            .map(|e| e.to_lowercase())
            .ok_or_else(|| UpstreamError::NoEmail {
                name: c.name.clone(),
            })?;
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        if c.require_email_verified.unwrap_or(true) && !verified {
            return Err(UpstreamError::UnverifiedEmail {
                name: c.name.clone(),
                email,
            });
        }
        let domain = email.rsplit('@').next().unwrap_or_default().to_string();
        if !c.allowed_email_domains.is_empty()
            && !c
                .allowed_email_domains
                .iter()
                .any(|d| d.trim().eq_ignore_ascii_case(&domain))
        {
            return Err(UpstreamError::ForeignDomain {
                domain,
                allowed: c.allowed_email_domains.join(", "),
            });
        }
        let groups_claim = c.groups_claim.as_deref().unwrap_or("groups");
        let overage = claims.get(groups_claim).is_none()
            && (claims
                .get("_claim_names")
                .and_then(|n| n.get(groups_claim))
                .is_some()
                || claims
                    .get("hasgroups")
                    .is_some_and(|h| h == &Value::Bool(true) || h == "true"));
        let groups = if overage {
            c.groups_overage_fallback.clone()
        } else {
            match claims.get(groups_claim) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            }
        };
        let identity = Identity {
            subject: linked_subject(&c.issuer, subject),
            email,
            email_verified: verified,
            login: None,
            given_name: text(&c.given_name_claim, "given_name"),
            family_name: text(&c.family_name_claim, "family_name"),
            employee_number: text(&c.employee_number_claim, "employee_number"),
            department: text(&c.department_claim, "department"),
            manager_email: text(&c.manager_email_claim, "manager_email").map(|m| m.to_lowercase()),
            job_title: None,
            groups,
            source: Source::Upstream {
                name: c.name.clone(),
                issuer: c.issuer.clone(),
                subject: subject.to_string(),
            },
        };
        Ok(Authenticated {
            identity,
            groups_overage: overage,
        })
    }
}

/// Our `sub` for an upstream account: derived from the upstream's (issuer, subject) only, so a
/// person is linked by who the upstream says they are — never by an email that could be reused.
pub fn linked_subject(issuer: &str, subject: &str) -> String {
    let mut h = openssl::sha::Sha256::new();
    h.update(issuer.trim_end_matches('/').as_bytes());
    h.update(b"\n");
    h.update(subject.as_bytes());
    format!(
        "up-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&h.finish()[..18])
    )
}

fn jwt_payload(token: &str) -> Option<Value> {
    let part = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The configured upstreams, by name.
pub struct Upstreams {
    list: Vec<Upstream>,
}

impl Upstreams {
    /// `http` is the client every upstream calls through (built once at start).
    pub fn new(configs: &[UpstreamConfig], public_base: &str, http: &OidcHttp) -> Upstreams {
        Upstreams {
            list: configs
                .iter()
                .map(|c| Upstream::new(c, public_base, http.clone()))
                .collect(),
        }
    }
    pub fn get(&self, name: &str) -> Option<&Upstream> {
        self.list.iter().find(|u| u.config.name == name)
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|u| u.config.name.as_str())
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream(tweak: impl FnOnce(&mut UpstreamConfig)) -> Upstream {
        let mut c = UpstreamConfig {
            name: "corp".into(),
            issuer: "https://login.example.com".into(),
            client_id: "passerelle".into(),
            allowed_email_domains: vec!["acme.test".into()],
            ..Default::default()
        };
        tweak(&mut c);
        Upstream::new(&c, "https://sso.acme.test", OidcHttp::new().unwrap())
    }

    #[test]
    fn claims_become_an_identity_linked_by_issuer_and_subject() {
        let u = upstream(|c| c.department_claim = Some("dept".into()));
        let claims = json!({"email": "Alice@ACME.test", "email_verified": true, "given_name": "Alice", "dept": "Eng", "groups": ["a", "b"]});
        let a = u.identity_from_claims("00u1", &claims).unwrap();
        assert_eq!(a.identity.email, "alice@acme.test");
        assert_eq!(a.identity.department.as_deref(), Some("Eng"));
        assert_eq!(a.identity.groups, vec!["a", "b"]);
        assert_eq!(
            a.identity.subject,
            linked_subject("https://login.example.com/", "00u1")
        );
        assert_ne!(
            a.identity.subject,
            linked_subject("https://other.example.com", "00u1")
        );
        assert!(!a.groups_overage);
    }

    #[test]
    fn unverified_email_and_foreign_domain_are_refused() {
        let u = upstream(|_| {});
        let unverified = json!({"email": "alice@acme.test", "email_verified": false});
        assert!(matches!(
            u.identity_from_claims("s", &unverified),
            Err(UpstreamError::UnverifiedEmail { .. })
        ));
        let missing = json!({"email": "alice@acme.test"});
        assert!(matches!(
            u.identity_from_claims("s", &missing),
            Err(UpstreamError::UnverifiedEmail { .. })
        ));
        let foreign = json!({"email": "eve@evil.test", "email_verified": true});
        assert!(matches!(
            u.identity_from_claims("s", &foreign),
            Err(UpstreamError::ForeignDomain { .. })
        ));
        let relaxed = upstream(|c| c.require_email_verified = Some(false));
        assert!(relaxed.identity_from_claims("s", &missing).is_ok());
        assert!(matches!(
            u.identity_from_claims("s", &json!({})),
            Err(UpstreamError::NoEmail { .. })
        ));
    }

    #[test]
    fn entra_group_overage_uses_the_fallback() {
        let u = upstream(|c| c.groups_overage_fallback = vec!["corp-employees".into()]);
        let overage = json!({"email": "a@acme.test", "email_verified": true, "_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}});
        let a = u.identity_from_claims("s", &overage).unwrap();
        assert!(a.groups_overage);
        assert_eq!(a.identity.groups, vec!["corp-employees"]);
        let hasgroups = json!({"email": "a@acme.test", "email_verified": true, "hasgroups": true});
        assert!(
            u.identity_from_claims("s", &hasgroups)
                .unwrap()
                .groups_overage
        );
    }
}
