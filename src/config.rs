//! Typed configuration: the TOML file, `PASSERELLE_*` environment overrides, secrets read from
//! `*_file` keys, defaults, and validation whose every message names the offending key.
//!
//! `examples/passerelle.toml` documents every key; keep the two in step.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

mod hardening;
pub mod secrets;
pub mod store;

pub use store::StoreSettings;

/// A secret value: never printed by `Debug`, so it cannot leak through logs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An IP network written as a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address
/// (`10.0.0.5`, a /32 or /128). Host bits are cleared: `10.1.2.3/8` means `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub ipnet::IpNet);

impl Network {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let net = match s.parse::<ipnet::IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match s.parse::<std::net::IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "`{s}` is not an IP address or CIDR network (e.g. \"10.0.0.5\", \"10.0.0.0/8\", \"2001:db8::/32\")"
                    ))
                }
            },
        };
        // Client addresses are compared in their canonical form (an IPv4-mapped IPv6 address
        // is the IPv4 address), so a mapped network would never match anything.
        if let ipnet::IpNet::V6(v6) = net {
            if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 {
                return Err(format!(
                    "`{s}` is an IPv4-mapped IPv6 network: write it as IPv4 (e.g. \"{}/{}\")",
                    v6.addr()
                        .to_ipv4_mapped()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    v6.prefix_len() - 96
                ));
            }
        }
        Ok(Network(net))
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub keys: KeysConfig,
    pub login: LoginConfig,
    pub oidc: OidcConfig,
    pub saml: SamlConfig,
    pub lucca: LuccaConfig,
    pub directory: DirectoryConfig,
    pub role_mapping: Vec<RoleMappingRow>,
    pub claims: ClaimsConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub migrations: MigrationsConfig,
    pub smtp: SmtpConfig,
    pub audit: AuditConfig,
    pub store: StoreSettings,
}

/// `[audit]`: how long the audit log keeps its rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Rows older than this are deleted, once a day; `"0s"` keeps them forever.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention: Duration::from_secs(400 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub keys_dir: PathBuf,
    /// Where `login.html` and friends are read from at run time; built-in copies are used for
    /// any file that is not there.
    pub templates_dir: PathBuf,
    pub log_format: LogFormat,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR networks). The
    /// client is the rightmost hop that is not one of them; empty = the peer address.
    pub trusted_proxies: Vec<Network>,
    /// Serve `/metrics` only on this separate address (for a private interface, no auth there);
    /// unset = `/metrics` on the main listener behind the admin bearer token.
    pub metrics_listen: Option<String>,
    /// The old, unsafe switch (it believed the leftmost, client-chosen hop). Still read so that
    /// `check` and `serve` can explain its replacement instead of a bare "unknown field".
    #[serde(rename = "trust_forwarded_for")]
    pub legacy_trust_forwarded_for: Option<serde::de::IgnoredAny>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: "data".into(),
            keys_dir: "keys".into(),
            templates_dir: "templates".into(),
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            legacy_trust_forwarded_for: None,
        }
    }
}

