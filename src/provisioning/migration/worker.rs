//! The background worker: runs one job at a time, in three steps.
//!
//! 1. **Plan.** Read every Lucca user once, in pages of 1000 (about 11 requests for 10,000
//!    people), classify every pending row against that snapshot, and record each outcome.
//!    Rows that need no write are done here; a dry run ends here.
//! 2. **Apply.** For each row that needs a write, in processing order (managers first): look
//!    the person up again, classify again, and write only if that fresh answer still says so.
//!    The outcome is recorded right after the write. A job killed at any point resumes with the
//!    rows not recorded as done; their re-check finds what the killed run already wrote, so no
//!    person is ever created twice.
//! 3. **Notify** (when asked): email each migrated person once.
//!
//! Lucca requests go through the shared client at `Priority::Batch`, so people signing in
//! always get the tenant's budget first.

use std::sync::Arc;
use std::time::Duration;

use super::classify::{classify, identifier, LuccaIndex, Outcome, Plan, Rules, BULK_FIELDS};
use super::context::MigrationContext;
use super::model::{Class, JobStatus, PersonRow};
use super::notify::{EmailContext, Mailer, NotifyError};
use crate::config::MatchOn;
use crate::identity::Identity;
use crate::lucca::{LuccaClient, LuccaError, Priority};
use crate::store::StoreError;
use crate::store::{MigrationJobRecord, MigrationRowOutcome, MigrationRowRecord};

/// How often the worker looks for work when nobody wakes it (a job queued by another process
/// sharing the data directory, or a wake-up lost to a restart).
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Planned outcomes are written in transactions of this many rows.
const FLUSH_EVERY: usize = 500;
/// Waits before retrying a write Lucca could not take (it was down, or over its budget even
/// after the client's own 429 retries); after the last, the job stops as `failed`.
const TRANSIENT_BACKOFF: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

/// Start the worker. Jobs left `running` or `queued` by a previous process are picked up first.
pub fn spawn_worker(ctx: Arc<MigrationContext>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            run_queued(&ctx).await;
            tokio::select! {
                _ = ctx.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    })
}

