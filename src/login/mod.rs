//! Authentication, whichever protocol asked: the sign-in session ([`SignedIn`]), the local
//! directory (argon2 passwords), upstream OIDC federation, throttling of failed attempts, and
//! the sign-in page. A front end stores a [`PendingLogin`] and gets the person back at its
//! `resume_path`; it never learns how they signed in.
//!
//! Two decisions live here, once for both front ends:
//! - [`decide`]: reuse the session, send the person to sign in, or fail a passive request —
//!   one pure function of the session, the request's [`Freshness`] needs and the clock;
//! - signing out ([`LoginState::sign_out`]): end the session, then tell each registered
//!   [`LogoutParticipant`] (SAML's single logout is one, registered at start-up), so neither
//!   front end imports the other.
//!
//! Handlers extract the narrow [`LoginState`].
//!
//! May import `config/`, `web/`, `store/` and `identity/`; no protocol room, no `app/`.

mod decision;
mod directory;
mod http_client;
mod live;
mod logout;
pub mod page;
mod session;
mod state;
mod throttle;
pub mod upstream;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
pub use decision::{decide, Freshness, SessionDecision};
pub use directory::{hash_password, Directory, LoginError};
pub use http_client::OidcHttp;
pub use live::Live;
pub use logout::{LogoutError, LogoutParticipant, LogoutParticipants, SignedOut};
pub use session::{revoke_sessions, Pending, PendingLogin, SignedIn};
pub use state::LoginState;

use crate::web::TrustedProxies;

/// The sign-in and sign-out pages.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    LoginState: FromRef<S>,
    TrustedProxies: FromRef<S>,
{
    Router::new()
        .route("/login", get(page::show).post(page::submit))
        .route("/login/upstream/{name}", get(page::upstream_begin))
        .route(
            "/login/upstream/{name}/callback",
            get(page::upstream_callback),
        )
        .route("/logout", get(page::logout_page).post(page::logout))
}

pub use throttle::{
    AccountKey, Attempt, BoxFuture, LoginThrottle, MemoryThrottle, NetworkKey, StoreThrottle,
    Throttled,
};

/// A storage failure behind a page is ours: an internal-error page (logged; no detail shown).
/// Written here, not in `web/` (which imports no store) nor `store/` (which knows no HTTP):
/// login is the lowest room that knows both, and every page handler builds on it.
impl<E: Into<crate::store::StoreError>> From<E> for crate::web::PageError {
    fn from(err: E) -> Self {
        crate::web::PageError::internal("storage", err.into())
    }
}
