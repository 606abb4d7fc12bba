//! Just-in-time provisioning at sign-in, against the Lucca simulator over loopback: creation,
//! queued updates delivered by the outbox (also after a restart), leavers, future hires and
//! duplicates refused, `jit = "off"`, Lucca down, the refresh re-check, the preview and
//! `passerelle check`.

use std::time::{Duration, Instant};

use passerelle::config::{Config, DirectoryUser, JitMode, LuccaDefaults, Secret};
use passerelle::lucca::simulator::{spawn, SimulatorConfig, SimulatorHandle};
use serde_json::Value;

use crate::common::*;

const CONTACT: &str = "hr@acme.test";

pub(crate) async fn simulator() -> SimulatorHandle {
    spawn(SimulatorConfig::default())
        .await
        .expect("simulator starts")
}

fn person(email: &str, given: &str, family: &str) -> DirectoryUser {
    DirectoryUser {
        email: email.into(),
        password: Some(Secret::new(format!("{given}-password"))),
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        ..Default::default()
    }
}

/// The base configuration pointed at `sim`, with people the simulator's seed knows in every
/// state: Alice (active, same values), David (left in 2022), Emma (starts in 2030), Sam (two
/// accounts), and Carol (unknown to Lucca).
pub(crate) fn with_lucca(c: &mut Config, sim: &SimulatorHandle, jit: JitMode) {
    c.lucca.base_url = Some(sim.base_url().into());
    c.lucca.api_key = Some(Secret::new(sim.api_key()));
    c.lucca.jit = jit;
    // These tests count Lucca requests: no directory sync behind their back.
    c.lucca.sync_interval = Duration::ZERO;
    c.lucca.support_contact = CONTACT.into();
    c.lucca.defaults = LuccaDefaults {
        legal_entity_id: Some(1),
        role_principal_id: Some(55),
        culture_id: Some(1036),
        department_id: Some(13),
    };
    let mut carol = person("carol@acme.test", "Carol", "Lambert");
    carol.department = Some("Sales".into());
    carol.manager_email = Some("farid.haddad@acme.test".into());
    c.directory.users.extend([
        carol,
        person("david.petit@acme.test", "David", "Petit"),
        person("emma.leroy@acme.test", "Emma", "Leroy"),
        person("sam.roux@acme.test", "Sam", "Roux"),
    ]);
}

fn password_of(user: &str) -> String {
    match user {
        "alice@acme.test" => ALICE_PASSWORD.into(),
        other => {
            let given = other.split(['.', '@']).next().unwrap_or_default();
            let mut chars = given.chars();
            let capitalised: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            format!("{capitalised}-password")
        }
    }
}

/// Sign `user` in for the Lucca client in a fresh browser; the final response is either the
/// redirect to Lucca with a code, or a page.
pub(crate) async fn sign_in(server: &TestServer, user: &str, scope: &str) -> reqwest::Response {
    let browser = Browser::new();
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", scope),
        ("state", "st"),
    ]);
    let page = browser.follow(&server.base, url.as_str()).await;
    assert_eq!(page.url().path(), "/login");
    let posted = browser
        .submit_login(&server.base, page, user, &password_of(user))
        .await;
    assert_eq!(posted.status(), 303, "{user}: the password is accepted");
    let next = absolute(&server.base, &location(&posted).expect("location"));
    browser.follow(&server.base, &next).await
}

/// The code of a successful sign-in, or a panic showing the page.
pub(crate) async fn code(r: reqwest::Response) -> String {
    match location(&r).filter(|l| l.starts_with(LUCCA_CALLBACK)) {
        Some(to) => query(&to)["code"].clone(),
        None => panic!(
            "expected a code, got {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        ),
    }
}

pub(crate) async fn page(r: reqwest::Response) -> (u16, String) {
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The JIT audit outcomes recorded for `subject`, oldest first.
async fn jit_outcomes(server: &TestServer, subject: &str) -> Vec<(String, Value)> {
    let mut rows: Vec<(String, Value)> = server
        .state()
        .store
        .audit()
        .recent(100, Some(subject))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "jit")
        .map(|e| {
            (
                e.outcome,
                serde_json::from_str(e.detail.as_deref().unwrap_or("null")).unwrap(),
            )
        })
        .collect();
    rows.reverse();
    rows
}

fn writes(sim: &SimulatorHandle) -> Vec<(String, String, Option<Value>)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path, r.body))
        .collect()
}

pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The statuses of `subject`'s outbox rows, once none is pending any more (or after 10 s).
async fn outbox(server: &TestServer, subject: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let statuses: Vec<String> = server
            .state()
            .store
            .outbox()
            .recent(Some(subject), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        if !statuses.iter().any(|s| s == "pending") || Instant::now() > deadline {
            return statuses;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sim_user_by_mail(sim: &SimulatorHandle, mail: &str) -> Option<Value> {
    sim.users()
        .into_iter()
        .find(|u| u["mail"].as_str() == Some(mail))
}

#[tokio::test]
async fn a_missing_account_is_created_before_the_code_is_issued() {
    let sim = simulator().await;
    let server = start(|c| with_lucca(c, &sim, JitMode::CreateAndUpdate)).await;
    assert!(sim_user_by_mail(&sim, "carol@acme.test").is_none());

    let r = sign_in(&server, "carol@acme.test", "openid email").await;
    code(r).await;
    // The redirect carrying the code has arrived: the account must already be there.
    let carol = sim_user_by_mail(&sim, "carol@acme.test").expect("created in Lucca");
    let today = chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(carol["login"], "carol@acme.test");
    assert_eq!(
        (carol["firstName"].as_str(), carol["lastName"].as_str()),
        (Some("Carol"), Some("Lambert"))
    );
    assert_eq!(carol["departmentId"], 15, "Sales, resolved by name");
    // Found through today's v4 route; the simulator answers 404 on v3, as Lucca does.
    let department_reads: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("departments"))
        .map(|r| format!("{} {:?}", r.path, r.status))
        .collect();
    assert_eq!(
        department_reads,
        ["/organization/structure/api/departments Some(200)"]
    );
    assert_eq!(carol["managerId"], 8, "Farid, resolved by email");
    assert_eq!(
        (
            &carol["legalEntityId"],
            &carol["rolePrincipalId"],
            &carol["cultureID"]
        ),
        (&Value::from(1), &Value::from(55), &Value::from(1036))
    );
    assert!(carol["dtContractStart"]
        .as_str()
        .unwrap()
        .starts_with(&today));
    let id = carol["id"].as_i64().unwrap();
    let link = server
        .state()
        .store
        .lucca_links()
        .get("carol@acme.test")
        .await
        .unwrap()
        .expect("linked");
    assert_eq!((link.lucca_id, link.status.as_str()), (id, "active"));
    let outcomes = jit_outcomes(&server, "carol@acme.test").await;
    assert_eq!(outcomes[0].0, "created");
    assert_eq!(outcomes[0].1["lucca_id"], id);

    // Known now: the next sign-in costs one lookup, and creates nothing.
    sim.clear_requests();
    code(sign_in(&server, "carol@acme.test", "openid").await).await;
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].query_param("formerEmployees").as_deref(),
        Some("true")
    );
    assert_eq!(
        jit_outcomes(&server, "carol@acme.test").await[1].0,
        "unchanged"
    );
}

