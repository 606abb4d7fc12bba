//! Following Lucca after the sign-in, against the simulator over loopback: the directory sync
//! finds a leaver within one interval and asks for their access to be revoked, `/admin/sync`
//! reports and runs it, Lucca webhooks trigger a re-read and forged ones change nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passerelle::config::JitMode;
use passerelle::provisioning::{AccessRevocation, PersonRef, RevocationReason, RevokeSummary};
use serde_json::Value;

use crate::common::*;
use crate::jit::{code, sign_in, simulator, with_lucca};

/// Stands in for the access side: records whom it was asked to revoke.
#[derive(Default)]
struct Recording(Mutex<Vec<(PersonRef, RevocationReason)>>);

impl Recording {
    fn calls(&self) -> Vec<(PersonRef, RevocationReason)> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl AccessRevocation for Recording {
    async fn revoke_person(
        &self,
        person: &PersonRef,
        reason: RevocationReason,
    ) -> Result<RevokeSummary, passerelle::provisioning::revocation::RevocationError> {
        self.0.lock().unwrap().push((person.clone(), reason));
        Ok(RevokeSummary::default())
    }
}

fn wire(server: &TestServer) -> Arc<Recording> {
    let recording = Arc::new(Recording::default());
    server
        .state()
        .sync
        .0
        .as_ref()
        .expect("the sync is built when Lucca is configured")
        .follower()
        .set_revocation(recording.clone());
    recording
}

async fn admin_sync(server: &TestServer) -> Value {
    reqwest::Client::new()
        .get(server.url("/admin/sync"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn run_sync(server: &TestServer) -> u16 {
    reqwest::Client::new()
        .post(server.url("/admin/sync"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tokens_for(server: &TestServer, user: &str) -> Value {
    let code = code(sign_in(server, user, "openid offline_access").await).await;
    reqwest::Client::new()
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
        .unwrap()
}

async fn refresh(server: &TestServer, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn yesterday() -> chrono::NaiveDate {
    chrono::Local::now().date_naive() - chrono::Days::new(1)
}

#[tokio::test]
async fn the_sync_finds_a_contract_that_ended_within_one_interval() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.lucca.sync_interval = Duration::from_secs(1);
    })
    .await;
    let recording = wire(&server);
    let tokens = tokens_for(&server, "alice@acme.test").await;
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    until("the first, full pass", || async {
        admin_sync(&server).await["last_full_pass_at"].is_string()
    })
    .await;
    assert!(recording.calls().is_empty(), "nobody has left yet");

    // Alice's end date, set long ago, passes: her record does not change (no modifiedAt).
    let mut alice = sim.user(2).unwrap();
    alice["dtContractEnd"] = Value::from(format!("{}T00:00:00", yesterday()));
    sim.put_user(alice);
    let started = Instant::now();
    until("the revocation", || async { !recording.calls().is_empty() }).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        recording.calls(),
        [(
            PersonRef::new(Some("alice@acme.test"), Some("alice@acme.test")),
            RevocationReason::ContractEnded { on: yesterday() }
        )]
    );
    let ended_window = sim
        .requests()
        .into_iter()
        .find_map(|r| r.query_param("dtContractEnd"))
        .expect("the sync asks for contracts that ended since its last run");
    assert!(ended_window.starts_with("between,"), "{ended_window}");

    // Incremental runs read what changed since the last one, only the fields they need.
    let incremental = sim
        .requests()
        .into_iter()
        .find(|r| r.query_param("modifiedAt").is_some())
        .expect("an incremental run");
    assert!(incremental
        .query_param("modifiedAt")
        .unwrap()
        .starts_with("since,"));
    assert_eq!(
        incremental.query_param("formerEmployees").as_deref(),
        Some("true")
    );
    assert_eq!(
        incremental.query_param("fields").as_deref(),
        Some("id,login,mail,dtContractStart,dtContractEnd,modifiedAt")
    );

    // The link is written after the revocation is recorded: wait for it rather than race it.
    until("the link marked ended", || async {
        server
            .state()
            .store
            .lucca_links()
            .get("alice@acme.test")
            .await
            .unwrap()
            .is_some_and(|l| l.status == "ended")
    })
    .await;
    let audit: Vec<_> = server
        .state()
        .store
        .audit()
        .recent(50, Some("alice@acme.test"))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "revocation")
        .collect();
    assert_eq!(audit.len(), 1, "once, not at every run");
    assert!(audit[0]
        .detail
        .as_deref()
        .unwrap()
        .contains(r#""reason":"contract_ended""#));

    // Her refresh token no longer works.
    let (status, body) = refresh(&server, &refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let status = admin_sync(&server).await;
    assert_eq!(status["enabled"], true);
    assert_eq!(status["interval_seconds"], 1);
    assert!(status["last_run"]["counts"]["seen"].is_number(), "{status}");
    assert!(status["next_run_at"].is_string());
}

#[tokio::test]
async fn admin_sync_runs_on_demand_and_refuses_a_second_run() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.lucca.sync_interval = Duration::ZERO;
    })
    .await;
    let before = admin_sync(&server).await;
    assert_eq!(before["enabled"], false, "{before}");
    assert!(before["last_run"].is_null());
    assert_eq!(sim.request_count(), 0, "off: nothing runs by itself");

    sim.set_latency(Duration::from_millis(600));
    assert_eq!(run_sync(&server).await, 202);
    assert_eq!(run_sync(&server).await, 409, "one run at a time");
    until("the run to finish", || async {
        admin_sync(&server).await["last_run"].is_object()
    })
    .await;
    let after = admin_sync(&server).await;
    let counts = &after["last_run"]["counts"];
    assert_eq!(
        counts["seen"], 8,
        "the whole seed, former employees included: {after}"
    );
    assert!(after["last_full_pass_at"].is_string());
    assert!(after["next_run_at"].is_null(), "off: no next run");
    assert!(after["last_error"].is_null());

    let metrics = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "passerelle_lucca_requests_total",
        "passerelle_lucca_queue_wait_seconds",
        "passerelle_sync_runs_total",
    ] {
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "{name} described:\n{metrics}"
        );
    }
    assert!(
        metrics.contains(r#"operation="list users",outcome="ok""#),
        "{metrics}"
    );

    let unauthenticated = reqwest::Client::new()
        .post(server.url("/admin/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // Lucca down: the error is reported, and the next run resumes.
    sim.set_latency(Duration::ZERO);
    sim.fail_next(10, 500);
    assert_eq!(run_sync(&server).await, 202);
    until("the failure", || async {
        admin_sync(&server).await["last_error"].is_object()
    })
    .await;
    let failed = admin_sync(&server).await;
    assert!(
        failed["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{failed}"
    );
}

const WEBHOOK_SECRET: &str = "lucca-webhook-secret-0123456789abcdef";

async fn challenge(server: &TestServer, query: &str) -> (u16, String) {
    let r = reqwest::get(server.url(&format!("/lucca/webhooks{query}")))
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_webhook_triggers_a_re_read_and_a_forged_one_changes_nothing() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.lucca.webhook_secret = Some(passerelle::config::Secret::new(WEBHOOK_SECRET));
    })
    .await;
    let recording = wire(&server);
    let url = server.url("/lucca/webhooks");
    tokens_for(&server, "alice@acme.test").await;

    // Lucca's activation challenge, under both names it has used.
    assert_eq!(
        challenge(&server, "?challenge=ch-4f2a").await,
        (200, "ch-4f2a".into())
    );
    assert_eq!(challenge(&server, "?echo=e-77").await, (200, "e-77".into()));
    assert_eq!(challenge(&server, "").await.0, 400);
    assert_eq!(
        challenge(&server, &format!("?challenge={}", "x".repeat(501)))
            .await
            .0,
        400
    );

    // Alice leaves in Lucca.
    assert!(sim.modify_user(
        2,
        serde_json::json!({"dtContractEnd": format!("{}T00:00:00", yesterday())})
    ));
    sim.clear_requests();
    let event = sim.webhook_event("employee.updated", 2, false);
    let body = event.to_string().into_bytes();
    let now = chrono::Utc::now();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signed =
        |ts: &str, b: &[u8]| passerelle::lucca::simulator::webhook_signature(WEBHOOK_SECRET, ts, b);
    let ts = fmt(now);
    let stale = fmt(now - chrono::Duration::minutes(6));
    let forged = passerelle::lucca::simulator::webhook_signature(
        "not-the-secret-0123456789abcdef",
        &ts,
        &body,
    );
    let mut tampered = event.clone();
    tampered["data"]["id"] = Value::from("1");
    for (what, signature, timestamp, payload) in [
        ("unsigned", None, Some(ts.clone()), body.clone()),
        ("no timestamp", Some(signed(&ts, &body)), None, body.clone()),
        (
            "another secret",
            Some(forged),
            Some(ts.clone()),
            body.clone(),
        ),
        (
            "stale",
            Some(signed(&stale, &body)),
            Some(stale.clone()),
            body.clone(),
        ),
        (
            "signed for another body",
            Some(signed(&ts, &body)),
            Some(ts.clone()),
            tampered.to_string().into_bytes(),
        ),
    ] {
        let status = sim
            .send_raw_webhook(&url, signature.as_deref(), timestamp.as_deref(), payload)
            .await;
        assert_eq!(status, 401, "{what}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.request_count(), 0, "a refused event reads nothing");
    assert!(recording.calls().is_empty(), "and revokes nobody");
    let link = server
        .state()
        .store
        .lucca_links()
        .get("alice@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.status, "active");

    // The real one: a re-read of employee 2 through the API, then the revocation.
    assert_eq!(sim.send_webhook(&url, WEBHOOK_SECRET, &event).await, 202);
    until("the re-read and revocation", || async {
        !recording.calls().is_empty()
    })
    .await;
    let reads: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(reads, ["/api/v3/users/2"]);
    assert_eq!(
        recording.calls()[0].1,
        RevocationReason::ContractEnded { on: yesterday() }
    );
    // Delivered twice (at least once, says Lucca): no second read.
    assert_eq!(sim.send_webhook(&url, WEBHOOK_SECRET, &event).await, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.request_count(), 1);

    // Deleted in Lucca, told in CloudEvents: a 404 on the re-read is a removal.
    sim.remove_user(2);
    let deleted = sim.webhook_event("employee.deleted", 2, true);
    assert_eq!(sim.send_webhook(&url, WEBHOOK_SECRET, &deleted).await, 202);
    until("the removal", || async { recording.calls().len() == 2 }).await;
    assert_eq!(
        recording.calls()[1].1,
        RevocationReason::RemovedFromDirectory
    );
    let link = server
        .state()
        .store
        .lucca_links()
        .get("alice@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.status, "removed");

    // Not JSON, but signed: 400.
    let junk = b"not an event".to_vec();
    let status = sim
        .send_raw_webhook(&url, Some(&signed(&ts, &junk)), Some(&ts), junk.clone())
        .await;
    assert_eq!(status, 400);
    // Oversized: refused before anything is parsed.
    let big = vec![b'x'; 70 * 1024];
    let status = sim
        .send_raw_webhook(&url, Some(&signed(&ts, &big)), Some(&ts), big.clone())
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn webhooks_are_off_without_a_secret() {
    let sim = simulator().await;
    let server = start(|c| with_lucca(c, &sim, JitMode::UpdateOnly)).await;
    assert_eq!(challenge(&server, "?challenge=abc").await.0, 404);
    let event = sim.webhook_event("employee.updated", 2, false);
    let status = sim
        .send_webhook(&server.url("/lucca/webhooks"), WEBHOOK_SECRET, &event)
        .await;
    assert_eq!(status, 404);
}

/// Alice is in corp-managers and corp-employees; Bob in corp-hr.
fn with_lucca_roles(c: &mut passerelle::config::Config) {
    c.lucca.apply_roles = true;
    for row in &mut c.role_mapping {
        match row.group.as_str() {
            "corp-managers" => row.lucca_role = Some("Employee +".into()),
            "corp-hr" => row.lucca_role_id = Some(1),
            _ => {}
        }
    }
}

#[tokio::test]
async fn roles_named_in_the_table_reach_lucca_and_hand_given_ones_stay() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    // In Lucca, Alice holds role 55 (given by hand) and 1 (named by the corp-hr row, which
    // she is not in).
    assert!(sim.modify_user(
        2,
        serde_json::json!({"habilitedRoles": [{"id": 55}, {"id": 1}]})
    ));
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        with_lucca_roles(c);
    })
    .await;
    sim.clear_requests();
    code(sign_in(&server, "alice@acme.test", "openid").await).await;
    let alice = sim.user(2).unwrap();
    let ids: Vec<i64> = alice["habilitedRoles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [55, 59],
        "59 granted by the table (by name), 1 taken back, 55 kept"
    );
    let writes: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(
        writes,
        [serde_json::json!({"habilitedRoles": [{"id": 55}, {"id": 59}]})]
    );
    let roles_read = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v3/roles")
        .count();
    assert_eq!(roles_read, 1, "names resolved through the roles API");
    let audit = server
        .state()
        .store
        .audit()
        .recent(20, Some("alice@acme.test"))
        .await
        .unwrap();
    let change = audit
        .iter()
        .find(|e| e.event == "lucca_roles")
        .expect("audited");
    let detail: Value = serde_json::from_str(change.detail.as_deref().unwrap()).unwrap();
    assert_eq!(
        (detail["add"].clone(), detail["remove"].clone()),
        (serde_json::json!([59]), serde_json::json!([1]))
    );

    // Signed in again: nothing to write.
    sim.clear_requests();
    code(sign_in(&server, "alice@acme.test", "openid").await).await;
    assert!(sim.requests().iter().all(|r| r.method == "GET"));

    // The preview shows the exact change the table asks for.
    assert!(sim.modify_user(
        2,
        serde_json::json!({"habilitedRoles": [{"id": 59}, {"id": 1}]})
    ));
    let preview: Value = reqwest::Client::new()
        .get(server.url("/admin/preview?user=alice@acme.test"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let planned = &preview["jit"]["lucca_roles"]["change"];
    assert_eq!(planned["remove"], serde_json::json!([1]), "{preview}");
    assert_eq!(planned["result"], serde_json::json!([59]));
}

#[tokio::test]
async fn check_reports_a_lucca_role_name_that_does_not_resolve() {
    let sim = simulator().await;
    let mut config = base_config();
    with_lucca(&mut config, &sim, JitMode::UpdateOnly);
    with_lucca_roles(&mut config);
    config.role_mapping[0].lucca_role = Some("Employe +".into());
    let problems = passerelle::app::check::check(&config).await;
    let found = problems
        .iter()
        .find(|p| p.key == "role_mapping[0].lucca_role")
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert!(
        found.message.contains("Employe +") && found.message.contains("Employee +"),
        "{}",
        found.message
    );
    config.role_mapping[0].lucca_role = Some("employee +".into());
    let problems = passerelle::app::check::check(&config).await;
    assert!(
        !problems.iter().any(|p| p.key.starts_with("role_mapping")),
        "{problems:?}"
    );
}

/// Issue 14: `[lucca.defaults]` ids Lucca does not know are errors naming the key, with
/// Lucca's own ids; the seed's ids pass.
#[tokio::test]
async fn check_reports_lucca_defaults_that_lucca_does_not_know() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let mut config = base_config();
    with_lucca(&mut config, &sim, JitMode::CreateAndUpdate);
    let problems = passerelle::app::check::check(&config).await;
    assert!(
        !problems.iter().any(|p| p.key.starts_with("lucca.defaults")),
        "{problems:?}"
    );
    config.lucca.defaults.department_id = Some(9999);
    config.lucca.defaults.role_principal_id = Some(8888);
    config.lucca.defaults.legal_entity_id = Some(7777);
    config.lucca.defaults.culture_id = Some(36);
    let problems = passerelle::app::check::check(&config).await;
    for (key, says) in [
        (
            "lucca.defaults.department_id",
            "Lucca has no department with id 9999 (Lucca's: ",
        ),
        (
            "lucca.defaults.role_principal_id",
            "Lucca has no role with id 8888 (Lucca's: ",
        ),
        (
            "lucca.defaults.legal_entity_id",
            "Lucca has no legal unit with id 7777 (Lucca's: 1 Acme SAS): accounts created with it would be refused",
        ),
        (
            "lucca.defaults.culture_id",
            "36 is not a Windows language id (LCID) Lucca accepts (1025–58380): for example 1036 fr-FR français (France)",
        ),
    ] {
        let found = problems
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("{key}: {problems:?}"));
        assert_eq!(found.severity, passerelle::config::Severity::Error);
        assert!(found.message.starts_with(says), "{}", found.message);
    }
}

/// Issue 14: the legal entity is read from Lucca's legal units; an archived one is named as
/// such, a list Lucca does not serve (404, 403) leaves the id unchecked with a warning, and an
/// unusual culture is a warning.
#[tokio::test]
async fn check_reports_an_archived_or_uncheckable_legal_entity_and_an_unusual_culture() {
    use passerelle::config::Severity;
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let mut config = base_config();
    with_lucca(&mut config, &sim, JitMode::CreateAndUpdate);
    let defaults = |problems: &[passerelle::config::Problem]| {
        problems
            .iter()
            .filter(|p| p.key.starts_with("lucca.defaults"))
            .map(|p| (p.severity, p.key.clone(), p.message.clone()))
            .collect::<Vec<_>>()
    };

    // The active one: one request for the active list, none for the archived.
    sim.clear_requests();
    let problems = passerelle::app::check::check(&config).await;
    assert_eq!(defaults(&problems), [], "{problems:?}");
    let archived_reads = || {
        sim.requests()
            .iter()
            .filter(|r| r.query_param("isArchived").as_deref() == Some("true"))
            .count()
    };
    assert_eq!(archived_reads(), 0, "the archived list only when needed");

    config.lucca.defaults.legal_entity_id = Some(2);
    config.lucca.defaults.culture_id = Some(1039);
    let problems = passerelle::app::check::check(&config).await;
    assert_eq!(archived_reads(), 1);
    assert_eq!(
        defaults(&problems),
        [
            (
                Severity::Warning,
                "lucca.defaults.culture_id".to_string(),
                "1039 is not a common Windows language id (LCID): check that Lucca has this culture, or Lucca refuses the accounts created with it (common ones: 1036 fr-FR français (France), 1033 en-US English (United States), 2057 en-GB English (United Kingdom), 1031 de-DE Deutsch (Deutschland), 3082 es-ES español (España), 1040 it-IT italiano (Italia))".to_string(),
            ),
            (
                Severity::Error,
                "lucca.defaults.legal_entity_id".to_string(),
                "Lucca's legal unit 2 Acme Consulting SARL is archived (Lucca's active ones: 1 Acme SAS): accounts created with it would be refused".to_string(),
            ),
        ]
    );

    config.lucca.defaults.culture_id = Some(1036);
    for (status, says) in [
        (
            404,
            "this id is not checked: Lucca answered 404 on /organization/structure/api/legal-units (a tenant that does not serve its legal units there yet)",
        ),
        (
            403,
            "this id is not checked: the API key may not read Lucca's legal units (403); give its role that right to have it checked",
        ),
    ] {
        sim.set_legal_units_answer(Some(status));
        let problems = passerelle::app::check::check(&config).await;
        assert_eq!(
            defaults(&problems),
            [(
                Severity::Warning,
                "lucca.defaults.legal_entity_id".to_string(),
                says.to_string()
            )],
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_refresh_re_reads_lucca_once_the_recorded_status_is_older_than_decision_ttl() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.lucca.decision_ttl = Duration::from_secs(1);
    })
    .await;
    let recording = wire(&server);
    let tokens = tokens_for(&server, "alice@acme.test").await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();

    // Within decision_ttl: the recorded status, no Lucca call.
    sim.clear_requests();
    let (status, renewed) = refresh(&server, &first).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(sim.request_count(), 0);

    // Alice leaves; nobody signs in, no sync runs. Once the record is older than the TTL,
    // the refresh asks Lucca, is refused, and her access is revoked.
    let mut alice = sim.user(2).unwrap();
    alice["dtContractEnd"] = Value::from(format!("{}T00:00:00", yesterday()));
    sim.put_user(alice);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let token = renewed["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&server, token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let reads: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(reads, ["/api/v3/users/2"]);
    assert_eq!(
        recording.calls(),
        [(
            PersonRef::new(Some("alice@acme.test"), Some("alice@acme.test")),
            RevocationReason::ContractEnded { on: yesterday() }
        )]
    );
    let audit = server
        .state()
        .store
        .audit()
        .recent(20, Some("alice@acme.test"))
        .await
        .unwrap();
    let revocation = audit.iter().find(|e| e.event == "revocation").unwrap();
    assert!(revocation
        .detail
        .as_deref()
        .unwrap()
        .contains(r#""source":"refresh""#));
}

/// The whole path: the sync finds the leaver, and every session and token of theirs ends.
#[tokio::test]
async fn a_leaver_found_by_the_sync_loses_tokens_and_session() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.lucca.sync_interval = Duration::from_secs(1);
    })
    .await;
    let browser = Browser::new();
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid offline_access"),
        ("state", "st"),
    ]);
    let to = browser
        .authorize(
            &server.base,
            url.as_str(),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    let code = query(&to)["code"].clone();
    let tokens: Value = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LUCCA_CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let mut alice = sim.user(2).unwrap();
    alice["dtContractEnd"] = Value::from(format!("{}T00:00:00", yesterday()));
    sim.put_user(alice);
    until("the sync's revocation", || async {
        server
            .state()
            .store
            .lucca_links()
            .get("alice@acme.test")
            .await
            .unwrap()
            .is_some_and(|l| l.status == "ended")
    })
    .await;

    let (status, _) = refresh(&server, &refresh_token).await;
    assert_eq!(status, 400, "refresh token refused");
    let userinfo = reqwest::Client::new()
        .get(server.url("/oidc/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401, "access token revoked");
    let again = browser.follow(&server.base, url.as_str()).await;
    assert_eq!(again.url().path(), "/login", "browser session ended");
}

#[tokio::test]
async fn the_sync_applies_the_table_s_lucca_roles_to_people_of_the_directory() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    assert!(sim.modify_user(
        2,
        serde_json::json!({"habilitedRoles": [{"id": 55}, {"id": 1}]})
    ));
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        with_lucca_roles(c);
        c.lucca.sync_interval = Duration::ZERO;
    })
    .await;
    assert_eq!(run_sync(&server).await, 202);
    until("the run", || async {
        admin_sync(&server).await["last_run"].is_object()
    })
    .await;
    let roles = |id: i64| -> Vec<i64> {
        sim.user(id).unwrap()["habilitedRoles"]
            .as_array()
            .map(|a| a.iter().map(|r| r["id"].as_i64().unwrap()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        roles(2),
        [55, 59],
        "Alice (corp-managers): 59 added, 1 taken back, 55 kept"
    );
    assert_eq!(roles(1), [1], "Bob (corp-hr): 1");
    let status = admin_sync(&server).await;
    assert_eq!(status["last_run"]["counts"]["roles_changed"], 2, "{status}");
    let listing = sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v3/users")
        .unwrap();
    assert!(listing
        .query_param("fields")
        .unwrap()
        .contains("habilitedRoles"));
    // Nothing more to write on the next run.
    sim.clear_requests();
    assert_eq!(run_sync(&server).await, 202);
    until("the second run", || async {
        sim.requests().iter().any(|r| r.path == "/api/v3/users")
            && !admin_sync(&server).await["running"]
                .as_bool()
                .unwrap_or(true)
    })
    .await;
    assert!(sim.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn a_migration_dry_run_reports_each_person_s_lucca_role_change() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    assert!(sim.modify_user(
        2,
        serde_json::json!({"habilitedRoles": [{"id": 55}, {"id": 1}]})
    ));
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        with_lucca_roles(c);
    })
    .await;
    let http = reqwest::Client::new();
    let accepted: Value = http
        .post(server.url("/admin/migrations?dry_run=true"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/csv")
        .body("email\nalice@acme.test\n")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    let report_url = server.url(&format!("/admin/migrations/{id}/report"));
    let report = || {
        let (http, report_url) = (http.clone(), report_url.clone());
        async move {
            let body: Value = http
                .get(&report_url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["rows"].as_array().cloned().unwrap_or_default()
        }
    };
    until("the dry run", || async {
        report().await.first().is_some_and(|r| r["done"] == true)
    })
    .await;
    let rows = report().await;
    let alice = &rows[0];
    let change = alice["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "lucca_roles")
        .unwrap_or_else(|| panic!("{alice}"));
    assert_eq!(
        (change["from"].as_str(), change["to"].as_str()),
        (Some("55,1"), Some("55,59"))
    );
    assert!(
        alice["message"]
            .as_str()
            .unwrap()
            .contains("add [59], remove [1]"),
        "{alice}"
    );
    assert!(
        sim.requests().iter().all(|r| r.method == "GET"),
        "a dry run writes nothing"
    );
}

#[tokio::test]
async fn a_sign_in_waits_out_a_retry_after_within_sign_in_wait_and_sends_nothing_meanwhile() {
    let sim = simulator().await;
    sim.set_rate_limit(None);
    let server = start(|c| {
        with_lucca(c, &sim, JitMode::UpdateOnly);
        c.lucca.sign_in_wait = Duration::from_secs(20);
    })
    .await;
    sim.set_injected_retry_after(Some("6"));
    sim.fail_next(1, 429);
    let started = Instant::now();
    code(sign_in(&server, "alice@acme.test", "openid").await).await;
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let requests = sim.requests();
    assert_eq!(requests[0].status, Some(429));
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(
        gap >= Duration::from_secs(6),
        "nothing sent during the Retry-After: {gap:?}"
    );
}
