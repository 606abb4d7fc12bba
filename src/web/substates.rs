//! How each room's narrow state is cut from [`AppState`] (axum `FromRef`): handlers extract
//! `State<LoginState>`, `State<OidcState>`, `State<SamlState>` and never see the whole app.

use axum::extract::FromRef;

use super::{AppState, TrustedProxies};
use crate::login::LoginState;
use crate::oidc::OidcState;
use crate::saml::SamlState;

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
