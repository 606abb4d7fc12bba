//! The axum glue: shared state, router assembly, error pages, templates, CSRF, client IP,
//! security headers, health and metrics.

mod admin;
mod csrf;
mod errors;
mod health;
mod ip;
mod templates;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

pub use csrf::{csrf_token, verify_csrf};
pub use errors::{OAuthError, PageError};
pub use ip::ClientIp;
pub use templates::Templates;

use crate::config::{ClaimsConfig, Config, RoleMappingRow};
use crate::keys::Keys;
use crate::login::{Directory, FailureThrottle};
use crate::store::Store;

/// What a config reload replaces; everything else needs a restart.
pub struct Live {
    pub directory: Arc<Directory>,
    pub role_mapping: Vec<RoleMappingRow>,
    pub claims: ClaimsConfig,
}

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Arc<Keys>,
    pub live: Arc<ArcSwap<Live>>,
    pub throttle: Arc<FailureThrottle>,
    pub templates: Arc<Templates>,
    pub oidc: Arc<crate::oidc::Provider>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `public_url` without a trailing slash.
    pub base_url: Arc<str>,
    pub demo: bool,
}

impl AppState {
    pub fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// `n` random bytes, base64url without padding: codes, tokens, ids.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // rand_bytes only fails if the OS RNG is broken; there is no safe way to continue then.
    openssl::rand::rand_bytes(&mut buf).expect("OS random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub const SESSION_COOKIE: &str = "passerelle_session";

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let session_store = SqliteStore::new(state.store.pool().clone());
    let sessions = SessionManagerLayer::new(session_store)
        .with_name(SESSION_COOKIE)
        // Lax, not Strict: the person arrives from Lucca cross-site and must keep their session.
        .with_same_site(SameSite::Lax)
        .with_http_only(true)
        .with_secure(state.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::try_from(
                state.config.login.session_idle_timeout,
            )
            .unwrap_or(tower_sessions::cookie::time::Duration::hours(8)),
        ));

    let browser = Router::new()
        .route("/", get(crate::demo::landing))
        .route("/login", get(crate::login::page::show).post(crate::login::page::submit))
        .route("/logout", get(crate::login::page::logout_page).post(crate::login::page::logout))
        .merge(crate::oidc::browser_routes())
        .merge(crate::demo::routes(state.demo))
        .layer(axum::middleware::from_fn_with_state(state.clone(), errors::render_error_pages))
        .layer(sessions)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            // form-action stays open: the sign-in page posts to itself, but the OIDC form_post
            // and SAML auto-POST pages must post to the client's registered URL.
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));

    let api = Router::new()
        .merge(crate::oidc::api_routes())
        .merge(admin::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));

    Router::new()
        .merge(browser)
        .merge(api)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    // The path only: query strings carry codes and state.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
        .with_state(state)
}

/// Periodic housekeeping: purge expired rows, pick up keys rotated by the CLI.
pub fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = state.store.purge_expired().await {
                tracing::warn!(error = %e, "purging expired records failed");
            }
            if let Err(e) = state.keys.reload() {
                tracing::warn!(error = %e, "reloading the key ring failed; keeping the loaded keys");
            }
        }
    });
}
