//! The SAML 2.0 IdP over real HTTP: a test SP with its own key sends AuthnRequests (both
//! bindings), samael's `ServiceProvider` and `xmlsec1` check the Responses, `xmllint` checks
//! them against the SAML schemas.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use chrono::{Duration, SecondsFormat, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use passerelle::config::ServiceProviderConfig;
use passerelle::saml::{encode_redirect, MessageKind, SigningMaterial};
use samael::crypto::{Crypto, CryptoProvider};
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::ServiceProviderBuilder;
use serde_json::Value;

use crate::common::*;

pub const SP_ENTITY: &str = "https://login.ilucca.test/sso-v2/saml2/acme";
pub const SP_ACS: &str = "https://login.ilucca.test/sso-v2/signon/callback/acme";
pub const SP_SLO: &str = "https://login.ilucca.test/sso-v2/saml2/slo/acme";
pub const FOREIGN_ACS: &str = "https://evil.test/acs";

pub struct SpKey {
    pub pkey: PKey<Private>,
    pub cert: X509,
}

/// The test SP's key (signing and encryption), generated once per test run.
pub fn sp_key() -> &'static SpKey {
    static KEY: OnceLock<SpKey> = OnceLock::new();
    KEY.get_or_init(|| generate_key("test SP", 7))
}

/// A key the SP never had: what an attacker signs with.
pub fn attacker_key() -> &'static SpKey {
    static KEY: OnceLock<SpKey> = OnceLock::new();
    KEY.get_or_init(|| generate_key("test SP", 8))
}

fn generate_key(cn: &str, serial: u32) -> SpKey {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let pkey = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&pkey).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&pkey, MessageDigest::sha256()).unwrap();
    SpKey {
        pkey,
        cert: b.build(),
    }
}

fn cert_b64(cert: &X509) -> String {
    base64::engine::general_purpose::STANDARD.encode(cert.to_der().unwrap())
}

/// SP metadata in the shape Lucca publishes: signing + encryption certificates, POST ACS,
/// Redirect SLO.
pub fn sp_metadata(entity: &str, acs: &str, slo: Option<&str>) -> String {
    let cert = cert_b64(&sp_key().cert);
    let slo = slo
        .map(|s| format!(r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{s}"/>"#))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    {slo}
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

/// A directory that lives for the whole test run (SP metadata files).
fn files() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

pub fn write_file(name: &str, content: &str) -> PathBuf {
    let path = files().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// The test SP registered from its metadata file.
pub fn register_sp(c: &mut passerelle::config::Config, encrypt: bool) {
    let name = format!("sp-{}.xml", passerelle::web::random_token(6));
    let path = write_file(&name, &sp_metadata(SP_ENTITY, SP_ACS, Some(SP_SLO)));
    c.saml.service_providers = vec![ServiceProviderConfig {
        name: Some("Lucca".into()),
        metadata_file: Some(path),
        encrypt_assertion: encrypt,
        ..Default::default()
    }];
}

pub fn now_str(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn new_request_id() -> String {
    format!(
        "_req{}",
        passerelle::web::random_token(12).replace(['-', '_'], "x")
    )
}

/// A hand-built AuthnRequest (`extra` goes into the root's attributes).
pub fn authn_request(base: &str, id: &str, issuer: &str, acs: &str, extra: &str) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{base}/saml/sso" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" {extra}><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true"/></samlp:AuthnRequest>"#,
        now = now_str(Duration::zero())
    )
}

/// The HTTP-Redirect URL for `xml`, query-signed with the SP key when `signed`.
pub fn redirect_url(base: &str, xml: &str, relay: Option<&str>, signed: bool) -> String {
    let key = sp_key();
    let material = SigningMaterial::new(&key.pkey, &key.cert);
    encode_redirect(
        &format!("{base}/saml/sso"),
        MessageKind::Request,
        xml,
        relay,
        signed.then_some(&material),
    )
    .unwrap()
}

/// Enveloped RSA-SHA256 signature of the root (placed after its Issuer), with xmlsec.
pub fn sign_xml(xml: &str, id: &str) -> String {
    sign_xml_with(xml, id, sp_key())
}

/// [`sign_xml`] with another key.
pub fn sign_xml_with(xml: &str, id: &str, key: &SpKey) -> String {
    let template = format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"##
    );
    let at = xml.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
    let with_template = format!("{}{}{}", &xml[..at], template, &xml[at..]);
    Crypto::sign_xml(with_template, &key.pkey.private_key_to_der().unwrap()).unwrap()
}

pub fn b64(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml)
}

/// Follow on the server, sign in if asked; return the final page (the auto-POST form).
pub async fn through_login(browser: &Browser, base: &str, url: &str) -> reqwest::Response {
    let r = browser.follow(base, url).await;
    if r.status() == 200 && r.url().path() == "/login" {
        let posted = browser
            .submit_login(base, r, "alice@acme.test", ALICE_PASSWORD)
            .await;
        assert_eq!(posted.status(), 303, "login should succeed");
        let next = absolute(base, &location(&posted).unwrap());
        return browser.follow(base, &next).await;
    }
    r
}

/// The auto-POST page's target and fields.
pub struct Posted {
    pub action: String,
    pub saml_response: String,
    pub relay_state: Option<String>,
    pub xml: String,
}

pub async fn posted(r: reqwest::Response) -> Posted {
    assert_eq!(r.status(), 200, "expected the auto-POST page");
    let html = r.text().await.unwrap();
    let action = {
        let start = html.find("action=\"").expect("form action") + 8;
        let end = html[start..].find('"').unwrap() + start;
        html[start..end]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
            .replace("&#x3d;", "=")
    };
    let saml_response = hidden(&html, "SAMLResponse").expect("SAMLResponse field");
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&saml_response)
            .unwrap(),
    )
    .unwrap();
    Posted {
        action,
        saml_response,
        relay_state: hidden(&html, "RelayState"),
        xml,
    }
}

