//! JIT at sign-in: look the person up in Lucca (one request when they are known), act on the
//! [`Decision`], record it in `lucca_links` and the audit log, and queue attribute updates in
//! the outbox instead of making the person wait for them.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::decision::{self, decide, identifier, CannotCreate, Decision, Lookup, PendingUpdate};
use super::follow::Follower;
use super::revocation::RevocationReason;
use super::roles::RoleApplier;
use crate::config::{JitMode, LuccaConfig, LuccaDefaults, MatchOn, OwnedAttribute};
use crate::identity::Claims;
use crate::lucca::{LuccaClient, LuccaError, Priority};
use crate::store::{AuditEvent, LuccaLink, Store, StoreError};

/// Why a person may not go on to Lucca. Worded for logs; the pipeline turns it into a page.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("the Lucca contract has ended")]
    ContractEnded { on: Option<NaiveDate> },
    #[error("the Lucca contract has not started yet")]
    ContractNotStarted { on: Option<NaiveDate> },
    #[error("{count} Lucca accounts match this person")]
    SeveralAccounts { count: usize },
    #[error("no Lucca account matches this person")]
    NoAccount,
    #[error("the linked Lucca account carries another identifier")]
    IdentifierDiffers,
    #[error("Lucca cannot be reached")]
    Unavailable,
    /// Needs an admin: a refused API key, a rejected creation, a missing default…
    #[error("Lucca provisioning failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a person got through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    Created {
        lucca_id: i64,
    },
    UpdateQueued {
        lucca_id: i64,
    },
    Unchanged {
        lucca_id: i64,
    },
    /// Lucca could not be asked; the last decision (active, recent enough) stands.
    KnownActive {
        lucca_id: i64,
    },
}

/// Just-in-time provisioning for one Lucca tenant: built when `[lucca] base_url` is set and
/// `jit` is not `off`.
pub struct Jit {
    pub(super) client: LuccaClient,
    pub(super) store: Store,
    mode: JitMode,
    match_on: MatchOn,
    owned: Vec<OwnedAttribute>,
    defaults: LuccaDefaults,
    support_contact: String,
    decision_ttl: Duration,
    /// `[lucca] sign_in_wait`: the longest a person signing in waits for Lucca (the budget,
    /// a Retry-After) before being told to try again.
    sign_in_wait: Duration,
    /// Wakes the outbox worker when an update is queued.
    pub(super) wake: Notify,
    /// What a leaver found at sign-in goes through (shared with the sync and webhooks).
    follower: Arc<Follower>,
    /// `[lucca] apply_roles`: set once by the composition root.
    roles: std::sync::OnceLock<Arc<RoleApplier>>,
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit")
            .field("base_url", &self.client.base_url().as_str())
            .field("mode", &self.mode)
            .finish()
    }
}

