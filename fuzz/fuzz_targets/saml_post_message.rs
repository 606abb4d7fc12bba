//! The HTTP-POST binding reader: base64 → gate → AuthnRequest / LogoutRequest / LogoutResponse
//! intake, signature pre-checks and (when they pass) xmlsec, field readers, SP rules.
//! The input is the XML (encoded here), and is also tried as the form value itself.
#![no_main]

mod saml_fixtures;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use passerelle::saml::InboundResponse;
use passerelle::saml::{read_logout_response, verify_post_logout_request, verify_post_request};
use saml_fixtures::{now, policy, registry};

fn intake(form_value: &str) {
    let sps = registry().as_ref();
    let _ = verify_post_request(form_value, Some("rs"), policy(), sps, now());
    let _ = verify_post_logout_request(form_value, None, policy(), sps, now());
    let _ = read_logout_response(
        InboundResponse::Post {
            saml_response: form_value,
            relay_state: Some("rs"),
        },
        policy(),
        sps,
        now(),
    );
}

fuzz_target!(|data: &[u8]| {
    intake(&B64.encode(data));
    if let Ok(raw) = std::str::from_utf8(data) {
        intake(raw);
    }
});
