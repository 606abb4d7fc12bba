//! Writes the seed corpora of the SAML fuzz targets (`fuzz/seeds/saml_*`) from the same
//! builders and attacks the tests use:
//!
//! ```text
//! cargo test --lib saml::fuzz_seeds -- --ignored
//! ```
//!
//! A fresh SP key signs the seeds; only its certificate is kept (`fuzz/seeds/sp-signing.crt.pem`,
//! which the targets register), so signed seeds verify in the targets and no private key is
//! stored. The names and URLs here are the targets' (`fuzz/fuzz_targets/saml_fixtures.rs`).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::binding::{encode_redirect, MessageKind};
use super::dsig::sign_enveloped;
use super::response::status_element;
use super::testkit::{self, Keypair};
use super::writer::{El, Ns};
use super::{ns, SamlStatus};

const PUBLIC_URL: &str = "https://sso.fuzz.test";
const SP_STRICT: &str = "https://sp.fuzz.test/strict";
const SP_LENIENT: &str = "https://sp.fuzz.test/lenient";
const ISSUED: &str = "2025-06-01T09:59:50Z";

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn acs(sp: &str) -> String {
    format!("{sp}/acs")
}

fn authn_request(id: &str, sp: &str) -> El {
    El::new(Ns::Protocol, "AuthnRequest")
        .attr("ID", id)
        .attr("Version", "2.0")
        .attr("IssueInstant", ISSUED)
        .attr("Destination", format!("{PUBLIC_URL}/saml/sso"))
        .attr("AssertionConsumerServiceURL", acs(sp))
        .attr("ProtocolBinding", ns::BINDING_POST)
        .attr("ForceAuthn", "true")
        .child(El::new(Ns::Assertion, "Issuer").text(sp))
        .child(
            El::new(Ns::Protocol, "NameIDPolicy")
                .attr("Format", ns::NAMEID_EMAIL)
                .attr("AllowCreate", "true"),
        )
        .child(
            El::new(Ns::Protocol, "RequestedAuthnContext").child(
                El::new(Ns::Assertion, "AuthnContextClassRef")
                    .text("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"),
            ),
        )
}

fn logout_request(id: &str, sp: &str, name_id: &str) -> El {
    El::new(Ns::Protocol, "LogoutRequest")
        .attr("ID", id)
        .attr("Version", "2.0")
        .attr("IssueInstant", ISSUED)
        .attr("Destination", format!("{PUBLIC_URL}/saml/slo"))
        .attr("NotOnOrAfter", "2025-06-01T10:05:00Z")
        .child(El::new(Ns::Assertion, "Issuer").text(sp))
        .child(
            El::new(Ns::Assertion, "NameID")
                .attr("Format", ns::NAMEID_EMAIL)
                .text(name_id),
        )
        .child(El::new(Ns::Protocol, "SessionIndex").text("_session1"))
}

fn logout_response(id: &str, sp: &str) -> El {
    El::new(Ns::Protocol, "LogoutResponse")
        .attr("ID", id)
        .attr("Version", "2.0")
        .attr("IssueInstant", ISSUED)
        .attr("Destination", format!("{PUBLIC_URL}/saml/slo"))
        .attr("InResponseTo", "_ours")
        .child(El::new(Ns::Assertion, "Issuer").text(sp))
        .child(status_element(SamlStatus::SUCCESS, None))
}

fn signed(el: &El, key: &Keypair) -> String {
    let mut el = el.clone();
    sign_enveloped(&mut el, 1, &key.material()).unwrap();
    el.to_document()
}

fn canonical_signed(el: &El, key: &Keypair) -> String {
    let mut el = el.clone();
    sign_enveloped(&mut el, 1, &key.material()).unwrap();
    el.to_canonical()
}

