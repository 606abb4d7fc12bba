//! The decision for one person, as a pure function of the row, what the local directory knows
//! of them, and a snapshot of Lucca's users read in bulk. What to refuse, create or change is
//! [`decision`]'s (JIT's rules); this file adds the migration's own checks and the report's
//! wording. No I/O here: the worker reads Lucca, calls [`classify`], and writes only what the
//! returned [`Plan`] says.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::super::decision::{
    self, decide, CannotCreate, Decision, Lookup, PendingUpdate, Resolution,
};
use super::model::{Class, FieldChange, Finding, PersonRow};
use crate::config::{ClaimsConfig, JitMode, LuccaDefaults, MatchOn, OwnedAttribute};
use crate::identity::{map_claims, Claims, Identity, Source};
use crate::lucca::{ContractStatus, Department, LuccaUser, NewUser, UserChanges};

/// The projection read in bulk: what matching, contract checks and owned-field comparison
/// need, and nothing more (Lucca computes every extra field for every one of thousands of
/// people).
pub const BULK_FIELDS: &str = "id,login,mail,firstName,lastName,employeeNumber,jobTitle,\
dtContractStart,dtContractEnd,departmentId,department[id,name],managerId,manager[id,name,mail]";

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

    /// The account with this id, if read.
    pub fn get(&self, id: i64) -> Option<&LuccaUser> {
        self.users.get(&id)
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
    /// `lucca.owned_attributes`: what Passerelle may write, as at sign-in.
    pub owned: &'a [OwnedAttribute],
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
    /// Findings less important than `class`, reported after it.
    pub also: Vec<Finding>,
}

impl Outcome {
    fn new(class: Class) -> Outcome {
        Outcome {
            class,
            lucca_id: None,
            changes: Vec::new(),
            notes: Vec::new(),
            link_status: None,
            also: Vec::new(),
        }
    }

    fn of(class: Class, note: impl Into<String>) -> Outcome {
        let mut o = Outcome::new(class);
        o.notes.push(note.into());
        o
    }

    fn account(class: Class, lucca_id: i64, status: ContractStatus) -> Outcome {
        let mut o = Outcome::new(class);
        o.lucca_id = Some(lucca_id);
        o.link_status = Some(decision::link_status(status));
        o
    }

    /// The explanation of `class` alone.
    pub fn message(&self) -> Option<String> {
        (!self.notes.is_empty()).then(|| self.notes.join("; "))
    }

    /// Every finding, most important first: `class` with its explanation, then `also`.
    pub fn findings(&self) -> Vec<Finding> {
        let mut all = vec![Finding {
            class: self.class,
            message: self.message(),
        }];
        all.extend(self.also.iter().cloned());
        all
    }

