//! The organization-structure routes (`/organization/structure/api/…`, lucca-api.md §1.7):
//! v4 departments and legal units, paged with `page` and `limit` (0–100).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::query::Params;
use super::{bad_request, lock, Refusal, Shared};

/// What the routes answer when no `limit` is given.
const DEFAULT_LIMIT: usize = 25;
/// The cursors the legal-units route hands out in `next`: `!` and a page number. Lucca's are
/// opaque; this shape only has to be one a page number cannot be mistaken for.
const CURSOR_PREFIX: char = '!';

fn no_route() -> Refusal {
    Refusal(StatusCode::NOT_FOUND, "No route matches this URL".into())
}

/// `limit`: 0–100, 25 when absent.
fn limit(params: &Params) -> Result<usize, Refusal> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .trim()
            .parse()
            .ok()
            .filter(|l| *l <= 100)
            .ok_or_else(|| bad_request(format!("limit must be between 0 and 100 (got '{l}')"))),
    }
}

/// v4 departments (`GET /organization/structure/api/departments`): `page` (from 1) and
/// `limit` (0–100, 25 by default), every property returned, `next` a URL or `null`.
pub(super) async fn list_departments_v4(
    State(sim): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    let params = Params::new(raw);
    let page: usize =
        match params.get("page") {
            None => 1,
            Some(p) => p.trim().parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                bad_request(format!("page must be an integer from 1 (got '{p}')"))
            })?,
        };
    let limit = limit(&params)?;
    let sim = lock(&sim);
    if !sim.v4_departments {
        return Err(no_route());
    }
    let all = &sim.departments;
    let start = (page - 1).saturating_mul(limit);
    let items: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|d| {
            json!({
                "id": d.id, "name": d.name, "code": null, "description": null,
                "parentId": null, "hierarchy": format!("/{}/", d.id), "isActive": true,
                "headId": null, "sortOrderInSiblings": 0,
            })
        })
        .collect();
    let link = |p: usize| {
        json!(format!(
            "{}/organization/structure/api/departments?page={p}&limit={limit}",
            sim.base_url
        ))
    };
    let next = if limit > 0 && start + limit < all.len() {
        link(page + 1)
    } else {
        Value::Null
    };
    let prev = if page > 1 {
        link(page - 1)
    } else {
        Value::Null
    };
    Ok(
        Json(json!({"items": items, "count": all.len(), "prev": prev, "next": next}))
            .into_response(),
    )
}

/// Legal units (`GET /organization/structure/api/legal-units`): `page` a number from 1 or a
/// cursor this route handed out, `limit` 0–100, `isArchived` `false` (the default), `true` or
/// `true,false`; `prev`, `next` and `count` only when `fields.root` asks for them, as the
/// documentation has clients do. `next` is a link carrying a cursor.
pub(super) async fn list_legal_units(
    State(sim): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Refusal> {
    let params = Params::new(raw);
    let page: usize = match params.get("page") {
        None => 1,
        Some(p) => {
            let p = p.trim();
            p.strip_prefix(CURSOR_PREFIX)
                .unwrap_or(p)
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    bad_request(format!(
                        "page must be an integer from 1 or a cursor from `next` (got '{p}')"
                    ))
                })?
        }
    };
    let limit = limit(&params)?;
    let (active, archived) = match params.get("isArchived").map(str::trim) {
        None | Some("false") => (true, false),
        Some("true") => (false, true),
        Some("true,false" | "false,true") => (true, true),
        Some(other) => {
            return Err(bad_request(format!(
                "isArchived must be true, false or true,false (got '{other}')"
            )))
        }
    };
    let root: Vec<String> = params
        .get("fields.root")
        .unwrap_or_default()
        .split(',')
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    let sim = lock(&sim);
    if let Some(status) = sim.legal_units_answer {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
        return Err(match status {
            StatusCode::NOT_FOUND => no_route(),
            other => Refusal(other, "This API key may not read legal units".into()),
        });
    }
    let all: Vec<Value> = sim
        .legal_entities
        .iter()
        .filter(|_| active)
        .map(|l| (l, false))
        .chain(
            sim.archived_legal_entities
                .iter()
                .filter(|_| archived)
                .map(|l| (l, true)),
        )
        .map(|(l, is_archived)| {
            json!({
                "id": l.id, "name": l.name, "code": null, "countryId": null,
                "isArchived": is_archived,
            })
        })
        .collect();
    let start = (page - 1).saturating_mul(limit);
    let items: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    // The links keep the request's filter and root fields, as a next page must.
    let same_query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            ["isArchived", "fields.root"]
                .into_iter()
                .filter_map(|k| Some((k, params.get(k)?))),
        )
        .finish();
    let link = |p: usize| {
        json!(format!(
            "{}/organization/structure/api/legal-units?page=%21{p}&limit={limit}&{same_query}",
            sim.base_url
        ))
    };
    let mut body = serde_json::Map::new();
    body.insert("items".into(), Value::Array(items));
    if root.iter().any(|f| f == "next") {
        let next = if limit > 0 && start + limit < all.len() {
            link(page + 1)
        } else {
            Value::Null
        };
        body.insert("next".into(), next);
    }
    if root.iter().any(|f| f == "prev") {
        let prev = if page > 1 {
            link(page - 1)
        } else {
            Value::Null
        };
        body.insert("prev".into(), prev);
    }
    if root.iter().any(|f| f == "count") {
        body.insert("count".into(), json!(all.len()));
    }
    Ok(Json(Value::Object(body)).into_response())
}
