//! The decision for one person, as a pure function of the row, what the local directory knows
//! of them, and a snapshot of Lucca's users read in bulk. No I/O here: the worker reads Lucca,
//! calls [`classify`], and writes only what the returned [`Plan`] says.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::model::{Class, FieldChange, PersonRow};
use crate::config::{LuccaDefaults, MatchOn};
use crate::identity::Identity;
use crate::lucca::{ContractStatus, Department, LuccaUser, NewUser, UserChanges};

/// The projection read in bulk: what matching, contract checks and owned-field comparison
/// need, and nothing more (Lucca computes every extra field for every one of thousands of
/// people).
pub const BULK_FIELDS: &str = "id,login,mail,firstName,lastName,employeeNumber,dtContractStart,\
dtContractEnd,departmentId,department[id,name],managerId,manager[id,name,mail]";

/// Lucca's users by id, email and login (both case-insensitive, as Lucca matches them).
#[derive(Debug, Clone, Default)]
pub struct LuccaIndex {
    users: HashMap<i64, LuccaUser>,
    by_mail: HashMap<String, Vec<i64>>,
    by_login: HashMap<String, Vec<i64>>,
    /// Ids given to accounts a plan will create (negative, never sent to Lucca).
    next_planned: i64,
}

fn key(text: &str) -> String {
    text.trim().to_lowercase()
}

impl LuccaIndex {
    pub fn new(users: Vec<LuccaUser>) -> LuccaIndex {
        let mut index = LuccaIndex {
            next_planned: -1,
            ..Default::default()
        };
        for user in users {
            index.upsert(user);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn lookup(&self, ids: Option<&Vec<i64>>) -> Vec<&LuccaUser> {
        let mut found: Vec<&LuccaUser> = ids
            .into_iter()
            .flatten()
            .filter_map(|id| self.users.get(id))
            .collect();
        found.sort_by_key(|u| u.id);
        found
    }

    pub fn with_mail(&self, mail: &str) -> Vec<&LuccaUser> {
        self.lookup(self.by_mail.get(&key(mail)))
    }

    pub fn with_login(&self, login: &str) -> Vec<&LuccaUser> {
        self.lookup(self.by_login.get(&key(login)))
    }

    /// Add or replace one account (after a write, or a fresh lookup).
    pub fn upsert(&mut self, user: LuccaUser) {
        self.remove(user.id);
        if let Some(mail) = user.mail.as_deref().filter(|m| !m.trim().is_empty()) {
            self.by_mail.entry(key(mail)).or_default().push(user.id);
        }
        if let Some(login) = user.login.as_deref().filter(|l| !l.trim().is_empty()) {
            self.by_login.entry(key(login)).or_default().push(user.id);
        }
        self.users.insert(user.id, user);
    }

    fn remove(&mut self, id: i64) {
        if let Some(old) = self.users.remove(&id) {
            for (map, value) in [
                (&mut self.by_mail, old.mail),
                (&mut self.by_login, old.login),
            ] {
                if let Some(ids) = value.and_then(|v| map.get_mut(&key(&v))) {
                    ids.retain(|i| *i != id);
                }
            }
        }
    }

    /// Replace what is known under an identifier with a fresh answer from Lucca (the re-check
    /// before a write), dropping accounts that no longer carry it.
    pub fn refresh(&mut self, match_on: MatchOn, value: &str, fresh: Vec<LuccaUser>) {
        let stale: Vec<i64> = match match_on {
            MatchOn::Email => self.with_mail(value),
            MatchOn::Login => self.with_login(value),
        }
        .iter()
        .map(|u| u.id)
        .filter(|id| !fresh.iter().any(|f| f.id == *id))
        .collect();
        for id in stale {
            self.remove(id);
        }
        for user in fresh {
            self.upsert(user);
        }
    }

    /// Pretend a planned creation happened, so the rows after it (the people this person
    /// manages) are planned against it. Returns the placeholder's (negative) id.
    pub fn plan_creation(&mut self, user: &NewUser) -> i64 {
        let id = self.next_planned;
        self.next_planned -= 1;
        let mut placeholder = LuccaUser::with_id(id);
        placeholder.mail = Some(user.mail.clone());
        placeholder.login = Some(user.login.clone());
        placeholder.first_name = Some(user.first_name.clone());
        placeholder.last_name = Some(user.last_name.clone());
        self.upsert(placeholder);
        id
    }
}

/// What classification depends on besides the row.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub match_on: MatchOn,
    pub today: NaiveDate,
    pub defaults: &'a LuccaDefaults,
    /// Lucca's departments (empty when no row names one).
    pub departments: &'a [Department],
    /// True when the local directory is the only way to sign in (no upstream IdP), so a
    /// person missing from it could never use SSO.
    pub directory_is_complete: bool,
}

/// The decision for one row, and the explanation that goes in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub class: Class,
    pub lucca_id: Option<i64>,
    pub changes: Vec<FieldChange>,
    pub notes: Vec<String>,
    /// What to record in `lucca_links` when the row is applied (`active`, `ended`,
    /// `not_started`); `None` when the row does not single out one account.
    pub link_status: Option<&'static str>,
}

