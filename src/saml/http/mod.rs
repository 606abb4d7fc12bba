//! The SAML IdP's HTTP edge: thin handlers over the protocol core ([`crate::saml`]) for the
//! metadata ([`metadata`]), SSO in both bindings and IdP-initiated sign-in ([`sso`]), and single
//! logout in both directions ([`slo`]). They extract `State<SamlState>`, call the core, and map
//! its answer to an auto-POST page, a redirect, or an error page. The person is signed in (and
//! out) by `login/`; what is released comes from the pipeline, exactly as for OIDC.
//!
//! Cross-site POSTs: Lucca's HTTP-POST AuthnRequest arrives cross-site, so the SameSite=Lax
//! session cookie is not sent with it. Every POSTed request is therefore validated, stored, and
//! answered with a 303 to a same-site `GET …/resume?req=…`, where the cookie is sent and the
//! decision (existing session, sign-in, passive failure) is made.

mod metadata;
mod slo;
mod sso;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use super::SamlIdp;
use crate::config::MatchOn;
use crate::keys::Keys;
use crate::login::LoginState;
use crate::pipeline::Pipeline;
use crate::store::{AuditEvent, Store};
use crate::web::{Message, PageError, Templates, TrustedProxies};

pub use slo::SingleLogout;

/// What the SAML handlers share: cheap to clone.
#[derive(Clone)]
pub struct SamlState {
    /// Registered SPs (refreshed in place), intake policy, our URLs, `[saml]` settings.
    pub idp: Arc<SamlIdp>,
    /// Pending sign-ins and logout chains, replay claims, the audit log.
    pub store: Store,
    pub keys: Arc<Keys>,
    pub pipeline: Arc<Pipeline>,
    /// Sessions and their settings, signing out.
    pub login: LoginState,
    pub templates: Arc<Templates>,
    /// `[lucca] match_on`: the NameID of an SP that does not choose its own identifier.
    pub match_on: MatchOn,
    /// `public_url` without a trailing slash.
    pub public_url: Arc<str>,
}

/// The browser routes (they need the session layer).
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SamlState: FromRef<S>,
    TrustedProxies: FromRef<S>,
{
    Router::new()
        .route("/saml/metadata", get(metadata::metadata))
        .route("/saml/metadata.xml", get(metadata::metadata_download))
        .route("/saml/sso", get(sso::sso_redirect).post(sso::sso_post))
        .route("/saml/sso/resume", get(sso::sso_resume))
        .route("/saml/idp-init", get(sso::idp_initiated))
        .route("/saml/slo", get(slo::slo_redirect).post(slo::slo_post))
        .route("/saml/slo/resume", get(slo::slo_resume))
        .route("/saml/slo/propagate", get(slo::slo_propagate))
}

/// A POSTed SAML message (either binding's form fields).
#[derive(Deserialize)]
pub struct PostMessage {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
}

/// The auto-POST page: submits itself with JavaScript, or with a button without it.
fn auto_post(
    state: &SamlState,
    action: &str,
    target_name: &str,
    field: &str,
    value: &str,
    relay_state: Option<&str>,
) -> Response {
    let mut fields = vec![minijinja::context! { name => field, value => value }];
    if let Some(relay) = relay_state {
        fields.push(minijinja::context! { name => "RelayState", value => relay });
    }
    Html(state.templates.render(
        "form_post.html",
        minijinja::context! { action => action, fields => fields, target_name => target_name },
    ))
    .into_response()
}

fn bad_message(message: Message) -> PageError {
    PageError::bad_request("saml.bad_request.title", message)
}

fn bad_logout(detail: Message) -> PageError {
    PageError::bad_request(
        "saml.bad_logout.title",
        Message::new("saml.bad_logout.message").nested("detail", detail),
    )
}

fn unknown_sp() -> PageError {
    PageError::bad_request("saml.unknown_sp.title", "saml.unknown_sp.message")
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn unix_time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now)
}

/// An audit row for `event` (`saml.sso`, `saml.slo`); a failed write is logged, not fatal.
async fn audit(
    state: &SamlState,
    event: &str,
    outcome: &str,
    sp: Option<&str>,
    subject: Option<&str>,
    ip: &str,
    reason: Option<&str>,
) {
    if let Err(e) = state
        .store
        .audit()
        .record(AuditEvent {
            event,
            outcome,
            subject,
            client: sp,
            ip: Some(ip),
            detail: reason.map(|r| serde_json::json!({ "reason": r })),
        })
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
}
