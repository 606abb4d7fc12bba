//! The SP metadata reader (what a `metadata_file` or `metadata_url` gives us).
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::saml::ServiceProvider;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sp) = ServiceProvider::from_metadata_xml(xml) {
        // What registers has an HTTP-POST ACS to answer at.
        assert!(sp.default_acs().is_some());
        let _ = sp.slo_endpoint();
        let _ = sp.requires_signed_requests(true);
    }
});