impl Outcome {
    fn new(class: Class) -> Outcome {
        Outcome {
            class,
            lucca_id: None,
            changes: Vec::new(),
            notes: Vec::new(),
            link_status: None,
        }
    }

    fn of(class: Class, note: impl Into<String>) -> Outcome {
        let mut o = Outcome::new(class);
        o.notes.push(note.into());
        o
    }

    pub fn message(&self) -> Option<String> {
        (!self.notes.is_empty()).then(|| self.notes.join("; "))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing to write.
    Settled(Outcome),
    Create {
        user: NewUser,
        outcome: Outcome,
    },
    Update {
        lucca_id: i64,
        changes: UserChanges,
        outcome: Outcome,
    },
}

impl Plan {
    pub fn outcome(&self) -> &Outcome {
        match self {
            Plan::Settled(o)
            | Plan::Create { outcome: o, .. }
            | Plan::Update { outcome: o, .. } => o,
        }
    }
}

enum Match<'a> {
    None,
    One(&'a LuccaUser),
    Several(Vec<&'a LuccaUser>),
    Mismatch(String),
}

/// Decide what to do for one person. `identity` is the local directory's entry, if any.
pub fn classify(
    row: &PersonRow,
    identity: Option<&Identity>,
    index: &LuccaIndex,
    rules: &Rules<'_>,
) -> Plan {
    let email = row.email_key();
    if identity.is_none() && rules.directory_is_complete {
        return Plan::Settled(Outcome::of(
            Class::NotInDirectory,
            "not in the directory, and no upstream identity provider is configured: this person could not sign in through Passerelle",
        ));
    }
    let login = row
        .login
        .clone()
        .or_else(|| identity.and_then(|i| i.login.clone()));
    let found = match rules.match_on {
        MatchOn::Email => match_on_email(&email, row.login.as_deref(), login.as_deref(), index),
        MatchOn::Login => match_on_login(&email, login.as_deref(), index),
    };
    match found {
        Match::Several(users) => Plan::Settled(Outcome::of(
            Class::Duplicate,
            format!(
                "{} Lucca accounts share this {}: {} (Lucca refuses SSO sign-in until one remains)",
                users.len(),
                identifier_name(rules.match_on),
                users
                    .iter()
                    .map(|u| describe(u, rules.today))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Match::Mismatch(message) => Plan::Settled(Outcome::of(Class::IdentifierMismatch, message)),
        Match::One(user) => plan_existing(row, user, index, rules),
        Match::None => plan_creation(row, &email, login, identity, index, rules),
    }
}

fn identifier_name(match_on: MatchOn) -> &'static str {
    match match_on {
        MatchOn::Email => "email",
        MatchOn::Login => "login",
    }
}

fn describe(user: &LuccaUser, today: NaiveDate) -> String {
    let state = match user.contract_status(today) {
        ContractStatus::Active => "active".to_string(),
        ContractStatus::Ended(d) => format!("ended {d}"),
        ContractStatus::NotStarted(d) => format!("starts {d}"),
    };
    format!("#{} ({state})", user.id)
}

fn match_on_email<'a>(
    email: &str,
    row_login: Option<&str>,
    login: Option<&str>,
    index: &'a LuccaIndex,
) -> Match<'a> {
    let by_mail = index.with_mail(email);
    match by_mail.as_slice() {
        [] => {}
        [user] => {
            // The row names a login that belongs to someone else: the file mixes two people.
            if let Some(row_login) = row_login {
                if let Some(other) = index
                    .with_login(row_login)
                    .into_iter()
                    .find(|o| o.id != user.id)
                {
                    return Match::Mismatch(format!(
                        "the login `{row_login}` belongs to Lucca account #{} ({}), not to #{} which has this email",
                        other.id,
                        other.mail.as_deref().unwrap_or("no email"),
                        user.id
                    ));
                }
            }
            return Match::One(user);
        }
        _ => return Match::Several(by_mail),
    }
    // Nobody has the email: creating would clash with an account holding the login.
    let login = login.unwrap_or(email);
    if let Some(other) = index.with_login(login).first() {
        return Match::Mismatch(format!(
            "no Lucca account has this email, but the login `{login}` belongs to account #{} whose email is {}: correct the email in Lucca or in the file",
            other.id,
            other.mail.as_deref().unwrap_or("empty")
        ));
    }
    Match::None
}

fn match_on_login<'a>(email: &str, login: Option<&str>, index: &'a LuccaIndex) -> Match<'a> {
    let login = login.unwrap_or(email);
    let by_login = index.with_login(login);
    match by_login.as_slice() {
        [] => {}
        [user] => {
            return match user.mail.as_deref() {
                Some(mail) if !mail.trim().eq_ignore_ascii_case(email) => {
                    Match::Mismatch(format!(
                        "the login `{login}` belongs to Lucca account #{} whose email is {mail}, not {email}",
                        user.id
                    ))
                }
                _ => Match::One(user),
            };
        }
        _ => return Match::Several(by_login),
    }
    if let Some(other) = index.with_mail(email).first() {
        return Match::Mismatch(format!(
            "no Lucca account has the login `{login}`, but account #{} (login `{}`) has this email: Lucca would not find this person by login",
            other.id,
            other.login.as_deref().unwrap_or("")
        ));
    }
    Match::None
}

