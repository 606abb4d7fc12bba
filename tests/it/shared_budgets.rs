//! Several nodes on one PostgreSQL share one Lucca budget and one sign-in throttle: two real
//! servers on one throwaway database, driving the Lucca simulator (with a tight limit and a
//! short window) and the sign-in form.

use std::time::Duration;

use passerelle::config::{Config, JitMode, Secret};
use passerelle::lucca::simulator::{spawn, RecordedRequest, SimulatorConfig, SimulatorHandle};
use passerelle::lucca::{LuccaClient, Priority};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::common::{hidden, pg, start, Browser, TestServer, ALICE_PASSWORD};

/// Two nodes on one fresh database, each with its own data and keys (these tests need no
/// shared keys: they sign nobody in to a client).
async fn two_nodes(tweak: impl Fn(&mut Config)) -> Option<(TestServer, TestServer)> {
    let url = pg::database().await?;
    let node = |url: String| {
        let tweak = &tweak;
        async move {
            start(|c| {
                tweak(c);
                c.store.url = Some(Secret::new(url));
                c.keys.encryption_key = Some(Secret::new(pg::ENCRYPTION_KEY));
            })
            .await
        }
    };
    let a = node(url.clone()).await;
    let b = node(url).await;
    Some((a, b))
}

/// Lucca at `sim`, `budget` requests per `window` (the simulator enforcing the same), JIT on so
/// that each node builds its Lucca client, nothing running behind the tests' back.
fn with_tight_lucca(c: &mut Config, sim: &SimulatorHandle, budget: u32, window: Duration) {
    c.lucca.base_url = Some(sim.base_url().into());
    c.lucca.api_key = Some(Secret::new(sim.api_key()));
    c.lucca.jit = JitMode::UpdateOnly;
    c.lucca.sync_interval = Duration::ZERO;
    c.lucca.requests_per_minute = budget;
    c.lucca.rate_window = window;
}

async fn tight_simulator(budget: u32, window: Duration) -> SimulatorHandle {
    spawn(SimulatorConfig {
        requests_per_minute: Some(budget),
        rate_window: window,
        ..Default::default()
    })
    .await
    .expect("simulator starts")
}

fn client(node: &TestServer) -> LuccaClient {
    node.state()
        .provisioning
        .as_ref()
        .expect("JIT is on")
        .client()
        .clone()
}

