//! What login's handlers, and the front ends that hand people to login, share.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tower_sessions::Session;

use super::logout::{self, LogoutError, LogoutParticipants, SignedOut};
use super::session::Pending;
use super::upstream::Upstreams;
use super::Live;
use super::{Directory, LoginThrottle, PendingLogin, SignedIn};
use crate::config::LoginConfig;
use crate::store::{Store, StoreError};
use crate::web::Templates;

/// Login's narrow state: cheap to clone.
#[derive(Clone)]
pub struct LoginState {
    pub store: Store,
    pub settings: Arc<LoginConfig>,
    /// The local directory, swapped by a configuration reload.
    pub live: Arc<ArcSwap<Live>>,
    /// Failed sign-ins, per person and per network.
    pub throttle: Arc<dyn LoginThrottle>,
    pub upstreams: Arc<Upstreams>,
    pub templates: Arc<Templates>,
    /// Told when a session is signed out, in this order (registered at start-up).
    pub logout: Arc<LogoutParticipants>,
}

impl LoginState {
    /// The local directory as it is now.
    pub fn directory(&self) -> Arc<Directory> {
        self.live.load().directory.clone()
    }

    /// The signed-in person, unless the session has outlived `[login] session_max_age`. A
    /// session in use is marked so, at most every [`touch_interval`]: tower-sessions pushes an
    /// idle expiry back only when it saves the session, and one that is only read is never
    /// saved — `session_idle_timeout` would count from the sign-in instead of the last use.
    pub async fn current(&self, session: &Session) -> Option<SignedIn> {
        let mut signed_in = SignedIn::current(session, &self.store, self.session_max_age()).await?;
        let now = crate::store::now();
        let every = touch_interval(self.settings.session_idle_timeout);
        if now - signed_in.touched_at.max(signed_in.auth_time) >= every {
            signed_in.touched_at = now;
            // The store's save updates only a session that still exists: a logout that ran
            // meanwhile stays a logout.
            if let Err(e) = signed_in.save(session).await {
                tracing::warn!(error = %e, "could not mark the session as used");
            }
        }
        Some(signed_in)
    }

    /// `[login] session_max_age` in seconds.
    pub fn session_max_age(&self) -> i64 {
        self.settings.session_max_age.as_secs() as i64
    }

    /// `[login] request_ttl` in seconds: how long a pending sign-in (or logout chain) is kept.
    pub fn request_ttl(&self) -> i64 {
        self.settings.request_ttl.as_secs() as i64
    }

    /// Store a front end's request while the person signs in; the id travels in URLs.
    pub async fn save_pending<T: Serialize>(
        &self,
        login: &PendingLogin,
        protocol: &str,
        request: &T,
    ) -> Result<String, StoreError> {
        login
            .save(&self.store, protocol, request, self.request_ttl())
            .await
    }

    /// A front end's stored request (None if unknown, expired, or of another protocol).
    pub async fn load_pending<T: DeserializeOwned>(
        &self,
        id: &str,
        protocol: &str,
    ) -> Result<Option<Pending<T>>, StoreError> {
        PendingLogin::load(&self.store, id, protocol).await
    }

    /// End the session without telling the participants (an SP-initiated SAML logout, which
    /// tells the other SPs itself).
    pub async fn end_session(
        &self,
        session: &Session,
        ip: &str,
    ) -> Result<Option<SignedIn>, tower_sessions::session::Error> {
        logout::end_session(&self.store, session, ip).await
    }

    /// Sign the session out everywhere; the browser ends at `then` (`None`: the signed-out
    /// page).
    pub async fn sign_out(
        &self,
        session: &Session,
        ip: &str,
        then: Option<String>,
    ) -> Result<SignedOut, LogoutError> {
        logout::sign_out(&self.store, &self.logout, session, ip, then).await
    }
}

/// How often a session in use is saved to push its idle expiry back: a minute, or a quarter of
/// a shorter idle timeout, so a person is never signed out while using the session and the
/// store sees at most one write a minute per person.
fn touch_interval(idle: std::time::Duration) -> i64 {
    (idle.as_secs() as i64 / 4).clamp(1, 60)
}
