//! The directory sync: a background job that reads the Lucca users modified since its last
//! run (a full pass on the first run and then daily), and hands each account to the
//! [`Follower`] — links refreshed, leavers' access revoked. It runs at batch priority inside
//! the tenant's shared budget, on one node at a time (a lease behind the store port), and
//! resumes a run cut short from the cursor it stores after every page.
//!
//! Why nothing is missed:
//! - each incremental run reads `modifiedAt=since,<start of the last finished run − margin>`:
//!   what changed while a run was reading is read again by the next one;
//! - a contract end date passing changes no record, so every incremental run also reads the
//!   contracts that ended since the last run (`dtContractEnd=between,…`);
//! - an account deleted in Lucca never shows in a listing: a full pass that read everyone
//!   re-reads, by id, every linked account it did not see (a 404 is a removal).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::follow::{FollowCounts, Followed, Follower, Seen, REMOVED};
use super::roles::RoleApplier;
use crate::lucca::{format_lucca_date, LuccaClient, LuccaError, LuccaUser, Priority};
use crate::store::{now, LuccaLinks, Store, StoreError, SyncState, SyncStateRecord};

/// The job's name in the store.
pub const JOB: &str = "directory";
/// Only what following a person needs: the ids to link, the contract dates.
pub const SYNC_FIELDS: &str = "id,login,mail,dtContractStart,dtContractEnd,modifiedAt";
/// With `[lucca] apply_roles`: the roles too.
pub const SYNC_FIELDS_WITH_ROLES: &str =
    "id,login,mail,dtContractStart,dtContractEnd,modifiedAt,habilitedRoles[id,name]";
/// Read again around the last run's start: clocks differ, and Lucca's `modifiedAt` is local
/// time without an offset (ours is sent in UTC, which is behind every European tenant's).
const SINCE_MARGIN_SECONDS: i64 = 5 * 60;
/// A full pass at least this often.
const FULL_PASS_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Renewed after every page; another node takes over a lease its holder stopped renewing.
const LEASE_SECONDS: i64 = 5 * 60;
/// After a failed run, the next attempt comes at most this late (or at the interval).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);
const LINKS_PAGE: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the directory sync is already running")]
    Busy,
    #[error("the directory sync is running on another node")]
    LeasedElsewhere,
    #[error(transparent)]
    Lucca(#[from] LuccaError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `Duration::ZERO`: the job never runs by itself (a manual run still works).
    pub interval: Duration,
    pub page_size: u32,
    pub full_pass_every: Duration,
}

impl SyncSettings {
    pub fn new(interval: Duration) -> SyncSettings {
        SyncSettings {
            interval,
            page_size: crate::lucca::MAX_PAGE_SIZE,
            full_pass_every: FULL_PASS_EVERY,
        }
    }
}

pub struct DirectorySync {
    client: LuccaClient,
    state: Arc<dyn SyncState>,
    links: Arc<dyn LuccaLinks>,
    follower: Arc<Follower>,
    roles: Option<Arc<RoleApplier>>,
    settings: SyncSettings,
    /// This process's name on the lease.
    holder: String,
    running: AtomicBool,
    wake: Notify,
}

impl std::fmt::Debug for DirectorySync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySync")
            .field("interval", &self.settings.interval)
            .finish_non_exhaustive()
    }
}

