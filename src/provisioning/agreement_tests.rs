//! JIT and a migration decide with one rule set: for the same person, the same Lucca tenant and
//! the same configuration they come to the same verdict and send Lucca the same writes.
//!
//! Each case runs twice over real HTTP, against two simulators seeded alike: once as a sign-in
//! (JIT, then its outbox delivering what it queued), once as a migration job (plan, then apply)
//! whose row carries what the directory says of the person. The verdicts and the requests each
//! simulator received (every one but the reads) are compared.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{json, Map, Value};

use super::migration::{self, Class, MigrationContext, PersonRow, SubmitOptions};
use super::{Denied, Granted, Jit};
use crate::config::{
    ClaimsConfig, Config, DirectoryUser, JitMode, LuccaDefaults, MatchOn, OwnedAttribute, Secret,
};
use crate::identity::map_claims;
use crate::login::Directory;
use crate::login::Live;
use crate::lucca::simulator::{spawn, NamedRef, Seed, SimulatorConfig, SimulatorHandle};
use crate::lucca::LuccaClient;
use crate::store::Store;

/// Any valid argon2 hash: nobody signs in with a password here.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$SFza+HmyeGphmdAuNSXu7g$34SCjBgY7AHiW8zfPw6X6VfjkVG1dca2yTc6CO/GFsk";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Create,
    Update,
    Unchanged,
    Refuse(&'static str),
}

/// One line of the table.
#[derive(Clone)]
struct Case {
    name: &'static str,
    /// The person's accounts in Lucca (none: Lucca does not know them).
    accounts: Vec<Value>,
    /// The person as the directory has them.
    person: DirectoryUser,
    owned: Vec<OwnedAttribute>,
    defaults: LuccaDefaults,
    match_on: MatchOn,
    /// What both must come to, so the table covers what it says it covers.
    expect: Verdict,
    /// Entries the one write must carry (`null`: must not carry); for an update, exactly its body.
    written: Value,
}

/// Alice as the directory has her.
fn alice() -> DirectoryUser {
    DirectoryUser {
        email: "alice@acme.test".into(),
        login: Some("amartin".into()),
        password_hash: Some(HASH.into()),
        given_name: Some("Alice".into()),
        family_name: Some("Martin".into()),
        employee_number: Some("00042".into()),
        department: Some("Engineering".into()),
        manager_email: Some("bob@acme.test".into()),
        job_title: Some("Software Engineer".into()),
        ..Default::default()
    }
}

/// Alice's Lucca account, carrying the same values.
fn account() -> Value {
    json!({
        "id": 2, "login": "amartin", "mail": "alice@acme.test", "firstName": "Alice",
        "lastName": "Martin", "employeeNumber": "00042", "jobTitle": "Software Engineer",
        "dtContractStart": "2019-09-02T00:00:00", "dtContractEnd": null, "departmentId": 13,
        "managerId": 1, "legalEntityId": 1, "rolePrincipalId": 55, "cultureID": 1036
    })
}

/// Her account with every owned attribute different.
fn stale() -> Value {
    let mut a = account();
    a["firstName"] = json!("Alicia");
    a["lastName"] = json!("Martin-Old");
    a["employeeNumber"] = json!("00041");
    a["jobTitle"] = json!("Intern");
    a["departmentId"] = json!(15);
    a["managerId"] = json!(8);
    a
}

/// What Alice's account gets when every owned attribute is brought back.
fn every_field() -> Value {
    json!({
        "firstName": "Alice", "lastName": "Martin", "employeeNumber": "00042",
        "jobTitle": "Software Engineer", "departmentId": 13, "managerId": 1
    })
}

