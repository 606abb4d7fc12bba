//! The sign-in page (`/login`) and Passerelle's own sign-out page (`/logout`).

use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

use super::LoginState;
use super::{
    decide, Attempt, Freshness, LoginError, NetworkKey, PendingLogin, SessionDecision, SignedIn,
};
use crate::store::AuditEvent;
use crate::web::{csrf_token, verify_csrf, ClientAddr, ClientIp, Message, PageError, Templates};

/// Longest email or login accepted (an email address is at most 254 characters).
pub const MAX_USERNAME: usize = 256;
/// Longest password accepted: room for any passphrase, not for a denial of service on argon2.
pub const MAX_PASSWORD: usize = 1024;

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    req: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    req: String,
}

fn expired_request() -> PageError {
    PageError::bad_request("login.expired.title", "login.expired.message")
}

fn session_error(e: impl std::fmt::Display) -> PageError {
    PageError::internal("session store", e)
}

async fn load_pending(
    state: &LoginState,
    req: Option<&str>,
) -> Result<Option<PendingLogin>, PageError> {
    match req.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(id) => match PendingLogin::load_any(&state.store, id).await? {
            Some(p) => Ok(Some(p.login)),
            None => Err(expired_request()),
        },
    }
}

struct FormView<'a> {
    req: &'a str,
    pending: Option<&'a PendingLogin>,
    username: &'a str,
    error: Option<Message>,
    status: StatusCode,
}

async fn render_form(
    state: &LoginState,
    session: &Session,
    view: FormView<'_>,
) -> Result<Response, PageError> {
    let csrf = csrf_token(session).await.map_err(session_error)?;
    let req_suffix = if view.req.is_empty() {
        String::new()
    } else {
        format!("?req={}", view.req)
    };
    let upstreams: Vec<minijinja::Value> = state
        .upstreams
        .names()
        .map(|name| minijinja::context! { name => name, url => format!("/login/upstream/{name}{req_suffix}") })
        .collect();
    let html = state.templates.render(
        "login.html",
        minijinja::context! {
            csrf_token => csrf,
            req => view.req,
            client_name => view.pending.map(|p| p.client_name.clone()),
            username => view.username,
            error => view.error.map(|m| state.templates.message(&m)),
            show_local => !state.directory().is_empty(),
            upstreams => upstreams,
        },
    );
    Ok((view.status, Html(html)).into_response())
}

/// `GET /login`: the form, or straight back to the application when already signed in.
pub async fn show(
    State(state): State<LoginState>,
    session: Session,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let pending = load_pending(&state, q.req.as_deref()).await?;
    let max_age = state.session_max_age();
    if let Some(p) = &pending {
        // Signed in already and the request takes any session: straight back. A forced request
        // is here because its session was not fresh enough: the form, whatever the session.
        let need = Freshness {
            force: p.force,
            ..Freshness::default()
        };
        let current = SignedIn::current(&session, &state.store, max_age).await;
        if let SessionDecision::Reuse(_) = decide(current.as_ref(), &need, crate::store::now()) {
            return Ok(
                Redirect::to(&p.resume_url(q.req.as_deref().unwrap_or_default())).into_response(),
            );
        }
    }
    // The upstream is the only way in: go straight there.
    if state.upstreams.len() == 1 && state.directory().is_empty() {
        if let Some(name) = state.upstreams.names().next() {
            let suffix = q
                .req
                .as_deref()
                .map(|r| format!("?req={r}"))
                .unwrap_or_default();
            return Ok(Redirect::to(&format!("/login/upstream/{name}{suffix}")).into_response());
        }
    }
    let hint = pending
        .as_ref()
        .and_then(|p| p.login_hint.clone())
        .unwrap_or_default();
    render_form(
        &state,
        &session,
        FormView {
            req: q.req.as_deref().unwrap_or(""),
            pending: pending.as_ref(),
            username: &hint,
            error: None,
            status: StatusCode::OK,
        },
    )
    .await
}