fn plan_existing(row: &PersonRow, user: &LuccaUser, index: &LuccaIndex, rules: &Rules<'_>) -> Plan {
    let mut outcome = Outcome::new(Class::Ready);
    outcome.lucca_id = Some(user.id);
    match user.contract_status(rules.today) {
        ContractStatus::Ended(end) => {
            outcome.class = Class::Leaver;
            outcome.link_status = Some("ended");
            outcome.notes.push(format!(
                "contract ended on {end}: the account is left as it is"
            ));
            return Plan::Settled(outcome);
        }
        ContractStatus::NotStarted(start) => {
            outcome.class = Class::NotStarted;
            outcome.link_status = Some("not_started");
            outcome.notes.push(format!(
                "contract starts on {start}: Lucca refuses SSO sign-in until then"
            ));
            return Plan::Settled(outcome);
        }
        ContractStatus::Active => outcome.link_status = Some("active"),
    }
    let mut changes = UserChanges::default();
    let text_fields = [
        ("given_name", &row.given_name, &user.first_name),
        ("family_name", &row.family_name, &user.last_name),
        (
            "employee_number",
            &row.employee_number,
            &user.employee_number,
        ),
    ];
    for (field, wanted, current) in text_fields {
        let Some(wanted) = wanted else { continue };
        if current.as_deref().map(str::trim) == Some(wanted.as_str()) {
            continue;
        }
        let slot = match field {
            "given_name" => &mut changes.first_name,
            "family_name" => &mut changes.last_name,
            _ => &mut changes.employee_number,
        };
        *slot = Some(wanted.clone());
        outcome
            .changes
            .push(FieldChange::new(field, current.as_deref(), wanted.as_str()));
    }
    if let Some(name) = &row.department {
        let current = user.department.as_ref().and_then(|d| d.name.as_deref());
        if !current.is_some_and(|c| c.trim().eq_ignore_ascii_case(name)) {
            match department_id(name, rules.departments) {
                Ok(id) if Some(id) != user.effective_department_id() => {
                    changes.department_id = Some(id);
                    outcome
                        .changes
                        .push(FieldChange::new("department", current, name.as_str()));
                }
                Ok(_) => {}
                Err(note) => outcome.notes.push(note),
            }
        }
    }
    if let Some(manager) = &row.manager_email {
        match manager_id(manager, index, rules.today) {
            Ok(id) if Some(id) != user.effective_manager_id() => {
                changes.manager_id = Some(Some(id));
                let current = user
                    .manager
                    .as_ref()
                    .and_then(|m| m.mail.clone())
                    .or_else(|| user.effective_manager_id().map(|id| format!("#{id}")));
                outcome.changes.push(FieldChange::new(
                    "manager",
                    current.as_deref(),
                    manager.trim().to_lowercase(),
                ));
            }
            Ok(_) => {}
            Err(note) => outcome.notes.push(note),
        }
    }
    if changes.is_empty() {
        Plan::Settled(outcome)
    } else {
        outcome.class = Class::WillUpdate;
        Plan::Update {
            lucca_id: user.id,
            changes,
            outcome,
        }
    }
}

