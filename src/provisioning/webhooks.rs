//! Lucca webhooks (`POST /lucca/webhooks`) as a hint: a verified `employee.*` event only queues
//! a re-read of that employee through the API, which then takes the sync's path (the
//! [`Follower`]). The event's own data is never trusted, so duplicates, replays within the
//! window and out-of-order deliveries are harmless; forged, unsigned or stale ones get 401 and
//! change nothing.
//!
//! What Lucca sends (its webhook documentation): `Lucca-Timestamp` (UTC ISO 8601) and
//! `Lucca-Signature = base64(HMAC-SHA256(secret, timestamp + "." + raw body))`; the activation
//! challenge is `GET ?challenge=…` (formerly `?echo=…`), answered with the value as text.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::follow::{Follower, Seen};
use crate::config::Secret;
use crate::lucca::{LuccaClient, LuccaError, Priority};

/// The largest event accepted (Lucca's employee representation is a few KiB).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// `Lucca-Timestamp` this far from our clock is refused (replay protection).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest activation challenge echoed.
pub const MAX_CHALLENGE_BYTES: usize = 500;
/// Employees waiting for a re-read; beyond it Lucca is told to retry later (503).
const QUEUE: usize = 1000;
/// Event ids remembered for deduplication: at least the replay window.
const DEDUPE_WINDOW: Duration = Duration::from_secs(15 * 60);
const DEDUPE_MAX: usize = 10_000;

const TOPICS: [&str; 3] = ["employee.created", "employee.updated", "employee.deleted"];

/// Why an event was not accepted, and what Lucca is told.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("missing Lucca-Signature or Lucca-Timestamp")]
    Unsigned,
    #[error("Lucca-Timestamp is not a UTC ISO 8601 date-time")]
    BadTimestamp,
    #[error("Lucca-Timestamp is more than 5 minutes away from our clock")]
    Stale,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the event is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("not an event: {0}")]
    NotUnderstood(String),
    #[error("too many events waiting; retry later")]
    Busy,
}

/// What became of an accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Queued {
        employee_id: i64,
    },
    /// Seen before (same `id` and `source`), or that employee is already waiting.
    Duplicate,
    /// A topic we do not act on (`confirmation`, …).
    Ignored {
        topic: String,
    },
}

pub struct WebhookReceiver {
    secret: Secret,
    queue: mpsc::Sender<i64>,
    /// Event keys seen recently, with when.
    seen: Mutex<HashMap<String, Instant>>,
    /// Employees queued and not yet re-read: a burst for one person costs one read.
    waiting: Arc<Mutex<HashSet<i64>>>,
    /// Taken by [`spawn`] when the server starts.
    worker: Mutex<Option<Worker>>,
}

struct Worker {
    rx: mpsc::Receiver<i64>,
    client: LuccaClient,
    follower: Arc<Follower>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver").finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// The receiver; its worker (re-reads at batch priority, inside the shared budget) starts
    /// with [`spawn`].
    pub fn new(secret: Secret, client: LuccaClient, follower: Arc<Follower>) -> WebhookReceiver {
        let (tx, rx) = mpsc::channel(QUEUE);
        WebhookReceiver {
            secret,
            queue: tx,
            seen: Mutex::new(HashMap::new()),
            waiting: Arc::new(Mutex::new(HashSet::new())),
            worker: Mutex::new(Some(Worker {
                rx,
                client: client.with_priority(Priority::Batch),
                follower,
            })),
        }
    }

