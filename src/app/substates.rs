//! How each room's narrow state is cut from [`AppState`] (axum `FromRef`): handlers extract
//! `State<LoginState>`, `State<OidcState>`, `State<SamlState>`, `State<DemoState>`,
//! `State<Arc<MigrationContext>>`,
//! the readiness handle… and never see the whole app.

use std::sync::Arc;

use axum::extract::FromRef;

use super::AppState;
use crate::demo::DemoState;
use crate::keys::Keys;
use crate::login::LoginState;
use crate::oidc::OidcState;
use crate::provisioning::migration::MigrationContext;
use crate::saml::SamlState;
use crate::store::Store;
use crate::web::health::{Metrics, Readiness, ReadinessProbe};
use crate::web::{AdminToken, TrustedProxies};

/// The fallback's 404 page.
impl FromRef<AppState> for Arc<crate::web::Templates> {
    fn from_ref(state: &AppState) -> Self {
        state.templates.clone()
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.trusted_proxies.clone()
    }
}

impl FromRef<AppState> for LoginState {
    fn from_ref(state: &AppState) -> Self {
        state.login.clone()
    }
}

impl FromRef<AppState> for OidcState {
    fn from_ref(state: &AppState) -> Self {
        state.oidc.clone()
    }
}

impl FromRef<AppState> for SamlState {
    fn from_ref(state: &AppState) -> Self {
        SamlState {
            idp: state.saml.clone(),
            store: state.store.clone(),
            keys: state.keys.clone(),
            pipeline: state.pipeline.clone(),
            login: state.login.clone(),
            templates: state.templates.clone(),
            match_on: state.config.lucca.match_on,
            public_url: state.base_url.clone(),
        }
    }
}

impl FromRef<AppState> for AdminToken {
    fn from_ref(state: &AppState) -> Self {
        AdminToken(state.config.admin.token_digest())
    }
}

impl FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Self {
        Metrics(state.metrics.clone())
    }
}

impl FromRef<AppState> for Readiness {
    fn from_ref(state: &AppState) -> Self {
        Readiness(Arc::new(StoreAndKeys {
            store: state.store.clone(),
            keys: state.keys.clone(),
        }))
    }
}

impl FromRef<AppState> for Arc<MigrationContext> {
    fn from_ref(state: &AppState) -> Self {
        state.migrations.clone()
    }
}

impl FromRef<AppState> for DemoState {
    fn from_ref(state: &AppState) -> Self {
        DemoState {
            config: state.config.clone(),
            templates: state.templates.clone(),
            base_url: state.base_url.clone(),
            demo: state.demo,
            oidc_http: state.oidc_http.clone(),
            keys: state.keys.clone(),
            saml_sso_url: state.saml.urls.sso.as_str().into(),
            store: state.store.clone(),
        }
    }
}

/// `/readyz`: the database answers and a key can sign.
struct StoreAndKeys {
    store: Store,
    keys: Arc<Keys>,
}

#[async_trait::async_trait]
impl ReadinessProbe for StoreAndKeys {
    async fn database_answers(&self) -> bool {
        self.store.health().ping().await.is_ok()
    }
    fn signing_kid(&self) -> String {
        self.keys.signer().kid.clone()
    }
}

impl FromRef<AppState> for crate::provisioning::sync::SyncAdmin {
    fn from_ref(state: &AppState) -> Self {
        state.sync.clone()
    }
}

impl FromRef<AppState> for crate::provisioning::webhooks::WebhookState {
    fn from_ref(state: &AppState) -> Self {
        state.webhooks.clone()
    }
}