/// The managers she may name: Bob and Farid (active), David (left), Emma (starts in 2030),
/// and two Sam accounts sharing one email.
fn colleagues() -> Vec<Value> {
    let user = |id: i64, login: &str, mail: &str, start: &str, end: Value| {
        json!({
            "id": id, "login": login, "mail": mail, "firstName": login, "lastName": "Colleague",
            "employeeNumber": format!("9{id:04}"), "dtContractStart": start, "dtContractEnd": end,
            "departmentId": 14, "managerId": null, "legalEntityId": 1, "rolePrincipalId": 55,
            "cultureID": 1036
        })
    };
    vec![
        user(
            1,
            "bdurand",
            "bob@acme.test",
            "2015-03-02T00:00:00",
            Value::Null,
        ),
        user(
            8,
            "fhaddad",
            "farid@acme.test",
            "2014-09-01T00:00:00",
            Value::Null,
        ),
        user(
            4,
            "dpetit",
            "david@acme.test",
            "2016-05-02T00:00:00",
            json!("2022-12-31T00:00:00"),
        ),
        user(
            5,
            "eleroy",
            "emma@acme.test",
            "2030-09-02T00:00:00",
            Value::Null,
        ),
        user(
            6,
            "sroux",
            "sam@acme.test",
            "2020-02-03T00:00:00",
            Value::Null,
        ),
        user(
            7,
            "sroux2",
            "sam@acme.test",
            "2023-04-03T00:00:00",
            Value::Null,
        ),
    ]
}

fn seed(accounts: &[Value]) -> Seed {
    let named = |id: i64, name: &str| NamedRef {
        id,
        name: name.into(),
    };
    Seed {
        legal_entities: vec![named(1, "Acme SAS")],
        archived_legal_entities: Vec::new(),
        roles: vec![named(55, "User")],
        departments: vec![
            named(13, "Engineering"),
            named(14, "Human Resources"),
            named(15, "Sales"),
            named(16, "Support"),
            named(17, "support "),
        ],
        users: colleagues()
            .into_iter()
            .chain(accounts.iter().cloned())
            .filter_map(|u| match u {
                Value::Object(map) => Some(map),
                _ => None,
            })
            .collect::<Vec<Map<String, Value>>>(),
    }
}

fn defaults() -> LuccaDefaults {
    LuccaDefaults {
        legal_entity_id: Some(1),
        role_principal_id: Some(55),
        culture_id: Some(1036),
        department_id: Some(14),
    }
}

/// Alice, known to Lucca with the same values, every attribute owned: nothing to do.
fn case(name: &'static str, expect: Verdict) -> Case {
    Case {
        name,
        accounts: vec![account()],
        person: alice(),
        owned: OwnedAttribute::ALL.to_vec(),
        defaults: defaults(),
        match_on: MatchOn::Email,
        expect,
        written: Value::Null,
    }
}

impl Case {
    fn accounts(mut self, accounts: Vec<Value>) -> Case {
        self.accounts = accounts;
        self
    }
    fn person(mut self, change: impl FnOnce(&mut DirectoryUser)) -> Case {
        change(&mut self.person);
        self
    }
    fn owning(mut self, owned: &[OwnedAttribute]) -> Case {
        self.owned = owned.to_vec();
        self
    }
    fn defaults(mut self, change: impl FnOnce(&mut LuccaDefaults)) -> Case {
        change(&mut self.defaults);
        self
    }
    fn matching_on(mut self, match_on: MatchOn) -> Case {
        self.match_on = match_on;
        self
    }
    fn writes(mut self, written: Value) -> Case {
        self.written = written;
        self
    }
}

