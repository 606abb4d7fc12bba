//! CSRF protection for the forms a person submits: a random token kept in the session and
//! echoed in a hidden field, compared in constant time.

use tower_sessions::Session;

const KEY: &str = "csrf";

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String, tower_sessions::session::Error> {
    if let Some(t) = session.get::<String>(KEY).await? {
        return Ok(t);
    }
    let t = super::random_token(24);
    session.insert(KEY, &t).await?;
    Ok(t)
}

pub async fn verify_csrf(session: &Session, presented: &str) -> bool {
    match session.get::<String>(KEY).await {
        Ok(Some(expected)) => {
            expected.len() == presented.len()
                && openssl::memcmp::eq(expected.as_bytes(), presented.as_bytes())
        }
        _ => false,
    }
}
