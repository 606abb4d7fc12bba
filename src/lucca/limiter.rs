//! The client-side budget for one Lucca tenant.
//!
//! Lucca allows 50 requests per minute per tenant domain, shared by every integration on it,
//! and answers 429 beyond. JIT provisioning (a person waiting at the sign-in page) and batch
//! work (migrations, sync) draw on the same budget, so the limiter:
//!
//! - never starts more than `budget` requests in any window (an exact sliding window, not a
//!   token bucket that could burst 2N across a refill boundary);
//! - queues waiters in two queues and always serves a waiting sign-in before any batch
//!   request; only the head of the queue that is due may take a slot, so the order is strict.
//!   Batch work is first come, first served; sign-ins are ordered by when the *person* started
//!   signing in ([`RateLimiter::acquire_in_place`]), so a person already waiting — whose account
//!   creation follows their lookup — goes before the lookups of people who came after;
//! - spreads the budget ([`SendRule::burst`]): at most a sixth of it in any sixth of the window
//!   (8 requests per 10 s for Lucca's 50 a minute), so Passerelle never bursts the tenant's
//!   whole budget at once;
//! - after a 429, sends nothing at all until Retry-After has elapsed.
//!
//! The queues are this process's; where the send times are counted is a port, [`SendWindow`],
//! with two adapters chosen by the composition root: [`InProcessWindow`] (one node, the SQLite
//! store: the window lives in this process) and [`ClusterWindow`] (several nodes on one
//! PostgreSQL: every node counts in the database, a 429 seen by one blocks all, and batch work
//! leaves [`BudgetScope::Shared`]'s `sign_in_reserve` slots of each window to sign-ins, which
//! the queues of one node cannot do for a person signing in on another).
//!
//! Sharing: [`RateLimiter::for_tenant`] hands out one limiter per normalised tenant origin
//! (scheme, host, port) — and per node, for a shared budget — from a process-wide registry, so
//! every `LuccaClient` built for the same tenant draws on the same budget. The registry holds
//! weak references: once no client uses a tenant its state is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use crate::store::{LuccaBudget, SendRule, SendSlot, StoreError};

/// How many send times [`LimiterStats::recent_sends`] keeps.
const HISTORY: usize = 1024;

/// Added to the window a shared budget counts: the time from the database's count to Lucca's
/// arrival differs between requests (another node, a slower connection), and a send counted
/// at the very end of a window must not reach Lucca inside it.
pub const CLUSTER_SEND_MARGIN: Duration = Duration::from_millis(250);

/// How long to wait before asking a shared budget that could not be reached again: no request
/// is sent uncounted (the budget holds even while the database does not answer).
const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

/// Who is waiting for a request slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// A person is waiting at the sign-in page: served first.
    SignIn,
    /// Migrations, sync and other background work: served when no sign-in waits.
    Batch,
}

/// No slot could be had before the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotUnavailable {
    /// A best guess of when a slot frees.
    pub retry_after: Duration,
}

/// A snapshot for tests and metrics.
#[derive(Debug, Clone)]
pub struct LimiterStats {
    pub budget: u32,
    pub window: Duration,
    /// Requests started since the limiter was created.
    pub sent: u64,
    /// 429 answers reported through [`RateLimiter::note_rate_limited`].
    pub rate_limited: u64,
    pub waiting_sign_in: usize,
    pub waiting_batch: usize,
    /// Time left before sending may resume after a 429 (this node's, or one a shared budget
    /// reported).
    pub blocked_for: Option<Duration>,
    /// The last send times (up to 1024), oldest first, with who got the slot.
    pub recent_sends: Vec<(Instant, Priority)>,
}

/// The answer of a [`SendWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Counted: send now.
    Taken,
    /// Ask again at `until`; `blocked`: because of a 429 (rather than a full window).
    Wait { until: Instant, blocked: bool },
}