fn table() -> Vec<Case> {
    use OwnedAttribute::*;
    use Verdict::*;
    let account_with = |change: fn(&mut Value)| {
        let mut a = account();
        change(&mut a);
        vec![a]
    };
    let mut other_account = account();
    other_account["id"] = json!(9);
    other_account["login"] = json!("amartin-2");
    other_account["employeeNumber"] = json!("00043");
    vec![
        // Lucca user states.
        case("the same values", Unchanged),
        case("every owned attribute differs", Update)
            .accounts(vec![stale()])
            .writes(every_field()),
        case("a leaver", Refuse("leaver")).accounts(account_with(|a| {
            a["dtContractEnd"] = json!("2024-01-31T00:00:00")
        })),
        case("a leaver whose values differ", Refuse("leaver")).accounts({
            let mut a = stale();
            a["dtContractEnd"] = json!("2024-01-31T00:00:00");
            vec![a]
        }),
        case("a future hire", Refuse("not_started")).accounts(account_with(|a| {
            a["dtContractStart"] = json!("2030-09-02T00:00:00")
        })),
        case("two accounts share the email", Refuse("duplicate"))
            .accounts(vec![account(), other_account]),
        case("unknown to Lucca", Create).accounts(vec![]).writes(
            json!({"login": "amartin", "mail": "alice@acme.test", "departmentId": 13,
                "managerId": 1, "employeeNumber": "00042", "jobTitle": "Software Engineer"}),
        ),
        // lucca.owned_attributes.
        case("names owned only", Update)
            .accounts(vec![stale()])
            .owning(&[FirstName, LastName])
            .writes(json!({"firstName": "Alice", "lastName": "Martin"})),
        case("job title owned only", Update)
            .accounts(vec![stale()])
            .owning(&[JobTitle])
            .writes(json!({"jobTitle": "Software Engineer"})),
        case("department and manager owned only", Update)
            .accounts(vec![stale()])
            .owning(&[Department, Manager])
            .writes(json!({"departmentId": 13, "managerId": 1})),
        case("employee number owned only", Update)
            .accounts(vec![stale()])
            .owning(&[EmployeeNumber])
            .writes(json!({"employeeNumber": "00042"})),
        case("nothing owned", Unchanged)
            .accounts(vec![stale()])
            .owning(&[]),
        case("names differ but only the department is owned", Unchanged)
            .accounts(account_with(|a| a["firstName"] = json!("Alicia")))
            .owning(&[Department]),
        case("created with nothing owned", Create)
            .accounts(vec![])
            .owning(&[])
            .writes(json!({"firstName": "Alice", "employeeNumber": null, "jobTitle": null})),
        // The job title.
        case("only the job title differs", Update)
            .accounts(account_with(|a| a["jobTitle"] = json!("Intern")))
            .writes(json!({"jobTitle": "Software Engineer"})),
        case("no job title in the directory", Unchanged)
            .accounts(account_with(|a| a["jobTitle"] = json!("Intern")))
            .person(|p| p.job_title = None),
        // The manager.
        case("the manager left", Unchanged)
            .person(|p| p.manager_email = Some("david@acme.test".into())),
        case("the manager has not started", Unchanged)
            .person(|p| p.manager_email = Some("emma@acme.test".into())),
        case("two accounts have the manager's email", Unchanged)
            .person(|p| p.manager_email = Some("sam@acme.test".into())),
        case("the manager is unknown", Unchanged)
            .person(|p| p.manager_email = Some("nobody@acme.test".into())),
        case("another active manager", Update)
            .person(|p| p.manager_email = Some("farid@acme.test".into()))
            .writes(json!({"managerId": 8})),
        case("created under a manager who left", Create)
            .accounts(vec![])
            .person(|p| p.manager_email = Some("david@acme.test".into()))
            .writes(json!({"managerId": null})),
        // The department.
        case("the department is unknown", Unchanged)
            .person(|p| p.department = Some("Marketing".into())),
        case("two departments have the name", Unchanged)
            .person(|p| p.department = Some("Support".into())),
        case("another department, in other case", Update)
            .person(|p| p.department = Some(" sales".into()))
            .writes(json!({"departmentId": 15})),
        case("created in an unknown department: the default", Create)
            .accounts(vec![])
            .person(|p| p.department = Some("Marketing".into()))
            .writes(json!({"departmentId": 14})),
        case("created without a department: the default", Create)
            .accounts(vec![])
            .person(|p| p.department = None)
            .writes(json!({"departmentId": 14})),
        case(
            "created in an unknown department, no default",
            Refuse("cannot_create"),
        )
        .accounts(vec![])
        .person(|p| p.department = Some("Marketing".into()))
        .defaults(|d| d.department_id = None),
        // What a creation needs.
        case("created without a family name", Refuse("cannot_create"))
            .accounts(vec![])
            .person(|p| p.family_name = None),
        case("created without a legal entity", Refuse("cannot_create"))
            .accounts(vec![])
            .defaults(|d| d.legal_entity_id = None),
        // lucca.match_on = "login".
        case("found by login, values differ", Update)
            .accounts(vec![stale()])
            .matching_on(MatchOn::Login)
            .writes(every_field()),
        case("unknown login", Create)
            .accounts(vec![])
            .matching_on(MatchOn::Login)
            .writes(json!({"login": "amartin"})),
        case("a leaver, by login", Refuse("leaver"))
            .accounts(account_with(|a| {
                a["dtContractEnd"] = json!("2024-01-31T00:00:00")
            }))
            .matching_on(MatchOn::Login),
    ]
}

