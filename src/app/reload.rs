//! Reload: re-read the configuration file (on `POST /admin/reload` or SIGHUP) and swap in what
//! may change without a restart.

use std::sync::Arc;

use super::AppState;
use crate::config::Config;
use crate::login::{Directory, Live};

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
