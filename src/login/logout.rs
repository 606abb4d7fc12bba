//! Signing a session out: the session is cleared and audited, then each registered
//! [`LogoutParticipant`] hears of it. A participant is whatever else the session signed in to
//! and must be told — SAML's single logout, which visits each SP the session signed in to, is
//! one; the composition root registers them at start-up, so login knows no protocol.

use std::sync::Arc;

use tower_sessions::Session;

use super::throttle::BoxFuture;
use super::SignedIn;
use crate::store::{AuditEvent, Store, StoreError};

/// Something to tell when a session is signed out.
pub trait LogoutParticipant: Send + Sync {
    /// `ended` has just been signed out. `then` is where the browser goes once this participant
    /// is done (`None`: the signed-out page). Answer the address to send the browser to first
    /// when the participant needs it (a front-channel round trip that ends at `then`), or `None`
    /// when there is nothing to do.
    fn signed_out<'a>(
        &'a self,
        ended: &'a SignedIn,
        then: Option<String>,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
}

/// Where the person lands once signed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedOut {
    /// The browser goes there (a participant's round trip, or the client's return address).
    Redirect(String),
    /// The signed-out page.
    Page,
}

/// The participants, in the order the browser visits them.
#[derive(Default, Clone)]
pub struct LogoutParticipants(Vec<Arc<dyn LogoutParticipant>>);

impl LogoutParticipants {
    pub fn new(participants: Vec<Arc<dyn LogoutParticipant>>) -> Self {
        LogoutParticipants(participants)
    }

    /// Tell every participant that `ended` is over; the browser ends at `then`.
    pub async fn notify(
        &self,
        ended: &SignedIn,
        then: Option<String>,
    ) -> Result<SignedOut, StoreError> {
        // From the last participant back: each one's round trip ends where the next one begins.
        let mut next = then;
        for participant in self.0.iter().rev() {
            if let Some(first) = participant.signed_out(ended, next.clone()).await? {
                next = Some(first);
            }
        }
        Ok(match next {
            Some(url) => SignedOut::Redirect(url),
            None => SignedOut::Page,
        })
    }
}

/// End the sign-in session (every client and SP at once), with an audit record. Returns who
/// was signed in, if anyone. Participants are not told: see [`sign_out`].
pub async fn end_session(
    store: &Store,
    session: &Session,
    ip: &str,
) -> Result<Option<SignedIn>, tower_sessions::session::Error> {
    let signed_in = SignedIn::current(session, store, i64::MAX / 2).await;
    session.flush().await?;
    if let Some(s) = &signed_in {
        let _ = store
            .audit()
            .record(AuditEvent {
                event: "logout",
                outcome: "success",
                subject: Some(&s.identity.subject),
                ip: Some(ip),
                ..Default::default()
            })
            .await;
    }
    Ok(signed_in)
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sign the session out everywhere: end it, then tell every participant. The browser ends at
/// `then` (`None`: the signed-out page).
pub async fn sign_out(
    store: &Store,
    participants: &LogoutParticipants,
    session: &Session,
    ip: &str,
    then: Option<String>,
) -> Result<SignedOut, LogoutError> {
    let ended = end_session(store, session, ip).await?;
    Ok(match ended {
        Some(ended) => participants.notify(&ended, then).await?,
        None => then.map_or(SignedOut::Page, SignedOut::Redirect),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::identity::{Identity, Source};

    /// A participant with a round trip of its own (or none), recording where it was to end.
    struct Hop {
        name: &'static str,
        needs_browser: bool,
        told: Mutex<Vec<Option<String>>>,
    }

    impl LogoutParticipant for Hop {
        fn signed_out<'a>(
            &'a self,
            _: &'a SignedIn,
            then: Option<String>,
        ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
            self.told.lock().unwrap().push(then);
            let first = self.needs_browser.then(|| format!("/{}", self.name));
            Box::pin(async move { Ok(first) })
        }
    }

    fn hop(name: &'static str, needs_browser: bool) -> Arc<Hop> {
        Arc::new(Hop {
            name,
            needs_browser,
            told: Mutex::new(Vec::new()),
        })
    }

    fn alice() -> SignedIn {
        SignedIn {
            identity: Identity {
                subject: "alice".into(),
                email: "alice@acme.test".into(),
                email_verified: true,
                login: None,
                given_name: None,
                family_name: None,
                employee_number: None,
                department: None,
                manager_email: None,
                job_title: None,
                groups: Vec::new(),
                source: Source::Local,
            },
            auth_time: 0,
            amr: Vec::new(),
            sid: "sid".into(),
            saml_participants: Vec::new(),
            signed_in_ms: 0,
            touched_at: 0,
        }
    }

    #[tokio::test]
    async fn participants_are_visited_in_order_and_the_last_lands_where_asked() {
        let (a, b, c) = (hop("a", true), hop("b", false), hop("c", true));
        let all = LogoutParticipants::new(vec![a.clone(), b.clone(), c.clone()]);
        let out = all
            .notify(&alice(), Some("https://rp.test/bye".into()))
            .await
            .unwrap();
        assert_eq!(out, SignedOut::Redirect("/a".into()), "a first");
        assert_eq!(
            *a.told.lock().unwrap(),
            [Some("/c".to_string())],
            "a, then c"
        );
        assert_eq!(*b.told.lock().unwrap(), [Some("/c".to_string())]);
        assert_eq!(
            *c.told.lock().unwrap(),
            [Some("https://rp.test/bye".to_string())],
            "c, then the client's address"
        );

        let none = LogoutParticipants::new(vec![hop("quiet", false)]);
        assert_eq!(none.notify(&alice(), None).await.unwrap(), SignedOut::Page);
        assert_eq!(
            LogoutParticipants::default()
                .notify(&alice(), Some("/x".into()))
                .await
                .unwrap(),
            SignedOut::Redirect("/x".into())
        );
    }
}