/// Nothing was posted anywhere: an error page.
pub async fn assert_error_page(r: reqwest::Response) -> String {
    assert!(r.status().is_client_error(), "status {}", r.status());
    let html = r.text().await.unwrap();
    assert!(!html.contains("SAMLResponse"), "nothing may be posted");
    html
}

/// samael's ServiceProvider as the SP: verifies signatures against our metadata, Destination,
/// audience, InResponseTo; decrypts with the SP key.
pub async fn samael_sp(
    base: &str,
    acs: &str,
    entity: &str,
) -> samael::service_provider::ServiceProvider {
    let metadata = reqwest::get(format!("{base}/saml/metadata"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let idp: EntityDescriptor = metadata.parse().expect("samael parses our metadata");
    ServiceProviderBuilder::default()
        .entity_id(entity.to_string())
        .key(sp_key().pkey.clone())
        .certificate(samael::crypto::CertificateDer::from(
            sp_key().cert.to_der().unwrap(),
        ))
        .allow_idp_initiated(true)
        .idp_metadata(idp)
        .acs_url(acs.to_string())
        .build()
        .unwrap()
}

pub fn attributes(assertion: &Assertion) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for statement in assertion.attribute_statements.iter().flatten() {
        for a in &statement.attributes {
            out.insert(
                a.name.clone().unwrap_or_default(),
                a.values.iter().filter_map(|v| v.value.clone()).collect(),
            );
        }
    }
    out
}

pub fn name_id(assertion: &Assertion) -> String {
    assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.clone())
        .unwrap_or_default()
}

fn tool(name: &str) {
    let found = Command::new(name).arg("--version").output().is_ok();
    assert!(
        found,
        "`{name}` is required by the SAML tests (scripts/dev installs it: apt-get install xmlsec1 libxml2-utils)"
    );
}