    /// Every finding's explanation, in order (the report's `message`).
    pub fn full_message(&self) -> Option<String> {
        let parts: Vec<String> = self
            .findings()
            .into_iter()
            .filter_map(|f| f.message)
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
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

/// Decide what to do for one person. `identity` is the local directory's entry, if any.
///
/// What to refuse, create or change is decided by [`decision`], the rules JIT applies at
/// sign-in, so a migration and the person's next sign-in always agree. What is the
/// migration's own: the person is the file's row (an existing account gets the values the file
/// gives, and only those; a new one is completed from the directory), the accounts come from a
/// snapshot, a row whose email and login point at two different people is stopped, and the
/// outcome is worded for the report.
///
/// A person missing from the directory gets nothing written, but Lucca's own verdict on them
/// (a leaver, several accounts…) is still worked out: it comes first, the directory finding
/// after it, so neither hides the other.
pub fn classify(
    row: &PersonRow,
    identity: Option<&Identity>,
    index: &LuccaIndex,
    rules: &Rules<'_>,
) -> Plan {
    let plan = classify_in_lucca(row, identity, index, rules);
    if identity.is_some() || !rules.directory_is_complete {
        return plan;
    }
    let directory = Finding {
        class: Class::NotInDirectory,
        message: Some(NOT_IN_DIRECTORY.into()),
    };
    let lucca = plan.outcome();
    if lucca.class.is_lucca_refusal() {
        let mut outcome = lucca.clone();
        // Nobody signs in as them through Passerelle: no link to record.
        outcome.link_status = None;
        outcome.also.push(directory);
        Plan::Settled(outcome)
    } else {
        let mut outcome = Outcome::of(Class::NotInDirectory, NOT_IN_DIRECTORY);
        outcome.lucca_id = lucca.lucca_id.filter(|id| *id > 0);
        Plan::Settled(outcome)
    }
}

const NOT_IN_DIRECTORY: &str = "not in the directory, and no upstream identity provider is configured: this person could not sign in through Passerelle";

fn classify_in_lucca(
    row: &PersonRow,
    identity: Option<&Identity>,
    index: &LuccaIndex,
    rules: &Rules<'_>,
) -> Plan {
    let person = person(row, identity, false);
    let identifier = decision::identifier(&person, rules.match_on);
    let found = match rules.match_on {
        MatchOn::Email => match_on_email(
            &identifier,
            row.login.as_deref(),
            &decision::identifier(&person, MatchOn::Login),
            index,
        ),
        MatchOn::Login => match_on_login(&identifier, &person.email, index),
    };
    let users = match found {
        Ok(users) => users,
        Err(message) => return Plan::Settled(Outcome::of(Class::IdentifierMismatch, message)),
    };
    let lookup = Lookup::Matches(users.iter().map(|u| (*u).clone()).collect());
    let today = rules.today;
    match decide(
        &lookup,
        &person,
        JitMode::CreateAndUpdate,
        rules.owned,
        today,
    ) {
        Decision::Duplicate { .. } => Plan::Settled(Outcome::of(
            Class::Duplicate,
            format!(
                "{} Lucca accounts share this {}: {} (Lucca refuses SSO sign-in until one remains)",
                users.len(),
                identifier_name(rules.match_on),
                users
                    .iter()
                    .map(|u| describe(u, today))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Decision::Leaver { lucca_id, ended_on } => {
            let mut o = Outcome::account(Class::Leaver, lucca_id, ContractStatus::Ended(ended_on));
            o.notes.push(format!(
                "contract ended on {ended_on}: the account is left as it is"
            ));
            Plan::Settled(o)
        }
        Decision::NotStarted {
            lucca_id,
            starts_on,
        } => {
            let status = ContractStatus::NotStarted(starts_on);
            let mut o = Outcome::account(Class::NotStarted, lucca_id, status);
            o.notes.push(format!(
                "contract starts on {starts_on}: Lucca refuses SSO sign-in until then"
            ));
            Plan::Settled(o)
        }
        // A migration always may create, and follows no link of an earlier sign-in: neither
        // comes out of `decide` here.
        Decision::NoAccount | Decision::IdentifierDiffers { .. } => Plan::Settled(Outcome::of(
            Class::IdentifierMismatch,
            format!(
                "Lucca would not find this person by their {}",
                identifier_name(rules.match_on)
            ),
        )),
        Decision::Create => plan_creation(row, identity, index, rules),
        Decision::Unchanged { lucca_id } => Plan::Settled(Outcome::account(
            Class::Ready,
            lucca_id,
            ContractStatus::Active,
        )),
        Decision::Update { lucca_id, changes } => match users.iter().find(|u| u.id == lucca_id) {
            Some(user) => plan_update(user, &changes, index, rules),
            None => Plan::Settled(Outcome::account(
                Class::Ready,
                lucca_id,
                ContractStatus::Active,
            )),
        },
    }
}

/// What Lucca is asked for this person: their email, or their login (`match_on`).
pub fn identifier(row: &PersonRow, identity: Option<&Identity>, match_on: MatchOn) -> String {
    decision::identifier(&person(row, identity, false), match_on)
}

/// The person as JIT would see them, normalised like sign-in claims: the file's values and
/// the directory's login (the identifier with `match_on = "login"`); with `complete`, for a
/// creation, the directory's other values where the file gives none.
fn person(row: &PersonRow, identity: Option<&Identity>, complete: bool) -> Claims {
    let directory = |value: fn(&Identity) -> &Option<String>| {
        identity.filter(|_| complete).and_then(|i| value(i).clone())
    };
    let either = |given: &Option<String>, value: fn(&Identity) -> &Option<String>| {
        given.clone().or_else(|| directory(value))
    };
    let merged = Identity {
        subject: row.email_key(),
        email: row.email.clone(),
        email_verified: true,
        login: row
            .login
            .clone()
            .or_else(|| identity.and_then(|i| i.login.clone())),
        given_name: either(&row.given_name, |i| &i.given_name),
        family_name: either(&row.family_name, |i| &i.family_name),
        employee_number: either(&row.employee_number, |i| &i.employee_number),
        department: either(&row.department, |i| &i.department),
        manager_email: either(&row.manager_email, |i| &i.manager_email),
        job_title: either(&row.job_title, |i| &i.job_title),
        groups: Vec::new(),
        source: Source::Local,
    };
    map_claims(&merged, &[], &ClaimsConfig::default()).claims
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

/// The accounts with this email, unless the row's identifiers point at two people: its login
/// belongs to another account, or — nobody having the email — the login the new account would
/// get is taken.
fn match_on_email<'a>(
    email: &str,
    row_login: Option<&str>,
    new_login: &str,
    index: &'a LuccaIndex,
) -> Result<Vec<&'a LuccaUser>, String> {
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
                    return Err(format!(
                        "the login `{row_login}` belongs to Lucca account #{} ({}), not to #{} which has this email",
                        other.id,
                        other.mail.as_deref().unwrap_or("no email"),
                        user.id
                    ));
                }
            }
            return Ok(by_mail);
        }
        _ => return Ok(by_mail),
    }
    // Nobody has the email: creating would clash with an account holding the login.
    if let Some(other) = index.with_login(new_login).first() {
        return Err(format!(
            "no Lucca account has this email, but the login `{new_login}` belongs to account #{} whose email is {}: correct the email in Lucca or in the file",
            other.id,
            other.mail.as_deref().unwrap_or("empty")
        ));
    }
    Ok(Vec::new())
}

