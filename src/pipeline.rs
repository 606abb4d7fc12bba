//! The boundary between sign-in and a protocol answer. A [`Pipeline`] takes the signed-in
//! person's identity, applies policy (does the account still exist?) and the live group→role
//! table, and asks the provisioning port (JIT) to make sure the Lucca account is right. It
//! answers [`Released`] — the identity and the claims JIT acted on, which the front end sends
//! as they are — or a typed [`Refusal`]. It renders nothing: each front end's HTTP layer shows
//! a refusal through [`refusal_page`], the one place its wording lives.
//!
//! Both front ends call [`Pipeline::release`] once per sign-in; OIDC stores what it released
//! with the code and the grant, so the token, refresh and userinfo endpoints never map again.
//!
//! May import `config/`, `web/`, `store/`, `identity/`, `login/` and `provisioning/`; no protocol
//! room, no `app/`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::StatusCode;
use chrono::NaiveDate;

use crate::identity::{map_claims, Claims, Identity, Mapped, Source};
use crate::login::Live;
use crate::provisioning::{Denied, Jit};
use crate::web::{Message, PageError};

mod preparing;

/// How long a sign-in request waits for the person's Lucca work before the waiting page is
/// shown — and how long each of the page's polls waits again. Most sign-ins finish well
/// within it and never see the page.
pub const PREPARING_POLL: Duration = Duration::from_secs(3);

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a signed-in person may not be signed in to the application.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the account no longer exists or is disabled")]
    AccountGone,
    #[error("the Lucca contract has ended")]
    ContractEnded {
        on: Option<NaiveDate>,
        contact: String,
    },
    #[error("the Lucca contract has not started yet")]
    ContractNotStarted {
        on: Option<NaiveDate>,
        contact: String,
    },
    #[error("several Lucca accounts match this person")]
    SeveralLuccaAccounts { contact: String },
    #[error("the person has no Lucca account")]
    NoLuccaAccount { contact: String },
    #[error("the Lucca account carries another email address or login")]
    LuccaIdentifierDiffers { contact: String },
    #[error("the person is in none of the groups allowed to sign in to {application}")]
    NotAllowed {
        application: String,
        contact: String,
    },
    /// Not a refusal: the person's Lucca work is queued behind the budget or a Retry-After.
    /// The front end shows the waiting page, whose next poll picks the work up again.
    #[error("the Lucca account is still being prepared")]
    StillPreparing,
    #[error("Lucca cannot be reached")]
    LuccaUnavailable,
    #[error("the Lucca account could not be checked or created: {reason}")]
    LuccaFailed { reason: String, contact: String },
    #[error(transparent)]
    Storage(#[from] crate::store::StoreError),
}

impl Refusal {
    /// Our own failure (the store), not something about the person: the caller retries or
    /// answers "temporarily unavailable" instead of revoking anything.
    pub fn is_internal(&self) -> bool {
        matches!(self, Refusal::Storage(_))
    }

    fn from_jit(denied: Denied, contact: &str) -> Refusal {
        let contact = contact.to_string();
        match denied {
            Denied::ContractEnded { on } => Refusal::ContractEnded { on, contact },
            Denied::ContractNotStarted { on } => Refusal::ContractNotStarted { on, contact },
            Denied::SeveralAccounts { .. } => Refusal::SeveralLuccaAccounts { contact },
            Denied::NoAccount => Refusal::NoLuccaAccount { contact },
            Denied::IdentifierDiffers => Refusal::LuccaIdentifierDiffers { contact },
            Denied::Unavailable => Refusal::LuccaUnavailable,
            Denied::Failed(reason) => Refusal::LuccaFailed { reason, contact },
            Denied::Store(e) => Refusal::Storage(e),
        }
    }
}

/// Who the release is for: the client or SP the answer goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Client(&'a str),
    ServiceProvider(&'a str),
}

/// Who may sign in to a client or SP: its `allowed_groups` (cleaned by [`clean_groups`]; empty =
/// everyone) and the name a refusal shows.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub name: &'a str,
    pub allowed_groups: &'a [String],
}

impl<'a> Access<'a> {
    pub fn everyone(name: &'a str) -> Self {
        Access {
            name,
            allowed_groups: &[],
        }
    }

