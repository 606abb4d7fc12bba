//! Batch SSO migrations against an in-process Lucca simulator: every class in a dry run, an
//! apply and its idempotent re-run (with the notification emails caught by a tiny SMTP
//! listener), a server killed with SIGKILL mid-job and restarted, cancellation, refused
//! uploads, and `passerelle migrate`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passerelle::config::{Config, DirectoryUser, Secret};
use passerelle::lucca::simulator::{self, SimulatorConfig, SimulatorHandle};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::*;

/// Any valid argon2 hash: these people are listed, nobody signs in (and nothing is hashed).
/// A hash of "migration-test-password" (not the example's: `check` refuses shipped hashes).
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ac9hJcRRBat2KYtFG9Jzyw$GiCjXskaMWz12iTJmc5fbkfI11rZIGrua1vi1J1ABqE";

/// One row per class (against the simulator's built-in seed and the directory of `lucca_config`).
pub(crate) const EVERY_CLASS: &str = "\
email,login,given_name,family_name,department,manager_email,employee_number
bob@acme.test,,Bob,Durand,,,
alice@acme.test,,,Martin-Dupont,Engineering,bob@acme.test,
carol@acme.test,,Carol,Nouvel,Sales,farid.haddad@acme.test,00999
david.petit@acme.test,,,,,,
emma.leroy@acme.test,,,,,,
sam.roux@acme.test,,,,,,
chloe@acme.test,cbernard,,,,,
zoe@acme.test,,Zoé,Outside,,,
not-an-email,,,,,,
BOB@acme.test,,Bob,Durand,,,
dan@acme.test,,Dan,Clash,,,00042
";

fn directory_user(email: &str) -> DirectoryUser {
    DirectoryUser {
        email: email.into(),
        password_hash: Some(HASH.into()),
        ..Default::default()
    }
}

pub(crate) async fn lucca_simulator() -> SimulatorHandle {
    simulator::spawn(SimulatorConfig {
        requests_per_minute: None,
        ..Default::default()
    })
    .await
    .expect("simulator")
}

