//! Wire types of Lucca's legacy v3 directory API, parsed leniently.
//!
//! Lucca's own documentation disagrees with itself on field names (`modifiedAt`/`modifiedOn`,
//! `cultureId`/`cultureID`) and shows dates with and without offsets, so users are read through a
//! hand-written deserializer that matches keys case-insensitively, never fails on an optional
//! field of an unexpected shape, and keeps every field it does not know in `extra`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The projection asked for by default: everything the bridge needs to match, check and
/// provision a person, and nothing that costs Lucca a join it does not need.
pub const DEFAULT_USER_FIELDS: &str = "id,login,mail,firstName,lastName,employeeNumber,jobTitle,\
dtContractStart,dtContractEnd,departmentId,department[id,name],managerId,manager[id,name,mail],\
legalEntityId,modifiedAt";

/// A Lucca user as returned by `/api/v3/users`. Only `id` is guaranteed: what else is present
/// depends on the `fields=` projection and on the API key's rights.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LuccaUser {
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dt_contract_start: Option<NaiveDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dt_contract_end: Option<NaiveDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<DepartmentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<ManagerRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_entity_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_principal_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub culture_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<NaiveDateTime>,
    /// Every other field, as Lucca sent it (`name`, `extendedData`, `e_*`, `applicationData`…).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `department` as embedded in a user (`department[id,name]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DepartmentRef {
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
}

/// `manager` as embedded in a user (`manager[id,name,mail]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ManagerRef {
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub mail: Option<String>,
}

/// A department of the v4 route (or of the deprecated `/api/v3/departments`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Department {
    #[serde(deserialize_with = "lenient_i64")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
}

/// A legal unit (the legal entity a user's `legalEntityId` names) of
/// `GET /organization/structure/api/legal-units`; only what the bridge shows is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LegalUnit {
    #[serde(deserialize_with = "lenient_i64")]
    pub id: i64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
}

/// Where a person's contract stands on a given day. Lucca refuses SSO sign-in outside a
/// contract ("No user found with that login"), so the bridge must tell these apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractStatus {
    Active,
    /// The contract starts on this (future) date.
    NotStarted(NaiveDate),
    /// The contract ended on this (past) date.
    Ended(NaiveDate),
}

impl LuccaUser {
    /// A user with only an id, for building fixtures.
    pub fn with_id(id: i64) -> Self {
        LuccaUser {
            id,
            login: None,
            mail: None,
            first_name: None,
            last_name: None,
            employee_number: None,
            job_title: None,
            dt_contract_start: None,
            dt_contract_end: None,
            department_id: None,
            department: None,
            manager_id: None,
            manager: None,
            legal_entity_id: None,
            role_principal_id: None,
            culture_id: None,
            modified_at: None,
            extra: Map::new(),
        }
    }

    /// Contract state on `today`; the end date is the last day worked, so it is still active.
    pub fn contract_status(&self, today: NaiveDate) -> ContractStatus {
        if let Some(end) = self.dt_contract_end.map(|d| d.date()) {
            if end < today {
                return ContractStatus::Ended(end);
            }
        }
        if let Some(start) = self.dt_contract_start.map(|d| d.date()) {
            if start > today {
                return ContractStatus::NotStarted(start);
            }
        }
        ContractStatus::Active
    }

    pub fn is_active(&self, today: NaiveDate) -> bool {
        self.contract_status(today) == ContractStatus::Active
    }

    /// `departmentId`, or the id inside `department` when only the sub-object was projected.
    pub fn effective_department_id(&self) -> Option<i64> {
        self.department_id
            .or_else(|| self.department.as_ref().and_then(|d| d.id))
    }

    /// The ids in `habilitedRoles` (when projected), in Lucca's order.
    pub fn habilited_role_ids(&self) -> Vec<i64> {
        self.extra
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("habilitedRoles"))
            .and_then(|(_, v)| v.as_array())
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.get("id").and_then(as_i64))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn effective_manager_id(&self) -> Option<i64> {
        self.manager_id
            .or_else(|| self.manager.as_ref().and_then(|m| m.id))
    }
}

impl<'de> Deserialize<'de> for LuccaUser {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        LuccaUser::from_map(map).map_err(serde::de::Error::custom)
    }
}