    /// The one rule: no list admits everyone; a list admits a person holding at least one of
    /// its groups (the person's own groups, before any mapping; compared as the role table
    /// compares them: trimmed, exact).
    pub fn admits(&self, identity: &Identity) -> bool {
        self.allowed_groups.is_empty()
            || identity
                .groups
                .iter()
                .any(|g| self.allowed_groups.iter().any(|a| a == g.trim()))
    }
}

/// `allowed_groups` as configured → what [`Access`] compares: trimmed, blanks dropped.
pub fn clean_groups(groups: &[String]) -> Vec<String> {
    groups
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a front end may send about the person: the identity as it is now and the claims JIT
/// acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub identity: Identity,
    pub claims: Claims,
}

/// The provisioning port: what happens in Lucca when a person signs in, and the check of a
/// grant renewed without them. JIT is the adapter; without Lucca there is none.
pub trait Provisioning: Send + Sync {
    /// Make sure the person can use Lucca with these claims, before any answer goes out.
    fn at_sign_in<'a>(&'a self, claims: &'a Claims) -> BoxFuture<'a, Result<(), Refusal>>;
    /// For a renewal without the person: refuse when the last sign-in found the contract ended
    /// or not started. Reads what was recorded; never calls Lucca.
    fn recheck<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<(), Refusal>>;
}

impl Provisioning for Jit {
    fn at_sign_in<'a>(&'a self, claims: &'a Claims) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            Jit::at_sign_in(self, claims)
                .await
                .map(drop)
                .map_err(|denied| Refusal::from_jit(denied, self.support_contact()))
        })
    }

    fn recheck<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            self.check_cached(subject)
                .await
                .map_err(|denied| Refusal::from_jit(denied, self.support_contact()))
        })
    }
}

/// The identity pipeline: the live directory, role table and claim settings (swapped by a
/// reload), and the provisioning port.
pub struct Pipeline {
    live: Arc<ArcSwap<Live>>,
    provisioning: Option<Arc<dyn Provisioning>>,
    /// Whom a refused person should ask (`lucca.support_contact`).
    contact: String,
    /// Sign-ins whose Lucca work is still running, one per person.
    flights: preparing::Flights,
}

impl Pipeline {
    pub fn new(live: Arc<ArcSwap<Live>>, provisioning: Option<Arc<dyn Provisioning>>) -> Self {
        Pipeline {
            live,
            provisioning,
            contact: crate::config::DEFAULT_SUPPORT_CONTACT.to_string(),
            flights: preparing::Flights::default(),
        }
    }

    /// Whom the refusal pages name (`lucca.support_contact`).
    pub fn with_support_contact(mut self, contact: &str) -> Self {
        if !contact.trim().is_empty() {
            self.contact = contact.trim().to_string();
        }
        self
    }

    fn not_allowed(&self, access: &Access<'_>) -> Refusal {
        Refusal::NotAllowed {
            application: access.name.to_string(),
            contact: self.contact.clone(),
        }
    }

    /// The identity as it is now (a local user may have been edited or removed since sign-in).
    pub fn current_identity(&self, identity: &Identity) -> Result<Identity, Refusal> {
        match &identity.source {
            Source::Local => self
                .live
                .load()
                .directory
                .by_subject(&identity.subject)
                .ok_or(Refusal::AccountGone),
            Source::Upstream { .. } => Ok(identity.clone()),
        }
    }

    /// Read-only: what the live table makes of this identity, with the trace that explains it.
    /// No policy, no Lucca. For the preview, and for codes and grants stored before claims were
    /// stored with them.
    pub fn map(&self, identity: &Identity) -> Mapped {
        let live = self.live.load();
        map_claims(identity, &live.role_mapping, &live.claims)
    }

    /// `[claims] module_roles_claim` as it is now.
    pub fn module_roles_claim(&self) -> Option<String> {
        self.live.load().claims.module_roles_claim.clone()
    }

    /// Policy + mapping + provisioning for a signed-in identity: computed once per sign-in,
    /// waiting as long as Lucca's work takes (see [`Pipeline::release_within`]).
    pub async fn release(
        &self,
        identity: &Identity,
        target: Target<'_>,
        access: Access<'_>,
    ) -> Result<Released, Refusal> {
        self.release_within(identity, target, access, None).await
    }