/// The shared budget could not be asked (the database did not answer).
#[derive(Debug, thiserror::Error)]
#[error("shared Lucca budget: {0}")]
pub struct WindowError(#[from] StoreError);

/// The port: where the send times of a tenant's window are counted. Only the head of a
/// limiter's queues asks, one request at a time per priority.
#[async_trait]
pub trait SendWindow: Send + Sync {
    /// Count one request at `priority` if the window of `budget` requests per `window` has
    /// room for it now; otherwise say when to ask again.
    async fn take(
        &self,
        priority: Priority,
        budget: u32,
        window: Duration,
    ) -> Result<Slot, WindowError>;

    /// Lucca answered 429: tell whoever else counts on this window (the limiter itself waits
    /// Retry-After out in any case).
    async fn rate_limited(&self, retry_after: Duration) -> Result<(), WindowError>;
}

/// The window of one process: the send times of the last window, in memory.
#[derive(Debug, Default)]
pub struct InProcessWindow {
    sends: Mutex<VecDeque<Instant>>,
}

#[async_trait]
impl SendWindow for InProcessWindow {
    async fn take(
        &self,
        _priority: Priority,
        budget: u32,
        window: Duration,
    ) -> Result<Slot, WindowError> {
        let now = Instant::now();
        let mut sends = self.sends.lock().unwrap_or_else(|e| e.into_inner());
        while sends.front().is_some_and(|t| *t + window <= now) {
            sends.pop_front();
        }
        let rule = SendRule {
            budget: budget.max(1),
            window,
            kept_free: 0,
            spread: true,
        };
        let sent = sends.len();
        let budget = rule.budget as usize;
        let by_window = (sent >= budget).then(|| sends[sent - budget] + window);
        let by_burst = rule.burst().and_then(|(burst, burst_window)| {
            let burst = burst as usize;
            (sent >= burst)
                .then(|| sends[sent - burst] + burst_window)
                .filter(|at| *at > now)
        });
        if let Some(until) = by_window.into_iter().chain(by_burst).max() {
            return Ok(Slot::Wait {
                until,
                blocked: false,
            });
        }
        sends.push_back(now);
        Ok(Slot::Taken)
    }

    async fn rate_limited(&self, _retry_after: Duration) -> Result<(), WindowError> {
        Ok(())
    }
}

/// The window every node shares, counted in the database (the store's [`LuccaBudget`]).
pub struct ClusterWindow {
    store: Arc<dyn LuccaBudget>,
    tenant: String,
    sign_in_reserve: u32,
}

impl ClusterWindow {
    pub fn new(store: Arc<dyn LuccaBudget>, tenant: String, sign_in_reserve: u32) -> Self {
        ClusterWindow {
            store,
            tenant,
            sign_in_reserve,
        }
    }
}

#[async_trait]
impl SendWindow for ClusterWindow {
    async fn take(
        &self,
        priority: Priority,
        budget: u32,
        window: Duration,
    ) -> Result<Slot, WindowError> {
        let rule = SendRule {
            budget,
            window: window + CLUSTER_SEND_MARGIN,
            kept_free: match priority {
                Priority::SignIn => 0,
                Priority::Batch => self.sign_in_reserve,
            },
            spread: true,
        };
        let slot = self.store.take_send(&self.tenant, &rule).await?;
        let now = Instant::now();
        Ok(match slot {
            SendSlot::Taken => Slot::Taken,
            SendSlot::Full { retry_in } => Slot::Wait {
                until: now + retry_in,
                blocked: false,
            },
            SendSlot::Blocked { retry_in } => Slot::Wait {
                until: now + retry_in,
                blocked: true,
            },
        })
    }

    async fn rate_limited(&self, retry_after: Duration) -> Result<(), WindowError> {
        Ok(self.store.block_sends(&self.tenant, retry_after).await?)
    }
}

/// Where a tenant's budget is counted, as the composition root chooses it.
#[derive(Clone, Default)]
pub enum BudgetScope {
    /// This process is the only node: the window lives in memory.
    #[default]
    InProcess,
    /// Several nodes share the database: each counts there. `node` tells this node's limiter
    /// apart from another node's in the same process (tests run several); batch work leaves
    /// `sign_in_reserve` slots of each window to sign-ins.
    Shared {
        store: Arc<dyn LuccaBudget>,
        node: String,
        sign_in_reserve: u32,
    },
}

impl std::fmt::Debug for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetScope::InProcess => f.write_str("InProcess"),
            BudgetScope::Shared {
                node,
                sign_in_reserve,
                ..
            } => f
                .debug_struct("Shared")
                .field("node", node)
                .field("sign_in_reserve", sign_in_reserve)
                .finish_non_exhaustive(),
        }
    }
}

