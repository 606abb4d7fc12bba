//! RP-initiated logout (`/oidc/logout`). With a valid `id_token_hint` for the current session
//! the person is signed out at once; otherwise they confirm, so a stray link or image cannot
//! end their session. `post_logout_redirect_uri` must be registered for the client.

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;
use url::Url;

use crate::login::page::{logout_failed, signed_out};
use crate::login::SignedIn;
use crate::web::{csrf_token, verify_csrf, AppState, ClientIp, PageError};

#[derive(Deserialize, Default, Debug)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    csrf_token: Option<String>,
}

/// What the parameters amount to, once checked.
struct Checked {
    /// The hint's subject, when the hint is a token we signed.
    hint_subject: Option<String>,
    /// Where to send the person afterwards, with `state`.
    redirect: Option<String>,
}

fn invalid(message: &str) -> PageError {
    PageError::bad_request("Sign-out request not valid", message)
}

fn check(state: &AppState, p: &LogoutParams) -> Result<Checked, PageError> {
    let mut hint_subject = None;
    let mut hint_client = None;
    if let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        // Expired hints are fine (the spec expects them); the signature and issuer must hold.
        match state.keys.verify_jwt(hint) {
            Ok(claims)
                if claims.get("iss").and_then(|v| v.as_str())
                    == Some(state.oidc.issuer.as_str()) =>
            {
                hint_subject = claims
                    .get("sub")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                hint_client = claims
                    .get("aud")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
            }
            _ => {
                return Err(invalid(
                    "The id_token_hint is not a token issued by this server.",
                ))
            }
        }
    }
    let client_id = match (
        hint_client,
        p.client_id.as_deref().filter(|c| !c.is_empty()),
    ) {
        (Some(h), Some(c)) if h != c => {
            return Err(invalid("client_id does not match the id_token_hint."))
        }
        (Some(h), _) => Some(h),
        (None, c) => c.map(str::to_string),
    };
    let redirect = match p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => {
            let Some(client) = client_id
                .as_deref()
                .and_then(|id| state.oidc.clients.get(id))
            else {
                return Err(invalid("post_logout_redirect_uri needs the client to be identified (id_token_hint or client_id)."));
            };
            if !client.accepts_post_logout_uri(uri) {
                return Err(invalid("The address to return to after sign-out is not registered for this application."));
            }
            let mut url =
                Url::parse(uri).map_err(|_| invalid("post_logout_redirect_uri is not a URL."))?;
            if let Some(s) = p.state.as_deref() {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.to_string())
        }
    };
    Ok(Checked {
        hint_subject,
        redirect,
    })
}

async fn finish(state: &AppState, session: &Session, ip: &str, checked: Checked) -> Response {
    // Whatever else the session signed in to is told first; then on to the client's redirect.
    match state.login.sign_out(session, ip, checked.redirect).await {
        Ok(out) => signed_out(&state.templates, out),
        Err(e) => logout_failed(&e).into_response(),
    }
}

/// Is the hint about the person signed in here (or is nobody signed in)?
async fn hint_fits_session(state: &AppState, session: &Session, checked: &Checked) -> bool {
    let Some(subject) = &checked.hint_subject else {
        return false;
    };
    match SignedIn::current(session, i64::MAX / 2).await {
        None => true,
        Some(s) => {
            let _ = state;
            &s.identity.subject == subject
        }
    }
}

pub async fn logout_get(
    State(state): State<AppState>,
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
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    form: Result<Form<LogoutParams>, FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return invalid("The sign-out form could not be read.").into_response();
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

async fn confirm_page(state: &AppState, session: &Session, p: &LogoutParams) -> Response {
    let csrf = match csrf_token(session).await {
        Ok(t) => t,
        Err(e) => return PageError::internal("session store", e).into_response(),
    };
    let signed_in = SignedIn::current(session, i64::MAX / 2).await;
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
