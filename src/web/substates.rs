//! How each room's narrow state is cut from [`AppState`] (axum `FromRef`): handlers extract
//! `State<LoginState>`, `State<OidcState>`, `State<SamlState>` and never see the whole app.

use axum::extract::FromRef;

use super::{AppState, TrustedProxies};
use crate::login::LoginState;
use crate::oidc::OidcState;

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
