//! `passerelle check`: everything [`Config::validate`] finds, plus what needs the file system
//! or the network: writable directories, templates that parse, referenced services reachable
//! (the Lucca API answers with the configured key).

use std::path::Path;

use crate::config::{Config, Problem, Severity};
use crate::lucca::{LuccaClient, LuccaError};

pub async fn check(config: &Config) -> Vec<Problem> {
    let mut problems = config.validate();
    let mut push = |severity, key: &str, message: String| {
        problems.push(Problem {
            severity,
            key: key.into(),
            message,
        })
    };

    for (key, dir) in [
        ("server.data_dir", &config.server.data_dir),
        ("server.keys_dir", &config.server.keys_dir),
    ] {
        if let Err(msg) = writable_dir(dir) {
            push(Severity::Error, key, msg);
        }
    }
    if !config.server.templates_dir.exists() {
        push(
            Severity::Warning,
            "server.templates_dir",
            format!(
                "{} does not exist: the built-in templates will be used",
                config.server.templates_dir.display()
            ),
        );
    }

    // SAML SPs: metadata that cannot be read, fetched or parsed, or lacks a POST ACS.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    for (i, sp) in config.saml.service_providers.iter().enumerate() {
        match crate::saml::idp::load_one(&http, i, sp).await {
            Ok(loaded) => {
                for warning in crate::saml::idp::sp_warnings(i, sp, &loaded) {
                    push(Severity::Warning, &warning.key, warning.message);
                }
            }
            Err(problem) => push(Severity::Error, &problem.key, problem.message),
        }
    }

    // Rows whose group nobody can have: only knowable when the local directory is the only source.
    if config.upstreams.is_empty() && !config.directory.users.is_empty() {
        for (i, row) in config.role_mapping.iter().enumerate() {
            let someone_has_it = config
                .directory
                .users
                .iter()
                .any(|u| u.groups.iter().any(|g| g.trim() == row.group.trim()));
            if !someone_has_it {
                push(
                    Severity::Warning,
                    &format!("role_mapping[{i}].group"),
                    format!(
                        "no user in [[directory.users]] has group `{}`: this row never applies",
                        row.group
                    ),
                );
            }
        }
    }
    if let Some(problem) = check_lucca(config, &problems).await {
        problems.push(problem);
    }
    problems
}

/// One cheap authenticated request to Lucca, when `[lucca] base_url` is set and nothing is
/// already wrong with the `lucca.*` keys: proves the URL, the key and its right to read users.
async fn check_lucca(config: &Config, problems: &[Problem]) -> Option<Problem> {
    if problems
        .iter()
        .any(|p| p.severity == Severity::Error && p.key.starts_with("lucca."))
    {
        return None;
    }
    // A configuration error here is already reported by `validate`.
    let client = LuccaClient::from_config(&config.lucca).ok()??;
    let error = client.ping().await.err()?;
    let (severity, key) = match &error {
        LuccaError::Unauthorized | LuccaError::Forbidden { .. } => {
            (Severity::Error, "lucca.api_key")
        }
        LuccaError::RateLimited { .. } => (Severity::Warning, "lucca.base_url"),
        _ => (Severity::Error, "lucca.base_url"),
    };
    Some(Problem {
        severity,
        key: key.into(),
        message: format!("{error} (while checking {})", client.base_url()),
    })
}

fn writable_dir(dir: &Path) -> Result<(), String> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(format!("cannot create {}: {e}", dir.display()));
    }
    let probe = dir.join(".passerelle-write-test");
    match std::fs::write(&probe, b"ok") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("{} is not writable: {e}", dir.display())),
    }
}