/// The most requests that reached the simulator within any `window`.
fn most_in_any_window(log: &[RecordedRequest], window: Duration) -> usize {
    log.iter()
        .map(|first| {
            log.iter()
                .filter(|r| r.at >= first.at && r.at < first.at + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// A burst of batch work from both nodes against a simulator that allows 4 requests per 1.5 s:
/// every request succeeds, Lucca never answers 429, and it never sees more than 4 in any
/// window, although each node alone would allow itself the whole budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_two_nodes_stays_within_one_lucca_budget() {
    let window = Duration::from_millis(1500);
    let sim = tight_simulator(4, window).await;
    let Some((a, b)) = two_nodes(|c| {
        with_tight_lucca(c, &sim, 4, window);
        c.lucca.sign_in_reserve = 0;
    })
    .await
    else {
        return;
    };
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..12 {
        let lucca = client(if i % 2 == 0 { &a } else { &b }).with_priority(Priority::Batch);
        tasks.spawn(async move { lucca.find_by_login("amartin").await });
    }
    while let Some(found) = tasks.join_next().await {
        assert_eq!(found.unwrap().unwrap().len(), 1);
    }
    let log = sim.requests();
    assert_eq!(log.len(), 12, "{log:?}");
    assert!(
        log.iter().all(|r| r.status == Some(200)),
        "no 429: {:?}",
        log.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(most_in_any_window(&log, window) <= 4);
    // Each node has its own limiter (as two processes would), both sent, and 12 requests at 4
    // per window took at least two more windows.
    let (sent_a, sent_b) = (
        client(&a).limiter().stats().sent,
        client(&b).limiter().stats().sent,
    );
    assert!(
        sent_a > 0 && sent_b > 0 && sent_a + sent_b == 12,
        "{sent_a} + {sent_b}"
    );
    assert!(started.elapsed() >= window * 2, "{:?}", started.elapsed());
}

/// A 429 answered to A holds B too: after it, no request reaches Lucca from either node until
/// its Retry-After has passed, although B never saw a 429 itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_node_holds_every_node_for_its_retry_after() {
    let sim = spawn(SimulatorConfig::default()).await.unwrap();
    let Some((a, b)) = two_nodes(|c| {
        with_tight_lucca(c, &sim, 50, Duration::from_secs(60));
    })
    .await
    else {
        return;
    };
    sim.set_injected_retry_after(Some("2"));
    sim.fail_next(1, 429);
    let on_a = {
        let lucca = client(&a).with_priority(Priority::Batch);
        tokio::spawn(async move { lucca.find_by_login("amartin").await })
    };
    // Once A has heard the 429 (and written the block), B is asked for work.
    let limiter_a = client(&a).limiter().clone();
    while limiter_a.stats().rate_limited == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    let found = client(&b)
        .with_priority(Priority::Batch)
        .find_by_login("cbernard")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        asked.elapsed() >= Duration::from_millis(1500),
        "B waited for A's block: {:?}",
        asked.elapsed()
    );
    assert_eq!(on_a.await.unwrap().unwrap().len(), 1, "A retried after it");
    assert_eq!(client(&b).limiter().stats().rate_limited, 0);
    let log = sim.requests();
    let refused = log.iter().find(|r| r.status == Some(429)).expect("the 429");
    let during: Vec<_> = log
        .iter()
        .filter(|r| r.at > refused.at && r.at < refused.at + Duration::from_secs(2))
        .collect();
    assert!(during.is_empty(), "sent during the Retry-After: {during:?}");
    assert_eq!(log.len(), 3, "the 429, A's retry, B's request: {log:?}");
}

/// Batch work on A may use only `budget - sign_in_reserve` slots of a window, so a person
/// signing in on B finds a slot at once instead of waiting for A's batch to leave the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_work_on_one_node_leaves_room_for_a_sign_in_on_another() {
    let window = Duration::from_secs(3);
    let sim = tight_simulator(5, window).await;
    let Some((a, b)) = two_nodes(|c| {
        with_tight_lucca(c, &sim, 5, window);
        c.lucca.sign_in_reserve = 2;
    })
    .await
    else {
        return;
    };
    let mut batch = JoinSet::new();
    for _ in 0..9 {
        let lucca = client(&a).with_priority(Priority::Batch);
        batch.spawn(async move { lucca.find_by_login("amartin").await });
    }
    // A's batch has filled its share of the window and waits for more.
    let limiter_a = client(&a).limiter().clone();
    while limiter_a.stats().sent < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(limiter_a.stats().sent, 3, "batch stops at budget - reserve");
    let asked = Instant::now();
    let person = client(&b).with_priority(Priority::SignIn);
    assert_eq!(
        person.find_by_mail("alice@acme.test").await.unwrap().len(),
        1
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the sign-in did not wait for the window: {:?}",
        asked.elapsed()
    );
    while let Some(found) = batch.join_next().await {
        assert_eq!(found.unwrap().unwrap().len(), 1);
    }
    let log = sim.requests();
    assert!(log.iter().all(|r| r.status == Some(200)), "{log:?}");
    assert!(most_in_any_window(&log, window) <= 5);
}

/// One attempt of the sign-in form on `node`: its answer's status and Retry-After.
async fn attempt(node: &TestServer, username: &str, password: &str) -> (u16, Option<String>) {
    let browser = Browser::new();
    let html = browser.get(&node.url("/login")).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token").expect("csrf field");
    let r = browser
        .http
        .post(node.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf),
            ("req", ""),
        ])
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry_after)
}

/// Wrong passwords spread over A and B hit the account's limit at the same total as on one
/// node; then both nodes answer 429 with a Retry-After, even to the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_spread_over_two_nodes_count_as_one() {
    let Some((a, b)) = two_nodes(|c| {
        c.login.max_failures_per_account = 4;
        c.login.max_failures_per_ip = 1000;
    })
    .await
    else {
        return;
    };
    for i in 0..4 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (status, _) = attempt(node, "alice@acme.test", "wrong").await;
        assert_eq!(status, 401, "attempt {i}");
    }
    for node in [&a, &b] {
        let (status, retry_after) = attempt(node, "alice@acme.test", ALICE_PASSWORD).await;
        assert_eq!(status, 429);
        let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!(
            secs > 800 && secs <= 900,
            "{secs}: about the 15-minute window"
        );
    }
    // Bob is another person: his budget is his own.
    let (status, _) = attempt(&b, "bob@acme.test", "bob-password").await;
    assert_eq!(status, 303);
}

/// With one attempt left, wrong passwords sent to both nodes at once: exactly one reaches the
/// password check, the others are refused before it, whichever node they reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_at_once_never_both_take_the_last_attempt() {
    let Some((a, b)) = two_nodes(|c| {
        c.login.max_failures_per_account = 3;
        c.login.max_failures_per_ip = 1000;
    })
    .await
    else {
        return;
    };
    for node in [&a, &b] {
        assert_eq!(attempt(node, "alice@acme.test", "wrong").await.0, 401);
    }
    let (x, y, z, w) = tokio::join!(
        attempt(&a, "alice@acme.test", "wrong-1"),
        attempt(&b, "alice@acme.test", "wrong-2"),
        attempt(&a, "alice@acme.test", "wrong-3"),
        attempt(&b, "alice@acme.test", "wrong-4"),
    );
    let mut statuses = [x.0, y.0, z.0, w.0];
    statuses.sort();
    assert_eq!(statuses, [401, 429, 429, 429]);
}
