//! `passerelle check`: everything [`Config::validate`] finds, plus what needs the file system
//! or the network: writable directories, templates that parse, referenced services reachable
//! (the Lucca API answers with the configured key).
//!
//! Every problem found is returned together; `main` prints them on stdout.
//!
//! It changes nothing on disk: a missing `data_dir` or `keys_dir` is created (0700) by the first
//! `serve`, so here it only has to be creatable.

use std::path::{Path, PathBuf};

use crate::config::{Config, Problem, Severity};
use crate::lucca::{LuccaClient, LuccaError};

pub async fn check(config: &Config) -> Vec<Problem> {
    let mut problems = config.validate();
    let keys_valid = !problems
        .iter()
        .any(|p| p.severity == Severity::Error && p.key.starts_with("keys."));
    let tls_valid = !problems
        .iter()
        .any(|p| p.severity == Severity::Error && p.key.starts_with("server.tls_"));
    let mut push = |severity, key: &str, message: String| {
        problems.push(Problem {
            severity,
            key: key.into(),
            message,
        })
    };

    for (key, dir, holds) in [
        (
            "server.data_dir",
            &config.server.data_dir,
            "the database (session ids, tokens, the audit log)",
        ),
        ("server.keys_dir", &config.server.keys_dir, "private keys"),
    ] {
        for (severity, message) in directory_problems(dir, holds) {
            push(severity, key, message);
        }
    }
    match crate::store::StoreConfig::from_settings(config.store.url(), &config.server.data_dir) {
        Err(e) => push(Severity::Error, "store.url", e.to_string()),
        Ok(store) => match crate::store::probe(&store).await {
            Err(e) => push(Severity::Error, "store.url", crate::web::cause_chain(&e)),
            Ok(_) if keys_valid && config.keys.has_encryption_key() => {
                // The key-encryption key must open the keys the other nodes stored: a node
                // given another one would refuse to start.
                match crate::store::peek_signing_keys(&store).await {
                    Err(e) => push(Severity::Error, "store.url", crate::web::cause_chain(&e)),
                    Ok(Some(rows)) => {
                        if let Err(e) = crate::keys::open_stored(&rows, &config.keys) {
                            push(Severity::Error, "keys.encryption_key", e.to_string());
                        }
                    }
                    Ok(None) => {}
                }
            }
            Ok(_) => {}
        },
    }
    for (path, mode) in crate::store::open_data_files(&config.server.data_dir) {
        push(
            Severity::Warning,
            "server.data_dir",
            format!(
                "{} is open to other users (mode {mode:o}) and holds session ids: chmod 600 {}",
                path.display(),
                path.display()
            ),
        );
    }
    for (path, mode) in open_private_keys(&config.server.keys_dir) {
        push(
            Severity::Warning,
            "server.keys_dir",
            open_key_message(&path, mode),
        );
    }
    // Built-in TLS: what `serve` would refuse to start with, and what it would warn about.
    if let Some((cert, key)) = config.server.tls_files().filter(|_| tls_valid) {
        match crate::web::tls::Certificate::read(cert, key) {
            Ok(certificate) => {
                for warning in certificate.warnings(cert) {
                    push(Severity::Warning, "server.tls_cert", warning);
                }
            }
            Err(e) => push(Severity::Error, e.key(), e.to_string()),
        }
        if let Some(mode) = std::fs::metadata(key).ok().as_ref().and_then(open_mode) {
            push(
                Severity::Warning,
                "server.tls_key",
                open_key_message(key, mode),
            );
        }
    }
    // A missing templates_dir the admin named is reported by `Config::load_for_check`: the
    // default one is optional and worth no warning.
    if config.oidc.clients.is_empty() && config.saml.service_providers.is_empty() {
        push(
            Severity::Warning,
            "oidc.clients",
            "nothing is configured to sign in to: add an [[oidc.clients]] or a [[saml.service_providers]] (see examples/passerelle.toml)".into(),
        );
    }

    // The admin's message catalogues: a file that cannot be read leaves its built-in messages.
    let (_, unreadable) = crate::web::i18n::Catalogues::load(&config.server.templates_dir);
    for problem in unreadable {
        push(
            Severity::Warning,
            "server.templates_dir",
            format!("{problem}: the built-in messages are used instead"),
        );
    }

    // SAML SPs: metadata that cannot be read, fetched or parsed, or lacks a POST ACS.
    match crate::saml::idp::metadata_http_client() {
        Err(e) if !config.saml.service_providers.is_empty() => push(
            Severity::Error,
            "saml.service_providers",
            format!("cannot build the HTTP client that fetches SP metadata: {e}"),
        ),
        Err(_) => {}
        Ok(http) => {
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
    problems.extend(check_upstreams(config).await);
    if let Some(problem) = check_lucca(config, &problems).await {
        problems.push(problem);
    } else {
        problems.extend(check_lucca_roles(config, &problems).await);
        problems.extend(check_lucca_defaults(config, &problems).await);
    }
    problems
}

/// Each upstream's OpenID discovery document, when it can be fetched: the issuer it states
/// must be `issuer` exactly (sign-in compares them the same way), and the endpoints sign-in
/// needs must be there. An upstream this machine cannot reach is a warning with the cause.
async fn check_upstreams(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    if config.upstreams.is_empty() {
        return out;
    }
    let http = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            out.push(Problem {
                severity: Severity::Warning,
                key: "upstreams".into(),
                message: format!("cannot build an HTTP client to check discovery: {e}"),
            });
            return out;
        }
    };
    for (i, upstream) in config.upstreams.iter().enumerate() {
        let key = format!("upstreams[{i}].issuer");
        let url = format!(
            "{}/.well-known/openid-configuration",
            upstream.issuer.trim_end_matches('/')
        );
        let mut push = |severity, message: String| {
            out.push(Problem {
                severity,
                key: key.clone(),
                message,
            })
        };
        let response = match http.get(&url).send().await {
            Ok(r) => r,
            Err(e) => {
                push(
                    Severity::Warning,
                    format!(
                        "cannot fetch {url} to check it: {}",
                        crate::web::cause_chain(&e)
                    ),
                );
                continue;
            }
        };
        let status = response.status();
        if !status.is_success() {
            push(
                Severity::Error,
                format!(
                    "{url} answered {status}: is `{}` an OpenID Connect issuer?",
                    upstream.issuer
                ),
            );
            continue;
        }
        let document: serde_json::Value = match response.json().await {
            Ok(d) => d,
            Err(e) => {
                push(
                    Severity::Error,
                    format!(
                        "{url} is not a JSON discovery document ({})",
                        crate::web::cause_chain(&e)
                    ),
                );
                continue;
            }
        };
        match document.get("issuer").and_then(|v| v.as_str()) {
            Some(stated) if stated == upstream.issuer => {}
            Some(stated) => push(
                Severity::Error,
                format!(
                    "the discovery document at {url} states the issuer `{stated}`, not `{}`: set issuer to exactly `{stated}` (sign-in compares them character for character)",
                    upstream.issuer
                ),
            ),
            None => push(Severity::Error, format!("the discovery document at {url} has no issuer")),
        }
        let missing: Vec<&str> = ["authorization_endpoint", "token_endpoint", "jwks_uri"]
            .into_iter()
            .filter(|field| document.get(*field).and_then(|v| v.as_str()).is_none())
            .collect();
        if !missing.is_empty() {
            push(
                Severity::Error,
                format!(
                    "the discovery document at {url} lacks {}: sign-in through it cannot work",
                    missing.join(", ")
                ),
            );
        }
    }
    out
}

