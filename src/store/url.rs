//! The database URL of `[store] url` / `PASSERELLE_DATABASE_URL`: checked once here, and never
//! shown with its password (`Debug` and every message use [`DatabaseUrl::redacted`]).

use std::fmt;

/// A `postgres://` (or `postgresql://`) URL, the password inside it kept out of every message.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("is not a URL ({0}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    Syntax(String),
    #[error(
        "scheme `{0}` is not supported: only postgres:// (or postgresql://) selects a database \
         server; leave [store] url unset for the embedded SQLite file in data_dir"
    )]
    Scheme(String),
    #[error("names no host: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    NoHost,
}

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<DatabaseUrl, UrlError> {
        let text = text.trim();
        // url's own error never repeats the input, so it cannot leak the password.
        let url = url::Url::parse(text).map_err(|e| UrlError::Syntax(e.to_string()))?;
        match url.scheme() {
            "postgres" | "postgresql" => {}
            other => return Err(UrlError::Scheme(other.to_string())),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        Ok(DatabaseUrl(text.to_string()))
    }

    /// The URL itself, for the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (in the user info or a `password=` parameter) replaced by
    /// `***`: what logs and error messages show.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// `text` with any password replaced by `***`; a text that is not a URL is not shown at all.
pub fn redact(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text.trim()) else {
        return "(a database URL that does not parse)".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url =
            DatabaseUrl::parse("postgres://app:s3cr%21t@db.internal:5432/passerelle").unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://app:***@db.internal:5432/passerelle"
        );
        assert!(!format!("{url:?} {url}").contains("s3cr"));
        let url = DatabaseUrl::parse("postgresql://db/p?user=app&password=s3cret&sslmode=require")
            .unwrap();
        assert_eq!(
            url.redacted(),
            "postgresql://db/p?user=app&password=***&sslmode=require"
        );
        assert!(!redact("postgres://u:s3cret@/x y").contains("s3cret"));
    }

    #[test]
    fn only_a_postgres_url_with_a_host_is_accepted() {
        assert!(DatabaseUrl::parse("postgres://u:p@localhost/db").is_ok());
        assert!(matches!(
            DatabaseUrl::parse("mysql://u:p@h/db"),
            Err(UrlError::Scheme(s)) if s == "mysql"
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite://data/passerelle.db"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("not a url s3cret"),
            Err(UrlError::Syntax(e)) if !e.contains("s3cret")
        ));
        assert_eq!(DatabaseUrl::parse("postgres:///db"), Err(UrlError::NoHost));
    }
}
