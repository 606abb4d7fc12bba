//! The HTTP-Redirect binding reader: query parsing, percent and base64 decoding, raw inflate
//! with its cap, the query signature, then the same intake as POST. An input that looks like a
//! query is used as the raw query; any input is also deflated and sent as the message.
#![no_main]

mod saml_fixtures;

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use passerelle::saml::InboundResponse;
use passerelle::saml::{
    parse_redirect_logout_request, parse_redirect_request, read_logout_response,
};
use saml_fixtures::{now, policy, registry};

fn intake(raw_query: &str) {
    let sps = registry().as_ref();
    let _ = parse_redirect_request(raw_query, policy(), sps, now());
    let _ = parse_redirect_logout_request(raw_query, policy(), sps, now());
    let _ = read_logout_response(
        InboundResponse::Redirect { raw_query },
        policy(),
        sps,
        now(),
    );
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        intake(query);
    }
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    if deflater.write_all(data).is_err() {
        return;
    }
    let Ok(compressed) = deflater.finish() else {
        return;
    };
    let message = percent_encode(&B64.encode(compressed));
    intake(&format!("SAMLRequest={message}&RelayState=rs"));
    intake(&format!("SAMLResponse={message}"));
});
