//! What the sign-in session holds, and the pending-login envelope front ends hand to login.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::identity::Identity;
use crate::store::{Store, StoreError};

/// The current time in unix milliseconds (revocations are compared at this precision).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const SIGNED_IN: &str = "signed_in";

/// A person signed in to Passerelle: one session shared by every client and SP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub identity: Identity,
    /// When the person last authenticated (unix seconds).
    pub auth_time: i64,
    /// Authentication methods (RFC 8176): `pwd` for the local directory, `fed` for an upstream.
    pub amr: Vec<String>,
    /// Stable id of this sign-in session (the `sid` claim, SAML SessionIndex); survives the
    /// cookie id rotation.
    pub sid: String,
    /// SAML SPs this session signed in to: (entity id, NameID), for single logout.
    #[serde(default)]
    pub saml_participants: Vec<(String, String)>,
    /// When this session signed in, in unix milliseconds: a sign-in in the same second as a
    /// revocation, but after it, must survive it (0 in sessions from before this field).
    #[serde(default)]
    pub signed_in_ms: i64,
    /// When the session was last marked used (unix seconds; 0 = never since the sign-in): its
    /// idle expiry is pushed back only when it is saved, see [`LoginState::current`].
    ///
    /// [`LoginState::current`]: super::LoginState::current
    #[serde(default)]
    pub touched_at: i64,
}

impl SignedIn {
    /// A new sign-in of `identity` now, recorded in the store so that a later revocation of
    /// this person finds it.
    pub async fn begin(
        store: &Store,
        identity: Identity,
        amr: &str,
    ) -> Result<SignedIn, StoreError> {
        let signed_in_ms = now_ms();
        store
            .person_revocations()
            .record_sign_in(&identity.subject, &identity.email, signed_in_ms)
            .await?;
        Ok(SignedIn {
            identity,
            auth_time: signed_in_ms / 1000,
            amr: vec![amr.into()],
            sid: crate::web::random_token(16),
            saml_participants: Vec::new(),
            signed_in_ms,
            touched_at: 0,
        })
    }

    /// The signed-in person, unless the session has outlived `max_age_secs` or the person's
    /// access was revoked since it signed in (then the session is cleared). The revocation is
    /// read from the store, so it holds on every node; if the store cannot answer, the session
    /// counts as none.
    pub async fn current(session: &Session, store: &Store, max_age_secs: i64) -> Option<SignedIn> {
        let signed_in: SignedIn = session.get(SIGNED_IN).await.ok().flatten()?;
        if crate::store::now() - signed_in.auth_time > max_age_secs {
            return None;
        }
        let revoked_at = match store
            .person_revocations()
            .revoked_at(&signed_in.identity.subject)
            .await
        {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the person's revocation; the session counts as none");
                return None;
            }
        };
        let started = signed_in
            .signed_in_ms
            .max(signed_in.auth_time.saturating_mul(1000));
        if revoked_at.is_some_and(|at| started <= at) {
            if let Err(e) = session.remove::<SignedIn>(SIGNED_IN).await {
                tracing::warn!(error = %e, "could not clear a revoked session");
            }
            return None;
        }
        Some(signed_in)
    }

    pub async fn save(&self, session: &Session) -> Result<(), tower_sessions::session::Error> {
        session.insert(SIGNED_IN, self).await
    }
}

/// "Sign out everywhere": every session `subject` signed in before now counts as none from now
/// on, on every node (see [`SignedIn::current`]); a later sign-in works again. SAML sessions
/// are these sessions. `true` when the person had signed in since the last revocation.
pub async fn revoke_sessions(store: &Store, subject: &str) -> Result<bool, StoreError> {
    store
        .person_revocations()
        .revoke_sessions(subject, now_ms())
        .await
}

/// What login needs to know about a pending protocol request: who asks, how to come back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Shown on the sign-in page ("Sign in to continue to …").
    pub client_name: String,
    /// Same-origin path the person is sent to once signed in, with `?req=<id>` appended.
    pub resume_path: String,
    /// Authenticate again even with a session (`prompt=login`, `max_age`, `ForceAuthn`).
    pub force: bool,
    pub login_hint: Option<String>,
    pub domain_hint: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    login: PendingLogin,
    request: T,
}

/// A pending request as loaded back: the login part, the protocol's own part, and its age.
pub struct Pending<T> {
    pub login: PendingLogin,
    pub request: T,
    pub created_at: i64,
}

impl PendingLogin {
    pub fn resume_url(&self, id: &str) -> String {
        format!("{}?req={id}", self.resume_path)
    }

    /// Store a pending request; the returned id is what travels in URLs.
    pub async fn save<T: Serialize>(
        &self,
        store: &Store,
        protocol: &str,
        request: &T,
        ttl_secs: i64,
    ) -> Result<String, StoreError> {
        let id = crate::web::random_token(18);
        let payload = serde_json::to_string(&Envelope {
            login: self.clone(),
            request,
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store
            .login_requests()
            .put(&id, protocol, &payload, ttl_secs)
            .await?;
        Ok(id)
    }

    /// Load a pending request of `protocol` (None if unknown, expired, or of another protocol).
    pub async fn load<T: DeserializeOwned>(
        store: &Store,
        id: &str,
        protocol: &str,
    ) -> Result<Option<Pending<T>>, StoreError> {
        let Some(crate::store::PendingRequest {
            protocol: proto,
            payload,
            created_at,
        }) = store.login_requests().get(id).await?
        else {
            return Ok(None);
        };
        if proto != protocol {
            return Ok(None);
        }
        let env: Envelope<T> =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(Pending {
            login: env.login,
            request: env.request,
            created_at,
        }))
    }

    /// The login part only, whatever the protocol (for the sign-in page).
    pub async fn load_any(
        store: &Store,
        id: &str,
    ) -> Result<Option<Pending<serde_json::Value>>, StoreError> {
        let Some(crate::store::PendingRequest {
            payload,
            created_at,
            ..
        }) = store.login_requests().get(id).await?
        else {
            return Ok(None);
        };
        let env: Envelope<serde_json::Value> =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(Pending {
            login: env.login,
            request: env.request,
            created_at,
        }))
    }
}
