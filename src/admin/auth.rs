//! Who is at the console: a person signed in through Passerelle's own sign-in, in
//! `[admin] groups`. No session: the sign-in page, with a pending request whose resume path is
//! the console. Signed in but not an admin: a 403 page that says who they are signed in as.

use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::ConsoleState;
use crate::login::{PendingLogin, SignedIn};
use crate::web::PageError;

/// The protocol name of the console's pending sign-ins.
const PROTOCOL: &str = "admin";

/// An administrator at the console.
pub struct ConsoleAdmin {
    pub who: SignedIn,
    /// `[admin] fresh_sign_in` in seconds.
    fresh_secs: i64,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
    pub session: Session,
}

impl ConsoleAdmin {
    /// Signed in recently enough for a sensitive action.
    pub fn is_fresh(&self) -> bool {
        crate::store::now() - self.who.auth_time <= self.fresh_secs
    }
}

/// Where the console sends the person once signed in.
#[derive(Debug, Serialize, Deserialize)]
struct Resume {
    next: String,
}

/// Only console paths are resumed to: never another origin, never `//host`.
fn safe_next(next: &str) -> &str {
    if next.starts_with("/admin/") && !next.contains("//") && !next.contains('\\') {
        next
    } else {
        "/admin/"
    }
}

/// Send the person to Passerelle's sign-in, back to `next` afterwards. `force`: sign in again
/// even with a session (a sensitive action on an old sign-in).
pub async fn sign_in(st: &ConsoleState, next: &str, force: bool) -> Response {
    let pending = PendingLogin {
        // Shown by the sign-in page ("to continue to …"), in the language of this request.
        client_name: st
            .templates
            .message(&crate::web::Message::new("admin.client_name")),
        resume_path: "/admin/resume".into(),
        force,
        login_hint: None,
        domain_hint: None,
    };
    let resume = Resume {
        next: safe_next(next).to_string(),
    };
    match st.login.save_pending(&pending, PROTOCOL, &resume).await {
        Ok(id) => Redirect::to(&format!("/login?req={id}")).into_response(),
        Err(e) => PageError::internal("saving the console's sign-in request", e).into_response(),
    }
}

impl<S> FromRequestParts<S> for ConsoleAdmin
where
    S: Send + Sync,
    ConsoleState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let st = ConsoleState::from_ref(state);
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(who) = st.login.current(&session).await else {
            // A bearer token does not open pages: whatever the headers, sign in.
            let next = if parts.method == Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/admin/")
            } else {
                "/admin/"
            };
            return Err(sign_in(&st, next, false).await);
        };
        let csrf = crate::web::csrf_token(&session)
            .await
            .map_err(|e| PageError::internal("session store", e).into_response())?;
        if !st.is_admin(&who.identity) {
            tracing::info!(subject = %who.identity.subject, "console refused: not in [admin] groups");
            let html = st.templates.render(
                "admin/forbidden.html",
                minijinja::context! {
                    email => who.identity.email,
                    csrf_token => csrf,
                },
            );
            return Err((StatusCode::FORBIDDEN, Html(html)).into_response());
        }
        Ok(ConsoleAdmin {
            who,
            csrf,
            session,
            fresh_secs: i64::try_from(st.config.admin.fresh_sign_in.as_secs()).unwrap_or(i64::MAX),
        })
    }
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    #[serde(default)]
    req: String,
}

/// `GET /admin/resume?req=…`: back from the sign-in page.
pub async fn resume(
    State(st): State<ConsoleState>,
    session: Session,
    Query(q): Query<ResumeQuery>,
) -> Result<Response, PageError> {
    let Some(pending) = st.login.load_pending::<Resume>(&q.req, PROTOCOL).await? else {
        return Err(PageError::bad_request(
            "admin.resume_expired.title",
            "admin.resume_expired.message",
        )
        .with_retry("/admin/"));
    };
    let signed_in = st.login.current(&session).await;
    let done = signed_in.is_some_and(|s| !pending.login.force || s.auth_time >= pending.created_at);
    if !done {
        return Ok(Redirect::to(&format!("/login?req={}", q.req)).into_response());
    }
    st.store.login_requests().delete(&q.req).await?;
    Ok(Redirect::to(safe_next(&pending.request.next)).into_response())
}

/// For a sensitive action: `Ok` when the sign-in is fresh, else the way to sign in again
/// (back to `page` afterwards, where the person repeats the action).
pub async fn require_fresh(
    st: &ConsoleState,
    admin: &ConsoleAdmin,
    page: &str,
) -> Result<(), Response> {
    if admin.is_fresh() {
        Ok(())
    } else {
        Err(sign_in(st, page, true).await)
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_resumed_to() {
        assert_eq!(
            safe_next("/admin/console/audit?x=1"),
            "/admin/console/audit?x=1"
        );
        for bad in [
            "https://evil.test/",
            "//evil.test/admin/",
            "/admin//evil",
            "/login",
            "/admin/\\evil",
        ] {
            assert_eq!(safe_next(bad), "/admin/", "{bad}");
        }
    }
}