/// The accounts with this login, unless the one found has another email, or — nobody having
/// the login — an account has the email (Lucca would not find that person by login).
fn match_on_login<'a>(
    login: &str,
    email: &str,
    index: &'a LuccaIndex,
) -> Result<Vec<&'a LuccaUser>, String> {
    let by_login = index.with_login(login);
    match by_login.as_slice() {
        [] => {}
        [user] => {
            return match user.mail.as_deref() {
                Some(mail) if !mail.trim().eq_ignore_ascii_case(email) => Err(format!(
                    "the login `{login}` belongs to Lucca account #{} whose email is {mail}, not {email}",
                    user.id
                )),
                _ => Ok(by_login),
            };
        }
        _ => return Ok(by_login),
    }
    if let Some(other) = index.with_mail(email).first() {
        return Err(format!(
            "no Lucca account has the login `{login}`, but account #{} (login `{}`) has this email: Lucca would not find this person by login",
            other.id,
            other.login.as_deref().unwrap_or("")
        ));
    }
    Ok(Vec::new())
}

/// An active account whose owned attributes differ: resolve the department and the manager
/// against the snapshot, as the outbox worker does against Lucca, and send what still differs.
fn plan_update(
    user: &LuccaUser,
    pending: &PendingUpdate,
    index: &LuccaIndex,
    rules: &Rules<'_>,
) -> Plan {
    let mut outcome = Outcome::account(Class::Ready, user.id, ContractStatus::Active);
    let department_id = pending.department.as_deref().and_then(|name| {
        let found = decision::department_named(rules.departments, name);
        if found.id().is_none() {
            outcome.notes.push(department_note(name, found));
        }
        found.id()
    });
    let manager_id = pending.manager_email.as_deref().and_then(|email| {
        let found = decision::manager_among(index.with_mail(email), rules.today);
        if found.id().is_none() {
            outcome.notes.push(manager_note(email, found));
        }
        found.id()
    });
    let changes = pending.to_changes(user.id, department_id, manager_id);
    outcome.changes = field_changes(&changes, user, pending);
    if changes.is_empty() {
        return Plan::Settled(outcome);
    }
    outcome.class = Class::WillUpdate;
    Plan::Update {
        lucca_id: user.id,
        changes,
        outcome,
    }
}

