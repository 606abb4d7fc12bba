//! The client against the simulator, over real loopback HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::simulator::{spawn, SimulatorConfig, SimulatorHandle};
use super::*;
use crate::config::Secret;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

async fn simulator() -> SimulatorHandle {
    spawn(SimulatorConfig {
        today: Some(today()),
        requests_per_minute: None,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn client_with(sim: &SimulatorHandle, limiter: RateLimiter, timeout: Duration) -> LuccaClient {
    LuccaClient::with_limiter(
        sim.base_url(),
        Secret::new(sim.api_key()),
        Arc::new(limiter),
        timeout,
    )
    .unwrap()
}

fn client(sim: &SimulatorHandle) -> LuccaClient {
    client_with(sim, RateLimiter::new(1000), Duration::from_secs(4))
}

async fn raw_get(sim: &SimulatorHandle, path_and_query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .header(
            "Authorization",
            format!("Lucca application={}", sim.api_key()),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn finds_people_by_mail_including_former_and_future_employees() {
    let sim = simulator().await;
    let lucca = client(&sim);

    let alice = lucca.find_by_mail("ALICE@acme.test").await.unwrap();
    assert_eq!(alice.len(), 1);
    let alice = &alice[0];
    assert_eq!(alice.login.as_deref(), Some("amartin"));
    assert_eq!(
        alice.department.as_ref().unwrap().name.as_deref(),
        Some("Engineering")
    );
    assert_eq!(
        alice.manager.as_ref().unwrap().mail.as_deref(),
        Some("bob@acme.test")
    );
    assert!(alice.is_active(today()));
    let query = &sim.requests()[0];
    assert_eq!(
        query.query_param("formerEmployees").as_deref(),
        Some("true")
    );
    assert_eq!(
        query.query_param("fields").as_deref(),
        Some(DEFAULT_USER_FIELDS)
    );

    let leaver = lucca.find_by_mail("david.petit@acme.test").await.unwrap();
    assert_eq!(
        leaver[0].contract_status(today()),
        ContractStatus::Ended(NaiveDate::from_ymd_opt(2022, 12, 31).unwrap())
    );
    let joiner = lucca.find_by_mail("emma.leroy@acme.test").await.unwrap();
    assert!(matches!(
        joiner[0].contract_status(today()),
        ContractStatus::NotStarted(_)
    ));
    let shared = lucca.find_by_mail("sam.roux@acme.test").await.unwrap();
    assert_eq!(shared.iter().map(|u| u.id).collect::<Vec<_>>(), [6, 7]);
    assert!(lucca
        .find_by_mail("nobody@acme.test")
        .await
        .unwrap()
        .is_empty());
    // A LIKE search in disguise must not match other people.
    assert!(lucca.find_by_mail("like,acme").await.unwrap().is_empty());
    let before = sim.request_count();
    assert!(lucca.find_by_mail("  ").await.unwrap().is_empty());
    assert_eq!(sim.request_count(), before, "no request for an empty mail");
}

#[tokio::test]
async fn finds_people_by_login_and_id() {
    let sim = simulator().await;
    let lucca = client(&sim);
    let found = lucca.find_by_login("dpetit").await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].is_active(today()));
    assert_eq!(
        sim.requests()[0].query_param("login").as_deref(),
        Some("dpetit")
    );
    let bob = lucca.get_user(1).await.unwrap();
    assert_eq!(bob.mail.as_deref(), Some("bob@acme.test"));
    assert!(matches!(
        lucca.get_user(999).await,
        Err(LuccaError::NotFound { .. })
    ));
}

#[tokio::test]
async fn lists_page_by_page_and_hides_former_employees_by_default() {
    let sim = simulator().await;
    let lucca = client(&sim);
    let page = |offset, limit, former| {
        lucca.list_users_with_fields(offset, limit, former, DEFAULT_USER_FIELDS)
    };
    let current = page(0, 1000, false).await.unwrap();
    assert_eq!(current.count, Some(7));
    assert!(
        current.items.iter().all(|u| u.id != 4),
        "the leaver is hidden"
    );
    let everyone = page(0, 3, true).await.unwrap();
    assert_eq!((everyone.items.len(), everyone.count), (3, Some(8)));
    let last = page(6, 3, true).await.unwrap();
    assert_eq!(last.items.iter().map(|u| u.id).collect::<Vec<_>>(), [7, 8]);
    assert_eq!(
        sim.requests()[2].query_param("paging").as_deref(),
        Some("6,3")
    );

    for id in 100..1300 {
        sim.put_user(
            json!({"id": id, "login": format!("u{id}"), "mail": format!("u{id}@acme.test")}),
        );
    }
    sim.clear_requests();
    let all = lucca
        .list_all_users_with_fields(true, DEFAULT_USER_FIELDS)
        .await
        .unwrap();
    assert_eq!(all.len(), 1208);
    let pagings: Vec<_> = sim
        .requests()
        .iter()
        .map(|r| r.query_param("paging").unwrap())
        .collect();
    assert_eq!(pagings, ["0,1000", "1000,1000"]);
}

#[tokio::test]
async fn projections_shape_what_comes_back() {
    let sim = simulator().await;
    let lucca = client(&sim);
    let page = lucca
        .list_users_with_fields(0, 1, false, "id,login,cultureId,legalEntity[name]")
        .await
        .unwrap();
    let user = &page.items[0];
    assert_eq!((user.id, user.login.as_deref()), (1, Some("bdurand")));
    assert_eq!(user.culture_id, Some(1036), "`cultureID` on the wire");
    assert_eq!(user.mail, None);
    assert_eq!(user.extra["legalEntity"], json!({"name": "Acme SAS"}));

    let (status, body) = raw_get(&sim, "/api/v3/users?paging=0,1").await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = body["data"]["items"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["id", "name", "url"], "Lucca's default projection");
    let (_, body) = raw_get(
        &sim,
        "/api/v3/users?fields=id,manager.mail&mail=alice@acme.test",
    )
    .await;
    assert_eq!(
        body["data"]["items"][0],
        json!({"id": 2, "manager": {"mail": "bob@acme.test"}})
    );
    let (_, body) = raw_get(
        &sim,
        "/api/v3/users?fields=collection.count&formerEmployees=true",
    )
    .await;
    assert_eq!(body, json!({"data": {"count": 8}}));
    let (status, body) = raw_get(&sim, "/api/v3/users?paging=0,1001").await;
    assert_eq!(status, 400);
    assert!(body["Message"].as_str().unwrap().contains("1000"));
    let (_, body) = raw_get(&sim, "/api/v3/users?fields=id&mail=like,ROUX").await;
    assert_eq!(body["data"]["items"], json!([{"id": 6}, {"id": 7}]));
}

fn new_user(login: &str) -> NewUser {
    NewUser {
        login: login.into(),
        first_name: "Gaspard".into(),
        last_name: "Moreau".into(),
        mail: format!("{login}@acme.test"),
        dt_contract_start: NaiveDate::from_ymd_opt(2025, 5, 5).unwrap(),
        legal_entity_id: 1,
        department_id: 13,
        role_principal_id: 55,
        culture_id: 1036,
        manager_id: Some(2),
        employee_number: None,
        job_title: Some("Developer".into()),
    }
}

#[tokio::test]
async fn creates_users_and_passes_on_lucca_validation_messages() {
    let sim = simulator().await;
    let lucca = client(&sim);
    let created = lucca.create_user(&new_user("gmoreau")).await.unwrap();
    assert_eq!(created.id, 9);
    assert_eq!(
        created.department.unwrap().name.as_deref(),
        Some("Engineering")
    );
    assert_eq!(
        created.manager.unwrap().mail.as_deref(),
        Some("alice@acme.test")
    );
    assert!(created.modified_at.is_some());
    let post = &sim.requests()[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/api/v3/users")
    );
    assert_eq!(post.query_param("contract").as_deref(), Some("true"));
    assert_eq!(
        post.body.as_ref().unwrap()["dtContractStart"],
        json!("2025-05-05T00:00:00")
    );
    assert_eq!(sim.user(9).unwrap()["cultureID"], json!(1036));
    assert_eq!(
        lucca.find_by_mail("gmoreau@acme.test").await.unwrap().len(),
        1
    );

    let err = lucca.create_user(&new_user("GMOREAU")).await.unwrap_err();
    assert!(
        matches!(&err, LuccaError::Validation { status: 400, message, .. } if message.contains("login 'GMOREAU' already exists")),
        "{err}"
    );
    let mut bad = new_user("other");
    bad.department_id = 999;
    let err = lucca.create_user(&bad).await.unwrap_err().to_string();
    assert!(err.contains("Department 999 does not exist"), "{err}");

    let response = reqwest::Client::new()
        .post(format!("{}/api/v3/users", sim.base_url()))
        .header(
            "Authorization",
            format!("lucca application={}", sim.api_key()),
        )
        .json(&json!({"login": "x", "mail": "x@acme.test", "lastName": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let message = response.json::<Value>().await.unwrap()["Message"]
        .as_str()
        .unwrap()
        .to_string();
    for field in [
        "firstName",
        "legalEntityId",
        "dtContractStart",
        "departmentId",
        "rolePrincipalId",
        "cultureId",
    ] {
        assert!(message.contains(field), "{message} should name {field}");
    }
    assert!(!message.contains("lastName"), "{message}");
}

#[tokio::test]
async fn updates_send_only_the_changed_fields() {
    let sim = simulator().await;
    let lucca = client(&sim);
    let alice = lucca.get_user(2).await.unwrap();
    let before = sim.user(2).unwrap();
    let changes = UserChanges {
        first_name: Some("Alice".into()),
        job_title: Some("Staff Engineer".into()),
        department_id: Some(13),
        manager_id: Some(Some(1)),
        ..Default::default()
    }
    .without_unchanged(&alice);
    let updated = lucca.update_user(2, &changes).await.unwrap().unwrap();
    assert_eq!(updated.job_title.as_deref(), Some("Staff Engineer"));
    let put = sim.requests().pop().unwrap();
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/api/v3/users/2")
    );
    assert_eq!(put.body, Some(json!({"jobTitle": "Staff Engineer"})));
    let after = sim.user(2).unwrap();
    assert_eq!(
        after["lastName"], before["lastName"],
        "fields not sent are untouched"
    );
    assert_ne!(after["modifiedAt"], before["modifiedAt"]);

    let count = sim.request_count();
    assert!(lucca
        .update_user(2, &UserChanges::default())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        sim.request_count(),
        count,
        "nothing to change, nothing sent"
    );
    let err = lucca.update_user(999, &changes).await.unwrap_err();
    assert!(matches!(err, LuccaError::NotFound { .. }), "{err}");
    let clash = UserChanges {
        login: Some("bdurand".into()),
        ..Default::default()
    };
    assert!(matches!(
        lucca.update_user(2, &clash).await,
        Err(LuccaError::Validation { .. })
    ));
}

#[tokio::test]
async fn refused_keys_get_messages_an_admin_can_act_on() {
    let sim = simulator().await;
    let wrong = LuccaClient::with_limiter(
        sim.base_url(),
        Secret::new("not-the-key"),
        Arc::new(RateLimiter::new(100)),
        Duration::from_secs(4),
    )
    .unwrap();
    let err = wrong.ping().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the Lucca API key was refused (401): check lucca.api_key"
    );
    let lucca = client(&sim);
    lucca.ping().await.unwrap();
    let auth = sim.requests().pop().unwrap();
    assert_eq!(auth.status, Some(200));

    sim.fail_next(1, 403);
    let err = lucca.create_user(&new_user("z")).await.unwrap_err();
    assert!(matches!(err, LuccaError::Forbidden { .. }));
    let text = err.to_string();
    assert!(text.contains("may not create users (403)"), "{text}");
    assert!(
        text.contains("\"Consult / create / modify users\""),
        "{text}"
    );
}

#[tokio::test]
async fn slow_failing_or_absent_servers_are_unavailable() {
    let sim = simulator().await;
    let lucca = client_with(&sim, RateLimiter::new(100), Duration::from_millis(150));
    sim.set_latency(Duration::from_millis(600));
    let started = Instant::now();
    let err = lucca.find_by_mail("alice@acme.test").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(err.is_transient());
    assert!(err.to_string().contains("no answer within 150ms"), "{err}");

    sim.set_latency(Duration::ZERO);
    sim.fail_next(1, 503);
    let err = lucca.find_by_mail("alice@acme.test").await.unwrap_err();
    assert!(matches!(err, LuccaError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");

    let addr = sim.addr();
    drop(sim);
    let gone = LuccaClient::with_limiter(
        &format!("http://{addr}"),
        Secret::new("k"),
        Arc::new(RateLimiter::new(100)),
        Duration::from_secs(1),
    )
    .unwrap();
    let err = gone.ping().await.unwrap_err();
    assert!(matches!(err, LuccaError::Unavailable { .. }), "{err}");
}

#[tokio::test]
async fn retry_after_is_honoured_by_every_request() {
    let sim = simulator().await;
    let lucca = client(&sim);
    sim.fail_next(1, 429);
    sim.set_injected_retry_after(Some("1"));
    let first = {
        let lucca = lucca.clone();
        tokio::spawn(async move { lucca.find_by_mail("alice@acme.test").await })
    };
    while lucca.limiter().stats().rate_limited == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Others arriving while the tenant is blocked must wait too.
    let others: Vec<_> = ["bob@acme.test", "chloe.bernard@acme.test"]
        .into_iter()
        .map(|mail| {
            let lucca = lucca.with_priority(Priority::SignIn);
            tokio::spawn(async move { lucca.find_by_mail(mail).await })
        })
        .collect();
    assert_eq!(first.await.unwrap().unwrap().len(), 1);
    for other in others {
        assert_eq!(other.await.unwrap().unwrap().len(), 1);
    }
    let log = sim.requests();
    assert_eq!(log[0].status, Some(429));
    assert_eq!(log.len(), 4);
    for later in &log[1..] {
        assert!(
            later.at >= log[0].at + Duration::from_secs(1),
            "a request reached Lucca {:?} after the 429",
            later.at - log[0].at
        );
    }
    assert_eq!(lucca.limiter().stats().rate_limited, 1);
}

#[tokio::test]
async fn a_person_is_not_kept_waiting_behind_a_long_retry_after() {
    let sim = simulator().await;
    let lucca = client(&sim)
        .with_priority(Priority::SignIn)
        .with_max_wait(Some(Duration::from_secs(2)));
    sim.fail_next(1, 429);
    sim.set_injected_retry_after(Some("30"));
    let started = Instant::now();
    let err = lucca.find_by_mail("alice@acme.test").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(err, LuccaError::RateLimited { retry_after } if retry_after >= Duration::from_secs(29)),
        "{err}"
    );
    // The block stays for everyone: the next sign-in fails at once too, without a request.
    assert!(lucca.find_by_mail("bob@acme.test").await.is_err());
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn client_and_simulator_agree_on_the_rate_limit() {
    let sim = spawn(SimulatorConfig {
        today: Some(today()),
        requests_per_minute: Some(3),
        rate_window: Duration::from_millis(800),
        ..Default::default()
    })
    .await
    .unwrap();
    // A client whose own budget is too generous (another integration shares the tenant).
    let lucca = client(&sim);
    for _ in 0..5 {
        lucca.find_by_mail("alice@acme.test").await.unwrap();
    }
    let log = sim.requests();
    let limited: Vec<_> = log.iter().filter(|r| r.status == Some(429)).collect();
    assert_eq!(limited.len(), 1, "{log:?}");
    let after = log.iter().find(|r| r.at > limited[0].at).unwrap();
    assert!(
        after.at >= limited[0].at + Duration::from_secs(1),
        "Retry-After: 1 honoured"
    );
    assert_eq!(log.iter().filter(|r| r.status == Some(200)).count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_stay_within_the_budget() {
    let sim = simulator().await;
    let window = Duration::from_millis(400);
    let lucca = client_with(
        &sim,
        RateLimiter::with_window(4, window),
        Duration::from_secs(4),
    );
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let lucca = lucca.with_priority(if i % 2 == 0 {
                Priority::SignIn
            } else {
                Priority::Batch
            });
            tokio::spawn(async move { lucca.find_by_login("amartin").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().len(), 1);
    }
    let sends: Vec<Instant> = lucca
        .limiter()
        .stats()
        .recent_sends
        .iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(sends.len(), 12);
    for (i, start) in sends.iter().enumerate() {
        let within = sends[i..].iter().filter(|t| **t < *start + window).count();
        assert!(within <= 4, "{within} requests within {window:?}");
    }
    assert_eq!(sim.request_count(), 12);
}

#[tokio::test]
async fn a_sign_in_jumps_ahead_of_queued_batch_work() {
    let sim = simulator().await;
    let lucca = client_with(
        &sim,
        RateLimiter::with_window(1, Duration::from_millis(250)),
        Duration::from_secs(4),
    );
    lucca
        .list_users_with_fields(0, 10, false, DEFAULT_USER_FIELDS)
        .await
        .unwrap();
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for login in ["cbernard", "fhaddad", "sroux"] {
        let lucca = lucca.with_priority(Priority::Batch);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            lucca.find_by_login(login).await.unwrap();
            done.lock().unwrap().push(login);
        }));
    }
    while lucca.limiter().stats().waiting_batch < 3 {
        tokio::task::yield_now().await;
    }
    let person = lucca.with_priority(Priority::SignIn);
    let found = person.find_by_mail("alice@acme.test").await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        done.lock().unwrap().is_empty(),
        "the sign-in was served before any queued batch request"
    );
    for task in tasks {
        task.await.unwrap();
    }
    let order: Vec<String> = sim
        .requests()
        .iter()
        .skip(1)
        .map(|r| r.query_param("mail").or(r.query_param("login")).unwrap())
        .collect();
    assert_eq!(order, ["alice@acme.test", "cbernard", "fhaddad", "sroux"]);
}

#[tokio::test]
async fn departments_are_read_from_the_v4_route_in_pages_and_cached() {
    let sim = simulator().await;
    let (v3, _) = raw_get(&sim, "/api/v3/departments?fields=id,name").await;
    assert_eq!(v3, 404, "today's Lucca no longer serves v3 departments");
    let lucca = client(&sim);
    let departments = lucca.departments().await.unwrap();
    assert_eq!(
        departments.iter().map(|d| d.id).collect::<Vec<_>>(),
        [13, 14, 15]
    );
    assert_eq!(departments[1].name, "Human Resources");
    assert_eq!(lucca.departments().await.unwrap().len(), 3);
    let requests = sim.requests();
    assert_eq!(
        requests.len(),
        2,
        "v3 probe above, one v4 request, then the cache"
    );
    assert_eq!(requests[1].path, "/organization/structure/api/departments");
    assert_eq!(requests[1].query_param("page").as_deref(), Some("1"));
    assert_eq!(requests[1].query_param("limit").as_deref(), Some("100"));
    assert_eq!(requests[1].status, Some(200));

    // A migration reads them again whatever the cache holds, and refreshes it for everyone.
    assert_eq!(lucca.reload_departments().await.unwrap().len(), 3);
    assert_eq!(sim.requests().len(), 3, "reloaded despite the cache");
    lucca.departments().await.unwrap();
    assert_eq!(sim.requests().len(), 3, "the reload refreshed the cache");
}

#[tokio::test]
async fn v4_departments_follow_next_until_null() {
    let sim = simulator().await;
    let (status, page1) = raw_get(
        &sim,
        "/organization/structure/api/departments?page=1&limit=2",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let next = page1["next"].as_str().unwrap().to_string();
    assert!(next.ends_with("page=2&limit=2"), "{next}");
    let (_, page2) = raw_get(&sim, next.trim_start_matches(sim.base_url())).await;
    assert_eq!(page2["items"][0]["name"], "Sales");
    assert!(page2["next"].is_null());
    let (status, _) = raw_get(&sim, "/organization/structure/api/departments?limit=101").await;
    assert_eq!(status, 400, "v4 caps limit at 100");

    // More than one page of 100 through the client.
    let mut seed = super::simulator::Seed::builtin().unwrap();
    seed.departments = (1..=230)
        .map(|id| super::simulator::NamedRef {
            id,
            name: format!("Team {id}"),
        })
        .collect();
    let big = spawn(SimulatorConfig {
        today: Some(today()),
        requests_per_minute: None,
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .unwrap();
    let all = client(&big).departments().await.unwrap();
    assert_eq!(all.len(), 230);
    assert_eq!(all[229].name, "Team 230");
    let pages: Vec<Option<String>> = big
        .requests()
        .iter()
        .map(|r| r.query_param("page"))
        .collect();
    assert_eq!(
        pages,
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
}

#[tokio::test]
async fn v3_departments_are_the_fallback_when_v4_answers_404() {
    let sim = simulator().await;
    sim.set_departments_routes(true, false);
    let lucca = client(&sim);
    let departments = lucca.reload_departments().await.unwrap();
    assert_eq!(departments.len(), 3);
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/organization/structure/api/departments",
            "/api/v3/departments"
        ]
    );
    assert_eq!(
        sim.requests()[1].query_param("paging").as_deref(),
        Some("0,1000")
    );
    // Known now: the next refresh goes straight to v3.
    lucca.reload_departments().await.unwrap();
    assert_eq!(sim.requests().last().unwrap().path, "/api/v3/departments");
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn clients_of_one_tenant_share_one_limiter() {
    let sim = simulator().await;
    let key = Secret::new(sim.api_key());
    let a = LuccaClient::new(sim.base_url(), key.clone(), 50, Duration::from_secs(4)).unwrap();
    let b = LuccaClient::new(
        &format!("{}/", sim.base_url()),
        key,
        50,
        Duration::from_secs(4),
    )
    .unwrap();
    assert!(Arc::ptr_eq(a.limiter(), b.limiter()));
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!(a.limiter().stats().sent, 2);
}

/// The console's status asks Lucca at most once a minute: any answer of the last minute
/// (a lookup, a ping) is reused, a refused key or a 5xx is reported as such.
#[tokio::test]
async fn reachability_reuses_a_recent_answer_instead_of_pinging() {
    let sim = simulator().await;
    let lucca = client(&sim);
    lucca.reachability(Duration::from_secs(60)).await.unwrap();
    assert_eq!(sim.request_count(), 1, "nothing known yet: one ping");
    lucca.reachability(Duration::from_secs(60)).await.unwrap();
    assert_eq!(sim.request_count(), 1, "the ping's answer is reused");
    sim.fail_next(1, 503);
    assert!(lucca.find_by_mail("alice@acme.test").await.is_err());
    let requests = sim.request_count();
    let err = lucca
        .reachability(Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.contains("503"), "{err}");
    assert_eq!(sim.request_count(), requests, "the failed lookup said it");
    // Too old an answer: asked again, and Lucca is back.
    lucca.reachability(Duration::ZERO).await.unwrap();
    assert_eq!(sim.request_count(), requests + 1);
}

#[tokio::test]
async fn legal_units_are_read_active_or_archived_with_the_documented_parameters() {
    let sim = simulator().await;
    let lucca = client(&sim);
    let active = lucca.legal_units().await.unwrap();
    assert_eq!(
        active,
        [LegalUnit {
            id: 1,
            name: "Acme SAS".into()
        }]
    );
    let archived = lucca.archived_legal_units().await.unwrap();
    assert_eq!(
        archived.iter().map(|l| l.id).collect::<Vec<_>>(),
        [2],
        "{archived:?}"
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    for (request, is_archived) in requests.iter().zip(["false", "true"]) {
        assert_eq!(request.path, "/organization/structure/api/legal-units");
        assert_eq!(request.status, Some(200));
        assert_eq!(request.query_param("page").as_deref(), Some("1"));
        assert_eq!(request.query_param("limit").as_deref(), Some("100"));
        assert_eq!(
            request.query_param("isArchived").as_deref(),
            Some(is_archived)
        );
        assert_eq!(
            request.query_param("fields.root").as_deref(),
            Some("prev,next,count")
        );
    }

    // The simulator's route, as documented: both kinds in one go, cursors in `next` only when
    // `fields.root` asks for it, the key checked, bad parameters refused.
    let route = "/organization/structure/api/legal-units";
    let (status, page1) = raw_get(
        &sim,
        &format!("{route}?limit=1&isArchived=true,false&fields.root=prev,next,count"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page1["items"][0]["name"], "Acme SAS");
    assert_eq!(page1["count"], 2);
    assert!(page1["prev"].is_null());
    let next = page1["next"].as_str().unwrap().to_string();
    assert!(next.contains("page=%212"), "a cursor: {next}");
    let (_, page2) = raw_get(&sim, next.trim_start_matches(sim.base_url())).await;
    assert_eq!(page2["items"][0]["isArchived"], true);
    assert_eq!(page2["items"][0]["name"], "Acme Consulting SARL");
    let (_, bare) = raw_get(&sim, &format!("{route}?limit=1")).await;
    assert!(bare.get("next").is_none(), "{bare}");
    for bad in ["limit=101", "page=0", "page=soon", "isArchived=maybe"] {
        let (status, body) = raw_get(&sim, &format!("{route}?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let anonymous = reqwest::get(format!("{}{route}", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // A tenant without the route, a key without the right.
    sim.set_legal_units_answer(Some(404));
    assert!(matches!(
        lucca.legal_units().await,
        Err(LuccaError::NotFound { .. })
    ));
    sim.set_legal_units_answer(Some(403));
    assert!(matches!(
        lucca.legal_units().await,
        Err(LuccaError::Forbidden {
            operation: "list legal units"
        })
    ));
    // The archived one is refused to new accounts, which is why `check` reports it.
    let mut in_archived = new_user("archived.entity");
    in_archived.legal_entity_id = 2;
    let err = lucca.create_user(&in_archived).await.unwrap_err();
    assert!(
        err.to_string().contains("Legal entity 2 is archived"),
        "{err}"
    );
}

#[tokio::test]
async fn legal_units_follow_cursors_and_a_paging_that_never_ends_is_an_error() {
    let seeded = |count: i64| {
        let mut seed = super::simulator::Seed::builtin().unwrap();
        seed.legal_entities = (1..=count)
            .map(|id| super::simulator::NamedRef {
                id,
                name: format!("Entity {id}"),
            })
            .collect();
        spawn(SimulatorConfig {
            today: Some(today()),
            requests_per_minute: None,
            seed: Some(seed),
            ..Default::default()
        })
    };
    let sim = seeded(230).await.unwrap();
    let all = client(&sim).legal_units().await.unwrap();
    assert_eq!(all.len(), 230);
    assert_eq!(all[229].name, "Entity 230");
    let pages: Vec<Option<String>> = sim
        .requests()
        .iter()
        .map(|r| r.query_param("page"))
        .collect();
    assert_eq!(
        pages,
        [Some("1".into()), Some("!2".into()), Some("!3".into())]
    );

    // More than 50 pages of 100 is not a tenant's list: stopped, not taken as complete.
    let sim = seeded(5001).await.unwrap();
    let err = client(&sim).legal_units().await.unwrap_err();
    assert!(
        matches!(&err, LuccaError::Decode { operation: "list legal units", cause } if cause.contains("still more after 50 pages of 100 (read 5000 so far)")),
        "{err}"
    );
    assert_eq!(sim.request_count(), 50);
}
