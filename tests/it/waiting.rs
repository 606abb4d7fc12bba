//! Sign-ins under Lucca's budget pressure, over real HTTP against the simulator: the waiting
//! page continues by itself, and 15 new joiners signing in at once against a tenant that
//! allows 10 requests per 10 s all get in within a minute, with nothing sent during a
//! Retry-After.

use std::time::{Duration, Instant};

use passerelle::config::{DirectoryUser, JitMode, Secret};

use crate::common::*;
use crate::jit::{code, simulator, with_lucca};

fn joiner(i: usize) -> DirectoryUser {
    DirectoryUser {
        email: format!("joiner{i:02}@acme.test"),
        password: Some(Secret::new(format!("joiner-{i:02}-password"))),
        given_name: Some(format!("Joiner{i:02}")),
        family_name: Some("Nouveau".into()),
        ..Default::default()
    }
}

fn authorize_url(server: &TestServer) -> String {
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid email"),
        ("state", "st"),
    ]);
    url.to_string()
}

/// Sign joiner `i` in; the final response and whether a waiting page was shown on the way.
async fn sign_in(server: &TestServer, i: usize) -> (reqwest::Response, bool) {
    let browser = Browser::new();
    let page = browser.follow(&server.base, &authorize_url(server)).await;
    assert_eq!(page.url().path(), "/login");
    let posted = browser
        .submit_login(
            &server.base,
            page,
            &format!("joiner{i:02}@acme.test"),
            &format!("joiner-{i:02}-password"),
        )
        .await;
    assert_eq!(posted.status(), 303);
    // One step by hand, to see the waiting page; the rest as a browser would.
    let next = absolute(&server.base, &location(&posted).unwrap());
    let first = browser.get(&next).await;
    match refresh(&first) {
        Some((_, again)) => {
            assert_eq!(first.status(), 200);
            let html = first.text().await.unwrap();
            assert!(html.contains("Preparing your Lucca account"), "{html}");
            assert!(html.contains("http-equiv=\"refresh\""), "{html}");
            let again = absolute(&server.base, &again);
            (browser.follow(&server.base, &again).await, true)
        }
        None => (first, false),
    }
}

#[tokio::test]
async fn fifteen_new_joiners_all_get_in_within_a_minute_under_a_tight_budget() {
    let sim = simulator().await;
    sim.set_rate_window(Duration::from_secs(10));
    sim.set_rate_limit(Some(10));
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::CreateAndUpdate);
        c.directory.users.extend((0..15).map(joiner));
    })
    .await;
    let before = sim.users().len();

    let server = std::sync::Arc::new(server);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..15 {
        let server = server.clone();
        tasks.spawn(async move {
            let (r, waited) = sign_in(&server, i).await;
            (code(r).await, waited, started.elapsed())
        });
    }
    let results = tasks.join_all().await;
    let total = started.elapsed();

    assert!(total < Duration::from_secs(60), "took {total:?}");
    assert_eq!(results.len(), 15);
    assert!(
        results.iter().any(|(_, waited, _)| *waited),
        "some of them saw the waiting page"
    );
    assert_eq!(sim.users().len(), before + 15, "each joiner created once");

    // Nothing reached Lucca during a Retry-After it had given (beyond requests already on
    // their way when the 429 was sent).
    let requests = sim.requests();
    let mut refused = 0;
    for r in requests.iter().filter(|r| r.status == Some(429)) {
        refused += 1;
        let retry_after = Duration::from_secs(r.retry_after.expect("429 with Retry-After"));
        let quiet_from = r.at + Duration::from_millis(200);
        let quiet_until = r.at + retry_after - Duration::from_millis(50);
        let during: Vec<_> = requests
            .iter()
            .filter(|o| o.at > quiet_from && o.at < quiet_until)
            .map(|o| (o.at.duration_since(r.at), o.method.clone(), o.status))
            .collect();
        assert!(
            during.is_empty(),
            "sent during a {retry_after:?} Retry-After: {during:?}"
        );
    }
    // The tenant's own view: never more than 10 accepted in any 10 s.
    let accepted: Vec<tokio::time::Instant> = requests
        .iter()
        .filter(|r| r.status != Some(429))
        .map(|r| r.at)
        .collect();
    for (i, start) in accepted.iter().enumerate() {
        let within = accepted[i..]
            .iter()
            .take_while(|t| **t < *start + Duration::from_secs(10))
            .count();
        assert!(
            within <= 10,
            "{within} requests within 10 s of request #{i}"
        );
    }
    eprintln!(
        "15 joiners in {total:?}: {} Lucca requests, {refused} answered 429; \
         slowest {:?}",
        requests.len(),
        results.iter().map(|(_, _, t)| *t).max().unwrap()
    );
}

#[tokio::test]
async fn a_sign_in_held_by_a_retry_after_waits_on_the_page_and_gets_in() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::CreateAndUpdate);
        c.directory.users.push(joiner(1));
    })
    .await;
    sim.set_injected_retry_after(Some("5"));
    sim.fail_next(1, 429);
    let started = Instant::now();
    let (r, waited) = sign_in(&server, 1).await;
    code(r).await;
    assert!(waited, "the person saw the waiting page");
    assert!(started.elapsed() >= Duration::from_secs(5));
    let requests = sim.requests();
    assert_eq!(requests[0].status, Some(429));
    assert!(requests[1].at.duration_since(requests[0].at) >= Duration::from_secs(5));
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/users"))
            .count(),
        2,
        "the polls joined the one lookup (one 429, one retry), none started again"
    );
}