/// The report's view of an update: each field with what Lucca holds and what it gets.
fn field_changes(
    changes: &UserChanges,
    user: &LuccaUser,
    pending: &PendingUpdate,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (field, from, to) in [
        ("given_name", &user.first_name, &changes.first_name),
        ("family_name", &user.last_name, &changes.last_name),
        (
            "employee_number",
            &user.employee_number,
            &changes.employee_number,
        ),
        ("job_title", &user.job_title, &changes.job_title),
    ] {
        if let Some(to) = to {
            out.push(FieldChange::new(field, from.as_deref(), to.as_str()));
        }
    }
    if let (Some(_), Some(name)) = (changes.department_id, &pending.department) {
        let from = user.department.as_ref().and_then(|d| d.name.as_deref());
        out.push(FieldChange::new("department", from, name.as_str()));
    }
    if let (Some(Some(_)), Some(email)) = (changes.manager_id, &pending.manager_email) {
        let from = user
            .manager
            .as_ref()
            .and_then(|m| m.mail.clone())
            .or_else(|| user.effective_manager_id().map(|id| format!("#{id}")));
        out.push(FieldChange::new("manager", from.as_deref(), email.as_str()));
    }
    out
}

fn plan_creation(
    row: &PersonRow,
    identity: Option<&Identity>,
    index: &LuccaIndex,
    rules: &Rules<'_>,
) -> Plan {
    // A new account needs more than the row may give: the directory fills the gaps, as the
    // person's first sign-in would.
    let person = person(row, identity, true);
    let mut notes = Vec::new();
    let department_id = person.department.as_deref().and_then(|name| {
        let found = decision::department_named(rules.departments, name);
        if found.id().is_none() && rules.defaults.department_id.is_some() {
            notes.push(format!(
                "{}; using lucca.defaults.department_id instead",
                department_note(name, found)
            ));
        }
        found.id()
    });
    let manager_id = person.manager_email.as_deref().and_then(|email| {
        let found = decision::manager_among(index.with_mail(email), rules.today);
        if found.id().is_none() {
            notes.push(manager_note(email, found));
        }
        found.id()
    });
    let user = match decision::new_user(
        &person,
        department_id,
        manager_id,
        rules.defaults,
        rules.owned,
        rules.today,
    ) {
        Ok(user) => user,
        Err(CannotCreate::MissingAttribute(_)) => {
            return Plan::Settled(Outcome::of(
                Class::InvalidRow,
                "no Lucca account yet, and creating one needs given_name and family_name (in the file or the directory)",
            ))
        }
        Err(CannotCreate::MissingDefault(_)) => {
            return Plan::Settled(Outcome::of(
                Class::Failed,
                format!(
                    "no Lucca account yet, and creating one needs {} in the configuration",
                    decision::missing_defaults(rules.defaults, department_id).join(", ")
                ),
            ))
        }
    };
    let mut outcome = Outcome::new(Class::WillCreate);
    outcome.notes = notes;
    let mut change = |field: &str, to: Option<&str>| {
        if let Some(to) = to {
            outcome.changes.push(FieldChange::new(field, None, to));
        }
    };
    change("login", Some(&user.login));
    change("given_name", Some(&user.first_name));
    change("family_name", Some(&user.last_name));
    change(
        "department",
        person
            .department
            .as_deref()
            .filter(|_| department_id.is_some()),
    );
    change(
        "manager",
        person
            .manager_email
            .as_deref()
            .filter(|_| manager_id.is_some()),
    );
    change("employee_number", user.employee_number.as_deref());
    change("job_title", user.job_title.as_deref());
    outcome.link_status = Some("active");
    Plan::Create { user, outcome }
}

