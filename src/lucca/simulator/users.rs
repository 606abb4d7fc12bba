//! The users, v3 departments and roles routes, and how the simulator stores and checks users.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use super::query::{date_filter, project, text_filter, Params};
use super::{bad_request, lock, user_not_found, NamedRef, Refusal, Shared, Sim};
use crate::lucca::model::parse_lucca_datetime;

const REQUIRED_ON_CREATE: [&str; 9] = [
    "login",
    "firstName",
    "lastName",
    "mail",
    "legalEntityId",
    "dtContractStart",
    "departmentId",
    "rolePrincipalId",
    "cultureID",
];
/// Stored under these names whatever case a client writes them in.
const CANONICAL_FIELDS: [&str; 24] = [
    "id",
    "login",
    "mail",
    "firstName",
    "lastName",
    "employeeNumber",
    "jobTitle",
    "dtContractStart",
    "dtContractEnd",
    "birthDate",
    "departmentId",
    "managerId",
    "legalEntityId",
    "rolePrincipalId",
    "cultureID",
    "calendarId",
    "modifiedAt",
    "directLine",
    "professionalMobile",
    "personalEmail",
    "personalMobile",
    "gender",
    "nationality",
    "extendedData",
];
const DATE_FIELDS: [&str; 3] = ["dtContractStart", "dtContractEnd", "birthDate"];
const ID_FIELDS: [&str; 6] = [
    "departmentId",
    "managerId",
    "legalEntityId",
    "rolePrincipalId",
    "cultureID",
    "calendarId",
];
/// Computed from other fields; a write cannot set them.
const READ_ONLY: [&str; 9] = [
    "id",
    "name",
    "url",
    "displayName",
    "modifiedAt",
    "department",
    "manager",
    "legalEntity",
    "rolePrincipal",
];