pub struct RateLimiter {
    window: Duration,
    sends: Arc<dyn SendWindow>,
    state: Mutex<State>,
    /// Signalled whenever the head of a queue may have changed or slots were taken.
    changed: Notify,
}

struct State {
    budget: u32,
    blocked_until: Option<Instant>,
    /// When the window said a slot frees, for the estimate given to waiters behind the head.
    next_free: Option<Instant>,
    /// (place in line, ticket), sorted by place then arrival.
    sign_in: VecDeque<(Instant, u64)>,
    batch: VecDeque<u64>,
    next_ticket: u64,
    sent: u64,
    rate_limited: u64,
    history: VecDeque<(Instant, Priority)>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("RateLimiter")
            .field("budget", &st.budget)
            .field("window", &self.window)
            .field("sent", &st.sent)
            .finish()
    }
}

/// What the waiter at hand does next: ask the window for a slot (it is the head and nothing
/// blocks), or wait.
enum Step {
    Ask(u32),
    Wait(Next),
}

enum Next {
    Until(Instant),
    Notified,
}

impl RateLimiter {
    /// A limiter of `requests_per_minute` over a 60-second window.
    pub fn new(requests_per_minute: u32) -> Self {
        Self::with_window(requests_per_minute, Duration::from_secs(60))
    }

    /// A limiter of `budget` requests per `window` (short windows make tests fast), counted in
    /// this process.
    pub fn with_window(budget: u32, window: Duration) -> Self {
        Self::counting_in(budget, window, Arc::new(InProcessWindow::default()))
    }

    /// A limiter of `budget` requests per `window` counted in `sends`.
    pub fn counting_in(budget: u32, window: Duration, sends: Arc<dyn SendWindow>) -> Self {
        RateLimiter {
            window,
            sends,
            state: Mutex::new(State {
                budget: budget.max(1),
                blocked_until: None,
                next_free: None,
                sign_in: VecDeque::new(),
                batch: VecDeque::new(),
                next_ticket: 0,
                sent: 0,
                rate_limited: 0,
                history: VecDeque::new(),
            }),
            changed: Notify::new(),
        }
    }

    /// The shared limiter of the tenant at `base_url`, created on first use. A different
    /// `requests_per_minute` for a live tenant replaces its budget (the latest configuration
    /// wins, e.g. after a reload).
    pub fn for_tenant(base_url: &url::Url, requests_per_minute: u32) -> Arc<RateLimiter> {
        Self::for_tenant_in(
            base_url,
            requests_per_minute,
            Duration::from_secs(60),
            &BudgetScope::InProcess,
        )
    }