/// `POST /login`: check the password, rotate the session id, continue where the request came from.
pub async fn submit(
    State(state): State<LoginState>,
    session: Session,
    client: ClientAddr,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let ip = client.to_string();
    if !verify_csrf(&session, &form.csrf_token).await {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "login.csrf.title",
            "login.csrf.message",
        )
        .with_retry(if form.req.is_empty() {
            "/login".to_string()
        } else {
            format!("/login?req={}", form.req)
        }));
    }
    if form.username.len() > MAX_USERNAME || form.password.len() > MAX_PASSWORD {
        // Refused before anything is looked up or echoed back at that size; the audit row keeps
        // the name cut to the audit writer's field cap, so the attempt is still visible.
        audit(
            &state,
            "login",
            "refused_oversize",
            &form.username,
            &ip,
            None,
        )
        .await;
        return Err(PageError::bad_request(
            "login.too_long.title",
            Message::new("login.too_long.message")
                .arg("max_username", MAX_USERNAME.to_string())
                .arg("max_password", MAX_PASSWORD.to_string()),
        )
        .with_retry(retry_url(
            Some(&form.req)
                .filter(|r| r.len() <= 64)
                .map(|r| r.as_str()),
        )));
    }
    let pending = load_pending(&state, Some(&form.req)).await?;
    let username = form.username.trim().to_string();
    let view = |error: Message, status| FormView {
        req: &form.req,
        pending: pending.as_ref(),
        username: &username,
        error: Some(error),
        status,
    };

    if username.is_empty() || form.password.is_empty() {
        return render_form(
            &state,
            &session,
            view(
                "Enter your email (or login) and your password.".into(),
                StatusCode::BAD_REQUEST,
            ),
        )
        .await;
    }
    let directory = state.directory();
    // Reserved before argon2 runs: concurrent guesses each take a slot of the budget, and the
    // email and the login of one account share theirs.
    let network = client
        .0
        .map(|ip| NetworkKey::new(&crate::web::network_key(ip).to_string()))
        .unwrap_or_else(|| NetworkKey::new("unknown"));
    let attempt = match Attempt::reserve(
        &state.throttle,
        directory.throttle_key(&username),
        network,
        SystemTime::now(),
    )
    .await
    {
        Ok(attempt) => attempt,
        Err(throttled) => {
            audit(
                &state,
                "login",
                "throttled",
                &username,
                &ip,
                pending.as_ref(),
            )
            .await;
            metrics::counter!("passerelle_signins_total", "method" => "pwd", "outcome" => "throttled")
                .increment(1);
            let wait = throttled.retry_after;
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let msg = if minutes == 1 {
                Message::new("login.throttled.one")
            } else {
                Message::new("login.throttled.many").arg("minutes", minutes.to_string())
            };
            let mut page =
                render_form(&state, &session, view(msg, StatusCode::TOO_MANY_REQUESTS)).await?;
            page.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(wait.as_secs().max(1)),
            );
            return Ok(page);
        }
    };
    let identity = match directory.authenticate(&username, &form.password).await {
        Ok(identity) => {
            attempt.succeeded().await;
            identity
        }
        Err(LoginError::Internal(e)) => {
            attempt.cancel().await;
            return Err(PageError::internal("password verification", e));
        }
        Err(err) => {
            attempt.failed();
            let outcome = if matches!(err, LoginError::Disabled) {
                "disabled"
            } else {
                "bad_credentials"
            };
            audit(&state, "login", outcome, &username, &ip, pending.as_ref()).await;
            metrics::counter!("passerelle_signins_total", "method" => "pwd", "outcome" => outcome)
                .increment(1);
            return render_form(
                &state,
                &session,
                view("login.wrong_password".into(), StatusCode::UNAUTHORIZED),
            )
            .await;
        }
    };
    // A new session id at sign-in defeats session fixation.
    session.cycle_id().await.map_err(session_error)?;
    let signed_in = SignedIn::begin(&state.store, identity, "pwd")
        .await
        .map_err(|e| PageError::internal("recording the sign-in", e))?;
    signed_in.save(&session).await.map_err(session_error)?;
    audit(
        &state,
        "login",
        "success",
        &signed_in.identity.subject,
        &ip,
        pending.as_ref(),
    )
    .await;
    metrics::counter!("passerelle_signins_total", "method" => "pwd", "outcome" => "success")
        .increment(1);
    let next = pending
        .map(|p| p.resume_url(&form.req))
        .unwrap_or_else(|| "/".into());
    Ok(Redirect::to(&next).into_response())
}

async fn audit(
    state: &LoginState,
    event: &str,
    outcome: &str,
    who: &str,
    ip: &str,
    pending: Option<&PendingLogin>,
) {
    let detail = pending.map(|p| serde_json::json!({"for": p.client_name}));
    if let Err(e) = state
        .store
        .audit()
        .record(AuditEvent {
            event,
            outcome,
            subject: Some(who),
            client: None,
            ip: Some(ip),
            detail,
        })
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
}