/// `[lucca.defaults]` ids that Lucca does not know (once Lucca answered the ping): every
/// account JIT creates would be refused by Lucca. The department, the principal role and the
/// legal entity are read from Lucca; a legal entity that is not among the active ones is looked
/// up among the archived ones (a second request only then) to say so. The culture has no list
/// route in Lucca's API: `Config::validate` checks it against the LCIDs, without the network.
/// A list Lucca does not serve here (404 on an older tenant, 403 for a key without the right)
/// leaves its id unchecked, with a warning saying why.
async fn check_lucca_defaults(config: &Config, problems: &[Problem]) -> Vec<Problem> {
    let defaults = &config.lucca.defaults;
    let lucca_broken = lucca_unusable(problems);
    let nothing_to_read = defaults.department_id.is_none()
        && defaults.role_principal_id.is_none()
        && defaults.legal_entity_id.is_none();
    if lucca_broken || nothing_to_read {
        return Vec::new();
    }
    let Ok(Some(client)) = LuccaClient::from_config(&config.lucca) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // `archived`: the ones Lucca keeps but refuses to new accounts (empty when not read).
    let mut unknown = |key: &str,
                       what: &str,
                       id: i64,
                       known: Result<Vec<(i64, String)>, LuccaError>,
                       archived: &[(i64, String)]| {
        let listed = |known: &[(i64, String)]| {
            known
                .iter()
                .map(|(k, name)| format!("{k} {name}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match known {
            Ok(known) if !known.iter().any(|(k, _)| *k == id) => out.push(Problem {
                severity: Severity::Error,
                key: key.into(),
                message: match archived.iter().find(|(k, _)| *k == id) {
                    Some((_, name)) => format!(
                        "Lucca's {what} {id} {name} is archived (Lucca's active ones: {}): accounts created with it would be refused",
                        listed(&known)
                    ),
                    None => format!(
                        "Lucca has no {what} with id {id} (Lucca's: {}): accounts created with it would be refused",
                        listed(&known)
                    ),
                },
            }),
            Ok(_) => {}
            Err(e) => out.push(Problem {
                severity: Severity::Warning,
                key: key.into(),
                message: match e {
                    LuccaError::NotFound { what: route } => format!(
                        "this id is not checked: Lucca answered 404 on {route} (a tenant that does not serve its {what}s there yet)"
                    ),
                    LuccaError::Forbidden { .. } => format!(
                        "this id is not checked: the API key may not read Lucca's {what}s (403); give its role that right to have it checked"
                    ),
                    e => format!("this id is not checked: cannot read Lucca's {what}s: {e}"),
                },
            }),
        }
    };
    let pairs = |list: &[crate::lucca::LegalUnit]| -> Vec<(i64, String)> {
        list.iter().map(|l| (l.id, l.name.clone())).collect()
    };
    if let Some(id) = defaults.department_id {
        let known = client
            .departments()
            .await
            .map(|d| d.iter().map(|d| (d.id, d.name.clone())).collect());
        unknown("lucca.defaults.department_id", "department", id, known, &[]);
    }
    if let Some(id) = defaults.role_principal_id {
        let known = client
            .roles()
            .await
            .map(|r| r.into_iter().map(|r| (r.id, r.name)).collect());
        unknown("lucca.defaults.role_principal_id", "role", id, known, &[]);
    }
    if let Some(id) = defaults.legal_entity_id {
        let known = client.legal_units().await.map(|l| pairs(&l));
        let archived = match &known {
            // Unknown either way if the archived ones cannot be read: only the wording differs.
            Ok(active) if !active.iter().any(|(k, _)| *k == id) => client
                .archived_legal_units()
                .await
                .map(|l| pairs(&l))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        unknown(
            "lucca.defaults.legal_entity_id",
            "legal unit",
            id,
            known,
            &archived,
        );
    }
    out
}

/// Whether an error already found keeps `check` from asking Lucca anything: one on a `lucca.*`
/// key, except the `[lucca.defaults]` ones, which only concern the accounts Passerelle creates
/// (a wrong culture must not hide that the key is refused or a department unknown).
fn lucca_unusable(problems: &[Problem]) -> bool {
    problems.iter().any(|p| {
        p.severity == Severity::Error
            && p.key.starts_with("lucca.")
            && !p.key.starts_with("lucca.defaults.")
    })
}

/// One cheap authenticated request to Lucca, when `[lucca] base_url` is set and nothing is
/// already wrong with the `lucca.*` keys: proves the URL, the key and its right to read users.
async fn check_lucca(config: &Config, problems: &[Problem]) -> Option<Problem> {
    if lucca_unusable(problems) {
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

/// `[[role_mapping]] lucca_role` names that no single Lucca role has (read from Lucca's roles
/// API once Lucca answered the ping).
async fn check_lucca_roles(config: &Config, problems: &[Problem]) -> Vec<Problem> {
    let named = config.role_mapping.iter().any(|r| r.lucca_role.is_some());
    let lucca_broken = lucca_unusable(problems);
    if !named || lucca_broken {
        return Vec::new();
    }
    let Ok(Some(client)) = LuccaClient::from_config(&config.lucca) else {
        return Vec::new();
    };
    let roles = match client.roles().await {
        Ok(roles) => roles,
        Err(e) => {
            return vec![Problem {
                severity: Severity::Warning,
                key: "role_mapping".into(),
                message: format!("cannot read Lucca's roles to resolve lucca_role names: {e}"),
            }]
        }
    };
    let resolved = crate::provisioning::roles::resolve(&config.role_mapping, &roles);
    config
        .role_mapping
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let name = row.lucca_role.as_ref().filter(|_| row.lucca_role_id.is_none())?;
            resolved.unresolved.contains(name).then(|| Problem {
                severity: Severity::Error,
                key: format!("role_mapping[{i}].lucca_role"),
                message: format!(
                    "no single Lucca role is named `{name}` (Lucca's roles: {}); use lucca_role_id or the exact name",
                    roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })
        })
        .collect()
}

/// What is wrong with a directory Passerelle writes to, without creating or writing anything:
/// it must be a writable directory, or creatable; and private to this user.
fn directory_problems(dir: &Path, holds: &str) -> Vec<(Severity, String)> {
    let mut problems = Vec::new();
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => problems.push((
            Severity::Error,
            format!("{} is not a directory", dir.display()),
        )),
        Ok(meta) => {
            if !writable(dir) {
                problems.push((
                    Severity::Error,
                    format!("{} is not writable by this user", dir.display()),
                ));
            }
            if let Some(mode) = open_mode(&meta) {
                problems.push((
                    Severity::Warning,
                    format!(
                        "{} is open to other users (mode {mode:o}) and holds {holds}: chmod 700 {}",
                        dir.display(),
                        dir.display()
                    ),
                ));
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            // Created on first start: the nearest existing parent must let us.
            let parent = dir
                .ancestors()
                .skip(1)
                .map(|a| {
                    if a.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        a
                    }
                })
                .find(|a| a.exists());
            match parent {
                Some(p) if !p.is_dir() => problems.push((
                    Severity::Error,
                    format!(
                        "{} cannot be created: {} is not a directory",
                        dir.display(),
                        p.display()
                    ),
                )),
                Some(p) if !writable(p) => problems.push((
                    Severity::Error,
                    format!(
                        "{} cannot be created: {} is not writable by this user",
                        dir.display(),
                        p.display()
                    ),
                )),
                _ => {}
            }
        }
        Err(e) => problems.push((
            Severity::Error,
            format!("cannot read {}: {e}", dir.display()),
        )),
    }
    problems
}

/// Private key files in `keys_dir` that other users can read: `(path, mode)`.
fn open_private_keys(keys_dir: &Path) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = std::fs::read_dir(keys_dir) else {
        return Vec::new();
    };
    let mut open: Vec<(PathBuf, u32)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".key.pem"))
        .filter_map(|e| Some((e.path(), open_mode(&e.metadata().ok()?)?)))
        .collect();
    open.sort();
    open
}

