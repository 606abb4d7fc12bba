//! The audit log written in batches (group commit): each row goes through a bounded queue to
//! one writer task, which stores every row waiting at that moment in one transaction and then
//! answers each caller. Concurrent sign-ins and token exchanges share a commit instead of
//! taking the database's write lock one row at a time.
//!
//! A caller still waits for its row to be committed before it answers: the audit stays
//! complete (no row is lost to a crash after the answer went out) and a reader sees every row
//! of a request that has been answered, whatever it reads with. What batching removes is the
//! per-row transaction, the cost that grows with load.
//!
//! - The queue holds [`QUEUE`] rows; when it is full a caller waits for room (back-pressure),
//!   it never drops a row.
//! - [`BatchedAudit::close`] (the server's stop) refuses new rows to the queue, and returns
//!   once the writer has stored every row already queued. A row recorded after that is
//!   written directly.
//! - A batch that fails is retried row by row, so one bad row fails only its own caller.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::store::{now, AuditEntry, AuditEvent, AuditLog, StoreError, TimedAuditEvent};

/// Rows waiting for the writer, at most.
pub const QUEUE: usize = 4096;
/// Rows per transaction, at most.
pub const BATCH: usize = 512;

struct Job {
    row: TimedAuditEvent,
    done: oneshot::Sender<Result<(), String>>,
}

/// An [`AuditLog`] in front of a backend's, batching its writes.
pub struct BatchedAudit {
    inner: Arc<dyn AuditLog>,
    queue: std::sync::RwLock<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl BatchedAudit {
    /// Start the writer on the current tokio runtime.
    pub fn start(inner: Arc<dyn AuditLog>) -> BatchedAudit {
        BatchedAudit::with_queue(inner, QUEUE)
    }

    fn with_queue(inner: Arc<dyn AuditLog>, queue: usize) -> BatchedAudit {
        let (tx, rx) = mpsc::channel(queue);
        let writer = tokio::spawn(write_batches(inner.clone(), rx));
        BatchedAudit {
            inner,
            queue: std::sync::RwLock::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Refuse new rows to the queue and return once the writer has stored every row already
    /// queued (rows recorded later are written directly).
    pub async fn close(&self) {
        let queue = self
            .queue
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // The writer ends once the last sender is gone and the queue is empty.
        drop(queue);
        if let Some(writer) = self.writer.lock().await.take() {
            let _ = writer.await;
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.queue
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl AuditLog for BatchedAudit {
    async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
        let row = TimedAuditEvent::new(now(), event);
        let Some(queue) = self.sender() else {
            return self.inner.record_batch(vec![row]).await;
        };
        let (done, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = queue.send(Job { row, done }).await {
            // Closed while we waited for room: write it ourselves.
            return self.inner.record_batch(vec![job.row]).await;
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Backend(message.into())),
            Err(_) => Err(StoreError::Backend(
                "the audit writer stopped before storing the row".into(),
            )),
        }
    }

    async fn record_batch(&self, rows: Vec<TimedAuditEvent>) -> Result<(), StoreError> {
        self.inner.record_batch(rows).await
    }

    async fn recent(
        &self,
        limit: i64,
        subject: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.recent(limit, subject).await
    }

    async fn purge_older_than(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.inner.purge_older_than(older_than).await
    }
}

async fn write_batches(inner: Arc<dyn AuditLog>, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    // `recv_many` waits for the first row, then takes every row already queued (up to BATCH).
    while queue.recv_many(&mut jobs, BATCH).await > 0 {
        let rows = jobs.iter().map(|j| j.row.clone()).collect();
        match inner.record_batch(rows).await {
            Ok(()) => {
                for job in jobs.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = jobs.len(), "audit batch failed; storing its rows one by one");
                for job in jobs.drain(..) {
                    let result = inner
                        .record_batch(vec![job.row])
                        .await
                        .map_err(|e| e.to_string());
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A backend whose writes wait for the test to open a gate.
    struct Gated {
        rows: std::sync::Mutex<Vec<TimedAuditEvent>>,
        batches: AtomicUsize,
        gate: tokio::sync::Semaphore,
    }

    impl Default for Gated {
        fn default() -> Gated {
            Gated {
                rows: Default::default(),
                batches: AtomicUsize::new(0),
                gate: tokio::sync::Semaphore::new(0),
            }
        }
    }

    #[async_trait]
    impl AuditLog for Gated {
        async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
            self.record_batch(vec![TimedAuditEvent::new(now(), event)])
                .await
        }
        async fn record_batch(&self, rows: Vec<TimedAuditEvent>) -> Result<(), StoreError> {
            self.gate
                .acquire()
                .await
                .map_err(|e| StoreError::Backend(e.into()))?
                .forget();
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.rows.lock().unwrap().extend(rows);
            Ok(())
        }
        async fn recent(&self, _: i64, _: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
            Ok(Vec::new())
        }
        async fn purge_older_than(&self, _: Duration) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    fn spawn_records(audit: &Arc<BatchedAudit>, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|i| {
                let audit = audit.clone();
                tokio::spawn(async move {
                    let outcome = i.to_string();
                    audit
                        .record(AuditEvent {
                            event: "test",
                            outcome: &outcome,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                })
            })
            .collect()
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn rows_waiting_together_are_stored_in_one_batch_and_each_caller_waits_for_its_own() {
        let backend = Arc::new(Gated::default());
        let audit = Arc::new(BatchedAudit::start(backend.clone()));
        let first = spawn_records(&audit, 1);
        settle().await;
        let rest = spawn_records(&audit, 50);
        settle().await;
        assert!(
            first.iter().chain(&rest).all(|t| !t.is_finished()),
            "no caller is answered before its row is stored"
        );
        backend.gate.add_permits(1000);
        for task in first.into_iter().chain(rest) {
            task.await.unwrap();
        }
        assert_eq!(backend.rows.lock().unwrap().len(), 51);
        assert_eq!(
            backend.batches.load(Ordering::SeqCst),
            2,
            "the first row alone, then the 50 that queued behind it together"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_makes_callers_wait_and_drops_nothing() {
        let backend = Arc::new(Gated::default());
        let audit = Arc::new(BatchedAudit::with_queue(backend.clone(), 2));
        let tasks = spawn_records(&audit, 10);
        settle().await;
        assert!(tasks.iter().all(|t| !t.is_finished()));
        backend.gate.add_permits(1000);
        for task in tasks {
            task.await.unwrap();
        }
        let rows = backend.rows.lock().unwrap();
        let mut outcomes: Vec<usize> = rows
            .iter()
            .map(|r| r.event().outcome.parse().unwrap())
            .collect();
        outcomes.sort_unstable();
        assert_eq!(outcomes, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn close_returns_once_every_queued_row_is_stored_and_later_rows_are_written_directly() {
        let backend = Arc::new(Gated::default());
        let audit = Arc::new(BatchedAudit::start(backend.clone()));
        let _callers = spawn_records(&audit, 20);
        settle().await;
        let closing = tokio::spawn({
            let audit = audit.clone();
            async move { audit.close().await }
        });
        settle().await;
        assert!(!closing.is_finished(), "rows are still queued");
        backend.gate.add_permits(1000);
        closing.await.unwrap();
        assert_eq!(
            backend.rows.lock().unwrap().len(),
            20,
            "every queued row is stored when close returns"
        );
        for task in spawn_records(&audit, 3) {
            task.await.unwrap();
        }
        assert_eq!(backend.rows.lock().unwrap().len(), 23);
    }
}
