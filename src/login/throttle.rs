//! Throttling of failed sign-ins, per person and per client network, over a sliding window.
//!
//! An attempt is **reserved** before the password is checked: the reservation counts as a
//! failure from that moment, so concurrent guesses cannot all slip past a check that runs
//! before argon2 and a count that runs after it. A success clears the person's failures and
//! releases the network's reservation; anything else (a wrong password, a disabled account, a
//! dropped request) leaves the reservation standing as the failure it is.
//!
//! [`LoginThrottle`] is the port; [`MemoryThrottle`] keeps the counts in this process (a
//! restart forgets, which only ever helps the person, never an attacker much), for one node on
//! the SQLite store; [`StoreThrottle`] counts in the database, for several nodes on one
//! PostgreSQL: the same budgets and answers, and spreading guesses over nodes gains nothing.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::store::{FailureKey, LoginFailures};

/// Who is trying to sign in: one key per directory account whichever of its names (email or
/// login) was typed, or the normalised text of a name no account has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey([u8; 32]);

impl AccountKey {
    /// A directory account, by its stable subject.
    pub fn account(subject: &str) -> AccountKey {
        AccountKey(digest(b"account", subject))
    }
    /// A name that no account has, normalised the way the directory looks names up.
    pub fn unknown_name(typed: &str) -> AccountKey {
        AccountKey(digest(b"name", &typed.trim().to_lowercase()))
    }
}

/// Where the attempt comes from: an IPv4 address or an IPv6 /64 (see `web::ip::network_key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkKey([u8; 32]);

impl NetworkKey {
    pub fn new(network: &str) -> NetworkKey {
        NetworkKey(digest(b"network", network))
    }
}

/// Fixed-size keys: the map's memory does not depend on what a client types.
fn digest(kind: &[u8], text: &str) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(kind);
    h.update(b"\0");
    h.update(text.as_bytes());
    h.finish()
}

/// The budget is spent: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-ins; retry in {retry_after:?}")]
pub struct Throttled {
    pub retry_after: Duration,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The port: an adapter counts reservations per account and per network.
pub trait LoginThrottle: Send + Sync {
    /// Count an attempt against both keys, atomically, unless either budget is spent.
    fn reserve<'a>(
        &'a self,
        account: &'a AccountKey,
        network: &'a NetworkKey,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Reservation, Throttled>>;

    /// The password was right: forget the account's failures and release the network's
    /// reservation (other people's failures from that network stay).
    fn succeeded(&self, reservation: Reservation) -> BoxFuture<'_, ()>;

    /// The attempt never reached a verdict through no fault of the person (our password check
    /// failed): release both reservations, forgetting nothing else.
    fn cancel(&self, reservation: Reservation) -> BoxFuture<'_, ()>;
}

/// A reserved attempt. Dropping it keeps it counted as a failure.
#[derive(Debug)]
#[must_use = "a reservation stands as a failure unless `succeeded` or `cancel` is called"]
pub struct Reservation {
    pub account: AccountKey,
    pub network: NetworkKey,
    pub at: SystemTime,
    /// The database adapter's id of this attempt's rows (`None` in memory).
    pub attempt: Option<String>,
}

/// An attempt bound to its throttle, so a handler cannot release it into the wrong one.
pub struct Attempt {
    throttle: Arc<dyn LoginThrottle>,
    reservation: Reservation,
}

impl Attempt {
    pub async fn reserve(
        throttle: &Arc<dyn LoginThrottle>,
        account: AccountKey,
        network: NetworkKey,
        now: SystemTime,
    ) -> Result<Attempt, Throttled> {
        let reservation = throttle.reserve(&account, &network, now).await?;
        Ok(Attempt {
            throttle: throttle.clone(),
            reservation,
        })
    }

    pub async fn succeeded(self) {
        self.throttle.succeeded(self.reservation).await
    }

    pub async fn cancel(self) {
        self.throttle.cancel(self.reservation).await
    }

