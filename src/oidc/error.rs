//! What the OIDC core answers when it refuses: one variant per OAuth error code (RFC 6749 §5.2,
//! RFC 6750 §3.1), with the description the client is shown. The HTTP layer maps them to
//! statuses and JSON (`http::OAuthError`); nothing here knows about HTTP.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("{0}")]
    InvalidRequest(String),
    /// One answer whatever was wrong (unknown client, wrong or missing secret): the log has the
    /// reason. `basic`: the client tried HTTP Basic, so it gets a `WWW-Authenticate` challenge.
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    AccessDenied(String),
    /// A bearer token that is unknown, expired, revoked, or whose person is gone.
    #[error("{0}")]
    InvalidToken(String),
    /// A protected resource called without any access token.
    #[error("an access token is required")]
    TokenRequired,
    /// Our side failed (signing, serialising, a corrupt row): logged, never shown.
    #[error("{context}: {detail}")]
    Internal {
        context: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl OidcError {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OidcError::InvalidRequest(description.into())
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        OidcError::InvalidGrant(description.into())
    }

    pub fn internal(context: &'static str, err: impl std::fmt::Display) -> Self {
        OidcError::Internal {
            context,
            detail: err.to_string(),
        }
    }

    /// The OAuth `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::InvalidRequest(_) | OidcError::TokenRequired => "invalid_request",
            OidcError::InvalidClient { .. } => "invalid_client",
            OidcError::InvalidGrant(_) => "invalid_grant",
            OidcError::InvalidScope(_) => "invalid_scope",
            OidcError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OidcError::AccessDenied(_) => "access_denied",
            OidcError::InvalidToken(_) => "invalid_token",
            OidcError::Internal { .. } | OidcError::Storage(_) => "temporarily_unavailable",
        }
    }

    /// The `error_description` the client is shown: our own failures are not described.
    pub fn description(&self) -> String {
        match self {
            OidcError::Internal { .. } | OidcError::Storage(_) => {
                "the server could not complete the request; retry shortly".into()
            }
            other => other.to_string(),
        }
    }

    /// Our failure rather than the client's.
    pub fn is_internal(&self) -> bool {
        matches!(self, OidcError::Internal { .. } | OidcError::Storage(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_descriptions() {
        let e = OidcError::invalid_grant("the authorization code has expired");
        assert_eq!(e.code(), "invalid_grant");
        assert_eq!(e.description(), "the authorization code has expired");
        let e = OidcError::internal("signing the ID token", "key file unreadable: /etc/x");
        assert_eq!(e.code(), "temporarily_unavailable");
        assert!(
            !e.description().contains("/etc/x"),
            "no internals to clients"
        );
        assert!(e.to_string().contains("/etc/x"), "but in the log");
        assert_eq!(
            OidcError::InvalidClient { basic: true }.description(),
            "client authentication failed"
        );
        assert_eq!(OidcError::TokenRequired.code(), "invalid_request");
    }
}