/// Lucca at `sim`, its defaults, and the people of `EVERY_CLASS` (but Zoé) in the directory.
pub(crate) fn lucca_config(c: &mut Config, sim: &SimulatorHandle) {
    c.lucca.base_url = Some(sim.base_url().into());
    c.lucca.api_key = Some(Secret::new(sim.api_key()));
    c.lucca.requests_per_minute = 6000;
    c.lucca.sync_interval = Duration::ZERO;
    c.lucca.defaults.legal_entity_id = Some(1);
    c.lucca.defaults.role_principal_id = Some(55);
    c.lucca.defaults.culture_id = Some(1036);
    c.lucca.defaults.department_id = Some(13);
    for email in [
        "carol@acme.test",
        "david.petit@acme.test",
        "emma.leroy@acme.test",
        "sam.roux@acme.test",
        "chloe@acme.test",
        "dan@acme.test",
    ] {
        c.directory.users.push(directory_user(email));
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn upload(base: &str, query: &str, content_type: &str, body: &str) -> (u16, Value) {
    let r = http()
        .post(format!("{base}/admin/migrations{query}"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("POST /admin/migrations");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn submit(base: &str, query: &str, csv: &str) -> String {
    let (status, body) = upload(base, query, "text/csv", csv).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("id").to_string()
}

async fn job_status(base: &str, id: &str) -> Value {
    http()
        .get(format!("{base}/admin/migrations/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json")
}

async fn wait_finished(base: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = job_status(base, id).await;
        if matches!(
            view["status"].as_str(),
            Some("done" | "failed" | "cancelled")
        ) {
            return view;
        }
        assert!(Instant::now() < deadline, "job still {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn report(base: &str, id: &str) -> Vec<Value> {
    let body: Value = http()
        .get(format!("{base}/admin/migrations/{id}/report"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("report")
        .json()
        .await
        .expect("json");
    body["rows"].as_array().cloned().unwrap_or_default()
}

/// The class of each row, keyed by line number.
fn classes(rows: &[Value]) -> HashMap<i64, String> {
    rows.iter()
        .map(|r| {
            (
                r["row"].as_i64().unwrap_or_default(),
                r["class"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn row(rows: &[Value], line: i64) -> &Value {
    rows.iter()
        .find(|r| r["row"] == line)
        .unwrap_or_else(|| panic!("no row {line}"))
}

fn writes(sim: &SimulatorHandle) -> Vec<simulator::RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect()
}

#[tokio::test]
async fn a_dry_run_classifies_everyone_and_writes_nothing() {
    let sim = lucca_simulator().await;
    let server = start(|c| lucca_config(c, &sim)).await;
    let id = submit(&server.base, "?dry_run=true", EVERY_CLASS).await;
    let view = wait_finished(&server.base, &id).await;
    assert_eq!(view["status"], "done", "{view}");
    assert_eq!(view["progress"]["processed"], 11);
    assert_eq!(view["progress"]["total"], 11);
    assert!(view["eta"].is_null());

    let rows = report(&server.base, &id).await;
    let expected = [
        (2, "ready"),
        (3, "will_update"),
        (4, "will_create"),
        (5, "leaver"),
        (6, "not_started"),
        (7, "duplicate"),
        (8, "identifier_mismatch"),
        (9, "not_in_directory"),
        (10, "invalid_row"),
        (11, "invalid_row"),
        (12, "will_create"),
    ];
    let got = classes(&rows);
    for (line, class) in expected {
        assert_eq!(got[&line], class, "line {line}: {}", row(&rows, line));
    }
    assert_eq!(view["counts"]["will_create"], 2);
    assert_eq!(view["counts"]["invalid_row"], 2);
    let alice = row(&rows, 3);
    assert_eq!(alice["fields"], serde_json::json!(["family_name"]));
    assert_eq!(alice["changes"][0]["from"], "Martin");
    assert_eq!(alice["lucca_id"], 2);
    assert_eq!(row(&rows, 4)["fields"][3], "department");
    assert!(row(&rows, 11)["message"]
        .as_str()
        .unwrap()
        .contains("line 2"));
    assert!(row(&rows, 5)["message"]
        .as_str()
        .unwrap()
        .contains("2022-12-31"));

    // Read in bulk, never written: one page of users, the department list.
    let requests = sim.requests();
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:?}");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].query_param("formerEmployees").as_deref(),
        Some("true")
    );
    assert_eq!(requests[0].query_param("paging").as_deref(), Some("0,1000"));
    let state = server.state();
    assert!(state
        .store
        .lucca_links()
        .get("bob@acme.test")
        .await
        .unwrap()
        .is_none());

    // Uploads are capped by migrations.max_upload_bytes (5 MiB), not the router's 1 MiB.
    let big = format!("email,notes\nbob@acme.test,{}\n", "x".repeat(1_200_000));
    let (status, accepted) = upload(&server.base, "?dry_run=true", "text/csv", &big).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["ignored_columns"], serde_json::json!(["notes"]));

    // The same people as JSON, with the CSV report.
    let json = r#"{"users": [{"email": "bob@acme.test", "family_name": "Durand"}, {"email": "zoe@acme.test"}]}"#;
    let (status, accepted) = upload(&server.base, "?dry_run=1", "application/json", json).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    wait_finished(&server.base, id).await;
    let csv = http()
        .get(format!("{}/admin/migrations/{id}/report", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("row,email,class,fields,lucca_id,message,findings,changes")
    );
    assert_eq!(lines.next(), Some("1,bob@acme.test,ready,,1,,ready,"));
    let zoe = lines.next().unwrap();
    assert!(
        zoe.starts_with("2,zoe@acme.test,not_in_directory,,,")
            && zoe.ends_with(",not_in_directory,"),
        "{zoe}"
    );
}

/// Lucca's own refusals (a leaver, an email shared by two accounts) are what Lucca will show
/// these people: a directory finding is reported after them, never instead of them.
#[tokio::test]
async fn lucca_refusals_are_not_hidden_behind_a_directory_finding() {
    let sim = lucca_simulator().await;
    let server = start(|c| {
        lucca_config(c, &sim);
        c.directory.users.retain(|u| {
            !["david.petit@acme.test", "sam.roux@acme.test"].contains(&u.email.as_str())
        });
    })
    .await;
    let csv = "email\ndavid.petit@acme.test\nsam.roux@acme.test\nzoe@acme.test\n";
    let id = submit(&server.base, "?dry_run=true", csv).await;
    assert_eq!(wait_finished(&server.base, &id).await["status"], "done");
    let rows = report(&server.base, &id).await;
    let findings = |line: i64| -> Vec<String> {
        row(&rows, line)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["class"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(row(&rows, 2)["class"], "leaver");
    assert_eq!(findings(2), ["leaver", "not_in_directory"]);
    let david = row(&rows, 2)["message"].as_str().unwrap();
    assert!(
        david.contains("2022-12-31") && david.contains("not in the directory"),
        "{david}"
    );
    assert_eq!(row(&rows, 3)["class"], "duplicate");
    assert_eq!(findings(3), ["duplicate", "not_in_directory"]);
    assert!(row(&rows, 3)["findings"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("2 Lucca accounts share this email"));
    assert_eq!(row(&rows, 4)["class"], "not_in_directory");
    assert_eq!(findings(4), ["not_in_directory"]);
    assert!(writes(&sim).is_empty());
}

/// A listener that speaks just enough SMTP to accept messages (no TLS, no AUTH).
async fn smtp_listener() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let inbox = messages.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 test ESMTP\r\n").await;
                let (mut in_data, mut message) = (false, String::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            inbox.lock().unwrap().push(std::mem::take(&mut message));
                            in_data = false;
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let command = line.to_ascii_uppercase();
                    let answer: &[u8] = if command.starts_with("EHLO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if command.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if command.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = write.write_all(answer).await;
                }
            });
        }
    });
    (port, messages)
}

#[tokio::test]
async fn applying_creates_updates_links_and_emails_then_a_rerun_changes_nothing() {
    let sim = lucca_simulator().await;
    let (smtp_port, inbox) = smtp_listener().await;
    let server = start(|c| {
        lucca_config(c, &sim);
        c.smtp.host = Some("127.0.0.1".into());
        c.smtp.port = smtp_port;
        c.smtp.from = Some("IT <it@acme.test>".into());
        c.smtp.starttls = false;
    })
    .await;
    let id = submit(&server.base, "?notify=true", EVERY_CLASS).await;
    let view = wait_finished(&server.base, &id).await;
    assert_eq!(view["status"], "done", "{view}");
    let rows = report(&server.base, &id).await;
    let got = classes(&rows);
    assert_eq!(got[&2], "ready");
    assert_eq!(got[&3], "updated");
    assert_eq!(got[&4], "created");
    assert_eq!(got[&12], "failed", "{}", row(&rows, 12));
    assert!(
        row(&rows, 12)["message"]
            .as_str()
            .unwrap()
            .contains("The employee number '00042' is already used"),
        "Lucca's own message: {}",
        row(&rows, 12)
    );
    for (line, class) in [
        (5, "leaver"),
        (6, "not_started"),
        (7, "duplicate"),
        (8, "identifier_mismatch"),
    ] {
        assert_eq!(got[&line], class);
    }

    // Lucca: Alice renamed, Carol created with the defaults, today's contract, her manager.
    let alice = sim.user(2).unwrap();
    assert_eq!(alice["lastName"], "Martin-Dupont");
    assert_eq!(
        alice["firstName"], "Alice",
        "a value the file does not give is kept"
    );
    let carol_id = row(&rows, 4)["lucca_id"].as_i64().unwrap();
    let carol = sim.user(carol_id).unwrap();
    assert_eq!(carol["mail"], "carol@acme.test");
    assert_eq!(carol["departmentId"], 15);
    assert_eq!(carol["managerId"], 8);
    assert_eq!(carol["rolePrincipalId"], 55);
    let today = chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(carol["dtContractStart"], format!("{today}T00:00:00"));
    // Each write was re-checked by a look-up just before it, at batch priority.
    let requests = sim.requests();
    let posts: Vec<_> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "Carol, and Dan's refused creation");
    for (i, _) in &posts {
        assert_eq!(requests[i - 1].method, "GET");
        assert!(requests[i - 1].query_param("mail").is_some());
    }
    assert_eq!(writes(&sim).iter().filter(|r| r.method == "PUT").count(), 1);

    // Links: subject → Lucca id.
    let store = &server.state().store;
    assert_eq!(
        store
            .lucca_links()
            .get("carol@acme.test")
            .await
            .unwrap()
            .unwrap()
            .lucca_id,
        carol_id
    );
    assert_eq!(
        store
            .lucca_links()
            .get("alice@acme.test")
            .await
            .unwrap()
            .unwrap()
            .lucca_id,
        2
    );
    let david = store
        .lucca_links()
        .get("david.petit@acme.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((david.lucca_id, david.status.as_str()), (4, "ended"));
    assert!(store
        .lucca_links()
        .get("sam.roux@acme.test")
        .await
        .unwrap()
        .is_none());

    // One email per migrated person: Bob (ready), Alice (updated), Carol (created).
    let messages = inbox.lock().unwrap().clone();
    assert_eq!(messages.len(), 3, "{messages:?}");
    let to_carol = messages
        .iter()
        .find(|m| m.contains("To: carol@acme.test"))
        .unwrap();
    assert!(to_carol.contains("Subject: Sign in to Lucca with your company account"));
    assert!(to_carol.contains("Hello Carol,"), "{to_carol}");
    assert_eq!(row(&rows, 4)["notification"], "sent");

    // The same file again: nothing left to change.
    sim.clear_requests();
    let again = submit(&server.base, "", EVERY_CLASS).await;
    wait_finished(&server.base, &again).await;
    let rows = report(&server.base, &again).await;
    let got = classes(&rows);
    for line in [2, 3, 4] {
        assert_eq!(got[&line], "ready", "line {line}: {}", row(&rows, line));
    }
    assert_eq!(got[&12], "failed", "still refused, still reported");
    let succeeded: Vec<_> = writes(&sim)
        .into_iter()
        .filter(|r| r.status.is_some_and(|s| s < 300))
        .collect();
    assert!(succeeded.is_empty(), "{succeeded:?}");
    assert_eq!(inbox.lock().unwrap().len(), 3, "no email without notify");
}

#[tokio::test]
async fn cancelling_stops_the_writes_and_keeps_what_is_done() {
    let sim = lucca_simulator().await;
    sim.set_latency(Duration::from_millis(150));
    let mut csv = String::from("email,given_name,family_name\n");
    let server = start(|c| {
        lucca_config(c, &sim);
        for i in 0..20 {
            let email = format!("new{i}@acme.test");
            csv.push_str(&format!("{email},New,Person{i}\n"));
            c.directory.users.push(directory_user(&email));
        }
    })
    .await;
    let id = submit(&server.base, "", &csv).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while writes(&sim).is_empty() {
        assert!(Instant::now() < deadline, "no write started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = job_status(&server.base, &id).await;
    assert_eq!(running["status"], "running", "{running}");
    let eta = &running["eta"];
    assert!(eta["requests_left"].as_u64().unwrap() >= 2, "{running}");
    assert_eq!(eta["requests_per_minute"], 6000);

    let r = http()
        .delete(format!("{}/admin/migrations/{id}", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    // At most the write in flight lands after the cancellation.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = writes(&sim).len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(writes(&sim).len(), after, "writes go on after cancel");
    assert!(after < 20, "{after}");

    let rows = report(&server.base, &id).await;
    let done = rows.iter().filter(|r| r["done"] == true).count();
    assert!((1..20).contains(&done), "{done}");
    let undone = rows.iter().find(|r| r["done"] == false).unwrap();
    assert_eq!(undone["class"], "will_create");
    assert!(undone["message"].as_str().unwrap().contains("cancelled"));
    let r = http()
        .post(format!("{}/admin/migrations/{id}/cancel", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_line_and_the_problem() {
    let server = start(|c| {
        c.migrations.max_upload_bytes = 2000;
        c.migrations.max_rows = 10;
    })
    .await;
    let base = &server.base;
    let unauthenticated = http()
        .post(format!("{base}/admin/migrations"))
        .header("content-type", "text/csv")
        .body("email\nalice@acme.test\n")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let r = http()
        .get(format!("{base}/admin/migrations/x"))
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let refused = [
        (
            "text/csv",
            "mail_address,name\nx@acme.test,X\n".to_string(),
            "line 1: no `email` column",
        ),
        (
            "text/csv",
            "email,given_name\na@acme.test,A\nb@acme.test,B,oops\n".into(),
            "line 3: 3 fields where the header has 2",
        ),
        (
            "application/json",
            "[{\"email\": }]".into(),
            "line 1, column 12: not valid JSON",
        ),
        (
            "text/csv",
            format!("email\n{}", "a".repeat(2100)),
            "larger than migrations.max_upload_bytes",
        ),
        (
            "text/csv",
            std::iter::once("email\n".to_string())
                .chain((0..11).map(|i| format!("p{i}@acme.test\n")))
                .collect(),
            "line 12: more than 10 people (migrations.max_rows)",
        ),
        ("text/csv", "email\n".into(), "no people"),
        (
            "multipart/form-data; boundary=x",
            "--x".into(),
            "unsupported Content-Type",
        ),
    ];
    for (content_type, body, expected) in refused {
        let (status, answer) = upload(base, "", content_type, &body).await;
        assert_eq!(status, 400, "{expected}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
    }
    let (status, answer) = upload(base, "?dry_run=maybe", "text/csv", "email\na@acme.test\n").await;
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (400, "dry_run=`maybe`: use true or false")
    );
    let (status, answer) = upload(base, "?notify=true", "text/csv", "email\na@acme.test\n").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("[smtp]"));

    let r = http()
        .get(format!("{base}/admin/migrations/nope"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Accepted, but without Lucca the job fails with a message saying what to set.
    let id = submit(base, "?dry_run=true", "email\nalice@acme.test\n").await;
    let view = wait_finished(base, &id).await;
    assert_eq!(view["status"], "failed");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .starts_with("lucca.base_url is not configured"),
        "{view}"
    );
    let list: Value = http()
        .get(format!("{base}/admin/migrations"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"][0]["id"], id.as_str());
}

/// `passerelle migrate FILE --dry-run` against `server`, run from its data directory with no
/// PASSERELLE_* overrides of the test's environment.
async fn migrate_dry_run(server: &TestServer, file: &std::path::Path) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_passerelle"));
    for var in passerelle::config::ENV_OVERRIDES {
        command.env_remove(var);
    }
    command
        .arg("migrate")
        .arg(file)
        .args(["--dry-run", "--url", &server.base])
        .env("PASSERELLE_ADMIN_TOKEN", ADMIN_TOKEN)
        .current_dir(server.dir.path())
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cli_runs_a_dry_run_and_writes_the_report_next_to_the_file() {
    let sim = lucca_simulator().await;
    let server = start(|c| lucca_config(c, &sim)).await;
    let file = server.dir.path().join("people.csv");
    std::fs::write(
        &file,
        "email,family_name\nbob@acme.test,Durand\nalice@acme.test,Other\n",
    )
    .unwrap();
    let out = migrate_dry_run(&server, &file).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("done: ready 1, will_update 1"), "{stdout}");
    let report = std::fs::read_to_string(server.dir.path().join("people.csv.report.csv")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "row,email,class,fields,lucca_id,message,findings,changes",
            "2,bob@acme.test,ready,,1,,ready,"
        ],
        "{report}"
    );
    // The value before (Lucca's) and after (the file's), as the JSON report has them.
    assert!(
        lines[2]
            .starts_with("3,alice@acme.test,will_update,family_name,2,,will_update,family_name: ")
            && lines[2].ends_with(" → Other")
            && !lines[2].contains("(none)"),
        "{report}"
    );
    assert_eq!(lines.len(), 3, "{report}");
    #[cfg(unix)]
    {
        // People's data: private to the user who ran the migration (umask 0077).
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(server.dir.path().join("people.csv.report.csv")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    assert!(writes(&sim).is_empty());

    // A second run keeps the first report and writes its own beside it.
    let out = migrate_dry_run(&server, &file).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("people.csv.report-2.csv"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(server.dir.path().join("people.csv.report.csv")).unwrap(),
        report,
        "the first report is kept"
    );
    assert!(server.dir.path().join("people.csv.report-2.csv").exists());
}

/// A `passerelle serve` child process, SIGKILLed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve(config: &std::path::Path) -> (Child, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"));
    for var in passerelle::config::ENV_OVERRIDES {
        command.env_remove(var);
    }
    let child = command
        .args(["serve", "--config"])
        .arg(config)
        .env("PASSERELLE_LISTEN", format!("127.0.0.1:{port}"))
        .env("PASSERELLE_PUBLIC_URL", &base)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Child(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http().get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return (child, base);
            }
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_killed_server_resumes_the_job_without_writing_twice() {
    const PEOPLE: usize = 24;
    let sim = lucca_simulator().await;
    sim.set_latency(Duration::from_millis(60));
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        r#"
[server]
data_dir = "{dir}/data"
keys_dir = "{dir}/keys"
[admin]
token = "{ADMIN_TOKEN}"
[lucca]
base_url = "{lucca}"
api_key = "{key}"
requests_per_minute = 6000
[lucca.defaults]
legal_entity_id = 1
role_principal_id = 55
culture_id = 1036
department_id = 13
"#,
        dir = dir.path().display(),
        lucca = sim.base_url(),
        key = sim.api_key(),
    );
    let mut csv = String::from("email,given_name,family_name,manager_email\n");
    for i in 0..PEOPLE {
        let email = format!("hire{i}@acme.test");
        toml.push_str(&format!(
            "[[directory.users]]\nemail = \"{email}\"\npassword_hash = \"{HASH}\"\n"
        ));
        // The first hire manages the others: created first, then set on each of them.
        let manager = if i == 0 {
            String::new()
        } else {
            "hire0@acme.test".into()
        };
        csv.push_str(&format!("{email},Hire,Number{i},{manager}\n"));
    }
    let config = dir.path().join("passerelle.toml");
    std::fs::write(&config, toml).unwrap();
    let created = |sim: &SimulatorHandle| {
        writes(sim)
            .iter()
            .filter(|r| r.method == "POST" && r.status == Some(200))
            .count()
    };

    let (first, base) = serve(&config).await;
    let id = submit(&base, "", &csv).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while created(&sim) < 5 {
        assert!(Instant::now() < deadline, "the job did not start writing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(first); // SIGKILL, mid-job
    let at_kill = created(&sim);
    assert!(at_kill < PEOPLE, "killed too late to prove anything");

    let (_second, base) = serve(&config).await;
    let view = wait_finished(&base, &id).await;
    assert_eq!(view["status"], "done", "{view}");
    assert_eq!(view["counts"]["created"], PEOPLE as i64, "{view}");
    for i in 0..PEOPLE {
        let email = format!("hire{i}@acme.test");
        let accounts = sim
            .users()
            .into_iter()
            .filter(|u| u["mail"] == email.as_str())
            .count();
        assert_eq!(accounts, 1, "{email} has {accounts} accounts");
    }
    assert_eq!(
        created(&sim),
        PEOPLE,
        "one creation per person across both runs"
    );
    let boss = sim
        .users()
        .into_iter()
        .find(|u| u["mail"] == "hire0@acme.test")
        .unwrap();
    let reports = sim
        .users()
        .into_iter()
        .filter(|u| u["managerId"] == boss["id"])
        .count();
    assert_eq!(reports, PEOPLE - 1);
}

/// Two nodes on one PostgreSQL: a migration job running on A is killed mid-way (SIGKILL, so its
/// lease is never given up), B takes it over once the lease expires and finishes it, and each
/// person is created exactly once across both.
#[tokio::test]
async fn a_job_killed_on_one_node_is_finished_by_another_writing_each_person_once() {
    const PEOPLE: usize = 16;
    let Some(url) = crate::common::pg::database().await else {
        return;
    };
    let sim = lucca_simulator().await;
    sim.set_latency(Duration::from_millis(60));
    let dir = tempfile::tempdir().unwrap();
    let mut users = String::new();
    let mut csv = String::from("email,given_name,family_name\n");
    for i in 0..PEOPLE {
        let email = format!("hire{i}@acme.test");
        users.push_str(&format!(
            "[[directory.users]]\nemail = \"{email}\"\npassword_hash = \"{HASH}\"\n"
        ));
        csv.push_str(&format!("{email},Hire,Number{i}\n"));
    }
    let config_of = |node: &str| {
        let toml = format!(
            r#"
[server]
data_dir = "{dir}/{node}/data"
keys_dir = "{dir}/{node}/keys"
[store]
url = "{url}"
lease = "2s"
[keys]
encryption_key = "{kek}"
[admin]
token = "{ADMIN_TOKEN}"
[lucca]
base_url = "{lucca}"
api_key = "{key}"
requests_per_minute = 6000
[lucca.defaults]
legal_entity_id = 1
role_principal_id = 55
culture_id = 1036
department_id = 13
{users}"#,
            dir = dir.path().display(),
            lucca = sim.base_url(),
            key = sim.api_key(),
            kek = crate::common::pg::ENCRYPTION_KEY,
        );
        let path = dir.path().join(format!("{node}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    };
    let (config_a, config_b) = (config_of("a"), config_of("b"));
    let created = |sim: &SimulatorHandle| {
        writes(sim)
            .iter()
            .filter(|r| r.method == "POST" && r.status == Some(200))
            .count()
    };

    let (a, base_a) = serve(&config_a).await;
    let id = submit(&base_a, "", &csv).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while created(&sim) < 3 {
        assert!(
            Instant::now() < deadline,
            "the job did not start writing on A"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(a); // SIGKILL, mid-job
    let at_kill = created(&sim);
    assert!(at_kill < PEOPLE, "killed too late to prove anything");

    let (_b, base_b) = serve(&config_b).await;
    let view = wait_finished(&base_b, &id).await;
    assert_eq!(view["status"], "done", "{view}");
    assert_eq!(view["counts"]["created"], PEOPLE as i64, "{view}");
    for i in 0..PEOPLE {
        let email = format!("hire{i}@acme.test");
        let accounts = sim
            .users()
            .into_iter()
            .filter(|u| u["mail"] == email.as_str())
            .count();
        assert_eq!(accounts, 1, "{email} has {accounts} accounts");
    }
    assert_eq!(
        created(&sim),
        PEOPLE,
        "one creation per person across both nodes"
    );
}