/// Clears the running flag however the run ends.
struct RunningGuard<'a>(&'a AtomicBool);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl DirectorySync {
    pub fn new(
        client: LuccaClient,
        store: &Store,
        follower: Arc<Follower>,
        roles: Option<Arc<RoleApplier>>,
        settings: SyncSettings,
    ) -> DirectorySync {
        DirectorySync {
            client: client.with_priority(Priority::Batch),
            state: store.sync_state().clone(),
            links: store.lucca_links().clone(),
            follower,
            roles,
            settings,
            holder: format!("{}-{}", std::process::id(), crate::web::random_token(9)),
            running: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// The tenant's client, at batch priority.
    pub fn client(&self) -> &LuccaClient {
        &self.client
    }

    /// Where leavers' access is revoked (shared with JIT when JIT is on).
    pub fn follower(&self) -> &Arc<Follower> {
        &self.follower
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Start a run now in the background (`POST /admin/sync`), unless one is running here.
    pub fn start(
        self: &Arc<Self>,
    ) -> Result<JoinHandle<Result<FollowCounts, SyncError>>, SyncError> {
        self.running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .map_err(|_| SyncError::Busy)?;
        let sync = self.clone();
        Ok(tokio::spawn(async move {
            let _guard = RunningGuard(&sync.running);
            sync.run_leased().await
        }))
    }

    /// Run once, waiting for the end (the scheduler; tests).
    pub async fn run_now(self: &Arc<Self>) -> Result<FollowCounts, SyncError> {
        match self.start()?.await {
            Ok(result) => result,
            Err(e) => Err(SyncError::Store(StoreError::Corrupt(format!(
                "the sync task stopped: {e}"
            )))),
        }
    }

    async fn run_leased(&self) -> Result<FollowCounts, SyncError> {
        if !self
            .state
            .try_lease(JOB, &self.holder, LEASE_SECONDS)
            .await?
        {
            return Err(SyncError::LeasedElsewhere);
        }
        let started = std::time::Instant::now();
        let result = self.run().await;
        if let Err(e) = self.state.release_lease(JOB, &self.holder).await {
            tracing::warn!(error = %e, "could not release the directory sync lease");
        }
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!("passerelle_sync_runs_total", "outcome" => outcome).increment(1);
        metrics::histogram!("passerelle_sync_run_seconds").record(started.elapsed().as_secs_f64());
        match &result {
            Ok(counts) => tracing::info!(
                seen = counts.seen,
                linked = counts.linked,
                revoked = counts.revoked,
                "directory sync finished"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "directory sync failed; it resumes from its cursor");
                let mut state = self.state.sync_state(JOB).await?.unwrap_or_default();
                state.last_error = Some(e.to_string());
                state.last_error_at = Some(now());
                self.state.save_sync_state(JOB, &state).await?;
            }
        }
        result
    }

    async fn run(&self) -> Result<FollowCounts, SyncError> {
        let mut state = self.state.sync_state(JOB).await?.unwrap_or_default();
        let start = now();
        if state.run_started_at.is_none() {
            let full_every =
                i64::try_from(self.settings.full_pass_every.as_secs()).unwrap_or(i64::MAX);
            let full = state
                .last_full_at
                .is_none_or(|t| start.saturating_sub(t) >= full_every);
            state.run_started_at = Some(start);
            state.run_full = full;
            state.run_since = match (full, state.last_started_at) {
                (false, Some(last)) => Some(last - SINCE_MARGIN_SECONDS),
                _ => None,
            };
            state.cursor = 0;
            state.run_counts = None;
            self.state.save_sync_state(JOB, &state).await?;
        }
        let mut counts: FollowCounts = state
            .run_counts
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        let today = super::jit::today();
        let fields = if self.roles.is_some() {
            SYNC_FIELDS_WITH_ROLES
        } else {
            SYNC_FIELDS
        };
        // Removals are told only by a listing read whole in this process.
        let mut seen_ids = (state.run_full && state.cursor == 0).then(HashSet::new);
        let filters: Vec<(&'static str, String)> = state
            .run_since
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| {
                vec![(
                    "modifiedAt",
                    format!("since,{}", lucca_timestamp(t.naive_utc())),
                )]
            })
            .unwrap_or_default();
        loop {
            let page = self
                .client
                .list_users_where(
                    state.cursor as u32,
                    self.settings.page_size,
                    &filters,
                    fields,
                )
                .await?;
            let received = page.items.len();
            for user in &page.items {
                if let Some(ids) = seen_ids.as_mut() {
                    ids.insert(user.id);
                }
                self.follow(user, today, &mut counts).await?;
            }
            state.cursor += received as i64;
            state.run_counts = serde_json::to_string(&counts).ok();
            self.state.save_sync_state(JOB, &state).await?;
            if !self
                .state
                .try_lease(JOB, &self.holder, LEASE_SECONDS)
                .await?
            {
                return Err(SyncError::LeasedElsewhere);
            }
            if received < self.settings.page_size as usize {
                break;
            }
        }
        if !state.run_full {
            let since = state
                .last_started_at
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.date_naive() - chrono::Days::new(1));
            if let Some(from) = since {
                self.read_ended_contracts(from, today, fields, &mut counts)
                    .await?;
            }
        }
        if let Some(seen) = seen_ids {
            self.confirm_unseen_links(&seen, today, &mut counts).await?;
        }
        state.last_started_at = state.run_started_at.take();
        if state.run_full {
            state.last_full_at = state.last_started_at;
        }
        state.last_finished_at = Some(now());
        state.last_counts = serde_json::to_string(&counts).ok();
        state.last_error = None;
        state.last_error_at = None;
        state.run_since = None;
        state.run_full = false;
        state.cursor = 0;
        state.run_counts = None;
        self.state.save_sync_state(JOB, &state).await?;
        Ok(counts)
    }

    async fn follow(
        &self,
        user: &LuccaUser,
        today: NaiveDate,
        counts: &mut FollowCounts,
    ) -> Result<(), SyncError> {
        let followed = self
            .follower
            .observe(Seen::Present(user), today, "sync")
            .await?;
        counts.add(followed);
        let Some(roles) = &self.roles else {
            return Ok(());
        };
        // Everyone active in the directory, signed in yet or not.
        let active = !matches!(followed, Followed::Revoked | Followed::RevokeFailed)
            && user.is_active(today);
        // Whose groups: the local directory's entry for the account's mail.
        let claims = user
            .mail
            .as_deref()
            .filter(|_| active)
            .and_then(|mail| roles.directory_claims(mail));
        if let Some(claims) = claims {
            let current = Some(user.habilited_role_ids());
            match roles
                .apply(&self.client, user.id, current, &claims, "sync")
                .await
            {
                Ok(true) => counts.roles_changed += 1,
                Ok(false) => {}
                Err(e) => {
                    counts.errors += 1;
                    tracing::warn!(lucca_id = user.id, error = %e, "could not apply Lucca roles");
                }
            }
        }
        Ok(())
    }

    /// Contracts whose last day fell between `from` and yesterday: no record changed when
    /// that day passed, so `modifiedAt` does not find them.
    async fn read_ended_contracts(
        &self,
        from: NaiveDate,
        today: NaiveDate,
        fields: &str,
        counts: &mut FollowCounts,
    ) -> Result<(), SyncError> {
        let Some(yesterday) = today.pred_opt() else {
            return Ok(());
        };
        if from > yesterday {
            return Ok(());
        }
        let filter = vec![(
            "dtContractEnd",
            format!(
                "between,{},{}",
                format_lucca_date(from),
                format_lucca_date(yesterday)
            ),
        )];
        let mut offset = 0u32;
        loop {
            let page = self
                .client
                .list_users_where(offset, self.settings.page_size, &filter, fields)
                .await?;
            let received = page.items.len();
            for user in &page.items {
                let followed = self
                    .follower
                    .observe(Seen::Present(user), today, "sync")
                    .await?;
                counts.add(followed);
            }
            offset += received as u32;
            if received < self.settings.page_size as usize {
                return Ok(());
            }
        }
    }

    /// Linked accounts a full listing did not return: read each by id (a 404 is a removal).
    async fn confirm_unseen_links(
        &self,
        seen: &HashSet<i64>,
        today: NaiveDate,
        counts: &mut FollowCounts,
    ) -> Result<(), SyncError> {
        let mut after: Option<String> = None;
        let mut checked = HashSet::new();
        loop {
            let page = self.links.page(after.as_deref(), LINKS_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.subject.clone());
            for link in &page {
                if seen.contains(&link.lucca_id)
                    || link.status == REMOVED
                    || !checked.insert(link.lucca_id)
                {
                    continue;
                }
                let followed = match self.client.get_user(link.lucca_id).await {
                    Ok(user) => {
                        self.follower
                            .observe(Seen::Present(&user), today, "sync")
                            .await?
                    }
                    Err(LuccaError::NotFound { .. }) => {
                        let gone = Seen::Gone {
                            lucca_id: link.lucca_id,
                        };
                        self.follower.observe(gone, today, "sync").await?
                    }
                    Err(e) => return Err(e.into()),
                };
                counts.add(followed);
            }
        }
    }

    /// When the next scheduled run is due (unix seconds), `None` when the job is off.
    fn next_due(&self, state: &SyncStateRecord) -> Option<i64> {
        if self.settings.interval.is_zero() {
            return None;
        }
        let interval = i64::try_from(self.settings.interval.as_secs().max(1)).unwrap_or(i64::MAX);
        if state.run_started_at.is_some() {
            // A run cut short: resume it, after a pause when it failed.
            let retry = i64::try_from(RETRY_AFTER_FAILURE.as_secs())
                .unwrap_or(60)
                .min(interval);
            return Some(state.last_error_at.map_or(now(), |t| t + retry));
        }
        Some(match (state.last_started_at, state.last_error_at) {
            (None, None) => now(),
            (None, Some(err)) => err + interval.min(60),
            (Some(last), _) => last.saturating_add(interval),
        })
    }

    /// `GET /admin/sync`.
    pub async fn status(&self) -> Result<Value, StoreError> {
        let state = self.state.sync_state(JOB).await?.unwrap_or_default();
        let at = |t: Option<i64>| {
            t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339())
        };
        let counts = |c: &Option<String>| {
            c.as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .unwrap_or(Value::Null)
        };
        let lag = state.last_started_at.map(|t| now().saturating_sub(t));
        Ok(json!({
            "enabled": !self.settings.interval.is_zero(),
            "interval_seconds": self.settings.interval.as_secs(),
            "running": self.is_running(),
            "last_run": state.last_started_at.map(|_| json!({
                "started_at": at(state.last_started_at),
                "finished_at": at(state.last_finished_at),
                "counts": counts(&state.last_counts),
            })),
            "last_full_pass_at": at(state.last_full_at),
            "next_run_at": at(self.next_due(&state)),
            "lag_seconds": lag,
            "in_progress": state.run_started_at.map(|_| json!({
                "started_at": at(state.run_started_at),
                "full": state.run_full,
                "cursor": state.cursor,
                "counts": counts(&state.run_counts),
            })),
            "last_error": state.last_error.as_ref().map(|e| json!({
                "at": at(state.last_error_at),
                "message": e,
            })),
        }))
    }
}

