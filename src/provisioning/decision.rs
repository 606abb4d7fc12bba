//! The one rule set for Lucca decisions: given what Lucca answered, what to do with a person —
//! refuse, create (with which values), update (which fields), or leave alone. JIT at sign-in,
//! its outbox worker and batch migrations all decide here, so they cannot disagree. No I/O
//! here, so every rule is unit-tested without a server.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::{JitMode, LuccaDefaults, MatchOn, OwnedAttribute};
use crate::identity::Claims;
use crate::lucca::{ContractStatus, Department, LuccaUser, NewUser, UserChanges};

/// What the lookup of a person in Lucca found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The accounts whose identifier (mail or login) equals the person's, former and future
    /// employees included.
    Matches(Vec<LuccaUser>),
    /// Nobody has the person's identifier, but the account they were linked to still exists:
    /// its mail or login was changed in Lucca since.
    LinkedElsewhere(Box<LuccaUser>),
}

/// What JIT does for one sign-in.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The contract ended: refuse, and never re-create the account.
    Leaver {
        lucca_id: i64,
        ended_on: NaiveDate,
    },
    /// The contract starts later: Lucca would refuse the sign-in until then.
    NotStarted {
        lucca_id: i64,
        starts_on: NaiveDate,
    },
    /// Lucca would not know which account is meant ("Several users have been found").
    Duplicate {
        lucca_ids: Vec<i64>,
    },
    /// The linked account now carries another identifier; Lucca would not find the person.
    IdentifierDiffers {
        lucca_id: i64,
    },
    /// Nobody matches and JIT may not create accounts.
    NoAccount,
    /// Nobody matches: create the account.
    Create,
    /// Active, but Lucca holds other values for attributes Passerelle owns.
    Update {
        lucca_id: i64,
        changes: PendingUpdate,
    },
    Unchanged {
        lucca_id: i64,
    },
}

/// The one place where a lookup becomes a decision.
pub fn decide(
    lookup: &Lookup,
    claims: &Claims,
    mode: JitMode,
    owned: &[OwnedAttribute],
    today: NaiveDate,
) -> Decision {
    let user = match lookup {
        Lookup::Matches(users) if users.len() > 1 => {
            return Decision::Duplicate {
                lucca_ids: users.iter().map(|u| u.id).collect(),
            }
        }
        Lookup::Matches(users) => match users.first() {
            Some(user) => user,
            None if mode == JitMode::CreateAndUpdate => return Decision::Create,
            None => return Decision::NoAccount,
        },
        Lookup::LinkedElsewhere(user) => {
            // A leaver whose mail was recycled must not get a fresh account either.
            return match user.contract_status(today) {
                ContractStatus::Ended(ended_on) => Decision::Leaver {
                    lucca_id: user.id,
                    ended_on,
                },
                _ => Decision::IdentifierDiffers { lucca_id: user.id },
            };
        }
    };
    match user.contract_status(today) {
        ContractStatus::Ended(ended_on) => Decision::Leaver {
            lucca_id: user.id,
            ended_on,
        },
        ContractStatus::NotStarted(starts_on) => Decision::NotStarted {
            lucca_id: user.id,
            starts_on,
        },
        ContractStatus::Active => {
            let changes = owned_changes(claims, user, owned);
            if changes.is_empty() {
                Decision::Unchanged { lucca_id: user.id }
            } else {
                Decision::Update {
                    lucca_id: user.id,
                    changes,
                }
            }
        }
    }
}

/// `lucca_links.status` for a contract state.
pub fn link_status(status: ContractStatus) -> &'static str {
    match status {
        ContractStatus::Active => "active",
        ContractStatus::Ended(_) => "ended",
        ContractStatus::NotStarted(_) => "not_started",
    }
}

