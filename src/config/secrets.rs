//! Secrets that must not run a server: values published in our own examples, placeholders that
//! were never replaced, and tokens too short to resist guessing. `passerelle check` and
//! `passerelle serve` share this one rule set (through [`Config::validate`]), so a copied
//! example file is refused by both, naming each key.
//!
//! The rules, in the order they are tried:
//! 1. **Shipped**: the value appears in a shipped example — a `key = "value"` line (commented
//!    out or not) of `examples/*.toml` or of a code block of the README, whose key is a secret
//!    key (see [`SECRET_KEYS`]). The list is read from those files at build time, so it cannot
//!    drift from what we publish; values earlier releases published stay on the list.
//! 2. **Placeholder**: text a person writes where a secret belongs — anything holding `…` or
//!    starting with `...`; `<…>` in angle brackets; an unexpanded template (`${VAR}`, `{{ x }}`,
//!    `$(cmd)`); a value that starts, once lower-cased and stripped of `-`, `_`, `.` and
//!    spaces, with one of [`PLACEHOLDER_PREFIXES`] (`change-me…`, `replace_me…`,
//!    `your-secret…`); whose first word is `todo`, `tbd`, `fixme` or a run of `x`; that is one
//!    of [`PLACEHOLDER_WORDS`] exactly (`secret`, `password`, `changeit`…); or that repeats one
//!    character three times or more (`***`, `00000000`). Prefixes are at least five letters long so that a
//!    generated value is refused by chance less than once in 30 million.
//! 3. **Weak** (only for secrets this configuration creates — the admin token and OIDC client
//!    secrets; secrets issued by someone else, like a Lucca API key, an upstream client secret or
//!    an SMTP password, have the format their issuer chose): shorter than 16 bytes (128 bits), or
//!    fewer than 8 distinct characters.
//!
//! Messages never repeat the value.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{Config, KeysConfig, Secret, Validator};

/// Keys whose values are secrets, wherever they appear in the configuration.
pub const SECRET_KEYS: [&str; 10] = [
    "token",
    "token_sha256",
    "client_secret",
    "api_key",
    "password",
    "password_hash",
    "webhook_secret",
    "encryption_key",
    "previous_encryption_keys",
    "secret",
];

/// The environment variables that carry secrets, as a README shell example would set them.
const SECRET_ENV: [&str; 2] = ["PASSERELLE_ADMIN_TOKEN", "PASSERELLE_LUCCA_API_KEY"];

/// Every file we publish that may show a secret value. A unit test fails when an
/// `examples/*.toml` is missing here.
pub const SHIPPED_DOCUMENTS: [(&str, &str); 2] = [
    (
        "examples/passerelle.toml",
        include_str!("../../examples/passerelle.toml"),
    ),
    ("README.md", include_str!("../../README.md")),
];

/// Values earlier releases published (in the example file and the demo banner): copies of them
/// live on in configurations written from those releases.
const FORMERLY_SHIPPED: [&str; 4] = [
    "change-me-to-a-long-random-admin-token",
    "change-me-lucca-client-secret",
    "demo-admin-token-change-me",
    "demo-client-secret-not-for-production",
];

/// Compared after lower-casing and removing `-`, `_`, `.` and spaces.
pub const PLACEHOLDER_PREFIXES: [&str; 17] = [
    "changeme",
    "changethis",
    "replaceme",
    "replacethis",
    "placeholder",
    "example",
    "notasecret",
    "notsecret",
    "yoursecret",
    "yourtoken",
    "yourpassword",
    "yourapikey",
    "yourkey",
    "insertyour",
    "pasteyour",
    "redacted",
    "dummy",
];

/// Whole values (compared like the prefixes) that are words, not secrets.
pub const PLACEHOLDER_WORDS: [&str; 24] = [
    "secret",
    "password",
    "passwd",
    "pass",
    "token",
    "apikey",
    "key",
    "admin",
    "test",
    "demo",
    "default",
    "clientsecret",
    "changeit",
    "letmein",
    "qwerty",
    "azerty",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "abc123",
    "none",
    "null",
    "empty",
];