impl Sim {
    /// The stored user plus what Lucca computes on read.
    fn render(&self, user: &Map<String, Value>) -> Value {
        let mut out = user.clone();
        let id = user.get("id").and_then(Value::as_i64).unwrap_or_default();
        let text = |m: &Map<String, Value>, k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let full_name = |m: &Map<String, Value>| {
            format!("{} {}", text(m, "firstName"), text(m, "lastName"))
                .trim()
                .to_string()
        };
        out.insert("name".into(), json!(full_name(user)));
        out.insert(
            "displayName".into(),
            json!(format!("{} {}", text(user, "lastName"), text(user, "firstName")).trim()),
        );
        out.insert(
            "url".into(),
            json!(format!("{}/api/v3/users/{id}", self.base_url)),
        );
        for key in [
            "dtContractEnd",
            "managerId",
            "departmentId",
            "employeeNumber",
            "jobTitle",
        ] {
            out.entry(key).or_insert(Value::Null);
        }
        let reference = |kind: &str, r: &NamedRef| json!({"id": r.id, "name": r.name, "url": format!("{}/api/v3/{kind}/{}", self.base_url, r.id)});
        let id_of = |k: &str| user.get(k).and_then(Value::as_i64);
        out.insert(
            "department".into(),
            Self::named(&self.departments, id_of("departmentId"))
                .map_or(Value::Null, |d| reference("departments", d)),
        );
        out.insert(
            "legalEntity".into(),
            Self::named(&self.legal_entities, id_of("legalEntityId"))
                .map_or(Value::Null, |d| reference("legalEntities", d)),
        );
        out.insert(
            "rolePrincipal".into(),
            Self::named(&self.roles, id_of("rolePrincipalId"))
                .map_or(Value::Null, |d| reference("roles", d)),
        );
        let manager =
            id_of("managerId")
                .and_then(|m| self.users.get(&m))
                .map_or(Value::Null, |m| {
                    let mid = m.get("id").cloned().unwrap_or(Value::Null);
                    json!({
                        "id": mid,
                        "name": full_name(m),
                        "url": format!("{}/api/v3/users/{}", self.base_url, mid),
                        "mail": m.get("mail").cloned().unwrap_or(Value::Null),
                    })
                });
        out.insert("manager".into(), manager);
        let habilited: Vec<Value> = user
            .get("habilitedRoles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .map(|id| match Self::named(&self.roles, Some(id)) {
                Some(r) => reference("roles", r),
                None => json!({"id": id, "name": null}),
            })
            .collect();
        out.insert("habilitedRoles".into(), Value::Array(habilited));
        Value::Object(out)
    }

    fn is_former(&self, user: &Map<String, Value>, today: NaiveDate) -> bool {
        user.get("dtContractEnd")
            .and_then(Value::as_str)
            .and_then(parse_lucca_datetime)
            .is_some_and(|end| end.date() < today)
    }

    fn login_taken(&self, login: &str, except: Option<i64>) -> bool {
        self.users.iter().any(|(id, u)| {
            Some(*id) != except
                && u.get("login")
                    .and_then(Value::as_str)
                    .is_some_and(|l| l.eq_ignore_ascii_case(login))
        })
    }

    /// Check and normalise the writable fields of `body` for a user (`existing` on update).
    fn validate_write(
        &self,
        body: &mut Map<String, Value>,
        existing: Option<i64>,
    ) -> Result<(), String> {
        if existing.is_none() {
            let missing: Vec<&str> = REQUIRED_ON_CREATE
                .iter()
                .copied()
                .filter(|k| match body.get(*k) {
                    None | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.trim().is_empty(),
                    _ => false,
                })
                .map(|k| if k == "cultureID" { "cultureId" } else { k })
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "The following fields are required: {}",
                    missing.join(", ")
                ));
            }
        }
        for key in ["login", "firstName", "lastName", "mail"] {
            match body.get(key) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                None => {}
                Some(_) => return Err(format!("The field '{key}' cannot be empty")),
            }
        }
        for key in ["employeeNumber", "jobTitle"] {
            match body.get(key) {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(Value::Number(n)) => {
                    let n = n.to_string();
                    body.insert(key.into(), Value::String(n));
                }
                Some(_) => return Err(format!("The field '{key}' must be a string")),
            }
        }
        for key in ID_FIELDS {
            match body.get(key).cloned() {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let id = match &v {
                        Value::Number(n) => n.as_i64(),
                        Value::String(s) => s.trim().parse().ok(),
                        _ => None,
                    }
                    .ok_or_else(|| format!("The field '{key}' must be an integer"))?;
                    body.insert(key.into(), json!(id));
                }
            }
        }
        for key in DATE_FIELDS {
            match body.get(key).cloned() {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let date = v
                        .as_str()
                        .and_then(parse_lucca_datetime)
                        .ok_or_else(|| format!("The field '{key}' is not a valid date: {v}"))?;
                    body.insert(
                        key.into(),
                        json!(date.format("%Y-%m-%dT%H:%M:%S").to_string()),
                    );
                }
            }
        }
        if let Some(mail) = body.get("mail").and_then(Value::as_str) {
            if !crate::config::looks_like_email(mail) {
                return Err(format!("'{mail}' is not a valid email address"));
            }
        }
        if let Some(login) = body.get("login").and_then(Value::as_str) {
            if self.login_taken(login, existing) {
                return Err(format!("A user with the login '{login}' already exists"));
            }
        }
        if let Some(roles) = body.get("habilitedRoles") {
            let ids: Option<Vec<i64>> = roles.as_array().and_then(|list| {
                list.iter()
                    .map(|r| r.get("id").and_then(Value::as_i64))
                    .collect()
            });
            let ids = ids.ok_or("habilitedRoles must be a list of {\"id\": n}")?;
            if let Some(bad) = ids
                .iter()
                .find(|id| Self::named(&self.roles, Some(**id)).is_none())
            {
                return Err(format!("Role {bad} does not exist"));
            }
            body.insert(
                "habilitedRoles".into(),
                Value::Array(ids.into_iter().map(|id| json!({"id": id})).collect()),
            );
        }
        let id_of = |k: &str| body.get(k).and_then(Value::as_i64);
        if let Some(d) = id_of("departmentId") {
            if Self::named(&self.departments, Some(d)).is_none() {
                return Err(format!("Department {d} does not exist"));
            }
        }
        if let Some(l) = id_of("legalEntityId") {
            if Self::named(&self.archived_legal_entities, Some(l)).is_some() {
                return Err(format!("Legal entity {l} is archived"));
            }
            if !self.legal_entities.is_empty()
                && Self::named(&self.legal_entities, Some(l)).is_none()
            {
                return Err(format!("Legal entity {l} does not exist"));
            }
        }
        if let Some(r) = id_of("rolePrincipalId") {
            if !self.roles.is_empty() && Self::named(&self.roles, Some(r)).is_none() {
                return Err(format!("Role {r} does not exist"));
            }
        }
        if let Some(c) = id_of("cultureID") {
            if !(1025..=58380).contains(&c) {
                return Err(format!("Culture {c} is not a valid LCID"));
            }
        }
        if let Some(m) = id_of("managerId") {
            if Some(m) == existing {
                return Err("A user cannot be their own manager".into());
            }
            if !self.users.contains_key(&m) {
                return Err(format!("Manager {m} does not exist"));
            }
        }
        if let Some(number) = body.get("employeeNumber").and_then(Value::as_str) {
            let current = existing.and_then(|id| self.users.get(&id));
            let entity = id_of("legalEntityId").or_else(|| {
                current
                    .and_then(|u| u.get("legalEntityId"))
                    .and_then(Value::as_i64)
            });
            let clash = self.users.iter().any(|(id, u)| {
                Some(*id) != existing
                    && u.get("employeeNumber").and_then(Value::as_str) == Some(number)
                    && u.get("legalEntityId").and_then(Value::as_i64) == entity
            });
            if clash && !number.is_empty() {
                return Err(format!(
                    "The employee number '{number}' is already used in this legal entity"
                ));
            }
        }
        Ok(())
    }
}