impl LuccaUser {
    fn from_map(map: Map<String, Value>) -> Result<Self, String> {
        let mut user = LuccaUser::with_id(0);
        let mut id = None;
        for (key, value) in map {
            // A field of an unexpected shape is kept verbatim in `extra` rather than failing
            // the whole page: one odd record must not block every sign-in.
            let kept = match key.to_ascii_lowercase().as_str() {
                "id" => {
                    id = as_i64(&value);
                    id.is_some()
                }
                "login" => set(&mut user.login, as_string(&value), &value),
                "mail" => set(&mut user.mail, as_string(&value), &value),
                "firstname" => set(&mut user.first_name, as_string(&value), &value),
                "lastname" => set(&mut user.last_name, as_string(&value), &value),
                "employeenumber" => set(&mut user.employee_number, as_string(&value), &value),
                "jobtitle" => set(&mut user.job_title, as_string(&value), &value),
                "dtcontractstart" => set(&mut user.dt_contract_start, as_datetime(&value), &value),
                "dtcontractend" => set(&mut user.dt_contract_end, as_datetime(&value), &value),
                "departmentid" => set(&mut user.department_id, as_i64(&value), &value),
                "department" => set(&mut user.department, as_object(&value), &value),
                "managerid" => set(&mut user.manager_id, as_i64(&value), &value),
                "manager" => set(&mut user.manager, as_object(&value), &value),
                "legalentityid" => set(&mut user.legal_entity_id, as_i64(&value), &value),
                "roleprincipalid" => set(&mut user.role_principal_id, as_i64(&value), &value),
                "cultureid" => set(&mut user.culture_id, as_i64(&value), &value),
                "modifiedat" | "modifiedon" => {
                    set(&mut user.modified_at, as_datetime(&value), &value)
                }
                _ => false,
            };
            if !kept {
                user.extra.insert(key, value);
            }
        }
        user.id = id.ok_or("a Lucca user has no usable `id`")?;
        Ok(user)
    }
}

/// Store `parsed`; report whether the raw value was understood (null counts as understood).
fn set<T>(slot: &mut Option<T>, parsed: Option<T>, raw: &Value) -> bool {
    let understood = parsed.is_some() || raw.is_null();
    if parsed.is_some() {
        *slot = parsed;
    }
    understood
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        // Employee numbers sometimes arrive as numbers from imports.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_datetime(value: &Value) -> Option<NaiveDateTime> {
    value.as_str().and_then(parse_lucca_datetime)
}

fn as_object<T: DeserializeOwned>(value: &Value) -> Option<T> {
    if value.is_object() {
        serde_json::from_value(value.clone()).ok()
    } else {
        None
    }
}

/// Parse a Lucca date: local `2014-09-01T00:00:00` (with optional fraction), a bare
/// `2014-09-01`, or one carrying `Z`/an offset, in which case the wall-clock time as written is
/// kept: Lucca dates are calendar dates, and shifting them to UTC could move them a day.
pub fn parse_lucca_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.naive_local());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt);
        }
    }
    // `2014-09-01T00:00:00+02:00` without seconds or with a space: drop the zone and retry.
    if let Some(stripped) = text.strip_suffix('Z') {
        return parse_lucca_datetime(stripped);
    }
    if let Some(pos) = text.rfind(['+', '-']).filter(|&p| p > 10) {
        return parse_lucca_datetime(&text[..pos]);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN))
}

/// Lucca's wire format for a calendar date: local midnight, no offset.
pub fn format_lucca_date(date: NaiveDate) -> String {
    format!("{}T00:00:00", date.format("%Y-%m-%d"))
}

fn serialize_lucca_date<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_lucca_date(*date))
}

fn lenient_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(as_i64(&Value::deserialize(d)?))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    as_i64(&Value::deserialize(d)?)
        .ok_or_else(|| serde::de::Error::custom("expected an integer id"))
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(as_string(&Value::deserialize(d)?))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(as_string(&Value::deserialize(d)?).unwrap_or_default())
}

/// `{"data": {"items": [...], "count": N}}`. Items are kept raw so one unreadable record can be
/// skipped instead of failing the page.
#[derive(Debug, Deserialize)]
pub(crate) struct ListEnvelope {
    pub data: ListData,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListData {
    #[serde(default)]
    pub items: Vec<Value>,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub count: Option<u64>,
}

/// `{"data": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ItemEnvelope<T> {
    pub data: T,
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// One page of `GET /api/v3/users`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub items: Vec<LuccaUser>,
    /// Total matching users, when `collection.count` was asked for.
    pub count: Option<u64>,
}