/// The shortest secret this configuration creates that is accepted: 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;
const MIN_DISTINCT_CHARS: usize = 8;

pub const GENERATE_HINT: &str = "generate one with `openssl rand -base64 32`";

/// Why a value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Shipped,
    Placeholder,
    TooShort(usize),
    LowVariety(usize),
}

/// Values (for secret keys) that appear in the shipped documents.
pub fn shipped_values() -> &'static HashSet<String> {
    static VALUES: LazyLock<HashSet<String>> = LazyLock::new(|| {
        SHIPPED_DOCUMENTS
            .iter()
            .flat_map(|(name, text)| {
                if name.ends_with(".md") {
                    secret_values(&code_blocks(text))
                } else {
                    secret_values(text)
                }
            })
            .chain(FORMERLY_SHIPPED.iter().map(|v| v.to_string()))
            .collect()
    });
    &VALUES
}

/// The lines inside the fenced code blocks of a Markdown text.
fn code_blocks(markdown: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Each `key = "value"` line (commented out or not) whose key is a secret key, parsed by the TOML
/// parser itself so quoting and escapes read as the server would read them; plus
/// `PASSERELLE_…=value` shell assignments.
fn secret_values(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim_start().trim_start_matches('#').trim();
        if let Ok(table) = toml::from_str::<toml::Table>(line) {
            collect_secret_strings(&table, &mut found);
        }
        for word in line.split_whitespace() {
            if let Some((name, value)) = word.split_once('=') {
                if SECRET_ENV.contains(&name) {
                    found.push(value.trim_matches(['"', '\'']).to_string());
                }
            }
        }
    }
    found.retain(|v| !v.is_empty());
    found
}

/// String values under a secret key, also in dotted keys (`admin.token = "…"`).
fn collect_secret_strings(table: &toml::Table, found: &mut Vec<String>) {
    for (key, value) in table {
        match value {
            toml::Value::String(s) if SECRET_KEYS.contains(&key.as_str()) => found.push(s.clone()),
            toml::Value::Array(items) if SECRET_KEYS.contains(&key.as_str()) => {
                found.extend(items.iter().filter_map(|i| i.as_str()).map(str::to_string))
            }
            toml::Value::Table(inner) => collect_secret_strings(inner, found),
            _ => {}
        }
    }
}

/// Rule 2 of the module documentation.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.contains('…') || v.starts_with("...") {
        return true;
    }
    if (v.starts_with('<') && v.ends_with('>'))
        || v.starts_with("${")
        || v.starts_with("{{")
        || v.starts_with("$(")
    {
        return true;
    }
    let mut chars = v.chars();
    if let Some(first) = chars.next() {
        if v.chars().count() >= 3 && chars.all(|c| c == first) {
            return true;
        }
    }
    let folded: String = v
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    if PLACEHOLDER_PREFIXES.iter().any(|p| folded.starts_with(p))
        || PLACEHOLDER_WORDS.contains(&folded.as_str())
    {
        return true;
    }
    let first_word = v
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_lowercase();
    matches!(first_word.as_str(), "todo" | "tbd" | "fixme")
        || (first_word.len() >= 3 && first_word.chars().all(|c| c == 'x'))
}

/// Rules 1 and 2, then rule 3 when `generated_here`.
pub fn refusal(value: &str, generated_here: bool) -> Option<Refusal> {
    if shipped_values().contains(value) || shipped_values().contains(value.trim()) {
        return Some(Refusal::Shipped);
    }
    if is_placeholder(value) {
        return Some(Refusal::Placeholder);
    }
    if generated_here {
        if value.len() < MIN_SECRET_BYTES {
            return Some(Refusal::TooShort(value.len()));
        }
        let distinct = value.chars().collect::<HashSet<_>>().len();
        if distinct < MIN_DISTINCT_CHARS {
            return Some(Refusal::LowVariety(distinct));
        }
    }
    None
}

