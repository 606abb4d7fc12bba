//! `POST /oidc/token`: client authentication, then one grant type per file.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};

use super::clients::ClientCredentials;
use super::id_token::{issue_id_token, IdTokenInput};
use super::Client;
use crate::config::RefreshPolicy;
use crate::identity::Claims;
use crate::store::{token_hash, AuditEvent};
use crate::web::{random_token, AppState, ClientAddr, OAuthError};

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

pub async fn token(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let ip = addr.to_string();
    let Ok(Form(form)) = form else {
        return OAuthError::invalid_request("the body must be application/x-www-form-urlencoded")
            .into_response();
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = match authenticate_client(
        &state,
        authorization,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = network_allowed(&state, client, addr) {
        return e.into_response();
    }
    let result = match form.grant_type.as_deref() {
        Some("authorization_code") => {
            super::authorization_code::exchange(&state, client, &form, &ip).await
        }
        Some("refresh_token") => super::refresh_token::refresh(&state, client, &form, &ip).await,
        None | Some("") => Err(OAuthError::invalid_request("grant_type is required")),
        Some(other) => Err(OAuthError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant_type `{}` is not supported", super::quoted(other)),
        )),
    };
    match result {
        Ok(body) => {
            let mut r = Json(body).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => e.into_response(),
    }
}

/// Authenticate the client of a token or revocation request.
pub fn authenticate_client<'a>(
    state: &'a AppState,
    authorization: Option<&str>,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<&'a Client, OAuthError> {
    let creds =
        ClientCredentials::from_request(authorization, body_id, body_secret).map_err(|e| {
            tracing::info!(error = %e, "client authentication failed");
            OAuthError::invalid_request(e.to_string())
        })?;
    state.oidc.clients.authenticate(&creds).map_err(|e| {
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
        let mut err = OAuthError::invalid_client("client authentication failed");
        if creds.basic {
            err.www_authenticate = Some("Basic realm=\"passerelle\"");
        }
        err
    })
}

/// `[login] allowed_networks` at the token endpoint: the client (a mobile app on the person's
/// phone, say) must call from an allowed network unless it is exempt by configuration.
fn network_allowed(state: &AppState, client: &Client, addr: ClientAddr) -> Result<(), OAuthError> {
    if client.token_from_any_network || crate::web::sign_in_allowed(&state.config, addr) {
        return Ok(());
    }
    tracing::info!(client_id = %client.id, client = %addr, "token request refused: client outside login.allowed_networks");
    Err(OAuthError::new(
        axum::http::StatusCode::FORBIDDEN,
        "access_denied",
        format!("token requests are only accepted from the networks in login.allowed_networks; {addr} is not in them"),
    ))
}

/// What a grant issues in one go, with the hashes to store.
pub struct Minted {
    pub response: TokenResponse,
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh: Option<(String, i64)>,
}

pub struct MintInput<'a> {
    pub client: &'a Client,
    pub claims: &'a Claims,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    /// Issue a refresh token whatever the policy (rotation in the refresh grant).
    pub force_refresh: bool,
}

pub fn wants_refresh_token(client: &Client, scopes: &[String]) -> bool {
    match client.refresh {
        RefreshPolicy::Always => true,
        RefreshPolicy::Never => false,
        RefreshPolicy::OfflineAccess => scopes.iter().any(|s| s == "offline_access"),
    }
}

/// Mint an access token, an ID token and (if the client gets one) a refresh token.
pub fn mint(state: &AppState, input: MintInput<'_>) -> Result<Minted, OAuthError> {
    let settings = &state.oidc.settings;
    let now = crate::store::now();
    let access_token = random_token(32);
    let access_ttl = settings.access_token_ttl.as_secs() as i64;
    let id_token = issue_id_token(
        &state.keys,
        IdTokenInput {
            issuer: &state.oidc.issuer,
            client: input.client,
            claims: input.claims,
            scopes: input.scopes,
            nonce: input.nonce,
            auth_time: input.auth_time,
            amr: input.amr,
            sid: input.sid,
            access_token: &access_token,
            ttl_secs: settings.id_token_ttl.as_secs() as i64,
            module_roles_claim: state.live().claims.module_roles_claim.as_deref(),
        },
    )
    .map_err(|e| OAuthError::server_error("signing the ID token", e))?;
    let refresh_token = (input.force_refresh || wants_refresh_token(input.client, input.scopes))
        .then(|| random_token(32));
    let refresh = refresh_token.as_ref().map(|t| {
        (
            token_hash(t),
            now + settings.refresh_token_ttl.as_secs() as i64,
        )
    });
    metrics::counter!("passerelle_oidc_tokens_issued_total").increment(1);
    Ok(Minted {
        access_hash: token_hash(&access_token),
        access_expires_at: now + access_ttl,
        refresh,
        response: TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: access_ttl,
            id_token,
            refresh_token,
            scope: input.scopes.join(" "),
        },
    })
}

pub async fn audit(
    state: &AppState,
    event: &str,
    outcome: &str,
    subject: Option<&str>,
    client: &str,
    ip: &str,
    detail: Option<serde_json::Value>,
) {
    if let Err(e) = state
        .store
        .audit()
        .record(AuditEvent {
            event,
            outcome,
            subject,
            client: Some(client),
            ip: Some(ip),
            detail,
        })
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
}