fn open_key_message(path: &Path, mode: u32) -> String {
    format!(
        "{} is a private key open to other users (mode {mode:o}): chmod 600 {}",
        path.display(),
        path.display()
    )
}

/// The permission bits when group or others have any access.
fn open_mode(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Whether this user may create entries in `dir` (asked of the kernel: nothing is written).
fn writable(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call; access(2)
        // only reads it.
        unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_directory_is_not_created_and_only_has_to_be_creatable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("b");
        assert!(directory_problems(&dir, "x").is_empty());
        assert!(!tmp.path().join("a").exists(), "check creates nothing");
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let under_file = directory_problems(&file.join("keys"), "x");
        assert_eq!(under_file[0].0, Severity::Error);
        assert!(
            under_file[0].1.contains("is not a directory"),
            "{under_file:?}"
        );
        assert_eq!(directory_problems(&file, "x")[0].0, Severity::Error);
    }

    #[test]
    fn open_directories_and_keys_are_named_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        set_mode(&keys, 0o755);
        let found = directory_problems(&keys, "private keys");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Severity::Warning);
        assert_eq!(
            found[0].1,
            format!(
                "{} is open to other users (mode 755) and holds private keys: chmod 700 {}",
                keys.display(),
                keys.display()
            )
        );
        set_mode(&keys, 0o700);
        assert!(directory_problems(&keys, "private keys").is_empty());
        let key = keys.join("k1.key.pem");
        std::fs::write(&key, b"-----").unwrap();
        std::fs::write(keys.join("k1.crt.pem"), b"-----").unwrap();
        set_mode(&key, 0o640);
        set_mode(&keys.join("k1.crt.pem"), 0o644);
        assert_eq!(open_private_keys(&keys), [(key.clone(), 0o640)]);
        set_mode(&key, 0o600);
        assert!(open_private_keys(&keys).is_empty());
    }
}
