//! The audit log: sign-ins and token events.
//!
//! Many of its fields come from anonymous requests (a username typed into the form, the Issuer
//! of an unknown SAML request), so every field is capped before any backend stores it
//! ([`AuditEvent::capped`], which every adapter's `record` calls), whoever the caller: a string
//! keeps its first [`MAX_FIELD_BYTES`] bytes (cut on a character boundary) followed by a visible
//! `…[cut N bytes]` marker. Old rows are purged after `[audit] retention`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::store::StoreError;

/// Bytes kept of each field, and of each string inside `detail`.
pub const MAX_FIELD_BYTES: usize = 256;
/// Items kept of each array, and entries of each object, inside `detail`.
pub const MAX_DETAIL_ITEMS: usize = 32;
/// Nesting kept inside `detail`; deeper values are replaced by a marker.
const MAX_DETAIL_DEPTH: usize = 4;
/// The whole `detail`, once capped field by field, is kept whole up to this size.
pub const MAX_DETAIL_BYTES: usize = 4096;
/// The most entries [`AuditLog::recent`] returns at once.
pub const MAX_RECENT: i64 = 1000;

/// One event to record. `detail` is free-form JSON and must never hold a secret.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub outcome: &'a str,
    pub subject: Option<&'a str>,
    pub client: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: Option<serde_json::Value>,
}

/// An event as stored: every field capped, `detail` serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedAuditEvent {
    pub event: String,
    pub outcome: String,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent<'_> {
    /// The event as every backend stores it.
    pub fn capped(self) -> CappedAuditEvent {
        let field = |v: &str| cap(v, MAX_FIELD_BYTES).into_owned();
        CappedAuditEvent {
            event: field(self.event),
            outcome: field(self.outcome),
            subject: self.subject.map(field),
            client: self.client.map(field),
            ip: self.ip.map(field),
            detail: self.detail.map(cap_detail),
        }
    }
}

/// An event capped, with the time it happened: what [`AuditLog::record_batch`] stores. Built
/// only through [`TimedAuditEvent::new`], so no row reaches a backend uncapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedAuditEvent {
    at: i64,
    event: CappedAuditEvent,
}

impl TimedAuditEvent {
    /// `event`, capped, as having happened at `at` (unix seconds).
    pub fn new(at: i64, event: AuditEvent<'_>) -> TimedAuditEvent {
        TimedAuditEvent {
            at,
            event: event.capped(),
        }
    }

    pub fn at(&self) -> i64 {
        self.at
    }