/// `GET /logout`: ask before signing out (a link alone must not end a session).
pub async fn logout_page(
    State(state): State<LoginState>,
    session: Session,
) -> Result<Response, PageError> {
    let max_age = state.session_max_age();
    let signed_in = SignedIn::current(&session, &state.store, max_age).await;
    let csrf = csrf_token(&session).await.map_err(session_error)?;
    let empty: Vec<minijinja::Value> = Vec::new();
    Ok(Html(state.templates.render(
        "logout.html",
        minijinja::context! { name => signed_in.map(|s| s.identity.email), csrf_token => csrf, action => "/logout", fields => empty },
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /logout`: end the session.
pub async fn logout(
    State(state): State<LoginState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if !verify_csrf(&session, &form.csrf_token).await {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "logout.not_confirmed.title",
            "logout.not_confirmed.message",
        )
        .with_retry("/logout"));
    }
    // Whatever else the session signed in to is told too (SAML SPs: one after the other).
    let out = state
        .sign_out(&session, &ip, None)
        .await
        .map_err(|e| logout_failed(&e))?;
    Ok(signed_out(&state.templates, out))
}

/// Signing out failed on our side.
pub fn logout_failed(e: &super::LogoutError) -> PageError {
    PageError::internal("signing out", e)
}

/// Where a sign-out lands: a redirect, or the signed-out page.
pub fn signed_out(templates: &Templates, out: super::SignedOut) -> Response {
    match out {
        super::SignedOut::Redirect(url) => Redirect::to(&url).into_response(),
        super::SignedOut::Page => signed_out_page(templates, None),
    }
}

pub fn signed_out_page(templates: &Templates, link: Option<(&str, &str)>) -> Response {
    Html(templates.render(
        "message.html",
        minijinja::context! {
            title => templates.message(&"logout.done.title".into()),
            message => templates.message(&"logout.done.message".into()),
            link_url => link.map(|l| l.0),
            link_text => link.map(|l| l.1),
        },
    ))
    .into_response()
}

const UPSTREAM_FLOWS: &str = "upstream_flows";
/// Sign-ins in progress at upstreams kept per browser (several tabs); the oldest is dropped.
const MAX_FLOWS: usize = 5;

fn retry_url(req: Option<&str>) -> String {
    match req {
        Some(r) if !r.is_empty() => format!("/login?req={r}"),
        _ => "/login".into(),
    }
}

fn upstream_page(err: &super::upstream::UpstreamError, req: Option<&str>) -> PageError {
    use super::upstream::UpstreamError as E;
    let m = Message::new;
    let (status, title, message) = match err {
        E::Unreachable { name, detail } => (
            StatusCode::BAD_GATEWAY,
            "upstream.unreachable.title",
            m("upstream.unreachable.message")
                .arg("name", name)
                .arg("detail", detail),
        ),
        E::Denied {
            name,
            code,
            description,
        } => (
            StatusCode::FORBIDDEN,
            "upstream.denied.title",
            match description {
                Some(d) => m("upstream.denied.message_described").arg("description", d),
                None => m("upstream.denied.message"),
            }
            .arg("name", name)
            .arg("code", code),
        ),
        E::InvalidToken { name, detail } => (
            StatusCode::BAD_GATEWAY,
            "upstream.invalid.title",
            m("upstream.invalid.message")
                .arg("name", name)
                .arg("detail", detail),
        ),
        E::NoEmail { name } => (
            StatusCode::FORBIDDEN,
            "upstream.no_email.title",
            m("upstream.no_email.message").arg("name", name),
        ),
        E::UnverifiedEmail { name, email } => (
            StatusCode::FORBIDDEN,
            "upstream.no_email.title",
            m("upstream.unverified.message")
                .arg("name", name)
                .arg("email", email),
        ),
        E::ForeignDomain { domain, allowed } => (
            StatusCode::FORBIDDEN,
            "upstream.no_email.title",
            m("upstream.foreign.message")
                .arg("domain", domain)
                .arg("allowed", allowed),
        ),
        E::UnknownState => (
            StatusCode::BAD_REQUEST,
            "upstream.unknown_state.title",
            m("upstream.unknown_state.message"),
        ),
    };
    PageError::new(status, title, message).with_retry(retry_url(req))
}

/// `GET /login/upstream/{name}?req=…`: start the round trip to the company IdP.
pub async fn upstream_begin(
    State(state): State<LoginState>,
    session: Session,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let upstream = state.upstreams.get(&name).ok_or_else(|| {
        PageError::new(
            StatusCode::NOT_FOUND,
            "login.unknown_upstream.title",
            Message::new("login.unknown_upstream.message").arg("name", &name),
        )
    })?;
    let pending = load_pending(&state, q.req.as_deref()).await?;
    let (url, flow) = upstream
        .begin(
            q.req.clone().filter(|r| !r.is_empty()),
            pending.as_ref().is_some_and(|p| p.force),
            pending.as_ref().and_then(|p| p.login_hint.as_deref()),
            pending.as_ref().and_then(|p| p.domain_hint.as_deref()),
        )
        .await
        .map_err(|e| {
            tracing::warn!(upstream = %name, error = %e, "cannot start upstream sign-in");
            upstream_page(&e, q.req.as_deref())
        })?;
    let mut flows: Vec<super::upstream::Flow> = session
        .get(UPSTREAM_FLOWS)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    flows.push(flow);
    if flows.len() > MAX_FLOWS {
        flows.remove(0);
    }
    session
        .insert(UPSTREAM_FLOWS, &flows)
        .await
        .map_err(session_error)?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Deserialize)]
pub struct UpstreamCallback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /login/upstream/{name}/callback`: validate the upstream's answer and sign the person in.
pub async fn upstream_callback(
    State(state): State<LoginState>,
    session: Session,
    ClientIp(ip): ClientIp,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(q): Query<UpstreamCallback>,
) -> Result<Response, PageError> {
    use super::upstream::UpstreamError;
    let upstream = state.upstreams.get(&name).ok_or_else(|| {
        PageError::new(
            StatusCode::NOT_FOUND,
            "login.unknown_upstream.title",
            Message::new("login.unknown_upstream.message").arg("name", &name),
        )
    })?;
    let mut flows: Vec<super::upstream::Flow> = session
        .get(UPSTREAM_FLOWS)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    let position = q.state.as_deref().and_then(|s| {
        flows.iter().position(|f| {
            f.upstream == name
                && f.state.len() == s.len()
                && openssl::memcmp::eq(f.state.as_bytes(), s.as_bytes())
        })
    });
    let Some(position) = position else {
        return Err(upstream_page(&UpstreamError::UnknownState, None));
    };
    let flow = flows.remove(position);
    session
        .insert(UPSTREAM_FLOWS, &flows)
        .await
        .map_err(session_error)?;
    let req = flow.req.clone();
    if let Some(code) = q.error {
        let err = UpstreamError::Denied {
            name: name.clone(),
            code,
            description: q.error_description,
        };
        return Err(upstream_failed(&state, &name, &ip, req.as_deref(), err).await);
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        let err = UpstreamError::InvalidToken {
            name: name.clone(),
            detail: "no authorization code in the answer".into(),
        };
        return Err(upstream_failed(&state, &name, &ip, req.as_deref(), err).await);
    };
    let authenticated = match upstream.complete(&flow, &code).await {
        Ok(a) => a,
        Err(e) => return Err(upstream_failed(&state, &name, &ip, req.as_deref(), e).await),
    };
    session.cycle_id().await.map_err(session_error)?;
    let signed_in = SignedIn::begin(&state.store, authenticated.identity, "fed")
        .await
        .map_err(|e| PageError::internal("recording the sign-in", e))?;
    signed_in.save(&session).await.map_err(session_error)?;
    let _ = state
        .store
        .audit()
        .record(AuditEvent {
            event: "login.upstream",
            outcome: "success",
            subject: Some(&signed_in.identity.subject),
            client: None,
            ip: Some(&ip),
            detail: Some(serde_json::json!({
                "upstream": name,
                "email": signed_in.identity.email,
                "groups_overage": authenticated.groups_overage,
            })),
        })
        .await;
    match serde_json::to_string(&signed_in.identity) {
        Ok(json) => {
            if let Err(e) = state
                .store
                .upstream_identities()
                .put(
                    &signed_in.identity.subject,
                    &signed_in.identity.email,
                    &name,
                    &json,
                    authenticated.groups_overage,
                )
                .await
            {
                tracing::warn!(error = %e, "could not record the upstream identity for the preview");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not serialise the upstream identity"),
    }
    if authenticated.groups_overage {
        tracing::warn!(upstream = %name, subject = %signed_in.identity.subject, "group overage: the upstream sent no group list; groups_overage_fallback applied");
    }
    metrics::counter!("passerelle_signins_total", "method" => "fed", "outcome" => "success")
        .increment(1);
    let next = match &flow.req {
        Some(id) => match PendingLogin::load_any(&state.store, id).await? {
            Some(p) => p.login.resume_url(id),
            None => "/".into(),
        },
        None => "/".into(),
    };
    Ok(Redirect::to(&next).into_response())
}

async fn upstream_failed(
    state: &LoginState,
    name: &str,
    ip: &str,
    req: Option<&str>,
    err: super::upstream::UpstreamError,
) -> PageError {
    use super::upstream::UpstreamError;
    tracing::warn!(upstream = %name, error = %err, "upstream sign-in failed");
    let outcome = match &err {
        UpstreamError::Denied { .. } => "upstream_denied",
        UpstreamError::UnverifiedEmail { .. } => "unverified_email",
        UpstreamError::ForeignDomain { .. } => "foreign_domain",
        UpstreamError::NoEmail { .. } => "no_email",
        UpstreamError::InvalidToken { .. } => "invalid_token",
        UpstreamError::Unreachable { .. } => "upstream_unreachable",
        UpstreamError::UnknownState => "unknown_state",
    };
    let _ = state
        .store
        .audit()
        .record(AuditEvent {
            event: "login.upstream",
            outcome,
            subject: None,
            client: None,
            ip: Some(ip),
            detail: Some(serde_json::json!({"upstream": name, "reason": err.to_string()})),
        })
        .await;
    upstream_page(&err, req)
}
