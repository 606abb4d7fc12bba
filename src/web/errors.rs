//! Errors at the edge: an HTML page for a person in a browser (OAuth JSON is `oidc`'s), in the
//! request's language, with the request's reference id; and the answer for a path nobody
//! serves (a page for a browser, JSON for an API client).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

use std::sync::Arc;

use super::i18n::Message;
use super::Templates;

/// An error shown to a person as a page (rendered from `templates/error.html`). Its title and
/// message are catalogue keys with arguments, rendered in the request's language at the edge.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: Message,
    pub message: Message,
    /// A link to try again, when there is something sensible to retry.
    pub retry_url: Option<String>,
    /// A refusal about the person: retrying cannot help; the page offers the way back to Lucca
    /// and to sign in as someone else.
    pub refused: bool,
    /// Whom the person may write to (`lucca.support_contact`; a mailto when it holds an
    /// address).
    pub contact: Option<String>,
    /// Offer the way back to Lucca (`lucca.base_url`) to try again from there: Lucca was
    /// unreachable, and retrying in a moment can help.
    pub retry_from_lucca: bool,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<Message>, message: impl Into<Message>) -> Self {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
            retry_url: None,
            refused: false,
            contact: None,
            retry_from_lucca: false,
        }
    }
    pub fn bad_request(title: impl Into<Message>, message: impl Into<Message>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, message)
    }
    /// Something on our side failed: logged in full (with the request's reference id, which
    /// the page shows), shown without detail.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "error.internal.title",
            "error.internal.message",
        )
    }
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "error.not_found.title",
            "error.not_found.message",
        )
    }
    pub fn with_retry(mut self, url: impl Into<String>) -> Self {
        self.retry_url = Some(url.into());
        self
    }
    /// A refusal about the person: the page offers to write to `contact`, not to try again.
    pub fn refusal(mut self, contact: impl Into<String>) -> Self {
        self.refused = true;
        self.contact = Some(contact.into());
        self
    }
    /// Going back to Lucca and starting again can help (Lucca did not answer).
    pub fn retry_from_lucca(mut self) -> Self {
        self.retry_from_lucca = true;
        self
    }
    /// A refusal with nobody particular to write to.
    pub fn refused(mut self) -> Self {
        self.refused = true;
        self
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // The body is rendered by `render_error_pages`, which has the templates.
        let status = self.status;
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The first email address in a support contact ("your HR team (hr@acme.example)").
fn email_in(contact: &str) -> Option<&str> {
    contact
        .split(|c: char| c.is_whitespace() || "()<>,;\"'".contains(c))
        .map(|w| w.trim_start_matches("mailto:").trim_end_matches('.'))
        .find(|w| {
            let Some((local, domain)) = w.split_once('@') else {
                return false;
            };
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.contains('@')
                && w.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+' | b'@')
                })
        })
}

/// RFC 6068: everything but unreserved characters percent-encoded (a space is `%20`).
fn mailto_encode(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// The page for a [`PageError`], in the request's language.
pub fn error_page(templates: &Templates, err: &PageError) -> Response {
    let title = templates.message(&err.title);
    let message = templates.message(&err.message);
    let reference = super::current_request_id().unwrap_or_default();
    let lang = super::current_lang();
    let c = templates.catalogues();
    let mailto = err.contact.as_deref().and_then(email_in).map(|address| {
        let args = [("title", title.clone()), ("reference", reference.clone())];
        format!(
            "mailto:{address}?subject={}&body={}",
            mailto_encode(&c.text(lang, "refusal.mail_subject", &args)),
            mailto_encode(&c.text(lang, "refusal.mail_body", &args)),
        )
    });
    // What the person sees of it and the support can find in the log with the reference.
    if err.status.is_client_error() || err.refused {
        tracing::info!(status = err.status.as_u16(), page = %err.title.key(), "error page");
    }
    let body = templates.render(
        "error.html",
        minijinja::context! {
            title => title,
            message => message,
            retry_url => err.retry_url,
            status => err.status.as_u16(),
            refusal => err.refused,
            retry_from_lucca => err.retry_from_lucca,
            contact => err.contact,
            mailto => mailto,
        },
    );
    let mut page = (err.status, Html(body)).into_response();
    page.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page
}

/// Middleware: turn a [`PageError`] carried by a response into the rendered error page.
pub async fn render_error_pages(
    State(templates): State<Arc<Templates>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(err) = response.extensions_mut().remove::<PageError>() {
        return error_page(&templates, &err);
    }
    response
}

/// Paths whose clients are programs: an unknown one there answers JSON.
const API_PREFIXES: &[&str] = &[
    "/admin/",
    "/oauth2/",
    "/lucca/",
    "/oidc/",
    "/saml/",
    "/.well-known/",
];

/// Does this request want JSON rather than a page? A browser says `text/html` in `Accept`;
/// an API client either asks for JSON or calls an API path without asking for HTML.
pub fn wants_json(path: &str, headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if accept.contains("text/html") {
        return false;
    }
    accept.contains("json")
        || API_PREFIXES
            .iter()
            .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'))
}

/// The fallback: nobody serves this path. A page for a person, JSON for a program, with the
/// reference id either way.
pub async fn not_found(State(templates): State<Arc<Templates>>, request: Request) -> Response {
    if wants_json(request.uri().path(), request.headers()) {
        let body = serde_json::json!({
            "error": "not_found",
            "error_description": "no such endpoint",
            "request_id": super::current_request_id(),
        });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    error_page(&templates, &PageError::not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_in_a_support_contact_is_found() {
        assert_eq!(email_in("hr@acme.test"), Some("hr@acme.test"));
        assert_eq!(
            email_in("your HR team (hr@acme.test)"),
            Some("hr@acme.test")
        );
        assert_eq!(
            email_in("Write to <it.help@acme.fr>."),
            Some("it.help@acme.fr")
        );
        assert_eq!(email_in("mailto:rh@acme.fr"), Some("rh@acme.fr"));
        assert_eq!(email_in("your HR or IT team"), None);
        assert_eq!(email_in("@acme.test"), None);
        assert_eq!(email_in("a@b"), None);
        assert_eq!(email_in("a@b.c?subject=x"), None);
    }

    #[test]
    fn mailto_text_is_percent_encoded() {
        assert_eq!(
            mailto_encode("Connexion refusée : x & y\n"),
            "Connexion%20refus%C3%A9e%20%3A%20x%20%26%20y%0A"
        );
    }

    #[test]
    fn json_or_page_by_path_and_accept() {
        let h = |accept: &str| {
            let mut m = HeaderMap::new();
            if !accept.is_empty() {
                m.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            }
            m
        };
        assert!(!wants_json("/nope", &h("")));
        assert!(!wants_json(
            "/nope",
            &h("text/html,application/xhtml+xml,*/*;q=0.8")
        ));
        assert!(wants_json("/nope", &h("application/json")));
        assert!(wants_json("/admin/nope", &h("")));
        assert!(wants_json("/oauth2/nope", &h("*/*")));
        assert!(wants_json("/lucca/x", &h("")));
        assert!(!wants_json("/admin/nope", &h("text/html")));
    }
}