/// `2025-01-01T08:45:23`, as Lucca's v3 date filters take it.
fn lucca_timestamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The scheduler: runs the sync when due (`sync_interval` after the last run started),
/// resumes a run cut short, and records the lag for `/metrics`.
pub fn spawn_sync_worker(sync: Arc<DirectorySync>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let state = match sync.state.sync_state(JOB).await {
                Ok(state) => state.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the directory sync state");
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                    continue;
                }
            };
            if let Some(last) = state.last_started_at {
                metrics::gauge!("passerelle_sync_lag_seconds")
                    .set(now().saturating_sub(last) as f64);
            }
            let Some(due) = sync.next_due(&state) else {
                // Off: only a manual run (which does not need this loop).
                sync.wake.notified().await;
                continue;
            };
            let wait = Duration::from_secs(u64::try_from(due.saturating_sub(now())).unwrap_or(0));
            // Wake at least every minute to keep the lag gauge current.
            let wait = wait.min(Duration::from_secs(60));
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = sync.wake.notified() => {}
                }
                if sync.next_due(&state).is_some_and(|d| d > now()) {
                    continue;
                }
            }
            match sync.run_now().await {
                Ok(_) | Err(SyncError::Busy) => {}
                Err(SyncError::LeasedElsewhere) => {
                    tokio::time::sleep(Duration::from_secs(5).min(sync.settings.interval)).await;
                }
                Err(_) => {}
            }
        }
    })
}