/// Run queued jobs, one at a time, until none is left or the database fails.
pub(crate) async fn run_queued(ctx: &MigrationContext) {
    loop {
        match ctx.store.migration_jobs().next_job().await {
            Ok(Some(id)) => {
                if let Err(e) = run_job(ctx, &id).await {
                    // The database failed under us: the job stays as it is and is resumed
                    // once the database answers again.
                    tracing::error!(job = %id, error = %e, "migration job interrupted; will resume");
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for migration jobs");
                return;
            }
        }
    }
}

/// Why a job stopped before its end.
enum Stop {
    Cancelled,
    /// Nothing more can be done without a person changing something: the job is `failed`.
    Fatal(String),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

async fn run_job(ctx: &MigrationContext, id: &str) -> Result<(), StoreError> {
    let Some(job) = ctx.store.migration_jobs().job(id).await? else {
        return Ok(());
    };
    if !ctx.store.migration_jobs().start_job(id).await? {
        return Ok(());
    }
    // Several nodes may share the store: this one holds the job while it runs.
    let _lease = ctx.store.hold_job_lease(id);
    tracing::info!(job = %id, dry_run = job.dry_run, rows = job.total, "migration job running");
    let client = match &ctx.lucca {
        Ok(client) => client.with_priority(Priority::Batch),
        Err(message) => return finish(ctx, id, Err(Stop::Fatal(message.clone()))).await,
    };
    let runner = Runner {
        ctx,
        job: &job,
        client,
        match_on: ctx.lucca_config.match_on,
        today: chrono::Local::now().date_naive(),
    };
    let result = runner.run().await;
    finish(ctx, id, result).await
}

async fn finish(
    ctx: &MigrationContext,
    id: &str,
    result: Result<(), Stop>,
) -> Result<(), StoreError> {
    let store = &ctx.store;
    match result {
        Ok(()) => {
            store
                .migration_jobs()
                .finish_job(id, JobStatus::Done.as_str(), None)
                .await?;
            tracing::info!(job = %id, "migration job done");
        }
        Err(Stop::Cancelled) => tracing::info!(job = %id, "migration job cancelled"),
        Err(Stop::Fatal(message)) => {
            tracing::warn!(job = %id, error = %message, "migration job failed");
            store
                .migration_jobs()
                .finish_job(id, JobStatus::Failed.as_str(), Some(&message))
                .await?;
        }
        Err(Stop::Store(e)) => return Err(e),
    }
    Ok(())
}

/// A row waiting for its write.
struct Pending {
    record: MigrationRowRecord,
    person: PersonRow,
    identity: Option<Identity>,
}

struct Runner<'a> {
    ctx: &'a MigrationContext,
    job: &'a MigrationJobRecord,
    client: LuccaClient,
    match_on: MatchOn,
    today: chrono::NaiveDate,
}

impl Runner<'_> {
    async fn run(&self) -> Result<(), Stop> {
        let store = &self.ctx.store;
        let id = self.job.id.as_str();
        let rows = store.migration_jobs().rows(id, true).await?;
        let directory = self.ctx.directory();
        let mut pending = Vec::with_capacity(rows.len());
        for record in rows {
            match serde_json::from_str::<PersonRow>(&record.input) {
                Ok(person) => {
                    let identity = directory.by_name(&person.email);
                    pending.push(Pending {
                        record,
                        person,
                        identity,
                    });
                }
                Err(e) => {
                    let outcome = MigrationRowOutcome {
                        row_no: record.row_no,
                        class: Class::Failed.as_str().into(),
                        fields: None,
                        lucca_id: None,
                        message: Some(format!("stored row is unreadable: {e}")),
                        done: true,
                        findings: None,
                    };
                    store
                        .migration_jobs()
                        .record_outcomes(id, &[outcome])
                        .await?;
                }
            }
        }

        // A dry run with `apply_roles` reports each person's Lucca role change.
        let live = self.ctx.live();
        let names_roles = live
            .role_mapping
            .iter()
            .any(|r| r.lucca_role_id.is_some() || r.lucca_role.is_some());
        let role_table = if self.job.dry_run && self.ctx.lucca_config.apply_roles && names_roles {
            let named = live
                .role_mapping
                .iter()
                .any(|r| r.lucca_role_id.is_none() && r.lucca_role.is_some());
            let roles = if named {
                self.client
                    .roles()
                    .await
                    .map_err(|e| Stop::Fatal(format!("cannot read Lucca's roles: {e}")))?
            } else {
                Vec::new()
            };
            Some(crate::provisioning::roles::resolve(
                &live.role_mapping,
                &roles,
            ))
        } else {
            None
        };
        let fields = match role_table {
            Some(_) => format!("{BULK_FIELDS},habilitedRoles[id,name]"),
            None => BULK_FIELDS.to_string(),
        };
        let users = self
            .client
            .list_all_users_with_fields(true, &fields)
            .await
            .map_err(|e| Stop::Fatal(format!("cannot read Lucca's users: {e}")))?;
        let mut index = LuccaIndex::new(users);
        // One request, and only when someone has a department to set.
        let wants_departments = pending.iter().any(|p| {
            p.person.department.is_some()
                || p.identity.as_ref().is_some_and(|i| i.department.is_some())
        });
        let departments = if wants_departments {
            self.client
                .reload_departments()
                .await
                .map_err(|e| Stop::Fatal(format!("cannot read Lucca's departments: {e}")))?
        } else {
            Arc::new(Vec::new())
        };
        let rules = Rules {
            match_on: self.match_on,
            today: self.today,
            defaults: &self.ctx.lucca_config.defaults,
            owned: &self.ctx.lucca_config.owned_attributes,
            departments: &departments,
            directory_is_complete: self.ctx.directory_is_complete,
        };

        // 1. Plan against the snapshot; settle whatever needs no write.
        let mut planning = index.clone();
        let mut batch = Vec::with_capacity(FLUSH_EVERY);
        let mut to_write = Vec::new();
        for p in pending {
            let plan = classify(&p.person, p.identity.as_ref(), &planning, &rules);
            if let Plan::Create { user, .. } = &plan {
                planning.plan_creation(user);
            }
            let settled = matches!(plan, Plan::Settled(_));
            let mut outcome = plan.outcome().clone();
            if settled {
                credit_earlier_write(&p.record, &mut outcome);
            }
            if let (Some(table), Some(identity)) = (&role_table, p.identity.as_ref()) {
                report_role_change(&mut outcome, table, identity, &index, &live);
            }
            let outcome = &outcome;
            let done = self.job.dry_run || settled;
            batch.push(row_outcome(p.record.row_no, outcome, done));
            if done {
                if !self.job.dry_run {
                    self.link(&p, outcome).await?;
                }
            } else {
                to_write.push(p);
            }
            if batch.len() >= FLUSH_EVERY {
                store.migration_jobs().record_outcomes(id, &batch).await?;
                batch.clear();
                self.check_cancelled().await?;
            }
        }
        store.migration_jobs().record_outcomes(id, &batch).await?;
        if self.job.dry_run {
            return Ok(());
        }

        // 2. Apply, each write preceded by a fresh look-up.
        for p in to_write {
            self.check_cancelled().await?;
            self.apply_with_retries(&mut index, &rules, &p).await?;
        }

        // 3. Notify.
        if self.job.notify {
            self.notify_all().await?;
        }
        Ok(())
    }

    async fn check_cancelled(&self) -> Result<(), Stop> {
        match self
            .ctx
            .store
            .migration_jobs()
            .job_status(&self.job.id)
            .await?
            .as_deref()
        {
            Some("running") => Ok(()),
            _ => Err(Stop::Cancelled),
        }
    }

    async fn apply_with_retries(
        &self,
        index: &mut LuccaIndex,
        rules: &Rules<'_>,
        p: &Pending,
    ) -> Result<(), Stop> {
        let mut attempt = 0;
        loop {
            match self.apply(index, rules, p).await {
                Err(ApplyError::Transient(e)) => match TRANSIENT_BACKOFF.get(attempt) {
                    Some(wait) => {
                        tracing::warn!(job = %self.job.id, row = p.record.row_no, error = %e, "Lucca could not take a write; retrying");
                        tokio::time::sleep(*wait).await;
                        attempt += 1;
                        self.check_cancelled().await?;
                    }
                    None => {
                        return Err(Stop::Fatal(format!(
                            "stopped at line {}: {e}. People already done keep their outcome; submit the file again to finish (they will be `ready`)",
                            p.record.row_no
                        )))
                    }
                },
                Err(ApplyError::Stop(stop)) => return Err(stop),
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn apply(
        &self,
        index: &mut LuccaIndex,
        rules: &Rules<'_>,
        p: &Pending,
    ) -> Result<(), ApplyError> {
        let store = &self.ctx.store;
        let id = self.job.id.as_str();
        let identifier = identifier(&p.person, p.identity.as_ref(), self.match_on);
        // The snapshot may be minutes old, and a run killed after its write but before
        // recording it must not write again: ask Lucca now.
        let fresh = match self.match_on {
            MatchOn::Email => self.client.find_by_mail(&identifier).await,
            MatchOn::Login => self.client.find_by_login(&identifier).await,
        }
        .map_err(classify_error)?;
        index.refresh(self.match_on, &identifier, fresh);
        let plan = classify(&p.person, p.identity.as_ref(), index, rules);
        let outcome = match plan {
            Plan::Settled(mut outcome) => {
                credit_earlier_write(&p.record, &mut outcome);
                outcome
            }
            Plan::Create {
                mut user,
                mut outcome,
            } => {
                if user.manager_id.is_some_and(|m| m < 0) {
                    // The manager's own creation did not happen: create without one.
                    user.manager_id = None;
                    outcome.changes.retain(|c| c.field != "manager");
                    outcome
                        .notes
                        .push("the manager's account could not be created: manager not set".into());
                }
                store
                    .migration_jobs()
                    .mark_write_started(id, p.record.row_no)
                    .await?;
                match self.client.create_user(&user).await {
                    Ok(created) => {
                        outcome.class = Class::Created;
                        outcome.lucca_id = Some(created.id);
                        index.upsert(created);
                        outcome
                    }
                    Err(e) => failed_write(e, outcome)?,
                }
            }
            Plan::Update {
                lucca_id,
                changes,
                mut outcome,
            } => {
                store
                    .migration_jobs()
                    .mark_write_started(id, p.record.row_no)
                    .await?;
                match self.client.update_user(lucca_id, &changes).await {
                    Ok(Some(updated)) => {
                        outcome.class = Class::Updated;
                        index.upsert(updated);
                        outcome
                    }
                    Ok(None) => {
                        outcome.class = Class::Ready;
                        outcome
                    }
                    Err(e) => failed_write(e, outcome)?,
                }
            }
        };
        self.link(p, &outcome).await?;
        store
            .migration_jobs()
            .record_outcomes(id, &[row_outcome(p.record.row_no, &outcome, true)])
            .await?;
        Ok(())
    }

    /// Remember which Lucca account is this person's (what JIT and token refresh rely on).
    async fn link(&self, p: &Pending, outcome: &Outcome) -> Result<(), StoreError> {
        let (Some(lucca_id), Some(status)) = (outcome.lucca_id, outcome.link_status) else {
            return Ok(());
        };
        if lucca_id <= 0 || matches!(outcome.class, Class::Failed) {
            return Ok(());
        }
        let email = p.person.email_key();
        let subject = p
            .identity
            .as_ref()
            .map(|i| i.subject.clone())
            .unwrap_or_else(|| email.clone());
        self.ctx
            .store
            .lucca_links()
            .put(&subject, lucca_id, Some(&email), status)
            .await
    }

    async fn notify_all(&self) -> Result<(), Stop> {
        let ctx = self.ctx;
        let Some(relay) = ctx.relay.as_ref() else {
            return Err(Stop::Fatal(format!(
                "cannot send the emails: {}",
                NotifyError::NotConfigured
            )));
        };
        let mailer = Mailer::new(relay, &ctx.templates_dir);
        let directory = ctx.directory();
        let rows = ctx.store.migration_jobs().report_rows(&self.job.id).await?;
        for r in rows {
            let migrated = r.done
                && r.class
                    .as_deref()
                    .and_then(Class::parse)
                    .is_some_and(Class::is_migrated);
            if !migrated || r.notice.is_some() {
                continue;
            }
            self.check_cancelled().await?;
            let person: PersonRow = serde_json::from_str(&r.input).unwrap_or_default();
            let identity = directory.by_name(&r.email);
            let context = EmailContext {
                email: r.email.trim().to_lowercase(),
                given_name: person
                    .given_name
                    .or_else(|| identity.as_ref().and_then(|i| i.given_name.clone())),
                family_name: person
                    .family_name
                    .or_else(|| identity.as_ref().and_then(|i| i.family_name.clone())),
                outcome: r
                    .class
                    .as_deref()
                    .and_then(Class::parse)
                    .map_or("ready", Class::as_str),
                lucca_url: ctx.lucca_config.base_url.clone(),
                signin_url: Some(format!("{}/login", ctx.base_url)),
            };
            let notice = match mailer.send(&context).await {
                Ok(()) => "sent".to_string(),
                Err(e) => {
                    tracing::warn!(job = %self.job.id, row = r.row_no, error = %e, "migration email not sent");
                    format!("not sent: {e}")
                }
            };
            ctx.store
                .migration_jobs()
                .set_notice(&self.job.id, r.row_no, &notice)
                .await?;
        }
        Ok(())
    }
}

enum ApplyError {
    /// Worth trying the same row again in a moment.
    Transient(LuccaError),
    Stop(Stop),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        ApplyError::Stop(Stop::Store(e))
    }
}

/// A failed look-up: wait and retry, or stop the job when no row can succeed (a refused key).
fn classify_error(e: LuccaError) -> ApplyError {
    if e.is_transient() {
        ApplyError::Transient(e)
    } else {
        ApplyError::Stop(Stop::Fatal(e.to_string()))
    }
}

/// A dry run's view of the Lucca roles the table would give an active account (written by
/// the next sign-in or sync run, `[lucca] apply_roles`).
fn report_role_change(
    outcome: &mut Outcome,
    table: &crate::provisioning::roles::ResolvedTable,
    identity: &Identity,
    index: &LuccaIndex,
    live: &crate::login::Live,
) {
    if !matches!(outcome.class, Class::Ready | Class::WillUpdate) {
        return;
    }
    let Some(user) = outcome.lucca_id.and_then(|id| index.get(id)) else {
        return;
    };
    let claims = crate::identity::map_claims(identity, &live.role_mapping, &live.claims).claims;
    let granted = crate::provisioning::decision::lucca_roles_granted(&table.rows, &claims);
    let current = user.habilited_role_ids();
    let Some(change) =
        crate::provisioning::decision::habilited_roles_change(&current, &granted, &table.managed)
    else {
        return;
    };
    let list = |ids: &[i64]| {
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    outcome.changes.push(super::model::FieldChange::new(
        "lucca_roles",
        Some(&list(&current)),
        list(&change.result),
    ));
    outcome.notes.push(format!(
        "Lucca roles: add [{}], remove [{}] (written by the next sign-in or sync run)",
        list(&change.add),
        list(&change.remove)
    ));
}

/// A refused write fails its row only; a transient or key problem is handled like a look-up's.
fn failed_write(e: LuccaError, mut outcome: Outcome) -> Result<Outcome, ApplyError> {
    match e {
        LuccaError::Validation { .. } | LuccaError::NotFound { .. } | LuccaError::Decode { .. } => {
            outcome.class = Class::Failed;
            outcome.notes.insert(0, e.to_string());
            Ok(outcome)
        }
        e => Err(classify_error(e)),
    }
}

/// A row whose write was sent by a run that died before recording it, and which Lucca now
/// shows as done: the write was this job's, so report it as such (not as `ready`).
fn credit_earlier_write(record: &MigrationRowRecord, outcome: &mut Outcome) {
    if record.write_started_at.is_none() || outcome.class != Class::Ready {
        return;
    }
    let (class, note) = match record.class.as_deref() {
        Some("will_create") => (Class::Created, "created before the job was restarted"),
        Some("will_update") => (Class::Updated, "updated before the job was restarted"),
        _ => return,
    };
    outcome.class = class;
    outcome.notes.push(note.into());
}

fn row_outcome(row_no: i64, outcome: &Outcome, done: bool) -> MigrationRowOutcome {
    MigrationRowOutcome {
        row_no,
        class: outcome.class.as_str().into(),
        fields: (!outcome.changes.is_empty())
            .then(|| serde_json::to_string(&outcome.changes).unwrap_or_default()),
        lucca_id: outcome.lucca_id.filter(|id| *id > 0),
        message: outcome.full_message(),
        done,
        findings: serde_json::to_string(&outcome.findings()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(class: &str, write_started: bool) -> MigrationRowRecord {
        MigrationRowRecord {
            row_no: 2,
            seq: 0,
            email: "a@acme.test".into(),
            input: "{}".into(),
            class: Some(class.into()),
            fields: None,
            lucca_id: None,
            message: None,
            done: false,
            write_started_at: write_started.then_some(1),
            notice: None,
            findings: None,
        }
    }

    fn ready() -> Outcome {
        Outcome {
            class: Class::Ready,
            lucca_id: Some(9),
            changes: vec![],
            notes: vec![],
            link_status: Some("active"),
            also: vec![],
        }
    }

    #[test]
    fn a_write_sent_before_a_restart_is_credited_to_the_job() {
        let mut outcome = ready();
        credit_earlier_write(&record("will_create", true), &mut outcome);
        assert_eq!(outcome.class, Class::Created);
        assert_eq!(
            outcome.message().as_deref(),
            Some("created before the job was restarted")
        );
        let mut outcome = ready();
        credit_earlier_write(&record("will_update", true), &mut outcome);
        assert_eq!(outcome.class, Class::Updated);
        // Nothing was sent: someone else made the account ready.
        let mut outcome = ready();
        credit_earlier_write(&record("will_create", false), &mut outcome);
        assert_eq!(outcome.class, Class::Ready);
    }
}
