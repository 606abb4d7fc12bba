//! Lucca's side of webhooks: events in its native or CloudEvents shape, signed the way its
//! documentation says (`Lucca-Signature = base64(HMAC-SHA256(secret, timestamp "." body))`),
//! sent over real HTTP to the endpoint under test.

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::{json, Value};

use super::SimulatorHandle;

impl SimulatorHandle {
    /// An `employee.*` event about user `id`, carrying the user as stored now (Lucca's own
    /// data, which a receiver must not trust). `cloud_events` picks the CloudEvents shape.
    pub fn webhook_event(&self, topic: &str, id: i64, cloud_events: bool) -> Value {
        let data = self
            .user(id)
            .map(|u| {
                json!({
                    "id": id.to_string(),
                    "email": u.get("mail"),
                    "givenName": u.get("firstName"),
                    "familyName": u.get("lastName"),
                })
            })
            .unwrap_or_else(|| json!({"id": id.to_string()}));
        let event_id = format!("evt-{}", crate::web::random_token(12));
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if cloud_events {
            json!({
                "specversion": "1.0", "id": event_id, "source": self.base_url(),
                "type": topic, "time": now, "datacontenttype": "application/json", "data": data,
            })
        } else {
            json!({
                "id": event_id, "type": "event", "topic": topic, "occurredAt": now,
                "source": self.base_url(), "apiVersion": "2024-11-01", "data": data,
            })
        }
    }

    /// POST `event` to `url` signed with `secret` and the current time; the answer's status.
    pub async fn send_webhook(&self, url: &str, secret: &str, event: &Value) -> u16 {
        let body = event.to_string();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let signature = webhook_signature(secret, &timestamp, body.as_bytes());
        send(url, Some(&signature), Some(&timestamp), body.into_bytes()).await
    }

    /// POST raw bytes with the given headers (forged or stale deliveries).
    pub async fn send_raw_webhook(
        &self,
        url: &str,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: Vec<u8>,
    ) -> u16 {
        send(url, signature, timestamp, body).await
    }
}

/// `base64(HMAC-SHA256(secret, timestamp + "." + body))`.
pub fn webhook_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = PKey::hmac(secret.as_bytes())
        .and_then(|key| {
            let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
            signer.update(format!("{timestamp}.").as_bytes())?;
            signer.update(body)?;
            signer.sign_to_vec()
        })
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(mac)
}

async fn send(url: &str, signature: Option<&str>, timestamp: Option<&str>, body: Vec<u8>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = signature {
        request = request.header("Lucca-Signature", s);
    }
    if let Some(t) = timestamp {
        request = request.header("Lucca-Timestamp", t);
    }
    match request.send().await {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            tracing::warn!(error = %e, "the simulator could not deliver a webhook");
            0
        }
    }
}
