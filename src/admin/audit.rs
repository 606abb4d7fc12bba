//! The audit log, read back: one parser of the filters and one query for the JSON API
//! (`GET /admin/audit`, bearer token) and the console's page and CSV export.

use axum::extract::{FromRef, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{render, ConsoleAdmin, ConsoleState};
use crate::store::{AuditEntry, AuditFilter, MAX_AUDIT_PAGE};
use crate::web::{Admin, AdminError, AdminToken, PageError};

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 100;
/// The longest filter value accepted (the stored fields are capped at 256 bytes anyway).
const MAX_PARAM_BYTES: usize = 512;

/// The query parameters, as text: every one is checked here, with a message that names it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The person: their subject.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "person")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    #[error("{0}")]
    Query(String),
    #[error("{name}=`{value:.64}`: {why}")]
    Bad {
        name: &'static str,
        value: String,
        why: String,
    },
}

/// `None` for an absent or blank value (an HTML form sends its empty fields).
fn text(name: &'static str, value: &Option<String>) -> Result<Option<String>, ParamError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.len() > MAX_PARAM_BYTES => Err(ParamError::Bad {
            name,
            value: v.to_string(),
            why: format!("longer than {MAX_PARAM_BYTES} bytes"),
        }),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// A time: RFC 3339 (`2026-12-01T16:00:00Z`), a date-time without zone as an HTML
/// `datetime-local` field sends it (`2026-12-01T16:00`, read as UTC), a date (its first second
/// for `since`, its last for `until`), or unix seconds.
pub fn parse_time(name: &'static str, value: &str, end_of_day: bool) -> Result<i64, ParamError> {
    let value = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp());
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, format) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_opt(23, 59, 59)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(unix) = value.parse::<i64>() {
        return Ok(unix);
    }
    Err(ParamError::Bad {
        name,
        value: value.to_string(),
        why:
            "not a time: give RFC 3339 (2026-12-01T16:00:00Z), a date (2026-12-01) or unix seconds"
                .into(),
    })
}

impl AuditParams {
    /// Read a raw query string; an unknown parameter is refused, not ignored.
    pub fn from_query(query: Option<&str>) -> Result<AuditParams, ParamError> {
        serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| ParamError::Query(format!("bad query: {e}")))
    }

    pub fn filter(&self) -> Result<AuditFilter, ParamError> {
        let since = text("since", &self.since)?
            .map(|v| parse_time("since", &v, false))
            .transpose()?;
        let until = text("until", &self.until)?
            .map(|v| parse_time("until", &v, true))
            .transpose()?;
        if let (Some(s), Some(u)) = (since, until) {
            if s > u {
                return Err(ParamError::Query(
                    "since is after until: nothing could match".into(),
                ));
            }
        }
        let before =
            match text("before", &self.before)? {
                None => None,
                Some(v) => Some(v.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                    ParamError::Bad {
                        name: "before",
                        value: v.clone(),
                        why: "the id of an entry: a positive integer".into(),
                    }
                })?),
            };
        let limit = match text("limit", &self.limit)? {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_AUDIT_PAGE).contains(l))
                .ok_or_else(|| ParamError::Bad {
                    name: "limit",
                    value: v.clone(),
                    why: format!("an integer from 1 to {MAX_AUDIT_PAGE}"),
                })?,
        };
        Ok(AuditFilter {
            event: text("event", &self.event)?,
            outcome: text("outcome", &self.outcome)?,
            subject: text("subject", &self.subject)?,
            client: text("client", &self.client)?,
            since,
            until,
            before,
            limit,
        })
    }

    /// The same query for the next page.
    fn next_query(&self, before: i64) -> String {
        let next = AuditParams {
            before: Some(before.to_string()),
            ..self.non_empty()
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    }

    /// Without the blank fields a form sent, so links stay short.
    fn non_empty(&self) -> AuditParams {
        let keep = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        AuditParams {
            event: keep(&self.event),
            outcome: keep(&self.outcome),
            subject: keep(&self.subject),
            client: keep(&self.client),
            since: keep(&self.since),
            until: keep(&self.until),
            before: keep(&self.before),
            limit: keep(&self.limit),
        }
    }
}

/// An entry as the API and the page show it: RFC 3339 time, `detail` as JSON.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub outcome: String,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub ip: Option<String>,
    pub detail: Value,
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        let detail = match e.detail.as_deref() {
            None => Value::Null,
            // Details are stored as JSON; a row from elsewhere keeps its text, inside an object.
            Some(text) => serde_json::from_str(text).unwrap_or_else(|_| json!({ "text": text })),
        };
        EntryView {
            id: e.id,
            at: chrono::DateTime::from_timestamp(e.at, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            event: e.event,
            outcome: e.outcome,
            subject: e.subject,
            client: e.client,
            ip: e.ip,
            detail,
        }
    }
}

/// One page of entries and the query of the next.
pub struct Found {
    pub entries: Vec<EntryView>,
    /// The cursor of the next page, and the whole query that asks for it.
    pub next_before: Option<i64>,
    pub next_query: Option<String>,
}

pub async fn find(
    st: &ConsoleState,
    params: &AuditParams,
    filter: &AuditFilter,
) -> Result<Found, crate::store::StoreError> {
    let page = st.store.audit_query().query(filter).await?;
    Ok(Found {
        next_before: page.next_before,
        next_query: page.next_before.map(|b| params.next_query(b)),
        entries: page.entries.into_iter().map(EntryView::from).collect(),
    })
}

/// The audit API, for the bearer token (`/admin/audit`).
pub fn api_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
    AdminToken: FromRef<S>,
{
    Router::new().route("/admin/audit", get(api))
}