/// The value Lucca matches the person on: their email, or their login (the email when they
/// have none, which is also the login Passerelle gives the accounts it creates).
pub fn identifier(claims: &Claims, match_on: MatchOn) -> String {
    match match_on {
        MatchOn::Email => claims.email.clone(),
        MatchOn::Login => claims.login.clone().unwrap_or_else(|| claims.email.clone()),
    }
}

/// An update waiting in the outbox: the values Lucca should hold, by name. Department and
/// manager are resolved to Lucca ids by the worker, so that a sign-in costs one lookup only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// A department name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The manager's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_email: Option<String>,
    /// What Lucca held at sign-in, so a value that resolves to the same id is not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_department_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_manager_id: Option<i64>,
}

impl PendingUpdate {
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// The owned attributes this update changes.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            (OwnedAttribute::FirstName, self.first_name.is_some()),
            (OwnedAttribute::LastName, self.last_name.is_some()),
            (OwnedAttribute::Department, self.department.is_some()),
            (OwnedAttribute::Manager, self.manager_email.is_some()),
            (
                OwnedAttribute::EmployeeNumber,
                self.employee_number.is_some(),
            ),
            (OwnedAttribute::JobTitle, self.job_title.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(a, _)| a.as_str())
        .collect()
    }

    /// The Lucca update once department and manager are resolved (`None`: not found, left as
    /// is), without what Lucca already holds.
    pub fn to_changes(
        &self,
        lucca_id: i64,
        department_id: Option<i64>,
        manager_id: Option<i64>,
    ) -> UserChanges {
        let changes = UserChanges {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            employee_number: self.employee_number.clone(),
            job_title: self.job_title.clone(),
            department_id,
            manager_id: manager_id.map(Some),
            ..Default::default()
        };
        let mut current = LuccaUser::with_id(lucca_id);
        current.department_id = self.current_department_id;
        current.manager_id = self.current_manager_id;
        changes.without_unchanged(&current)
    }
}

