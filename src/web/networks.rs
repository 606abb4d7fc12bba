//! `[login] allowed_networks`: sign-in only from the company's networks.
//!
//! Applied to every page a person's browser visits, except the few that must answer anyone
//! (metadata, sign-out): a route added later is covered without anyone remembering to. The
//! token endpoint applies the same rule itself (it answers OAuth JSON, and some clients are
//! exempt); health, metrics, discovery and JWKS live outside the browser routes.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use std::sync::Arc;

use super::{ClientAddr, Templates, TrustedProxies};
use crate::config::Network;

/// What the middleware reads: the allowed networks, the proxies whose `X-Forwarded-For` is
/// believed, and the templates of the refusal page.
#[derive(Clone)]
pub struct NetworkPolicy {
    /// `[login] allowed_networks`; `None` allows every network.
    pub allowed: Option<Arc<[Network]>>,
    pub trusted_proxies: TrustedProxies,
    pub templates: Arc<Templates>,
}

/// Browser paths reachable from every network even when `allowed_networks` is set.
const OPEN_PATHS: [&str; 7] = [
    "/saml/metadata",
    "/saml/metadata.xml",
    "/saml/slo",
    "/saml/slo/resume",
    "/saml/slo/propagate",
    "/logout",
    "/oidc/logout",
];

/// May this client sign in? Everyone when `allowed_networks` is unset; otherwise only an
/// address inside one of them (an unknown address is not).
pub fn sign_in_allowed(allowed_networks: Option<&[Network]>, client: ClientAddr) -> bool {
    match allowed_networks {
        None => true,
        Some(networks) => client
            .0
            .is_some_and(|ip| networks.iter().any(|n| n.contains(ip))),
    }
}

/// Middleware over the browser routes.
pub async fn require_allowed_network(
    State(policy): State<NetworkPolicy>,
    request: Request,
    next: Next,
) -> Response {
    if policy.allowed.is_none() || OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let client = ClientAddr::from_parts(&parts, &policy.trusted_proxies.0);
    if sign_in_allowed(policy.allowed.as_deref(), client) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    tracing::info!(client = %client, path = %parts.uri.path(), "sign-in refused: client outside login.allowed_networks");
    metrics::counter!("passerelle_signins_total", "method" => "any", "outcome" => "network_refused")
        .increment(1);
    let page = super::PageError::new(
        StatusCode::FORBIDDEN,
        "error.network.title",
        super::Message::new("error.network.message").arg("address", client.to_string()),
    );
    super::error_page(&policy.templates, &page)
}
