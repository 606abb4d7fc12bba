//! Validation: every problem that can be found without the network, each naming its key.
//! The secret and hardening rules live beside it in `secrets.rs` and `hardening.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use argon2::password_hash::PasswordHash;

use super::{Config, JitMode, Scope, LANGUAGES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding of [`Config::validate`]: the key it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.key, self.message)
    }
}

/// Lucca's modules, for spotting a misspelt `role_mapping.module`.
pub const KNOWN_MODULES: [&str; 10] = [
    "figgo",
    "pagga",
    "timmi",
    "poplee",
    "cleemy",
    "corehr",
    "directory",
    "budget",
    "cc",
    "lucca",
];

impl Config {
    /// Every problem in the configuration that can be found without the network.
    pub fn validate(&self) -> Vec<Problem> {
        let mut v = Validator::default();
        self.validate_server(&mut v);
        self.validate_oidc(&mut v);
        self.validate_directory(&mut v);
        self.validate_role_mapping(&mut v);
        self.validate_lucca(&mut v);
        self.validate_saml(&mut v);
        self.validate_allowed_groups(&mut v);
        self.validate_upstreams(&mut v);
        self.validate_migrations(&mut v);
        self.validate_secrets(&mut v);
        self.validate_audit(&mut v);
        self.validate_store(&mut v);
        self.validate_upstream_domains(&mut v);
        v.problems
    }

    /// Built-in TLS takes both files or neither. What the files hold is checked where they
    /// are read (`check`, and the start of `serve`).
    fn validate_tls_keys(&self, v: &mut Validator) {
        let server = &self.server;
        for (key, path) in [
            ("server.tls_cert", &server.tls_cert),
            ("server.tls_key", &server.tls_key),
        ] {
            if path
                .as_ref()
                .is_some_and(|p| p.as_os_str().to_string_lossy().trim().is_empty())
            {
                v.error(
                    key,
                    "is blank: give the path of the PEM file, or remove both server.tls_cert and server.tls_key to serve plain HTTP",
                );
            }
        }
        match (&server.tls_cert, &server.tls_key) {
            (Some(_), None) => v.error(
                "server.tls_key",
                "is missing: server.tls_cert and server.tls_key go together (the certificate chain and its private key); set both, or neither to serve plain HTTP",
            ),
            (None, Some(_)) => v.error(
                "server.tls_cert",
                "is missing: server.tls_cert and server.tls_key go together (the certificate chain and its private key); set both, or neither to serve plain HTTP",
            ),
            _ => {}
        }
    }