    pub fn event(&self) -> &CappedAuditEvent {
        &self.event
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Record `event` at the current time, capped ([`AuditEvent::capped`]).
    async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError>;

    /// Record events at the times they carry, in one transaction: all or none.
    async fn record_batch(&self, rows: Vec<TimedAuditEvent>) -> Result<(), StoreError>;

    /// The newest `limit` entries (clamped to 1..=[`MAX_RECENT`]), newest first; optionally
    /// only one subject's.
    async fn recent(
        &self,
        limit: i64,
        subject: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Delete entries older than `older_than` (none when it is zero: kept forever), in batches
    /// so that a first purge of a large log never holds the database for long. Returns how many
    /// were deleted.
    async fn purge_older_than(&self, older_than: Duration) -> Result<u64, StoreError>;
}

/// `text` cut to `max` bytes on a character boundary, with a marker saying how much was cut.
pub fn cap(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut {} bytes]", &text[..end], text.len() - end).into()
}

fn cap_value(value: Value, depth: usize) -> Value {
    match value {
        Value::String(s) => match cap(&s, MAX_FIELD_BYTES) {
            std::borrow::Cow::Borrowed(_) => Value::String(s),
            std::borrow::Cow::Owned(cut) => Value::String(cut),
        },
        Value::Array(items) if depth >= MAX_DETAIL_DEPTH => {
            Value::String(format!("…[cut: {} nested items]", items.len()))
        }
        Value::Object(map) if depth >= MAX_DETAIL_DEPTH => {
            Value::String(format!("…[cut: {} nested entries]", map.len()))
        }
        Value::Array(items) => {
            let total = items.len();
            let mut kept: Vec<Value> = items
                .into_iter()
                .take(MAX_DETAIL_ITEMS)
                .map(|v| cap_value(v, depth + 1))
                .collect();
            if total > MAX_DETAIL_ITEMS {
                kept.push(Value::String(format!(
                    "…[cut {} items]",
                    total - MAX_DETAIL_ITEMS
                )));
            }
            Value::Array(kept)
        }
        Value::Object(map) => {
            let total = map.len();
            let mut kept: serde_json::Map<String, Value> = map
                .into_iter()
                .take(MAX_DETAIL_ITEMS)
                .map(|(k, v)| {
                    (
                        cap(&k, MAX_FIELD_BYTES).into_owned(),
                        cap_value(v, depth + 1),
                    )
                })
                .collect();
            if total > MAX_DETAIL_ITEMS {
                kept.insert(
                    "…".into(),
                    Value::String(format!("[cut {} entries]", total - MAX_DETAIL_ITEMS)),
                );
            }
            Value::Object(kept)
        }
        other => other,
    }
}

/// `detail` as stored: every string, array and object capped, and the whole kept under
/// [`MAX_DETAIL_BYTES`] (beyond it, the JSON text itself is cut and kept as a string).
pub fn cap_detail(detail: Value) -> String {
    let text = cap_value(detail, 0).to_string();
    if text.len() <= MAX_DETAIL_BYTES {
        return text;
    }
    // Escaping inside the string makes it longer again: shorten until it fits.
    let mut keep = MAX_DETAIL_BYTES - 64;
    loop {
        let wrapped = serde_json::json!({ "cut": cap(&text, keep) }).to_string();
        if wrapped.len() <= MAX_DETAIL_BYTES || keep == 0 {
            return wrapped;
        }
        keep = keep.saturating_sub(wrapped.len() - MAX_DETAIL_BYTES);
    }
}

/// The cut-off of a purge: `now - older_than`, `None` when nothing is to be purged.
pub fn purge_cutoff(now: i64, older_than: Duration) -> Option<i64> {
    if older_than.is_zero() {
        return None;
    }
    Some(now.saturating_sub(i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_cuts_on_a_char_boundary_and_says_how_much() {
        assert_eq!(cap("short", 10), "short");
        let long = "é".repeat(200); // 400 bytes
        let cut = cap(&long, 255);
        assert!(cut.starts_with(&"é".repeat(127)), "{cut}");
        assert!(cut.ends_with("…[cut 146 bytes]"), "{cut}");
        assert_eq!(
            cap(&"a".repeat(99_812 + 256), 256).len(),
            256 + "…[cut 99812 bytes]".len()
        );
    }

    #[test]
    fn detail_is_capped_in_every_string_array_and_depth() {
        let detail = serde_json::json!({
            "reason": "x".repeat(100_000),
            "groups": (0..1000).map(|i| format!("group-{i}")).collect::<Vec<_>>(),
            "deep": {"a": {"b": {"c": {"d": {"e": "f"}}}}},
        });
        let stored = cap_detail(detail);
        assert!(stored.len() <= MAX_DETAIL_BYTES, "{}", stored.len());
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert!(v["reason"]
            .as_str()
            .unwrap()
            .ends_with("…[cut 99744 bytes]"));
        assert_eq!(v["groups"].as_array().unwrap().len(), MAX_DETAIL_ITEMS + 1);
        assert_eq!(v["groups"][MAX_DETAIL_ITEMS], "…[cut 968 items]");
        assert_eq!(v["deep"]["a"]["b"]["c"], "…[cut: 1 nested entries]");

        let wide: serde_json::Map<String, Value> = (0..MAX_DETAIL_ITEMS)
            .map(|i| (format!("k{i}"), Value::String("v".repeat(250))))
            .collect();
        let stored = cap_detail(Value::Object(wide));
        assert!(stored.len() <= MAX_DETAIL_BYTES, "{}", stored.len());
        let v: Value = serde_json::from_str(&stored).unwrap();
        assert!(v["cut"].as_str().unwrap().contains("…[cut "), "{v}");
    }

    #[test]
    fn a_zero_retention_purges_nothing() {
        assert_eq!(purge_cutoff(1000, Duration::ZERO), None);
        assert_eq!(purge_cutoff(1000, Duration::from_secs(10)), Some(990));
        assert_eq!(purge_cutoff(0, Duration::MAX), Some(-i64::MAX));
    }
}
