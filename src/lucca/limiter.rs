//! The client-side budget for one Lucca tenant.
//!
//! Lucca allows 50 requests per minute per tenant domain, shared by every integration on it,
//! and answers 429 beyond. JIT provisioning (a person waiting at the sign-in page) and batch
//! work (migrations, sync) draw on the same budget, so the limiter:
//!
//! - keeps the send times of the last window and never starts more than `budget` requests in
//!   any window (an exact sliding window, not a token bucket that could burst 2N across a
//!   refill boundary);
//! - queues waiters in two queues and always serves a waiting sign-in before any batch
//!   request; only the head of the queue that is due may take a slot, so the order is strict.
//!   Batch work is first come, first served; sign-ins are ordered by when the *person* started
//!   signing in ([`RateLimiter::acquire_in_place`]), so a person already waiting — whose account
//!   creation follows their lookup — goes before the lookups of people who came after;
//! - spreads the budget: at most a sixth of it (rounded down) in any sixth of the window (8
//!   requests per 10 s for Lucca's 50 a minute), so Passerelle never bursts the tenant's whole
//!   budget at once;
//! - after a 429, sends nothing at all until Retry-After has elapsed.
//!
//! Sharing: [`RateLimiter::for_tenant`] hands out one limiter per normalised tenant origin
//! (scheme, host, port) from a process-wide registry, so every `LuccaClient` built for the same
//! tenant draws on the same budget. The registry holds weak references: once no client uses a
//! tenant its state is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

/// The window is also split in this many parts, each allowed its share of the budget.
const BURST_PARTS: usize = 6;

/// How many send times [`LimiterStats::recent_sends`] keeps.
const HISTORY: usize = 1024;

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
    /// Time left before sending may resume after a 429.
    pub blocked_for: Option<Duration>,
    /// The last send times (up to 1024), oldest first, with who got the slot.
    pub recent_sends: Vec<(Instant, Priority)>,
}

pub struct RateLimiter {
    window: Duration,
    state: Mutex<State>,
    /// Signalled whenever the head of a queue may have changed or slots were taken.
    changed: Notify,
}

struct State {
    budget: u32,
    in_window: VecDeque<Instant>,
    blocked_until: Option<Instant>,
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
            .field("in_window", &st.in_window.len())
            .finish()
    }
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

    /// A limiter of `budget` requests per `window` (short windows make tests fast).
    pub fn with_window(budget: u32, window: Duration) -> Self {
        RateLimiter {
            window,
            state: Mutex::new(State {
                budget: budget.max(1),
                in_window: VecDeque::new(),
                blocked_until: None,
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
        static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<RateLimiter>>>> = OnceLock::new();
        let key = tenant_key(base_url);
        let registry = REGISTRY.get_or_init(Default::default);
        let mut map = registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
            existing.set_budget(requests_per_minute);
            return existing;
        }
        map.retain(|_, weak| weak.strong_count() > 0);
        let limiter = Arc::new(RateLimiter::new(requests_per_minute));
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
            let now = Instant::now();
            let next = {
                let mut st = self.lock();
                st.prune(now, self.window);
                if st.is_head(ticket, priority) {
                    match st.free_at(now, self.window) {
                        None => {
                            st.take(now, priority);
                            st.pop_head(priority);
                            guard.armed = false;
                            drop(st);
                            self.changed.notify_waiters();
                            return Ok(());
                        }
                        Some(at) => Next::Until(at),
                    }
                } else {
                    Next::Notified
                }
            };
            match (next, deadline) {
                (Next::Until(at), Some(deadline)) if at > deadline => {
                    return Err(SlotUnavailable {
                        retry_after: at - now,
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
            let until = Instant::now() + retry_after;
            st.blocked_until = Some(st.blocked_until.map_or(until, |b| b.max(until)));
            st.rate_limited += 1;
        }
        self.changed.notify_waiters();
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

    /// For a waiter that is not at the head: roughly one slot interval per queued request.
    fn estimate_wait(&self) -> Duration {
        let mut st = self.lock();
        let now = Instant::now();
        st.prune(now, self.window);
        let head_wait = st
            .free_at(now, self.window)
            .map_or(Duration::ZERO, |at| at - now);
        head_wait + self.window / st.budget
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a holder (no await inside), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn pop_head(&mut self, priority: Priority) {
        match priority {
            Priority::SignIn => drop(self.sign_in.pop_front()),
            Priority::Batch => drop(self.batch.pop_front()),
        }
    }

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

    fn prune(&mut self, now: Instant, window: Duration) {
        while self.in_window.front().is_some_and(|t| *t + window <= now) {
            self.in_window.pop_front();
        }
        if self.blocked_until.is_some_and(|b| b <= now) {
            self.blocked_until = None;
        }
    }

    /// When the next slot frees, or `None` if one is free now (after `prune`).
    fn free_at(&self, now: Instant, window: Duration) -> Option<Instant> {
        let budget = self.budget as usize;
        let sent = self.in_window.len();
        let by_window = (sent >= budget).then(|| self.in_window[sent - budget] + window);
        // Spread over the window: at most a sixth of the budget in any sixth of
        // it. The budget is the tenant's, shared with its other integrations, and a tenant
        // may count over shorter windows than Lucca's minute; a burst of the whole budget
        // would earn 429s and starve the others.
        // Rounded down, so the clocks of two machines (our send, the tenant's arrival) may
        // disagree a little and the tenant still counts fewer than its share.
        let (burst, burst_window) = ((budget / BURST_PARTS).max(1), window / BURST_PARTS as u32);
        let by_burst = (sent >= burst)
            .then(|| self.in_window[sent - burst] + burst_window)
            .filter(|at| *at > now);
        [self.blocked_until, by_window, by_burst]
            .into_iter()
            .flatten()
            .max()
    }

    fn take(&mut self, now: Instant, priority: Priority) {
        self.in_window.push_back(now);
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
}
