//! The authorization endpoint and its resume step after sign-in.
//!
//! A bad `client_id` or `redirect_uri` is shown as an error page and never redirected to; every
//! other error goes back to the client (RFC 6749 §4.1.2.1) with `state` and `iss` (RFC 9207).

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use url::Url;

use super::Client;
use crate::login::{PendingLogin, SignedIn};
use crate::store::CodeRecord;
use crate::web::{random_token, AppState, PageError};

pub const PROTOCOL: &str = "oidc";
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

/// Where an answer goes: back to the client's redirect URI, in the chosen response mode.
struct Reply<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    form_post: bool,
}

pub async fn authorize_get(
    state: State<AppState>,
    session: Session,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    authorize(state, session, p).await
}

pub async fn authorize_post(
    state: State<AppState>,
    session: Session,
    Form(p): Form<AuthorizeParams>,
) -> Response {
    authorize(state, session, p).await
}

async fn authorize(
    State(state): State<AppState>,
    session: Session,
    p: AuthorizeParams,
) -> Response {
    match check_request(&state.oidc.clients, &p) {
        Ok((client, request)) => continue_with(&state, &session, client, request, None).await,
        Err(Refusal::Show(message)) => bad_client(message).into_response(),
        Err(Refusal::Tell {
            redirect_uri,
            state: client_state,
            form_post,
            error,
            description,
        }) => error_reply(
            &state,
            &Reply {
                redirect_uri: &redirect_uri,
                state: client_state.as_deref(),
                form_post,
            },
            error,
            &description,
        ),
    }
}