/// One secret of the configuration and how to talk about it.
struct Slot<'a> {
    /// The key to name: the `_file` key when the value came from a file.
    key: String,
    value: &'a str,
    from_file: bool,
    /// A secret this configuration creates (rule 3 applies) or one issued elsewhere.
    generated_here: bool,
    /// What to do instead, for a secret issued elsewhere.
    fix: &'static str,
}

fn slot<'a>(
    base: &str,
    secret: &'a Option<Secret>,
    file: &Option<PathBuf>,
    generated_here: bool,
    fix: &'static str,
) -> Option<Slot<'a>> {
    let value = secret.as_ref()?.expose();
    if value.is_empty() {
        return None;
    }
    Some(Slot {
        key: if file.is_some() {
            format!("{base}_file")
        } else {
            base.to_string()
        },
        value,
        from_file: file.is_some(),
        generated_here,
        fix,
    })
}

fn message(slot: &Slot<'_>, why: Refusal) -> String {
    let what = if slot.from_file {
        "the file holds a value that"
    } else {
        "this value"
    };
    let fix = if slot.generated_here {
        GENERATE_HINT
    } else {
        slot.fix
    };
    match why {
        Refusal::Shipped => format!("{what} is a placeholder from the shipped example; {fix}"),
        Refusal::Placeholder => format!("{what} is a placeholder, not a secret; {fix}"),
        Refusal::TooShort(n) => format!(
            "{what} is {n} bytes long; a secret needs at least {MIN_SECRET_BYTES} random bytes (128 bits): {fix}"
        ),
        Refusal::LowVariety(n) => {
            format!("{what} has only {n} distinct characters, so it was not generated at random; {fix}")
        }
    }
}

/// The length of a key-encryption key: AES-256.
pub const KEK_BYTES: usize = 32;

/// A `[keys]` key-encryption key as configured: the key that names it in messages (the `_file`
/// key when it came from a file) and its value. Never printed.
pub struct KekSlot<'a> {
    pub key: String,
    pub value: &'a Secret,
}

impl KeysConfig {
    /// The key-encryption keys, the one that encrypts first (`encryption_key`), then the former
    /// ones that still decrypt (`previous_encryption_keys`). Empty values are left out.
    pub fn kek_slots(&self) -> Vec<KekSlot<'_>> {
        let mut slots = Vec::new();
        if let Some(value) = self
            .encryption_key
            .as_ref()
            .filter(|v| !v.expose().is_empty())
        {
            slots.push(KekSlot {
                key: if self.encryption_key_file.is_some() {
                    "keys.encryption_key_file".into()
                } else {
                    "keys.encryption_key".into()
                },
                value,
            });
        }
        for (i, value) in self.previous_encryption_keys.iter().enumerate() {
            if value.expose().trim().is_empty() {
                continue;
            }
            slots.push(KekSlot {
                key: if self.previous_encryption_keys_file.is_some() {
                    format!("keys.previous_encryption_keys_file (line {})", i + 1)
                } else {
                    format!("keys.previous_encryption_keys[{i}]")
                },
                value,
            });
        }
        slots
    }

    /// Whether `encryption_key` (the key that seals new keys) is set.
    pub fn has_encryption_key(&self) -> bool {
        self.encryption_key
            .as_ref()
            .is_some_and(|v| !v.expose().trim().is_empty())
    }
}

/// A key-encryption key's bytes: standard base64 (as `openssl rand -base64 32` prints it) of
/// exactly 32 bytes. The message never repeats the value.
pub fn decode_kek(value: &Secret) -> Result<[u8; KEK_BYTES], String> {
    let bytes = STANDARD.decode(value.expose().trim()).map_err(|_| {
        format!("is not base64; it must be the base64 of {KEK_BYTES} random bytes: {GENERATE_HINT}")
    })?;
    <[u8; KEK_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "decodes to {} bytes, not {KEK_BYTES}; it must be the base64 of {KEK_BYTES} random \
             bytes: {GENERATE_HINT}",
            bytes.len()
        )
    })
}