/// The owned attributes that differ between the person and their Lucca account. An attribute
/// the person has no value for is left alone: absent upstream is not "erase in Lucca".
pub fn owned_changes(claims: &Claims, user: &LuccaUser, owned: &[OwnedAttribute]) -> PendingUpdate {
    let wanted = |attribute: OwnedAttribute, value: &Option<String>| {
        if owned.contains(&attribute) {
            value.clone()
        } else {
            None
        }
    };
    let direct = UserChanges {
        first_name: wanted(OwnedAttribute::FirstName, &claims.given_name),
        last_name: wanted(OwnedAttribute::LastName, &claims.family_name),
        employee_number: wanted(OwnedAttribute::EmployeeNumber, &claims.employee_number),
        job_title: wanted(OwnedAttribute::JobTitle, &claims.job_title),
        ..Default::default()
    }
    .without_unchanged(user);

    // Department and manager come as a name and an email; the lookup's projection carries
    // both (`department[id,name]`, `manager[id,name,mail]`), so they compare without a
    // request. When Lucca left a name out, the worker resolves and compares ids instead.
    let department = wanted(OwnedAttribute::Department, &claims.department).filter(|name| {
        let held = user.department.as_ref().and_then(|d| d.name.as_deref());
        !held.is_some_and(|held| same_name(held, name))
    });
    let manager_email = wanted(OwnedAttribute::Manager, &claims.manager_email).filter(|mail| {
        let held = user.manager.as_ref().and_then(|m| m.mail.as_deref());
        !held.is_some_and(|held| same_name(held, mail)) && !same_name(mail, &claims.email)
    });
    PendingUpdate {
        first_name: direct.first_name,
        last_name: direct.last_name,
        employee_number: direct.employee_number,
        job_title: direct.job_title,
        current_department_id: department
            .as_ref()
            .and_then(|_| user.effective_department_id()),
        current_manager_id: manager_email
            .as_ref()
            .and_then(|_| user.effective_manager_id()),
        department,
        manager_email,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Why an account cannot be created from what is known of the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannotCreate {
    #[error("the identity has no {0}, which Lucca requires")]
    MissingAttribute(&'static str),
    #[error("{0}: is required to create Lucca accounts")]
    MissingDefault(&'static str),
}

/// The `[lucca.defaults]` keys a creation needs that are not set, in the order they are checked.
/// `department_id` is the person's resolved department, which the default stands in for.
pub fn missing_defaults(defaults: &LuccaDefaults, department_id: Option<i64>) -> Vec<&'static str> {
    [
        ("lucca.defaults.legal_entity_id", defaults.legal_entity_id),
        (
            "lucca.defaults.department_id",
            department_id.or(defaults.department_id),
        ),
        (
            "lucca.defaults.role_principal_id",
            defaults.role_principal_id,
        ),
        ("lucca.defaults.culture_id", defaults.culture_id),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_none())
    .map(|(key, _)| key)
    .collect()
}

/// The account to create for a person nobody in Lucca matches. `department_id` and
/// `manager_id` are already resolved (department falls back to `lucca.defaults`).
pub fn new_user(
    claims: &Claims,
    department_id: Option<i64>,
    manager_id: Option<i64>,
    defaults: &LuccaDefaults,
    owned: &[OwnedAttribute],
    today: NaiveDate,
) -> Result<NewUser, CannotCreate> {
    let first_name = claims
        .given_name
        .clone()
        .ok_or(CannotCreate::MissingAttribute("first name"))?;
    let last_name = claims
        .family_name
        .clone()
        .ok_or(CannotCreate::MissingAttribute("last name"))?;
    let (Some(legal_entity_id), Some(department_id), Some(role_principal_id), Some(culture_id)) = (
        defaults.legal_entity_id,
        department_id.or(defaults.department_id),
        defaults.role_principal_id,
        defaults.culture_id,
    ) else {
        let missing = missing_defaults(defaults, department_id);
        return Err(CannotCreate::MissingDefault(
            missing.first().copied().unwrap_or("lucca.defaults"),
        ));
    };
    let optional = |attribute: OwnedAttribute, value: &Option<String>| {
        value.clone().filter(|_| owned.contains(&attribute))
    };
    Ok(NewUser {
        login: claims.login.clone().unwrap_or_else(|| claims.email.clone()),
        first_name,
        last_name,
        mail: claims.email.clone(),
        dt_contract_start: today,
        legal_entity_id,
        department_id,
        role_principal_id,
        culture_id,
        manager_id,
        employee_number: optional(OwnedAttribute::EmployeeNumber, &claims.employee_number),
        job_title: optional(OwnedAttribute::JobTitle, &claims.job_title),
    })
}

/// What a department name or a manager's email comes to among Lucca's departments or accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Found(i64),
    /// No department has the name, no account the email.
    NotFound,
    /// Several departments have the name, or several active accounts the email: Passerelle
    /// does not choose.
    Ambiguous,
    /// Accounts have the email, but none has a running contract (a leaver or a future hire
    /// cannot manage anybody yet).
    NotActive,
}

impl Resolution {
    pub fn id(self) -> Option<i64> {
        match self {
            Resolution::Found(id) => Some(id),
            _ => None,
        }
    }
}

/// The department called `name` (trimmed, case-insensitive), when exactly one has that name.
pub fn department_named(departments: &[Department], name: &str) -> Resolution {
    if name.trim().is_empty() {
        return Resolution::NotFound;
    }
    let mut matches = departments.iter().filter(|d| same_name(&d.name, name));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Resolution::Found(only.id),
        (Some(_), Some(_)) => Resolution::Ambiguous,
        _ => Resolution::NotFound,
    }
}

/// The one account among `candidates` (the accounts holding the manager's email) that may be
/// someone's manager: the single one with a running contract.
pub fn manager_among<'a>(
    candidates: impl IntoIterator<Item = &'a LuccaUser>,
    today: NaiveDate,
) -> Resolution {
    let candidates: Vec<&LuccaUser> = candidates.into_iter().collect();
    let mut active = candidates.iter().filter(|u| u.is_active(today));
    match (active.next(), active.next()) {
        (Some(only), None) => Resolution::Found(only.id),
        (Some(_), Some(_)) => Resolution::Ambiguous,
        _ if candidates.is_empty() => Resolution::NotFound,
        _ => Resolution::NotActive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lucca::{parse_lucca_datetime, DepartmentRef, ManagerRef};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 2).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            subject: "alice@acme.test".into(),
            email: "alice@acme.test".into(),
            given_name: Some("Alice".into()),
            family_name: Some("Martin".into()),
            employee_number: Some("00042".into()),
            department: Some("Engineering".into()),
            manager_email: Some("bob@acme.test".into()),
            ..Default::default()
        }
    }

    /// Alice as Lucca holds her: the same values as `claims()`.
    fn alice() -> LuccaUser {
        let mut u = LuccaUser::with_id(2);
        u.mail = Some("Alice@acme.test".into());
        u.login = Some("amartin".into());
        u.first_name = Some("Alice".into());
        u.last_name = Some("Martin".into());
        u.employee_number = Some("00042".into());
        u.job_title = Some("Software Engineer".into());
        u.dt_contract_start = parse_lucca_datetime("2019-09-02T00:00:00");
        u.department_id = Some(13);
        u.department = Some(DepartmentRef {
            id: Some(13),
            name: Some("Engineering".into()),
        });
        u.manager_id = Some(1);
        u.manager = Some(ManagerRef {
            id: Some(1),
            name: Some("Bob Durand".into()),
            mail: Some("bob@acme.test".into()),
        });
        u
    }

    fn decide_for(users: Vec<LuccaUser>, mode: JitMode) -> Decision {
        decide(
            &Lookup::Matches(users),
            &claims(),
            mode,
            &OwnedAttribute::ALL,
            today(),
        )
    }

    #[test]
    fn contract_status_decides_before_any_attribute() {
        assert_eq!(
            decide_for(vec![alice()], JitMode::UpdateOnly),
            Decision::Unchanged { lucca_id: 2 }
        );
        let mut leaver = alice();
        leaver.dt_contract_end = parse_lucca_datetime("2025-06-01");
        leaver.job_title = Some("changed".into());
        assert_eq!(
            decide_for(vec![leaver], JitMode::CreateAndUpdate),
            Decision::Leaver {
                lucca_id: 2,
                ended_on: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
            }
        );
        let mut last_day = alice();
        last_day.dt_contract_end = parse_lucca_datetime("2025-06-02");
        assert_eq!(
            decide_for(vec![last_day], JitMode::CreateAndUpdate),
            Decision::Unchanged { lucca_id: 2 },
            "the last day is still worked"
        );
        let mut future = alice();
        future.dt_contract_start = parse_lucca_datetime("2025-07-01");
        assert_eq!(
            decide_for(vec![future], JitMode::CreateAndUpdate),
            Decision::NotStarted {
                lucca_id: 2,
                starts_on: NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()
            }
        );
    }

    #[test]
    fn nobody_or_several_matching() {
        assert_eq!(
            decide_for(vec![], JitMode::CreateAndUpdate),
            Decision::Create
        );
        assert_eq!(decide_for(vec![], JitMode::UpdateOnly), Decision::NoAccount);
        let mut other = alice();
        other.id = 9;
        other.dt_contract_end = parse_lucca_datetime("2020-01-01");
        assert_eq!(
            decide_for(vec![alice(), other], JitMode::CreateAndUpdate),
            Decision::Duplicate {
                lucca_ids: vec![2, 9]
            }
        );
    }

    #[test]
    fn a_linked_account_under_another_identifier_is_never_recreated() {
        let lookup = |user| {
            decide(
                &Lookup::LinkedElsewhere(Box::new(user)),
                &claims(),
                JitMode::CreateAndUpdate,
                &OwnedAttribute::ALL,
                today(),
            )
        };
        assert_eq!(lookup(alice()), Decision::IdentifierDiffers { lucca_id: 2 });
        let mut leaver = alice();
        leaver.dt_contract_end = parse_lucca_datetime("2024-01-31");
        assert!(matches!(
            lookup(leaver),
            Decision::Leaver { lucca_id: 2, .. }
        ));
    }

    #[test]
    fn only_owned_attributes_the_person_has_are_compared() {
        let mut person = claims();
        person.given_name = Some("Alicia".into());
        person.job_title = Some("Staff Engineer".into());
        person.department = Some(" engineering ".into());
        person.manager_email = Some("chloe.bernard@acme.test".into());
        person.employee_number = None;
        let changes = owned_changes(&person, &alice(), &OwnedAttribute::ALL);
        assert_eq!(
            changes,
            PendingUpdate {
                first_name: Some("Alicia".into()),
                job_title: Some("Staff Engineer".into()),
                manager_email: Some("chloe.bernard@acme.test".into()),
                current_manager_id: Some(1),
                ..Default::default()
            }
        );
        assert_eq!(changes.fields(), ["first_name", "manager", "job_title"]);

        let only_names = [OwnedAttribute::FirstName, OwnedAttribute::LastName];
        let changes = owned_changes(&person, &alice(), &only_names);
        assert_eq!(changes.fields(), ["first_name"]);
        assert!(owned_changes(&claims(), &alice(), &[]).is_empty());
    }

    #[test]
    fn department_and_manager_without_names_in_lucca_are_resolved_later() {
        let mut bare = alice();
        bare.department = None;
        bare.manager = None;
        let changes = owned_changes(&claims(), &bare, &OwnedAttribute::ALL);
        assert_eq!(changes.fields(), ["department", "manager"]);
        assert_eq!(
            (changes.current_department_id, changes.current_manager_id),
            (Some(13), Some(1))
        );
        // Resolved to the ids Lucca already holds: nothing is sent.
        assert!(changes.to_changes(2, Some(13), Some(1)).is_empty());
        let sent = changes.to_changes(2, Some(14), None);
        assert_eq!(
            sent,
            UserChanges {
                department_id: Some(14),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_person_is_not_their_own_manager() {
        let mut person = claims();
        person.manager_email = Some("ALICE@acme.test".into());
        let mut no_manager = alice();
        no_manager.manager = None;
        no_manager.manager_id = None;
        assert!(owned_changes(&person, &no_manager, &OwnedAttribute::ALL).is_empty());
    }

    #[test]
    fn new_accounts_use_the_defaults_and_the_person() {
        let defaults = LuccaDefaults {
            legal_entity_id: Some(1),
            role_principal_id: Some(55),
            culture_id: Some(1036),
            department_id: Some(13),
        };
        let mut person = claims();
        person.job_title = Some("Sales".into());
        let user = new_user(
            &person,
            None,
            Some(8),
            &defaults,
            &OwnedAttribute::ALL,
            today(),
        )
        .unwrap();
        assert_eq!(user.login, "alice@acme.test");
        assert_eq!(
            (user.department_id, user.manager_id, user.role_principal_id),
            (13, Some(8), 55)
        );
        assert_eq!(user.dt_contract_start, today());
        assert_eq!(user.job_title.as_deref(), Some("Sales"));
        person.login = Some("amartin".into());
        let user = new_user(&person, Some(15), None, &defaults, &[], today()).unwrap();
        assert_eq!((user.login.as_str(), user.department_id), ("amartin", 15));
        assert_eq!(user.job_title, None, "not owned, not written");

        person.family_name = None;
        assert_eq!(
            new_user(&person, None, None, &defaults, &[], today()),
            Err(CannotCreate::MissingAttribute("last name"))
        );
        let err = new_user(
            &claims(),
            None,
            None,
            &LuccaDefaults::default(),
            &[],
            today(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("lucca.defaults."), "{err}");
    }

    #[test]
    fn only_a_single_active_account_can_be_a_manager() {
        let bob = {
            let mut u = LuccaUser::with_id(1);
            u.dt_contract_start = parse_lucca_datetime("2015-03-02");
            u
        };
        let mut gone = LuccaUser::with_id(4);
        gone.dt_contract_end = parse_lucca_datetime("2022-12-31");
        let mut future = LuccaUser::with_id(5);
        future.dt_contract_start = parse_lucca_datetime("2030-09-02");
        assert_eq!(
            manager_among(&[bob.clone(), gone.clone()], today()),
            Resolution::Found(1)
        );
        let mut twin = bob.clone();
        twin.id = 7;
        assert_eq!(manager_among(&[bob, twin], today()), Resolution::Ambiguous);
        assert_eq!(
            manager_among(&[gone, future], today()),
            Resolution::NotActive,
            "a leaver or a future hire manages nobody"
        );
        assert_eq!(manager_among(&[], today()), Resolution::NotFound);
        assert_eq!(Resolution::NotActive.id(), None);
    }

    #[test]
    fn a_department_is_found_by_its_one_name() {
        let department = |id: i64, name: &str| Department {
            id,
            name: name.into(),
        };
        let departments = [
            department(13, "Engineering"),
            department(14, "Human Resources"),
            department(20, "Sales"),
            department(21, " sales "),
        ];
        let find = |name: &str| department_named(&departments, name);
        assert_eq!(find("  engineering "), Resolution::Found(13));
        assert_eq!(find("HUMAN RESOURCES"), Resolution::Found(14));
        assert_eq!(find("Sales"), Resolution::Ambiguous);
        assert_eq!(find("Marketing"), Resolution::NotFound);
        assert_eq!(find(" "), Resolution::NotFound);
    }

    #[test]
    fn missing_defaults_are_all_named() {
        let none = LuccaDefaults::default();
        assert_eq!(
            missing_defaults(&none, None),
            [
                "lucca.defaults.legal_entity_id",
                "lucca.defaults.department_id",
                "lucca.defaults.role_principal_id",
                "lucca.defaults.culture_id"
            ]
        );
        assert_eq!(
            missing_defaults(&none, Some(15)).len(),
            3,
            "a department found by name needs no default"
        );
    }

    #[test]
    fn the_identifier_follows_match_on() {
        let mut person = claims();
        assert_eq!(identifier(&person, MatchOn::Login), "alice@acme.test");
        person.login = Some("amartin".into());
        assert_eq!(identifier(&person, MatchOn::Login), "amartin");
        assert_eq!(identifier(&person, MatchOn::Email), "alice@acme.test");
    }

    #[test]
    fn pending_updates_round_trip_as_small_json() {
        let update = PendingUpdate {
            job_title: Some("CTO".into()),
            ..Default::default()
        };
        let json = serde_json::to_string(&update).unwrap();
        assert_eq!(json, r#"{"job_title":"CTO"}"#);
        assert_eq!(
            serde_json::from_str::<PendingUpdate>(&json).unwrap(),
            update
        );
    }
}

/// A `[[role_mapping]]` row that names a Lucca role, the name resolved to an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuccaRoleRow {
    pub role: String,
    pub module: Option<String>,
    pub lucca_role_id: i64,
}

/// The Lucca roles the table grants a person: those of the rows whose role their claims carry
/// (the mapping that produced the claims decided which rows matched).
pub fn lucca_roles_granted(
    rows: &[LuccaRoleRow],
    claims: &Claims,
) -> std::collections::BTreeSet<i64> {
    rows.iter()
        .filter(|row| match &row.module {
            Some(module) => claims
                .roles_by_module
                .get(module)
                .is_some_and(|roles| roles.contains(&row.role)),
            None => claims.roles.contains(&row.role),
        })
        .map(|row| row.lucca_role_id)
        .collect()
}

/// A change of a person's `habilitedRoles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleChange {
    pub add: Vec<i64>,
    pub remove: Vec<i64>,
    /// The whole list to write (Lucca's PUT replaces it).
    pub result: Vec<i64>,
}

/// What to write so the person holds exactly the roles the table grants among those it
/// manages (`managed`: every role some row names), keeping every other role (given by hand
/// in Lucca). Never empties a person's roles: when the table would take the last one away,
/// nothing is removed. `None` when nothing changes.
pub fn habilited_roles_change(
    current: &[i64],
    granted: &std::collections::BTreeSet<i64>,
    managed: &std::collections::BTreeSet<i64>,
) -> Option<RoleChange> {
    let mut result: Vec<i64> = current
        .iter()
        .copied()
        .filter(|id| !managed.contains(id) || granted.contains(id))
        .collect();
    result.dedup();
    let add: Vec<i64> = granted
        .iter()
        .copied()
        .filter(|id| !current.contains(id))
        .collect();
    result.extend(&add);
    let mut remove: Vec<i64> = current
        .iter()
        .copied()
        .filter(|id| !result.contains(id))
        .collect();
    if result.is_empty() && !current.is_empty() {
        // Taking every role away would lock the person out of Lucca's modules.
        result = current.to_vec();
        remove.clear();
    }
    remove.dedup();
    (!add.is_empty() || !remove.is_empty()).then_some(RoleChange {
        add,
        remove,
        result,
    })
}

#[cfg(test)]
mod role_tests {
    use std::collections::BTreeSet;

    use super::*;

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn only_managed_roles_change_and_the_last_role_stays() {
        let managed = set(&[59, 60]);
        // Granted 59, holds a hand-given 70: 59 is added, 70 stays.
        assert_eq!(
            habilited_roles_change(&[70], &set(&[59]), &managed),
            Some(RoleChange {
                add: vec![59],
                remove: vec![],
                result: vec![70, 59]
            })
        );
        // No longer granted 60: removed; 70 stays.
        assert_eq!(
            habilited_roles_change(&[60, 70, 59], &set(&[59]), &managed),
            Some(RoleChange {
                add: vec![],
                remove: vec![60],
                result: vec![70, 59]
            })
        );
        assert_eq!(
            habilited_roles_change(&[70, 59], &set(&[59]), &managed),
            None
        );
        // Would lose their only role: kept.
        assert_eq!(habilited_roles_change(&[60], &set(&[]), &managed), None);
        assert_eq!(habilited_roles_change(&[], &set(&[]), &managed), None);
        assert_eq!(
            habilited_roles_change(&[], &set(&[60]), &managed),
            Some(RoleChange {
                add: vec![60],
                remove: vec![],
                result: vec![60]
            })
        );
    }

    #[test]
    fn granted_roles_follow_the_rows_the_claims_matched() {
        let rows = vec![
            LuccaRoleRow {
                role: "validateur_n1".into(),
                module: Some("figgo".into()),
                lucca_role_id: 59,
            },
            LuccaRoleRow {
                role: "administrateur_rh".into(),
                module: Some("figgo".into()),
                lucca_role_id: 60,
            },
            LuccaRoleRow {
                role: "staff".into(),
                module: None,
                lucca_role_id: 61,
            },
        ];
        let mut claims = Claims {
            roles: vec!["validateur_n1".into(), "staff".into()],
            ..Default::default()
        };
        claims
            .roles_by_module
            .insert("figgo".into(), vec!["validateur_n1".into()]);
        assert_eq!(lucca_roles_granted(&rows, &claims), set(&[59, 61]));
        assert!(lucca_roles_granted(&rows, &Claims::default()).is_empty());
    }
}
