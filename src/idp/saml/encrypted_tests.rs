//! Encrypted assertions through the whole verification pipeline, with real keys: Responses are
//! signed by xmlsec (samael's `sign_xml`) with an IdP key made here, assertions encrypted for
//! rolegate's decryption keys with RSA-OAEP and AES-GCM by OpenSSL. Every refusal is checked for
//! its reason and for leaving the replay cache untouched.

use super::decrypt::{self, testing, DecryptError};
use super::shape::{self, ShapeError};
use super::test_idp::{self, certificate, rsa_key, sign, template};
use super::*;
use crate::config::SpDecryption;
use crate::store::MemoryStore;
use openssl::hash::MessageDigest;
use openssl::symm::Cipher;

const T0: i64 = 1_800_000_000;
const IDP: &str = "https://idp.example/saml";
const ACS: &str = "https://sp.example/saml/acs";
const SP: &str = "https://sp.example/saml/metadata";
const OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const OAEP11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";

fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The keys of one test: the IdP's, rolegate's current and next decryption keys, and a key
/// rolegate does not have.
struct Keys {
    idp: PKey<Private>,
    current: PKey<Private>,
    next: PKey<Private>,
    other: PKey<Private>,
}

fn keys() -> Keys {
    Keys {
        idp: rsa_key(),
        current: rsa_key(),
        next: rsa_key(),
        other: rsa_key(),
    }
}

fn federation(k: &Keys, decryption: bool) -> SamlFederation {
    let clock = crate::clock::FixedClock::new(DateTime::from_timestamp(T0, 0).unwrap());
    let settings = test_idp::sp_settings(decryption.then(|| SpDecryption {
        keys_pkcs8_der: vec![
            k.current.private_key_to_pkcs8().unwrap(),
            k.next.private_key_to_pkcs8().unwrap(),
        ],
        certificates_der: vec![certificate(&k.current), certificate(&k.next)],
    }));
    let metadata = IdpMetadata {
        entity_id: IDP.into(),
        signing_certificates: vec![certificate(&k.idp)],
        sso_redirect: None,
        wants_signed_requests: false,
    };
    let provider = test_idp::provider(Some(metadata), &[]);
    SamlFederation::new(&settings, &[provider], Arc::new(clock))
}

/// A valid assertion (self-contained namespaces, as it is encrypted), with `inner` appended to its
/// children and, with `signed_by`, signed.
fn assertion(id: &str, audience: &str, inner: &str, signed_by: Option<&PKey<Private>>) -> String {
    let xml = format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}">"#,
            r#"<saml:Issuer>{idp}</saml:Issuer>{sig}"#,
            r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" NameQualifier="q">alice</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{later}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{now}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            r#"<saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue>engineers</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"#,
            r#"{inner}</saml:Assertion>"#
        ),
        id = id,
        now = iso(T0),
        later = iso(T0 + 300),
        idp = IDP,
        acs = ACS,
        aud = audience,
        inner = inner,
        sig = if signed_by.is_some() {
            template(id)
        } else {
            String::new()
        },
    );
    match signed_by {
        Some(k) => {
            // sign_xml gives a whole document: the element alone is what an IdP encrypts.
            let signed = sign(&xml, k);
            let start = signed.find("<saml:Assertion").unwrap();
            signed[start..].trim_end().to_string()
        }
        None => xml,
    }
}

/// A Response around `inner` (an `EncryptedAssertion` or anything), signed by `signed_by`.
fn response(inner: &str, signed_by: Option<&PKey<Private>>) -> String {
    let xml = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            r#"ID="r1" Version="2.0" IssueInstant="{now}" Destination="{acs}">"#,
            r#"<saml:Issuer>{idp}</saml:Issuer>{sig}"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"{inner}</samlp:Response>"#
        ),
        now = iso(T0),
        acs = ACS,
        idp = IDP,
        inner = inner,
        sig = if signed_by.is_some() {
            template("r1")
        } else {
            String::new()
        },
    );
    match signed_by {
        Some(k) => sign(&xml, k),
        None => xml,
    }
}

fn b64(xml: &str) -> String {
    STANDARD.encode(xml)
}

