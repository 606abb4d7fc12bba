//! Errors at the edge: an HTML page for a person in a browser (OAuth JSON is `oidc`'s).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use std::sync::Arc;

use super::Templates;

/// An error shown to a person as a page (rendered from `templates/error.html`).
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    /// A link to try again, when there is something sensible to retry.
    pub retry_url: Option<String>,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        PageError {
            status,
            title: title.into(),
            message: message.into(),
            retry_url: None,
        }
    }
    pub fn bad_request(title: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, message)
    }
    /// Something on our side failed: logged in full, shown without detail.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Something went wrong",
            "Passerelle could not complete this step. Please try again in a moment; if it keeps happening, contact your IT team.",
        )
    }
    pub fn with_retry(mut self, url: impl Into<String>) -> Self {
        self.retry_url = Some(url.into());
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

/// Middleware: turn a [`PageError`] carried by a response into the rendered error page.
pub async fn render_error_pages(
    State(templates): State<Arc<Templates>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(err) = response.extensions_mut().remove::<PageError>() {
        let body = templates.render(
            "error.html",
            minijinja::context! { title => err.title, message => err.message, retry_url => err.retry_url, status => err.status.as_u16() },
        );
        let mut page = (err.status, Html(body)).into_response();
        page.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return page;
    }
    response
}
