//! SAML: what an attacker sends to `/saml/sso`, `/saml/slo` and `/saml/idp-init`.
//!
//! The test SP is registered from its metadata (it signs its requests, so signatures are
//! required) or, where a finding needs it, as lenient about AuthnRequest signatures. Alice signs
//! in through it when a test needs a session to attack. After every attack the test checks the
//! answer (an error page, or an error status posted only to a registered endpoint) and that
//! nothing changed: her session is still there (or no session was made), no Response went out,
//! a request ID that was reused is still free for the genuine request, and the audit log has one
//! more "refused" entry.

use std::io::Write as _;

use chrono::Duration;
use passerelle::config::Config;
use passerelle::saml::{encode_redirect, MessageKind, SigningMaterial};
use serde_json::Value;

use crate::common::*;
use crate::saml::*;

const DSIG_DECL: &str = r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#""#;

/// Spellings of the XML-DSig namespace that libxml2, the parser inside xmlsec, reads as the
/// real one (it expands references in namespace declarations).
const DSIG_SPELLINGS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig&#35;",
    "http://www.w3.org/2000/09/xmldsig&#x23;",
    "http://www.w3.org/2000/09/xmldsig&#x0023;",
    "http&#x3a;//www.w3.org/2000/09/xmldsig#",
    "&#104;ttp://www.w3.org/2000/09/xmldsig#",
];

const ALICE: &str = "alice@acme.test";

fn material(key: &SpKey) -> SigningMaterial<'_> {
    SigningMaterial::new(&key.pkey, &key.cert)
}

/// The SP from its metadata, but not requiring signed AuthnRequests (finding 6's setting).
fn lenient(c: &mut Config) {
    register_sp(c, false);
    c.saml.service_providers[0].require_signed_requests = Some(false);
}

/// The element of a document, without its XML declaration.
fn body(xml: &str) -> &str {
    let xml = xml.trim_start();
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim(),
        None => xml.trim(),
    }
}

fn logout_request(base: &str, id: &str, name_id: &str, session_index: Option<&str>) -> String {
    let index = session_index
        .map(|s| format!("<samlp:SessionIndex>{s}</samlp:SessionIndex>"))
        .unwrap_or_default();
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{base}/saml/slo"><saml:Issuer>{SP_ENTITY}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID>{index}</samlp:LogoutRequest>"#,
        now_str(Duration::zero())
    )
}

fn logout_response(base: &str, id: &str, in_response_to: &str) -> String {
    format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{base}/saml/slo" InResponseTo="{in_response_to}"><saml:Issuer>{SP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
        now_str(Duration::zero())
    )
}

/// An HTTP-Redirect URL to our SLO endpoint, query-signed with `key` (or unsigned).
fn slo_redirect(
    base: &str,
    kind: MessageKind,
    xml: &str,
    relay: Option<&str>,
    key: Option<&SpKey>,
) -> String {
    let signing = key.map(material);
    encode_redirect(
        &format!("{base}/saml/slo"),
        kind,
        xml,
        relay,
        signing.as_ref(),
    )
    .unwrap()
}

async fn post(browser: &Browser, url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    browser.http.post(url).form(fields).send().await.unwrap()
}

/// Alice, signed in at Passerelle through the SP (so the SP takes part in her session), and the
/// SessionIndex the SP received.
async fn alice_signed_in(server: &TestServer) -> (Browser, String) {
    let browser = Browser::new();
    let id = new_request_id();
    let xml = authn_request(&server.base, &id, SP_ENTITY, SP_ACS, "");
    let url = redirect_url(&server.base, &xml, None, true);
    let post = posted(through_login(&browser, &server.base, &url).await).await;
    let at = post.xml.find("SessionIndex=\"").unwrap() + 14;
    let index = post.xml[at..at + post.xml[at..].find('"').unwrap()].to_string();
    (browser, index)
}

/// Does `browser` hold a Passerelle session? An IdP-initiated sign-in answers at once with a
/// Response, or sends to the sign-in page.
async fn has_session(server: &TestServer, browser: &Browser) -> bool {
    let url = server.url(&format!("/saml/idp-init?sp={}", urlencode(SP_ENTITY)));
    let r = browser.get(&url).await;
    match r.status().as_u16() {
        200 => {
            assert!(r.text().await.unwrap().contains("SAMLResponse"));
            true
        }
        303 => {
            assert!(location(&r).unwrap().starts_with("/login"));
            false
        }
        other => panic!("idp-init answered {other}"),
    }
}

