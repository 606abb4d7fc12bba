//! OIDC authorization and token parameters: parsing, client and redirect checks, PKCE, client
//! authentication. See `passerelle::oidc::fuzz` for the properties asserted.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    passerelle::oidc::fuzz::oidc_params(data);
});
