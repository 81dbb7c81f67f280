//! The signature check itself, called directly (the shape check in front of it on the request
//! path already refuses some of these documents, so only here is the check alone seen to refuse
//! them): keys decoded once, several keys, algorithms, IDs, and the same signed content as samael's
//! own reduction.

use super::test_idp::{self, Claims, Signed};
use super::{verify_blocking, VerifyingKeys, ALLOWED_ALGORITHMS};
use openssl::pkey::{PKey, Private};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};

fn claims() -> Claims<'static> {
    Claims::new(
        "alice",
        "https://sp.example",
        "https://sp.example/acs",
        1_700_000_000,
    )
}

fn keys_of(keys: &[&PKey<Private>]) -> VerifyingKeys {
    let certs: Vec<Vec<u8>> = keys.iter().map(|k| test_idp::certificate(k)).collect();
    VerifyingKeys::from_certificates(&certs)
}

fn refusal(xml: &str, keys: &VerifyingKeys) -> String {
    match verify_blocking(xml, keys) {
        Ok(a) => panic!("verified, assertion {}", a.id),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn a_signature_verifies_with_any_of_the_keys_and_with_no_other() {
    let (idp, other) = (test_idp::rsa_key(), test_idp::rsa_key());
    for signed in [Signed::Response, Signed::Assertion] {
        let xml = test_idp::response(&claims(), &idp, signed);
        let a = verify_blocking(&xml, &keys_of(&[&idp])).expect("its own key");
        assert_eq!(a.id, claims().id);
        // The next key of a rotation verifies it too, whichever comes first.
        verify_blocking(&xml, &keys_of(&[&other, &idp])).expect("second of two keys");
        let why = refusal(&xml, &keys_of(&[&other]));
        assert!(
            why.contains("does not verify with the signer's keys"),
            "{why}"
        );
    }
}

#[test]
fn the_signed_content_is_what_samaels_pre_digest_reduction_gives() {
    let idp = test_idp::rsa_key();
    for signed in [Signed::Response, Signed::Assertion] {
        let xml = test_idp::response(&claims(), &idp, signed);
        let ours = rolegate_xmlsec::verify_pre_digest(&xml, &keys_of(&[&idp]), ALLOWED_ALGORITHMS)
            .expect("verifies");
        let theirs = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
            &xml,
            &[CertificateDer::from(test_idp::certificate(&idp))],
            ReduceMode::PreDigest,
            Some(ALLOWED_ALGORITHMS),
        )
        .expect("samael verifies");
        assert_eq!(ours, vec![theirs]);
    }
}

#[test]
fn a_certificate_that_does_not_decode_is_left_out_and_said() {
    let idp = test_idp::rsa_key();
    let xml = test_idp::response(&claims(), &idp, Signed::Response);
    let keys = VerifyingKeys::from_certificates(&[
        b"not a certificate".to_vec(),
        test_idp::certificate(&idp),
    ]);
    assert_eq!((keys.len(), keys.skipped().len()), (1, 1));
    assert!(
        keys.skipped()[0].starts_with("certificate 1: "),
        "{:?}",
        keys.skipped()
    );
    verify_blocking(&xml, &keys).expect("the certificate that decodes");
    let none = VerifyingKeys::from_certificates(&[b"junk".to_vec()]);
    let why = refusal(&xml, &none);
    assert!(
        why.contains("none of the signer's certificates decodes"),
        "{why}"
    );
}

/// The assertion of `claims()` signed by `key` with other signature and digest methods.
fn signed_with(key: &PKey<Private>, method: &str, digest: &str) -> String {
    let xml = test_idp::assertion(&claims(), true)
        .replace("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", method)
        .replace("http://www.w3.org/2001/04/xmlenc#sha256", digest);
    test_idp::sign(&xml, key)
}

#[test]
fn signature_and_digest_methods_outside_the_allow_list_are_refused_though_they_verify() {
    let idp = test_idp::rsa_key();
    let keys = keys_of(&[&idp]);
    let sha256 = "http://www.w3.org/2001/04/xmlenc#sha256";
    let rsa_sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    verify_blocking(&signed_with(&idp, rsa_sha256, sha256), &keys).expect("the allowed pair");
    let rsa_sha1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    let why = refusal(&signed_with(&idp, rsa_sha1, sha256), &keys);
    assert!(
        why.contains(&format!("signature method {rsa_sha1} is not allowed")),
        "{why}"
    );
    let sha1 = "http://www.w3.org/2000/09/xmldsig#sha1";
    let why = refusal(&signed_with(&idp, rsa_sha256, sha1), &keys);
    assert!(
        why.contains(&format!("digest method {sha1} is not allowed")),
        "{why}"
    );
}

#[test]
fn unsigned_altered_or_ambiguous_documents_are_refused() {
    let idp = test_idp::rsa_key();
    let keys = keys_of(&[&idp]);
    let why = refusal(&test_idp::assertion(&claims(), false), &keys);
    assert!(why.contains("the document is not signed"), "{why}");

    let xml = test_idp::response(&claims(), &idp, Signed::Assertion);
    let altered = xml.replace(">alice<", ">mallory<");
    assert_ne!(altered, xml);
    let why = refusal(&altered, &keys);
    assert!(why.contains("signature"), "{why}");

    // A second element with the signed element's ID: which one the Reference means is ambiguous.
    let twice = xml.replace(
        "<samlp:Status>",
        &format!(
            r#"<x:Extra xmlns:x="urn:x" ID="{}"/><samlp:Status>"#,
            claims().id
        ),
    );
    let why = refusal(&twice, &keys);
    assert!(why.contains("occurs more than once"), "{why}");
    let bad_id = xml.replace(
        "<samlp:Status>",
        r#"<x:Extra xmlns:x="urn:x" ID="1 2"/><samlp:Status>"#,
    );
    let why = refusal(&bad_id, &keys);
    assert!(why.contains("is not a valid XML ID"), "{why}");
}