impl Config {
    /// The key-encryption keys: required with PostgreSQL, each a real random 32-byte key.
    fn validate_encryption_keys(&self, v: &mut Validator) {
        let slots = self.keys.kek_slots();
        let shared = self.store.url().is_some();
        if shared && !self.keys.has_encryption_key() {
            v.error(
                "keys.encryption_key",
                format!(
                    "is required with [store] url (PostgreSQL): the private signing keys every \
                     node shares are kept in the database, encrypted under it (or set \
                     keys.encryption_key_file); {GENERATE_HINT}"
                ),
            );
        }
        if !shared && !slots.is_empty() {
            v.warning(
                slots[0].key.clone(),
                "is only used with [store] url (PostgreSQL); with the SQLite file the signing \
                 keys stay files in server.keys_dir",
            );
        }
        let mut seen = HashSet::new();
        for slot in &slots {
            let from_file = slot.key.contains("_file");
            let as_slot = Slot {
                key: slot.key.clone(),
                value: slot.value.expose(),
                from_file,
                generated_here: true,
                fix: "",
            };
            if let Some(why) = refusal(slot.value.expose(), true) {
                v.error(slot.key.clone(), message(&as_slot, why));
                continue;
            }
            match decode_kek(slot.value) {
                Err(m) => v.error(slot.key.clone(), m),
                Ok(bytes) => {
                    if !seen.insert(bytes) {
                        v.warning(
                            slot.key.clone(),
                            "repeats a key-encryption key listed before it",
                        );
                    }
                }
            }
        }
    }

