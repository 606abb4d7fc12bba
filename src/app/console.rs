//! The admin console's port on the composition root ([`crate::admin::ConsoleOps`]): what it
//! needs that spans rooms (revoking across both front ends, the claims preview, `check`), and
//! the console's narrow state cut from [`AppState`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::FromRef;

use super::AppState;
use crate::admin::{ConsoleOps, ConsoleState};
use crate::provisioning::revocation::RevokeSummary;

/// `passerelle check` asks Lucca and fetches metadata: the status page reuses an answer this
/// recent instead of spending the tenant's budget on every view.
const CHECK_REUSED_FOR: Duration = Duration::from_secs(300);

/// The last `check` answer, per running server.
pub type CheckCache = Arc<tokio::sync::Mutex<Option<(Instant, Vec<String>)>>>;

struct AppConsole(AppState);

#[async_trait]
impl ConsoleOps for AppConsole {
    async fn revoke_email(
        &self,
        email: &str,
        admin: &str,
    ) -> Result<Option<(Vec<String>, RevokeSummary)>, String> {
        self.0
            .revoker
            .revoke_email(email, admin)
            .await
            .map_err(|e| e.to_string())
    }

    async fn preview(
        &self,
        user: &str,
        sp: Option<String>,
        client_id: Option<String>,
    ) -> Result<serde_json::Value, String> {
        let target = super::preview::Target::from_params(sp, client_id)?;
        let preview = super::preview::preview(&self.0, user, &target)
            .await
            .map_err(|e| match e {
                super::preview::PreviewError::UnknownUser(u) => {
                    format!("No person `{u}` in the directory or among upstream sign-ins.")
                }
                e => e.to_string(),
            })?;
        serde_json::to_value(preview).map_err(|e| e.to_string())
    }

    async fn check(&self) -> Vec<String> {
        let mut cache = self.0.check_cache.lock().await;
        if let Some((at, problems)) = cache.as_ref() {
            if at.elapsed() < CHECK_REUSED_FOR {
                return problems.clone();
            }
        }
        let problems: Vec<String> = super::check::check(&self.0.config)
            .await
            .iter()
            .map(ToString::to_string)
            .collect();
        *cache = Some((Instant::now(), problems.clone()));
        problems
    }

    async fn sync_status(&self) -> Option<serde_json::Value> {
        let sync = self.0.sync.0.as_ref()?;
        Some(
            sync.status()
                .await
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
        )
    }

    async fn run_sync(&self) -> Result<(), String> {
        let Some(sync) = self.0.sync.0.as_ref() else {
            return Err("The directory sync needs [lucca] base_url and api_key.".into());
        };
        sync.start().map(drop).map_err(|e| e.to_string())
    }
}

impl FromRef<AppState> for ConsoleState {
    fn from_ref(state: &AppState) -> Self {
        ConsoleState {
            store: state.store.clone(),
            login: state.login.clone(),
            templates: state.templates.clone(),
            keys: state.keys.clone(),
            migrations: state.migrations.clone(),
            saml: state.saml.clone(),
            oidc: state.oidc.provider.clone(),
            config: state.config.clone(),
            lucca: state.provisioning.as_ref().map(|jit| jit.client().clone()),
            ops: Arc::new(AppConsole(state.clone())),
            base_url: state.base_url.clone(),
            started_at: state.started_at,
        }
    }
}