    fn validate_server(&self, v: &mut Validator) {
        if let Err(msg) = self.listen_addr() {
            v.error("server.listen", msg);
        }
        match Url::parse(&self.server.public_url) {
            Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {
                if url.query().is_some() || url.fragment().is_some() {
                    v.error("server.public_url", "must not have a query or fragment");
                }
                if url.scheme() == "http" && self.server.tls_files().is_some() {
                    v.warning(
                        "server.public_url",
                        "is http, but server.tls_cert and server.tls_key make Passerelle serve https only: set public_url to https://… (the issuer and every URL Passerelle hands out are built from it)",
                    );
                } else if url.scheme() == "http" && !is_loopback_host(&url) {
                    v.warning(
                        "server.public_url",
                        "is plain http on a non-loopback host: browsers will send session cookies in clear; use https",
                    );
                }
            }
            Ok(_) => v.error("server.public_url", "must be an http(s) URL"),
            Err(e) => v.error("server.public_url", format!("not a URL: {e}")),
        }
        self.validate_tls_keys(v);
        if self.server.legacy_trust_forwarded_for.is_some() {
            v.error(
                "server.trust_forwarded_for",
                "replaced by server.trusted_proxies: list your reverse proxies' addresses (e.g. trusted_proxies = [\"10.0.0.5\"] or [\"10.0.0.0/8\"]) and remove trust_forwarded_for. X-Forwarded-For is then read from the right and only from those proxies; the old switch believed the leftmost hop, which the client chooses",
            );
        }
        if !LANGUAGES.contains(&self.server.default_language.as_str()) {
            v.error(
                "server.default_language",
                format!(
                    "\"{}\" is not a language Passerelle's pages are written in: use one of {}",
                    self.server.default_language,
                    LANGUAGES
                        .iter()
                        .map(|l| format!("\"{l}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if let Some(addr) = &self.server.metrics_listen {
            match addr.parse::<SocketAddr>() {
                Err(e) => v.error(
                    "server.metrics_listen",
                    format!("`{addr}` is not an address:port ({e})"),
                ),
                Ok(m) if self.listen_addr().is_ok_and(|l| l == m && m.port() != 0) => v.error(
                    "server.metrics_listen",
                    "must differ from server.listen (it is a second listener for /metrics only)",
                ),
                Ok(_) => {}
            }
        }
        if let Some(networks) = &self.login.allowed_networks {
            if networks.is_empty() {
                v.error(
                    "login.allowed_networks",
                    "is empty: nobody could sign in; remove the key to allow every network",
                );
            } else {
                for (i, c) in self.oidc.clients.iter().enumerate() {
                    if !c.is_public() && !c.token_from_any_network {
                        v.warning(
                            format!("oidc.clients[{i}].token_from_any_network"),
                            format!("login.allowed_networks also applies to the token endpoint, and `{}` is a confidential client whose servers redeem codes: add their addresses to allowed_networks or set token_from_any_network = true for it", c.client_id),
                        );
                    }
                }
            }
        }
        let admin = &self.admin;
        // Length and placeholder rules for every secret: `secrets.rs`.
        if let Some(h) = &admin.token_sha256 {
            if h.len() != 64 || hex::decode(h).is_err() {
                v.error(
                    "admin.token_sha256",
                    "must be 64 hex digits (sha256 of the token)",
                );
            }
        }
    }

    fn validate_oidc(&self, v: &mut Validator) {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.oidc.clients.iter().enumerate() {
            let key = format!("oidc.clients[{i}]");
            if c.client_id.trim().is_empty() {
                v.error(format!("{key}.client_id"), "is required");
            } else if !seen.insert(c.client_id.as_str()) {
                v.error(
                    format!("{key}.client_id"),
                    format!("`{}` is used by two clients", c.client_id),
                );
            }
            if c.redirect_uris.is_empty() {
                v.error(
                    format!("{key}.redirect_uris"),
                    "needs at least one redirect URI",
                );
            }
            for (j, uri) in c.redirect_uris.iter().enumerate() {
                if let Err(msg) = check_redirect_uri(uri, c.is_public()) {
                    v.error(format!("{key}.redirect_uris[{j}]"), msg);
                }
            }
            for (j, uri) in c.post_logout_redirect_uris.iter().enumerate() {
                if let Err(msg) = check_redirect_uri(uri, c.is_public()) {
                    v.error(format!("{key}.post_logout_redirect_uris[{j}]"), msg);
                }
            }
            for (j, scope) in c.allowed_scopes.iter().enumerate() {
                if Scope::parse(scope).is_none() {
                    v.error(
                        format!("{key}.allowed_scopes[{j}]"),
                        format!(
                            "unknown scope `{scope}` (supported: {})",
                            Scope::NAMES.join(", ")
                        ),
                    );
                }
            }
        }
        let ttl = |d: &Duration| d.as_secs() == 0;
        if ttl(&self.oidc.code_ttl) || self.oidc.code_ttl > Duration::from_secs(600) {
            v.error("oidc.code_ttl", "must be between 1s and 10m");
        }
        if ttl(&self.oidc.id_token_ttl) {
            v.error("oidc.id_token_ttl", "must be at least 1s");
        }
        if ttl(&self.oidc.access_token_ttl) {
            v.error("oidc.access_token_ttl", "must be at least 1s");
        }
        if ttl(&self.oidc.refresh_token_max_lifetime) {
            v.error("oidc.refresh_token_max_lifetime", "must be at least 1s");
        } else if self.oidc.refresh_token_max_lifetime < self.oidc.refresh_token_ttl {
            v.warning(
                "oidc.refresh_token_max_lifetime",
                "is shorter than oidc.refresh_token_ttl: every refresh token ends at the max lifetime",
            );
        }
        if self.oidc.refresh_grace > Duration::from_secs(120) {
            v.error(
                "oidc.refresh_grace",
                "must be at most 2m: a long window weakens reuse detection",
            );
        }
        if self.keys.retire_after < self.oidc.id_token_ttl.max(self.saml.assertion_ttl) {
            v.warning(
                "keys.retire_after",
                "is shorter than the ID token / assertion lifetime: tokens signed by a retired key would stop verifying",
            );
        }
        if self.keys.reload_interval < Duration::from_millis(100) {
            v.error("keys.reload_interval", "must be at least 100ms");
        } else if self.store.url().is_some() && self.keys.rotation_delay < self.keys.reload_interval
        {
            v.warning(
                "keys.rotation_delay",
                "is shorter than keys.reload_interval: a node may not have read a staged key \
                 before the others sign with it",
            );
        }
    }

    fn validate_directory(&self, v: &mut Validator) {
        let mut emails = std::collections::HashSet::new();
        let mut logins = std::collections::HashSet::new();
        for (i, u) in self.directory.users.iter().enumerate() {
            let key = format!("directory.users[{i}]");
            let email = u.email.trim().to_lowercase();
            if !looks_like_email(&email) {
                v.error(
                    format!("{key}.email"),
                    format!("`{}` is not an email address", u.email),
                );
            } else if !emails.insert(email.clone()) {
                v.error(format!("{key}.email"), format!("`{email}` is listed twice"));
            }
            if let Some(login) = &u.login {
                if !logins.insert(login.trim().to_lowercase()) {
                    v.error(format!("{key}.login"), format!("`{login}` is listed twice"));
                }
            }
            match (&u.password, &u.password_hash) {
                (Some(_), Some(_)) => v.error(format!("{key}.password"), "give either password or password_hash, not both"),
                (None, None) if !u.disabled => v.error(format!("{key}.password_hash"), "is required (or a plain `password` for demos)"),
                (Some(_), None) => v.warning(
                    format!("{key}.password"),
                    "is a plain-text password: fine for a demo, use password_hash (`passerelle hash-password`) in production",
                ),
                (None, Some(hash)) => {
                    if let Err(msg) = check_password_hash(hash) {
                        v.error(format!("{key}.password_hash"), msg);
                    }
                }
                (None, None) => {}
            }
            if let Some(m) = &u.manager_email {
                if !looks_like_email(m.trim()) {
                    v.error(
                        format!("{key}.manager_email"),
                        format!("`{m}` is not an email address"),
                    );
                }
            }
        }
    }

    /// `allowed_groups` of clients and SPs: no blank entry (it would match nobody, silently), and
    /// a warning when, with only local accounts, no one holds any of the groups.
    fn validate_allowed_groups(&self, v: &mut Validator) {
        let lists = self
            .oidc
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    format!("oidc.clients[{i}].allowed_groups"),
                    &c.allowed_groups,
                )
            })
            .chain(
                self.saml
                    .service_providers
                    .iter()
                    .enumerate()
                    .map(|(i, sp)| {
                        (
                            format!("saml.service_providers[{i}].allowed_groups"),
                            &sp.allowed_groups,
                        )
                    }),
            );
        for (key, groups) in lists {
            for (j, g) in groups.iter().enumerate() {
                if g.trim().is_empty() {
                    v.error(format!("{key}[{j}]"), "is empty");
                }
            }
            let held = |g: &String| {
                self.directory
                    .users
                    .iter()
                    .any(|u| u.groups.iter().any(|ug| ug.trim() == g.trim()))
            };
            if !groups.is_empty() && self.upstreams.is_empty() && !groups.iter().any(held) {
                v.warning(
                    key,
                    format!("no local user is in any of {groups:?}: nobody can sign in here",),
                );
            }
        }
    }

    fn validate_role_mapping(&self, v: &mut Validator) {
        let mut seen = std::collections::HashSet::new();
        for (i, row) in self.role_mapping.iter().enumerate() {
            let key = format!("role_mapping[{i}]");
            if row.group.trim().is_empty() {
                v.error(format!("{key}.group"), "is empty");
            }
            if row.role.trim().is_empty() {
                v.error(format!("{key}.role"), "is empty");
            }
            if let Some(module) = row.module.as_deref().map(str::trim) {
                if module.is_empty() {
                    v.error(
                        format!("{key}.module"),
                        "is empty (omit it for a role that belongs to no module)",
                    );
                } else if !KNOWN_MODULES.contains(&module.to_ascii_lowercase().as_str()) {
                    v.warning(
                        format!("{key}.module"),
                        format!("`{module}` is not a Lucca module Passerelle knows ({}); check the spelling", KNOWN_MODULES.join(", ")),
                    );
                }
            }
            if !seen.insert((
                row.group.trim(),
                row.role.trim(),
                row.module.as_deref().map(str::trim),
            )) {
                v.error(
                    key.clone(),
                    format!("duplicates an earlier row ({} → {})", row.group, row.role),
                );
            }
        }
    }

    fn validate_lucca(&self, v: &mut Validator) {
        let l = &self.lucca;
        if let Some(base) = &l.base_url {
            match Url::parse(base) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                _ => v.error("lucca.base_url", format!("`{base}` is not an http(s) URL")),
            }
            if l.api_key.as_ref().is_none_or(|k| k.is_empty()) {
                v.error("lucca.api_key", "is required when lucca.base_url is set (or PASSERELLE_LUCCA_API_KEY / lucca.api_key_file)");
            }
        } else if l.jit != JitMode::Off {
            v.error("lucca.jit", "needs lucca.base_url and lucca.api_key");
        }
        if l.requests_per_minute == 0 {
            v.error("lucca.requests_per_minute", "must be at least 1");
        } else if l.requests_per_minute > 50 {
            v.warning(
                "lucca.requests_per_minute",
                "is above Lucca's 50 requests/minute per tenant: expect 429 answers",
            );
        }
        if l.requests_per_minute > 0 && l.sign_in_reserve >= l.requests_per_minute {
            v.error(
                "lucca.sign_in_reserve",
                format!(
                    "must be under lucca.requests_per_minute ({}): batch work needs at least one request a minute",
                    l.requests_per_minute
                ),
            );
        }
        if l.request_timeout >= Duration::from_secs(5) || l.request_timeout.is_zero() {
            v.error(
                "lucca.request_timeout",
                "must be under 5s: Lucca aborts longer requests",
            );
        }
        if l.sign_in_wait.is_zero() || l.sign_in_wait > Duration::from_secs(600) {
            v.error(
                "lucca.sign_in_wait",
                "must be between 1s and 10m: a person waits this long at most",
            );
        }
        if !l.sync_interval.is_zero() && l.sync_interval < Duration::from_secs(1) {
            v.error(
                "lucca.sync_interval",
                "must be at least 1s, or \"0s\" (off)",
            );
        }
        if l.base_url.is_none() {
            if !l.sync_interval.is_zero()
                && l.sync_interval != super::LuccaConfig::default().sync_interval
            {
                v.warning(
                    "lucca.sync_interval",
                    "has no effect without lucca.base_url",
                );
            }
            if l.webhook_secret.is_some() {
                v.warning(
                    "lucca.webhook_secret",
                    "has no effect without lucca.base_url",
                );
            }
            if l.apply_roles {
                v.warning("lucca.apply_roles", "has no effect without lucca.base_url");
            }
        }
        for (i, row) in self.role_mapping.iter().enumerate() {
            if row.lucca_role_id.is_some() && row.lucca_role.is_some() {
                v.error(
                    format!("role_mapping[{i}].lucca_role"),
                    "set lucca_role_id or lucca_role, not both",
                );
            }
            if row.lucca_role_id.is_some_and(|id| id <= 0) {
                v.error(
                    format!("role_mapping[{i}].lucca_role_id"),
                    "must be a positive Lucca role id",
                );
            }
            if row
                .lucca_role
                .as_deref()
                .is_some_and(|n| n.trim().is_empty())
            {
                v.error(format!("role_mapping[{i}].lucca_role"), "must not be empty");
            }
        }
        if l.support_contact.trim().is_empty() {
            v.error(
                "lucca.support_contact",
                "must not be empty: refused people are told whom to contact",
            );
        }
        for (i, attribute) in l.owned_attributes.iter().enumerate() {
            if l.owned_attributes[..i].contains(attribute) {
                v.warning(
                    format!("lucca.owned_attributes[{i}]"),
                    format!("`{}` is listed twice", attribute.as_str()),
                );
            }
        }
        if let Some(id) = l.defaults.culture_id {
            let key = "lucca.defaults.culture_id";
            if !super::culture::LUCCA_CULTURES.contains(&id) {
                v.error(
                    key,
                    format!(
                        "{id} is not a Windows language id (LCID) Lucca accepts ({}–{}): for example {}",
                        super::culture::LUCCA_CULTURES.start(),
                        super::culture::LUCCA_CULTURES.end(),
                        super::culture::culture_examples()
                    ),
                );
            } else if super::culture::culture_name(id).is_none() {
                // Lucca lists no cultures, so an unusual LCID may be right: only Lucca's answer
                // to the first account created with it tells.
                v.warning(
                    key,
                    format!(
                        "{id} is not a common Windows language id (LCID): check that Lucca has this culture, or Lucca refuses the accounts created with it (common ones: {})",
                        super::culture::culture_examples()
                    ),
                );
            }
        }
        if l.jit == JitMode::CreateAndUpdate {
            let d = &l.defaults;
            for (name, value) in [
                ("legal_entity_id", d.legal_entity_id),
                ("role_principal_id", d.role_principal_id),
                ("culture_id", d.culture_id),
                ("department_id", d.department_id),
            ] {
                if value.is_none() {
                    v.error(
                        format!("lucca.defaults.{name}"),
                        "is required when lucca.jit = \"create_and_update\"",
                    );
                }
            }
        }
    }