    /// As [`Pipeline::release`], but answer [`Refusal::StillPreparing`] when the person's Lucca
    /// work has not finished within `wait`; calling again joins the same work (one per person)
    /// instead of starting another. Who may sign in to the target is decided before anything
    /// reaches Lucca, so a person refused here never has an account created.
    pub async fn release_within(
        &self,
        identity: &Identity,
        target: Target<'_>,
        access: Access<'_>,
        wait: Option<Duration>,
    ) -> Result<Released, Refusal> {
        let identity = self.current_identity(identity)?;
        if !access.admits(&identity) {
            return Err(self.not_allowed(&access));
        }
        let claims = self.map(&identity).claims;
        if claims.roles_dropped > 0 {
            tracing::warn!(
                subject = %identity.subject,
                dropped = claims.roles_dropped,
                ?target,
                "role list cut to claims.max_roles"
            );
        }
        if let Some(provisioning) = &self.provisioning {
            match self.flights.run(provisioning, &claims, wait).await {
                preparing::Waited::Done(outcome) => outcome?,
                preparing::Waited::Running => return Err(Refusal::StillPreparing),
            }
        }
        Ok(Released { identity, claims })
    }

    /// For a grant being renewed without the person (the refresh-token grant): the current
    /// identity, refused when provisioning last found their Lucca contract ended or not yet
    /// started.
    /// A person taken out of the client's `allowed_groups` since is refused too.
    pub async fn recheck(
        &self,
        identity: &Identity,
        access: Access<'_>,
    ) -> Result<Identity, Refusal> {
        let identity = self.current_identity(identity)?;
        if !access.admits(&identity) {
            return Err(self.not_allowed(&access));
        }
        if let Some(provisioning) = &self.provisioning {
            provisioning.recheck(&identity.subject).await?;
        }
        Ok(identity)
    }
}

/// The edge: how a refusal is shown to the person, whichever front end asked. Both front ends'
/// HTTP layers call this; the wording lives here only (its text in the message catalogues).
/// A refusal about the person offers whom to write to and the way back to Lucca, not "try
/// again"; only Lucca being unreachable is worth retrying.
pub fn refusal_page(refusal: &Refusal) -> PageError {
    let refused = |key: &'static str, message: Message, contact: &str| {
        PageError::new(StatusCode::FORBIDDEN, key, message).refusal(contact)
    };
    match refusal {
        Refusal::AccountGone => PageError::new(
            StatusCode::FORBIDDEN,
            "refusal.account_gone.title",
            "refusal.account_gone.message",
        )
        .refused(),
        Refusal::ContractEnded { on, contact } => refused(
            "refusal.ended.title",
            match on {
                Some(day) => Message::new("refusal.ended.message_on").date("date", *day),
                None => Message::new("refusal.ended.message"),
            }
            .arg("contact", contact),
            contact,
        ),
        Refusal::ContractNotStarted { on, contact } => refused(
            "refusal.not_started.title",
            match on {
                Some(day) => Message::new("refusal.not_started.message_on").date("date", *day),
                None => Message::new("refusal.not_started.message"),
            }
            .arg("contact", contact),
            contact,
        ),
        Refusal::SeveralLuccaAccounts { contact } => refused(
            "refusal.several.title",
            Message::new("refusal.several.message").arg("contact", contact),
            contact,
        ),
        Refusal::NoLuccaAccount { contact } => refused(
            "refusal.no_account.title",
            Message::new("refusal.no_account.message").arg("contact", contact),
            contact,
        ),
        Refusal::LuccaIdentifierDiffers { contact } => refused(
            "refusal.identifier_differs.title",
            Message::new("refusal.identifier_differs.message").arg("contact", contact),
            contact,
        ),
        Refusal::NotAllowed {
            application,
            contact,
        } => refused(
            "refusal.not_allowed.title",
            Message::new("refusal.not_allowed.message")
                .arg("application", application)
                .arg("contact", contact),
            contact,
        ),
        // Front ends show the waiting page instead; this is for one that cannot.
        Refusal::StillPreparing => PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "refusal.preparing.title",
            "refusal.preparing.message",
        )
        .retry_from_lucca(),
        Refusal::LuccaUnavailable => PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "refusal.unavailable.title",
            "refusal.unavailable.message",
        )
        .retry_from_lucca(),
        Refusal::LuccaFailed { contact, .. } => PageError::new(
            StatusCode::BAD_GATEWAY,
            "refusal.failed.title",
            Message::new("refusal.failed.message").arg("contact", contact),
        )
        .refusal(contact),
        Refusal::Storage(e) => PageError::internal("storage", e),
    }
}

