//! Loading: the TOML file (errors name the key path), `PASSERELLE_*` environment overrides,
//! relative paths resolved against the file's directory, and secrets read from `*_file` keys.

use std::path::{Path, PathBuf};

use super::{Config, Problem, Secret, Severity};

/// Why a configuration could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `FILE:LINE:COLUMN: key: message`, then the offending line with a caret under the
    /// column (the position is absent only when the parser gave none).
    #[error("{}", parse_message(path, key, message, position.as_ref()))]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
        position: Option<Position>,
    },
    #[error("{key}: cannot read secret file {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {message}")]
    Secret { key: String, message: String },
}

/// `FILE:LINE:COLUMN: key: message` and the excerpt; a syntax error belongs to no key.
fn parse_message(path: &Path, key: &str, message: &str, position: Option<&Position>) -> String {
    let mut text = path.display().to_string();
    if let Some(p) = position {
        text.push_str(&format!(":{}:{}", p.line, p.column));
    }
    if key != "(file)" || position.is_none() {
        text.push_str(&format!(": {key}"));
    }
    text.push_str(&format!(": {message}"));
    if let Some(p) = position {
        text.push_str(&format!("\n{}", p.excerpt));
    }
    text
}

impl ConfigError {
    fn key(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "(file)",
            ConfigError::Parse { key, .. }
            | ConfigError::SecretFile { key, .. }
            | ConfigError::Secret { key, .. } => key,
        }
    }

    /// The text after the key.
    fn message(&self) -> String {
        match self {
            ConfigError::SecretFile { path, source, .. } => {
                format!("cannot read secret file {}: {source}", path.display())
            }
            ConfigError::Secret { message, .. } | ConfigError::Parse { message, .. } => {
                message.clone()
            }
            ConfigError::Read { .. } => self.to_string(),
        }
    }
}

/// Where in the file a parse error is: 1-based line and column (in characters), and the line
/// itself with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub excerpt: String,
}

impl Position {
    fn at(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let offset = (0..=offset)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        let line_text = text[line_start..]
            .split(['\n', '\r'])
            .next()
            .unwrap_or_default();
        let gutter = line.to_string();
        let pad = " ".repeat(gutter.len());
        let excerpt = format!(
            "{pad} |\n{gutter} | {line_text}\n{pad} | {}^",
            " ".repeat(column - 1)
        );
        Position {
            line,
            column,
            excerpt,
        }
    }
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
    /// Parse TOML text. Errors name the key path (`oidc.clients[0].redirect_uris`) and the
    /// line and column.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            ConfigError::Parse {
                path: origin.to_path_buf(),
                key: if key == "." { "(file)".into() } else { key },
                // The parser's message may run over lines ("invalid array\nexpected `]`").
                message: inner
                    .message()
                    .trim()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(": "),
                position: inner.span().map(|span| Position::at(text, span.start)),
            }
        })
    }

    /// Read the file (if any), then apply the environment and resolve `*_file` secrets.
    /// Relative paths in the file are resolved against the file's directory.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// As [`Config::load`], but a secret file that cannot be read is one more problem to
    /// report with the others (for `passerelle check`) rather than the end of loading.
    pub fn load_for_check(path: Option<&Path>) -> Result<(Config, Vec<Problem>), ConfigError> {
        let mut config = Self::read_file(path)?;
        config.apply_env(|name| std::env::var(name).ok());
        let mut problems: Vec<Problem> = config
            .read_secret_files()
            .into_iter()
            .map(|e| Problem {
                severity: Severity::Error,
                key: e.key().to_string(),
                message: e.message(),
            })
            .collect();
        // Only a folder the admin named is worth a word: the default one is optional.
        if Self::names_templates_dir(path) && !config.server.templates_dir.exists() {
            problems.push(Problem {
                severity: Severity::Warning,
                key: "server.templates_dir".into(),
                message: format!(
                    "{} does not exist: the built-in templates will be used",
                    config.server.templates_dir.display()
                ),
            });
        }
        Ok((config, problems))
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = Self::read_file(path)?;
        config.apply_env(env);
        match config.read_secret_files().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(config),
        }
    }

    /// Whether the file sets `server.templates_dir` itself (it parsed already, so a second
    /// read that fails only means "no").
    fn names_templates_dir(path: Option<&Path>) -> bool {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|table| {
                table
                    .get("server")?
                    .as_table()?
                    .get("templates_dir")
                    .map(|_| ())
            })
            .is_some()
    }

    fn read_file(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
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
            // A blank path stays blank, to be reported as such rather than as the directory.
            if p.is_relative() && !p.as_os_str().is_empty() {
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
            &mut self.server.tls_cert,
            &mut self.server.tls_key,
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

    /// Read every `*_file` secret; each one that cannot be read is returned (all of them, so
    /// `check` reports them together).
    fn read_secret_files(&mut self) -> Vec<ConfigError> {
        fn read(
            errors: &mut Vec<ConfigError>,
            key: String,
            slot: &mut Option<Secret>,
            file: &Option<PathBuf>,
        ) {
            let Some(path) = file else { return };
            let value_key = key.trim_end_matches("_file").to_string();
            let problem = if path.as_os_str().to_string_lossy().trim().is_empty() {
                Some(format!(
                    "is blank: give the path of the file that holds the secret, or remove the key (or set {value_key} instead)"
                ))
            } else if slot.is_some() {
                Some(format!("give either {value_key} or {key}, not both"))
            } else {
                match std::fs::read_to_string(path) {
                    Ok(text) => {
                        *slot = Some(Secret::new(text.trim_end_matches(['\n', '\r'])));
                        None
                    }
                    Err(source) => {
                        errors.push(ConfigError::SecretFile {
                            key,
                            path: path.clone(),
                            source,
                        });
                        return;
                    }
                }
            };
            if let Some(message) = problem {
                errors.push(ConfigError::Secret { key, message });
            }
        }
        let mut errors = Vec::new();
        let e = &mut errors;
        read(
            e,
            "admin.token_file".into(),
            &mut self.admin.token,
            &self.admin.token_file,
        );
        read(
            e,
            "lucca.api_key_file".into(),
            &mut self.lucca.api_key,
            &self.lucca.api_key_file,
        );
        read(
            e,
            "lucca.webhook_secret_file".into(),
            &mut self.lucca.webhook_secret,
            &self.lucca.webhook_secret_file,
        );
        read(
            e,
            "smtp.password_file".into(),
            &mut self.smtp.password,
            &self.smtp.password_file,
        );
        read(
            e,
            "keys.encryption_key_file".into(),
            &mut self.keys.encryption_key,
            &self.keys.encryption_key_file,
        );
        if let Some(path) = &self.keys.previous_encryption_keys_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    self.keys.previous_encryption_keys = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(Secret::new)
                        .collect();
                }
                Err(source) => e.push(ConfigError::SecretFile {
                    key: "keys.previous_encryption_keys_file".into(),
                    path: path.clone(),
                    source,
                }),
            }
        }
        for (i, c) in self.oidc.clients.iter_mut().enumerate() {
            read(
                e,
                format!("oidc.clients[{i}].client_secret_file"),
                &mut c.client_secret,
                &c.client_secret_file,
            );
        }
        for (i, u) in self.upstreams.iter_mut().enumerate() {
            read(
                e,
                format!("upstreams[{i}].client_secret_file"),
                &mut u.client_secret,
                &u.client_secret_file,
            );
        }
        errors
    }
}