async fn audit_entries(server: &TestServer) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(server.url("/admin/audit?limit=1000"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let json: Value = r.json().await.unwrap();
    json["entries"].as_array().unwrap().clone()
}

async fn count(server: &TestServer, event: &str, outcome: &str) -> usize {
    audit_entries(server)
        .await
        .iter()
        .filter(|e| e["event"] == event && e["outcome"] == outcome)
        .count()
}

/// One more `outcome` entry for `event` than `before` (and the newest such entry's reason).
async fn assert_audited(server: &TestServer, event: &str, outcome: &str, before: usize) -> String {
    let entries = audit_entries(server).await;
    let matching: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == event && e["outcome"] == outcome)
        .collect();
    assert_eq!(
        matching.len(),
        before + 1,
        "one more {event} {outcome} in the audit log: {entries:#?}"
    );
    // `detail` is a JSON object: its text holds the reason.
    matching[0]["detail"].to_string()
}

/// A refusal page (4xx, no form posting anything anywhere, no redirect).
async fn refused_page(r: reqwest::Response) -> String {
    assert!(location(&r).is_none(), "no redirect on a refusal");
    assert_error_page(r).await
}

/// The genuine signed POST request with `id` is still accepted: the attack did not claim it.
async fn id_still_free(server: &TestServer, id: &str) {
    let genuine = sign_xml(&authn_request(&server.base, id, SP_ENTITY, SP_ACS, ""), id);
    let r = post(
        &Browser::new(),
        &server.url("/saml/sso"),
        &[("SAMLRequest", &b64(&genuine))],
    )
    .await;
    assert_eq!(
        r.status(),
        303,
        "the genuine request {id} is still accepted"
    );
    assert!(location(&r).unwrap().starts_with("/saml/sso/resume?req="));
}