fn run(fed: &SamlFederation, store: &MemoryStore, xml: &str) -> Result<SamlIdentity> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fed.verify(store, "corp", &b64(xml), Use::Sts))
}

fn refused_with(r: Result<SamlIdentity>, reason: &str) {
    match r {
        Ok(i) => panic!("accepted ({}), expected: {reason}", i.assertion_id),
        Err(e) => assert!(
            e.to_string().contains(reason),
            "wanted '{reason}', got '{e}'"
        ),
    }
}

/// The assertion `a1` was not recorded by a refusal: a valid one with that ID still goes through.
fn still_fresh(fed: &SamlFederation, store: &MemoryStore, k: &Keys) {
    let good = response(
        &testing::encrypted_assertion(&assertion("a1", SP, "", None), &k.current),
        Some(&k.idp),
    );
    run(fed, store, &good).expect("the refused assertion's ID was not recorded");
}

#[test]
fn an_encrypted_assertion_in_a_signed_response_is_decrypted_and_checked_like_a_plain_one() {
    let k = keys();
    let fed = federation(&k, true);
    let store = MemoryStore::new();
    let doc = response(
        &testing::encrypted_assertion(&assertion("a1", SP, "", None), &k.current),
        Some(&k.idp),
    );
    let s = shape::check(&doc).expect("shape");
    assert!(s.encrypted && s.response_signed && s.assertion_id.is_none());
    let id = run(&fed, &store, &doc).expect("accepted");
    assert_eq!(id.assertion_id, "a1");
    assert_eq!(id.issuer, IDP);
    assert_eq!(id.name_id, "alice");
    assert_eq!(id.name_qualifier.as_deref(), Some("q"));
    assert_eq!(id.attributes["groups"], vec!["engineers"]);
    // Once only: the replay cache holds the decrypted assertion's ID.
    refused_with(run(&fed, &store, &doc), "already used");
}

#[test]
fn the_next_decryption_key_opens_it_too() {
    let k = keys();
    let fed = federation(&k, true);
    let store = MemoryStore::new();
    let doc = response(
        &testing::encrypted_assertion(&assertion("a2", SP, "", None), &k.next),
        Some(&k.idp),
    );
    assert_eq!(
        run(&fed, &store, &doc).expect("accepted").assertion_id,
        "a2"
    );
}