/// Put known fields under their canonical names and `e_*` custom fields under
/// `extendedData`, as Lucca stores them.
pub(super) fn canonicalize(raw: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in raw {
        let lower = key.to_ascii_lowercase();
        if lower.starts_with("e_") {
            let extended = out
                .entry("extendedData")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = extended {
                m.insert(key, value);
            }
            continue;
        }
        let canonical = match lower.as_str() {
            "modifiedon" => Some("modifiedAt"),
            _ => CANONICAL_FIELDS
                .iter()
                .copied()
                .find(|c| c.eq_ignore_ascii_case(&lower)),
        };
        let name = canonical.map_or(key, str::to_owned);
        if name == "extendedData" {
            if let (Some(Value::Object(existing)), Value::Object(new)) =
                (out.get_mut("extendedData"), &value)
            {
                existing.extend(new.clone());
                continue;
            }
        }
        out.insert(name, value);
    }
    out
}

/// A write body: flat, or wrapped in `{"data": …}` (Lucca's docs show both).
fn write_body(bytes: &Bytes) -> Result<Map<String, Value>, Refusal> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad_request(format!("The request body is not valid JSON: {e}")))?;
    let object = match value {
        Value::Object(mut map)
            if map.len() == 1 && map.get("data").is_some_and(Value::is_object) =>
        {
            match map.remove("data") {
                Some(Value::Object(inner)) => inner,
                _ => Map::new(),
            }
        }
        Value::Object(map) => map,
        _ => return Err(bad_request("The request body must be a JSON object")),
    };
    let mut body = canonicalize(object);
    body.retain(|k, _| !READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(k)));
    Ok(body)
}

pub(super) fn now_stamp() -> Value {
    json!(chrono::Local::now()
        .naive_local()
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string())
}

pub(super) async fn list_users(
    State(sim): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    let params = Params::new(raw);
    let (offset, limit) = params.paging()?;
    let (selection, with_count) = params.fields()?;
    let ids: Option<Vec<i64>> = match params.get("id") {
        None => None,
        Some(list) => match list.split(',').map(|s| s.trim().parse()).collect() {
            Ok(ids) => Some(ids),
            Err(_) => {
                return Err(bad_request(format!(
                    "id must be a comma-separated list of integers (got '{list}')"
                )))
            }
        },
    };
    let former = params
        .get("formerEmployees")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let sim = lock(&sim);
    let today = sim.today();
    let mut matched = Vec::new();
    for user in sim.users.values() {
        let hidden = !former && params.get("dtContractEnd").is_none() && sim.is_former(user, today);
        if hidden {
            continue;
        }
        if let Some(mail) = params.get("mail") {
            if !text_filter(user.get("mail"), mail) {
                continue;
            }
        }
        if let Some(login) = params.get("login") {
            if !text_filter(user.get("login"), login) {
                continue;
            }
        }
        if let Some(ids) = &ids {
            if !user
                .get("id")
                .and_then(Value::as_i64)
                .is_some_and(|id| ids.contains(&id))
            {
                continue;
            }
        }
        let mut keep = true;
        for key in ["modifiedAt", "dtContractStart", "dtContractEnd"] {
            if let Some(filter) = params.get(key) {
                match date_filter(user.get(key), filter) {
                    Ok(ok) => keep &= ok,
                    Err(message) => return Err(bad_request(format!("{key}: {message}"))),
                }
            }
        }
        if keep {
            matched.push(sim.render(user));
        }
    }
    if let Some(order) = params.get("orderBy") {
        let (field, direction) = order.split_once(',').unwrap_or((order, "asc"));
        matched.sort_by(|a, b| compare_field(a, b, field));
        if direction.trim().eq_ignore_ascii_case("desc") {
            matched.reverse();
        }
    }
    let count = matched.len();
    let mut data = Map::new();
    if !selection.is_empty() {
        let items: Vec<Value> = matched
            .iter()
            .skip(offset)
            .take(limit)
            .map(|u| project(u, &selection))
            .collect();
        data.insert("items".into(), Value::Array(items));
    }
    if with_count {
        data.insert("count".into(), json!(count));
    }
    Ok(Json(json!({ "data": data })).into_response())
}

