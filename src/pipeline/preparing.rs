//! Sign-ins whose Lucca work outlives one HTTP request. Lucca's budget (50 requests a minute,
//! shared with every integration of the tenant) and its Retry-After can make a new joiner's
//! lookup and creation take tens of seconds; a request held that long looks broken and hits
//! proxy timeouts. So the work runs in a task of its own, one per person: the request that
//! started it waits a little, then shows the waiting page, whose next poll joins the same work
//! instead of starting a second lookup (which would also lose the person's place in Lucca's
//! queue).
//!
//! What is kept is bounded: one entry per person signing in, dropped when its outcome is
//! collected, 30 s after it is ready if nobody collects it, and after [`GIVE_UP`] in any case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Provisioning, Refusal};
use crate::identity::Claims;

/// A finished outcome nobody came back for is dropped after this: a later sign-in asks again.
const UNCOLLECTED: Duration = Duration::from_secs(30);
/// No sign-in's Lucca work may hold an entry longer than this (the work itself ends at
/// `[lucca] sign_in_wait`; this is the net under it).
const GIVE_UP: Duration = Duration::from_secs(600);

/// What one waiter found.
pub(super) enum Waited {
    Done(Result<(), Refusal>),
    /// Still running after the caller's wait: show the waiting page.
    Running,
}

struct Flight {
    started: Instant,
    done: watch::Receiver<bool>,
    outcome: Mutex<Option<(Instant, Result<(), Refusal>)>>,
}

impl Flight {
    fn outcome(&self) -> MutexGuard<'_, Option<(Instant, Result<(), Refusal>)>> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stale(&self, now: Instant) -> bool {
        now.duration_since(self.started) > GIVE_UP
            || self
                .outcome()
                .as_ref()
                .is_some_and(|(at, _)| now.duration_since(*at) > UNCOLLECTED)
    }
}

#[derive(Default)]
pub(super) struct Flights {
    by_subject: Mutex<HashMap<String, Arc<Flight>>>,
}

impl Flights {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.by_subject.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Join the person's running work, or start it; wait for it up to `wait` (`None`: until it
    /// ends).
    pub(super) async fn run(
        &self,
        provisioning: &Arc<dyn Provisioning>,
        claims: &Claims,
        wait: Option<Duration>,
    ) -> Waited {
        let flight = self.join_or_start(provisioning, claims);
        let mut done = flight.done.clone();
        let finished = async {
            // An error means the task ended without a word (it panicked): nothing to wait for.
            let _ = done.wait_for(|d| *d).await;
        };
        match wait {
            None => finished.await,
            Some(wait) => {
                if tokio::time::timeout(wait, finished).await.is_err() {
                    return Waited::Running;
                }
            }
        }
        let taken = flight.outcome().take();
        {
            let mut map = self.map();
            if map
                .get(&claims.subject)
                .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                map.remove(&claims.subject);
            }
        }
        match taken {
            Some((_, outcome)) => Waited::Done(outcome),
            // A second tab collected it first (or the task died): ask again, now — the account
            // exists by then, so this is one quick lookup.
            None => Waited::Done(provisioning.at_sign_in(claims).await),
        }
    }

    fn join_or_start(&self, provisioning: &Arc<dyn Provisioning>, claims: &Claims) -> Arc<Flight> {
        let now = Instant::now();
        let mut map = self.map();
        map.retain(|_, f| !f.stale(now));
        if let Some(flight) = map.get(&claims.subject) {
            return flight.clone();
        }
        let (tx, rx) = watch::channel(false);
        let flight = Arc::new(Flight {
            started: now,
            done: rx,
            outcome: Mutex::new(None),
        });
        let task_flight = flight.clone();
        let provisioning = provisioning.clone();
        let claims_owned = claims.clone();
        // Not tied to the request: a person whose browser goes away mid-wait still gets their
        // account, and their next attempt finds it.
        tokio::spawn(async move {
            let outcome = provisioning.at_sign_in(&claims_owned).await;
            *task_flight.outcome() = Some((Instant::now(), outcome));
            let _ = tx.send(true);
        });
        map.insert(claims.subject.clone(), flight.clone());
        flight
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map().len()
    }
}