fn config(sim: &SimulatorHandle, case: &Case) -> Config {
    let mut c = Config::default();
    c.lucca.base_url = Some(sim.base_url().into());
    c.lucca.api_key = Some(Secret::new(sim.api_key()));
    c.lucca.requests_per_minute = 6000;
    c.lucca.jit = JitMode::CreateAndUpdate;
    c.lucca.match_on = case.match_on;
    c.lucca.owned_attributes = case.owned.clone();
    c.lucca.defaults = case.defaults.clone();
    c.directory.users = vec![case.person.clone()];
    c
}

async fn simulator(case: &Case) -> SimulatorHandle {
    spawn(SimulatorConfig {
        requests_per_minute: None,
        seed: Some(seed(&case.accounts)),
        ..Default::default()
    })
    .await
    .expect("simulator")
}

/// Every request but the reads, as (method, path, body).
fn writes(sim: &SimulatorHandle) -> Vec<(String, String, Value)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path, r.body.unwrap_or(Value::Null)))
        .collect()
}

/// The person signs in: JIT decides, then its outbox delivers what it queued.
async fn through_jit(case: &Case) -> (Verdict, Vec<(String, String, Value)>) {
    let sim = simulator(case).await;
    let config = config(&sim, case);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let client = LuccaClient::from_config(&config.lucca).unwrap().unwrap();
    let jit = Jit::new(client, store, &config.lucca);
    let identity = Directory::new(&config.directory.users)
        .unwrap()
        .by_name(&case.person.email)
        .unwrap();
    let claims = map_claims(&identity, &[], &ClaimsConfig::default()).claims;
    let granted = jit.at_sign_in(&claims).await;
    jit.deliver_due(crate::store::now() + 1).await.unwrap();
    let writes = writes(&sim);
    let verdict = match granted {
        Ok(Granted::Created { .. }) => Verdict::Create,
        // Queued, but once department and manager are resolved nothing may be left to send.
        Ok(Granted::UpdateQueued { .. }) if !writes.is_empty() => Verdict::Update,
        Ok(Granted::UpdateQueued { .. } | Granted::Unchanged { .. }) => Verdict::Unchanged,
        Err(Denied::ContractEnded { .. }) => Verdict::Refuse("leaver"),
        Err(Denied::ContractNotStarted { .. }) => Verdict::Refuse("not_started"),
        Err(Denied::SeveralAccounts { .. }) => Verdict::Refuse("duplicate"),
        Err(Denied::Failed(_)) => Verdict::Refuse("cannot_create"),
        other => panic!("{}: JIT gave {other:?}", case.name),
    };
    (verdict, writes)
}