    /// [`for_tenant`](Self::for_tenant) with the window and where it is counted (the window of
    /// a limiter already live is kept).
    pub fn for_tenant_in(
        base_url: &url::Url,
        budget: u32,
        window: Duration,
        scope: &BudgetScope,
    ) -> Arc<RateLimiter> {
        static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<RateLimiter>>>> = OnceLock::new();
        let tenant = tenant_key(base_url);
        let key = match scope {
            BudgetScope::InProcess => tenant.clone(),
            BudgetScope::Shared { node, .. } => format!("{tenant} shared by {node}"),
        };
        let registry = REGISTRY.get_or_init(Default::default);
        let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
            existing.set_budget(budget);
            return existing;
        }
        map.retain(|_, weak| weak.strong_count() > 0);
        let sends: Arc<dyn SendWindow> = match scope {
            BudgetScope::InProcess => Arc::new(InProcessWindow::default()),
            BudgetScope::Shared {
                store,
                sign_in_reserve,
                ..
            } => Arc::new(ClusterWindow::new(store.clone(), tenant, *sign_in_reserve)),
        };
        let limiter = Arc::new(RateLimiter::counting_in(budget, window, sends));
        map.insert(key, Arc::downgrade(&limiter));
        limiter
    }

    pub fn set_budget(&self, budget: u32) {
        self.lock().budget = budget.max(1);
        self.changed.notify_waiters();
    }

    /// Wait for the right to start one request. Sign-ins go before batch work, each queue in
    /// arrival order. With a `deadline`, give up as soon as it is known that no slot will be
    /// free by then (so a person is told at once instead of after the wait).
    pub async fn acquire(
        &self,
        priority: Priority,
        deadline: Option<Instant>,
    ) -> Result<(), SlotUnavailable> {
        self.acquire_in_place(priority, None, deadline).await
    }

    /// As [`acquire`](Self::acquire), with the sign-in's place in line: when the person began
    /// signing in (`None`: now). Sign-ins are served in that order; batch work ignores it.
    pub async fn acquire_in_place(
        &self,
        priority: Priority,
        place: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<(), SlotUnavailable> {
        let ticket = {
            let mut st = self.lock();
            let ticket = st.next_ticket;
            st.next_ticket += 1;
            match priority {
                Priority::SignIn => {
                    let place = place.unwrap_or_else(Instant::now);
                    let at = st.sign_in.partition_point(|(p, _)| *p <= place);
                    st.sign_in.insert(at, (place, ticket));
                }
                Priority::Batch => st.batch.push_back(ticket),
            }
            ticket
        };
        // Leaves the queue if this future is dropped (caller timed out, client went away),
        // so the waiters behind it are not stuck behind a ghost.
        let mut guard = QueueGuard {
            limiter: self,
            ticket,
            priority,
            armed: true,
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = {
                let mut st = self.lock();
                let now = Instant::now();
                if st.blocked_until.is_some_and(|b| b <= now) {
                    st.blocked_until = None;
                }
                if !st.is_head(ticket, priority) {
                    Step::Wait(Next::Notified)
                } else if let Some(blocked) = st.blocked_until {
                    Step::Wait(Next::Until(blocked))
                } else {
                    Step::Ask(st.budget)
                }
            };
            let next = match step {
                Step::Ask(budget) => match self.sends.take(priority, budget, self.window).await {
                    Ok(Slot::Taken) => {
                        let mut st = self.lock();
                        st.record(Instant::now(), priority);
                        st.leave(ticket, priority);
                        st.next_free = None;
                        guard.armed = false;
                        drop(st);
                        self.changed.notify_waiters();
                        return Ok(());
                    }
                    Ok(Slot::Wait { until, blocked }) => {
                        let mut st = self.lock();
                        if blocked {
                            st.block_until(until);
                        }
                        st.next_free = Some(until);
                        Next::Until(until)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot count a Lucca request; asking again");
                        Next::Until(Instant::now() + UNREACHABLE_RETRY)
                    }
                },
                Step::Wait(next) => next,
            };
            let now = Instant::now();
            match (next, deadline) {
                (Next::Until(at), Some(deadline)) if at > deadline => {
                    return Err(SlotUnavailable {
                        retry_after: at.saturating_duration_since(now),
                    });
                }
                (Next::Until(at), _) => {
                    tokio::select! {
                        _ = sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                (Next::Notified, Some(deadline)) => {
                    tokio::select! {
                        _ = sleep_until(deadline) => {
                            return Err(SlotUnavailable { retry_after: self.estimate_wait() });
                        }
                        _ = &mut notified => {}
                    }
                }
                (Next::Notified, None) => notified.await,
            }
        }
    }

    /// Lucca answered 429: send nothing before `retry_after` has elapsed.
    pub fn note_rate_limited(&self, retry_after: Duration) {
        {
            let mut st = self.lock();
            st.block_until(Instant::now() + retry_after);
            st.rate_limited += 1;
        }
        self.changed.notify_waiters();
    }

    /// [`note_rate_limited`](Self::note_rate_limited), and tell the other nodes when the
    /// budget is shared: none of them sends before `retry_after` either.
    pub async fn report_rate_limited(&self, retry_after: Duration) {
        self.note_rate_limited(retry_after);
        if let Err(e) = self.sends.rate_limited(retry_after).await {
            tracing::warn!(error = %e, "cannot tell the other nodes about Lucca's 429");
        }
    }

    pub fn stats(&self) -> LimiterStats {
        let now = Instant::now();
        let st = self.lock();
        LimiterStats {
            budget: st.budget,
            window: self.window,
            sent: st.sent,
            rate_limited: st.rate_limited,
            waiting_sign_in: st.sign_in.len(),
            waiting_batch: st.batch.len(),
            blocked_for: st.blocked_until.filter(|b| *b > now).map(|b| b - now),
            recent_sends: st.history.iter().copied().collect(),
        }
    }

    /// For a waiter that is not at the head: the head's wait, then roughly one slot interval.
    fn estimate_wait(&self) -> Duration {
        let st = self.lock();
        let now = Instant::now();
        let head_wait = st
            .blocked_until
            .max(st.next_free)
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        head_wait + self.window / st.budget
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a holder (no await inside), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn leave(&mut self, ticket: u64, priority: Priority) {
        match priority {
            Priority::SignIn => self.sign_in.retain(|(_, t)| *t != ticket),
            Priority::Batch => self.batch.retain(|t| *t != ticket),
        }
    }

    fn is_head(&self, ticket: u64, priority: Priority) -> bool {
        match priority {
            Priority::SignIn => self.sign_in.front().map(|(_, t)| *t) == Some(ticket),
            Priority::Batch => self.sign_in.is_empty() && self.batch.front() == Some(&ticket),
        }
    }

    fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    fn record(&mut self, now: Instant, priority: Priority) {
        self.sent += 1;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, priority));
    }
}

struct QueueGuard<'a> {
    limiter: &'a RateLimiter,
    ticket: u64,
    priority: Priority,
    armed: bool,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.limiter.lock();
            let ticket = self.ticket;
            st.leave(ticket, self.priority);
            drop(st);
            self.limiter.changed.notify_waiters();
        }
    }
}