/// The namespace-differential forgery (finding 1): `genuine`, a message the SP really signed,
/// has its `xmlns:ds` respelled (its signature stays valid for xmlsec) and is hidden in the
/// Extensions of `forged`, which carries a signature the attacker made with their own key.
fn forge(genuine: &str, spelling: &str, forged: &str, forged_id: &str) -> String {
    let hidden = body(genuine).replace(DSIG_DECL, &format!(r#"xmlns:ds="{spelling}""#));
    assert_ne!(hidden, body(genuine));
    let fake = sign_xml_with(forged, forged_id, attacker_key());
    let fake = body(&fake);
    let at = fake.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
    format!(
        "{}<samlp:Extensions>{hidden}</samlp:Extensions>{}",
        &fake[..at],
        &fake[at..]
    )
}

// ---------------------------------------------------------------------------------------------
// Signature wrapping

/// Finding 1: from one LogoutRequest the SP really signed (for somebody else), no forged
/// LogoutRequest signs Alice out and no forged AuthnRequest passes as signed, whatever spelling
/// of the XML-DSig namespace hides the genuine signature.
#[tokio::test]
async fn namespace_differential_forges_neither_logout_nor_sign_in() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let (alice, _) = alice_signed_in(&server).await;
    let genuine_id = new_request_id();
    let genuine = sign_xml(
        &logout_request(base, &genuine_id, "bob@acme.test", None),
        &genuine_id,
    );
    for spelling in DSIG_SPELLINGS {
        // A forged LogoutRequest naming Alice, posted by her own browser (a page she visits).
        let refused = count(&server, "saml.slo", "refused").await;
        let id = new_request_id();
        let forged = forge(
            &genuine,
            spelling,
            &logout_request(base, &id, ALICE, None),
            &id,
        );
        let r = post(
            &alice,
            &server.url("/saml/slo"),
            &[("SAMLRequest", &b64(&forged))],
        )
        .await;
        let page = refused_page(r).await;
        assert!(page.contains("Nobody was signed out"), "{page}");
        let reason = assert_audited(&server, "saml.slo", "refused", refused).await;
        assert!(reason.contains("reference"), "{spelling}: {reason}");
        assert!(
            has_session(&server, &alice).await,
            "{spelling}: Alice is still signed in"
        );

        // A forged AuthnRequest for the SP, which must sign its requests.
        let refused = count(&server, "saml.sso", "refused").await;
        let id = new_request_id();
        let forged = forge(
            &genuine,
            spelling,
            &authn_request(base, &id, SP_ENTITY, SP_ACS, r#"ForceAuthn="false""#),
            &id,
        );
        let browser = Browser::new();
        let r = post(
            &browser,
            &server.url("/saml/sso"),
            &[("SAMLRequest", &b64(&forged))],
        )
        .await;
        refused_page(r).await;
        assert_audited(&server, "saml.sso", "refused", refused).await;
        assert!(!has_session(&server, &browser).await);
        id_still_free(&server, &id).await;
    }
}

/// The classic wrapping forms against the POST binding, from one genuine signed AuthnRequest.
#[tokio::test]
async fn signature_wrapping_in_its_known_forms_is_refused() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let gid = new_request_id();
    let genuine = sign_xml(&authn_request(base, &gid, SP_ENTITY, SP_ACS, ""), &gid);
    let genuine = body(&genuine).to_string();
    let signature = {
        let start = genuine.find("<ds:Signature").unwrap();
        let end = genuine.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        genuine[start..end].to_string()
    };
    let unsigned_genuine = genuine.replace(&signature, "");
    let eid = new_request_id();
    // The attacker's request: registered ACS, but ForceAuthn and IsPassive of their choosing.
    let evil_root = |id: &str, inside: &str| {
        authn_request(base, id, SP_ENTITY, SP_ACS, r#"IsPassive="false""#)
            .replace("</saml:Issuer>", &format!("</saml:Issuer>{inside}"))
    };
    let with_own_signature = |inside_object: &str| {
        let own = body(&sign_xml_with(&evil_root(&eid, ""), &eid, attacker_key())).to_string();
        own.replace(
            "</ds:Signature>",
            &format!("<ds:Object>{inside_object}</ds:Object></ds:Signature>"),
        )
    };
    let attacks: Vec<(&str, String)> = vec![
        (
            "the signed request inside the Extensions of an unsigned one",
            evil_root(
                &eid,
                &format!("<samlp:Extensions>{genuine}</samlp:Extensions>"),
            ),
        ),
        (
            "the signed request inside a ds:Object of the attacker's own signature",
            with_own_signature(&genuine),
        ),
        (
            "the signed ID reused on the root, with the signature moved there",
            evil_root(
                &gid,
                &format!("{signature}<samlp:Extensions>{unsigned_genuine}</samlp:Extensions>"),
            ),
        ),
        (
            "a signature over a sibling of itself",
            evil_root(&eid, &format!("{signature}{unsigned_genuine}")),
        ),
        (
            "the signature moved to a child of the root it references",
            evil_root(
                &gid,
                &format!("<samlp:Extensions>{signature}</samlp:Extensions>"),
            ),
        ),
        (
            "a second signature next to the genuine one",
            genuine.replace(
                "</samlp:AuthnRequest>",
                &format!("{signature}</samlp:AuthnRequest>"),
            ),
        ),
        (
            "the signed request and an unsigned one as two roots",
            format!(
                "{genuine}{}",
                authn_request(base, &eid, SP_ENTITY, SP_ACS, "")
            ),
        ),
        (
            "the genuine request, altered after signing",
            genuine.replace(r#"AllowCreate="true""#, r#"AllowCreate="false""#),
        ),
    ];
    for (what, xml) in attacks {
        let refused = count(&server, "saml.sso", "refused").await;
        let browser = Browser::new();
        let r = post(
            &browser,
            &server.url("/saml/sso"),
            &[("SAMLRequest", &b64(&xml))],
        )
        .await;
        let page = refused_page(r).await;
        assert!(!page.contains("SAMLResponse"), "{what}");
        assert_audited(&server, "saml.sso", "refused", refused).await;
        assert!(!has_session(&server, &browser).await, "{what}");
    }
    // None of that used up the genuine request.
    id_still_free(&server, &gid).await;
}

/// A comment inside a value ends the value for a parser that stops at the first text node; here
/// the value is all of its text, so neither the Issuer nor the NameID can be cut short.
#[tokio::test]
async fn comments_in_issuer_and_name_id_do_not_cut_values() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let (alice, _) = alice_signed_in(&server).await;

    // A LogoutRequest the SP signed for "alice@acme.test.evil.test" does not end Alice's session.
    let before = count(&server, "saml.slo", "no_matching_session").await;
    let id = new_request_id();
    let xml = logout_request(base, &id, "alice@acme.test<!---->.evil.test", None);
    let url = slo_redirect(base, MessageKind::Request, &xml, None, Some(sp_key()));
    let r = alice.get(&url).await;
    assert_eq!(r.status(), 303, "answered with a LogoutResponse");
    assert!(location(&r).unwrap().starts_with(SP_SLO));
    assert_audited(&server, "saml.slo", "no_matching_session", before).await;
    assert!(has_session(&server, &alice).await);

    // An Issuer "<SP><!---->.evil.test" is not the SP.
    let refused = count(&server, "saml.sso", "refused").await;
    let id = new_request_id();
    let xml = authn_request(
        base,
        &id,
        &format!("{SP_ENTITY}<!---->.evil.test"),
        SP_ACS,
        "",
    );
    let page = refused_page(
        Browser::new()
            .get(&redirect_url(base, &xml, None, true))
            .await,
    )
    .await;
    assert!(page.contains("not set up"), "{page}");
    assert_audited(&server, "saml.sso", "refused", refused).await;
    id_still_free(&server, &id).await;
}

// ---------------------------------------------------------------------------------------------
// XML and encoding attacks

#[tokio::test]
async fn dtds_xxe_billion_laughs_and_parameter_entities_are_refused_unread() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    // Where an external entity would be fetched from: nothing may connect.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dtd_url = format!("http://{}/evil.dtd", listener.local_addr().unwrap());
    let request = |id: &str| authn_request(base, id, SP_ENTITY, SP_ACS, "");
    let laughs = (1..=9)
        .map(|i| {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("&lol{};", i - 1).repeat(10)
            };
            format!("<!ENTITY lol{i} \"{prev}\">")
        })
        .collect::<String>();
    let documents: Vec<(&str, String, String)> = [
        (
            "XXE",
            "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>".to_string(),
            "&x;",
        ),
        (
            "billion laughs",
            format!("<!DOCTYPE r [{laughs}]>"),
            "&lol9;",
        ),
        (
            "parameter entity",
            format!("<!DOCTYPE r [<!ENTITY % p SYSTEM \"{dtd_url}\"> %p;]>"),
            "",
        ),
        (
            "external DTD",
            format!("<!DOCTYPE r SYSTEM \"{dtd_url}\">"),
            "",
        ),
    ]
    .into_iter()
    .map(|(what, dtd, reference)| {
        let id = new_request_id();
        let xml = format!(
            "<?xml version=\"1.0\"?>{dtd}{}",
            request(&id).replace("</saml:Issuer>", &format!("{reference}</saml:Issuer>"))
        );
        (what, id, xml)
    })
    .collect();
    for (what, id, xml) in &documents {
        for redirect in [false, true] {
            let refused = count(&server, "saml.sso", "refused").await;
            let browser = Browser::new();
            let r = if redirect {
                browser.get(&redirect_url(base, xml, None, true)).await
            } else {
                post(
                    &browser,
                    &server.url("/saml/sso"),
                    &[("SAMLRequest", &b64(xml))],
                )
                .await
            };
            let page = refused_page(r).await;
            assert!(page.contains("DTD"), "{what}: {page}");
            assert_audited(&server, "saml.sso", "refused", refused).await;
        }
        id_still_free(&server, id).await;
    }
    // The same DTDs in a logout message.
    let (alice, _) = alice_signed_in(&server).await;
    let id = new_request_id();
    let xml = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY % p SYSTEM \"{dtd_url}\"> %p;]>{}",
        logout_request(base, &id, ALICE, None)
    );
    let refused = count(&server, "saml.slo", "refused").await;
    let r = alice
        .get(&slo_redirect(
            base,
            MessageKind::Request,
            &xml,
            None,
            Some(sp_key()),
        ))
        .await;
    refused_page(r).await;
    assert_audited(&server, "saml.slo", "refused", refused).await;
    assert!(has_session(&server, &alice).await);
    let fetched =
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(fetched.is_err(), "nothing fetched the external entity");
}

