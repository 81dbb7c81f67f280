//! A throwaway SAML identity provider for the SAML benches: an RSA-2048 key, a self-signed
//! certificate (SHA-256, 30 days) and its metadata (`idp.xml`, entity `entity_id`) written to a
//! directory.

use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::{asn1::Asn1Time, hash::MessageDigest, rsa::Rsa, x509::X509};
use std::path::Path;

/// The key and the DER certificate of an IdP whose metadata is now `dir/idp.xml`.
pub fn write_idp(dir: &Path, entity_id: &str) -> (PKey<Private>, Vec<u8>) {
    let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut b = X509::builder().expect("x509");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
        .expect("na");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert_der = b.build().to_der().expect("der");
    let cert_b64 = base64::engine::general_purpose::STANDARD.encode(&cert_der);
    std::fs::write(
        dir.join("idp.xml"),
        format!(
            concat!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{idp}">"#,
                r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing">"#,
                r#"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"#,
                r#"</md:KeyDescriptor></md:IDPSSODescriptor></md:EntityDescriptor>"#
            ),
            idp = entity_id,
            cert = cert_b64
        ),
    )
    .expect("write metadata");
    (key, cert_der)
}