    fn validate_saml(&self, v: &mut Validator) {
        for (i, sp) in self.saml.service_providers.iter().enumerate() {
            let key = format!("saml.service_providers[{i}]");
            let sources = [
                sp.metadata_file.is_some(),
                sp.metadata_url.is_some(),
                sp.entity_id.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if sources == 0 {
                v.error(
                    key.clone(),
                    "needs metadata_file, metadata_url, or entity_id + acs_url",
                );
            } else if sources > 1
                && (sp.metadata_file.is_some() || sp.metadata_url.is_some())
                && sp.entity_id.is_none()
            {
                v.error(key.clone(), "give one of metadata_file or metadata_url");
            }
            if sp.entity_id.is_some()
                && sp.metadata_file.is_none()
                && sp.metadata_url.is_none()
                && sp.acs_url.is_none()
            {
                v.error(format!("{key}.acs_url"), "is required with entity_id");
            }
            if let Some(acs) = &sp.acs_url {
                if Url::parse(acs).is_err() {
                    v.error(format!("{key}.acs_url"), format!("`{acs}` is not a URL"));
                }
            }
            if let Some(url) = &sp.metadata_url {
                if Url::parse(url).is_err() {
                    v.error(
                        format!("{key}.metadata_url"),
                        format!("`{url}` is not a URL"),
                    );
                }
            }
            if let Some(f) = &sp.name_id_format {
                if !["email", "persistent", "unspecified"].contains(&f.as_str()) {
                    v.error(
                        format!("{key}.name_id_format"),
                        "must be email, persistent or unspecified",
                    );
                }
            }
            if let Some(f) = &sp.identifier {
                if !["email", "login"].contains(&f.as_str()) {
                    v.error(format!("{key}.identifier"), "must be email or login");
                }
            }
            if let Some(f) = &sp.attribute_name_format {
                if !["unspecified", "uri", "basic"].contains(&f.as_str()) {
                    v.error(
                        format!("{key}.attribute_name_format"),
                        "must be unspecified, uri or basic",
                    );
                }
            }
            if !sp.sign_response && !sp.sign_assertion {
                v.warning(
                    key.clone(),
                    "neither the response nor the assertion is signed: no SP should accept this",
                );
            }
        }
    }

    fn validate_upstreams(&self, v: &mut Validator) {
        let mut names = std::collections::HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let key = format!("upstreams[{i}]");
            let valid_name = !u.name.is_empty()
                && u.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                v.error(
                    format!("{key}.name"),
                    "must be non-empty letters, digits, - or _ (it is part of the callback URL)",
                );
            } else if !names.insert(u.name.as_str()) {
                v.error(format!("{key}.name"), format!("`{}` is used twice", u.name));
            }
            if Url::parse(&u.issuer).is_err() {
                v.error(
                    format!("{key}.issuer"),
                    format!("`{}` is not a URL", u.issuer),
                );
            }
            if u.client_id.is_empty() {
                v.error(format!("{key}.client_id"), "is required");
            }
        }
    }
}