impl ServerConfig {
    /// `public_url` without a trailing slash, ready to have paths appended.
    pub fn base_url(&self) -> String {
        self.public_url.trim_end_matches('/').to_string()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `/admin/*`. Unset (and no `token_file`/`token_sha256`) disables the admin API.
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    /// Hex SHA-256 of the token, so the token itself need not be stored anywhere.
    pub token_sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// How long a key staged by `passerelle keys rotate` is published before it starts signing,
    /// so relying parties (and Lucca's metadata refresh) pick it up first.
    #[serde(with = "humantime_serde")]
    pub rotation_delay: Duration,
    /// How long a superseded key stays published after it stopped signing: at least the
    /// lifetime of anything it signed.
    #[serde(with = "humantime_serde")]
    pub retire_after: Duration,
    /// Validity of the self-signed certificates generated for new keys.
    pub certificate_validity_days: u32,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            rotation_delay: Duration::from_secs(48 * 3600),
            retire_after: Duration::from_secs(24 * 3600),
            certificate_validity_days: 3650,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// A sign-in session ends after this long without use.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// ... and in any case this long after the person authenticated.
    #[serde(with = "humantime_serde")]
    pub session_max_age: Duration,
    /// Failed sign-ins allowed per account within `failure_window` before it is throttled.
    pub max_failures_per_account: u32,
    /// Failed sign-ins allowed per client IP within `failure_window`.
    pub max_failures_per_ip: u32,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// How long a pending sign-in (an authorization or SAML request waiting for the person to
    /// authenticate) stays usable.
    #[serde(with = "humantime_serde")]
    pub request_ttl: Duration,
    /// Name of the session cookie (change it when several instances share a host name).
    pub session_cookie: String,
    /// Sign-in (and the token endpoint) only for clients in these networks; unset = everyone.
    pub allowed_networks: Option<Vec<Network>>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            session_cookie: "passerelle_session".into(),
            session_idle_timeout: Duration::from_secs(8 * 3600),
            session_max_age: Duration::from_secs(12 * 3600),
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            failure_window: Duration::from_secs(15 * 60),
            request_ttl: Duration::from_secs(30 * 60),
            allowed_networks: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub id_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// A rotated refresh token presented again within this window (a concurrent retry from a
    /// mobile app or a second tab) gets the same answer instead of revoking the family.
    #[serde(with = "humantime_serde")]
    pub refresh_grace: Duration,
    pub clients: Vec<ClientConfig>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_ttl: Duration::from_secs(60),
            id_token_ttl: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
            clients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshPolicy {
    /// Issue a refresh token only when `offline_access` is granted.
    #[default]
    OfflineAccess,
    /// Always issue one (the mobile apps).
    Always,
    Never,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub client_id: String,
    pub name: Option<String>,
    /// Omitted (with no `client_secret_file`) => public client: PKCE S256 is required.
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Require PKCE from this confidential client too (always required for public clients).
    pub require_pkce: bool,
    pub refresh_tokens: RefreshPolicy,
    /// Scopes this client may be granted; empty = every supported scope.
    pub allowed_scopes: Vec<String>,
    /// Name of the claim that carries the mapped roles (default `groups`).
    pub groups_claim: Option<String>,
    /// Release only these claims (besides the protocol ones: sub, iss, aud…); empty = every
    /// claim of the granted scopes. Lucca gets what it needs and nothing more.
    pub release_claims: Vec<String>,
    /// Let this client call the token endpoint from outside `[login] allowed_networks` (a web
    /// application whose servers redeem the code; the person's network was checked at sign-in).
    pub token_from_any_network: bool,
}

impl ClientConfig {
    pub fn is_public(&self) -> bool {
        self.client_secret.as_ref().is_none_or(|s| s.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// Advertise `WantAuthnRequestsSigned` and refuse unsigned AuthnRequests by default.
    pub want_authn_requests_signed: bool,
    /// Sign the published metadata document.
    pub sign_metadata: bool,
    #[serde(with = "humantime_serde")]
    pub metadata_valid_for: Duration,
    #[serde(with = "humantime_serde")]
    pub metadata_cache_duration: Duration,
    #[serde(with = "humantime_serde")]
    pub assertion_ttl: Duration,
    /// Allowed difference between our clock and an SP's IssueInstant.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// How often SP metadata given by `metadata_url` is fetched again.
    #[serde(with = "humantime_serde")]
    pub metadata_refresh: Duration,
    pub service_providers: Vec<ServiceProviderConfig>,
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            want_authn_requests_signed: true,
            sign_metadata: false,
            metadata_valid_for: Duration::from_secs(7 * 24 * 3600),
            metadata_cache_duration: Duration::from_secs(24 * 3600),
            assertion_ttl: Duration::from_secs(300),
            clock_skew: Duration::from_secs(180),
            metadata_refresh: Duration::from_secs(6 * 3600),
            service_providers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceProviderConfig {
    pub name: Option<String>,
    pub metadata_file: Option<PathBuf>,
    pub metadata_url: Option<String>,
    pub entity_id: Option<String>,
    pub acs_url: Option<String>,
    /// PEM file (or inline PEM) of the SP's signing certificate, when not given by metadata.
    pub certificate: Option<String>,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub encrypt_assertion: bool,
    /// Override `saml.want_authn_requests_signed` for this SP.
    pub require_signed_requests: Option<bool>,
    /// Accept this SP's single-logout messages unsigned (default false: they must be signed
    /// with its registered certificate, whatever `require_signed_requests` says).
    pub allow_unsigned_logout: bool,
    /// `email` (default), `persistent` or `unspecified`.
    pub name_id_format: Option<String>,
    /// Override `[lucca] match_on` for this SP: `email` or `login`.
    pub identifier: Option<String>,
    /// `NameFormat` of the released attributes: `unspecified` (default), `uri` or `basic`.
    pub attribute_name_format: Option<String>,
    pub slo_url: Option<String>,
}

impl Default for ServiceProviderConfig {
    fn default() -> Self {
        ServiceProviderConfig {
            name: None,
            metadata_file: None,
            metadata_url: None,
            entity_id: None,
            acs_url: None,
            certificate: None,
            sign_response: true,
            sign_assertion: true,
            encrypt_assertion: false,
            require_signed_requests: None,
            allow_unsigned_logout: false,
            name_id_format: None,
            identifier: None,
            attribute_name_format: None,
            slo_url: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOn {
    #[default]
    Email,
    Login,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JitMode {
    #[default]
    Off,
    UpdateOnly,
    CreateAndUpdate,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LuccaConfig {
    /// Tenant root, e.g. `https://acme.ilucca.net`. Unset: no Lucca API calls (JIT off).
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<PathBuf>,
    pub match_on: MatchOn,
    pub jit: JitMode,
    pub requests_per_minute: u32,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub defaults: LuccaDefaults,
    /// The attributes Passerelle keeps up to date in Lucca at sign-in; the others belong to HR.
    pub owned_attributes: Vec<OwnedAttribute>,
    /// Whom a refused person should contact, as it reads in a sentence ("your HR team",
    /// "hr@acme.example").
    pub support_contact: String,
    /// How long a decision that a person is active stays good enough to let them in while
    /// Lucca cannot be asked.
    #[serde(with = "humantime_serde")]
    pub decision_ttl: Duration,
}

/// An attribute of a Lucca account that Passerelle may overwrite from the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnedAttribute {
    FirstName,
    LastName,
    Department,
    Manager,
    EmployeeNumber,
    JobTitle,
}

impl OwnedAttribute {
    pub const ALL: [OwnedAttribute; 6] = [
        OwnedAttribute::FirstName,
        OwnedAttribute::LastName,
        OwnedAttribute::Department,
        OwnedAttribute::Manager,
        OwnedAttribute::EmployeeNumber,
        OwnedAttribute::JobTitle,
    ];

    /// The name used in the configuration, the audit log and the preview.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedAttribute::FirstName => "first_name",
            OwnedAttribute::LastName => "last_name",
            OwnedAttribute::Department => "department",
            OwnedAttribute::Manager => "manager",
            OwnedAttribute::EmployeeNumber => "employee_number",
            OwnedAttribute::JobTitle => "job_title",
        }
    }
}

/// Used when `lucca.support_contact` is not set.
pub const DEFAULT_SUPPORT_CONTACT: &str = "your HR or IT team";

impl Default for LuccaConfig {
    fn default() -> Self {
        LuccaConfig {
            base_url: None,
            api_key: None,
            api_key_file: None,
            match_on: MatchOn::Email,
            jit: JitMode::Off,
            requests_per_minute: 50,
            request_timeout: Duration::from_secs(4),
            defaults: LuccaDefaults::default(),
            owned_attributes: OwnedAttribute::ALL.to_vec(),
            support_contact: DEFAULT_SUPPORT_CONTACT.into(),
            decision_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LuccaDefaults {
    pub legal_entity_id: Option<i64>,
    pub role_principal_id: Option<i64>,
    pub culture_id: Option<i64>,
    pub department_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    pub users: Vec<DirectoryUser>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryUser {
    /// Stable subject identifier; defaults to the lower-cased email.
    pub subject: Option<String>,
    pub email: String,
    pub login: Option<String>,
    pub password: Option<Secret>,
    pub password_hash: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub manager_email: Option<String>,
    pub job_title: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMappingRow {
    pub group: String,
    pub role: String,
    #[serde(default)]
    pub module: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedGroups {
    /// Groups with no row in the table are not sent.
    #[default]
    Drop,
    /// Groups with no row are sent as they are, after the mapped roles.
    PassThrough,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    pub unmapped_groups: UnmappedGroups,
    /// Roles everyone who signs in gets, before the mapped ones.
    pub default_roles: Vec<String>,
    /// Most roles sent in one token or assertion; beyond it the list is cut and the cut reported.
    pub max_roles: usize,
    /// Also send the roles per Lucca module under this claim/attribute name (e.g. `lucca_roles`
    /// → `{"figgo": ["validateur_n1"]}`); unset = not sent.
    pub module_roles_claim: Option<String>,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        ClaimsConfig {
            unmapped_groups: UnmappedGroups::Drop,
            default_roles: Vec::new(),
            max_roles: 100,
            module_roles_claim: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Vec<String>,
    pub email_claim: Option<String>,
    pub given_name_claim: Option<String>,
    pub family_name_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub department_claim: Option<String>,
    pub manager_email_claim: Option<String>,
    pub employee_number_claim: Option<String>,
    pub allowed_email_domains: Vec<String>,
    /// Refuse people whose `email_verified` is not true (default true; Entra ID sends no such
    /// claim, so set it to false there and restrict `allowed_email_domains` instead).
    pub require_email_verified: Option<bool>,
    /// Also read claims from the upstream's userinfo endpoint (for IdPs that keep the ID token thin).
    pub use_userinfo: bool,
    /// Groups assumed when the upstream reports a group overage (Entra's `_claim_names` /
    /// `hasgroups` instead of `groups`): empty = no groups, e.g. ["corp-employees"] for a default role.
    pub groups_overage_fallback: Vec<String>,
}

/// `[migrations]`: batch SSO migrations (`POST /admin/migrations`, `passerelle migrate`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationsConfig {
    /// Largest upload accepted, in bytes (5 MiB: about 50,000 people with every column).
    pub max_upload_bytes: usize,
    /// Most people in one file.
    pub max_rows: usize,
    /// Email each migrated person (through `[smtp]`) unless the request says `notify=false`.
    pub notify_people: bool,
}

impl Default for MigrationsConfig {
    fn default() -> Self {
        MigrationsConfig {
            max_upload_bytes: 5 * 1024 * 1024,
            max_rows: 50_000,
            notify_people: false,
        }
    }
}

/// `[smtp]`: the relay that sends the migration emails. Unset `host`: no email is sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: Option<String>,
    pub port: u16,
    /// The sender, e.g. `"IT <it@acme.test>"`.
    pub from: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Upgrade the connection with STARTTLS (required when true); false speaks plain SMTP,
    /// for a relay on the same host or network only.
    pub starttls: bool,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 587,
            from: None,
            username: None,
            password: None,
            password_file: None,
            starttls: true,
            timeout: Duration::from_secs(10),
        }
    }
}

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
            &mut self.smtp.password_file,
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
            "smtp.password_file".into(),
            &mut self.smtp.password,
            &self.smtp.password_file,
        )?;
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

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.server
            .listen
            .parse()
            .map_err(|e| format!("`{}` is not an address:port ({e})", self.server.listen))
    }

    /// Every problem in the configuration that can be found without the network.
    pub fn validate(&self) -> Vec<Problem> {
        let mut v = Validator::default();
        self.validate_server(&mut v);
        self.validate_oidc(&mut v);
        self.validate_directory(&mut v);
        self.validate_role_mapping(&mut v);
        self.validate_lucca(&mut v);
        self.validate_saml(&mut v);
        self.validate_upstreams(&mut v);
        self.validate_migrations(&mut v);
        self.validate_secrets(&mut v);
        self.validate_audit(&mut v);
        self.validate_store(&mut v);
        self.validate_upstream_domains(&mut v);
        v.problems
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
                if url.scheme() == "http" && !is_loopback_host(&url) {
                    v.warning(
                        "server.public_url",
                        "is plain http on a non-loopback host: browsers will send session cookies in clear; use https",
                    );
                }
            }
            Ok(_) => v.error("server.public_url", "must be an http(s) URL"),
            Err(e) => v.error("server.public_url", format!("not a URL: {e}")),
        }
        if self.server.legacy_trust_forwarded_for.is_some() {
            v.error(
                "server.trust_forwarded_for",
                "replaced by server.trusted_proxies: list your reverse proxies' addresses (e.g. trusted_proxies = [\"10.0.0.5\"] or [\"10.0.0.0/8\"]) and remove trust_forwarded_for. X-Forwarded-For is then read from the right and only from those proxies; the old switch believed the leftmost hop, which the client chooses",
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
            if c.client_secret.is_some() && c.client_secret_file.is_some() {
                v.error(
                    format!("{key}.client_secret"),
                    "give either client_secret or client_secret_file, not both",
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
                if !crate::oidc::SUPPORTED_SCOPES.contains(&scope.as_str()) {
                    v.error(
                        format!("{key}.allowed_scopes[{j}]"),
                        format!(
                            "unknown scope `{scope}` (supported: {})",
                            crate::oidc::SUPPORTED_SCOPES.join(", ")
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
                    if let Err(msg) = crate::login::check_password_hash(hash) {
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
        if l.request_timeout >= Duration::from_secs(5) || l.request_timeout.is_zero() {
            v.error(
                "lucca.request_timeout",
                "must be under 5s: Lucca aborts longer requests",
            );
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
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, key.into(), message.into());
    }
    fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let err = Config::from_toml(
            "[[oidc.clients]]\nclient_id = \"x\"\nredirect_uri = []\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("oidc.clients[0].redirect_uri"), "{text}");
        assert!(text.contains("unknown field"), "{text}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let err = Config::from_toml(
            "[lucca]\nrequests_per_minute = \"lots\"\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("lucca.requests_per_minute"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:1\"\n[admin]\ntoken = \"from-file-xxxxxxxxxxxx\"\n",
        )
        .unwrap();
        let config = Config::load_with_env(Some(&path), |name| match name {
            "PASSERELLE_LISTEN" => Some("127.0.0.1:9999".into()),
            "PASSERELLE_ADMIN_TOKEN" => Some("from-env-yyyyyyyyyyyyy".into()),
            "PASSERELLE_DATA_DIR" => Some("/var/lib/p".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9999");
        assert_eq!(
            config.admin.token.unwrap().expose(),
            "from-env-yyyyyyyyyyyyy"
        );
        assert_eq!(config.server.data_dir, PathBuf::from("/var/lib/p"));
        assert_eq!(config.server.keys_dir, dir.path().join("keys"));
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s3cr3t-value-0123456789\n").unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[[oidc.clients]]\nclient_id = \"lucca\"\nclient_secret_file = \"secret.txt\"\nredirect_uris = [\"https://a.example/cb\"]\n",
        )
        .unwrap();
        let config = Config::load_with_env(Some(&path), |_| None).unwrap();
        let secret = config.oidc.clients[0].client_secret.clone().unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value-0123456789");
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }

    #[test]
    fn validation_names_each_bad_key() {
        let config = Config::from_toml(
            r#"
[server]
listen = "nowhere"
[[oidc.clients]]
client_id = "lucca"
client_secret = "short"
redirect_uris = ["http://evil.example/cb", "https://ok.example/cb#frag"]
[[oidc.clients]]
client_id = "lucca"
redirect_uris = ["com.example.app:/callback"]
[[directory.users]]
email = "not-an-email"
[[role_mapping]]
group = "g"
role = "r"
[[role_mapping]]
group = "g"
role = "r"
[lucca]
jit = "create_and_update"
"#,
            Path::new("p.toml"),
        )
        .unwrap();
        let keys: Vec<String> = config
            .validate()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.key)
            .collect();
        for expected in [
            "server.listen",
            "oidc.clients[0].client_secret",
            "oidc.clients[0].redirect_uris[0]",
            "oidc.clients[0].redirect_uris[1]",
            "oidc.clients[1].client_id",
            "directory.users[0].email",
            "directory.users[0].password_hash",
            "role_mapping[1]",
            "lucca.jit",
        ] {
            assert!(
                keys.iter().any(|k| k == expected),
                "missing {expected} in {keys:?}"
            );
        }
        assert!(
            !keys.iter().any(|k| k == "oidc.clients[1].redirect_uris[0]"),
            "{keys:?}"
        );
    }

    #[test]
    fn lucca_jit_keys_have_defaults_and_parse() {
        let defaults = LuccaConfig::default();
        assert_eq!(defaults.owned_attributes, OwnedAttribute::ALL);
        assert_eq!(defaults.support_contact, "your HR or IT team");
        assert_eq!(defaults.decision_ttl, Duration::from_secs(86400));
        let config = Config::from_toml(
            "[lucca]\nowned_attributes = [\"job_title\", \"manager\", \"job_title\"]\nsupport_contact = \" \"\ndecision_ttl = \"2h\"\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(config.lucca.decision_ttl, Duration::from_secs(7200));
        let problems = config.validate();
        let find = |key: &str| problems.iter().find(|p| p.key == key).map(|p| p.severity);
        assert_eq!(find("lucca.support_contact"), Some(Severity::Error));
        assert_eq!(find("lucca.owned_attributes[2]"), Some(Severity::Warning));
        assert!(Config::from_toml(
            "[lucca]\nowned_attributes = [\"mail\"]\n",
            Path::new("p.toml")
        )
        .is_err());
    }

    #[test]
    fn network_lists_parse_addresses_and_cidrs_and_name_a_bad_entry() {
        let config = Config::from_toml(
            "[server]\ntrusted_proxies = [\"10.0.0.5\", \"10.1.2.3/8\", \"2001:db8::/32\", \"::1\"]\n[login]\nallowed_networks = [\"192.0.2.0/24\"]\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let shown: Vec<String> = config
            .server
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            shown,
            ["10.0.0.5/32", "10.0.0.0/8", "2001:db8::/32", "::1/128"]
        );
        assert!(config.login.allowed_networks.unwrap()[0].contains("192.0.2.77".parse().unwrap()));
        for bad in [
            "10.0.0/8",
            "localhost",
            "10.0.0.0/33",
            "::ffff:10.0.0.0/104",
            "",
        ] {
            let err = Config::from_toml(
                &format!("[server]\ntrusted_proxies = [\"10.0.0.1\", \"{bad}\"]\n"),
                Path::new("p.toml"),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("server.trusted_proxies[1]"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_old_forwarded_for_switch_is_refused_with_its_replacement() {
        for value in ["true", "false"] {
            let config = Config::from_toml(
                &format!("[server]\ntrust_forwarded_for = {value}\n"),
                Path::new("p.toml"),
            )
            .unwrap();
            let problem = config
                .validate()
                .into_iter()
                .find(|p| p.key == "server.trust_forwarded_for")
                .expect("refused");
            assert_eq!(problem.severity, Severity::Error);
            assert!(
                problem
                    .message
                    .contains("replaced by server.trusted_proxies"),
                "{problem}"
            );
        }
    }

    #[test]
    fn allowed_networks_and_metrics_listen_are_checked() {
        let config = Config::from_toml(
            "[server]\nlisten = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.1:8080\"\n[login]\nallowed_networks = []\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let problems = config.validate();
        let find = |key: &str| problems.iter().find(|p| p.key == key).map(|p| p.severity);
        assert_eq!(find("login.allowed_networks"), Some(Severity::Error));
        assert_eq!(find("server.metrics_listen"), Some(Severity::Error));

        let mut config = Config::from_toml(
            "[server]\nmetrics_listen = \"127.0.0.1:9100\"\n[login]\nallowed_networks = [\"10.0.0.0/8\"]\n[[oidc.clients]]\nclient_id = \"lucca\"\nclient_secret = \"0123456789abcdef0123\"\nredirect_uris = [\"https://a.example/cb\"]\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let warned = |c: &Config| {
            c.validate()
                .iter()
                .any(|p| p.key == "oidc.clients[0].token_from_any_network")
        };
        assert!(
            warned(&config),
            "a confidential client's servers call the token endpoint"
        );
        assert!(!config
            .validate()
            .iter()
            .any(|p| p.key == "server.metrics_listen"));
        config.oidc.clients[0].token_from_any_network = true;
        assert!(!warned(&config));
    }

    /// The example is a valid document whose only errors are the secrets it ships: whoever
    /// copies it must replace each one before `check` or `serve` accepts it.
    #[test]
    fn the_annotated_example_is_valid_but_for_its_placeholders() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/passerelle.toml");
        let config = Config::load_with_env(Some(&path), |_| None).expect("example parses");
        let mut errors: Vec<String> = config
            .validate()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.key)
            .collect();
        errors.sort();
        assert_eq!(
            errors,
            [
                "admin.token",
                "directory.users[0].password_hash",
                "directory.users[1].password_hash",
                "oidc.clients[0].client_secret",
            ]
        );
    }
}
