//! `AppState`: one of each room's narrow states and the shared parts, built by
//! [`super::build_state`]. Named nowhere below `app/`: handlers extract their room's state
//! through the `FromRef` impls of `substates.rs`.
//!
//! The router clones its state into every request: the parts sit behind one `Arc`, so that
//! clone is one reference count, not one per field.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::keys::Keys;
use crate::login::Live;
use crate::store::Store;
use crate::web::{Templates, TrustedProxies};

/// Everything a handler may need: [`AppParts`] behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct AppParts {
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
    /// The directory sync (`None` inside when Lucca is not configured).
    pub sync: crate::provisioning::sync::SyncAdmin,
    /// `POST /lucca/webhooks` (`None` inside without `[lucca] webhook_secret`).
    pub webhooks: crate::provisioning::webhooks::WebhookState,
    /// Ends a person's sessions and tokens (leavers, `POST /admin/people/{email}/revoke`).
    pub revoker: Arc<super::revoke::PersonRevoker>,
    /// When this server was built (unix seconds): the console's uptime.
    pub started_at: i64,
    /// The admin console's last `check` answer.
    pub check_cache: super::console::CheckCache,
    /// Built-in TLS (`[server] tls_cert` and `tls_key`): the certificate served, swapped by a
    /// reload. `None`: plain HTTP.
    pub tls: Option<Arc<crate::web::TlsCertificates>>,
}

impl AppParts {
    pub fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
    /// Whether browsers reach us over https only: cookies are `Secure` and HSTS is sent.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://") || self.tls.is_some()
    }
}