fn deflate_bomb() -> String {
    let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    d.write_all(b"<samlp:AuthnRequest ").unwrap();
    d.write_all(&vec![b' '; 20 * 1024 * 1024]).unwrap();
    urlencode(&b64_bytes(&d.finish().unwrap()))
}

fn b64_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn deflate_bombs_and_oversize_posts_are_refused() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let bomb = deflate_bomb();
    assert!(
        bomb.len() < 100 * 1024,
        "20 MB inflating from {} bytes",
        bomb.len()
    );

    let refused = count(&server, "saml.sso", "refused").await;
    let r = Browser::new()
        .get(&format!("{base}/saml/sso?SAMLRequest={bomb}"))
        .await;
    let page = refused_page(r).await;
    assert!(page.contains("deflate bomb"), "{page}");
    assert_audited(&server, "saml.sso", "refused", refused).await;

    let (alice, _) = alice_signed_in(&server).await;
    let refused = count(&server, "saml.slo", "refused").await;
    let r = alice
        .get(&format!("{base}/saml/slo?SAMLRequest={bomb}"))
        .await;
    refused_page(r).await;
    assert_audited(&server, "saml.slo", "refused", refused).await;
    assert!(has_session(&server, &alice).await);

    // A SAMLRequest far larger than any AuthnRequest (within the server's body limit).
    let refused = count(&server, "saml.sso", "refused").await;
    let huge = "A".repeat(300 * 1024);
    let r = post(
        &Browser::new(),
        &server.url("/saml/sso"),
        &[("SAMLRequest", &huge)],
    )
    .await;
    refused_page(r).await;
    assert_audited(&server, "saml.sso", "refused", refused).await;
    // A body beyond the server's limit never reaches the SAML code, and is no server error.
    let r = post(
        &Browser::new(),
        &server.url("/saml/sso"),
        &[("SAMLRequest", &"A".repeat(2 * 1024 * 1024))],
    )
    .await;
    assert_eq!(r.status(), 413);
    let r = post(&alice, &server.url("/saml/slo"), &[("SAMLRequest", &huge)]).await;
    refused_page(r).await;
    assert!(has_session(&server, &alice).await);
}