    /// A wrong password (or disabled account): the reservation stays as the failure.
    pub fn failed(self) {}
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(AccountKey),
    Network(NetworkKey),
}

/// Keys kept at most by default; see [`MemoryThrottle::with_capacity`].
pub const DEFAULT_CAPACITY: usize = 50_000;

/// The in-memory adapter.
pub struct MemoryThrottle {
    window: Duration,
    max_per_account: u32,
    max_per_network: u32,
    capacity: usize,
    failures: Mutex<HashMap<Key, VecDeque<SystemTime>>>,
}

impl MemoryThrottle {
    pub fn new(window: Duration, max_per_account: u32, max_per_network: u32) -> Self {
        Self::with_capacity(window, max_per_account, max_per_network, DEFAULT_CAPACITY)
    }

    /// At most `capacity` keys are kept. Each holds at most its budget of timestamps (nothing
    /// is added once it is spent), so memory is bounded whatever a client sends.
    pub fn with_capacity(
        window: Duration,
        max_per_account: u32,
        max_per_network: u32,
        capacity: usize,
    ) -> Self {
        MemoryThrottle {
            window,
            max_per_account,
            max_per_network,
            capacity: capacity.max(2),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn reserve_now(
        &self,
        account: &AccountKey,
        network: &NetworkKey,
        now: SystemTime,
    ) -> Result<Reservation, Throttled> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let keys = [
            (Key::Account(account.clone()), self.max_per_account),
            (Key::Network(network.clone()), self.max_per_network),
        ];
        let mut wait: Option<Duration> = None;
        for (key, max) in &keys {
            if let Some(times) = map.get_mut(key) {
                prune(times, now, self.window);
                if times.len() >= *max as usize {
                    let oldest = times.front().copied().unwrap_or(now);
                    let w = self.window.saturating_sub(elapsed(oldest, now));
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
            }
        }
        if let Some(retry_after) = wait {
            return Err(Throttled {
                retry_after: retry_after.max(Duration::from_secs(1)),
            });
        }
        if map.len() + 2 > self.capacity {
            self.make_room(&mut map, now);
        }
        for (key, _) in keys {
            map.entry(key).or_default().push_back(now);
        }
        Ok(Reservation {
            account: account.clone(),
            network: network.clone(),
            at: now,
            attempt: None,
        })
    }

    /// Drop stale keys; if the map is still nearly full, drop the keys with the fewest
    /// failures first. A flood of one-off names or addresses evicts itself, while an account or
    /// network under a sustained attack, which carries many failures, keeps its count.
    fn make_room(&self, map: &mut HashMap<Key, VecDeque<SystemTime>>, now: SystemTime) {
        map.retain(|_, times| {
            prune(times, now, self.window);
            !times.is_empty()
        });
        let target = self.capacity - self.capacity / 10 - 2;
        let mut fewest = 1;
        while map.len() > target {
            map.retain(|_, times| times.len() > fewest);
            fewest += 1;
        }
    }

    fn release(&self, reservation: &Reservation, clear_account: bool) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let account = Key::Account(reservation.account.clone());
        if clear_account {
            map.remove(&account);
        } else {
            remove_one(&mut map, &account, reservation.at);
        }
        remove_one(
            &mut map,
            &Key::Network(reservation.network.clone()),
            reservation.at,
        );
    }
}

fn remove_one(map: &mut HashMap<Key, VecDeque<SystemTime>>, key: &Key, at: SystemTime) {
    if let Some(times) = map.get_mut(key) {
        if let Some(i) = times.iter().position(|t| *t == at) {
            times.remove(i);
        }
        if times.is_empty() {
            map.remove(key);
        }
    }
}

impl LoginThrottle for MemoryThrottle {
    fn reserve<'a>(
        &'a self,
        account: &'a AccountKey,
        network: &'a NetworkKey,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Reservation, Throttled>> {
        Box::pin(std::future::ready(self.reserve_now(account, network, now)))
    }

