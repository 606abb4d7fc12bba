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
    /// The certificate now served, with built-in TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<ReloadedCertificate>,
}

#[derive(Debug, serde::Serialize)]
pub struct ReloadedCertificate {
    pub subject: String,
    pub not_after: String,
}

/// Re-read the configuration file and swap in its users, role table and claim settings,
/// keeping sessions; with built-in TLS, re-read the certificate and key too (from the paths
/// the server started with), for new connections. All or nothing: a file that fails
/// validation, or a certificate that cannot be served, is refused and the running ones kept.
pub async fn reload(state: &AppState) -> Result<Reloaded, Vec<String>> {
    let certificate = match &state.tls {
        Some(tls) => Some(tls.read().map_err(|e| vec![format!("{}: {e}", e.key())])?),
        None => None,
    };
    let fresh = match (state.config_path.as_deref(), &certificate) {
        (Some(path), _) => Some(read_config(path).await?),
        // Started on built-in defaults: only the certificate has a file to be read again.
        (None, Some(_)) => None,
        (None, None) => {
            return Err(vec![
                "no configuration file to reload (started on built-in defaults)".into(),
            ])
        }
    };
    let mut reloaded = match fresh {
        Some((config, directory)) => {
            let reloaded = Reloaded {
                users: config.directory.users.len(),
                role_mapping_rows: config.role_mapping.len(),
                certificate: None,
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
            reloaded
        }
        None => {
            let live = state.live.load();
            Reloaded {
                users: live.directory.len(),
                role_mapping_rows: live.role_mapping.len(),
                certificate: None,
            }
        }
    };
    if let (Some(tls), Some(certificate)) = (&state.tls, certificate) {
        for warning in certificate.warnings(tls.cert_path()) {
            tracing::warn!("server.tls_cert: {warning}");
        }
        tracing::info!(
            subject = %certificate.subject,
            not_after = %certificate.not_after,
            "TLS certificate reloaded"
        );
        reloaded.certificate = Some(ReloadedCertificate {
            subject: certificate.subject.clone(),
            not_after: certificate.not_after.clone(),
        });
        tls.install(certificate);
    }
    Ok(reloaded)
}

/// The configuration file, validated, and the directory built from it (nothing swapped yet).
async fn read_config(path: &std::path::Path) -> Result<(Config, Directory), Vec<String>> {
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
    Ok((config, directory))
}

/// SIGHUP reloads the users, the role table and the TLS certificate, like `POST /admin/reload`.
pub fn spawn_reload_on_sighup(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        #[cfg(unix)]
        while hup.recv().await.is_some() {
            if let Err(errors) = reload(&state).await {
                tracing::error!(problems = ?errors, "reload refused; keeping the running configuration and certificate");
            }
        }
        #[cfg(not(unix))]
        let _ = state;
    })
}