/// The person is a row of a migration: planned, then applied.
async fn through_migration(case: &Case) -> (Verdict, Vec<(String, String, Value)>, Vec<String>) {
    let sim = simulator(case).await;
    let config = config(&sim, case);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let live = Live {
        directory: Arc::new(Directory::new(&config.directory.users).unwrap()),
        role_mapping: Vec::new(),
        claims: ClaimsConfig::default(),
    };
    let ctx = MigrationContext::new(
        &config,
        store,
        Arc::new(ArcSwap::from_pointee(live)),
        "http://passerelle.test".into(),
        LuccaClient::from_config(&config.lucca).unwrap(),
    )
    .unwrap();
    let p = &case.person;
    let row = PersonRow {
        email: p.email.clone(),
        login: p.login.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        department: p.department.clone(),
        manager_email: p.manager_email.clone(),
        employee_number: p.employee_number.clone(),
        job_title: p.job_title.clone(),
    };
    let body = serde_json::to_vec(&[row]).unwrap();
    let run = |dry_run: bool| {
        let (ctx, body) = (&ctx, &body);
        async move {
            let options = SubmitOptions {
                dry_run,
                notify: Some(false),
            };
            let accepted = migration::submit(ctx, Some("application/json"), body, options)
                .await
                .unwrap();
            migration::worker::run_queued(ctx).await;
            let (job, mut rows) = migration::report(ctx, &accepted.id).await.unwrap();
            assert_eq!(job.status, "done", "{}: {job:?}", case.name);
            let row = rows.remove(0);
            (row.class.expect("a class"), row.fields)
        }
    };
    // The dry run an admin reads first says what the apply then does.
    let (planned, planned_fields) = run(true).await;
    let (class, fields) = run(false).await;
    let verdict = |class: Class| match class {
        Class::Created | Class::WillCreate => Verdict::Create,
        Class::Updated | Class::WillUpdate => Verdict::Update,
        Class::Ready => Verdict::Unchanged,
        Class::InvalidRow | Class::Failed => Verdict::Refuse("cannot_create"),
        other => Verdict::Refuse(other.as_str()),
    };
    assert_eq!(verdict(planned), verdict(class), "{}: dry run", case.name);
    assert_eq!(planned_fields, fields, "{}: dry run", case.name);
    (verdict(class), writes(&sim), fields)
}

/// The report's name for each field of an update body.
fn report_field(body_key: &str) -> &str {
    match body_key {
        "firstName" => "given_name",
        "lastName" => "family_name",
        "employeeNumber" => "employee_number",
        "jobTitle" => "job_title",
        "departmentId" => "department",
        "managerId" => "manager",
        other => other,
    }
}

#[tokio::test]
async fn jit_and_a_migration_agree_on_every_case() {
    let table = table();
    for case in &table {
        let (jit, jit_writes) = through_jit(case).await;
        let (migration, migration_writes, fields) = through_migration(case).await;
        let name = case.name;
        assert_eq!(jit, case.expect, "{name}: JIT");
        assert_eq!(migration, case.expect, "{name}: the migration");
        assert_eq!(jit_writes, migration_writes, "{name}: the same writes");

        let bodies: Vec<&Value> = jit_writes.iter().map(|(_, _, body)| body).collect();
        match &case.expect {
            Verdict::Create => {
                let [(method, _, body)] = jit_writes.as_slice() else {
                    panic!("{name}: one creation, not {jit_writes:?}")
                };
                assert_eq!(method, "POST", "{name}");
                for (key, value) in case.written.as_object().into_iter().flatten() {
                    let sent = body.get(key).unwrap_or(&Value::Null);
                    assert_eq!(sent, value, "{name}: {key} in {body}");
                }
            }
            Verdict::Update => {
                assert_eq!(bodies, [&case.written], "{name}");
                let mut expected: Vec<&str> = case
                    .written
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| report_field(k))
                    .collect();
                let mut reported: Vec<&str> = fields.iter().map(String::as_str).collect();
                expected.sort_unstable();
                reported.sort_unstable();
                assert_eq!(
                    reported, expected,
                    "{name}: the report names what is written"
                );
            }
            Verdict::Unchanged | Verdict::Refuse(_) => {
                assert!(bodies.is_empty(), "{name}: nothing written, not {bodies:?}")
            }
        }
    }
}
