use std::path::{Path, PathBuf};
use std::time::Duration;

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
fn the_sign_in_reserve_defaults_to_five_and_stays_below_the_budget() {
    assert_eq!(LuccaConfig::default().sign_in_reserve, 5);
    let check = |text: &str| {
        let config = Config::from_toml(text, Path::new("p.toml")).unwrap();
        config
            .validate()
            .into_iter()
            .find(|p| p.key == "lucca.sign_in_reserve")
            .map(|p| p.severity)
    };
    assert_eq!(check("[lucca]\nsign_in_reserve = 10\n"), None);
    assert_eq!(
        check("[lucca]\nrequests_per_minute = 10\nsign_in_reserve = 10\n"),
        Some(Severity::Error)
    );
    // Lucca's window is not a key: only tests shorten it.
    assert!(Config::from_toml("[lucca]\nrate_window = \"1s\"\n", Path::new("p.toml")).is_err());
    assert_eq!(LuccaConfig::default().rate_window, Duration::from_secs(60));
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

#[test]
fn scopes_are_one_list_matched_exactly() {
    assert_eq!(
        Scope::NAMES,
        ["openid", "profile", "email", "groups", "offline_access"]
    );
    for scope in Scope::ALL {
        assert_eq!(Scope::parse(scope.as_str()), Some(scope));
    }
    assert_eq!(Scope::parse("OpenID"), None);
    assert_eq!(Scope::parse("openid "), None);
    let mut config = Config::default();
    config.oidc.clients.push(ClientConfig {
        client_id: "c".into(),
        redirect_uris: vec!["https://rp.test/cb".into()],
        allowed_scopes: vec!["email".into(), "Email".into()],
        ..ClientConfig::default()
    });
    let problems = config.validate();
    let keys: Vec<&str> = problems
        .iter()
        .filter(|p| p.key.contains("allowed_scopes"))
        .map(|p| p.key.as_str())
        .collect();
    assert_eq!(keys, ["oidc.clients[0].allowed_scopes[1]"], "{problems:?}");
}

#[test]
fn allowed_groups_refuse_blanks_and_warn_when_nobody_holds_them() {
    let config = Config::from_toml(
        "[[directory.users]]\nemail = \"a@acme.test\"\ngroups = [\"corp-hr\"]\n[[oidc.clients]]\nclient_id = \"lucca\"\nredirect_uris = [\"https://a.example/cb\"]\nallowed_groups = [\"corp-hr\", \" \"]\n[[saml.service_providers]]\nentity_id = \"https://sp.example\"\nacs_url = \"https://sp.example/acs\"\nallowed_groups = [\"corp-payroll\"]\n",
        Path::new("p.toml"),
    )
    .unwrap();
    let problems = config.validate();
    let find = |key: &str| problems.iter().find(|p| p.key == key).map(|p| p.severity);
    assert_eq!(
        find("oidc.clients[0].allowed_groups[1]"),
        Some(Severity::Error)
    );
    assert_eq!(
        find("oidc.clients[0].allowed_groups"),
        None,
        "a@ holds corp-hr"
    );
    assert_eq!(
        find("saml.service_providers[0].allowed_groups"),
        Some(Severity::Warning),
        "nobody holds corp-payroll"
    );
}

#[test]
fn default_language_is_english_and_only_a_language_the_pages_speak() {
    assert_eq!(ServerConfig::default().default_language, "en");
    for (value, ok) in [
        ("en", true),
        ("fr", true),
        ("de", false),
        ("FR", false),
        ("", false),
    ] {
        let config = Config::from_toml(
            &format!("[server]\ndefault_language = \"{value}\"\n"),
            Path::new("p.toml"),
        )
        .unwrap();
        let problem = config
            .validate()
            .into_iter()
            .find(|p| p.key == "server.default_language");
        assert_eq!(problem.is_none(), ok, "{value}: {problem:?}");
        if let Some(p) = problem {
            assert_eq!(p.severity, Severity::Error);
            assert!(p.message.contains("\"en\", \"fr\""), "{}", p.message);
        }
    }
}

#[test]
fn the_default_culture_must_be_a_windows_lcid_and_an_unusual_one_is_a_warning() {
    let check = |culture: i64| {
        let text = format!("[lucca.defaults]\nculture_id = {culture}\n");
        Config::from_toml(&text, Path::new("p.toml"))
            .unwrap()
            .validate()
            .into_iter()
            .find(|p| p.key == "lucca.defaults.culture_id")
    };
    assert_eq!(check(1036), None);
    assert_eq!(check(2057), None);
    for outside in [0, 36, 1024, 58381, -1036] {
        let found = check(outside).unwrap_or_else(|| panic!("{outside} passed"));
        assert_eq!(found.severity, Severity::Error, "{found}");
        assert!(
            found.message.starts_with(&format!(
                "{outside} is not a Windows language id (LCID) Lucca accepts (1025–58380): for example 1036 fr-FR français (France), 1033 en-US English (United States)"
            )),
            "{found}"
        );
    }
    // Icelandic: a real LCID, but not one the table knows.
    let unusual = check(1039).unwrap();
    assert_eq!(unusual.severity, Severity::Warning, "{unusual}");
    assert!(
        unusual
            .message
            .starts_with("1039 is not a common Windows language id (LCID): check that Lucca has"),
        "{unusual}"
    );
    assert!(check(58380).is_some_and(|p| p.severity == Severity::Warning));
}

#[test]
fn tls_cert_and_tls_key_go_together_and_want_an_https_public_url() {
    let problems = |toml: &str| -> Vec<(String, Severity, String)> {
        Config::from_toml(toml, Path::new("/etc/p/p.toml"))
            .unwrap()
            .validate()
            .into_iter()
            .filter(|p| p.key.starts_with("server.tls") || p.key == "server.public_url")
            .map(|p| (p.key, p.severity, p.message))
            .collect()
    };
    let only_cert = problems("[server]\ntls_cert = \"fullchain.pem\"\n");
    assert_eq!(only_cert.len(), 1, "{only_cert:?}");
    assert_eq!(only_cert[0].0, "server.tls_key");
    assert_eq!(only_cert[0].1, Severity::Error);
    assert!(
        only_cert[0]
            .2
            .contains("server.tls_cert and server.tls_key go together"),
        "{only_cert:?}"
    );
    let only_key = problems("[server]\ntls_key = \"key.pem\"\n");
    assert_eq!(only_key[0].0, "server.tls_cert", "{only_key:?}");
    assert_eq!(only_key[0].1, Severity::Error);

    let blank = problems("[server]\ntls_cert = \" \"\ntls_key = \"key.pem\"\npublic_url = \"https://sso.acme.test\"\n");
    assert_eq!(blank.len(), 1, "{blank:?}");
    assert_eq!(
        (blank[0].0.as_str(), blank[0].1),
        ("server.tls_cert", Severity::Error)
    );

    let http = problems("[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
    assert_eq!(http.len(), 1, "{http:?}");
    assert_eq!(
        (http[0].0.as_str(), http[0].1),
        ("server.public_url", Severity::Warning)
    );
    assert!(http[0].2.contains("https"), "{http:?}");

    let good = Config::from_toml(
        "[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\npublic_url = \"https://sso.acme.test\"\n",
        Path::new("/etc/p/p.toml"),
    )
    .unwrap();
    assert!(good
        .validate()
        .iter()
        .all(|p| !p.key.starts_with("server.")));
    assert_eq!(
        good.server.tls_files(),
        Some((Path::new("c.pem"), Path::new("k.pem")))
    );
}