    fn succeeded(&self, reservation: Reservation) -> BoxFuture<'_, ()> {
        self.release(&reservation, true);
        Box::pin(std::future::ready(()))
    }

    fn cancel(&self, reservation: Reservation) -> BoxFuture<'_, ()> {
        self.release(&reservation, false);
        Box::pin(std::future::ready(()))
    }
}

/// How often one node deletes every expired attempt (each reservation already deletes its own
/// keys' expired attempts).
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// When the database cannot be asked: refuse the attempt (the password is not checked
/// uncounted) and say to come back shortly.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(5);

/// The database adapter: attempts counted in the store every node shares, reserved atomically
/// across nodes (the store locks both keys for the count and the insert).
///
/// Growth is bounded by purging, not by a cap: a refused attempt writes nothing, each
/// reservation deletes its keys' expired attempts, and every node deletes all expired attempts
/// at most once a minute. The table holds at most the attempts of one window (plus a minute):
/// an attacker inventing names adds one row per name and one per network, and each network
/// stops after `max_failures_per_ip` of them per window.
pub struct StoreThrottle {
    failures: Arc<dyn LoginFailures>,
    window: Duration,
    max_per_account: u32,
    max_per_network: u32,
    last_purge: Mutex<Option<Instant>>,
}

impl StoreThrottle {
    pub fn new(
        failures: Arc<dyn LoginFailures>,
        window: Duration,
        max_per_account: u32,
        max_per_network: u32,
    ) -> Self {
        StoreThrottle {
            failures,
            window,
            max_per_account,
            max_per_network,
            last_purge: Mutex::new(None),
        }
    }

    async fn reserve_in_store(
        &self,
        account: &AccountKey,
        network: &NetworkKey,
        now: SystemTime,
    ) -> Result<Reservation, Throttled> {
        let (account_key, network_key) = (hex::encode(account.0), hex::encode(network.0));
        let keys = [
            FailureKey {
                key: &account_key,
                max: self.max_per_account,
            },
            FailureKey {
                key: &network_key,
                max: self.max_per_network,
            },
        ];
        let attempt = crate::web::random_token(18);
        let counted = self
            .failures
            .reserve_attempt(&keys, &attempt, self.window)
            .await;
        self.purge_now_and_then();
        match counted {
            Ok(Ok(())) => Ok(Reservation {
                account: account.clone(),
                network: network.clone(),
                at: now,
                attempt: Some(attempt),
            }),
            Ok(Err(wait)) => Err(Throttled {
                retry_after: wait.max(Duration::from_secs(1)),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot count a sign-in attempt; refusing it");
                Err(Throttled {
                    retry_after: UNREACHABLE_RETRY,
                })
            }
        }
    }

    fn purge_now_and_then(&self) {
        {
            let mut last = self.last_purge.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < PURGE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let (failures, window) = (self.failures.clone(), self.window);
        tokio::spawn(async move {
            if let Err(e) = failures.purge_failures(window).await {
                tracing::warn!(error = %e, "cannot purge expired sign-in failures");
            }
        });
    }

    async fn release_in_store(&self, reservation: Reservation, forget_account: bool) {
        let Some(attempt) = reservation.attempt.as_deref() else {
            return;
        };
        let (account, network) = (
            hex::encode(reservation.account.0),
            hex::encode(reservation.network.0),
        );
        let released = if forget_account {
            match self.failures.forget_failures(&account).await {
                Ok(()) => self.failures.release_attempt(attempt, &[&network]).await,
                Err(e) => Err(e),
            }
        } else {
            self.failures
                .release_attempt(attempt, &[&account, &network])
                .await
        };
        if let Err(e) = released {
            // The attempt stays counted as a failure: safe, at worst one slot short.
            tracing::warn!(error = %e, "cannot release a sign-in attempt");
        }
    }
}

impl LoginThrottle for StoreThrottle {
    /// `now` is not used: the database's clock counts, the same for every node.
    fn reserve<'a>(
        &'a self,
        account: &'a AccountKey,
        network: &'a NetworkKey,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Reservation, Throttled>> {
        Box::pin(self.reserve_in_store(account, network, now))
    }

    fn succeeded(&self, reservation: Reservation) -> BoxFuture<'_, ()> {
        Box::pin(self.release_in_store(reservation, true))
    }