    /// Verify and queue one delivery. `now` is unix seconds.
    pub fn receive(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Accepted, Refused> {
        let outcome = self.verify_and_queue(signature, timestamp, body, now);
        let label = match &outcome {
            Ok(Accepted::Queued { .. }) => "queued",
            Ok(Accepted::Duplicate) => "duplicate",
            Ok(Accepted::Ignored { .. }) => "ignored",
            Err(
                Refused::Unsigned | Refused::BadSignature | Refused::BadTimestamp | Refused::Stale,
            ) => "unauthenticated",
            Err(Refused::TooLarge | Refused::NotUnderstood(_)) => "bad_request",
            Err(Refused::Busy) => "busy",
        };
        metrics::counter!("passerelle_lucca_webhook_events_total", "outcome" => label).increment(1);
        outcome
    }

    fn verify_and_queue(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Accepted, Refused> {
        if body.len() > MAX_EVENT_BYTES {
            return Err(Refused::TooLarge);
        }
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(Refused::Unsigned);
        };
        let sent_at = chrono::DateTime::parse_from_rfc3339(timestamp.trim())
            .map_err(|_| Refused::BadTimestamp)?
            .timestamp();
        if now.abs_diff(sent_at) > MAX_CLOCK_SKEW.as_secs() {
            return Err(Refused::Stale);
        }
        let expected = sign(self.secret.expose().as_bytes(), timestamp, body)
            .map_err(|_| Refused::BadSignature)?;
        let given = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| Refused::BadSignature)?;
        // Lengths are public (32 bytes); the bytes are compared in constant time.
        if given.len() != expected.len() || !openssl::memcmp::eq(&given, &expected) {
            return Err(Refused::BadSignature);
        }
        let event = parse_event(body)?;
        if !TOPICS.contains(&event.topic.as_str()) {
            return Ok(Accepted::Ignored { topic: event.topic });
        }
        let employee_id = event
            .employee_id
            .ok_or_else(|| Refused::NotUnderstood("data.id is missing or not an id".into()))?;
        if !self.first_time(&event.key) {
            return Ok(Accepted::Duplicate);
        }
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if !waiting.insert(employee_id) {
                return Ok(Accepted::Duplicate);
            }
        }
        if self.queue.try_send(employee_id).is_err() {
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&employee_id);
            self.forget(&event.key);
            return Err(Refused::Busy);
        }
        metrics::gauge!("passerelle_lucca_webhook_queue_depth")
            .set((QUEUE - self.queue.capacity()) as f64);
        Ok(Accepted::Queued { employee_id })
    }

    fn first_time(&self, key: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if seen.len() >= DEDUPE_MAX {
            seen.retain(|_, at| now.duration_since(*at) < DEDUPE_WINDOW);
        }
        match seen.get(key) {
            Some(at) if now.duration_since(*at) < DEDUPE_WINDOW => false,
            _ => {
                if seen.len() < DEDUPE_MAX {
                    seen.insert(key.to_string(), now);
                }
                true
            }
        }
    }

    fn forget(&self, key: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// `base64(HMAC-SHA256(secret, timestamp + "." + body))` as raw bytes (before base64).
pub fn sign(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let key = PKey::hmac(secret)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    signer.update(timestamp.as_bytes())?;
    signer.update(b".")?;
    signer.update(body)?;
    signer.sign_to_vec()
}

/// The `Lucca-Signature` header value for this delivery.
pub fn signature_header(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    sign(secret, timestamp, body)
        .map(|mac| base64::engine::general_purpose::STANDARD.encode(mac))
        .unwrap_or_default()
}

#[derive(Debug, PartialEq, Eq)]
struct Event {
    /// `source` + `id`: what identifies a delivery.
    key: String,
    topic: String,
    employee_id: Option<i64>,
}

/// Lucca's native shape (`topic`) or CloudEvents (`specversion` + `type`).
fn parse_event(body: &[u8]) -> Result<Event, Refused> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Refused::NotUnderstood(format!("not JSON ({e})")))?;
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    let topic = if json.get("specversion").is_some() {
        text(json.get("type"))
    } else {
        text(json.get("topic")).or_else(|| text(json.get("type")).filter(|t| t.contains('.')))
    }
    .ok_or_else(|| Refused::NotUnderstood("no topic (`topic`, or CloudEvents `type`)".into()))?;
    let id = text(json.get("id")).ok_or_else(|| Refused::NotUnderstood("no event id".into()))?;
    let source = text(json.get("source")).unwrap_or("");
    let employee_id = match json.get("data").and_then(|d| d.get("id")) {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .filter(|id| *id > 0);
    Ok(Event {
        key: format!("{source}\u{0}{id}"),
        topic: topic.to_string(),
        employee_id,
    })
}