/// The signature-wrapping forms of the hostile corpus, as documents.
fn wrapping_forms(key: &Keypair) -> Vec<(&'static str, String)> {
    let genuine = canonical_signed(&authn_request("_genuine", SP_STRICT), key);
    let start = genuine.find("<ds:Signature").unwrap();
    let end = genuine.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &genuine[start..end];
    let unsigned = genuine.replace(signature, "");
    let evil = |id: &str, inside: &str| {
        authn_request(id, SP_STRICT).to_canonical().replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer>{inside}"),
            1,
        )
    };
    let genuine_logout = canonical_signed(&logout_request("_gl", SP_STRICT, "bob@fuzz.test"), key);
    let mut forms = vec![
        (
            "wrap-extensions",
            evil(
                "_evil",
                &format!("<samlp:Extensions>{genuine}</samlp:Extensions>"),
            ),
        ),
        (
            "wrap-object",
            genuine.replacen(
                "</ds:Signature>",
                &format!("<ds:Object>{unsigned}</ds:Object></ds:Signature>"),
                1,
            ),
        ),
        (
            "wrap-duplicate-id",
            evil(
                "_genuine",
                &format!("{signature}<samlp:Extensions>{unsigned}</samlp:Extensions>"),
            ),
        ),
        (
            "wrap-sibling",
            evil("_evil", &format!("{signature}{unsigned}")),
        ),
        (
            "wrap-child",
            evil(
                "_genuine",
                &format!("<samlp:Extensions>{signature}</samlp:Extensions>"),
            ),
        ),
        (
            "wrap-two-signatures",
            genuine.replacen(
                "</samlp:AuthnRequest>",
                &format!("{signature}</samlp:AuthnRequest>"),
                1,
            ),
        ),
    ];
    for (i, spelling) in testkit::DSIG_NS_SPELLINGS.iter().enumerate() {
        let name: &'static str = ["ns-35", "ns-x23", "ns-x0023", "ns-colon", "ns-h"][i];
        forms.push((
            name,
            testkit::namespace_differential_forgery(
                &genuine_logout,
                spelling,
                authn_request("_forged", SP_STRICT),
            ),
        ));
    }
    forms
}

/// XML-level oddities: DTDs, entities, comments, CDATA, line ends, BOM, references.
fn xml_oddities() -> Vec<(&'static str, String)> {
    let request = authn_request("_odd", SP_LENIENT).to_canonical();
    let laughs: String = (1..=5)
        .map(|i| {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("&lol{};", i - 1).repeat(10)
            };
            format!("<!ENTITY lol{i} \"{prev}\">")
        })
        .collect();
    vec![
        (
            "dtd-xxe",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
                request.replacen("</saml:Issuer>", "&x;</saml:Issuer>", 1)
            ),
        ),
        (
            "dtd-laughs",
            format!("<!DOCTYPE r [{laughs}]><r>&lol5;</r>"),
        ),
        (
            "dtd-parameter-entity",
            format!(
                "<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/x.dtd\"> %p;]>{request}"
            ),
        ),
        (
            "comment-in-name-id",
            logout_request("_c", SP_LENIENT, "alice@fuzz.test")
                .to_canonical()
                .replace("alice@fuzz.test", "alice@fuzz.test<!---->.evil.test"),
        ),
        (
            "cdata-and-refs",
            request.replacen(
                &format!(">{SP_LENIENT}<"),
                &format!("><![CDATA[{SP_LENIENT}]]>&#x20;&amp;&lt;<"),
                1,
            ),
        ),
        ("crlf", request.replace("><", ">\r\n  <")),
        ("bom", format!("\u{feff}{request}")),
        (
            "ns-default-and-xml-id",
            format!(
                r#"<AuthnRequest xmlns="{}" xmlns:x="urn:x" ID="_d" x:ID="_d" xml:id="_d" Version="2.0" IssueInstant="{ISSUED}"><Issuer xmlns="{}">{SP_LENIENT}</Issuer></AuthnRequest>"#,
                ns::PROTOCOL,
                ns::ASSERTION
            ),
        ),
        (
            "attr-whitespace",
            "<r a=\"x\ty\r\nz\" b=\"&#9;&#13;&#10;\" xmlns:p=\"urn:p\" p:a=\"1\"/>".to_string(),
        ),
        (
            "pi-and-trailing",
            "<?xml version=\"1.0\"?><r><?pi x?></r><r/>".into(),
        ),
        ("xml-1.1", "<?xml version=\"1.1\"?><r>&#x85;</r>".into()),
    ]
}

fn sp_metadata(cert: &str, entity: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{entity}/slo" ResponseLocation="{entity}/slo/back"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{entity}/acs" index="0" isDefault="true"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="{entity}/artifact" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#
    )
}