    pub(super) fn validate_secrets(&self, v: &mut Validator) {
        self.validate_encryption_keys(v);
        let mut slots = Vec::new();
        slots.extend(slot(
            "admin.token",
            &self.admin.token,
            &self.admin.token_file,
            true,
            "",
        ));
        for (i, c) in self.oidc.clients.iter().enumerate() {
            slots.extend(slot(
                &format!("oidc.clients[{i}].client_secret"),
                &c.client_secret,
                &c.client_secret_file,
                true,
                "",
            ));
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            slots.extend(slot(
                &format!("upstreams[{i}].client_secret"),
                &u.client_secret,
                &u.client_secret_file,
                false,
                "use the client secret your identity provider issued for Passerelle",
            ));
        }
        slots.extend(slot(
            "lucca.api_key",
            &self.lucca.api_key,
            &self.lucca.api_key_file,
            false,
            "use an API key from Lucca (Settings > API keys)",
        ));
        slots.extend(slot(
            "lucca.webhook_secret",
            &self.lucca.webhook_secret,
            &self.lucca.webhook_secret_file,
            true,
            "",
        ));
        slots.extend(slot(
            "smtp.password",
            &self.smtp.password,
            &self.smtp.password_file,
            false,
            "use the relay account's password",
        ));
        for (i, u) in self.directory.users.iter().enumerate() {
            slots.extend(slot(
                &format!("directory.users[{i}].password"),
                &u.password,
                &None,
                false,
                "choose a real password, or a password_hash from `passerelle hash-password`",
            ));
        }
        for s in &slots {
            if let Some(why) = refusal(s.value, s.generated_here) {
                v.error(s.key.clone(), message(s, why));
            }
        }

        // Hashes: a shipped hash is a published password (or token) whoever copies it.
        for (i, u) in self.directory.users.iter().enumerate() {
            if u.password_hash
                .as_deref()
                .is_some_and(|h| shipped_values().contains(h.trim()))
            {
                v.error(
                    format!("directory.users[{i}].password_hash"),
                    "is a hash from the shipped example, of a password printed beside it; set this person's own with `passerelle hash-password`",
                );
            }
        }
        if let Some(hash) = self.admin.token_sha256.as_deref() {
            let hash = hash.trim().to_ascii_lowercase();
            if shipped_values()
                .iter()
                .any(|s| hex::encode(openssl::sha::sha256(s.as_bytes())) == hash)
            {
                v.error(
                    "admin.token_sha256",
                    format!("is the hash of a token from the shipped example; {GENERATE_HINT} and store its sha256"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use std::path::Path;

    #[test]
    fn the_shipped_example_values_are_collected() {
        let shipped = shipped_values();
        // What the example ships today (the lines that set admin.token and the client secret).
        let example = SHIPPED_DOCUMENTS[0].1;
        for line in example.lines().filter(|l| {
            l.starts_with("token = ")
                || l.starts_with("client_secret = ")
                || l.starts_with("password_hash = ")
        }) {
            let value: toml::Table = toml::from_str(line).unwrap();
            let value = value.values().next().unwrap().as_str().unwrap();
            assert!(shipped.contains(value), "{line}");
        }
        assert!(shipped.iter().all(|v| !v.is_empty()));
        assert!(
            secret_values("# api_key = \"k-123\"   # comment\nname = \"x\"\n")
                .contains(&"k-123".to_string())
        );
        assert_eq!(
            secret_values("PASSERELLE_ADMIN_TOKEN=abcd passerelle serve"),
            ["abcd"]
        );
        assert_eq!(
            code_blocks("a\n```toml\ntoken = \"t\"\n```\ntoken = \"u\"\n"),
            "token = \"t\"\n"
        );
    }

    #[test]
    fn every_example_toml_is_a_shipped_document() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if name.ends_with(".toml") {
                let path = format!("examples/{name}");
                assert!(
                    SHIPPED_DOCUMENTS.iter().any(|(p, _)| *p == path),
                    "add {path} to SHIPPED_DOCUMENTS so its secrets are refused"
                );
            }
        }
    }

    #[test]
    fn placeholders_are_recognised_and_random_values_are_not() {
        for p in [
            "change-me",
            "CHANGE_ME_to_a_long_random_value",
            "changeme123456789012",
            "Replace-Me-Now-0123456789",
            "<generate with openssl rand -base64 32>",
            "…",
            "...",
            "${ADMIN_TOKEN}",
            "{{ vault.token }}",
            "$(cat /run/secret)",
            "xxx",
            "XXXX-XXXX-XXXX-XXXX",
            "xxxxxxxxxxxxxxxxxxxxxxx",
            "secret",
            "Password",
            "pass-word",
            "TODO: set me",
            "fixme",
            "your-secret-here",
            "********",
            "0000000000000000",
            "example-token-0123456789",
            "dummy-value",
            "lucca-client-secret …",
        ] {
            assert!(is_placeholder(p), "{p:?} is a placeholder");
        }
        for real in [
            "Zq3t6w9z$C&F)J@NcRfUjXn2r5u8x/A?",
            "lucca-client-secret-0123456789",
            "admin-token-for-tests-0123456789",
            "xkcd-correct-horse-battery-staple",
            "2b7e151628aed2a6abf7158809cf4f3c",
            "secretariat-2025-Q3-9f8e7d",
            "s3cr3t-value-0123456789",
        ] {
            assert!(!is_placeholder(real), "{real:?} is not a placeholder");
        }
    }

    #[test]
    fn generated_values_pass_at_random() {
        // base64 and hex of random bytes, as `openssl rand` prints them: never refused.
        for _ in 0..2000 {
            let mut bytes = [0u8; 32];
            openssl::rand::rand_bytes(&mut bytes).unwrap();
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            assert_eq!(refusal(&b64, true), None, "{b64}");
            assert_eq!(refusal(&hex::encode(&bytes[..16]), true), None);
        }
    }

    #[test]
    fn weak_secrets_are_refused_only_where_we_create_them() {
        assert_eq!(refusal("short-token", true), Some(Refusal::TooShort(11)));
        assert_eq!(
            refusal("abababababababababab", true),
            Some(Refusal::LowVariety(2))
        );
        assert_eq!(refusal("short-api-key", false), None);
        assert_eq!(refusal("0123456789abcdef", true), None);
    }

    fn errors(toml: &str) -> Vec<(String, String)> {
        let config = Config::from_toml(toml, Path::new("p.toml")).unwrap();
        config
            .validate()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| (p.key, p.message))
            .collect()
    }

    #[test]
    fn every_secret_key_is_checked_and_named() {
        let found = errors(
            r#"
[admin]
token = "change-me-to-a-long-random-admin-token"
[[oidc.clients]]
client_id = "a"
client_secret = "secret"
redirect_uris = ["https://a.example/cb"]
[[oidc.clients]]
client_id = "b"
client_secret = "tooshort-but-ok"
redirect_uris = ["https://b.example/cb"]
[[upstreams]]
name = "corp"
issuer = "https://login.example.com"
client_id = "x"
client_secret = "<from your IdP>"
allowed_email_domains = ["acme.example"]
[lucca]
base_url = "https://acme.ilucca.net"
api_key = "…"
[smtp]
host = "smtp.acme.test"
from = "it@acme.test"
username = "u"
password = "changeme"
[[directory.users]]
email = "a@acme.test"
password = "password"
"#,
        );
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        for key in [
            "admin.token",
            "oidc.clients[0].client_secret",
            "oidc.clients[1].client_secret",
            "upstreams[0].client_secret",
            "lucca.api_key",
            "smtp.password",
            "directory.users[0].password",
        ] {
            assert_eq!(
                keys.iter().filter(|k| **k == key).count(),
                1,
                "{key} once in {found:?}"
            );
        }
        let (_, admin) = found.iter().find(|(k, _)| k == "admin.token").unwrap();
        assert_eq!(
            admin,
            "this value is a placeholder from the shipped example; generate one with `openssl rand -base64 32`"
        );
        let (_, short) = found
            .iter()
            .find(|(k, _)| k == "oidc.clients[1].client_secret")
            .unwrap();
        assert!(short.contains("15 bytes"), "{short}");
        for (_, m) in &found {
            assert!(
                !m.contains("change-me-to") && !m.contains("tooshort"),
                "{m}"
            );
        }
    }

    #[test]
    fn secrets_read_from_files_are_named_by_their_file_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "change-me\n").unwrap();
        std::fs::write(dir.path().join("k"), "${LUCCA_KEY}\n").unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[admin]\ntoken_file = \"t\"\n[lucca]\nbase_url = \"https://a.ilucca.net\"\napi_key_file = \"k\"\n",
        )
        .unwrap();
        let config = Config::load_with_env(Some(&path), |_| None).unwrap();
        let problems = config.validate();
        for key in ["admin.token_file", "lucca.api_key_file"] {
            let p = problems.iter().find(|p| p.key == key).expect(key);
            assert_eq!(p.severity, Severity::Error);
            assert!(p.message.starts_with("the file holds a value that"), "{p}");
        }
    }

    #[test]
    fn a_real_configuration_passes() {
        let found = errors(
            r#"
[admin]
token = "Xb0GgC8mJ1n0h8rR3p8yP6c9l1Q4w2e7V5t3u6i9o0A="
[[oidc.clients]]
client_id = "lucca"
client_secret = "9c1185a5c5e9fc54612808977ee8f548b2258d31"
redirect_uris = ["https://acme.ilucca.net/identity/oidc/callback"]
[[upstreams]]
name = "corp"
issuer = "https://login.example.com"
client_id = "x"
client_secret = "GOCSPX-1a2b3c4d5e6f7g8h9i0j"
allowed_email_domains = ["acme.example"]
[lucca]
base_url = "https://acme.ilucca.net"
api_key = "0f8fad5b-d9cb-469f-a165-70867728950e"
"#,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn shipped_hashes_are_refused() {
        let example = SHIPPED_DOCUMENTS[0].1;
        let hash = example
            .lines()
            .find_map(|l| l.strip_prefix("password_hash = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("the example ships a password hash");
        let found = errors(&format!(
            "[[directory.users]]\nemail = \"a@acme.test\"\npassword_hash = \"{hash}\"\n"
        ));
        assert!(
            found
                .iter()
                .any(|(k, _)| k == "directory.users[0].password_hash"),
            "{found:?}"
        );
    }

    #[test]
    fn the_key_encryption_key_is_required_with_postgres_and_must_be_32_random_bytes() {
        let pg = "[store]\nurl = \"postgres://u:p@db.internal/passerelle\"\n";
        let found = errors(pg);
        let (_, m) = found
            .iter()
            .find(|(k, _)| k == "keys.encryption_key")
            .expect("required");
        assert!(
            m.contains("required with [store] url") && m.contains("openssl rand -base64 32"),
            "{m}"
        );

        let good = "g5f0kJSfYDxq8pCKrzL0OddoBMvdUYD77DsdhtFPF+U=";
        assert!(errors(&format!("{pg}[keys]\nencryption_key = \"{good}\"\n")).is_empty());
        for (value, expect) in [
            ("…", "placeholder"),
            ("change-me-to-a-random-key-0123456789", "placeholder"),
            ("c2hvcnQta2V5LTAxMjM0NTY3", "decodes to 18 bytes, not 32"),
            ("not base64 at all, but long and varied!", "not base64"),
            ("aaaaaaaaaaaaaaaaaaaaaa==", "distinct characters"),
        ] {
            let found = errors(&format!("{pg}[keys]\nencryption_key = \"{value}\"\n"));
            let m = found
                .iter()
                .find(|(k, _)| k == "keys.encryption_key")
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| panic!("{value:?} refused: {found:?}"));
            assert!(m.contains(expect), "{value:?}: {m}");
            assert!(!m.contains(value), "{m}");
        }
        let found = errors(&format!(
            "{pg}[keys]\nencryption_key = \"{good}\"\nprevious_encryption_keys = [\"{good}\", \"xyz\"]\n"
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "keys.previous_encryption_keys[1]");
    }

    #[test]
    fn key_encryption_keys_from_files_are_named_by_their_file_key() {
        let dir = tempfile::tempdir().unwrap();
        let good = "aok0x5C2/aZq/kEugtKB4ZAErgIzBB6nGcjeCMthvfo=";
        std::fs::write(dir.path().join("kek"), format!("{good}\n")).unwrap();
        std::fs::write(dir.path().join("old"), format!("{good}\n\nshort\n")).unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[keys]\nencryption_key_file = \"kek\"\nprevious_encryption_keys_file = \"old\"\n[store]\nurl = \"postgres://u:p@h/d\"\n",
        )
        .unwrap();
        let config = Config::load_with_env(Some(&path), |_| None).unwrap();
        assert_eq!(config.keys.encryption_key.as_ref().unwrap().expose(), good);
        let slots: Vec<String> = config.keys.kek_slots().into_iter().map(|s| s.key).collect();
        assert_eq!(
            slots,
            [
                "keys.encryption_key_file",
                "keys.previous_encryption_keys_file (line 1)",
                "keys.previous_encryption_keys_file (line 2)"
            ]
        );
        let problems = config.validate();
        let errors: Vec<&str> = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.key.as_str())
            .collect();
        assert_eq!(errors, ["keys.previous_encryption_keys_file (line 2)"]);
        assert!(problems
            .iter()
            .any(|p| p.key == "keys.previous_encryption_keys_file (line 1)"
                && p.message.contains("repeats")));
    }

    #[test]
    fn a_key_encryption_key_without_postgres_is_only_a_warning() {
        let config = Config::from_toml(
            "[keys]\nencryption_key = \"g5f0kJSfYDxq8pCKrzL0OddoBMvdUYD77DsdhtFPF+U=\"\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let problems = config.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].severity, Severity::Warning);
        assert_eq!(problems[0].key, "keys.encryption_key");
    }
}
