//! The HTTP client `openidconnect` runs on: a closure over reqwest 0.13 (crates-notes §4), so
//! the crate's own reqwest 0.12 feature is not needed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type HttpFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// No redirects (an IdP endpoint that redirects is misconfigured, and following could leak
/// credentials), bounded time.
pub fn oidc_http_client() -> impl Fn(openidconnect::HttpRequest) -> HttpFuture + Clone {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    move |req| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let r = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut builder = http::Response::builder().status(r.status());
            for (k, v) in r.headers() {
                builder = builder.header(k, v);
            }
            let bytes = r.bytes().await.map_err(|e| HttpError(e.to_string()))?;
            builder
                .body(bytes.to_vec())
                .map_err(|e| HttpError(e.to_string()))
        })
    }
}
