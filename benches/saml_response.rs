//! Signed SAML Responses per second: the key is parsed once (the keys room keeps it in memory)
//! and the XML is emitted already canonical, so a Response costs its RSA signatures.

use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use passerelle::config::KeysConfig;
use passerelle::identity::Claims;
use passerelle::keys::Keys;
use passerelle::saml::{
    attributes_from_claims, build_response, AttributeNameFormat, AuthnContextClass, Binding,
    NameIdFormat, ReplyTo, ResponseParams, SigningMaterial,
};

fn responses(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = Keys::load_or_generate(dir.path(), &KeysConfig::default()).expect("keys");
    let signer = keys.signer();
    let material = SigningMaterial::new(&signer.pkey, &signer.cert);
    let claims = Claims {
        subject: "alice@acme.test".into(),
        email: "alice@acme.test".into(),
        email_verified: true,
        given_name: Some("Alice".into()),
        family_name: Some("Martin".into()),
        employee_number: Some("00042".into()),
        department: Some("Engineering".into()),
        manager_email: Some("bob@acme.test".into()),
        roles: vec!["validateur_n1".into(), "collaborateur".into()],
        ..Default::default()
    };
    let attributes = attributes_from_claims(&claims, None);
    let reply = ReplyTo {
        sp_entity_id: "https://login.ilucca.net/sso-v2/saml".into(),
        destination: "https://login.ilucca.net/sso-v2/saml/acs".into(),
        binding: Binding::Post,
        in_response_to: Some("_req123".into()),
        relay_state: None,
    };
    let mut group = c.benchmark_group("saml_response");
    group.throughput(Throughput::Elements(1));
    for (name, sign_response, sign_assertion) in [
        ("assertion_signed", false, true),
        ("both_signed", true, true),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let params = ResponseParams {
                    idp_entity_id: "https://sso.acme.example/saml/metadata",
                    reply: &reply,
                    name_id: "alice@acme.test",
                    name_id_format: NameIdFormat::EmailAddress,
                    session_index: "sid-abc",
                    authn_instant: Utc::now(),
                    session_not_on_or_after: None,
                    authn_context: AuthnContextClass::PasswordProtectedTransport,
                    attributes: &attributes,
                    attribute_name_format: AttributeNameFormat::Unspecified,
                    now: Utc::now(),
                    assertion_ttl: Duration::from_secs(300),
                    not_before_skew: Duration::from_secs(60),
                    sign_response,
                    sign_assertion,
                    encrypt_for: None,
                };
                build_response(&params, &material).expect("response")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, responses);
criterion_main!(benches);
