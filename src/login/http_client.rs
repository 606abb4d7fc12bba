//! The HTTP client for OpenID providers (the upstream IdPs, and the demo RP talking to us):
//! built once at start, and run by `openidconnect` through a closure over reqwest 0.13
//! (crates-notes §4), so the crate's own reqwest 0.12 feature is not needed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type HttpFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// How long one call to a provider (discovery, token, userinfo) may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The one client every call to an OpenID provider goes through. Cheap to clone (a pool).
#[derive(Clone)]
pub struct OidcHttp {
    client: reqwest::Client,
}

impl OidcHttp {
    /// No redirects (an IdP endpoint that redirects is misconfigured, and following could leak
    /// credentials), bounded time. Fails only if the TLS backend cannot start: the caller
    /// refuses to start rather than fall back to a client without these limits.
    pub fn new() -> Result<OidcHttp, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()?;
        Ok(OidcHttp { client })
    }

    /// For calls `openidconnect` does not make itself (the raw userinfo read).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The transport `openidconnect`'s `*_async` calls take.
    pub fn transport(&self) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture + Clone {
        let client = self.client.clone();
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
}