/// The body of `POST /api/v3/users`: the fields Lucca's import documentation lists as
/// mandatory, plus the usual optional ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub login: String,
    pub first_name: String,
    pub last_name: String,
    pub mail: String,
    #[serde(serialize_with = "serialize_lucca_date")]
    pub dt_contract_start: NaiveDate,
    pub legal_entity_id: i64,
    pub department_id: i64,
    pub role_principal_id: i64,
    pub culture_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
}

/// A partial update for `PUT /api/v3/users/{id}`: only the fields that are `Some` are sent, so
/// fields the bridge does not own are never overwritten.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<i64>,
    /// `Some(None)` removes the manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<Option<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_entity_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_principal_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub culture_id: Option<i64>,
    /// Extension fields written top-level (`e_*` custom fields, `userAxisValues_{n}`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        *self == UserChanges::default()
    }

    /// Drop every field `current` already holds, so only real changes are sent. Names are
    /// compared exactly, mail and login ignoring ASCII case (Lucca matches them that way, and
    /// a case-only rewrite would churn `modifiedAt` for nothing). `extra` is kept as given:
    /// the projection rarely includes those fields.
    pub fn without_unchanged(mut self, current: &LuccaUser) -> UserChanges {
        fn same_text(want: &Option<String>, have: &Option<String>) -> bool {
            matches!((want, have), (Some(w), Some(h)) if w == h)
        }
        fn same_ci(want: &Option<String>, have: &Option<String>) -> bool {
            matches!((want, have), (Some(w), Some(h)) if w.eq_ignore_ascii_case(h))
        }
        fn same_id(want: Option<i64>, have: Option<i64>) -> bool {
            want.is_some() && want == have
        }
        if same_ci(&self.login, &current.login) {
            self.login = None;
        }
        if same_ci(&self.mail, &current.mail) {
            self.mail = None;
        }
        if same_text(&self.first_name, &current.first_name) {
            self.first_name = None;
        }
        if same_text(&self.last_name, &current.last_name) {
            self.last_name = None;
        }
        if same_text(&self.employee_number, &current.employee_number) {
            self.employee_number = None;
        }
        if same_text(&self.job_title, &current.job_title) {
            self.job_title = None;
        }
        if same_id(self.department_id, current.effective_department_id()) {
            self.department_id = None;
        }
        if self.manager_id == Some(current.effective_manager_id()) {
            self.manager_id = None;
        }
        if same_id(self.legal_entity_id, current.legal_entity_id) {
            self.legal_entity_id = None;
        }
        if same_id(self.role_principal_id, current.role_principal_id) {
            self.role_principal_id = None;
        }
        if same_id(self.culture_id, current.culture_id) {
            self.culture_id = None;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn parses_the_documented_example_and_keeps_unknown_fields() {
        let user: LuccaUser = serde_json::from_value(json!({
            "id": 416, "name": "John Doe", "modifiedAt": "2015-09-07T10:20:06.583",
            "lastName": "DOE", "firstName": "John", "login": "jdoe", "mail": "no-reply@lucca.fr",
            "dtContractStart": "2014-09-01T00:00:00", "dtContractEnd": null,
            "employeeNumber": "00057", "cultureID": 1036, "legalEntityId": 1,
            "departmentId": 13, "department": {"id": 13, "name": "BU Timmi/Lucca", "url": "x"},
            "managerId": 383, "manager": {"id": 383, "name": "Roger Smith", "url": "y"},
            "rolePrincipalId": 55, "e_shoeSize": 44,
        }))
        .unwrap();
        assert_eq!(user.id, 416);
        assert_eq!(user.culture_id, Some(1036));
        assert_eq!(user.dt_contract_start.unwrap().date(), date(2014, 9, 1));
        assert_eq!(user.dt_contract_end, None);
        assert_eq!(
            user.modified_at
                .unwrap()
                .and_utc()
                .timestamp_subsec_millis(),
            583
        );
        assert_eq!(
            user.department.as_ref().unwrap().name.as_deref(),
            Some("BU Timmi/Lucca")
        );
        assert_eq!(user.manager.as_ref().unwrap().id, Some(383));
        assert_eq!(user.extra["name"], json!("John Doe"));
        assert_eq!(user.extra["e_shoeSize"], json!(44));
        assert!(!user.extra.contains_key("cultureID"));
    }

    #[test]
    fn is_lenient_about_names_types_and_dates() {
        let user: LuccaUser = serde_json::from_value(json!({
            "Id": "7", "FirstName": "Ana", "modifiedOn": "2024-01-02T03:04:05Z",
            "cultureId": 1033, "employeeNumber": 57, "dtContractStart": "2024-01-01",
            "dtContractEnd": "2024-12-31T00:00:00+01:00", "manager": "not an object",
            "departmentId": null,
        }))
        .unwrap();
        assert_eq!(user.id, 7);
        assert_eq!(user.first_name.as_deref(), Some("Ana"));
        assert_eq!(user.employee_number.as_deref(), Some("57"));
        assert_eq!(user.culture_id, Some(1033));
        assert_eq!(user.modified_at.unwrap().date(), date(2024, 1, 2));
        assert_eq!(user.dt_contract_start.unwrap().date(), date(2024, 1, 1));
        assert_eq!(user.dt_contract_end.unwrap().date(), date(2024, 12, 31));
        assert_eq!(user.manager, None);
        assert_eq!(user.extra["manager"], json!("not an object"));
        assert!(serde_json::from_value::<LuccaUser>(json!({"login": "x"})).is_err());
    }

    #[test]
    fn parses_date_variants() {
        for text in [
            "2014-09-01T00:00:00",
            "2014-09-01T00:00:00.000",
            "2014-09-01",
            "2014-09-01T00:00:00Z",
            "2014-09-01T00:00:00+02:00",
            "2014-09-01T00:00-05:00",
            "2014-09-01 00:00:00",
        ] {
            let parsed = parse_lucca_datetime(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(parsed.date(), date(2014, 9, 1), "{text}");
        }
        assert_eq!(parse_lucca_datetime("soon"), None);
        assert_eq!(parse_lucca_datetime(""), None);
    }

    #[test]
    fn contract_status_is_tri_state() {
        let mut user = LuccaUser::with_id(1);
        let today = date(2025, 6, 1);
        assert_eq!(user.contract_status(today), ContractStatus::Active);
        user.dt_contract_start = parse_lucca_datetime("2025-06-02");
        assert_eq!(
            user.contract_status(today),
            ContractStatus::NotStarted(date(2025, 6, 2))
        );
        user.dt_contract_start = parse_lucca_datetime("2025-06-01");
        user.dt_contract_end = parse_lucca_datetime("2025-06-01T00:00:00");
        assert!(user.is_active(today), "the last day is still worked");
        user.dt_contract_end = parse_lucca_datetime("2025-05-31");
        assert_eq!(
            user.contract_status(today),
            ContractStatus::Ended(date(2025, 5, 31))
        );
        assert!(!user.is_active(today));
    }

    #[test]
    fn changes_serialize_only_what_is_set() {
        let changes = UserChanges {
            job_title: Some("CTO".into()),
            manager_id: Some(None),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&changes).unwrap(),
            json!({"jobTitle": "CTO", "managerId": null})
        );
        let new = NewUser {
            login: "a".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            mail: "a@b.test".into(),
            dt_contract_start: date(2025, 1, 6),
            legal_entity_id: 1,
            department_id: 13,
            role_principal_id: 55,
            culture_id: 1036,
            manager_id: None,
            employee_number: None,
            job_title: None,
        };
        let body = serde_json::to_value(&new).unwrap();
        assert_eq!(body["dtContractStart"], json!("2025-01-06T00:00:00"));
        assert!(body.get("managerId").is_none());
    }

    #[test]
    fn without_unchanged_drops_fields_already_in_lucca() {
        let mut current = LuccaUser::with_id(3);
        current.mail = Some("Alice@acme.test".into());
        current.job_title = Some("Dev".into());
        current.department = Some(DepartmentRef {
            id: Some(13),
            name: None,
        });
        let changes = UserChanges {
            mail: Some("alice@acme.test".into()),
            job_title: Some("Lead dev".into()),
            department_id: Some(13),
            manager_id: Some(None),
            ..Default::default()
        }
        .without_unchanged(&current);
        assert_eq!(
            changes,
            UserChanges {
                job_title: Some("Lead dev".into()),
                ..Default::default()
            }
        );
        assert!(UserChanges::default()
            .without_unchanged(&current)
            .is_empty());
    }
}