/// Re-read each queued employee and follow what Lucca says now.
async fn reread(
    mut rx: mpsc::Receiver<i64>,
    waiting: Arc<Mutex<HashSet<i64>>>,
    client: LuccaClient,
    follower: Arc<Follower>,
) {
    while let Some(id) = rx.recv().await {
        // Taken off before the read: an event arriving during it queues another read.
        waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let today = super::jit::today();
        let result = match client.get_user(id).await {
            Ok(user) => {
                follower
                    .observe(Seen::Present(&user), today, "webhook")
                    .await
            }
            Err(LuccaError::NotFound { .. }) => {
                follower
                    .observe(Seen::Gone { lucca_id: id }, today, "webhook")
                    .await
            }
            Err(e) => {
                // The sync reads this person again; a webhook is only a hint.
                tracing::warn!(lucca_id = id, error = %e, "re-reading an employee after a Lucca webhook failed");
                continue;
            }
        };
        if let Err(e) = result {
            tracing::warn!(lucca_id = id, error = %e, "could not record what a Lucca webhook led to");
        }
    }
}

/// The receiver `[lucca] webhook_secret` asks for (Lucca configured and a secret set).
pub fn build(config: &crate::config::LuccaConfig, sync: &super::sync::SyncAdmin) -> WebhookState {
    let secret = config.webhook_secret.clone().filter(|s| !s.is_empty());
    WebhookState(match (secret, &sync.0) {
        (Some(secret), Some(sync)) => Some(Arc::new(WebhookReceiver::new(
            secret,
            sync.client().clone(),
            sync.follower().clone(),
        ))),
        _ => None,
    })
}

/// The re-read worker, once per receiver.
pub fn spawn(state: &WebhookState) -> Option<JoinHandle<()>> {
    let receiver = state.0.as_ref()?;
    let worker = receiver
        .worker
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    Some(tokio::spawn(reread(
        worker.rx,
        receiver.waiting.clone(),
        worker.client,
        worker.follower,
    )))
}

/// What `/lucca/webhooks` reads through `FromRef`: the receiver when a secret is set.
#[derive(Clone, Debug, Default)]
pub struct WebhookState(pub Option<Arc<WebhookReceiver>>);

/// `POST /lucca/webhooks` and the activation `GET`.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    WebhookState: axum::extract::FromRef<S>,
{
    axum::Router::new().route(
        "/lucca/webhooks",
        axum::routing::get(http::challenge).post(http::event),
    )
}

mod http {
    use axum::body::{to_bytes, Body};
    use axum::extract::{Query, State};
    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::Json;
    use serde::Deserialize;
    use serde_json::json;

    use super::{Accepted, Refused, WebhookState, MAX_CHALLENGE_BYTES, MAX_EVENT_BYTES};

