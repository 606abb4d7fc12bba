//! Loading: the TOML file (errors name the key path), `PASSERELLE_*` environment overrides,
//! relative paths resolved against the file's directory, and secrets read from `*_file` keys.

use std::path::{Path, PathBuf};

use super::{Config, Secret};

/// Why a configuration could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{key}: cannot read secret file {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The environment variables of the contract, read through a lookup so tests need not touch
/// the process environment.
pub const ENV_OVERRIDES: [&str; 6] = [
    "PASSERELLE_LISTEN",
    "PASSERELLE_PUBLIC_URL",
    "PASSERELLE_DATA_DIR",
    "PASSERELLE_LUCCA_API_KEY",
    "PASSERELLE_ADMIN_TOKEN",
    "PASSERELLE_DATABASE_URL",
];

impl Config {
    /// Parse TOML text. Errors name the key path (`oidc.clients[0].redirect_uris`).
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            ConfigError::Parse {
                path: origin.to_path_buf(),
                key: if key == "." { "(file)".into() } else { key },
                message: inner.message().trim().to_string(),
            }
        })
    }

    /// Read the file (if any), then apply the environment and resolve `*_file` secrets.
    /// Relative paths in the file are resolved against the file's directory.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut config = Self::from_toml(&text, path)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    config.resolve_relative_paths(dir);
                }
                config
            }
            None => Config::default(),
        };
        config.apply_env(env);
        config.resolve_secret_files()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("PASSERELLE_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = get("PASSERELLE_PUBLIC_URL") {
            self.server.public_url = v;
        }
        if let Some(v) = get("PASSERELLE_DATA_DIR") {
            self.server.data_dir = v.into();
        }
        if let Some(v) = get("PASSERELLE_LUCCA_API_KEY") {
            self.lucca.api_key = Some(Secret::new(v));
            self.lucca.api_key_file = None;
        }
        if let Some(v) = get("PASSERELLE_ADMIN_TOKEN") {
            self.admin.token = Some(Secret::new(v));
            self.admin.token_file = None;
        }
        if let Some(v) = get("PASSERELLE_DATABASE_URL") {
            self.store.url = Some(Secret::new(v));
        }
    }

    fn resolve_relative_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.server.data_dir);
        fix(&mut self.server.keys_dir);
        fix(&mut self.server.templates_dir);
        for p in [
            &mut self.admin.token_file,
            &mut self.lucca.api_key_file,
            &mut self.lucca.webhook_secret_file,
            &mut self.smtp.password_file,
            &mut self.keys.encryption_key_file,
            &mut self.keys.previous_encryption_keys_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        for client in &mut self.oidc.clients {
            if let Some(p) = client.client_secret_file.as_mut() {
                fix(p);
            }
        }
        for upstream in &mut self.upstreams {
            if let Some(p) = upstream.client_secret_file.as_mut() {
                fix(p);
            }
        }
        for sp in &mut self.saml.service_providers {
            if let Some(p) = sp.metadata_file.as_mut() {
                fix(p);
            }
        }
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        fn read(
            key: String,
            slot: &mut Option<Secret>,
            file: &Option<PathBuf>,
        ) -> Result<(), ConfigError> {
            if let Some(path) = file {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
                        key,
                        path: path.clone(),
                        source,
                    })?;
                *slot = Some(Secret::new(text.trim_end_matches(['\n', '\r'])));
            }
            Ok(())
        }
        read(
            "admin.token_file".into(),
            &mut self.admin.token,
            &self.admin.token_file,
        )?;
        read(
            "lucca.api_key_file".into(),
            &mut self.lucca.api_key,
            &self.lucca.api_key_file,
        )?;
        read(
            "lucca.webhook_secret_file".into(),
            &mut self.lucca.webhook_secret,
            &self.lucca.webhook_secret_file,
        )?;
        read(
            "smtp.password_file".into(),
            &mut self.smtp.password,
            &self.smtp.password_file,
        )?;
        read(
            "keys.encryption_key_file".into(),
            &mut self.keys.encryption_key,
            &self.keys.encryption_key_file,
        )?;
        if let Some(path) = &self.keys.previous_encryption_keys_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
                key: "keys.previous_encryption_keys_file".into(),
                path: path.clone(),
                source,
            })?;
            self.keys.previous_encryption_keys = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(Secret::new)
                .collect();
        }
        for (i, c) in self.oidc.clients.iter_mut().enumerate() {
            read(
                format!("oidc.clients[{i}].client_secret_file"),
                &mut c.client_secret,
                &c.client_secret_file,
            )?;
        }
        for (i, u) in self.upstreams.iter_mut().enumerate() {
            read(
                format!("upstreams[{i}].client_secret_file"),
                &mut u.client_secret,
                &u.client_secret_file,
            )?;
        }
        Ok(())
    }
}
