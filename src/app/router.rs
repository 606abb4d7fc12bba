//! The whole HTTP surface: each room's routes, the layers around them (sessions, error pages,
//! allowed networks, security headers, body limit, tracing), health and metrics.

use axum::http::{header, HeaderName, HeaderValue};
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use super::AppState;
use crate::web::{health, StaticHeadersLayer, HSTS};

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

    let browser = browser_layers(
        Router::new()
            .route("/", get(crate::demo::landing))
            .merge(crate::login::routes())
            .merge(crate::oidc::browser_routes())
            .merge(crate::saml::routes())
            .merge(crate::demo::routes(state.demo)),
        &state,
        sessions.clone(),
    );
    // The admin console: pages a person opens, like the others, but outside the global 1 MiB
    // body limit: a migration upload is bounded by `[migrations] max_upload_bytes` (plus room
    // for the multipart framing and the form's other fields).
    let upload_limit = state.config.migrations.max_upload_bytes + 64 * 1024;
    let console = browser_layers(crate::admin::routes(), &state, sessions)
        .layer(axum::extract::DefaultBodyLimit::max(upload_limit))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(upload_limit));

    let mut api = Router::new()
        .merge(crate::oidc::api_routes())
        .merge(super::admin::routes())
        .merge(crate::admin::api_routes())
        .merge(crate::provisioning::sync::routes())
        .merge(crate::provisioning::webhooks::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    // With a metrics listener of its own, /metrics is served there only.
    if state.config.server.metrics_listen.is_none() {
        api = api.route("/metrics", get(health::metrics_for_admin));
    }

    // Layers are grouped in `ServiceBuilder` stacks: axum boxes (and clones, per request) the
    // service under each `Router::layer`, so one call per group, not one per layer.
    let router = Router::new()
        .merge(browser)
        .merge(api)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024))
        .merge(crate::provisioning::migration::routes()) // after the 1 MiB limit: uploads have their own cap
        .merge(console)
        // Latency per matched route (every route above; the fallback below is not one).
        .route_layer(crate::web::HttpMetricsLayer)
        // Nobody serves the path: a translated page for a browser, JSON for an API client.
        .fallback(crate::web::not_found);
    let default_language =
        crate::web::Lang::from_tag(&state.config.server.default_language).unwrap_or_default();
    // Over https only (`None` sets nothing).
    let hsts = state
        .secure_cookies()
        .then(|| HeaderValue::from_static(HSTS));
    router
        .layer(
            ServiceBuilder::new()
                // Outermost: the request id (in every log line, error page and `X-Request-Id`)
                // and the access log line, so they cover everything inside.
                .layer(crate::web::RequestContextLayer::new(
                    state.trusted_proxies.clone(),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::STRICT_TRANSPORT_SECURITY,
                    hsts,
                ))
                // Every answer, the migration API's and the 404's included.
                .layer(StaticHeadersLayer::new(&PAGE_HEADERS))
                // Every response, JSON included, so no HTML answer can ever go out without a
                // policy.
                .layer(crate::web::ContentSecurityPolicyLayer)
                // The language of whatever page is rendered (a 404 or an error page included).
                .layer(crate::web::LanguageLayer::new(default_language)),
        )
        .with_state(state)
}

/// What every answer carries.
static PAGE_HEADERS: [(HeaderName, HeaderValue); 2] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
];

/// What every page a person opens gets: error pages rendered, the session, the allowed
/// networks (outside the session layer: a refused client gets no session row), no framing, no
/// caching.
fn browser_layers(
    router: Router<AppState>,
    state: &AppState,
    sessions: SessionManagerLayer<crate::store::SessionBackend>,
) -> Router<AppState> {
    router
        .layer(axum::middleware::from_fn_with_state(
            state.templates.clone(),
            crate::web::render_error_pages,
        ))
        .layer(sessions)
        // Outside the session layer: a refused client gets no session row.
        .layer(axum::middleware::from_fn_with_state(
            crate::web::NetworkPolicy {
                allowed: state.config.login.allowed_networks.clone().map(Into::into),
                trusted_proxies: state.trusted_proxies.clone(),
                templates: state.templates.clone(),
            },
            crate::web::require_allowed_network,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The router of `[server] metrics_listen`: `/metrics` alone, without authentication (that
/// address is meant for a private interface the scraper reaches).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}
