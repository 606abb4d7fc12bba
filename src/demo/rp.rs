//! The demo relying party: a real OIDC client (the `openidconnect` crate) that signs in through
//! this very server over HTTP, exactly as Lucca would, and shows the verified ID token claims.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::DemoState;
use crate::web::{Message, PageError};

const SESSION_KEY: &str = "demo_rp";

#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;
async fn relying_party(state: &DemoState) -> Result<Rp, PageError> {
    let issuer = IssuerUrl::new(state.base_url.to_string())
        .map_err(|e| PageError::internal("demo issuer", e))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &state.oidc_http.transport())
        .await
        .map_err(|e| PageError::internal("demo discovery", e))?;
    let redirect = RedirectUrl::new(state.url("/demo/oidc/callback"))
        .map_err(|e| PageError::internal("demo redirect", e))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(super::DEMO_CLIENT_ID.into()),
        super::demo_client_secret(&state.config).map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(redirect))
}

/// `GET /demo/oidc/start`: begin a code + PKCE flow as the demo client.
pub async fn start(
    State(state): State<DemoState>,
    session: Session,
) -> Result<Response, PageError> {
    let rp = relying_party(&state).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("groups".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
    };
    session
        .insert(SESSION_KEY, &pending)
        .await
        .map_err(|e| PageError::internal("session", e))?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /demo/oidc/callback`: exchange the code, verify the ID token, show its claims.
pub async fn callback(
    State(state): State<DemoState>,
    session: Session,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    if let Some(error) = q.error {
        return Err(PageError::bad_request(
            "demo.failed.title",
            Message::new("demo.failed.message")
                .arg("error", error)
                .arg("description", q.error_description.unwrap_or_default()),
        )
        .with_retry("/demo/oidc/start"));
    }
    let pending: Pending = session
        .remove(SESSION_KEY)
        .await
        .map_err(|e| PageError::internal("session", e))?
        .ok_or_else(|| {
            PageError::bad_request("demo.nothing_pending.title", "demo.nothing_pending.message")
                .with_retry("/")
        })?;
    if q.state.as_deref() != Some(pending.state.as_str()) {
        return Err(PageError::bad_request(
            "demo.state_mismatch.title",
            "demo.state_mismatch.message",
        )
        .with_retry("/"));
    }
    let code = q
        .code
        .ok_or_else(|| PageError::bad_request("demo.no_code.title", "demo.no_code.message"))?;
    let rp = relying_party(&state).await?;
    let http = state.oidc_http.transport();
    let token = rp
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| PageError::internal("demo exchange", e))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&http)
        .await
        .map_err(|e| PageError::internal("demo code exchange", e))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| PageError::internal("demo", "no ID token in the answer"))?;
    id_token
        .claims(&rp.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| PageError::internal("demo ID token verification", e))?;
    let payload = id_token.to_string();
    let claims: serde_json::Value = payload
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let rows: Vec<(String, String)> = claims
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Html(state.templates.render(
        "demo_callback.html",
        minijinja::context! {
            title => state.templates.message(&"demo.oidc.title".into()),
            subtitle => state.templates.message(&"demo.oidc.subtitle".into()),
            rows => rows,
            raw => serde_json::to_string_pretty(&claims).unwrap_or_default(),
        },
    ))
    .into_response())
}
