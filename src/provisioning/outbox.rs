//! The outbox worker: delivers the updates sign-ins queued, at batch priority so people
//! signing in always go first, retrying transient failures with exponential backoff. Rows
//! live in SQLite, so whatever was pending when the process stopped is sent after a restart.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use super::decision::PendingUpdate;
use super::jit::Jit;
use crate::lucca::{LuccaError, Priority, UserChanges};
use crate::store::{now, OutboxRow, StoreError};

/// First retry delay; doubled at each attempt up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// About six hours of trying. Giving up loses little: the person's next sign-in compares
/// again and queues what is still different.
const MAX_ATTEMPTS: i64 = 12;
/// Rows taken per pass.
const BATCH: i64 = 20;
/// The longest the worker sleeps without looking (a safety net; queued updates wake it).
const IDLE: Duration = Duration::from_secs(60);
/// Delivered and abandoned rows are kept this long for the record.
const KEEP_FINISHED: i64 = 30 * 24 * 3600;

/// The delay before attempt `attempt + 1`, after `attempt` failed ones.
pub fn backoff(attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF)
}

/// Start the worker. It runs until its handle is aborted (the server does so when it stops).
pub fn spawn_outbox_worker(jit: Arc<Jit>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_purge = 0;
        loop {
            let mut full = false;
            match jit.deliver_due(now()).await {
                Ok(n) => full = n as i64 >= BATCH,
                Err(e) => tracing::warn!(error = %e, "reading the Lucca outbox failed"),
            }
            if now() - last_purge > 3600 {
                last_purge = now();
                if let Err(e) = jit
                    .store
                    .outbox()
                    .purge_finished(now() - KEEP_FINISHED)
                    .await
                {
                    tracing::warn!(error = %e, "purging the Lucca outbox failed");
                }
            }
            if full {
                continue;
            }
            let wait = match jit.store.outbox().next_due_at().await {
                Ok(Some(at)) => Duration::from_secs(u64::try_from(at - now()).unwrap_or(0)),
                Ok(None) | Err(_) => IDLE,
            }
            // Never spin: even a row due now waits a moment if the last pass left it there.
            .clamp(Duration::from_secs(1), IDLE);
            tokio::select! {
                _ = jit.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

impl Jit {
    /// Deliver every update due at `at` (unix seconds); returns how many rows were tried.
    pub async fn deliver_due(&self, at: i64) -> Result<usize, StoreError> {
        let rows = self.store.outbox().due(at, BATCH).await?;
        for row in &rows {
            self.deliver(row, at).await?;
        }
        Ok(rows.len())
    }

    async fn deliver(&self, row: &OutboxRow, at: i64) -> Result<(), StoreError> {
        let update: PendingUpdate = match serde_json::from_str(&row.payload) {
            Ok(update) => update,
            Err(e) => {
                let error = format!("unreadable outbox payload: {e}");
                self.store
                    .outbox()
                    .mark_failed(row.id, row.version, &error)
                    .await?;
                return Ok(());
            }
        };
        match self.send(row.lucca_id, &update).await {
            Ok(sent) => {
                self.store
                    .outbox()
                    .mark_delivered(row.id, row.version)
                    .await?;
                let fields: Vec<String> = serde_json::to_value(&sent)
                    .ok()
                    .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
                    .unwrap_or_default();
                tracing::info!(subject = %row.subject, lucca_id = row.lucca_id, ?fields, "Lucca account updated");
                self.audit_event(
                    "jit.update",
                    &row.subject,
                    "delivered",
                    json!({"lucca_id": row.lucca_id, "fields": fields, "attempts": row.attempts + 1}),
                )
                .await;
            }
            Err(e) if e.is_transient() && row.attempts + 1 < MAX_ATTEMPTS => {
                let mut delay = backoff(row.attempts + 1);
                if let LuccaError::RateLimited { retry_after } = &e {
                    delay = delay.max(*retry_after);
                }
                tracing::warn!(subject = %row.subject, lucca_id = row.lucca_id, error = %e, retry_in_s = delay.as_secs(), "Lucca update failed; will retry");
                let next = at + i64::try_from(delay.as_secs()).unwrap_or(i64::MAX / 2);
                self.store
                    .outbox()
                    .schedule_retry(row.id, row.version, next, &e.to_string())
                    .await?;
            }
            Err(e) => {
                tracing::error!(subject = %row.subject, lucca_id = row.lucca_id, error = %e, "Lucca update abandoned");
                self.store
                    .outbox()
                    .mark_failed(row.id, row.version, &e.to_string())
                    .await?;
                self.audit_event(
                    "jit.update",
                    &row.subject,
                    "failed",
                    json!({"lucca_id": row.lucca_id, "attempts": row.attempts + 1, "error": e.to_string()}),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Resolve department and manager, then send what still differs. Returns what was sent.
    async fn send(&self, lucca_id: i64, update: &PendingUpdate) -> Result<UserChanges, LuccaError> {
        let client = self.client.with_priority(Priority::Batch);
        let department_id = match &update.department {
            Some(name) => {
                let id = super::jit::department_id(&client, name).await?;
                if id.is_none() {
                    tracing::warn!(department = %name, "no single Lucca department has this name; department left as is");
                }
                id
            }
            None => None,
        };
        let manager_id = match &update.manager_email {
            Some(mail) => self.manager_id(&client, mail).await?,
            None => None,
        };
        let changes = update.to_changes(lucca_id, department_id, manager_id);
        client.update_user(lucca_id, &changes).await?;
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "simulator")]
    #[tokio::test]
    async fn transient_failures_are_retried_after_a_backoff_and_permanent_ones_abandoned() {
        use crate::config::{JitMode, LuccaConfig, Secret};
        use crate::lucca::simulator::{spawn, SimulatorConfig};
        use crate::lucca::LuccaClient;
        use crate::store::Store;

        let sim = spawn(SimulatorConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let client = LuccaClient::new(
            sim.base_url(),
            Secret::new(sim.api_key()),
            50,
            Duration::from_secs(4),
        )
        .unwrap();
        let config = LuccaConfig {
            jit: JitMode::UpdateOnly,
            ..Default::default()
        };
        let jit = Jit::new(client, store.clone(), &config);
        let update = PendingUpdate {
            job_title: Some("Lead".into()),
            ..Default::default()
        };
        let payload = serde_json::to_string(&update).unwrap();
        store.outbox().enqueue("alice", 2, &payload).await.unwrap();

        sim.fail_next(1, 503);
        let t0 = now();
        assert_eq!(jit.deliver_due(t0).await.unwrap(), 1);
        let row = &store.outbox().recent(None, 1).await.unwrap()[0];
        assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
        assert!(row.next_attempt_at >= t0 + 10, "backed off");
        assert!(row.last_error.as_deref().unwrap().contains("503"));
        assert_eq!(
            jit.deliver_due(t0 + 5).await.unwrap(),
            0,
            "not before its time"
        );
        assert_eq!(jit.deliver_due(t0 + 10).await.unwrap(), 1);
        assert_eq!(sim.user(2).unwrap()["jobTitle"], "Lead");
        let row = &store.outbox().recent(None, 1).await.unwrap()[0];
        assert_eq!((row.status.as_str(), row.attempts), ("done", 2));

        // An account Lucca does not have will not appear by retrying.
        store
            .outbox()
            .enqueue("ghost", 999, &payload)
            .await
            .unwrap();
        jit.deliver_due(now()).await.unwrap();
        let row = &store.outbox().recent(Some("ghost"), 1).await.unwrap()[0];
        assert_eq!(row.status, "failed");
        let audit = store.audit().recent(10, Some("ghost")).await.unwrap();
        assert_eq!(
            (audit[0].event.as_str(), audit[0].outcome.as_str()),
            ("jit.update", "failed")
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<u64> = (1..=MAX_ATTEMPTS).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600]
        );
        assert_eq!(backoff(0).as_secs(), 10);
        assert_eq!(backoff(i64::MAX).as_secs(), 3600);
    }
}