// ---------------------------------------------------------------------------------------------
// Replay, time, addressing

#[tokio::test]
async fn replayed_request_ids_are_refused_on_both_bindings() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let browser = Browser::new();
    let id = new_request_id();
    let url = redirect_url(
        base,
        &authn_request(base, &id, SP_ENTITY, SP_ACS, ""),
        None,
        true,
    );
    posted(through_login(&browser, base, &url).await).await;

    let signed_post = b64(&sign_xml(
        &authn_request(base, &id, SP_ENTITY, SP_ACS, ""),
        &id,
    ));
    for redirect in [true, false] {
        let before = count(&server, "saml.sso", "replay").await;
        let replay = if redirect {
            browser.get(&url).await
        } else {
            post(
                &browser,
                &server.url("/saml/sso"),
                &[("SAMLRequest", &signed_post)],
            )
            .await
        };
        let page = refused_page(replay).await;
        assert!(page.contains("already used"), "{page}");
        assert_audited(&server, "saml.sso", "replay", before).await;
    }
}

#[tokio::test]
async fn stale_and_future_requests_get_an_error_status_and_no_assertion() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let (alice, index) = alice_signed_in(&server).await;
    for offset in [Duration::hours(-1), Duration::hours(1)] {
        let id = new_request_id();
        let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "").replace(
            &format!(r#"IssueInstant="{}""#, now_str(Duration::zero())),
            &format!(r#"IssueInstant="{}""#, now_str(offset)),
        );
        assert!(xml.contains(&now_str(offset)));
        let refused = count(&server, "saml.sso", "refused").await;
        // Even with a session: the SP is genuine, so only an error status goes to its ACS.
        let post = posted(alice.get(&redirect_url(base, &xml, None, true)).await).await;
        assert_eq!(post.action, SP_ACS);
        assert!(post.xml.contains("status:Requester"), "{}", post.xml);
        assert!(!post.xml.contains("Assertion"));
        assert_audited(&server, "saml.sso", "refused", refused).await;
        id_still_free(&server, &id).await;

        // A stale LogoutRequest ends nothing.
        let id = new_request_id();
        let xml = logout_request(base, &id, ALICE, Some(&index)).replace(
            &format!(r#"IssueInstant="{}""#, now_str(Duration::zero())),
            &format!(r#"IssueInstant="{}""#, now_str(offset)),
        );
        let refused = count(&server, "saml.slo", "refused").await;
        let r = alice
            .get(&slo_redirect(
                base,
                MessageKind::Request,
                &xml,
                None,
                Some(sp_key()),
            ))
            .await;
        let answer = location(&r).expect("an error LogoutResponse to the SP");
        assert!(answer.starts_with(SP_SLO), "{answer}");
        assert!(!inflate_param(&answer, "SAMLResponse").contains("status:Success"));
        assert_audited(&server, "saml.slo", "refused", refused).await;
        assert!(has_session(&server, &alice).await);
    }
}

#[tokio::test]
async fn foreign_acs_and_destination_get_nothing_sent_there() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let (alice, index) = alice_signed_in(&server).await;

    // An ACS the SP never registered: an error page, no form anywhere.
    let refused = count(&server, "saml.sso", "refused").await;
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, FOREIGN_ACS, "");
    let page = refused_page(alice.get(&redirect_url(base, &xml, None, true)).await).await;
    assert!(
        !page.contains("evil.test/acs\""),
        "never a form to the foreign ACS"
    );
    assert_audited(&server, "saml.sso", "refused", refused).await;
    id_still_free(&server, &id).await;

    // Addressed to another IdP: an error status to the registered ACS only.
    let refused = count(&server, "saml.sso", "refused").await;
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "").replace(
        &format!(r#"Destination="{base}/saml/sso""#),
        r#"Destination="https://other-idp.test/saml/sso""#,
    );
    let post = posted(alice.get(&redirect_url(base, &xml, None, true)).await).await;
    assert_eq!(post.action, SP_ACS);
    assert!(post.xml.contains("status:RequestDenied"), "{}", post.xml);
    assert!(!post.xml.contains("Assertion"));
    assert_audited(&server, "saml.sso", "refused", refused).await;

    // A LogoutRequest addressed elsewhere ends nothing.
    let refused = count(&server, "saml.slo", "refused").await;
    let id = new_request_id();
    let xml = logout_request(base, &id, ALICE, Some(&index)).replace(
        &format!(r#"Destination="{base}/saml/slo""#),
        r#"Destination="https://other-idp.test/saml/slo""#,
    );
    let r = alice
        .get(&slo_redirect(
            base,
            MessageKind::Request,
            &xml,
            None,
            Some(sp_key()),
        ))
        .await;
    let answer = location(&r).unwrap();
    assert!(answer.starts_with(SP_SLO));
    assert!(inflate_param(&answer, "SAMLResponse").contains("status:RequestDenied"));
    assert_audited(&server, "saml.slo", "refused", refused).await;
    assert!(has_session(&server, &alice).await);
}

#[tokio::test]
async fn relay_state_is_bounded_and_never_a_redirect_target() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;

    // Too long: refused before anything is stored or claimed.
    let refused = count(&server, "saml.sso", "refused").await;
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "");
    let long = "r".repeat(1025);
    let page = refused_page(
        Browser::new()
            .get(&redirect_url(base, &xml, Some(&long), true))
            .await,
    )
    .await;
    assert!(page.contains("RelayState"), "{page}");
    assert_audited(&server, "saml.sso", "refused", refused).await;
    id_still_free(&server, &id).await;

    // A URL as RelayState is data carried back to the SP's registered ACS, never followed.
    let (alice, _) = alice_signed_in(&server).await;
    let evil = "https://evil.test/phish";
    let id = new_request_id();
    let xml = authn_request(base, &id, SP_ENTITY, SP_ACS, "");
    let post = posted(alice.get(&redirect_url(base, &xml, Some(evil), true)).await).await;
    assert_eq!(post.action, SP_ACS);
    assert_eq!(post.relay_state.as_deref(), Some(evil));

    // IdP-initiated: the SP parameter picks a registered SP or nothing; RelayState is data.
    let r = alice
        .get(&server.url(&format!("/saml/idp-init?sp={}", urlencode(evil))))
        .await;
    assert_eq!(r.status(), 404);
    assert!(location(&r).is_none());
    let r = alice
        .get(&server.url(&format!(
            "/saml/idp-init?sp={}&RelayState={}",
            urlencode(SP_ENTITY),
            urlencode(evil)
        )))
        .await;
    let post = posted(r).await;
    assert_eq!(post.action, SP_ACS);
    assert_eq!(post.relay_state.as_deref(), Some(evil));
    // An oversize RelayState is dropped, not echoed.
    let r = alice
        .get(&server.url(&format!(
            "/saml/idp-init?sp={}&RelayState={long}",
            urlencode(SP_ENTITY)
        )))
        .await;
    let post = posted(r).await;
    assert_eq!(post.relay_state, None);
    // An SLO answer goes to the SP's registered endpoint, whatever the RelayState says.
    let id = new_request_id();
    let xml = logout_request(base, &id, "nobody@acme.test", None);
    let r = alice
        .get(&slo_redirect(
            base,
            MessageKind::Request,
            &xml,
            Some(evil),
            Some(sp_key()),
        ))
        .await;
    assert!(location(&r).unwrap().starts_with(SP_SLO));
    // Unknown continuation ids lead nowhere.
    for path in [
        "/saml/sso/resume?req=nope",
        "/saml/slo/resume?req=nope",
        "/saml/slo/propagate?req=nope",
    ] {
        let r = alice.get(&server.url(path)).await;
        assert!(location(&r).is_none(), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Single logout: only the SP, signing, may sign anyone out

/// Finding 6: an SP that may send unsigned AuthnRequests still cannot have an unsigned (or
/// wrongly signed) LogoutRequest sign Alice out, on either binding.
#[tokio::test]
async fn unsigned_or_wrongly_signed_logout_requests_sign_nobody_out() {
    let server = start(lenient).await;
    let base = &server.base;
    let (alice, index) = alice_signed_in(&server).await;
    for key in [None, Some(attacker_key())] {
        for redirect in [true, false] {
            let refused = count(&server, "saml.slo", "refused").await;
            let id = new_request_id();
            let xml = logout_request(base, &id, ALICE, Some(&index));
            let r = if redirect {
                alice
                    .get(&slo_redirect(
                        base,
                        MessageKind::Request,
                        &xml,
                        Some("rs"),
                        key,
                    ))
                    .await
            } else {
                let xml = match key {
                    Some(key) => sign_xml_with(&xml, &id, key),
                    None => xml,
                };
                post(
                    &alice,
                    &server.url("/saml/slo"),
                    &[("SAMLRequest", &b64(&xml))],
                )
                .await
            };
            let what = format!(
                "signed by attacker: {}, redirect: {redirect}",
                key.is_some()
            );
            let page = refused_page(r).await;
            assert!(page.contains("Nobody was signed out"), "{what}: {page}");
            let reason = assert_audited(&server, "saml.slo", "refused", refused).await;
            let expected = if key.is_some() {
                "does not verify"
            } else {
                "not signed"
            };
            assert!(reason.contains(expected), "{what}: {reason}");
            assert!(
                has_session(&server, &alice).await,
                "{what}: still signed in"
            );
        }
    }
    // The SP's own signature does sign her out.
    let id = new_request_id();
    let xml = logout_request(base, &id, ALICE, Some(&index));
    let r = alice
        .get(&slo_redirect(
            base,
            MessageKind::Request,
            &xml,
            None,
            Some(sp_key()),
        ))
        .await;
    assert!(location(&r).unwrap().starts_with(SP_SLO));
    assert!(!has_session(&server, &alice).await);
}

/// Finding 6, the other direction: our logout chain moves on only on the SP's signed answer.
#[tokio::test]
async fn unsigned_or_wrongly_signed_logout_responses_do_not_move_the_chain() {
    let server = start(lenient).await;
    let base = &server.base;
    let (alice, _) = alice_signed_in(&server).await;
    let page = alice
        .get(&server.url("/logout"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token").unwrap();
    let r = post(&alice, &server.url("/logout"), &[("csrf_token", &csrf)]).await;
    let r = alice.get(&absolute(base, &location(&r).unwrap())).await;
    let to_sp = location(&r).unwrap();
    assert!(to_sp.starts_with(SP_SLO), "{to_sp}");
    let ours = inflate_param(&to_sp, "SAMLRequest");
    let request_id = {
        let at = ours.find(" ID=\"").unwrap() + 5;
        ours[at..at + ours[at..].find('"').unwrap()].to_string()
    };
    let chain = query(&to_sp)["RelayState"].clone();

    for key in [None, Some(attacker_key())] {
        for redirect in [true, false] {
            let refused = count(&server, "saml.slo", "refused").await;
            let id = new_request_id();
            let xml = logout_response(base, &id, &request_id);
            let r = if redirect {
                alice
                    .get(&slo_redirect(
                        base,
                        MessageKind::Response,
                        &xml,
                        Some(&chain),
                        key,
                    ))
                    .await
            } else {
                let xml = match key {
                    Some(key) => sign_xml_with(&xml, &id, key),
                    None => xml,
                };
                post(
                    &alice,
                    &server.url("/saml/slo"),
                    &[("SAMLResponse", &b64(&xml)), ("RelayState", &chain)],
                )
                .await
            };
            refused_page(r).await;
            assert_audited(&server, "saml.slo", "refused", refused).await;
        }
    }
    // The chain is where it was: the SP's signed answer still finishes it.
    let xml = logout_response(base, &new_request_id(), &request_id);
    let url = slo_redirect(
        base,
        MessageKind::Response,
        &xml,
        Some(&chain),
        Some(sp_key()),
    );
    let r = alice.follow(base, &url).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("signed out"));
}

/// A LogoutRequest from an SP that is not registered, or that is not a LogoutRequest.
#[tokio::test]
async fn logout_requests_from_strangers_or_of_the_wrong_kind_are_refused() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let (alice, index) = alice_signed_in(&server).await;
    let id = new_request_id();
    let stranger = logout_request(base, &id, ALICE, Some(&index))
        .replace(&format!(">{SP_ENTITY}<"), ">https://stranger.test/sp<");
    let authn = authn_request(base, &new_request_id(), SP_ENTITY, SP_ACS, "");
    for xml in [stranger, authn] {
        let refused = count(&server, "saml.slo", "refused").await;
        let r = alice
            .get(&slo_redirect(
                base,
                MessageKind::Request,
                &xml,
                None,
                Some(sp_key()),
            ))
            .await;
        refused_page(r).await;
        assert_audited(&server, "saml.slo", "refused", refused).await;
        assert!(has_session(&server, &alice).await);
    }
}

/// The admin's explicit choice for an SP that cannot sign: unsigned logout is then accepted.
#[tokio::test]
async fn allow_unsigned_logout_accepts_the_sps_unsigned_logout() {
    let server = start(|c| {
        lenient(c);
        c.saml.service_providers[0].allow_unsigned_logout = true;
    })
    .await;
    let base = &server.base;
    let (alice, index) = alice_signed_in(&server).await;
    let id = new_request_id();
    let xml = logout_request(base, &id, ALICE, Some(&index));
    let r = alice
        .get(&slo_redirect(base, MessageKind::Request, &xml, None, None))
        .await;
    let answer = location(&r).unwrap();
    assert!(answer.starts_with(SP_SLO), "{answer}");
    assert!(inflate_param(&answer, "SAMLResponse").contains("status:Success"));
    assert!(!has_session(&server, &alice).await);
}

/// The plainest refusals: an unknown SP, and an unsigned request where signatures are required.
#[tokio::test]
async fn unknown_sps_and_unsigned_requests_get_an_error_page() {
    let server = start(|c| register_sp(c, false)).await;
    let base = &server.base;
    let id = new_request_id();
    let stranger = authn_request(base, &id, "https://unknown.test/sp", SP_ACS, "");
    let unsigned_id = new_request_id();
    let unsigned = authn_request(base, &unsigned_id, SP_ENTITY, SP_ACS, "");
    let attempts = [
        Browser::new()
            .get(&redirect_url(base, &stranger, None, true))
            .await,
        Browser::new()
            .get(&redirect_url(base, &unsigned, None, false))
            .await,
        post(
            &Browser::new(),
            &server.url("/saml/sso"),
            &[("SAMLRequest", &b64(&unsigned))],
        )
        .await,
        post(
            &Browser::new(),
            &server.url("/saml/sso"),
            &[("SAMLRequest", "not base64 !")],
        )
        .await,
    ];
    for r in attempts {
        refused_page(r).await;
    }
    assert_eq!(count(&server, "saml.sso", "refused").await, 4);
    id_still_free(&server, &unsigned_id).await;
}