    fn cancel(&self, reservation: Reservation) -> BoxFuture<'_, ()> {
        Box::pin(self.release_in_store(reservation, false))
    }
}

/// Time from `earlier` to `now`; zero if the wall clock stepped back.
fn elapsed(earlier: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(earlier).unwrap_or_default()
}

fn prune(times: &mut VecDeque<SystemTime>, now: SystemTime, window: Duration) {
    while times.front().is_some_and(|t| elapsed(*t, now) >= window) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> NetworkKey {
        NetworkKey::new(s)
    }

    fn reserve(
        t: &MemoryThrottle,
        account: &AccountKey,
        network: &NetworkKey,
        now: SystemTime,
    ) -> Result<Reservation, Throttled> {
        t.reserve_now(account, network, now)
    }

    #[test]
    fn reservations_count_as_failures_until_released() {
        let t = MemoryThrottle::new(Duration::from_secs(60), 3, 100);
        let start = SystemTime::now();
        let alice = AccountKey::account("alice");
        // Three attempts in flight at once: a fourth is refused before any verdict.
        let held: Vec<_> = (0..3)
            .map(|_| reserve(&t, &alice, &net("1.1.1.1"), start).unwrap())
            .collect();
        let err =
            reserve(&t, &alice, &net("2.2.2.2"), start + Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.retry_after, Duration::from_secs(50));
        drop(held);
        assert!(reserve(&t, &AccountKey::account("bob"), &net("2.2.2.2"), start).is_ok());
        // The window slides.
        assert!(reserve(&t, &alice, &net("1.1.1.1"), start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_clears_the_account_and_releases_only_its_own_network_reservation() {
        let t = MemoryThrottle::new(Duration::from_secs(60), 3, 3);
        let now = SystemTime::now();
        let office = net("9.9.9.9");
        let _a = reserve(&t, &AccountKey::unknown_name("x"), &office, now).unwrap();
        let zed = AccountKey::account("zed");
        let _f1 = reserve(&t, &zed, &net("7.7.7.7"), now).unwrap();
        let _f2 = reserve(&t, &zed, &net("7.7.7.7"), now).unwrap();
        let ok = reserve(&t, &zed, &office, now).unwrap();
        t.release(&ok, true);
        // zed's failures are forgotten...
        for _ in 0..3 {
            let _ = reserve(&t, &zed, &net("6.6.6.6"), now).unwrap();
        }
        // ...but the office still carries the stranger's failure: 1 + 2 more fit, not 3.
        let _b = reserve(&t, &AccountKey::unknown_name("y"), &office, now).unwrap();
        let _c = reserve(&t, &AccountKey::unknown_name("z"), &office, now).unwrap();
        assert!(reserve(&t, &AccountKey::unknown_name("w"), &office, now).is_err());
    }

    #[test]
    fn cancel_gives_the_attempt_back() {
        let t = MemoryThrottle::new(Duration::from_secs(60), 1, 1);
        let now = SystemTime::now();
        let a = AccountKey::account("a");
        let r = reserve(&t, &a, &net("1.1.1.1"), now).unwrap();
        assert!(reserve(&t, &a, &net("1.1.1.1"), now).is_err());
        t.release(&r, false);
        assert!(reserve(&t, &a, &net("1.1.1.1"), now).is_ok());
    }

    #[test]
    fn a_network_is_throttled_across_names() {
        let t = MemoryThrottle::new(Duration::from_secs(60), 5, 4);
        let now = SystemTime::now();
        for name in ["a", "b", "c", "d"] {
            let _ = reserve(&t, &AccountKey::unknown_name(name), &net("9.9.9.9"), now).unwrap();
        }
        assert!(reserve(&t, &AccountKey::unknown_name("e"), &net("9.9.9.9"), now).is_err());
        assert!(reserve(&t, &AccountKey::unknown_name("e"), &net("8.8.8.8"), now).is_ok());
    }

    #[test]
    fn names_are_normalised_and_accounts_differ_from_names() {
        assert_eq!(
            AccountKey::unknown_name("  Nobody@Acme.TEST "),
            AccountKey::unknown_name("nobody@acme.test")
        );
        assert_ne!(AccountKey::unknown_name("x"), AccountKey::account("x"));
    }

    #[test]
    fn memory_stays_bounded_and_a_busy_key_survives_a_flood() {
        let t = MemoryThrottle::with_capacity(Duration::from_secs(600), 10, 10, 1000);
        let now = SystemTime::now();
        let victim = AccountKey::account("victim");
        for i in 0..5 {
            let _ = reserve(&t, &victim, &net(&format!("10.0.0.{i}")), now).unwrap();
        }
        for i in 0..20_000 {
            let _ = reserve(
                &t,
                &AccountKey::unknown_name(&format!("n{i}")),
                &net(&format!("2001:db8:{i:x}::/64")),
                now,
            );
            assert!(t.failures.lock().unwrap().len() <= 1000);
        }
        // The victim's five failures are still counted: five more fit, the sixth does not.
        for i in 0..5 {
            assert!(reserve(&t, &victim, &net(&format!("10.1.0.{i}")), now).is_ok());
        }
        assert!(reserve(&t, &victim, &net("10.2.0.1"), now).is_err());
    }

    /// The database adapter gives the memory adapter's answers (here on an SQLite store; the
    /// store conformance suite holds PostgreSQL to the same counts, across nodes too).
    mod in_the_store {
        use super::*;
        use crate::store::Store;

        async fn throttle(
            max_account: u32,
            max_network: u32,
        ) -> (StoreThrottle, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).await.unwrap();
            let t = StoreThrottle::new(
                store.login_failures().clone(),
                Duration::from_secs(60),
                max_account,
                max_network,
            );
            (t, dir)
        }

        #[tokio::test]
        async fn reservations_count_until_released_and_success_keeps_the_networks_count() {
            let (t, _dir) = throttle(3, 3).await;
            let now = SystemTime::now();
            let office = net("9.9.9.9");
            let zed = AccountKey::account("zed");
            let stranger = t
                .reserve(&AccountKey::unknown_name("x"), &office, now)
                .await
                .unwrap();
            let f1 = t.reserve(&zed, &net("7.7.7.7"), now).await.unwrap();
            let _f2 = t.reserve(&zed, &net("7.7.7.7"), now).await.unwrap();
            let ok = t.reserve(&zed, &office, now).await.unwrap();
            let err = t.reserve(&zed, &net("6.6.6.6"), now).await.unwrap_err();
            assert!(err.retry_after > Duration::from_secs(55), "{err:?}");
            // The right password: zed's failures are forgotten, the office keeps the stranger's.
            t.succeeded(ok).await;
            for _ in 0..3 {
                let _ = t.reserve(&zed, &net("6.6.6.6"), now).await.unwrap();
            }
            let _b = t
                .reserve(&AccountKey::unknown_name("y"), &office, now)
                .await
                .unwrap();
            let _c = t
                .reserve(&AccountKey::unknown_name("z"), &office, now)
                .await
                .unwrap();
            assert!(t
                .reserve(&AccountKey::unknown_name("w"), &office, now)
                .await
                .is_err());
            // A cancelled attempt gives its slots back.
            t.cancel(stranger).await;
            assert!(t
                .reserve(&AccountKey::unknown_name("w"), &office, now)
                .await
                .is_ok());
            drop(f1);
        }
    }
}