#[tokio::test]
async fn changed_attributes_are_queued_and_delivered_by_the_outbox() {
    let sim = simulator().await;
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.directory.users[0].job_title = Some("Staff Engineer".into());
        c.directory.users[0].department = Some("Sales".into());
    })
    .await;
    let started = Instant::now();
    code(sign_in(&server, "alice@acme.test", "openid").await).await;
    let outcomes = jit_outcomes(&server, "alice@acme.test").await;
    assert_eq!(outcomes[0].0, "updated_queued");
    assert_eq!(
        outcomes[0].1["fields"],
        serde_json::json!(["department", "job_title"])
    );
    let during_sign_in: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v3/users" && r.method == "GET")
        .collect();
    assert_eq!(during_sign_in.len(), 1, "one lookup at sign-in");

    eventually("the update to reach Lucca", || {
        sim.user(2)
            .is_some_and(|u| u["jobTitle"] == "Staff Engineer")
    })
    .await;
    let alice = sim.user(2).unwrap();
    assert_eq!(alice["departmentId"], 15);
    let writes = writes(&sim);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].0.as_str(), writes[0].1.as_str()),
        ("PUT", "/api/v3/users/2")
    );
    assert_eq!(
        writes[0].2,
        Some(serde_json::json!({"jobTitle": "Staff Engineer", "departmentId": 15})),
        "only the changed fields"
    );
    assert_eq!(outbox(&server, "alice@acme.test").await, ["done"]);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_pending_update_is_delivered_after_a_restart() {
    let sim = simulator().await;
    let tweak = |c: &mut Config| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.directory.users[0].job_title = Some("Principal Engineer".into());
    };
    // Lucca answers the lookup, then says 429 for a few seconds: the update stays queued.
    sim.set_rate_window(Duration::from_secs(3));
    sim.set_rate_limit(Some(1));
    let mut first = start(tweak).await;
    code(sign_in(&first, "alice@acme.test", "openid").await).await;
    let pending = first
        .state()
        .store
        .outbox()
        .recent(Some("alice@acme.test"), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status, "pending");
    first.running.take().unwrap().stop().await;
    assert_ne!(sim.user(2).unwrap()["jobTitle"], "Principal Engineer");

    sim.set_rate_limit(None);
    let restarted_at = tokio::time::Instant::now();
    let (listener, base) = bind().await;
    let data_dir = first.dir.path().join("data");
    let keys_dir = first.dir.path().join("keys");
    let second = start_bound(listener, base, |c| {
        tweak(c);
        c.server.data_dir = data_dir;
        c.server.keys_dir = keys_dir;
    })
    .await;
    eventually("the restarted server to deliver", || {
        sim.user(2)
            .is_some_and(|u| u["jobTitle"] == "Principal Engineer")
    })
    .await;
    let delivered = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.status == Some(200))
        .expect("a successful PUT");
    assert!(delivered.at >= restarted_at, "sent by the new server");
    assert_eq!(outbox(&second, "alice@acme.test").await, ["done"]);
}

