//! The authorization endpoint and its resume step after sign-in: check the request (the core),
//! make the session decision (login's), release through the pipeline, issue the code, and
//! answer at the client's redirect URI (query or form_post) with `state` and `iss` (RFC 9207).
//! A bad `client_id` or `redirect_uri` is shown as a page and never redirected to.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;
use url::Url;

use crate::login::{decide, Freshness, PendingLogin, SessionDecision};
use crate::oidc::grants::authorization_code::issue_code;
use crate::oidc::{
    check_request, AuthorizeParams, Client, OidcState, RequestRefusal, ValidRequest,
};
use crate::pipeline::{refusal_page, waiting_page, Access, Refusal, Target, PREPARING_POLL};
use crate::web::PageError;

/// Pending sign-ins stored for `/oidc/authorize/resume`.
pub const PROTOCOL: &str = "oidc";

/// Where an answer goes: back to the client's redirect URI, in the chosen response mode.
struct Reply<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    form_post: bool,
}

pub async fn authorize_get(
    state: State<OidcState>,
    session: Session,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    authorize(state, session, p).await
}

pub async fn authorize_post(
    state: State<OidcState>,
    session: Session,
    Form(p): Form<AuthorizeParams>,
) -> Response {
    authorize(state, session, p).await
}

async fn authorize(
    State(state): State<OidcState>,
    session: Session,
    p: AuthorizeParams,
) -> Response {
    match check_request(&state.provider.clients, &p) {
        Ok((client, request)) => continue_with(&state, &session, client, request, None).await,
        Err(RequestRefusal::Show(message)) => bad_client(message).into_response(),
        Err(RequestRefusal::Tell {
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

/// `message`: a catalogue key (`oidc.…`).
fn bad_client(message: &'static str) -> PageError {
    PageError::bad_request("oidc.bad_link.title", message)
}

/// Issue a code if the person's session satisfies the request; otherwise send them to sign in.
/// `resumed` = (stored id, when it was stored), for a request back from the sign-in page.
async fn continue_with(
    state: &OidcState,
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
    let current = state.login.current(session).await;
    let need = Freshness {
        // prompt=login and select_account arrive here as max_age=0.
        force: false,
        max_age: request.max_age,
        passive: request.prompt_none,
        request_created_at: resumed.as_ref().map(|(_, created_at)| *created_at),
    };
    let signed_in = match decide(current.as_ref(), &need, crate::store::now()) {
        SessionDecision::Reuse(signed_in) => signed_in,
        SessionDecision::Passive => {
            return error_reply(
                state,
                &reply,
                "login_required",
                "the user is not signed in (prompt=none)",
            )
        }
        SessionDecision::SignIn => return sign_in(state, client, &request, resumed).await,
    };
    let access = Access {
        name: &client.name,
        allowed_groups: &client.allowed_groups,
    };
    // prompt=none allows no page: such a request waits for Lucca as long as it takes.
    let wait = (!request.prompt_none).then_some(PREPARING_POLL);
    let outcome = state
        .pipeline
        .release_within(
            &signed_in.identity,
            Target::Client(&client.id),
            access,
            wait,
        )
        .await;
    if let Err(Refusal::StillPreparing) = outcome {
        // The stored request stays for the waiting page's next poll.
        return waiting(state, client, &request, resumed).await;
    }
    if let Some((id, _)) = &resumed {
        // The stored request is single-use.
        if let Err(e) = state.store.login_requests().delete(id).await {
            return PageError::from(e).into_response();
        }
    }
    let released = match outcome {
        Ok(released) => released,
        // The redirect URI is registered and matched: the client hears `access_denied`, as
        // RFC 6749 §4.1.2.1 has it, and shows its own page; the refusal is audited.
        Err(refusal @ Refusal::NotAllowed { .. }) => {
            audit_refusal(state, &client.id, &signed_in.identity.subject, &refusal).await;
            return error_reply(
                state,
                &reply,
                "access_denied",
                "the user is not in a group allowed to sign in to this client",
            );
        }
        Err(refusal) => return refusal_page(&refusal).into_response(),
    };
    let now = crate::store::now();
    match issue_code(
        &state.store,
        &state.provider,
        &request,
        &signed_in,
        released,
        now,
    )
    .await
    {
        Ok(code) => success_reply(state, &reply, &code),
        Err(e) => PageError::internal("issuing the authorization code", e).into_response(),
    }
}

/// The waiting page, polling the stored request (stored now if it came straight from the
/// client with a session).
async fn waiting(
    state: &OidcState,
    client: &Client,
    request: &ValidRequest,
    resumed: Option<(String, i64)>,
) -> Response {
    let id = match resumed {
        Some((id, _)) => id,
        None => {
            let pending = PendingLogin {
                client_name: client.name.clone(),
                resume_path: "/oidc/authorize/resume".into(),
                force: false,
                login_hint: request.login_hint.clone(),
                domain_hint: request.domain_hint.clone(),
            };
            match state.login.save_pending(&pending, PROTOCOL, request).await {
                Ok(id) => id,
                Err(e) => return PageError::from(e).into_response(),
            }
        }
    };
    waiting_page(
        &state.templates,
        &client.name,
        &format!("/oidc/authorize/resume?req={id}"),
    )
}

/// To the sign-in page, with the request stored (or already stored, when resumed).
async fn sign_in(
    state: &OidcState,
    client: &Client,
    request: &ValidRequest,
    resumed: Option<(String, i64)>,
) -> Response {
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
    match state.login.save_pending(&pending, PROTOCOL, request).await {
        Ok(id) => Redirect::to(&format!("/login?req={id}")).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
}

/// `GET /oidc/authorize/resume?req=…`: back from the sign-in page.
pub async fn resume(
    State(state): State<OidcState>,
    session: Session,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let pending = match state
        .login
        .load_pending::<ValidRequest>(&q.req, PROTOCOL)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            return PageError::bad_request("error.expired.title", "error.expired.message")
                .into_response()
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    let Some(client) = state.provider.clients.get(&pending.request.client_id) else {
        return bad_client("oidc.client_gone").into_response();
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

fn success_reply(state: &OidcState, reply: &Reply<'_>, code: &str) -> Response {
    let mut params = vec![("code", code)];
    if let Some(s) = reply.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.provider.issuer));
    send_reply(state, reply, &params)
}

/// An audit row for a sign-in the policy refused; a failed write is logged, not fatal.
async fn audit_refusal(state: &OidcState, client: &str, subject: &str, refusal: &Refusal) {
    let reason = refusal.to_string();
    if let Err(e) = state
        .store
        .audit()
        .record(crate::store::AuditEvent {
            event: "authorize",
            outcome: "access_denied",
            subject: Some(subject),
            client: Some(client),
            ip: None,
            detail: Some(serde_json::json!({ "reason": reason })),
        })
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
}

fn error_reply(state: &OidcState, reply: &Reply<'_>, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = reply.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.provider.issuer));
    send_reply(state, reply, &params)
}

fn send_reply(state: &OidcState, reply: &Reply<'_>, params: &[(&str, &str)]) -> Response {
    if reply.form_post {
        let fields: Vec<minijinja::Value> = params
            .iter()
            .map(|(k, v)| minijinja::context! { name => *k, value => *v })
            .collect();
        return Html(state.templates.render(
            "form_post.html",
            minijinja::context! { action => reply.redirect_uri, fields => fields },
        ))
        .into_response();
    }
    // The redirect URI was matched exactly against a registered one, so it parses.
    match Url::parse(reply.redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => bad_client("oidc.bad_redirect_uri").into_response(),
    }
}
