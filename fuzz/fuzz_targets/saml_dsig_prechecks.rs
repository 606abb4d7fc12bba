//! The structural signature checks (anti-wrapping) on a message tree, before any cryptography.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::saml::dsig::{check_signature_structure, has_signature};
use passerelle::saml::xml::{parse_message, utf8_within};

const MAX: usize = 128 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = utf8_within(data, MAX) else {
        return;
    };
    let Ok(tree) = parse_message(text, MAX) else {
        return;
    };
    let strict = check_signature_structure(&tree, false);
    let lenient = check_signature_structure(&tree, true);
    // Allowing SHA-1 only ever accepts more.
    if strict.is_ok() {
        assert!(lenient.is_ok());
    }
    if lenient.is_ok() {
        assert!(has_signature(&tree));
    }
});
