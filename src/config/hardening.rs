//! Validation of settings that leave a door open: the audit log's retention, and upstreams that
//! let in any account their IdP knows.

use std::time::Duration;

use url::Url;

use super::{Config, Validator};

/// Entra's tenant for personal Microsoft accounts: anyone can create one.
const MICROSOFT_CONSUMERS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Whether `issuer` signs in accounts of anyone at all (a public or multi-tenant IdP), so that
/// without `allowed_email_domains` a stranger's account gets in. `Some(who)` names them.
pub fn open_issuer(issuer: &str) -> Option<&'static str> {
    let url = Url::parse(issuer.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let first_segment = url
        .path_segments()
        .and_then(|mut s| s.next())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "accounts.google.com" => Some("any Google account"),
        "appleid.apple.com" => Some("any Apple ID"),
        "gitlab.com" => Some("any gitlab.com account"),
        "login.live.com" => Some("any Microsoft account"),
        "login.microsoftonline.com" | "login.microsoft.com" | "sts.windows.net" => {
            match first_segment.as_str() {
                "common" | "{tenantid}" => Some("any Microsoft work, school or personal account"),
                "organizations" => Some("any Microsoft work or school account of any company"),
                "consumers" | MICROSOFT_CONSUMERS_TENANT => Some("any personal Microsoft account"),
                _ => None,
            }
        }
        _ => None,
    }
}

impl Config {
    pub(super) fn validate_audit(&self, v: &mut Validator) {
        let retention = self.audit.retention;
        if retention.is_zero() {
            v.warning(
                "audit.retention",
                "is 0s: the audit log is kept forever and grows without bound; the default is \"400d\"",
            );
        } else if retention < Duration::from_secs(24 * 3600) {
            v.warning(
                "audit.retention",
                "is under a day: the log is purged once a day, and an incident is rarely looked into that fast",
            );
        }
    }

    pub(super) fn validate_upstream_domains(&self, v: &mut Validator) {
        for (i, u) in self.upstreams.iter().enumerate() {
            let key = format!("upstreams[{i}].allowed_email_domains");
            for (j, d) in u.allowed_email_domains.iter().enumerate() {
                let d = d.trim();
                if d.is_empty() || d.contains(['@', '*', ' ', '/']) || !d.contains('.') {
                    v.error(
                        format!("{key}[{j}]"),
                        format!("`{d}` is not a domain: write it like \"acme.example\" (matched exactly, no `@` or `*`)"),
                    );
                }
            }
            if !u.allowed_email_domains.is_empty() {
                continue;
            }
            let fix = format!(
                "list your company's domains, e.g. allowed_email_domains = [\"acme.example\"] in [[upstreams]] `{}`",
                u.name
            );
            match open_issuer(&u.issuer) {
                Some(who) => v.error(
                    key,
                    format!("is empty, and `{}` signs in {who}: anyone with one would get in; {fix}", u.issuer),
                ),
                None => v.warning(
                    key,
                    format!("is empty: every account `{}` signs in gets in (guests and partner accounts included); {fix}", u.issuer),
                ),
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
    fn public_and_multi_tenant_issuers_are_known() {
        for (issuer, open) in [
            ("https://accounts.google.com", true),
            ("https://accounts.google.com/", true),
            ("https://login.microsoftonline.com/common/v2.0", true),
            ("https://login.microsoftonline.com/organizations/v2.0", true),
            ("https://login.microsoftonline.com/consumers/v2.0", true),
            (
                "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
                true,
            ),
            ("https://appleid.apple.com", true),
            (
                "https://login.microsoftonline.com/4a7c8238-5799-4b16-9fc6-9ad8fce5a7d9/v2.0",
                false,
            ),
            ("https://acme.okta.com", false),
            ("https://login.example.com", false),
        ] {
            assert_eq!(open_issuer(issuer).is_some(), open, "{issuer}");
        }
    }

    fn problem(toml: &str, key: &str) -> Option<(Severity, String)> {
        let config = Config::from_toml(toml, Path::new("p.toml")).unwrap();
        config
            .validate()
            .into_iter()
            .find(|p| p.key == key)
            .map(|p| (p.severity, p.message))
    }

    #[test]
    fn an_upstream_without_domains_is_named_with_the_fix() {
        let upstream = |issuer: &str, domains: &str| {
            format!("[[upstreams]]\nname = \"corp\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\n{domains}")
        };
        let key = "upstreams[0].allowed_email_domains";
        let (severity, message) =
            problem(&upstream("https://accounts.google.com", ""), key).unwrap();
        assert_eq!(severity, Severity::Error);
        assert!(message.contains("any Google account"), "{message}");
        assert!(
            message.contains("allowed_email_domains = [\"acme.example\"]"),
            "{message}"
        );
        let (severity, _) = problem(&upstream("https://login.example.com", ""), key).unwrap();
        assert_eq!(severity, Severity::Warning);
        assert_eq!(
            problem(
                &upstream(
                    "https://login.microsoftonline.com/common/v2.0",
                    "allowed_email_domains = [\"acme.example\"]"
                ),
                key
            ),
            None
        );
        let (severity, _) = problem(
            &upstream(
                "https://accounts.google.com",
                "allowed_email_domains = [\"@acme.example\"]",
            ),
            "upstreams[0].allowed_email_domains[0]",
        )
        .unwrap();
        assert_eq!(severity, Severity::Error);
    }

    #[test]
    fn audit_retention_defaults_to_400_days_and_zero_keeps_forever() {
        let config = Config::from_toml("", Path::new("p.toml")).unwrap();
        assert_eq!(config.audit.retention, Duration::from_secs(400 * 86400));
        assert_eq!(problem("", "audit.retention"), None);
        let (severity, message) =
            problem("[audit]\nretention = \"0s\"\n", "audit.retention").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("forever"), "{message}");
        let config =
            Config::from_toml("[audit]\nretention = \"90d\"\n", Path::new("p.toml")).unwrap();
        assert_eq!(config.audit.retention, Duration::from_secs(90 * 86400));
        assert!(Config::from_toml("[audit]\nretention = \"soon\"\n", Path::new("p.toml")).is_err());
    }
}
