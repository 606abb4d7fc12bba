//! The axum glue: shared state, router assembly, error pages, templates, CSRF, client IP,
//! security headers, health and metrics.

pub(crate) mod admin;
mod csrf;
mod errors;
mod headers;
mod health;
mod ip;
mod networks;
mod prepared;
mod substates;
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

pub use csrf::{csrf_token, verify_csrf};
pub use errors::PageError;
pub use headers::{current_nonce, HSTS};
pub use ip::{client_ip, network_key, ClientAddr, ClientIp, TrustedProxies};
pub use networks::sign_in_allowed;
pub use prepared::Prepared;
pub use templates::Templates;

use crate::config::{ClaimsConfig, Config, RoleMappingRow};
use crate::keys::Keys;
use crate::login::Directory;
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
    pub templates: Arc<Templates>,
    /// The OIDC provider's narrow state (its clients, settings and issuer in `provider`).
    pub oidc: crate::oidc::OidcState,
    /// The SAML IdP: registered SPs (refreshed in place), intake policy, our URLs.
    pub saml: Arc<crate::saml::SamlIdp>,
    /// Login's narrow state: sessions, directory, throttle, upstreams, logout participants.
    pub login: crate::login::LoginState,
    /// The client for calls to OpenID providers (upstreams, the demo RP), built at start.
    pub oidc_http: crate::login::OidcHttp,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `public_url` without a trailing slash.
    pub base_url: Arc<str>,
    pub demo: bool,
    pub config_path: Option<std::path::PathBuf>,
    /// Just-in-time Lucca provisioning; `None` when `[lucca] jit` is off or Lucca unset.
    pub provisioning: Option<Arc<crate::provisioning::Jit>>,
    /// What migration jobs need; shared with their worker.
    pub migrations: Arc<crate::provisioning::migration::MigrationContext>,
    /// Policy, mapping and provisioning between sign-in and the protocol answer.
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// `[server] trusted_proxies`, for the client-IP extractors.
    pub trusted_proxies: TrustedProxies,
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

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let session_store = state.store.sessions().session_store();
    let sessions = SessionManagerLayer::new(session_store)
        .with_name(state.config.login.session_cookie.clone())
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
        .merge(crate::login::routes())
        .merge(crate::oidc::browser_routes())
        .merge(crate::saml::web::routes())
        .merge(crate::demo::routes(state.demo))
        .layer(axum::middleware::from_fn_with_state(
            state.templates.clone(),
            errors::render_error_pages,
        ))
        .layer(sessions)
        // Outside the session layer: a refused client gets no session row.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            networks::require_allowed_network,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    let mut api = Router::new()
        .merge(crate::oidc::api_routes())
        .merge(admin::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    // With a metrics listener of its own, /metrics is served there only.
    if state.config.server.metrics_listen.is_none() {
        api = api.route("/metrics", get(health::metrics_for_admin));
    }

    let router = Router::new()
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
        .merge(crate::provisioning::migration::routes()) // after the 1 MiB limit: uploads have their own cap
        // Every response, JSON included, so no HTML answer can ever go out without a policy.
        .layer(axum::middleware::from_fn(headers::content_security_policy));
    let router = if state.secure_cookies() {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
    } else {
        router
    };
    router
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

/// The router of `[server] metrics_listen`: `/metrics` alone, without authentication (that
/// address is meant for a private interface the scraper reaches).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// Outcome of a reload: what changed, or why the new configuration was refused.
#[derive(Debug, serde::Serialize)]
pub struct Reloaded {
    pub users: usize,
    pub role_mapping_rows: usize,
}

/// Re-read the configuration file and swap in its users, role table and claim settings,
/// keeping sessions. A file that fails validation is refused and the running one kept.
pub async fn reload(state: &AppState) -> Result<Reloaded, Vec<String>> {
    let Some(path) = state.config_path.as_deref() else {
        return Err(vec![
            "no configuration file to reload (started on built-in defaults)".into(),
        ]);
    };
    let config = Config::load(Some(path)).map_err(|e| vec![e.to_string()])?;
    let errors: Vec<String> = config
        .validate()
        .into_iter()
        .filter(|p| p.severity == crate::config::Severity::Error)
        .map(|p| p.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let users = config.directory.users.clone();
    let directory = tokio::task::spawn_blocking(move || Directory::new(&users))
        .await
        .map_err(|e| vec![e.to_string()])?
        .map_err(|e| vec![e.to_string()])?;
    let reloaded = Reloaded {
        users: config.directory.users.len(),
        role_mapping_rows: config.role_mapping.len(),
    };
    state.live.store(Arc::new(Live {
        directory: Arc::new(directory),
        role_mapping: config.role_mapping,
        claims: config.claims,
    }));
    tracing::info!(
        users = reloaded.users,
        rows = reloaded.role_mapping_rows,
        "configuration reloaded"
    );
    Ok(reloaded)
}

/// SIGHUP reloads the users and the role table, like `POST /admin/reload`.
pub fn spawn_reload_on_sighup(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        #[cfg(unix)]
        while hup.recv().await.is_some() {
            if let Err(errors) = reload(&state).await {
                tracing::error!(problems = ?errors, "reload refused; keeping the running configuration");
            }
        }
        #[cfg(not(unix))]
        let _ = state;
    })
}

/// Periodic housekeeping: purge expired rows (sessions too) every minute and audit rows past
/// `[audit] retention` once a day, pick up keys rotated by the CLI.
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut audit_purged_at: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = state.store.housekeeping().purge_expired().await {
                tracing::warn!(error = %e, "purging expired records failed");
            }
            if audit_purged_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(24 * 3600)) {
                audit_purged_at = Some(tokio::time::Instant::now());
                match state
                    .store
                    .audit()
                    .purge_older_than(state.config.audit.retention)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "purged audit rows past [audit] retention"),
                    Err(e) => tracing::warn!(error = %e, "purging old audit rows failed"),
                }
            }
            if let Err(e) = state.keys.reload() {
                tracing::warn!(error = %e, "reloading the key ring failed; keeping the loaded keys");
            }
        }
    })
}