impl Config {
    fn validate_migrations(&self, v: &mut Validator) {
        let m = &self.migrations;
        if m.max_upload_bytes == 0 {
            v.error("migrations.max_upload_bytes", "must be at least 1");
        }
        if m.max_rows == 0 {
            v.error("migrations.max_rows", "must be at least 1");
        }
        let smtp = &self.smtp;
        match smtp.host.as_deref().map(str::trim) {
            Some("") => v.error("smtp.host", "is empty (remove it to send no email)"),
            Some(_) => {
                match smtp.from.as_deref() {
                    None => v.error("smtp.from", "is required when smtp.host is set"),
                    Some(from) if from.parse::<lettre::message::Mailbox>().is_err() => v.error(
                        "smtp.from",
                        format!("`{from}` is not an address (e.g. \"IT <it@acme.test>\")"),
                    ),
                    Some(_) => {}
                }
                if smtp.port == 0 {
                    v.error("smtp.port", "must be a port number");
                }
                if smtp.password.is_some() && smtp.username.is_none() {
                    v.error("smtp.username", "is required with smtp.password");
                }
            }
            None if m.notify_people => v.error(
                "migrations.notify_people",
                "needs [smtp] host and from to send the emails",
            ),
            None => {}
        }
    }
}

#[derive(Default)]
pub(super) struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, key.into(), message.into());
    }
    pub(super) fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, key.into(), message.into());
    }
    fn push(&mut self, severity: Severity, key: String, message: String) {
        self.problems.push(Problem {
            severity,
            key,
            message,
        });
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Is a configured hash an argon2 PHC string the login room can verify? The one syntax rule:
/// `passerelle check` and the directory both call it.
pub fn check_password_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("not a PHC hash string ({e})"))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "algorithm `{}` is not argon2 (use `passerelle hash-password`)",
            parsed.algorithm
        ));
    }
    // A string that parses but lacks its salt or output, or whose parameters argon2 refuses,
    // would turn every sign-in of this person into "Wrong email or password.".
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(
            "has no salt or no hash output: it is cut short (make a new one with `passerelle hash-password`)"
                .into(),
        );
    }
    argon2::Params::try_from(&parsed).map_err(|e| {
        format!(
            "argon2 refuses its parameters ({e}); make a new one with `passerelle hash-password`"
        )
    })?;
    Ok(())
}

/// A deliberately loose check: one `@`, something on both sides, a dot in the domain.
pub fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        _ => false,
    }
}

/// What a registered redirect URI may look like (RFC 6749 §3.1.2, RFC 8252 for native apps).
fn check_redirect_uri(uri: &str, public: bool) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` must not contain a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!("`{uri}` uses plain http on a non-loopback host; use https")),
        scheme if public && scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "`{uri}`: custom scheme `{scheme}` is only allowed for public (native) clients and must be reverse-DNS (e.g. com.example.app)"
        )),
    }
}
