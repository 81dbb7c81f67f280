//! Feeds arbitrary text to the SAML shape check (`idp::saml::shape::check`), which sees every
//! Response before any signature code does, and the same bytes as base64 through `decode`. Neither
//! may panic; a document that passes must say what the check promises (an ID, a signature, an
//! assertion ID unless encrypted, the parts of an encrypted one) and pass again with the same
//! result. The same text goes through `check_decrypted`, the check of a decrypted assertion.

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
            let e = s.encryption.as_ref().expect("an encrypted assertion's parts");
            assert!(shape::DATA_ENCRYPTION_METHODS.contains(&e.data_algorithm.as_str()));
            assert!(!e.keys.is_empty() && e.keys.len() <= shape::MAX_ENCRYPTED_KEYS);
            assert!(e
                .keys
                .iter()
                .all(|k| shape::KEY_TRANSPORT_METHODS.contains(&k.algorithm.as_str())));
        }
        assert_eq!(shape::check(&text).ok(), Some(s));
    }
    let mut d = shape::Shape::default();
    if shape::check_decrypted(&text, &mut d).is_ok() {
        assert!(d.assertion_id.as_deref().is_some_and(|i| !i.is_empty()));
        assert!(d.assertion_issuer.as_deref().is_some_and(|i| !i.is_empty()));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(xml) = decode(&b64) {
        assert_eq!(xml.as_bytes(), data);
    }
});
