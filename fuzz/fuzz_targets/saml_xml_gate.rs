//! The strict XML gate and tree (`parse_strict`), and the message reader that also builds
//! libxml2's tree and requires the two to agree (`parse_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::saml::xml::{first_difference, parse_message, parse_strict, utf8_within};

const MAX: usize = 128 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = utf8_within(data, MAX) else {
        return;
    };
    let strict = parse_strict(text, MAX);
    if let Ok(message) = parse_message(text, MAX) {
        // What passes the reader passed the gate, and is the gate's tree.
        let strict = strict.expect("parse_message accepted what parse_strict refused");
        assert_eq!(first_difference(&strict, &message), None);
        let _ = message.text();
    }
});