fn plan_creation(
    row: &PersonRow,
    email: &str,
    login: Option<String>,
    identity: Option<&Identity>,
    index: &LuccaIndex,
    rules: &Rules<'_>,
) -> Plan {
    // A new account needs more than the row may give: the directory fills the gaps.
    let from_directory = |f: fn(&Identity) -> &Option<String>| identity.and_then(|i| f(i).clone());
    let given = row
        .given_name
        .clone()
        .or_else(|| from_directory(|i| &i.given_name));
    let family = row
        .family_name
        .clone()
        .or_else(|| from_directory(|i| &i.family_name));
    let (Some(given), Some(family)) = (given, family) else {
        return Plan::Settled(Outcome::of(
            Class::InvalidRow,
            "no Lucca account yet, and creating one needs given_name and family_name (in the file or the directory)",
        ));
    };
    let d = rules.defaults;
    let missing: Vec<&str> = [
        ("lucca.defaults.legal_entity_id", d.legal_entity_id),
        ("lucca.defaults.role_principal_id", d.role_principal_id),
        ("lucca.defaults.culture_id", d.culture_id),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| k)
    .collect();
    let mut outcome = Outcome::new(Class::WillCreate);
    let department = row
        .department
        .clone()
        .or_else(|| from_directory(|i| &i.department));
    let mut department_found = false;
    let department_id = match &department {
        Some(name) => match department_id(name, rules.departments) {
            Ok(id) => {
                department_found = true;
                Some(id)
            }
            Err(note) => {
                if d.department_id.is_some() {
                    outcome.notes.push(format!(
                        "{note}; using lucca.defaults.department_id instead"
                    ));
                }
                d.department_id
            }
        },
        None => d.department_id,
    };
    let (Some(legal_entity_id), Some(role_principal_id), Some(culture_id), Some(department_id)) = (
        d.legal_entity_id,
        d.role_principal_id,
        d.culture_id,
        department_id,
    ) else {
        let mut missing = missing;
        if department_id.is_none() {
            missing.push("lucca.defaults.department_id");
        }
        return Plan::Settled(Outcome::of(
            Class::Failed,
            format!(
                "no Lucca account yet, and creating one needs {} in the configuration",
                missing.join(", ")
            ),
        ));
    };
    let manager_email = row
        .manager_email
        .clone()
        .or_else(|| from_directory(|i| &i.manager_email));
    let manager_id = match &manager_email {
        Some(m) => match manager_id(m, index, rules.today) {
            Ok(id) => Some(id),
            Err(note) => {
                outcome.notes.push(note);
                None
            }
        },
        None => None,
    };
    let employee_number = row
        .employee_number
        .clone()
        .or_else(|| from_directory(|i| &i.employee_number));
    let login = login.unwrap_or_else(|| email.to_string());
    outcome
        .changes
        .push(FieldChange::new("login", None, login.as_str()));
    outcome
        .changes
        .push(FieldChange::new("given_name", None, given.as_str()));
    outcome
        .changes
        .push(FieldChange::new("family_name", None, family.as_str()));
    if let Some(name) = department.filter(|_| department_found) {
        outcome
            .changes
            .push(FieldChange::new("department", None, name));
    }
    if let (Some(m), Some(_)) = (&manager_email, manager_id) {
        outcome
            .changes
            .push(FieldChange::new("manager", None, m.trim().to_lowercase()));
    }
    if let Some(n) = &employee_number {
        outcome
            .changes
            .push(FieldChange::new("employee_number", None, n.as_str()));
    }
    outcome.link_status = Some("active");
    Plan::Create {
        user: NewUser {
            login,
            first_name: given,
            last_name: family,
            mail: email.to_string(),
            // SSO works from the first day of the contract: today, so the person can sign in now.
            dt_contract_start: rules.today,
            legal_entity_id,
            department_id,
            role_principal_id,
            culture_id,
            manager_id,
            employee_number,
            job_title: None,
        },
        outcome,
    }
}