    fn not_enabled() -> Response {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Lucca webhooks are not enabled (set [lucca] webhook_secret)"})),
        )
            .into_response()
    }

    #[derive(Deserialize)]
    pub(super) struct Challenge {
        challenge: Option<String>,
        echo: Option<String>,
    }

    pub(super) async fn challenge(
        State(WebhookState(receiver)): State<WebhookState>,
        Query(q): Query<Challenge>,
    ) -> Response {
        if receiver.is_none() {
            return not_enabled();
        }
        match q.challenge.or(q.echo) {
            Some(value) if !value.is_empty() && value.len() <= MAX_CHALLENGE_BYTES => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                value,
            )
                .into_response(),
            Some(_) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("the challenge must be 1 to {MAX_CHALLENGE_BYTES} bytes")})),
            )
                .into_response(),
            None => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "expected ?challenge=… (Lucca's activation request)"})),
            )
                .into_response(),
        }
    }

    pub(super) async fn event(
        State(WebhookState(receiver)): State<WebhookState>,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        let Some(receiver) = receiver else {
            return not_enabled();
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let outcome = match to_bytes(body, MAX_EVENT_BYTES).await {
            Ok(bytes) => receiver.receive(
                header("lucca-signature"),
                header("lucca-timestamp"),
                &bytes,
                crate::store::now(),
            ),
            Err(_) => Err(Refused::TooLarge),
        };
        match outcome {
            Ok(accepted) => {
                let status = match &accepted {
                    Accepted::Queued { .. } => "queued",
                    Accepted::Duplicate => "duplicate",
                    Accepted::Ignored { .. } => "ignored",
                };
                (StatusCode::ACCEPTED, Json(json!({"status": status}))).into_response()
            }
            Err(refused) => {
                let status = match refused {
                    Refused::Unsigned
                    | Refused::BadTimestamp
                    | Refused::Stale
                    | Refused::BadSignature => StatusCode::UNAUTHORIZED,
                    Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    Refused::NotUnderstood(_) => StatusCode::BAD_REQUEST,
                    Refused::Busy => StatusCode::SERVICE_UNAVAILABLE,
                };
                tracing::warn!(reason = %refused, "Lucca webhook refused");
                (status, Json(json!({"error": refused.to_string()}))).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec-0123456789abcdef0123456789";

    fn receiver() -> (WebhookReceiver, mpsc::Receiver<i64>) {
        let (tx, rx) = mpsc::channel(2);
        (
            WebhookReceiver {
                secret: Secret::new(SECRET),
                queue: tx,
                seen: Mutex::new(HashMap::new()),
                waiting: Arc::new(Mutex::new(HashSet::new())),
                worker: Mutex::new(None),
            },
            rx,
        )
    }

    const NOW: i64 = 1_764_576_000; // 2025-12-01T08:00:00Z
    const TS: &str = "2025-12-01T08:00:00Z";

    fn deliver(r: &WebhookReceiver, body: &str) -> Result<Accepted, Refused> {
        let sig = signature_header(SECRET.as_bytes(), TS, body.as_bytes());
        r.receive(Some(&sig), Some(TS), body.as_bytes(), NOW)
    }

    #[test]
    fn the_signature_is_lucca_s_hmac_of_timestamp_dot_body() {
        // The PHP sample: base64_encode(hash_hmac('sha256', $timestamp . '.' . $data, SECRET, true)).
        let mac = sign(b"secret", "2025-01-01T08:34:23Z", b"{}").unwrap();
        let by_hand = {
            let key = PKey::hmac(b"secret").unwrap();
            let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
            s.update(b"2025-01-01T08:34:23Z.{}").unwrap();
            s.sign_to_vec().unwrap()
        };
        assert_eq!(mac, by_hand);
        assert_eq!(mac.len(), 32);
    }

    #[test]
    fn native_and_cloudevents_shapes_are_read() {
        let (r, mut rx) = receiver();
        let native = r#"{"id":"e1","type":"event","topic":"employee.updated","source":"https://acme.ilucca.net","data":{"id":"416","email":"x@acme.test"}}"#;
        assert_eq!(
            deliver(&r, native),
            Ok(Accepted::Queued { employee_id: 416 })
        );
        assert_eq!(rx.try_recv().unwrap(), 416);
        let cloud = r#"{"specversion":"1.0","id":"e2","source":"https://acme.ilucca.net","type":"employee.deleted","data":{"id":417}}"#;
        assert_eq!(
            deliver(&r, cloud),
            Ok(Accepted::Queued { employee_id: 417 })
        );
        let confirmation = r#"{"id":"e3","topic":"confirmation","data":{}}"#;
        assert_eq!(
            deliver(&r, confirmation),
            Ok(Accepted::Ignored {
                topic: "confirmation".into()
            })
        );
        assert!(matches!(
            deliver(&r, "not json"),
            Err(Refused::NotUnderstood(_))
        ));
        assert!(matches!(
            deliver(
                &r,
                r#"{"id":"e4","topic":"employee.updated","data":{"id":"x"}}"#
            ),
            Err(Refused::NotUnderstood(_))
        ));
    }

    #[test]
    fn duplicates_and_bursts_cost_one_read_and_a_full_queue_says_retry() {
        let (r, mut rx) = receiver();
        let event = |id: &str, emp: i64| {
            format!(
                r#"{{"id":"{id}","topic":"employee.updated","source":"s","data":{{"id":"{emp}"}}}}"#
            )
        };
        assert!(matches!(
            deliver(&r, &event("a", 1)),
            Ok(Accepted::Queued { .. })
        ));
        assert_eq!(
            deliver(&r, &event("a", 1)),
            Ok(Accepted::Duplicate),
            "same delivery again"
        );
        assert_eq!(
            deliver(&r, &event("b", 1)),
            Ok(Accepted::Duplicate),
            "employee 1 is already waiting"
        );
        assert!(matches!(
            deliver(&r, &event("c", 2)),
            Ok(Accepted::Queued { .. })
        ));
        assert_eq!(
            deliver(&r, &event("d", 3)),
            Err(Refused::Busy),
            "queue of 2 is full"
        );
        assert_eq!(rx.try_recv().unwrap(), 1);
        // Refused as busy: the same delivery, retried by Lucca, is not taken for a duplicate.
        assert!(matches!(
            deliver(&r, &event("d", 3)),
            Ok(Accepted::Queued { .. })
        ));
    }

    #[test]
    fn forged_unsigned_stale_and_oversized_events_are_refused() {
        let (r, mut rx) = receiver();
        let body = r#"{"id":"e1","topic":"employee.updated","data":{"id":"5"}}"#;
        let good = signature_header(SECRET.as_bytes(), TS, body.as_bytes());
        let forged = signature_header(b"another-secret-0123456789abcdef", TS, body.as_bytes());
        assert_eq!(
            r.receive(Some(&forged), Some(TS), body.as_bytes(), NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            r.receive(None, Some(TS), body.as_bytes(), NOW),
            Err(Refused::Unsigned)
        );
        assert_eq!(
            r.receive(Some(&good), None, body.as_bytes(), NOW),
            Err(Refused::Unsigned)
        );
        assert_eq!(
            r.receive(Some("!!!"), Some(TS), body.as_bytes(), NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            r.receive(Some("AAAA"), Some(TS), body.as_bytes(), NOW),
            Err(Refused::BadSignature),
            "short MAC"
        );
        // The body changed after signing (one byte), or the timestamp did.
        let tampered = body.replace("\"5\"", "\"6\"");
        assert_eq!(
            r.receive(Some(&good), Some(TS), tampered.as_bytes(), NOW),
            Err(Refused::BadSignature)
        );
        let other_ts = "2025-12-01T08:00:01Z";
        assert_eq!(
            r.receive(Some(&good), Some(other_ts), body.as_bytes(), NOW),
            Err(Refused::BadSignature)
        );
        // A replay six minutes later, or a clock six minutes ahead.
        assert_eq!(
            r.receive(Some(&good), Some(TS), body.as_bytes(), NOW + 360),
            Err(Refused::Stale)
        );
        assert_eq!(
            r.receive(Some(&good), Some(TS), body.as_bytes(), NOW - 360),
            Err(Refused::Stale)
        );
        assert_eq!(
            r.receive(Some(&good), Some("yesterday"), body.as_bytes(), NOW),
            Err(Refused::BadTimestamp)
        );
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(
            r.receive(Some(&good), Some(TS), &big, NOW),
            Err(Refused::TooLarge)
        );
        assert!(rx.try_recv().is_err(), "nothing was queued");
        assert_eq!(
            r.receive(Some(&good), Some(TS), body.as_bytes(), NOW + 299),
            Ok(Accepted::Queued { employee_id: 5 })
        );
    }
}