fn compare_field(a: &Value, b: &Value, field: &str) -> std::cmp::Ordering {
    let get = |v: &Value| {
        v.as_object()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(field.trim())))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null)
    };
    match (get(a), get(b)) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

fn parse_user_id(raw: &str) -> Result<i64, Refusal> {
    raw.parse()
        .map_err(|_| bad_request(format!("'{raw}' is not a user id")))
}

pub(super) async fn get_user(
    State(sim): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    let id = parse_user_id(&id)?;
    let (selection, _) = Params::new(raw).fields()?;
    let sim = lock(&sim);
    let user = sim.users.get(&id).ok_or_else(|| user_not_found(id))?;
    Ok(Json(json!({"data": project(&sim.render(user), &selection)})).into_response())
}

pub(super) async fn create_user(
    State(sim): State<Shared>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> Result<Response, Refusal> {
    let (selection, _) = Params::new(raw).fields()?;
    let mut body = write_body(&bytes)?;
    let mut sim = lock(&sim);
    sim.validate_write(&mut body, None).map_err(bad_request)?;
    let id = sim.users.keys().next_back().copied().unwrap_or(0) + 1;
    body.insert("id".into(), json!(id));
    body.entry("dtContractEnd").or_insert(Value::Null);
    body.insert("modifiedAt".into(), now_stamp());
    let rendered = sim.render(&body);
    sim.users.insert(id, body);
    Ok(Json(json!({"data": project(&rendered, &selection)})).into_response())
}

pub(super) async fn update_user(
    State(sim): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
    bytes: Bytes,
) -> Result<Response, Refusal> {
    let id = parse_user_id(&id)?;
    let (selection, _) = Params::new(raw).fields()?;
    let mut body = write_body(&bytes)?;
    let mut sim = lock(&sim);
    if !sim.users.contains_key(&id) {
        return Err(user_not_found(id));
    }
    sim.validate_write(&mut body, Some(id))
        .map_err(bad_request)?;
    let user = sim.users.get_mut(&id).ok_or_else(|| user_not_found(id))?;
    for (key, value) in body {
        match (key.as_str(), value, user.get_mut("extendedData")) {
            ("extendedData", Value::Object(new), Some(Value::Object(existing))) => {
                existing.extend(new);
            }
            (_, value, _) => {
                user.insert(key, value);
            }
        }
    }
    user.insert("modifiedAt".into(), now_stamp());
    let user = user.clone();
    Ok(Json(json!({"data": project(&sim.render(&user), &selection)})).into_response())
}

/// v3 departments: gone from today's Lucca (404) unless the simulator is told to keep them.
pub(super) async fn list_departments(
    State(sim): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    if !lock(&sim).v3_departments {
        return Err(Refusal(
            axum::http::StatusCode::NOT_FOUND,
            "This route is no longer served: use /organization/structure/api/departments".into(),
        ));
    }
    let params = Params::new(raw);
    let (offset, limit) = params.paging()?;
    let (selection, with_count) = params.fields()?;
    let sim = lock(&sim);
    let all: Vec<Value> = sim
        .departments
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "name": d.name, "isActive": true,
                "url": format!("{}/api/v3/departments/{}", sim.base_url, d.id),
            })
        })
        .collect();
    let mut data = Map::new();
    if !selection.is_empty() {
        let items: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|d| project(d, &selection))
            .collect();
        data.insert("items".into(), Value::Array(items));
    }
    if with_count {
        data.insert("count".into(), json!(all.len()));
    }
    Ok(Json(json!({ "data": data })).into_response())
}

/// `GET /api/v3/roles`: the seed's roles (`id`, `name`).
pub(super) async fn list_roles(
    State(sim): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    let params = Params::new(raw);
    let (offset, limit) = params.paging()?;
    let (selection, _) = params.fields()?;
    let sim = lock(&sim);
    let items: Vec<Value> = sim
        .roles
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| {
            let full = json!({"id": r.id, "name": r.name, "url": format!("{}/api/v3/roles/{}", sim.base_url, r.id)});
            project(&full, &selection)
        })
        .collect();
    Ok(Json(json!({"data": {"items": items}})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_canonicalized() {
        let map = canonicalize(
            json!({"CultureId": 1036, "modifiedOn": "x", "e_size": 1, "Mail": "a@b.c"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            Value::Object(map),
            json!({"cultureID": 1036, "modifiedAt": "x", "extendedData": {"e_size": 1}, "mail": "a@b.c"})
        );
    }
}