fn bad(e: ParamError) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, e.to_string())
}

/// `GET /admin/audit?event=&outcome=&subject=&client=&since=&until=&before=&limit=`.
async fn api(
    _: Admin,
    State(st): State<ConsoleState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AdminError> {
    let params = AuditParams::from_query(query.as_deref()).map_err(bad)?;
    let filter = params.filter().map_err(bad)?;
    let found = find(&st, &params, &filter).await.map_err(|e| {
        AdminError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("audit log unavailable: {e}"),
        )
    })?;
    Ok(Json(json!({
        "entries": found.entries,
        "next_before": found.next_before,
        "next": found.next_query.as_ref().map(|q| format!("/admin/audit?{q}")),
    })))
}

/// `GET /admin/console/audit`: the page, with the same filters.
pub async fn page(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = AuditParams::from_query(query.as_deref()).unwrap_or_default();
    let (found, error) = match params.filter() {
        Ok(filter) => (find(&st, &params, &filter).await?, None),
        Err(e) => (
            Found {
                entries: Vec::new(),
                next_before: None,
                next_query: None,
            },
            Some(e.to_string()),
        ),
    };
    let export = serde_urlencoded::to_string(AuditParams {
        before: None,
        ..params.non_empty()
    })
    .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let entries: Vec<Value> = found
        .entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "at": e.at, "event": e.event, "outcome": e.outcome,
                "subject": e.subject, "client": e.client, "ip": e.ip,
                "detail": if e.detail.is_null() { String::new() } else { e.detail.to_string() },
            })
        })
        .collect();
    Ok((
        status,
        render(
            &st,
            &admin,
            "admin/audit.html",
            "audit",
            minijinja::context! {
                entries => entries,
                f => minijinja::Value::from_serialize(&params),
                error => error,
                next_url => found.next_query.map(|q| format!("/admin/console/audit?{q}")),
                export_url => format!("/admin/console/audit.csv?{export}"),
            },
        ),
    )
        .into_response())
}

/// `GET /admin/console/audit.csv`: the filtered log (up to the page maximum, newest first),
/// every cell neutralised against spreadsheet formulas by the migration report's writer.
pub async fn csv(
    _admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = AuditParams::from_query(query.as_deref())
        .map_err(|e| PageError::bad_request("admin.audit.bad_filter.title", e.to_string()))?;
    let mut filter = params
        .filter()
        .map_err(|e| PageError::bad_request("admin.audit.bad_filter.title", e.to_string()))?;
    if params.limit.as_deref().is_none_or(|l| l.trim().is_empty()) {
        filter.limit = MAX_AUDIT_PAGE;
    }
    let found = find(&st, &params, &filter).await?;
    let rows = found.entries.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.at.clone(),
            e.event.clone(),
            e.outcome.clone(),
            e.subject.clone().unwrap_or_default(),
            e.client.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            if e.detail.is_null() {
                String::new()
            } else {
                e.detail.to_string()
            },
        ]
    });
    let body = crate::provisioning::migration::report::safe_csv(
        &[
            "id", "at", "event", "outcome", "subject", "client", "ip", "detail",
        ],
        rows,
    )
    .map_err(|e| PageError::internal("writing the audit CSV", e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"passerelle-audit.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(query: &str) -> Result<AuditFilter, ParamError> {
        AuditParams::from_query(Some(query))?.filter()
    }

    #[test]
    fn filters_are_read_and_checked_with_a_message_naming_the_parameter() {
        let f = filter("event=login&outcome=success&person=alice&client=rp&since=2026-12-01&until=2026-12-01T10:00:00Z&before=42&limit=7").unwrap();
        assert_eq!(f.event.as_deref(), Some("login"));
        assert_eq!(f.subject.as_deref(), Some("alice"), "person= is subject=");
        assert_eq!(f.since, Some(1_796_083_200));
        assert_eq!(f.until, Some(1_796_119_200));
        assert_eq!((f.before, f.limit), (Some(42), 7));
        assert_eq!(filter("").unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(
            filter("event=&limit=").unwrap(),
            filter("").unwrap(),
            "blank = absent"
        );
        assert_eq!(
            filter("until=2026-12-01").unwrap().until,
            Some(1_796_169_599)
        );
        assert_eq!(
            filter("since=2026-12-01T16:30").unwrap().since,
            Some(1_796_142_600)
        );
        for (query, needle) in [
            ("limit=0", "limit=`0`"),
            ("limit=1001", "limit=`1001`"),
            ("limit=ten", "limit=`ten`"),
            ("before=-1", "before=`-1`"),
            ("since=yesterday", "since=`yesterday`"),
            ("since=2026-12-02&until=2026-12-01", "since is after until"),
            ("colour=red", "unknown field `colour`"),
        ] {
            let err = filter(query).unwrap_err().to_string();
            assert!(err.contains(needle), "{query}: {err}");
        }
    }

    #[test]
    fn the_next_page_keeps_the_filters() {
        let p = AuditParams::from_query(Some("event=login&client=&limit=2")).unwrap();
        assert_eq!(p.next_query(17), "event=login&before=17&limit=2");
    }

    #[test]
    fn detail_is_json_and_times_are_rfc3339() {
        let v = EntryView::from(AuditEntry {
            id: 1,
            at: 1_796_142_600,
            event: "login".into(),
            outcome: "success".into(),
            subject: None,
            client: None,
            ip: None,
            detail: Some(r#"{"for":"rp"}"#.into()),
        });
        assert_eq!(v.at, "2026-12-01T16:30:00Z");
        assert_eq!(v.detail, json!({"for": "rp"}));
    }
}