/// Why an authorization request is refused, and how the refusal is delivered.
#[derive(Debug)]
pub enum Refusal {
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
    clients: &'c super::Clients,
    p: &AuthorizeParams,
) -> Result<(&'c Client, ValidRequest), Refusal> {
    // 1. Who is asking and where the answer goes: failures here are shown, never redirected.
    let client = match p.client_id.as_deref().filter(|c| !c.is_empty()) {
        None => return Err(Refusal::Show("The request does not name an application (client_id is missing).")),
        Some(id) => clients.get(id).ok_or(Refusal::Show(
            "The application that sent you here is not registered with Passerelle (unknown client_id).",
        ))?,
    };
    let redirect_uri = match p.redirect_uri.as_deref().filter(|r| !r.is_empty()) {
        None => return Err(Refusal::Show("The request does not say where to return (redirect_uri is missing).")),
        Some(r) if client.accepts_redirect_uri(r) => r.to_string(),
        Some(_) => return Err(Refusal::Show(
            "The address this application asked to return to is not registered for it (redirect_uri mismatch). Nothing was sent to it.",
        )),
    };
    let form_post = p.response_mode.as_deref() == Some("form_post");
    let tell = |state: Option<String>, error, description| Refusal::Tell {
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

fn bad_client(message: &str) -> PageError {
    PageError::bad_request("This sign-in link is not valid", message)
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

/// Issue a code if the person's session satisfies the request; otherwise send them to sign in.
/// `created_at` is set when resuming a stored request: an authentication after it satisfies
/// `prompt=login` / `max_age=0`.
async fn continue_with(
    state: &AppState,
    session: &Session,
    client: &Client,
    request: ValidRequest,
    resumed: Option<(String, i64)>,
) -> Response {
    let reply = Reply {
        redirect_uri: &request.redirect_uri,
        state: request.state.as_deref(),
        form_post: request.form_post,
    };
    let max_session = state.config.login.session_max_age.as_secs() as i64;
    let now = crate::store::now();
    let signed_in = SignedIn::current(session, max_session).await;
    let fresh_enough = |s: &SignedIn| match (request.max_age, &resumed) {
        (Some(0), Some((_, created_at))) => s.auth_time >= *created_at,
        (Some(0), None) => false,
        (Some(max), _) => now - s.auth_time <= max,
        (None, _) => true,
    };
    let usable = signed_in.filter(|s| fresh_enough(s));

    let Some(signed_in) = usable else {
        if request.prompt_none {
            return error_reply(
                state,
                &reply,
                "login_required",
                "the user is not signed in (prompt=none)",
            );
        }
        if let Some((id, _)) = resumed {
            return Redirect::to(&format!("/login?req={id}")).into_response();
        }
        let pending = PendingLogin {
            client_name: client.name.clone(),
            resume_path: "/oidc/authorize/resume".into(),
            force: request.max_age.is_some(),
            login_hint: request.login_hint.clone(),
            domain_hint: request.domain_hint.clone(),
        };
        let ttl = state.config.login.request_ttl.as_secs() as i64;
        return match pending.save(&state.store, PROTOCOL, &request, ttl).await {
            Ok(id) => Redirect::to(&format!("/login?req={id}")).into_response(),
            Err(e) => PageError::from(e).into_response(),
        };
    };

    if let Some((id, _)) = &resumed {
        // The stored request is single-use.
        if let Err(e) = state.store.login_requests().delete(id).await {
            return PageError::from(e).into_response();
        }
    }
    match issue_code(state, client, &request, &signed_in).await {
        Ok(code) => success_reply(state, &reply, &code),
        Err(page) => page.into_response(),
    }
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
}

/// `GET /oidc/authorize/resume?req=…`: back from the sign-in page.
pub async fn resume(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let pending = match PendingLogin::load::<ValidRequest>(&state.store, &q.req, PROTOCOL).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return PageError::bad_request(
                "This sign-in has expired",
                "The sign-in request is no longer valid (it expired or was already used). Go back to the application and sign in again.",
            )
            .into_response()
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    let Some(client) = state.oidc.clients.get(&pending.request.client_id) else {
        return bad_client("The application is no longer registered with Passerelle.")
            .into_response();
    };
    let mut request = pending.request;
    request.prompt_none = false;
    continue_with(
        &state,
        &session,
        client,
        request,
        Some((q.req, pending.created_at)),
    )
    .await
}

async fn issue_code(
    state: &AppState,
    client: &Client,
    request: &ValidRequest,
    signed_in: &SignedIn,
) -> Result<String, PageError> {
    let (identity, _mapped) = crate::pipeline::release(state, &signed_in.identity)
        .await
        .map_err(|r| r.page())?;
    let code = random_token(32);
    let record = CodeRecord {
        client_id: client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scopes.join(" "),
        subject: identity.subject.clone(),
        session_id: Some(signed_in.sid.clone()),
        auth_time: signed_in.auth_time,
        amr: signed_in.amr.join(" "),
        identity: serde_json::to_string(&identity)
            .map_err(|e| PageError::internal("serialising identity", e))?,
        expires_at: crate::store::now() + state.oidc.settings.code_ttl.as_secs() as i64,
    };
    state
        .store
        .oauth()
        .put_code(&crate::store::token_hash(&code), &record)
        .await?;
    metrics::counter!("passerelle_oidc_codes_issued_total").increment(1);
    Ok(code)
}

fn success_reply(state: &AppState, reply: &Reply<'_>, code: &str) -> Response {
    let mut params = vec![("code", code)];
    if let Some(s) = reply.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.oidc.issuer));
    send_reply(state, reply, &params)
}

fn error_reply(state: &AppState, reply: &Reply<'_>, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = reply.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.oidc.issuer));
    send_reply(state, reply, &params)
}

fn send_reply(state: &AppState, reply: &Reply<'_>, params: &[(&str, &str)]) -> Response {
    if reply.form_post {
        let fields: Vec<minijinja::Value> = params
            .iter()
            .map(|(k, v)| minijinja::context! { name => *k, value => *v })
            .collect();
        return Html(state.templates.render(
            "form_post.html",
            minijinja::context! { action => reply.redirect_uri, fields => fields, target_name => "the application" },
        ))
        .into_response();
    }
    // The redirect URI was matched exactly against a registered one, so it parses.
    match Url::parse(reply.redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => bad_client("The registered redirect URI is not a valid URL.").into_response(),
    }
}