#[tokio::test]
async fn leavers_and_future_hires_are_refused_and_never_created() {
    let sim = simulator().await;
    let server = start(|c| with_lucca(c, &sim, JitMode::CreateAndUpdate)).await;

    let (status, html) = page(sign_in(&server, "david.petit@acme.test", "openid").await).await;
    assert_eq!(status, 403);
    assert!(html.contains("ended on 31 December 2022"), "{html}");
    assert!(html.contains(CONTACT), "{html}");
    let (status, html) = page(sign_in(&server, "emma.leroy@acme.test", "openid").await).await;
    assert_eq!(status, 403);
    assert!(html.contains("starts on 2 September 2030"), "{html}");

    assert!(writes(&sim).is_empty(), "nothing created or changed");
    let store = &server.state().store;
    let david = store
        .lucca_links()
        .get("david.petit@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((david.lucca_id, david.status.as_str()), (4, "ended"));
    let emma = store
        .lucca_links()
        .get("emma.leroy@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((emma.lucca_id, emma.status.as_str()), (5, "not_started"));
    let outcome = &jit_outcomes(&server, "david.petit@acme.test").await[0];
    assert_eq!(outcome.0, "leaver");
    assert_eq!(outcome.1["contract_end"], "2022-12-31");
    assert_eq!(
        jit_outcomes(&server, "emma.leroy@acme.test").await[0].0,
        "not_started"
    );
}

#[tokio::test]
async fn several_matching_accounts_are_refused() {
    let sim = simulator().await;
    let server = start(|c| with_lucca(c, &sim, JitMode::CreateAndUpdate)).await;
    let (status, html) = page(sign_in(&server, "sam.roux@acme.test", "openid").await).await;
    assert_eq!(status, 403);
    assert!(html.contains("more than one account"), "{html}");
    assert!(writes(&sim).is_empty());
    let outcome = &jit_outcomes(&server, "sam.roux@acme.test").await[0];
    assert_eq!(outcome.0, "duplicate");
    assert_eq!(outcome.1["lucca_ids"], serde_json::json!([6, 7]));
    assert!(server
        .state()
        .store
        .lucca_links()
        .get("sam.roux@acme.test")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn jit_off_never_calls_lucca_and_update_only_never_creates() {
    let sim = simulator().await;
    let off = start(|c| with_lucca(c, &sim, JitMode::Off)).await;
    code(sign_in(&off, "carol@acme.test", "openid").await).await;
    code(sign_in(&off, "david.petit@acme.test", "openid").await).await;
    assert_eq!(sim.request_count(), 0, "jit = off: no Lucca call at all");

    let update_only = start(|c| with_lucca(c, &sim, JitMode::UpdateOnly)).await;
    let (status, html) = page(sign_in(&update_only, "carol@acme.test", "openid").await).await;
    assert_eq!(status, 403);
    assert!(html.contains("no Lucca account"), "{html}");
    assert!(writes(&sim).is_empty());
    assert_eq!(
        jit_outcomes(&update_only, "carol@acme.test").await[0].0,
        "no_account"
    );
}

#[tokio::test]
async fn when_lucca_is_down_known_people_get_in_and_the_others_retry_later() {
    let sim = simulator().await;
    let server = start(|c| with_lucca(c, &sim, JitMode::CreateAndUpdate)).await;
    code(sign_in(&server, "alice@acme.test", "openid").await).await;

    sim.fail_next(1000, 503);
    code(sign_in(&server, "alice@acme.test", "openid").await).await;
    let (status, html) = page(sign_in(&server, "carol@acme.test", "openid").await).await;
    assert_eq!(status, 503);
    assert!(html.contains("try again in a minute"), "{html}");
    assert!(writes(&sim).is_empty());
    assert_eq!(
        jit_outcomes(&server, "alice@acme.test").await[1].0,
        "unavailable_allowed"
    );
    let refused = &jit_outcomes(&server, "carol@acme.test").await[0];
    assert_eq!(refused.0, "unavailable_refused");
    assert!(!refused.1.to_string().contains(sim.api_key()));

    // Back up: nothing was lost, Carol's account is created at her next attempt.
    sim.fail_next(0, 503);
    code(sign_in(&server, "carol@acme.test", "openid").await).await;
    assert!(sim_user_by_mail(&sim, "carol@acme.test").is_some());
}

#[tokio::test]
async fn an_unreachable_lucca_refuses_unknown_people_with_a_retry_page() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = start(|c| {
        c.lucca.base_url = Some(format!("http://{closed}"));
        c.lucca.api_key = Some(Secret::new("any-key"));
        c.lucca.jit = JitMode::UpdateOnly;
    })
    .await;
    let (status, html) = page(sign_in(&server, "alice@acme.test", "openid").await).await;
    assert_eq!(status, 503, "{html}");
    assert_eq!(
        jit_outcomes(&server, "alice@acme.test").await[0].0,
        "unavailable_refused"
    );
}

#[tokio::test]
async fn a_refresh_is_refused_once_lucca_says_the_contract_ended() {
    let sim = simulator().await;
    let server = start(|c| with_lucca(c, &sim, JitMode::UpdateOnly)).await;
    let code = code(sign_in(&server, "alice@acme.test", "openid offline_access").await).await;
    let tokens: Value = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", LUCCA_CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");

    // Alice leaves; her next sign-in finds out and records it.
    let mut alice = sim.user(2).unwrap();
    let yesterday = chrono::Local::now().date_naive() - chrono::Days::new(1);
    alice["dtContractEnd"] = Value::from(format!("{yesterday}T00:00:00"));
    sim.put_user(alice);
    let (status, _) = page(sign_in(&server, "alice@acme.test", "openid").await).await;
    assert_eq!(status, 403);

    sim.clear_requests();
    let refresh = |token: String| {
        let url = server.url("/oidc/token");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .basic_auth("lucca", Some(LUCCA_SECRET))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = refresh(refresh_token.to_string()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(sim.request_count(), 0, "decided from the cached status");
    let (_, again) = refresh(refresh_token.to_string()).await;
    assert!(
        again["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{again}"
    );
}

#[tokio::test]
async fn the_preview_shows_what_jit_would_do_without_doing_it() {
    let sim = simulator().await;
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::CreateAndUpdate);
        c.directory.users[0].job_title = Some("Staff Engineer".into());
    })
    .await;
    let preview = |user: &'static str| {
        let url = server.url(&format!("/admin/preview?user={user}"));
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["jit"].clone()
        }
    };
    let carol = preview("carol@acme.test").await;
    assert_eq!(carol["action"], "create", "{carol}");
    assert_eq!(carol["account"]["departmentId"], 15);
    assert_eq!(carol["account"]["managerId"], 8);
    let alice = preview("alice@acme.test").await;
    assert_eq!(alice["action"], "queue_update", "{alice}");
    assert_eq!(alice["fields"], serde_json::json!(["job_title"]));
    let david = preview("david.petit@acme.test").await;
    assert_eq!(
        (david["action"].as_str(), david["outcome"].as_str()),
        (Some("refuse"), Some("leaver"))
    );
    let sam = preview("sam.roux@acme.test").await;
    assert_eq!(sam["outcome"], "duplicate");
    let bob = preview("bob@acme.test").await;
    assert_eq!(bob["action"], "none", "{bob}");

    assert!(writes(&sim).is_empty(), "read-only lookups");
    let store = &server.state().store;
    assert!(store.outbox().recent(None, 10).await.unwrap().is_empty());
    assert!(store
        .lucca_links()
        .get("carol@acme.test")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn check_pings_lucca_and_names_the_key_at_fault() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = |base_url: String, key: &str| {
        let mut c = base_config();
        c.server.data_dir = dir.path().join("data");
        c.server.keys_dir = dir.path().join("keys");
        c.lucca.base_url = Some(base_url);
        c.lucca.api_key = Some(Secret::new(key));
        c
    };
    let lucca_problems = |problems: Vec<passerelle::config::Problem>| {
        problems
            .into_iter()
            .filter(|p| p.key.starts_with("lucca."))
            .map(|p| (p.key, p.message))
            .collect::<Vec<_>>()
    };
    let ok = passerelle::app::check::check(&config(sim.base_url().into(), sim.api_key())).await;
    assert_eq!(lucca_problems(ok), vec![]);
    let bad_key = passerelle::app::check::check(&config(sim.base_url().into(), "wrong")).await;
    let bad_key = lucca_problems(bad_key);
    assert_eq!(bad_key.len(), 1, "{bad_key:?}");
    assert_eq!(bad_key[0].0, "lucca.api_key");
    assert!(bad_key[0].1.contains("refused (401)"), "{bad_key:?}");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down = lucca_problems(
        passerelle::app::check::check(&config(format!("http://{closed}"), "k")).await,
    );
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0].0, "lucca.base_url");
    assert!(down[0].1.contains("cannot connect"), "{down:?}");
}

/// `passerelle demo` provisions into its own in-process Lucca simulator (CONTRACT.md): the
/// banner names it, and `/demo/lucca` lists the simulated tenant's people.
#[tokio::test]
async fn the_demo_runs_an_in_process_lucca_simulator() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_passerelle"));
    for var in passerelle::config::ENV_OVERRIDES {
        command.env_remove(var);
    }
    let mut child = command
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("PASSERELLE_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the demo prints its banner");
    assert!(
        banner.contains("Lucca simulator http://127.0.0.1:"),
        "{banner}"
    );
    assert!(
        banner.contains("Just-in-time provisioning is on"),
        "{banner}"
    );
    let page = reqwest::get(format!("http://127.0.0.1:{port}/demo/lucca"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(text.contains("Lucca simulator: users"), "{text}");
    assert!(text.contains("alice@acme.test"), "{text}");
    child.kill().await.unwrap();
}