fn department_note(name: &str, found: Resolution) -> String {
    let name = name.trim();
    match found {
        Resolution::Ambiguous => {
            format!("several Lucca departments are named `{name}`: department left unchanged")
        }
        _ => format!("no Lucca department is named `{name}`: department left unchanged"),
    }
}

fn manager_note(email: &str, found: Resolution) -> String {
    match found {
        Resolution::Ambiguous => format!(
            "several Lucca accounts have the manager's email {email}: manager left unchanged"
        ),
        Resolution::NotActive => format!(
            "the manager {email} has no active Lucca account (the contract has ended or not started): manager left unchanged"
        ),
        _ => format!("the manager {email} has no Lucca account: manager left unchanged"),
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
        run_owning(row, match_on, &OwnedAttribute::ALL)
    }

    fn run_owning(row: &PersonRow, match_on: MatchOn, owned: &[OwnedAttribute]) -> Plan {
        let d = defaults();
        let deps = departments();
        let rules = Rules {
            match_on,
            today: today(),
            defaults: &d,
            owned,
            departments: &deps,
            directory_is_complete: true,
        };
        let mut id = identity(&row.email_key());
        id.job_title = Some("Directory Title".into());
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
            owned: &OwnedAttribute::ALL,
            departments: &[],
            directory_is_complete: false,
        };
        let plan = classify(&r, Some(&identity("new@acme.test")), &index(), &rules);
        assert_eq!(class(&plan), Class::Failed);
        assert_eq!(
            plan.outcome().message().unwrap(),
            "no Lucca account yet, and creating one needs lucca.defaults.legal_entity_id, lucca.defaults.department_id, lucca.defaults.culture_id in the configuration"
        );
        let plan = classify(&r, None, &index(), &rules);
        assert_eq!(class(&plan), Class::InvalidRow, "no names anywhere");
    }

    #[test]
    fn only_owned_attributes_are_written() {
        // Was: names and employee number compared whatever lucca.owned_attributes said.
        let mut r = row("alice@acme.test");
        r.given_name = Some("Alicia".into());
        r.family_name = Some("Martin-Leroy".into());
        r.employee_number = Some("00043".into());
        r.department = Some("Sales".into());
        let plan = run_owning(&r, MatchOn::Email, &[OwnedAttribute::Department]);
        let Plan::Update {
            changes, outcome, ..
        } = plan
        else {
            panic!("expected an update: {plan:?}")
        };
        assert_eq!(
            changes,
            UserChanges {
                department_id: Some(15),
                ..Default::default()
            }
        );
        assert_eq!(outcome.changes.len(), 1);
        assert_eq!(outcome.changes[0].field, "department");
        let plan = run_owning(&r, MatchOn::Email, &[]);
        assert_eq!(class(&plan), Class::Ready, "nothing owned: {plan:?}");

        // A creation always carries the names Lucca requires, the rest only when owned.
        let mut new = row("new@acme.test");
        new.employee_number = Some("00999".into());
        let Plan::Create { user, outcome } = run_owning(&new, MatchOn::Email, &[]) else {
            panic!("expected a creation")
        };
        assert_eq!(
            (user.first_name.as_str(), user.last_name.as_str()),
            ("Dir", "Ectory")
        );
        assert_eq!((user.employee_number, user.job_title), (None, None));
        assert!(!outcome.changes.iter().any(|c| c.field == "employee_number"));
    }

    #[test]
    fn the_job_title_is_compared_and_written() {
        // Was: ignored, in the file and in the directory.
        let mut r = row("alice@acme.test");
        r.job_title = Some("Staff Engineer".into());
        let Plan::Update {
            changes, outcome, ..
        } = run(&r, MatchOn::Email)
        else {
            panic!("expected an update")
        };
        assert_eq!(changes.job_title.as_deref(), Some("Staff Engineer"));
        assert_eq!(
            outcome.changes,
            [FieldChange::new("job_title", None, "Staff Engineer")]
        );
        let Plan::Create { user, outcome } = run(&row("new@acme.test"), MatchOn::Email) else {
            panic!("expected a creation")
        };
        assert_eq!(
            user.job_title.as_deref(),
            Some("Directory Title"),
            "from the directory"
        );
        assert_eq!(outcome.changes.last().unwrap().field, "job_title");
    }

    #[test]
    fn an_inactive_manager_is_never_set() {
        // Was: the only account with the manager's email, leaver or not.
        let mut r = row("alice@acme.test");
        r.manager_email = Some("david@acme.test".into());
        let plan = run(&r, MatchOn::Email);
        assert_eq!(class(&plan), Class::Ready, "{plan:?}");
        assert_eq!(
            plan.outcome().message().unwrap(),
            "the manager david@acme.test has no active Lucca account (the contract has ended or not started): manager left unchanged"
        );
        let mut new = row("new@acme.test");
        new.manager_email = Some("emma@acme.test".into());
        let Plan::Create { user, outcome } = run(&new, MatchOn::Email) else {
            panic!("expected a creation")
        };
        assert_eq!(user.manager_id, None, "a future hire manages nobody yet");
        assert!(outcome
            .message()
            .unwrap()
            .contains("no active Lucca account"));
        // An active one is set.
        new.manager_email = Some("bob@acme.test".into());
        let Plan::Create { user, .. } = run(&new, MatchOn::Email) else {
            panic!("expected a creation")
        };
        assert_eq!(user.manager_id, Some(1));
    }

    #[test]
    fn a_person_is_not_made_their_own_manager() {
        let mut r = row("alice@acme.test");
        r.manager_email = Some("Alice@acme.test".into());
        assert_eq!(class(&run(&r, MatchOn::Email)), Class::Ready);
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
            owned: &OwnedAttribute::ALL,
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
    fn lucca_refusals_come_before_the_directory_finding() {
        let d = defaults();
        let rules = Rules {
            match_on: MatchOn::Email,
            today: today(),
            defaults: &d,
            owned: &OwnedAttribute::ALL,
            departments: &[],
            directory_is_complete: true,
        };
        let findings = |email: &str| {
            let plan = classify(&row(email), None, &index(), &rules);
            assert!(
                matches!(plan, Plan::Settled(_)),
                "nothing written: {plan:?}"
            );
            plan.outcome()
                .findings()
                .iter()
                .map(|f| f.class)
                .collect::<Vec<_>>()
        };
        use Class::*;
        assert_eq!(findings("david@acme.test"), [Leaver, NotInDirectory]);
        assert_eq!(findings("sam@acme.test"), [Duplicate, NotInDirectory]);
        assert_eq!(findings("emma@acme.test"), [NotStarted, NotInDirectory]);
        assert_eq!(findings("alice@acme.test"), [NotInDirectory]);
        assert_eq!(findings("nobody@acme.test"), [NotInDirectory]);
        let leaver = classify(&row("david@acme.test"), None, &index(), &rules);
        let outcome = leaver.outcome();
        assert_eq!(
            outcome.link_status, None,
            "no link for someone who cannot sign in"
        );
        assert_eq!(outcome.lucca_id, Some(4));
        let message = outcome.full_message().unwrap();
        assert!(
            message.starts_with("contract ended on 2022-12-31")
                && message.contains("not in the directory"),
            "{message}"
        );
        // The mismatch too: the login the row names belongs to someone else.
        let mut mixed = row("alice@acme.test");
        mixed.login = Some("bdurand".into());
        let plan = classify(&mixed, None, &index(), &rules);
        assert_eq!(
            plan.outcome()
                .findings()
                .iter()
                .map(|f| f.class)
                .collect::<Vec<_>>(),
            [IdentifierMismatch, NotInDirectory]
        );
    }

    #[test]
    fn a_planned_manager_is_found_by_their_reports() {
        let mut idx = index();
        let d = defaults();
        let rules = Rules {
            match_on: MatchOn::Email,
            today: today(),
            defaults: &d,
            owned: &OwnedAttribute::ALL,
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
        assert!(idx.with_login("sroux2").is_empty(), "#7 no longer has it");
    }
}