impl Jit {
    /// `None` when JIT is off or Lucca is not configured (then no Lucca call is ever made).
    pub fn from_config(config: &LuccaConfig, store: Store) -> Result<Option<Arc<Jit>>, LuccaError> {
        if config.jit == JitMode::Off {
            return Ok(None);
        }
        let Some(client) = LuccaClient::from_config(config)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Jit::new(client, store, config))))
    }

    pub fn new(client: LuccaClient, store: Store, config: &LuccaConfig) -> Jit {
        Jit {
            client,
            mode: config.jit,
            match_on: config.match_on,
            owned: config.owned_attributes.clone(),
            defaults: config.defaults.clone(),
            support_contact: config.support_contact.trim().to_string(),
            decision_ttl: config.decision_ttl,
            sign_in_wait: config.sign_in_wait,
            wake: Notify::new(),
            follower: Arc::new(Follower::new(&store)),
            roles: std::sync::OnceLock::new(),
            store,
        }
    }

    /// Apply the Lucca roles the table grants at each sign-in (`[lucca] apply_roles`).
    pub fn set_role_applier(&self, roles: Arc<RoleApplier>) {
        let _ = self.roles.set(roles);
    }

    /// The tenant's client (shared connection pool, limiter and department cache).
    pub fn client(&self) -> &LuccaClient {
        &self.client
    }

    /// Where leavers' access is revoked: wire the access side with
    /// [`Follower::set_revocation`].
    pub fn follower(&self) -> &Arc<Follower> {
        &self.follower
    }

    pub fn support_contact(&self) -> &str {
        &self.support_contact
    }

    /// Make sure the person can use Lucca: called after authentication, before any answer
    /// goes back to the application.
    pub async fn at_sign_in(&self, claims: &Claims) -> Result<Granted, Denied> {
        // One place in Lucca's line and one deadline for everything this sign-in asks.
        let client = self
            .client
            .for_sign_in(tokio::time::Instant::now(), self.sign_in_wait);
        let granted = self.provision(&client, claims).await?;
        let lucca_id = match granted {
            Granted::Created { lucca_id }
            | Granted::UpdateQueued { lucca_id }
            | Granted::Unchanged { lucca_id } => Some(lucca_id),
            // Lucca did not answer: nothing more is asked of it now.
            Granted::KnownActive { .. } => None,
        };
        if let (Some(roles), Some(lucca_id)) = (self.roles.get(), lucca_id) {
            // The person gets in whatever happens here; their next sign-in or the sync
            // tries again.
            if let Err(e) = roles
                .apply(&client, lucca_id, None, claims, "sign_in")
                .await
            {
                tracing::warn!(subject = %claims.subject, lucca_id, error = %e, "could not apply Lucca roles at sign-in");
            }
        }
        Ok(granted)
    }

    async fn provision(&self, client: &LuccaClient, claims: &Claims) -> Result<Granted, Denied> {
        let link = self.store.lucca_links().get(&claims.subject).await?;
        let lookup = match self.look_up(client, claims, link.as_ref()).await {
            Ok(lookup) => lookup,
            Err(error) => return self.while_unavailable(claims, link, &error).await,
        };
        let today = today();
        let decision = decide(&lookup, claims, self.mode, &self.owned, today);
        let subject = claims.subject.as_str();
        let email = Some(claims.email.as_str());
        match decision {
            Decision::Leaver { lucca_id, ended_on } => {
                // Someone we let in before: their sessions and tokens end now, not at the
                // next sync. If that fails the link is left, so the sync tries again.
                let was = link.as_ref().map_or("unknown", |l| l.status.as_str());
                let revoked = match link.as_ref().filter(|l| l.status != "ended") {
                    Some(_) => {
                        let reason = RevocationReason::ContractEnded { on: ended_on };
                        self.follower
                            .revoke(subject, email, lucca_id, was, reason, "sign_in")
                            .await
                    }
                    None => true,
                };
                if revoked {
                    self.store
                        .lucca_links()
                        .put(subject, lucca_id, email, "ended")
                        .await?;
                }
                self.audit(
                    subject,
                    "leaver",
                    json!({"lucca_id": lucca_id, "contract_end": ended_on}),
                )
                .await;
                Err(Denied::ContractEnded { on: Some(ended_on) })
            }
            Decision::NotStarted {
                lucca_id,
                starts_on,
            } => {
                self.store
                    .lucca_links()
                    .put(subject, lucca_id, email, "not_started")
                    .await?;
                self.audit(
                    subject,
                    "not_started",
                    json!({"lucca_id": lucca_id, "contract_start": starts_on}),
                )
                .await;
                Err(Denied::ContractNotStarted {
                    on: Some(starts_on),
                })
            }
            Decision::Duplicate { lucca_ids } => {
                self.audit(
                    subject,
                    "duplicate",
                    json!({"lucca_ids": lucca_ids, "match_on": self.match_on}),
                )
                .await;
                Err(Denied::SeveralAccounts {
                    count: lucca_ids.len(),
                })
            }
            Decision::IdentifierDiffers { lucca_id } => {
                self.audit(
                    subject,
                    "no_account",
                    json!({"reason": "identifier_differs", "lucca_id": lucca_id, "match_on": self.match_on}),
                )
                .await;
                Err(Denied::IdentifierDiffers)
            }
            Decision::NoAccount => {
                self.audit(
                    subject,
                    "no_account",
                    json!({"reason": "not_found", "jit": self.mode, "match_on": self.match_on}),
                )
                .await;
                Err(Denied::NoAccount)
            }
            Decision::Create => self.create(client, claims).await,
            Decision::Unchanged { lucca_id } => {
                self.store
                    .lucca_links()
                    .put(subject, lucca_id, email, "active")
                    .await?;
                self.audit(subject, "unchanged", json!({"lucca_id": lucca_id}))
                    .await;
                Ok(Granted::Unchanged { lucca_id })
            }
            Decision::Update { lucca_id, changes } => {
                self.store
                    .lucca_links()
                    .put(subject, lucca_id, email, "active")
                    .await?;
                // The person is active whatever happens to the update; a failure to queue
                // is retried by their next sign-in, which compares again.
                if let Err(e) = self.enqueue(subject, lucca_id, &changes).await {
                    tracing::error!(error = %e, subject, "could not queue a Lucca update");
                }
                self.audit(
                    subject,
                    "updated_queued",
                    json!({"lucca_id": lucca_id, "fields": changes.fields()}),
                )
                .await;
                Ok(Granted::UpdateQueued { lucca_id })
            }
        }
    }

    /// For a refresh: refuse a person whose contract state is ended or not started, or whose
    /// account Lucca no longer has. The recorded state is used while younger than
    /// `lucca.decision_ttl`; older, Lucca is asked again (one read by id), and a leaver found
    /// then loses their access like one the sync finds. When Lucca cannot answer, the
    /// recorded state stands.
    pub async fn check_cached(&self, subject: &str) -> Result<(), Denied> {
        let status = match self.store.lucca_links().get(subject).await? {
            Some(link) if self.is_stale(&link) => self.reread(link).await?,
            Some(link) => link.status,
            None => return Ok(()),
        };
        match status.as_str() {
            "ended" => Err(Denied::ContractEnded { on: None }),
            "not_started" => Err(Denied::ContractNotStarted { on: None }),
            super::follow::REMOVED => Err(Denied::NoAccount),
            _ => Ok(()),
        }
    }

    fn is_stale(&self, link: &LuccaLink) -> bool {
        let ttl = i64::try_from(self.decision_ttl.as_secs()).unwrap_or(i64::MAX);
        crate::store::now().saturating_sub(link.checked_at) > ttl
    }

    /// The account's status after asking Lucca now (the refresh re-check): what Lucca says,
    /// even when revoking failed (the sync retries that); the recorded one if Lucca is out.
    async fn reread(&self, link: LuccaLink) -> Result<String, StoreError> {
        let client = self.client.with_priority(Priority::SignIn);
        let today = today();
        match client.get_user(link.lucca_id).await {
            Ok(user) => {
                let seen = super::follow::Seen::Present(&user);
                self.follower.observe(seen, today, "refresh").await?;
                Ok(decision::link_status(user.contract_status(today)).to_string())
            }
            Err(LuccaError::NotFound { .. }) => {
                let gone = super::follow::Seen::Gone {
                    lucca_id: link.lucca_id,
                };
                self.follower.observe(gone, today, "refresh").await?;
                Ok(super::follow::REMOVED.to_string())
            }
            Err(e) => {
                tracing::warn!(subject = %link.subject, error = %e, "Lucca could not be asked at refresh; the recorded status stands");
                Ok(link.status)
            }
        }
    }

    /// Find the person: by their identifier, and when nobody has it, by the link of an
    /// earlier sign-in (one more request, only in that rare case).
    async fn look_up(
        &self,
        client: &LuccaClient,
        claims: &Claims,
        link: Option<&LuccaLink>,
    ) -> Result<Lookup, LuccaError> {
        let value = identifier(claims, self.match_on);
        let users = match self.match_on {
            MatchOn::Email => client.find_by_mail(&value).await?,
            MatchOn::Login => client.find_by_login(&value).await?,
        };
        if !users.is_empty() {
            return Ok(Lookup::Matches(users));
        }
        if let Some(link) = link {
            match client.get_user(link.lucca_id).await {
                Ok(user) => return Ok(Lookup::LinkedElsewhere(Box::new(user))),
                Err(LuccaError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Lookup::Matches(Vec::new()))
    }

    /// Lucca did not answer usefully: let in a person known to be active, recently enough;
    /// refuse everyone else without recording anything, so the next attempt starts afresh.
    async fn while_unavailable(
        &self,
        claims: &Claims,
        link: Option<LuccaLink>,
        error: &LuccaError,
    ) -> Result<Granted, Denied> {
        let subject = claims.subject.as_str();
        let transient = error.is_transient();
        if transient {
            tracing::warn!(subject, error = %error, "Lucca lookup failed at sign-in");
        } else {
            tracing::error!(subject, error = %error, "Lucca lookup failed at sign-in");
        }
        let fresh = link.filter(|l| self.known_active(l));
        let detail = |lucca_id: Option<i64>| json!({"lucca_id": lucca_id, "transient": transient, "error": error.to_string()});
        match fresh {
            Some(link) => {
                self.audit(subject, "unavailable_allowed", detail(Some(link.lucca_id)))
                    .await;
                Ok(Granted::KnownActive {
                    lucca_id: link.lucca_id,
                })
            }
            None => {
                self.audit(subject, "unavailable_refused", detail(None))
                    .await;
                Err(if transient {
                    Denied::Unavailable
                } else {
                    Denied::Failed(error.to_string())
                })
            }
        }
    }

    /// Whether the last decision about this person (active) is recent enough to stand in
    /// for Lucca's answer.
    fn known_active(&self, link: &LuccaLink) -> bool {
        let ttl = i64::try_from(self.decision_ttl.as_secs()).unwrap_or(i64::MAX);
        link.status == "active" && crate::store::now().saturating_sub(link.checked_at) <= ttl
    }

    async fn create(&self, client: &LuccaClient, claims: &Claims) -> Result<Granted, Denied> {
        let subject = claims.subject.as_str();
        let created = match self.new_account(client, claims).await {
            Ok(Ok(account)) => client.create_user(&account).await,
            Ok(Err(cannot)) => {
                tracing::error!(subject, reason = %cannot, "cannot create a Lucca account");
                self.audit(
                    subject,
                    "create_failed",
                    json!({"error": cannot.to_string()}),
                )
                .await;
                return Err(Denied::Failed(cannot.to_string()));
            }
            Err(e) => Err(e),
        };
        match created {
            Ok(user) => {
                self.store
                    .lucca_links()
                    .put(subject, user.id, Some(&claims.email), "active")
                    .await?;
                self.audit(
                    subject,
                    "created",
                    json!({
                        "lucca_id": user.id,
                        "department_id": user.effective_department_id(),
                        "manager_id": user.effective_manager_id(),
                    }),
                )
                .await;
                tracing::info!(subject, lucca_id = user.id, "Lucca account created");
                Ok(Granted::Created { lucca_id: user.id })
            }
            // Nothing is recorded: if Lucca did create the account before failing to answer,
            // the next sign-in finds it instead of creating another. Someone who needs an
            // account is never let in on an old link.
            Err(e) if e.is_transient() => self.while_unavailable(claims, None, &e).await,
            Err(e) => {
                tracing::error!(subject, error = %e, "Lucca refused to create the account");
                self.audit(subject, "create_failed", json!({"error": e.to_string()}))
                    .await;
                Err(Denied::Failed(e.to_string()))
            }
        }
    }

    /// The account to create, with its department and manager resolved (reads only).
    async fn new_account(
        &self,
        client: &LuccaClient,
        claims: &Claims,
    ) -> Result<Result<crate::lucca::NewUser, CannotCreate>, LuccaError> {
        let department_id = match &claims.department {
            Some(name) => department_id(client, name).await?,
            None => None,
        };
        if department_id.is_none() {
            if let Some(name) = &claims.department {
                tracing::warn!(department = %name, "no single Lucca department has this name; using lucca.defaults.department_id");
            }
        }
        let manager_id = match &claims.manager_email {
            Some(mail) => self.manager_id(client, mail).await?,
            None => None,
        };
        Ok(decision::new_user(
            claims,
            department_id,
            manager_id,
            &self.defaults,
            &self.owned,
            today(),
        ))
    }

    /// The Lucca id of the active account with this email, if exactly one.
    pub(super) async fn manager_id(
        &self,
        client: &LuccaClient,
        mail: &str,
    ) -> Result<Option<i64>, LuccaError> {
        let candidates = client.find_by_mail(mail).await?;
        let found = decision::manager_among(&candidates, today());
        if found.id().is_none() {
            tracing::warn!(manager = %mail, found = candidates.len(), outcome = ?found, "no single active Lucca account for this manager; manager left unset");
        }
        Ok(found.id())
    }

    async fn enqueue(
        &self,
        subject: &str,
        lucca_id: i64,
        changes: &PendingUpdate,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_string(changes)
            .map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?;
        self.store
            .outbox()
            .enqueue(subject, lucca_id, &payload)
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    pub(super) async fn audit(&self, subject: &str, outcome: &str, detail: Value) {
        self.audit_event("jit", subject, outcome, detail).await;
    }

    pub(super) async fn audit_event(
        &self,
        event: &str,
        subject: &str,
        outcome: &str,
        detail: Value,
    ) {
        metrics::counter!("passerelle_jit_total", "event" => event.to_string(), "outcome" => outcome.to_string())
            .increment(1);
        let entry = AuditEvent {
            event,
            outcome,
            subject: Some(subject),
            detail: Some(detail),
            ..Default::default()
        };
        if let Err(e) = self.store.audit().record(entry).await {
            tracing::warn!(error = %e, "could not write the audit log");
        }
    }

    /// What JIT would do for this person, performing lookups only (for `GET /admin/preview`).
    pub async fn preview(&self, claims: &Claims) -> Value {
        let link = match self.store.lucca_links().get(&claims.subject).await {
            Ok(link) => link,
            Err(e) => {
                return json!({"mode": self.mode, "action": "unknown", "error": e.to_string()})
            }
        };
        let client = self.client.with_priority(Priority::SignIn);
        let mut out = json!({
            "mode": self.mode,
            "match_on": self.match_on,
            "identifier": identifier(claims, self.match_on),
            "link": link,
        });
        let lookup = match self.look_up(&client, claims, link.as_ref()).await {
            Ok(lookup) => lookup,
            Err(e) => {
                let allowed = link.as_ref().is_some_and(|l| self.known_active(l));
                extend(
                    &mut out,
                    json!({
                        "action": "unknown",
                        "error": e.to_string(),
                        "reason": if allowed {
                            "Lucca did not answer; this person is known to be active, so a sign-in now would be let through"
                        } else {
                            "Lucca did not answer; a sign-in now would be refused with a \"try again\" page"
                        },
                    }),
                );
                return out;
            }
        };
        let found: Vec<Value> = match &lookup {
            Lookup::Matches(users) => users.iter().map(summary).collect(),
            Lookup::LinkedElsewhere(user) => vec![summary(user)],
        };
        extend(&mut out, json!({"found": found}));
        let decision = decide(&lookup, claims, self.mode, &self.owned, today());
        let described = match &decision {
            Decision::Leaver { ended_on, .. } => json!({
                "action": "refuse", "outcome": "leaver", "contract_end": ended_on,
                "reason": format!("the contract ended on {ended_on}: the sign-in would be refused and no account created"),
            }),
            Decision::NotStarted { starts_on, .. } => json!({
                "action": "refuse", "outcome": "not_started", "contract_start": starts_on,
                "reason": format!("the contract starts on {starts_on}: the sign-in would be refused until then"),
            }),
            Decision::Duplicate { lucca_ids } => json!({
                "action": "refuse", "outcome": "duplicate", "lucca_ids": lucca_ids,
                "reason": "several Lucca accounts have this identifier: the sign-in would be refused and nothing created",
            }),
            Decision::IdentifierDiffers { lucca_id } => json!({
                "action": "refuse", "outcome": "no_account", "lucca_id": lucca_id,
                "reason": "the linked Lucca account now has another identifier: Lucca would not find this person",
            }),
            Decision::NoAccount => json!({
                "action": "refuse", "outcome": "no_account",
                "reason": "no Lucca account matches and lucca.jit = \"update_only\": the sign-in would be refused",
            }),
            Decision::Create => match self.new_account(&client, claims).await {
                Ok(Ok(account)) => json!({
                    "action": "create", "outcome": "created", "account": account,
                    "reason": "no Lucca account matches: this account would be created at sign-in",
                }),
                Ok(Err(cannot)) => json!({
                    "action": "refuse", "outcome": "create_failed", "error": cannot.to_string(),
                    "reason": "no Lucca account matches, and one cannot be created",
                }),
                Err(e) => json!({"action": "create", "outcome": "created", "error": e.to_string(),
                    "reason": "no Lucca account matches: one would be created, but its department or manager could not be resolved now"}),
            },
            Decision::Update { lucca_id, changes } => json!({
                "action": "queue_update", "outcome": "updated_queued", "lucca_id": lucca_id,
                "fields": changes.fields(), "update": changes,
                "reason": format!("active; an update of {} would be queued", changes.fields().join(", ")),
            }),
            Decision::Unchanged { lucca_id } => json!({
                "action": "none", "outcome": "unchanged", "lucca_id": lucca_id,
                "reason": "active, and Lucca already holds the owned attributes",
            }),
        };
        extend(&mut out, described);
        if let Some(roles) = self.roles.get() {
            let lucca_id = match &decision {
                Decision::Update { lucca_id, .. } | Decision::Unchanged { lucca_id } => {
                    Some(*lucca_id)
                }
                _ => None,
            };
            let planned = match lucca_id {
                Some(id) => match roles.plan(&client, id, None, claims).await {
                    Ok(Some(change)) => json!({"change": change}),
                    Ok(None) => {
                        json!({"change": null, "reason": "Lucca already holds the roles the table grants"})
                    }
                    Err(e) => json!({"error": e.to_string()}),
                },
                None => {
                    json!({"change": null, "reason": "no active Lucca account to write roles to yet"})
                }
            };
            extend(&mut out, json!({"lucca_roles": planned}));
        }
        out
    }
}

/// The id of the one department called `name` (Lucca's department list is cached).
pub(super) async fn department_id(
    client: &LuccaClient,
    name: &str,
) -> Result<Option<i64>, LuccaError> {
    let departments = client.departments().await?;
    Ok(decision::department_named(&departments, name).id())
}

/// The day contracts are judged against. Lucca's dates are local calendar dates.
pub(super) fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

fn extend(target: &mut Value, more: Value) {
    if let (Some(target), Value::Object(more)) = (target.as_object_mut(), more) {
        target.extend(more);
    }
}

fn summary(user: &crate::lucca::LuccaUser) -> Value {
    let status = decision::link_status(user.contract_status(today()));
    json!({
        "id": user.id,
        "login": user.login,
        "mail": user.mail,
        "status": status,
        "contract_start": user.dt_contract_start.map(|d| d.date()),
        "contract_end": user.dt_contract_end.map(|d| d.date()),
    })
}