/// `xmlsec1 --verify` of the signature on element `node` with certificate `cert`.
pub fn xmlsec_verify(xml: &str, cert: &X509, node: &str) {
    tool("xmlsec1");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    let pem = dir.path().join("cert.pem");
    std::fs::write(&doc, xml).unwrap();
    std::fs::write(&pem, cert.to_pem().unwrap()).unwrap();
    let out = Command::new("xmlsec1")
        .args([
            "--verify",
            "--pubkey-cert-pem",
            pem.to_str().unwrap(),
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
            "--node-name",
            node,
            doc.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 --verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `xmllint --schema` against a vendored SAML schema.
pub fn xsd_valid(xml: &str, schema: &str) {
    tool("xmllint");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, xml).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/saml-xsd")
        .join(schema);
    let out = Command::new("xmllint")
        .args([
            "--nonet",
            "--noout",
            "--schema",
            schema.to_str().unwrap(),
            doc.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmllint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn idp_cert(server: &TestServer) -> X509 {
    server.state().keys.signer().cert.clone()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_has_both_certificates_during_rotation_and_is_schema_valid() {
    let server = start(|c| {
        register_sp(c, false);
        c.saml.sign_metadata = true;
    })
    .await;
    let r = reqwest::get(server.url("/saml/metadata")).await.unwrap();
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/samlmetadata+xml"
    );
    assert!(r.headers().get("content-disposition").is_none());
    let xml = r.text().await.unwrap();
    assert!(xml.contains(r#"WantAuthnRequestsSigned="true""#));
    assert!(xml.contains("validUntil=") && xml.contains("cacheDuration="));
    assert_eq!(xml.matches("KeyDescriptor use=\"signing\"").count(), 1);
    xsd_valid(&xml, "saml-schema-metadata-2.0.xsd");
    xmlsec_verify(
        &xml,
        &idp_cert(&server),
        "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
    );

    let rotated = reqwest::Client::new()
        .post(server.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(rotated.status().is_success(), "{}", rotated.status());
    let r = reqwest::get(server.url("/saml/metadata?download=1"))
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"passerelle-idp-metadata.xml\""
    );
    let xml = r.text().await.unwrap();
    assert_eq!(
        xml.matches("KeyDescriptor use=\"signing\"").count(),
        2,
        "{xml}"
    );
    xsd_valid(&xml, "saml-schema-metadata-2.0.xsd");
    let file = reqwest::get(server.url("/saml/metadata.xml"))
        .await
        .unwrap();
    assert!(file.headers().get("content-disposition").is_some());
}

/// The OIDC claims for Alice, through the Lucca client and a real code exchange.
async fn oidc_claims(server: &TestServer, browser: &Browser) -> Value {
    let verifier = passerelle::web::random_token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(openssl::sha::sha256(verifier.as_bytes()));
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid profile email groups"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let redirect = browser
        .authorize(
            &server.base,
            url.as_str(),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    let code = query(&redirect)["code"].clone();
    let tokens: Value = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LUCCA_CALLBACK),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwt_payload(tokens["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn sp_initiated_redirect_flow_gives_a_verified_response_matching_the_oidc_claims() {
    let server = start(|c| register_sp(c, false)).await;
    let browser = Browser::new();
    let id = new_request_id();
    let xml = authn_request(&server.base, &id, SP_ENTITY, SP_ACS, "");
    let url = redirect_url(
        &server.base,
        &xml,
        Some("https://acme.ilucca.test/home"),
        true,
    );
    let post = posted(through_login(&browser, &server.base, &url).await).await;
    assert_eq!(post.action, SP_ACS);
    assert_eq!(
        post.relay_state.as_deref(),
        Some("https://acme.ilucca.test/home")
    );
    assert!(post.xml.contains(&format!(r#"InResponseTo="{id}""#)));

    // Both signatures verify with xmlsec1; the Response is schema-valid.
    let cert = idp_cert(&server);
    xmlsec_verify(
        &post.xml,
        &cert,
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    );
    xmlsec_verify(
        &post.xml,
        &cert,
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    );
    xsd_valid(&post.xml, "saml-schema-protocol-2.0.xsd");

    let sp = samael_sp(&server.base, SP_ACS, SP_ENTITY).await;
    let assertion = sp
        .parse_base64_response(&post.saml_response, Some(&[id.as_str()]))
        .expect("samael accepts the Response");
    assert_eq!(name_id(&assertion), "alice@acme.test");
    let attrs = attributes(&assertion);

    // The same person through OIDC: identical values.
    let claims = oidc_claims(&server, &browser).await;
    for name in [
        "email",
        "given_name",
        "family_name",
        "employee_number",
        "department",
        "manager_email",
    ] {
        assert_eq!(
            attrs[name],
            vec![claims[name].as_str().unwrap().to_string()],
            "{name}"
        );
    }
    let groups: Vec<String> = claims["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    assert_eq!(attrs["groups"], groups);
    assert_eq!(
        attrs["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"],
        vec!["alice@acme.test".to_string()]
    );

    // The same request again: a replay.
    assert_error_page(browser.get(&url).await).await;

    // The audit log has the sign-in.
    let audit: Value = reqwest::Client::new()
        .get(server.url("/admin/audit"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains("saml.sso"), "{audit}");
}

#[tokio::test]
async fn post_binding_bounces_same_site_and_uses_the_existing_session() {
    let server = start(|c| register_sp(c, false)).await;
    let browser = Browser::new();
    // Sign in first (no request).
    let page = browser.get(&server.url("/login")).await;
    let r = browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(r.status(), 303);

    let id = new_request_id();
    let signed = sign_xml(
        &authn_request(&server.base, &id, SP_ENTITY, SP_ACS, ""),
        &id,
    );
    let r = browser
        .http
        .post(server.url("/saml/sso"))
        .form(&[("SAMLRequest", b64(&signed).as_str()), ("RelayState", "rs")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a cross-site POST is bounced same-site");
    let next = location(&r).unwrap();
    assert!(next.starts_with("/saml/sso/resume?req="), "{next}");
    let post = posted(browser.get(&server.url(&next)).await).await;
    assert_eq!(post.relay_state.as_deref(), Some("rs"));
    let sp = samael_sp(&server.base, SP_ACS, SP_ENTITY).await;
    sp.parse_base64_response(&post.saml_response, Some(&[id.as_str()]))
        .expect("valid Response");

    // IdP-initiated sign-in to the same SP, with the session.
    let url = server.url(&format!(
        "/saml/idp-init?sp={}&RelayState=start",
        urlencode(SP_ENTITY)
    ));
    let post = posted(browser.get(&url).await).await;
    assert!(!post.xml.contains("InResponseTo"));
    assert_eq!(post.relay_state.as_deref(), Some("start"));
    let assertion = sp
        .parse_base64_response(&post.saml_response, None)
        .expect("IdP-initiated Response accepted");
    assert_eq!(name_id(&assertion), "alice@acme.test");
    // Unknown SP: 404 page.
    let r = browser
        .get(&server.url("/saml/idp-init?sp=https%3A%2F%2Fnobody.test"))
        .await;
    assert_eq!(r.status(), 404);
}

pub fn urlencode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[tokio::test]
async fn idp_initiated_without_session_signs_in_first_and_force_authn_reauthenticates() {
    let server = start(|c| register_sp(c, false)).await;
    let browser = Browser::new();
    let url = server.url(&format!("/saml/idp-init?sp={}", urlencode(SP_ENTITY)));
    let r = browser.follow(&server.base, &url).await;
    assert_eq!(r.url().path(), "/login", "not signed in: the sign-in page");
    let posted_login = browser
        .submit_login(&server.base, r, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let next = absolute(&server.base, &location(&posted_login).unwrap());
    posted(browser.follow(&server.base, &next).await).await;

    // ForceAuthn with a session: the sign-in form again.
    let id = new_request_id();
    let xml = authn_request(&server.base, &id, SP_ENTITY, SP_ACS, r#"ForceAuthn="true""#);
    let r = browser
        .follow(&server.base, &redirect_url(&server.base, &xml, None, true))
        .await;
    assert_eq!(r.url().path(), "/login", "ForceAuthn asks for the password");
    let posted_login = browser
        .submit_login(&server.base, r, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let next = absolute(&server.base, &location(&posted_login).unwrap());
    let post = posted(browser.follow(&server.base, &next).await).await;
    assert!(post
        .xml
        .contains("urn:oasis:names:tc:SAML:2.0:status:Success"));

    // IsPassive without a session: NoPassive posted back.
    let fresh = Browser::new();
    let id = new_request_id();
    let xml = authn_request(&server.base, &id, SP_ENTITY, SP_ACS, r#"IsPassive="true""#);
    let post = posted(
        fresh
            .follow(&server.base, &redirect_url(&server.base, &xml, None, true))
            .await,
    )
    .await;
    assert_eq!(post.action, SP_ACS);
    assert!(post
        .xml
        .contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"));
    xmlsec_verify(
        &post.xml,
        &idp_cert(&server),
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    );
}

#[tokio::test]
async fn encrypted_assertion_is_decrypted_by_the_sp() {
    let server = start(|c| register_sp(c, true)).await;
    let browser = Browser::new();
    let id = new_request_id();
    let xml = authn_request(&server.base, &id, SP_ENTITY, SP_ACS, "");
    let post = posted(
        through_login(
            &browser,
            &server.base,
            &redirect_url(&server.base, &xml, None, true),
        )
        .await,
    )
    .await;
    assert!(post.xml.contains("EncryptedAssertion"));
    assert!(!post.xml.contains("alice@acme.test"), "nothing in clear");
    xsd_valid(&post.xml, "saml-schema-protocol-2.0.xsd");
    // samael 0.0.22 cannot decrypt AES-256-GCM: decrypt with xmlsec1 and the SP's key, then
    // verify the Assertion's own signature.
    tool("xmlsec1");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("enc.xml");
    let key = dir.path().join("sp-key.pem");
    std::fs::write(&doc, &post.xml).unwrap();
    std::fs::write(&key, sp_key().pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let out = Command::new("xmlsec1")
        .args([
            "--decrypt",
            "--privkey-pem",
            key.to_str().unwrap(),
            doc.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 --decrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decrypted = String::from_utf8(out.stdout).unwrap();
    assert!(decrypted.contains("alice@acme.test"), "{decrypted}");
    xmlsec_verify(
        &decrypted,
        &idp_cert(&server),
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    );
    assert!(decrypted.contains(&format!(r#"InResponseTo="{id}""#)));
}

/// Decode an HTTP-Redirect binding message from a URL.
pub fn inflate_param(url: &str, param: &str) -> String {
    use std::io::Read;
    let q = query(url);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&q[param])
        .unwrap();
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn single_logout_both_directions() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;

    // SP-initiated: the session ends and a signed LogoutResponse comes back.
    let browser = Browser::new();
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "");
    let post =
        posted(through_login(&browser, base, &redirect_url(base, &xml, None, true)).await).await;
    let session_index = {
        let at = post.xml.find("SessionIndex=\"").unwrap() + 14;
        post.xml[at..at + post.xml[at..].find('"').unwrap()].to_string()
    };
    let logout_id = new_request_id();
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{logout_id}" Version="2.0" IssueInstant="{}" Destination="{base}/saml/slo"><saml:Issuer>{SP_ENTITY}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@acme.test</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        now_str(Duration::zero())
    );
    let key = sp_key();
    let url = encode_redirect(
        &format!("{base}/saml/slo"),
        MessageKind::Request,
        &logout,
        Some("back"),
        Some(&SigningMaterial::new(&key.pkey, &key.cert)),
    )
    .unwrap();
    let r = browser.get(&url).await;
    assert_eq!(r.status(), 303);
    let answer = location(&r).unwrap();
    assert!(answer.starts_with(SP_SLO), "{answer}");
    assert_eq!(query(&answer)["RelayState"], "back");
    let response = inflate_param(&answer, "SAMLResponse");
    assert!(response.contains(&format!(r#"InResponseTo="{logout_id}""#)));
    assert!(response.contains("status:Success"));
    // The query signature verifies with samael's URL verifier and our certificate.
    let verifier = samael::crypto::UrlVerifier::from_x509_cert_pem(
        std::str::from_utf8(&idp_cert(&server).to_pem().unwrap()).unwrap(),
    )
    .unwrap();
    assert!(verifier
        .verify_signed_response_url(&url::Url::parse(&answer).unwrap())
        .unwrap());
    xsd_valid(&response, "saml-schema-protocol-2.0.xsd");
    // Signed out: the SP's next request needs the password again.
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "");
    let r = browser
        .follow(base, &redirect_url(base, &xml, None, true))
        .await;
    assert_eq!(r.url().path(), "/login");

    // Passerelle-initiated: signing out at /logout sends a LogoutRequest to the SP.
    let browser = Browser::new();
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "");
    posted(through_login(&browser, base, &redirect_url(base, &xml, None, true)).await).await;
    let page = browser
        .get(&server.url("/logout"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = browser
        .http
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = browser.get(&absolute(base, &location(&r).unwrap())).await;
    assert_eq!(r.status(), 303);
    let to_sp = location(&r).unwrap();
    assert!(to_sp.starts_with(SP_SLO), "{to_sp}");
    let request = inflate_param(&to_sp, "SAMLRequest");
    assert!(request.contains("LogoutRequest") && request.contains("alice@acme.test"));
    assert!(verifier
        .verify_signed_request_url(&url::Url::parse(&to_sp).unwrap())
        .unwrap());
    xsd_valid(&request, "saml-schema-protocol-2.0.xsd");
    let chain = query(&to_sp)["RelayState"].clone();

    // The SP answers; Passerelle finishes on the signed-out page.
    let request_id = {
        let at = request.find(" ID=\"").unwrap() + 5;
        request[at..at + request[at..].find('"').unwrap()].to_string()
    };
    let answer = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{}" Version="2.0" IssueInstant="{}" Destination="{base}/saml/slo" InResponseTo="{request_id}"><saml:Issuer>{SP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
        new_request_id(),
        now_str(Duration::zero())
    );
    let url = encode_redirect(
        &format!("{base}/saml/slo"),
        MessageKind::Response,
        &answer,
        Some(&chain),
        Some(&SigningMaterial::new(&key.pkey, &key.cert)),
    )
    .unwrap();
    let r = browser.follow(base, &url).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("signed out"));
}

/// Responses are built and signed on the CPU pool (`passerelle::cpu`), not on the async
/// workers: while a burst of SAML sign-ins keeps every signing slot busy, another request
/// (discovery) is answered before the burst is over, and the Responses signed on the pool
/// verify. (The pool's own test, `cpu::tests`, shows the isolation deterministically; here the
/// unoptimised test build still does the rest of each sign-in on the one test thread.)
#[tokio::test]
async fn discovery_is_answered_while_saml_sign_ins_saturate_the_signing_pool() {
    let server = start(|c| register_sp(c, false)).await;
    let browser = Browser::new();
    let sso = |base: &str| {
        let xml = authn_request(base, &new_request_id(), SP_ENTITY, SP_ACS, "");
        redirect_url(base, &xml, None, true)
    };
    // Sign in once; every request of the burst reuses the session.
    posted(through_login(&browser, &server.base, &sso(&server.base)).await).await;
    let burst = 8 * passerelle::cpu::pool().size() + 8;
    let started = std::time::Instant::now();
    let sign_ins: Vec<_> = (0..burst)
        .map(|_| {
            let (http, url) = (browser.http.clone(), sso(&server.base));
            tokio::spawn(async move { http.get(url).send().await.unwrap() })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let asked = std::time::Instant::now();
    let discovery = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);
    let waited = asked.elapsed();
    let in_flight = sign_ins.iter().filter(|t| !t.is_finished()).count();
    let mut posts = Vec::new();
    for t in sign_ins {
        posts.push(posted(t.await.unwrap()).await);
    }
    assert!(
        in_flight > 0,
        "discovery was answered only after all {burst} sign-ins ({waited:?}, the burst took {:?})",
        started.elapsed()
    );
    let cert = idp_cert(&server);
    for post in posts.iter().step_by(burst / 4) {
        xmlsec_verify(
            &post.xml,
            &cert,
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        );
        xmlsec_verify(
            &post.xml,
            &cert,
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        );
    }
}