/// The sync the configuration asks for: built whenever Lucca is configured (a manual run
/// works with `sync_interval = "0s"`), sharing JIT's client and follower when JIT is on.
pub fn build(
    config: &crate::config::Config,
    store: &Store,
    jit: Option<&super::Jit>,
    lucca: Option<&LuccaClient>,
    roles: Option<Arc<RoleApplier>>,
) -> Result<SyncAdmin, LuccaError> {
    let (client, follower) = match (jit, lucca) {
        (Some(jit), _) => (jit.client().clone(), jit.follower().clone()),
        (None, Some(client)) => (client.clone(), Arc::new(Follower::new(store))),
        (None, None) => return Ok(SyncAdmin(None)),
    };
    let settings = SyncSettings::new(config.lucca.sync_interval);
    Ok(SyncAdmin(Some(Arc::new(DirectorySync::new(
        client, store, follower, roles, settings,
    )))))
}

/// The scheduler, when `sync_interval` is not zero.
pub fn spawn(sync: &SyncAdmin) -> Option<JoinHandle<()>> {
    sync.0
        .clone()
        .filter(|s| !s.settings.interval.is_zero())
        .map(spawn_sync_worker)
}

/// What `/admin/sync` reads through axum's `FromRef`: the job, when Lucca is configured.
#[derive(Clone, Debug, Default)]
pub struct SyncAdmin(pub Option<Arc<DirectorySync>>);

/// `GET /admin/sync` and `POST /admin/sync`.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    SyncAdmin: axum::extract::FromRef<S>,
    crate::web::AdminToken: axum::extract::FromRef<S>,
{
    axum::Router::new().route(
        "/admin/sync",
        axum::routing::get(http::status).post(http::run),
    )
}

mod http {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::Json;
    use serde_json::json;

    use super::{SyncAdmin, SyncError};
    use crate::web::{Admin, AdminError};

    const OFF: &str = "the directory sync needs [lucca] base_url and api_key";

    pub(super) async fn status(_: Admin, State(SyncAdmin(sync)): State<SyncAdmin>) -> Response {
        let Some(sync) = sync else {
            return Json(json!({"enabled": false, "reason": OFF})).into_response();
        };
        match sync.status().await {
            Ok(view) => Json(view).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the sync state");
                AdminError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
            }
        }
    }

    pub(super) async fn run(_: Admin, State(SyncAdmin(sync)): State<SyncAdmin>) -> Response {
        let Some(sync) = sync else {
            return AdminError(StatusCode::CONFLICT, OFF.into()).into_response();
        };
        match sync.start() {
            Ok(_) => (
                StatusCode::ACCEPTED,
                Json(json!({"status": "started", "status_url": "/admin/sync"})),
            )
                .into_response(),
            Err(e @ (SyncError::Busy | SyncError::LeasedElsewhere)) => {
                AdminError(StatusCode::CONFLICT, e.to_string()).into_response()
            }
            Err(e) => AdminError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        }
    }
}
