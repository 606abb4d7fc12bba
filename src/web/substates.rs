//! The narrow states handlers extract (`State<RoomState>`), each read from [`AppState`].

use axum::extract::FromRef;

use super::AppState;

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