fn redirect_query(
    kind: MessageKind,
    xml: &str,
    relay: Option<&str>,
    key: Option<&Keypair>,
) -> String {
    let url = encode_redirect(
        &format!("{PUBLIC_URL}/saml/slo"),
        kind,
        xml,
        relay,
        key.map(|k| k.material()).as_ref(),
    )
    .unwrap();
    url.split_once('?').unwrap().1.to_string()
}

struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    fn new(target: &str) -> Corpus {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        Corpus { dir }
    }

    fn put(&self, name: &str, content: impl AsRef<[u8]>) {
        std::fs::write(self.dir.join(name), content).unwrap();
    }
}

#[test]
#[ignore = "writes fuzz/seeds; run with --ignored to regenerate them"]
fn write_fuzz_seed_corpora() {
    let key = Keypair::generate("fuzz seed SP");
    let seeds = fuzz_dir().join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(seeds.join("sp-signing.crt.pem"), key.cert_pem()).unwrap();

    let messages: Vec<(&str, El, bool)> = vec![
        ("authn-strict", authn_request("_a1", SP_STRICT), true),
        ("authn-lenient", authn_request("_a2", SP_LENIENT), false),
        (
            "logout-request-strict",
            logout_request("_l1", SP_STRICT, "alice@fuzz.test"),
            true,
        ),
        (
            "logout-request-lenient",
            logout_request("_l2", SP_LENIENT, "alice@fuzz.test"),
            false,
        ),
        (
            "logout-response-strict",
            logout_response("_r1", SP_STRICT),
            true,
        ),
        (
            "logout-response-lenient",
            logout_response("_r2", SP_LENIENT),
            false,
        ),
    ];
    let documents: Vec<(String, String)> = messages
        .iter()
        .map(|(name, el, sign)| {
            let xml = if *sign {
                signed(el, &key)
            } else {
                el.to_document()
            };
            (name.to_string(), xml)
        })
        .chain(
            wrapping_forms(&key)
                .into_iter()
                .chain(xml_oddities())
                .map(|(n, x)| (n.to_string(), x)),
        )
        .collect();

    let gate = Corpus::new("saml_xml_gate");
    let post = Corpus::new("saml_post_message");
    let prechecks = Corpus::new("saml_dsig_prechecks");
    for (name, xml) in &documents {
        gate.put(&format!("{name}.xml"), xml);
        post.put(&format!("{name}.xml"), xml);
        prechecks.put(&format!("{name}.xml"), xml);
    }
    // The POST target also reads its input as the form value itself.
    post.put("form-value-base64", B64.encode(&documents[0].1));

    let redirect = Corpus::new("saml_redirect_message");
    for (name, el, sign) in &messages {
        let kind = if name.starts_with("logout-response") {
            MessageKind::Response
        } else {
            MessageKind::Request
        };
        let key = sign.then_some(&key);
        let xml = el.to_canonical();
        redirect.put(
            &format!("{name}.query"),
            redirect_query(kind, &xml, None, key),
        );
        redirect.put(
            &format!("{name}-relay.query"),
            redirect_query(kind, &xml, Some("/back?x=1&y=%2F"), key),
        );
        // Input that is not a query is deflated and sent as SAMLRequest/SAMLResponse.
        redirect.put(&format!("{name}.xml"), &xml);
    }
    for (name, xml) in xml_oddities() {
        redirect.put(&format!("{name}.xml"), xml);
    }
    redirect.put(
        "signature-params-only.query",
        "SAMLRequest=fZA&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=AAAA",
    );

    let metadata = Corpus::new("saml_sp_metadata");
    let cert_b64 = B64.encode(key.cert.to_der().unwrap());
    metadata.put("generated.xml", sp_metadata(&cert_b64, SP_STRICT));
    metadata.put(
        "entities-descriptor.xml",
        format!(
            r#"<md:EntitiesDescriptor xmlns:md="{}">{}</md:EntitiesDescriptor>"#,
            ns::METADATA,
            sp_metadata(&cert_b64, SP_LENIENT).replace(r#"<?xml version="1.0"?>"#, "")
        ),
    );
    metadata.put(
        "lucca-example.xml",
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lucca-sp-metadata.xml"))
            .unwrap(),
    );
}