#[test]
fn oaep_with_sha256_mgf1_sha256_and_a_label_is_understood() {
    let k = keys();
    let fed = federation(&k, true);
    let store = MemoryStore::new();
    let plain = assertion("a3", SP, "", None);
    let (key, data) = testing::gcm(Cipher::aes_128_gcm(), plain.as_bytes());
    let wrapped = testing::oaep(
        &k.current,
        &key,
        MessageDigest::sha256(),
        MessageDigest::sha256(),
        Some(b"label"),
    );
    let method = format!(
        concat!(
            r#"<xenc:EncryptionMethod xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="{OAEP11}">"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<xenc11:MGF Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/>"#,
            r#"<xenc:OAEPparams>{label}</xenc:OAEPparams></xenc:EncryptionMethod>"#
        ),
        OAEP11 = OAEP11,
        label = STANDARD.encode(b"label")
    );
    let doc = response(
        &testing::element(
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            &STANDARD.encode(data),
            &testing::key_element(&method, &STANDARD.encode(&wrapped)),
        ),
        Some(&k.idp),
    );
    assert_eq!(
        run(&fed, &store, &doc).expect("accepted").assertion_id,
        "a3"
    );
    // The same wrapped key read with SHA-1 (no DigestMethod) does not open.
    let doc = response(
        &testing::element(
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            &STANDARD.encode(testing::gcm(Cipher::aes_128_gcm(), plain.as_bytes()).1),
            &testing::key_element(
                &format!(r#"<xenc:EncryptionMethod Algorithm="{OAEP11}"/>"#),
                &STANDARD.encode(&wrapped),
            ),
        ),
        Some(&k.idp),
    );
    refused_with(run(&fed, &store, &doc), "no EncryptedKey opens");
}

#[test]
fn an_assertion_signed_inside_its_encryption_must_verify() {
    let k = keys();
    let fed = federation(&k, true);
    let store = MemoryStore::new();
    let signed = assertion("a4", SP, "", Some(&k.idp));
    let doc = response(
        &testing::encrypted_assertion(&signed, &k.current),
        Some(&k.idp),
    );
    assert_eq!(
        run(&fed, &store, &doc).expect("accepted").assertion_id,
        "a4"
    );
    // Signed inside by someone else: the Response's good signature does not make it acceptable.
    let forged = assertion("a1", SP, "", Some(&k.other));
    let doc = response(
        &testing::encrypted_assertion(&forged, &k.current),
        Some(&k.idp),
    );
    refused_with(
        run(&fed, &store, &doc),
        "the decrypted Assertion's signature",
    );
    still_fresh(&fed, &store, &k);
}

#[test]
fn encrypted_refusals_give_the_reason_and_record_nothing() {
    let k = keys();
    let fed = federation(&k, true);
    let store = MemoryStore::new();
    let plain = assertion("a1", SP, "", None);
    let enc = testing::encrypted_assertion(&plain, &k.current);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unsigned Response",
            response(&enc, None),
            "an EncryptedAssertion must be inside a signed Response",
        ),
        (
            "Response signed by another key",
            response(&enc, Some(&k.other)),
            "signature does not verify",
        ),
        (
            // Signature first: what it holds is never decrypted.
            "another key's Response, encrypted for another key",
            response(
                &testing::encrypted_assertion(&plain, &k.other),
                Some(&k.other),
            ),
            "signature does not verify",
        ),
        (
            "encrypted for a key rolegate does not have",
            response(
                &testing::encrypted_assertion(&plain, &k.other),
                Some(&k.idp),
            ),
            "no EncryptedKey opens with rolegate's decryption key(s)",
        ),
        (
            "ciphertext changed, then signed by the IdP",
            response(&tamper(&enc), Some(&k.idp)),
            "the AES-GCM tag does not verify",
        ),
        (
            "ciphertext changed after signing",
            tamper(&response(&enc, Some(&k.idp))),
            "signature does not verify",
        ),
        (
            "two Assertions inside",
            response(
                &testing::encrypted_assertion(
                    &format!("{plain}{}", assertion("a9", SP, "", None)),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "decrypted assertion: not well-formed XML: more than one root element",
        ),
        (
            "an Assertion nested in the Advice",
            response(
                &testing::encrypted_assertion(
                    &assertion(
                        "a1",
                        SP,
                        &format!("<saml:Advice>{}</saml:Advice>", assertion("a9", SP, "", None)),
                        None,
                    ),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "decrypted assertion: a {urn:oasis:names:tc:SAML:2.0:assertion}Assertion element is nested in it",
        ),
        (
            "a DOCTYPE with entities inside",
            response(
                &testing::encrypted_assertion(
                    &format!("<!DOCTYPE a [<!ENTITY x \"admin\">]>{}", plain.replace("alice", "&x;")),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "decrypted assertion: DOCTYPE is not allowed",
        ),
        (
            "a comment inside the NameID",
            response(
                &testing::encrypted_assertion(
                    &plain.replace(">alice<", ">admin<!---->.evil<"),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "decrypted assertion: comments are not allowed",
        ),
        (
            "a Response inside instead of an Assertion",
            response(
                &testing::encrypted_assertion(&response(&plain, None), &k.current),
                Some(&k.idp),
            ),
            "decrypted assertion: root element is",
        ),
        (
            "an Assertion without an Issuer",
            response(
                &testing::encrypted_assertion(
                    &plain.replace(&format!("<saml:Issuer>{IDP}</saml:Issuer>"), ""),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "decrypted assertion: the Assertion has no Issuer",
        ),
        (
            "another Issuer inside than on the Response",
            response(
                &testing::encrypted_assertion(
                    &plain.replace(IDP, "https://evil.example/idp"),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "differs from the Assertion's",
        ),
        (
            "a namespace prefix bound only outside the ciphertext",
            response(
                &testing::encrypted_assertion(
                    &plain.replace(
                        r#" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion""#,
                        "",
                    ),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "decrypted assertion: unbound namespace prefix",
        ),
        (
            // The existing checks run on the decrypted assertion.
            "another audience",
            response(
                &testing::encrypted_assertion(
                    &assertion("a1", "https://other.example/sp", "", None),
                    &k.current,
                ),
                Some(&k.idp),
            ),
            "does not contain our entity id",
        ),
        (
            "AES-CBC content encryption",
            response(
                &enc.replace(AES256_GCM, "http://www.w3.org/2001/04/xmlenc#aes256-cbc"),
                Some(&k.idp),
            ),
            "content encryption http://www.w3.org/2001/04/xmlenc#aes256-cbc is not allowed",
        ),
        (
            "RSA 1.5 key transport",
            response(
                &enc.replace(OAEP_MGF1P, "http://www.w3.org/2001/04/xmlenc#rsa-1_5"),
                Some(&k.idp),
            ),
            "key transport http://www.w3.org/2001/04/xmlenc#rsa-1_5 is not allowed",
        ),
        (
            "the content key wrapped for AES-128 but used as AES-256",
            response(&short_key(&plain, &k.current), Some(&k.idp)),
            "the unwrapped content key is 16 bytes",
        ),
    ];
    for (name, doc, reason) in cases {
        match run(&fed, &store, &doc) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(
                e.to_string().contains(reason),
                "{name}: wanted '{reason}', got '{e}'"
            ),
        }
    }
    still_fresh(&fed, &store, &k);
}

/// The `EncryptedData`'s ciphertext with one byte of its body flipped.
fn tamper(xml: &str) -> String {
    let marker = "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>";
    let end = xml.find(marker).unwrap();
    let start = xml[..end].rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
    let mut data = STANDARD.decode(&xml[start..end]).unwrap();
    data[20] ^= 1;
    format!("{}{}{}", &xml[..start], STANDARD.encode(data), &xml[end..])
}

/// AES-128-GCM content announced as AES-256-GCM.
fn short_key(plain: &str, recipient: &PKey<Private>) -> String {
    let (key, data) = testing::gcm(Cipher::aes_128_gcm(), plain.as_bytes());
    let wrapped = testing::oaep(
        recipient,
        &key,
        MessageDigest::sha1(),
        MessageDigest::sha1(),
        None,
    );
    testing::element(
        AES256_GCM,
        &STANDARD.encode(data),
        &testing::key_element(
            &format!(r#"<xenc:EncryptionMethod Algorithm="{OAEP_MGF1P}"/>"#),
            &STANDARD.encode(wrapped),
        ),
    )
}

#[test]
fn without_a_decryption_key_an_encrypted_assertion_is_refused() {
    let k = keys();
    let fed = federation(&k, false);
    let store = MemoryStore::new();
    let doc = response(
        &testing::encrypted_assertion(&assertion("a1", SP, "", None), &k.current),
        Some(&k.idp),
    );
    refused_with(run(&fed, &store, &doc), "no decryption key is configured");
}

#[test]
fn decryption_refuses_bad_lengths_and_text_without_panicking() {
    let k = keys();
    let keys = [k.current.clone()];
    let wrap = |key: &[u8]| {
        STANDARD.encode(testing::oaep(
            &k.current,
            key,
            MessageDigest::sha1(),
            MessageDigest::sha1(),
            None,
        ))
    };
    let enc = |data: &[u8], wrapped: String| shape::Encryption {
        data_algorithm: AES256_GCM.into(),
        cipher_value: STANDARD.encode(data),
        keys: vec![shape::EncryptedKey {
            algorithm: OAEP_MGF1P.into(),
            cipher_value: wrapped,
            ..shape::EncryptedKey::default()
        }],
    };
    let key = [7u8; 32];
    for len in [0, 1, 11, 12, 27, 28] {
        assert_eq!(
            decrypt::decrypt(&enc(&vec![0u8; len], wrap(&key)), &keys),
            Err(DecryptError::CiphertextLength(len)),
            "{len} bytes"
        );
    }
    // A wrapped key of the wrong size for the RSA key, or not base64.
    assert_eq!(
        decrypt::decrypt(&enc(&[0u8; 64], STANDARD.encode([1u8; 10])), &keys),
        Err(DecryptError::NoKey)
    );
    assert_eq!(
        decrypt::decrypt(&enc(&[0u8; 64], "!!".into()), &keys),
        Err(DecryptError::Base64("the EncryptedKey's CipherValue"))
    );
    // Right key, bytes that are not UTF-8.
    let (content_key, data) = testing::gcm(Cipher::aes_256_gcm(), &[0xff, 0xfe, b'<', b'a']);
    assert_eq!(
        decrypt::decrypt(&enc(&data, wrap(&content_key)), &keys),
        Err(DecryptError::Utf8)
    );
    let (content_key, data) = testing::gcm(Cipher::aes_256_gcm(), b"<a/>");
    assert_eq!(
        decrypt::decrypt(&enc(&data, wrap(&content_key)), &keys).as_deref(),
        Ok("<a/>")
    );
    // Too long a ciphertext is refused before any RSA work.
    let huge = vec![0u8; decrypt::MAX_PLAINTEXT_BYTES + 29];
    assert_eq!(
        decrypt::decrypt(&enc(&huge, wrap(&key)), &keys),
        Err(DecryptError::CiphertextLength(huge.len()))
    );
    // No key at all.
    assert_eq!(
        decrypt::decrypt(&enc(&data, wrap(&content_key)), &[]),
        Err(DecryptError::NoKey)
    );
}

/// An encrypted Response (unsigned parts do not matter to the shape check's algorithm rules) with
/// `change` applied to its `EncryptedAssertion`.
fn shaped(change: impl Fn(String) -> String) -> std::result::Result<shape::Shape, ShapeError> {
    let k = rsa_key();
    let enc = change(testing::encrypted_assertion("<x/>", &k));
    let doc = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r1">{sig}"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"{enc}</samlp:Response>"#
        ),
        sig = template("r1").replace(
            "<ds:DigestValue></ds:DigestValue>",
            "<ds:DigestValue>AA</ds:DigestValue>"
        ),
        enc = enc
    );
    shape::check(&doc)
}

/// A change to an `EncryptedAssertion` element.
type Change = Box<dyn Fn(String) -> String>;

#[test]
fn the_encrypted_assertion_has_one_accepted_form() {
    let ok = shaped(|e| e).expect("the accepted form");
    let enc = ok.encryption.expect("parts");
    assert_eq!(enc.data_algorithm, AES256_GCM);
    assert_eq!(enc.keys.len(), 1);
    assert_eq!(enc.keys[0].algorithm, OAEP_MGF1P);
    // An EncryptedKey beside the EncryptedData counts as well.
    let beside = shaped(|e| {
        let start = e.find("<xenc:EncryptedKey>").unwrap();
        let end = e.find("</xenc:EncryptedKey>").unwrap() + "</xenc:EncryptedKey>".len();
        let key = e[start..end].to_string();
        let e = e.replace(&key, "");
        e.replace(
            "</xenc:EncryptedData>",
            &format!(
                "</xenc:EncryptedData>{}",
                key.replace(
                    "<xenc:EncryptedKey>",
                    r#"<xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">"#
                )
            ),
        )
    })
    .expect("key beside the data");
    assert_eq!(beside.encryption.unwrap().keys.len(), 1);

    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "CipherReference",
            Box::new(|e: String| {
                let end = e.rfind("<xenc:CipherData>").unwrap();
                format!(
                    "{}<xenc:CipherData><xenc:CipherReference URI=\"http://127.0.0.1:9/x\"/></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>",
                    &e[..end]
                )
            }),
            "CipherReference is not allowed",
        ),
        (
            "Type Content",
            Box::new(|e: String| e.replace("2001/04/xmlenc#Element", "2001/04/xmlenc#Content")),
            "EncryptedData Type http://www.w3.org/2001/04/xmlenc#Content is not",
        ),
        (
            "five EncryptedKeys",
            Box::new(|e: String| {
                let start = e.find("<xenc:EncryptedKey>").unwrap();
                let end = e.find("</xenc:EncryptedKey>").unwrap() + "</xenc:EncryptedKey>".len();
                let key = e[start..end].to_string();
                e.replace(&key, &key.repeat(5))
            }),
            "5 EncryptedKeys; at most 4",
        ),
        (
            "no EncryptedKey",
            Box::new(|e: String| {
                let start = e.find("<xenc:EncryptedKey>").unwrap();
                let end = e.find("</xenc:EncryptedKey>").unwrap() + "</xenc:EncryptedKey>".len();
                let key = e[start..end].to_string();
                e.replace(&key, "")
            }),
            "no EncryptedKey",
        ),
        (
            "an unknown element in EncryptedData",
            Box::new(|e: String| {
                e.replace("<ds:KeyInfo", "<xenc:EncryptionProperties/><ds:KeyInfo")
            }),
            "unexpected {http://www.w3.org/2001/04/xmlenc#}EncryptionProperties in EncryptedData",
        ),
        (
            "an MGF on rsa-oaep-mgf1p",
            Box::new(|e: String| {
                e.replace(
                    &format!(r#"<xenc:EncryptionMethod Algorithm="{OAEP_MGF1P}"/>"#),
                    &format!(r#"<xenc:EncryptionMethod Algorithm="{OAEP_MGF1P}"><xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/></xenc:EncryptionMethod>"#),
                )
            }),
            "unexpected {http://www.w3.org/2009/xmlenc11#}MGF in the key EncryptionMethod",
        ),
        (
            "an OAEP digest outside the list",
            Box::new(|e: String| {
                e.replace(
                    &format!(r#"<xenc:EncryptionMethod Algorithm="{OAEP_MGF1P}"/>"#),
                    &format!(r#"<xenc:EncryptionMethod Algorithm="{OAEP_MGF1P}"><ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="http://www.w3.org/2001/04/xmldsig-more#md5"/></xenc:EncryptionMethod>"#),
                )
            }),
            "RSA-OAEP digest http://www.w3.org/2001/04/xmldsig-more#md5 is not allowed",
        ),
        (
            "parameters on the content method",
            Box::new(|e: String| {
                e.replace(
                    &format!(r#"<xenc:EncryptionMethod Algorithm="{AES256_GCM}"/>"#),
                    &format!(r#"<xenc:EncryptionMethod Algorithm="{AES256_GCM}"><xenc:KeySize>128</xenc:KeySize></xenc:EncryptionMethod>"#),
                )
            }),
            "the content EncryptionMethod has parameters",
        ),
        (
            "an empty CipherValue",
            Box::new(|e: String| {
                let end = e.rfind("</xenc:CipherValue>").unwrap();
                let start =
                    e[..end].rfind("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
                format!("{}{}", &e[..start], &e[end..])
            }),
            "CipherData has no CipherValue",
        ),
    ];
    for (name, change, reason) in cases {
        match shaped(change) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(
                e.to_string().contains(reason),
                "{name}: wanted '{reason}', got '{e}'"
            ),
        }
    }
}

#[test]
fn the_sp_metadata_publishes_the_encryption_certificates_with_gcm_and_oaep_only() {
    let k = keys();
    let certs = vec![certificate(&k.current), certificate(&k.next)];
    let doc = metadata::sp_metadata(&metadata::SpDescription {
        entity_id: SP,
        acs_url: ACS,
        requests_signed: false,
        signing_certificates: &[],
        encryption_certificates: &certs,
    });
    assert_eq!(
        doc.matches(r#"<md:KeyDescriptor use="encryption">"#)
            .count(),
        2
    );
    for c in &certs {
        assert!(doc.contains(&STANDARD.encode(c)));
    }
    let methods: Vec<&str> = doc
        .split(r#"<md:EncryptionMethod Algorithm=""#)
        .skip(1)
        .map(|m| m.split('"').next().unwrap())
        .collect();
    let mut expected: Vec<&str> = shape::DATA_ENCRYPTION_METHODS
        .iter()
        .chain(shape::KEY_TRANSPORT_METHODS)
        .copied()
        .collect();
    expected.extend(expected.clone());
    assert_eq!(methods, expected);
    assert!(!doc.contains("cbc") && !doc.contains("rsa-1_5"));
}