/// How often the waiting page polls.
const WAITING_REFRESH_SECS: u32 = 2;

/// The "Preparing your Lucca account…" page for a sign-in whose Lucca work is still running
/// ([`Refusal::StillPreparing`]): it loads `next` (the front end's resume URL, a same-site
/// path) again by itself — a `Refresh` header and the same as a meta tag, no JavaScript —
/// with a link for a browser that does neither. Never cached.
pub fn waiting_page(
    templates: &crate::web::Templates,
    application: &str,
    next: &str,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let body = templates.render(
        "waiting.html",
        minijinja::context! {
            application => application,
            next_url => next,
            refresh_secs => WAITING_REFRESH_SECS,
        },
    );
    let mut page = axum::response::Html(body).into_response();
    let headers = page.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(refresh) = HeaderValue::from_str(&format!("{WAITING_REFRESH_SECS};url={next}")) {
        headers.insert(header::REFRESH, refresh);
    }
    page
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::{ClaimsConfig, DirectoryUser, RoleMappingRow};
    use crate::login::Directory;

    fn english(m: &Message) -> String {
        crate::web::i18n::Catalogues::builtin().render(crate::web::Lang::En, m)
    }

    #[test]
    fn refusal_pages_say_why_and_whom_to_contact() {
        let contact = "hr@acme.test".to_string();
        let page = refusal_page(&Refusal::ContractEnded {
            on: NaiveDate::from_ymd_opt(2022, 12, 31),
            contact: contact.clone(),
        });
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            english(&page.message).contains("ended on 31 December 2022"),
            "{}",
            english(&page.message)
        );
        assert!(
            english(&page.message).contains("hr@acme.test"),
            "{}",
            english(&page.message)
        );
        let page = refusal_page(&Refusal::ContractNotStarted {
            on: NaiveDate::from_ymd_opt(2030, 9, 2),
            contact: contact.clone(),
        });
        assert!(
            english(&page.message).contains("starts on 2 September 2030"),
            "{}",
            english(&page.message)
        );
        let page = refusal_page(&Refusal::LuccaUnavailable);
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(english(&page.message).contains("try again in a minute"));
        let page = refusal_page(&Refusal::LuccaFailed {
            reason: "the Lucca API key was refused (401)".into(),
            contact,
        });
        assert!(
            !english(&page.message).contains("401"),
            "no internals on the page"
        );
        assert_eq!(page.contact.as_deref(), Some("hr@acme.test"));
        assert!(page.retry_url.is_none(), "no Try again on a refusal");
    }

    #[test]
    fn every_refusal_reads_in_french_and_english_and_none_offers_to_try_again() {
        use crate::web::i18n::Catalogues;
        use crate::web::Lang;
        let c = Catalogues::builtin();
        let contact = || "rh@acme.test".to_string();
        let day = NaiveDate::from_ymd_opt(2030, 9, 2);
        let refusals = [
            Refusal::AccountGone,
            Refusal::ContractEnded {
                on: day,
                contact: contact(),
            },
            Refusal::ContractEnded {
                on: None,
                contact: contact(),
            },
            Refusal::ContractNotStarted {
                on: day,
                contact: contact(),
            },
            Refusal::ContractNotStarted {
                on: None,
                contact: contact(),
            },
            Refusal::SeveralLuccaAccounts { contact: contact() },
            Refusal::NoLuccaAccount { contact: contact() },
            Refusal::LuccaIdentifierDiffers { contact: contact() },
            Refusal::LuccaUnavailable,
            Refusal::LuccaFailed {
                reason: "x".into(),
                contact: contact(),
            },
        ];
        for refusal in &refusals {
            let page = refusal_page(refusal);
            assert!(page.retry_url.is_none(), "{refusal:?}");
            for m in [&page.title, &page.message] {
                let (en, fr) = (c.render(Lang::En, m), c.render(Lang::Fr, m));
                assert!(!en.contains('{') && !fr.contains('{'), "{en} / {fr}");
                assert_ne!(en, m.key(), "{refusal:?}: a key without text");
                assert_ne!(en, fr, "{refusal:?}: not translated");
            }
            let fr = c.render(Lang::Fr, &page.message);
            if page.contact.is_some() {
                assert!(fr.contains("rh@acme.test"), "{fr}");
            }
            if matches!(refusal, Refusal::ContractNotStarted { on: Some(_), .. }) {
                assert!(fr.contains("2 septembre 2030"), "{fr}");
            }
        }
        assert!(refusal_page(&Refusal::LuccaUnavailable).retry_from_lucca);
        assert!(refusal_page(&Refusal::AccountGone).refused);
    }

    /// Records the claims it was given and refuses whom it is told to.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<Claims>>,
        refuse: bool,
    }

    impl Provisioning for Recorder {
        fn at_sign_in<'a>(&'a self, claims: &'a Claims) -> BoxFuture<'a, Result<(), Refusal>> {
            self.seen.lock().unwrap().push(claims.clone());
            let refuse = self.refuse;
            Box::pin(async move {
                if refuse {
                    Err(Refusal::NoLuccaAccount {
                        contact: "hr@acme.test".into(),
                    })
                } else {
                    Ok(())
                }
            })
        }
        fn recheck<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), Refusal>> {
            let refuse = self.refuse;
            Box::pin(async move {
                if refuse {
                    Err(Refusal::ContractEnded {
                        on: None,
                        contact: "hr@acme.test".into(),
                    })
                } else {
                    Ok(())
                }
            })
        }
    }

    fn table(role: &str) -> Live {
        let users = [DirectoryUser {
            email: "alice@acme.test".into(),
            groups: vec!["corp-hr".into()],
            ..Default::default()
        }];
        Live {
            directory: Arc::new(Directory::new(&users).unwrap()),
            role_mapping: vec![RoleMappingRow {
                group: "corp-hr".into(),
                role: role.into(),
                module: None,
                ..Default::default()
            }],
            claims: ClaimsConfig::default(),
        }
    }

    #[tokio::test]
    async fn release_hands_provisioning_the_claims_it_returns() {
        let live = Arc::new(ArcSwap::from_pointee(table("administrateur_rh")));
        let recorder = Arc::new(Recorder::default());
        let pipeline = Pipeline::new(live.clone(), Some(recorder.clone()));
        let alice = live.load().directory.by_name("alice@acme.test").unwrap();
        let released = pipeline
            .release(&alice, Target::Client("lucca"), Access::everyone("Lucca"))
            .await
            .unwrap();
        assert_eq!(released.claims.roles, ["administrateur_rh"]);
        assert_eq!(
            *recorder.seen.lock().unwrap(),
            vec![released.claims.clone()]
        );

        // A reload changes what the next release computes, not what was released.
        live.store(Arc::new(table("rh")));
        assert_eq!(pipeline.map(&alice).claims.roles, ["rh"]);
        assert_eq!(released.claims.roles, ["administrateur_rh"]);
    }

    #[tokio::test]
    async fn refusals_come_back_typed_and_a_removed_account_is_gone() {
        let live = Arc::new(ArcSwap::from_pointee(table("r")));
        let alice = live.load().directory.by_name("alice@acme.test").unwrap();
        let refusing = Pipeline::new(
            live.clone(),
            Some(Arc::new(Recorder {
                refuse: true,
                ..Default::default()
            })),
        );
        assert!(matches!(
            refusing
                .release(
                    &alice,
                    Target::ServiceProvider("sp"),
                    Access::everyone("sp")
                )
                .await,
            Err(Refusal::NoLuccaAccount { .. })
        ));
        assert!(matches!(
            refusing.recheck(&alice, Access::everyone("Lucca")).await,
            Err(Refusal::ContractEnded { .. })
        ));

        let open = Pipeline::new(live.clone(), None);
        assert!(open
            .recheck(&alice, Access::everyone("Lucca"))
            .await
            .is_ok());
        let mut emptied = table("r");
        emptied.directory = Arc::new(Directory::new(&[]).unwrap());
        live.store(Arc::new(emptied));
        assert!(matches!(
            open.release(&alice, Target::Client("lucca"), Access::everyone("Lucca"))
                .await,
            Err(Refusal::AccountGone)
        ));
        assert!(!Refusal::AccountGone.is_internal());
    }

    #[tokio::test]
    async fn allowed_groups_refuse_before_lucca_and_at_refresh() {
        let live = Arc::new(ArcSwap::from_pointee(table("r")));
        let recorder = Arc::new(Recorder::default());
        let pipeline = Pipeline::new(live.clone(), Some(recorder.clone()))
            .with_support_contact("it@acme.test");
        let alice = live.load().directory.by_name("alice@acme.test").unwrap();
        let hr = ["corp-hr".to_string()];
        let payroll = ["corp-payroll".to_string()];
        let access = |allowed| Access {
            name: "Lucca",
            allowed_groups: allowed,
        };

        assert!(pipeline
            .release(&alice, Target::Client("lucca"), access(&hr))
            .await
            .is_ok());
        match pipeline
            .release(&alice, Target::Client("lucca"), access(&payroll))
            .await
        {
            Err(Refusal::NotAllowed {
                application,
                contact,
            }) => {
                assert_eq!(application, "Lucca");
                assert_eq!(contact, "it@acme.test");
            }
            other => panic!("expected NotAllowed, got {other:?}"),
        }
        // Provisioning saw only the admitted release: nothing reached Lucca for the refusal.
        assert_eq!(recorder.seen.lock().unwrap().len(), 1);

        // Taken out of the group since: the renewal is refused.
        assert!(pipeline.recheck(&alice, access(&hr)).await.is_ok());
        let mut moved = table("r");
        moved.directory = Arc::new(
            Directory::new(&[DirectoryUser {
                email: "alice@acme.test".into(),
                groups: vec!["corp-it".into()],
                ..Default::default()
            }])
            .unwrap(),
        );
        live.store(Arc::new(moved));
        assert!(matches!(
            pipeline.recheck(&alice, access(&hr)).await,
            Err(Refusal::NotAllowed { .. })
        ));
        let page = refusal_page(&Refusal::NotAllowed {
            application: "Lucca".into(),
            contact: "it@acme.test".into(),
        });
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let text = english(&page.message);
        assert!(
            text.contains("Lucca") && text.contains("it@acme.test"),
            "{text}"
        );
    }

    #[test]
    fn clean_groups_trims_and_drops_blanks() {
        assert_eq!(
            clean_groups(&[" corp-hr ".into(), "".into(), "  ".into()]),
            ["corp-hr"]
        );
    }

    /// Takes `delay` per sign-in and counts them.
    struct Slow {
        delay: Duration,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl Provisioning for Slow {
        fn at_sign_in<'a>(&'a self, _: &'a Claims) -> BoxFuture<'a, Result<(), Refusal>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                Ok(())
            })
        }
        fn recheck<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), Refusal>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn a_slow_sign_in_says_still_preparing_and_the_next_poll_joins_the_same_work() {
        let live = Arc::new(ArcSwap::from_pointee(table("r")));
        let slow = Arc::new(Slow {
            delay: Duration::from_millis(600),
            calls: Default::default(),
        });
        let pipeline = Pipeline::new(live.clone(), Some(slow.clone()));
        let alice = live.load().directory.by_name("alice@acme.test").unwrap();
        let release = |wait| {
            pipeline.release_within(
                &alice,
                Target::Client("lucca"),
                Access::everyone("Lucca"),
                Some(wait),
            )
        };
        assert!(matches!(
            release(Duration::from_millis(100)).await,
            Err(Refusal::StillPreparing)
        ));
        assert!(matches!(
            release(Duration::from_millis(100)).await,
            Err(Refusal::StillPreparing)
        ));
        let released = release(Duration::from_secs(5)).await.unwrap();
        assert_eq!(released.claims.roles, ["r"]);
        assert_eq!(
            slow.calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the polls joined the first sign-in's work"
        );
        assert_eq!(pipeline.flights.len(), 0, "collected outcomes are dropped");

        // The next sign-in is new work, and a fast one is answered without a page.
        let quick = Pipeline::new(
            live.clone(),
            Some(Arc::new(Slow {
                delay: Duration::from_millis(10),
                calls: Default::default(),
            })),
        );
        assert!(quick
            .release_within(
                &alice,
                Target::Client("lucca"),
                Access::everyone("Lucca"),
                Some(PREPARING_POLL)
            )
            .await
            .is_ok());
    }
}
