//! Throttling of failed sign-ins, per account and per client IP, over a sliding window.
//! In memory: a restart forgets, which only ever helps the person, never an attacker much.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct FailureThrottle {
    window: Duration,
    max_per_account: u32,
    max_per_ip: u32,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Entries beyond which the map is swept of stale keys, so an attacker cycling names cannot
/// grow it without bound.
const SWEEP_AT: usize = 50_000;

impl FailureThrottle {
    pub fn new(window: Duration, max_per_account: u32, max_per_ip: u32) -> Self {
        FailureThrottle {
            window,
            max_per_account,
            max_per_ip,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// If the account or the IP is throttled, how long until the next attempt is allowed.
    pub fn check(&self, account: &str, ip: &str, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, max) in [
            (account_key(account), self.max_per_account),
            (ip_key(ip), self.max_per_ip),
        ] {
            if let Some(times) = map.get_mut(&key) {
                prune(times, now, self.window);
                if times.len() >= max as usize {
                    if let Some(oldest) = times.front() {
                        let w = self.window.saturating_sub(now.duration_since(*oldest));
                        wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                    }
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, account: &str, ip: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_AT {
            map.retain(|_, times| {
                prune(times, now, self.window);
                !times.is_empty()
            });
        }
        for key in [account_key(account), ip_key(ip)] {
            let times = map.entry(key).or_default();
            prune(times, now, self.window);
            times.push_back(now);
        }
    }

    /// A successful sign-in clears the account's failures (not the IP's).
    pub fn clear_account(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&account_key(account));
    }
}

fn account_key(account: &str) -> String {
    format!("a:{}", account.trim().to_lowercase())
}

fn ip_key(ip: &str) -> String {
    format!("i:{ip}")
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_an_account_after_its_budget_and_forgets_after_the_window() {
        let t = FailureThrottle::new(Duration::from_secs(60), 3, 100);
        let start = Instant::now();
        for i in 0..3 {
            assert!(t.check("Alice", "1.1.1.1", start).is_none(), "attempt {i}");
            t.record_failure("alice", "1.1.1.1", start);
        }
        let wait = t
            .check("ALICE", "2.2.2.2", start + Duration::from_secs(10))
            .unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t.check("bob", "2.2.2.2", start).is_none());
        assert!(t
            .check("alice", "1.1.1.1", start + Duration::from_secs(61))
            .is_none());
    }

    #[test]
    fn throttles_an_ip_across_accounts_and_success_clears_the_account() {
        let t = FailureThrottle::new(Duration::from_secs(60), 3, 4);
        let now = Instant::now();
        for name in ["a", "b", "c", "d"] {
            t.record_failure(name, "9.9.9.9", now);
        }
        assert!(t.check("e", "9.9.9.9", now).is_some());
        assert!(t.check("e", "8.8.8.8", now).is_none());
        t.record_failure("z", "7.7.7.7", now);
        t.record_failure("z", "7.7.7.7", now);
        t.record_failure("z", "7.7.7.7", now);
        t.clear_account("z");
        assert!(t.check("z", "6.6.6.6", now).is_none());
    }
}
