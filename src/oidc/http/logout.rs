//! RP-initiated logout (`/oidc/logout`). With a valid `id_token_hint` for the current session
//! the person is signed out at once; otherwise they confirm, so a stray link or image cannot
//! end their session. Signing out is login's: whatever else the session signed in to is told
//! there.

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use tower_sessions::Session;

use crate::login::page::{logout_failed, signed_out};
use crate::login::SignedIn;
use crate::oidc::logout::{check_logout, CheckedLogout, LogoutParams};
use crate::oidc::OidcState;
use crate::web::{csrf_token, verify_csrf, ClientIp, PageError};

fn invalid(message: &'static str) -> PageError {
    PageError::bad_request("oidc.logout.title", message)
}

fn check(state: &OidcState, p: &LogoutParams) -> Result<CheckedLogout, PageError> {
    check_logout(&state.keys, &state.provider, p).map_err(invalid)
}

async fn finish(
    state: &OidcState,
    session: &Session,
    ip: &str,
    checked: CheckedLogout,
) -> Response {
    // Whatever else the session signed in to is told first; then on to the client's redirect.
    match state.login.sign_out(session, ip, checked.redirect).await {
        Ok(out) => signed_out(&state.templates, out),
        Err(e) => logout_failed(&e).into_response(),
    }
}

/// Is the hint about the person signed in here (or is nobody signed in)?
async fn hint_fits_session(state: &OidcState, session: &Session, checked: &CheckedLogout) -> bool {
    let Some(subject) = &checked.hint_subject else {
        return false;
    };
    match SignedIn::current(session, &state.store, i64::MAX / 2).await {
        None => true,
        Some(s) => &s.identity.subject == subject,
    }
}

pub async fn logout_get(
    State(state): State<OidcState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Query(p): Query<LogoutParams>,
) -> Response {
    let checked = match check(&state, &p) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if hint_fits_session(&state, &session, &checked).await {
        return finish(&state, &session, &ip, checked).await;
    }
    confirm_page(&state, &session, &p).await
}

pub async fn logout_post(
    State(state): State<OidcState>,
    session: Session,
    ClientIp(ip): ClientIp,
    form: Result<Form<LogoutParams>, FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return invalid("oidc.logout.unreadable").into_response();
    };
    let checked = match check(&state, &p) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let confirmed = match p.csrf_token.as_deref() {
        Some(t) => verify_csrf(&session, t).await,
        None => false,
    };
    if confirmed || hint_fits_session(&state, &session, &checked).await {
        return finish(&state, &session, &ip, checked).await;
    }
    confirm_page(&state, &session, &p).await
}

async fn confirm_page(state: &OidcState, session: &Session, p: &LogoutParams) -> Response {
    let csrf = match csrf_token(session).await {
        Ok(t) => t,
        Err(e) => return PageError::internal("session store", e).into_response(),
    };
    let signed_in = SignedIn::current(session, &state.store, i64::MAX / 2).await;
    let mut fields = Vec::new();
    for (name, value) in [
        ("id_token_hint", &p.id_token_hint),
        ("client_id", &p.client_id),
        ("post_logout_redirect_uri", &p.post_logout_redirect_uri),
        ("state", &p.state),
    ] {
        if let Some(v) = value {
            fields.push(minijinja::context! { name => name, value => v });
        }
    }
    Html(state.templates.render(
        "logout.html",
        minijinja::context! { name => signed_in.map(|s| s.identity.email), csrf_token => csrf, action => "/oidc/logout", fields => fields },
    ))
    .into_response()
}
