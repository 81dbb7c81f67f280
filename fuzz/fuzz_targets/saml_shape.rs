//! Feeds arbitrary text to the SAML shape check (`idp::saml::shape::check`), which sees every
//! Response before any signature code does, and the same bytes as base64 through `decode`. Neither
//! may panic; a document that passes must say what the check promises (an ID, a signature, an
//! assertion ID unless encrypted) and pass again with the same result.

#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use rolegate::idp::saml::{decode, shape};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = shape::check(&text) {
        assert!(!s.response_id.is_empty());
        assert!(s.response_signed || s.assertion_signed);
        assert_eq!(s.assertion_id.is_none(), s.encrypted);
        if s.encrypted {
            assert!(s.response_signed);
        }
        assert_eq!(shape::check(&text).ok(), Some(s));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(xml) = decode(&b64) {
        assert_eq!(xml.as_bytes(), data);
    }
});
