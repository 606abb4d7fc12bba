//! The batch migration against a simulated tenant of 10,000 people.
//!
//! 1. A dry run of all 10,000 at Lucca's real budget (50 requests/minute, 60 s window): Lucca
//!    is read in bulk, so it must take about 11 requests (10 pages of 1000 and the department
//!    list) and finish in well under a minute.
//! 2. An apply where N people need a write (N/2 creations, N/2 updates) against a simulator
//!    with no rate limit: it must make exactly N writes, plus the bulk reads and one re-check
//!    per write. The time it would take at 50 requests/minute is projected from the counts.
//!
//! `cargo run --release --example migration_bench [-- PEOPLE [N]]`

use std::time::{Duration, Instant};

use passerelle::app::{build_state, start_on, StartOptions};
use passerelle::config::{Config, DirectoryUser, Secret};
use passerelle::lucca::simulator::{self, NamedRef, Seed, SimulatorConfig, SimulatorHandle};
use serde_json::{json, Map, Value};

const ADMIN: &str = "bench-admin-token-0123456789";
/// Any valid argon2 hash: the directory only needs to list people, nobody signs in.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$SFza+HmyeGphmdAuNSXu7g$34SCjBgY7AHiW8zfPw6X6VfjkVG1dca2yTc6CO/GFsk";

fn seed(people: usize) -> Seed {
    let users = (1..=people)
        .map(|i| {
            let Value::Object(map) = json!({
                "id": i, "login": format!("p{i}"), "mail": format!("p{i}@bench.test"),
                "firstName": "Person", "lastName": format!("Number{i}"),
                "employeeNumber": format!("{i:06}"), "dtContractStart": "2020-01-01T00:00:00",
                "dtContractEnd": null, "departmentId": 13, "managerId": null,
                "legalEntityId": 1, "rolePrincipalId": 55, "cultureID": 1036,
            }) else {
                unreachable!()
            };
            map
        })
        .collect::<Vec<Map<String, Value>>>();
    Seed {
        legal_entities: vec![NamedRef {
            id: 1,
            name: "Bench SAS".into(),
        }],
        archived_legal_entities: Vec::new(),
        roles: vec![NamedRef {
            id: 55,
            name: "User".into(),
        }],
        departments: vec![NamedRef {
            id: 13,
            name: "Engineering".into(),
        }],
        users,
    }
}

/// The company's file: everyone as Lucca has them, except `updates` renamed people and
/// `creates` newcomers.
fn csv(people: usize, updates: usize, creates: usize) -> String {
    let mut out = String::from("email,given_name,family_name,department\n");
    for i in 1..=people {
        let family = if i <= updates {
            format!("Renamed{i}")
        } else {
            format!("Number{i}")
        };
        out.push_str(&format!("p{i}@bench.test,Person,{family},Engineering\n"));
    }
    for j in 1..=creates {
        out.push_str(&format!("new{j}@bench.test,New,Comer{j},Engineering\n"));
    }
    out
}

async fn server(
    sim: &SimulatorHandle,
    people: usize,
    creates: usize,
    rpm: u32,
) -> (String, passerelle::app::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut c = Config::default();
    c.server.public_url = base.clone();
    c.server.data_dir = dir.path().join("data");
    c.server.keys_dir = dir.path().join("keys");
    c.admin.token = Some(Secret::new(ADMIN));
    c.lucca.base_url = Some(sim.base_url().into());
    c.lucca.api_key = Some(Secret::new(sim.api_key()));
    c.lucca.requests_per_minute = rpm;
    c.lucca.defaults.legal_entity_id = Some(1);
    c.lucca.defaults.role_principal_id = Some(55);
    c.lucca.defaults.culture_id = Some(1036);
    c.lucca.defaults.department_id = Some(13);
    c.directory.users = (1..=people)
        .map(|i| format!("p{i}@bench.test"))
        .chain((1..=creates).map(|j| format!("new{j}@bench.test")))
        .map(|email| DirectoryUser {
            email,
            password_hash: Some(HASH.into()),
            ..Default::default()
        })
        .collect();
    let state = build_state(c, &StartOptions::default())
        .await
        .expect("state");
    let running = start_on(state, listener).await.expect("server");
    (base, running, dir)
}

struct Figures {
    seconds: f64,
    reads: usize,
    writes: usize,
    counts: Value,
}

async fn migrate(base: &str, sim: &SimulatorHandle, body: String, dry_run: bool) -> Figures {
    let http = reqwest::Client::new();
    sim.clear_requests();
    let started = Instant::now();
    let url = format!(
        "{base}/admin/migrations{}",
        if dry_run { "?dry_run=true" } else { "" }
    );
    let accepted: Value = http
        .post(url)
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let id = accepted["id"].as_str().expect("job id").to_string();
    let view = loop {
        let view: Value = http
            .get(format!("{base}/admin/migrations/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if matches!(
            view["status"].as_str(),
            Some("done" | "failed" | "cancelled")
        ) {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["status"], "done", "{view}");
    let requests = sim.requests();
    Figures {
        seconds: started.elapsed().as_secs_f64(),
        reads: requests.iter().filter(|r| r.method == "GET").count(),
        writes: requests.iter().filter(|r| r.method != "GET").count(),
        counts: view["counts"].clone(),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let people: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);

    println!("dry run: {people} people, simulator at 50 requests / 60 s");
    let sim = simulator::spawn(SimulatorConfig {
        seed: Some(seed(people)),
        ..Default::default()
    })
    .await
    .expect("simulator");
    let (base, running, _dir) = server(&sim, people, 0, 50).await;
    let dry = migrate(&base, &sim, csv(people, 10, 0), true).await;
    println!(
        "  reads {}  writes {}  seconds {:.2}  counts {}",
        dry.reads, dry.writes, dry.seconds, dry.counts
    );
    assert!(dry.reads <= 12, "bulk reads only: {}", dry.reads);
    assert_eq!(dry.writes, 0, "a dry run writes nothing");
    running.stop().await;

    let updates = n / 2;
    let creates = n - updates;
    println!("apply: {people} people, {n} writes needed ({creates} creations, {updates} updates), simulator unlimited");
    let sim = simulator::spawn(SimulatorConfig {
        seed: Some(seed(people)),
        requests_per_minute: None,
        ..Default::default()
    })
    .await
    .expect("simulator");
    let (base, running, _dir2) = server(&sim, people, creates, 100_000).await;
    let apply = migrate(&base, &sim, csv(people, updates, creates), false).await;
    let projected = (apply.reads + apply.writes) as f64 * 60.0 / 50.0;
    println!(
        "  reads {}  writes {}  seconds {:.2}  counts {}",
        apply.reads, apply.writes, apply.seconds, apply.counts
    );
    println!(
        "  at 50 requests/minute: {} requests => about {:.0} s ({:.1} min)",
        apply.reads + apply.writes,
        projected,
        projected / 60.0
    );
    assert_eq!(apply.writes, n, "one write per person who needs one");
    running.stop().await;
}