/// `https://ACME.ilucca.net/` and `https://acme.ilucca.net:443` are the same tenant.
fn tenant_key(url: &url::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default().to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// No more than `budget` grants in any window-long interval.
    fn assert_within_budget(sends: &[(Instant, Priority)], budget: usize, window: Duration) {
        for (i, (start, _)) in sends.iter().enumerate() {
            let in_window = sends[i..]
                .iter()
                .take_while(|(t, _)| *t < *start + window)
                .count();
            assert!(
                in_window <= budget,
                "{in_window} sends within {window:?} of send #{i} (budget {budget})"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_exceeds_the_budget_under_many_concurrent_callers() {
        let window = Duration::from_millis(400);
        let limiter = Arc::new(RateLimiter::with_window(5, window));
        let started = Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let limiter = limiter.clone();
                let priority = if i % 3 == 0 {
                    Priority::SignIn
                } else {
                    Priority::Batch
                };
                tokio::spawn(async move { limiter.acquire(priority, None).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stats = limiter.stats();
        assert_eq!(stats.sent, 20);
        assert_within_budget(&stats.recent_sends, 5, window);
        // 20 requests at 5 per window need three full windows after the first burst.
        assert!(started.elapsed() >= window * 3, "{:?}", started.elapsed());
        assert_eq!(stats.waiting_batch + stats.waiting_sign_in, 0);
    }

    #[tokio::test]
    async fn a_waiting_sign_in_goes_before_queued_batch_work() {
        let window = Duration::from_millis(250);
        let limiter = Arc::new(RateLimiter::with_window(1, window));
        limiter.acquire(Priority::Batch, None).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |name: &'static str, priority| {
            let limiter = limiter.clone();
            let order = order.clone();
            tokio::spawn(async move {
                limiter.acquire(priority, None).await.unwrap();
                order.lock().unwrap().push(name);
            })
        };
        let mut tasks = vec![
            spawn("batch-1", Priority::Batch),
            spawn("batch-2", Priority::Batch),
        ];
        // Let the batch requests queue up before the person arrives.
        while limiter.stats().waiting_batch < 2 {
            tokio::task::yield_now().await;
        }
        tasks.push(spawn("sign-in", Priority::SignIn));
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["sign-in", "batch-1", "batch-2"]);
    }

    #[tokio::test]
    async fn the_budget_is_spread_over_the_window() {
        // 12 per 600 ms: at most 2 in any 100 ms.
        let limiter = RateLimiter::with_window(12, Duration::from_millis(600));
        let started = Instant::now();
        for _ in 0..4 {
            limiter.acquire(Priority::SignIn, None).await.unwrap();
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert_within_budget(&limiter.stats().recent_sends, 2, Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_person_already_waiting_goes_before_people_who_came_after() {
        let limiter = Arc::new(RateLimiter::with_window(1, Duration::from_millis(150)));
        limiter.acquire(Priority::Batch, None).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |name: &'static str, place: Option<Instant>| {
            let limiter = limiter.clone();
            let order = order.clone();
            tokio::spawn(async move {
                limiter
                    .acquire_in_place(Priority::SignIn, place, None)
                    .await
                    .unwrap();
                order.lock().unwrap().push(name);
            })
        };
        let early = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Two new lookups queue first…
        let mut tasks = vec![spawn("new-1", None)];
        while limiter.stats().waiting_sign_in < 1 {
            tokio::task::yield_now().await;
        }
        tasks.push(spawn("new-2", None));
        while limiter.stats().waiting_sign_in < 2 {
            tokio::task::yield_now().await;
        }
        // …then the account creation of a person who began before both.
        tasks.push(spawn("create-of-early", Some(early)));
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["create-of-early", "new-1", "new-2"]
        );
    }

    #[tokio::test]
    async fn sign_in_fails_fast_when_the_wait_exceeds_its_deadline() {
        let limiter = RateLimiter::with_window(1, Duration::from_secs(30));
        limiter.acquire(Priority::Batch, None).await.unwrap();
        let started = Instant::now();
        let err = limiter
            .acquire(Priority::SignIn, Some(started + Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(err.retry_after > Duration::from_secs(29));
        assert_eq!(
            limiter.stats().waiting_sign_in,
            0,
            "the ticket left the queue"
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_before_retry_after_elapses() {
        let limiter = RateLimiter::with_window(100, Duration::from_secs(60));
        limiter.note_rate_limited(Duration::from_millis(300));
        let started = Instant::now();
        limiter.acquire(Priority::SignIn, None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(limiter.stats().rate_limited, 1);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_block_the_queue() {
        let limiter = Arc::new(RateLimiter::with_window(1, Duration::from_millis(200)));
        limiter.acquire(Priority::Batch, None).await.unwrap();
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(Priority::SignIn, None).await })
        };
        while limiter.stats().waiting_sign_in == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        tokio::time::timeout(
            Duration::from_secs(2),
            limiter.acquire(Priority::Batch, None),
        )
        .await
        .expect("the batch request is served once the window passes")
        .unwrap();
    }

    #[test]
    fn one_limiter_per_tenant() {
        let a = url::Url::parse("https://ACME.ilucca.net/").unwrap();
        let b = url::Url::parse("https://acme.ilucca.net:443").unwrap();
        let c = url::Url::parse("https://other.ilucca.net").unwrap();
        let la = RateLimiter::for_tenant(&a, 50);
        let lb = RateLimiter::for_tenant(&b, 40);
        let lc = RateLimiter::for_tenant(&c, 50);
        assert!(Arc::ptr_eq(&la, &lb));
        assert!(!Arc::ptr_eq(&la, &lc));
        assert_eq!(la.stats().budget, 40);
    }

    /// A window that answers from a script, then takes every request.
    struct Scripted(Mutex<VecDeque<Option<Slot>>>);

    #[async_trait]
    impl SendWindow for Scripted {
        async fn take(&self, _: Priority, _: u32, _: Duration) -> Result<Slot, WindowError> {
            match self.0.lock().unwrap().pop_front() {
                Some(Some(slot)) => Ok(slot),
                Some(None) => Err(WindowError(StoreError::Corrupt("unreachable".into()))),
                None => Ok(Slot::Taken),
            }
        }
        async fn rate_limited(&self, _: Duration) -> Result<(), WindowError> {
            Ok(())
        }
    }

    fn scripted(answers: Vec<Option<Slot>>) -> RateLimiter {
        RateLimiter::counting_in(
            10,
            Duration::from_secs(60),
            Arc::new(Scripted(Mutex::new(answers.into()))),
        )
    }

    #[tokio::test]
    async fn nothing_is_sent_uncounted_while_the_shared_window_cannot_be_asked() {
        let limiter = scripted(vec![None]);
        let started = Instant::now();
        limiter.acquire(Priority::SignIn, None).await.unwrap();
        assert!(started.elapsed() >= UNREACHABLE_RETRY, "asked again later");
        assert_eq!(limiter.stats().sent, 1);
    }

    #[tokio::test]
    async fn a_block_another_node_reported_holds_this_one_and_shows() {
        let until = Instant::now() + Duration::from_millis(400);
        let limiter = Arc::new(scripted(vec![Some(Slot::Wait {
            until,
            blocked: true,
        })]));
        let err = limiter
            .acquire(
                Priority::SignIn,
                Some(Instant::now() + Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert!(err.retry_after > Duration::from_millis(250), "{err:?}");
        assert!(limiter.stats().blocked_for.is_some());
        // Nothing asks the window before the block ends.
        limiter.acquire(Priority::Batch, None).await.unwrap();
        assert!(Instant::now() >= until);
        assert_eq!(limiter.stats().sent, 1);
    }

    /// Two nodes' limiters on one store's budget: batch work on one leaves the reserve, which
    /// a sign-in on the other takes at once; the in-process priority order still holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_limiters_on_one_shared_window_keep_the_sign_in_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).await.unwrap();
        let window = Duration::from_millis(600);
        // Each node has its own limiter (its own queues) on the one window of the store.
        let node = || {
            RateLimiter::counting_in(
                4,
                window,
                Arc::new(ClusterWindow::new(
                    store.lucca_budget().clone(),
                    "https://acme.test:443".into(),
                    1,
                )),
            )
        };
        let (a, b) = (Arc::new(node()), node());
        let started = Instant::now();
        let batch: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.acquire(Priority::Batch, None).await })
            })
            .collect();
        while a.stats().sent < 3 {
            tokio::task::yield_now().await;
        }
        b.acquire(
            Priority::SignIn,
            Some(Instant::now() + Duration::from_millis(200)),
        )
        .await
        .expect("the reserved slot is free for a sign-in on the other node");
        assert!(started.elapsed() < window);
        for task in batch {
            task.await.unwrap().unwrap();
        }
        assert!(
            started.elapsed() >= window,
            "the fourth batch request waited for the window"
        );
        assert_eq!(a.stats().sent, 4);
    }
}
