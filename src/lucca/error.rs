//! What can go wrong talking to Lucca, worded for the admin who has to fix it.

use std::time::Duration;

/// The permissions lucca-api.md §1.1 says an API key's role needs for the bridge.
const PERMISSIONS_HINT: &str =
    "give the API key's role the permissions \"Consult / create / modify users\", \
\"See future employees\" and \"See former employees\" (Lucca: Settings > API keys)";

#[derive(Debug, thiserror::Error)]
pub enum LuccaError {
    #[error("the Lucca API key was refused (401): check lucca.api_key")]
    Unauthorized,
    #[error("the Lucca API key may not {operation} (403): {PERMISSIONS_HINT}")]
    Forbidden { operation: &'static str },
    #[error("not found in Lucca: {what}")]
    NotFound { what: String },
    #[error("Lucca refused to {operation} ({status}): {message}")]
    Validation {
        operation: &'static str,
        status: u16,
        /// Lucca's own explanation (its body as text, truncated).
        message: String,
    },
    #[error("Lucca's rate limit is reached (50 requests/minute per tenant, shared by every integration): retry in {}s", retry_after.as_secs_f64().ceil())]
    RateLimited { retry_after: Duration },
    #[error("the Lucca API is unavailable while trying to {operation}: {cause}")]
    Unavailable {
        operation: &'static str,
        cause: String,
    },
    #[error("unexpected answer from Lucca while trying to {operation}: {cause}")]
    Decode {
        operation: &'static str,
        cause: String,
    },
    /// The client cannot be built from the configuration (the message names the key).
    #[error("{0}")]
    Config(String),
}

impl LuccaError {
    /// Worth retrying later as is (an outbox should keep the job); everything else needs a
    /// person to change something first.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LuccaError::RateLimited { .. } | LuccaError::Unavailable { .. }
        )
    }
}

/// Lucca's error bodies are undocumented: take a `Message`/`message`/`detail`/`title` field when
/// the body is JSON (the shapes seen in clients and RFC 7807), else the text itself.
pub(crate) fn error_message_from_body(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let picked = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| {
            ["Message", "message", "detail", "title", "error"]
                .iter()
                .find_map(|k| json.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
        })
        .unwrap_or_else(|| text.trim().to_owned());
    let flat: String = picked.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(no explanation given)".into();
    }
    match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_tell_the_admin_what_to_do() {
        assert_eq!(
            LuccaError::Unauthorized.to_string(),
            "the Lucca API key was refused (401): check lucca.api_key"
        );
        let forbidden = LuccaError::Forbidden {
            operation: "create users",
        }
        .to_string();
        assert!(
            forbidden.contains("Consult / create / modify users"),
            "{forbidden}"
        );
        assert!(forbidden.contains("See former employees"), "{forbidden}");
        let limited = LuccaError::RateLimited {
            retry_after: Duration::from_millis(1500),
        }
        .to_string();
        assert!(limited.ends_with("retry in 2s"), "{limited}");
    }

    #[test]
    fn body_messages_are_extracted_and_truncated() {
        assert_eq!(
            error_message_from_body(br#"{"Status":400,"Message":"login is required"}"#),
            "login is required"
        );
        assert_eq!(error_message_from_body(b"  plain\n text "), "plain text");
        assert_eq!(error_message_from_body(b""), "(no explanation given)");
        let long = "é".repeat(1000);
        let cut = error_message_from_body(long.as_bytes());
        assert_eq!(cut.chars().count(), 301);
    }
}