/// The department called `name` (trimmed, case-insensitive), when exactly one has that name.
fn department_id(name: &str, departments: &[Department]) -> Result<i64, String> {
    let wanted = name.trim().to_lowercase();
    let mut matches = departments
        .iter()
        .filter(|d| d.name.trim().to_lowercase() == wanted);
    match (matches.next(), matches.next()) {
        (Some(d), None) => Ok(d.id),
        (Some(_), Some(_)) => Err(format!(
            "several Lucca departments are named `{}`: department left unchanged",
            name.trim()
        )),
        _ => Err(format!(
            "no Lucca department is named `{}`: department left unchanged",
            name.trim()
        )),
    }
}

/// The manager's account: the only one with that email, or the only active one among several.
fn manager_id(email: &str, index: &LuccaIndex, today: NaiveDate) -> Result<i64, String> {
    let email = email.trim().to_lowercase();
    let found = index.with_mail(&email);
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => Err(format!(
            "the manager {email} has no Lucca account: manager left unchanged"
        )),
        several => {
            let active: Vec<_> = several.iter().filter(|u| u.is_active(today)).collect();
            match active.as_slice() {
                [one] => Ok(one.id),
                _ => Err(format!(
                    "several Lucca accounts have the manager's email {email}: manager left unchanged"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Source;
    use crate::lucca::{parse_lucca_datetime, DepartmentRef, ManagerRef};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 2).unwrap()
    }

    fn user(id: i64, mail: &str, login: &str) -> LuccaUser {
        let mut u = LuccaUser::with_id(id);
        u.mail = Some(mail.into());
        u.login = Some(login.into());
        u.first_name = Some("First".into());
        u.last_name = Some("Last".into());
        u.dt_contract_start = parse_lucca_datetime("2020-01-01");
        u
    }

    fn index() -> LuccaIndex {
        let mut alice = user(2, "alice@acme.test", "amartin");
        alice.first_name = Some("Alice".into());
        alice.last_name = Some("Martin".into());
        alice.employee_number = Some("00042".into());
        alice.department = Some(DepartmentRef {
            id: Some(13),
            name: Some("Engineering".into()),
        });
        alice.manager_id = Some(1);
        alice.manager = Some(ManagerRef {
            id: Some(1),
            name: None,
            mail: Some("bob@acme.test".into()),
        });
        let bob = user(1, "bob@acme.test", "bdurand");
        let mut leaver = user(4, "david@acme.test", "dpetit");
        leaver.dt_contract_end = parse_lucca_datetime("2022-12-31");
        let mut future = user(5, "emma@acme.test", "eleroy");
        future.dt_contract_start = parse_lucca_datetime("2030-09-02");
        let sam1 = user(6, "sam@acme.test", "sroux");
        let sam2 = user(7, "Sam@acme.test", "sroux2");
        LuccaIndex::new(vec![alice, bob, leaver, future, sam1, sam2])
    }

    fn departments() -> Vec<Department> {
        vec![
            Department {
                id: 13,
                name: "Engineering".into(),
            },
            Department {
                id: 15,
                name: "Sales".into(),
            },
        ]
    }

    fn defaults() -> LuccaDefaults {
        LuccaDefaults {
            legal_entity_id: Some(1),
            role_principal_id: Some(55),
            culture_id: Some(1036),
            department_id: Some(13),
        }
    }

    fn identity(email: &str) -> Identity {
        Identity {
            subject: email.into(),
            email: email.into(),
            email_verified: true,
            login: None,
            given_name: Some("Dir".into()),
            family_name: Some("Ectory".into()),
            employee_number: None,
            department: None,
            manager_email: None,
            job_title: None,
            groups: vec![],
            source: Source::Local,
        }
    }

    fn row(email: &str) -> PersonRow {
        PersonRow {
            email: email.into(),
            ..Default::default()
        }
    }

    fn run(row: &PersonRow, match_on: MatchOn) -> Plan {
        let d = defaults();
        let deps = departments();
        let rules = Rules {
            match_on,
            today: today(),
            defaults: &d,
            departments: &deps,
            directory_is_complete: true,
        };
        let id = identity(&row.email_key());
        classify(row, Some(&id), &index(), &rules)
    }

    fn class(plan: &Plan) -> Class {
        plan.outcome().class
    }

    #[test]
    fn an_account_that_already_carries_the_values_is_ready() {
        let mut r = row("Alice@Acme.test");
        r.given_name = Some("Alice".into());
        r.family_name = Some("Martin".into());
        r.department = Some("engineering".into());
        r.manager_email = Some("BOB@acme.test".into());
        r.employee_number = Some("00042".into());
        let plan = run(&r, MatchOn::Email);
        assert_eq!(class(&plan), Class::Ready, "{plan:?}");
        assert_eq!(plan.outcome().lucca_id, Some(2));
        assert_eq!(plan.outcome().link_status, Some("active"));
    }

    #[test]
    fn only_owned_fields_the_row_gives_are_updated() {
        let mut r = row("alice@acme.test");
        r.family_name = Some("Martin-Leroy".into());
        r.department = Some("Sales".into());
        r.manager_email = Some("sam@acme.test".into());
        let Plan::Update {
            lucca_id,
            changes,
            outcome,
        } = run(&r, MatchOn::Email)
        else {
            panic!("expected an update")
        };
        assert_eq!(lucca_id, 2);
        assert_eq!(
            changes,
            UserChanges {
                last_name: Some("Martin-Leroy".into()),
                department_id: Some(15),
                ..Default::default()
            }
        );
        let fields: Vec<_> = outcome.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["family_name", "department"]);
        assert_eq!(outcome.changes[1].from.as_deref(), Some("Engineering"));
        assert_eq!(
            outcome.message().unwrap(),
            "several Lucca accounts have the manager's email sam@acme.test: manager left unchanged"
        );
        let mut unknown = row("alice@acme.test");
        unknown.department = Some("Marketing".into());
        let plan = run(&unknown, MatchOn::Email);
        assert_eq!(class(&plan), Class::Ready);
        assert!(plan.outcome().message().unwrap().contains("Marketing"));
    }

    #[test]
    fn a_new_person_is_created_with_the_defaults() {
        let mut r = row("new@acme.test");
        r.family_name = Some("Nouveau".into());
        r.department = Some("Sales".into());
        r.manager_email = Some("bob@acme.test".into());
        let Plan::Create { user, outcome } = run(&r, MatchOn::Email) else {
            panic!("expected a creation")
        };
        assert_eq!(outcome.class, Class::WillCreate);
        assert_eq!(user.login, "new@acme.test");
        assert_eq!(user.first_name, "Dir", "from the directory");
        assert_eq!(user.last_name, "Nouveau", "the file wins");
        assert_eq!(
            (user.department_id, user.manager_id, user.legal_entity_id),
            (15, Some(1), 1)
        );
        assert_eq!(user.dt_contract_start, today());
        let mut elsewhere = row("new@acme.test");
        elsewhere.department = Some("Nowhere".into());
        let Plan::Create { user, outcome } = run(&elsewhere, MatchOn::Email) else {
            panic!("expected a creation")
        };
        assert_eq!(user.department_id, 13);
        assert!(outcome
            .message()
            .unwrap()
            .contains("defaults.department_id"));
    }

    #[test]
    fn creation_without_defaults_or_names_is_reported() {
        let r = row("new@acme.test");
        let d = LuccaDefaults {
            role_principal_id: Some(55),
            ..Default::default()
        };
        let rules = Rules {
            match_on: MatchOn::Email,
            today: today(),
            defaults: &d,
            departments: &[],
            directory_is_complete: false,
        };
        let plan = classify(&r, Some(&identity("new@acme.test")), &index(), &rules);
        assert_eq!(class(&plan), Class::Failed);
        assert_eq!(
            plan.outcome().message().unwrap(),
            "no Lucca account yet, and creating one needs lucca.defaults.legal_entity_id, lucca.defaults.culture_id, lucca.defaults.department_id in the configuration"
        );
        let plan = classify(&r, None, &index(), &rules);
        assert_eq!(class(&plan), Class::InvalidRow, "no names anywhere");
    }

    #[test]
    fn leavers_and_future_starters_are_left_alone() {
        let mut r = row("david@acme.test");
        r.family_name = Some("Changed".into());
        let plan = run(&r, MatchOn::Email);
        assert_eq!(class(&plan), Class::Leaver);
        assert!(matches!(plan, Plan::Settled(_)));
        assert_eq!(plan.outcome().link_status, Some("ended"));
        let plan = run(&row("emma@acme.test"), MatchOn::Email);
        assert_eq!(class(&plan), Class::NotStarted);
        assert!(plan.outcome().message().unwrap().contains("2030-09-02"));
    }

    #[test]
    fn a_shared_identifier_is_a_duplicate() {
        let plan = run(&row("sam@acme.test"), MatchOn::Email);
        assert_eq!(class(&plan), Class::Duplicate);
        assert_eq!(
            plan.outcome().message().unwrap(),
            "2 Lucca accounts share this email: #6 (active), #7 (active) (Lucca refuses SSO sign-in until one remains)"
        );
    }

    #[test]
    fn identifiers_pointing_at_someone_else_are_mismatches() {
        // The login is Alice's, the email nobody's.
        let mut r = row("a.martin@acme.test");
        r.login = Some("AMARTIN".into());
        let plan = run(&r, MatchOn::Email);
        assert_eq!(class(&plan), Class::IdentifierMismatch);
        assert!(plan
            .outcome()
            .message()
            .unwrap()
            .contains("#2 whose email is alice@acme.test"));
        // Bob's email with Alice's login.
        let mut r = row("bob@acme.test");
        r.login = Some("amartin".into());
        assert_eq!(class(&run(&r, MatchOn::Email)), Class::IdentifierMismatch);
        // Matching on login: the login's account has another email.
        let mut r = row("alice.martin@acme.test");
        r.login = Some("amartin".into());
        assert_eq!(class(&run(&r, MatchOn::Login)), Class::IdentifierMismatch);
        // Matching on login: nobody has the login, but someone has the email.
        let mut r = row("alice@acme.test");
        r.login = Some("alice".into());
        let plan = run(&r, MatchOn::Login);
        assert_eq!(class(&plan), Class::IdentifierMismatch);
        assert!(plan
            .outcome()
            .message()
            .unwrap()
            .contains("login `amartin`"));
        // Matching on login, consistent: the account is found.
        let mut r = row("alice@acme.test");
        r.login = Some("amartin".into());
        assert_eq!(class(&run(&r, MatchOn::Login)), Class::Ready);
    }

    #[test]
    fn people_outside_the_directory_are_flagged_only_without_upstreams() {
        let d = defaults();
        let mut rules = Rules {
            match_on: MatchOn::Email,
            today: today(),
            defaults: &d,
            departments: &[],
            directory_is_complete: true,
        };
        let r = row("alice@acme.test");
        assert_eq!(
            class(&classify(&r, None, &index(), &rules)),
            Class::NotInDirectory
        );
        rules.directory_is_complete = false;
        assert_eq!(class(&classify(&r, None, &index(), &rules)), Class::Ready);
    }

    #[test]
    fn a_planned_manager_is_found_by_their_reports() {
        let mut idx = index();
        let d = defaults();
        let rules = Rules {
            match_on: MatchOn::Email,
            today: today(),
            defaults: &d,
            departments: &[],
            directory_is_complete: false,
        };
        let mut boss = row("boss@acme.test");
        boss.given_name = Some("Big".into());
        boss.family_name = Some("Boss".into());
        let Plan::Create { user, .. } = classify(&boss, None, &idx, &rules) else {
            panic!()
        };
        let planned = idx.plan_creation(&user);
        assert!(planned < 0);
        let mut report = row("alice@acme.test");
        report.manager_email = Some("boss@acme.test".into());
        let Plan::Update { changes, .. } = classify(&report, None, &idx, &rules) else {
            panic!()
        };
        assert_eq!(changes.manager_id, Some(Some(planned)));
    }

    #[test]
    fn a_fresh_answer_replaces_what_the_bulk_read_said() {
        let mut idx = index();
        let mut moved = user(6, "sam.roux@acme.test", "sroux");
        moved.first_name = Some("Sam".into());
        idx.refresh(MatchOn::Email, "sam@acme.test", vec![]);
        assert!(idx.with_mail("sam@acme.test").is_empty());
        idx.upsert(moved);
        assert_eq!(idx.with_mail("SAM.ROUX@acme.test")[0].id, 6);
        assert_eq!(idx.with_login("sroux")[0].id, 6);
        assert_eq!(idx.len(), 5);
    }
}
