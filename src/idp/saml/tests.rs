//! Unit tests of the SAML pipeline's pure parts: the shape check (table-driven), metadata, the
//! AuthnRequest encoding and the identity helpers.

use super::metadata;
use super::shape::{self, ShapeError};
use super::*;
use crate::config::saml_metadata::{self, MetadataError};
use crate::config::{MetadataSource, SamlProvider, SamlSettings};

const SIG_RSA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

fn signature(id: &str) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="{alg}"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>"#
        ),
        alg = SIG_RSA256,
        id = id
    )
}

fn assertion(id: &str, signed: bool) -> String {
    format!(
        concat!(
            r#"<saml:Assertion ID="{id}" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">"#,
            r#"<saml:Issuer>https://idp.example/saml</saml:Issuer>{sig}"#,
            r#"<saml:Subject><saml:NameID NameQualifier="idp-q" SPNameQualifier="sp-q">alice@example.com</saml:NameID></saml:Subject>"#,
            r#"</saml:Assertion>"#
        ),
        id = id,
        sig = if signed { signature(id) } else { String::new() }
    )
}

fn response(inner: &str, response_sig: bool) -> String {
    format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="r1" Version="2.0" "#,
            r#"Destination="https://sp.example/saml/acs" InResponseTo="_req">"#,
            r#"<saml:Issuer>https://idp.example/saml</saml:Issuer>{sig}"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"{inner}</samlp:Response>"#
        ),
        sig = if response_sig {
            signature("r1")
        } else {
            String::new()
        },
        inner = inner
    )
}

fn good() -> String {
    response(&assertion("a1", true), false)
}

#[test]
fn a_well_shaped_response_passes_and_says_what_it_holds() {
    let s = shape::check(&good()).expect("valid shape");
    assert_eq!(s.response_id, "r1");
    assert_eq!(s.assertion_id.as_deref(), Some("a1"));
    assert_eq!(
        s.response_issuer.as_deref(),
        Some("https://idp.example/saml")
    );
    assert_eq!(
        s.assertion_issuer.as_deref(),
        Some("https://idp.example/saml")
    );
    assert_eq!(
        s.destination.as_deref(),
        Some("https://sp.example/saml/acs")
    );
    assert_eq!(s.in_response_to.as_deref(), Some("_req"));
    assert_eq!(s.status.as_deref(), Some(STATUS_SUCCESS));
    assert_eq!(s.name_qualifier.as_deref(), Some("idp-q"));
    assert_eq!(s.sp_name_qualifier.as_deref(), Some("sp-q"));
    assert!(s.assertion_signed && !s.response_signed && !s.encrypted);

    let both = response(&assertion("a1", true), true);
    let s = shape::check(&both).expect("both signed");
    assert!(s.assertion_signed && s.response_signed);
    let only_response = response(&assertion("a1", false), true);
    assert!(
        shape::check(&only_response)
            .expect("response signed")
            .response_signed
    );
}

/// Which error a case must give.
type Expectation = fn(&ShapeError) -> bool;

/// Each case: a change to the good document, and the error it must give.
#[test]
fn badly_shaped_documents_are_refused_with_a_precise_reason() {
    let g = good();
    let sig = signature("a1");
    let unsigned_a = assertion("a9", false);
    let cases: Vec<(&str, String, Expectation)> = vec![
        (
            "doctype",
            format!("<!DOCTYPE r [<!ENTITY x \"y\">]>{g}"),
            |e| matches!(e, ShapeError::Doctype),
        ),
        (
            "processing instruction",
            format!("<?foo bar?>{g}"),
            |e| matches!(e, ShapeError::ProcessingInstruction),
        ),
        (
            "comment in NameID",
            g.replace("alice@example.com", "alice@example.com<!---->.evil"),
            |e| matches!(e, ShapeError::Comment),
        ),
        (
            "CDATA",
            g.replace("alice@example.com", "<![CDATA[alice]]>"),
            |e| matches!(e, ShapeError::Cdata),
        ),
        (
            "custom entity",
            g.replace("alice@example.com", "&x;"),
            |e| matches!(e, ShapeError::Entity(n) if n == "x"),
        ),
        (
            "not well formed",
            g.replace("</samlp:Response>", ""),
            |e| matches!(e, ShapeError::Malformed(_)),
        ),
        (
            "root is an Assertion",
            assertion("a1", true).replace(
                "<saml:Assertion ",
                r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            ),
            |e| matches!(e, ShapeError::Root(_)),
        ),
        (
            "no assertion",
            response("", true),
            |e| matches!(e, ShapeError::NoAssertion),
        ),
        (
            "two assertions",
            response(&format!("{}{}", assertion("a1", true), unsigned_a), false),
            |e| matches!(e, ShapeError::Assertions(m) if m.contains("2 assertions")),
        ),
        (
            "assertion under Extensions",
            response(
                &format!(
                    "<samlp:Extensions>{}</samlp:Extensions>{}",
                    assertion("a1", true),
                    unsigned_a
                ),
                false,
            ),
            |e| matches!(e, ShapeError::Assertions(m) if m.contains("nested")),
        ),
        (
            "assertion wrapped in an assertion",
            response(
                &assertion("a9", false).replace(
                    "</saml:Assertion>",
                    &format!("{}</saml:Assertion>", assertion("a1", true)),
                ),
                false,
            ),
            |e| matches!(e, ShapeError::Assertions(m) if m.contains("nested")),
        ),
        (
            "unsigned",
            response(&unsigned_a, false),
            |e| matches!(e, ShapeError::Unsigned),
        ),
        (
            "signature inside the Subject",
            response(
                &assertion("a1", false).replace("<saml:Subject>", &format!("<saml:Subject>{sig}")),
                false,
            ),
            |e| matches!(e, ShapeError::SignaturePlacement(_)),
        ),
        (
            "two signatures on the assertion",
            response(
                &assertion("a1", true).replace("<saml:Subject>", &format!("{sig}<saml:Subject>")),
                false,
            ),
            |e| matches!(e, ShapeError::SignaturePlacement(m) if m.contains("two")),
        ),
        (
            "signature in another namespace",
            g.replace(
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
                r#"<ds:Signature xmlns:ds="urn:evil">"#,
            ),
            |e| matches!(e, ShapeError::SignaturePlacement(_)),
        ),
        (
            "ds:Object in the signature",
            g.replace(
                "</ds:SignatureValue>",
                "</ds:SignatureValue><ds:Object>x</ds:Object>",
            ),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("Object")),
        ),
        (
            "reference to another element",
            g.replace(r##"URI="#a1""##, r##"URI="#r1""##),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("Reference URI")),
        ),
        (
            "empty reference",
            g.replace(r##"URI="#a1""##, r#"URI="""#),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("Reference URI")),
        ),
        (
            "xpointer reference",
            g.replace(r##"URI="#a1""##, r##"URI="#xpointer(id('a1'))""##),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("Reference URI")),
        ),
        (
            "two references",
            {
                let r = &sig[sig.find("<ds:Reference").unwrap_or(0)..sig.find("</ds:SignedInfo>").unwrap_or(0)];
                g.replace("</ds:SignedInfo>", &format!("{r}</ds:SignedInfo>"))
            },
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("2 References")),
        ),
        (
            "rsa-sha1",
            g.replace(SIG_RSA256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("not allowed")),
        ),
        (
            "hmac",
            g.replace(SIG_RSA256, "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("not allowed")),
        ),
        (
            "sha1 digest",
            g.replace(
                "http://www.w3.org/2001/04/xmlenc#sha256",
                "http://www.w3.org/2000/09/xmldsig#sha1",
            ),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("digest")),
        ),
        (
            "c14n with comments",
            g.replacen(
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"/>"#,
                1,
            ),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("canonicalization")),
        ),
        (
            "xpath transform",
            g.replace(
                r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
                r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>1</ds:XPath></ds:Transform>"#,
            ),
            |e| matches!(e, ShapeError::Signature { why, .. } if why.contains("transforms")),
        ),
        (
            "duplicate IDs",
            response(&assertion("a1", true), false).replace(r#"ID="r1""#, r#"ID="a1""#),
            |e| matches!(e, ShapeError::DuplicateId(id) if id == "a1"),
        ),
        (
            "unbound prefix",
            g.replace("<saml:Subject>", "<x:y/><saml:Subject>"),
            |e| matches!(e, ShapeError::UnboundPrefix(_)),
        ),
        (
            "too deep",
            g.replace(
                "alice@example.com",
                &format!("{}{}", "<saml:A>".repeat(40), "</saml:A>".repeat(40)),
            ),
            |e| matches!(e, ShapeError::TooDeep),
        ),
        (
            "too many elements",
            g.replace("alice@example.com", &"<saml:A/>".repeat(shape::MAX_ELEMENTS)),
            |e| matches!(e, ShapeError::TooManyElements | ShapeError::TooLarge(_)),
        ),
        (
            "too many attributes",
            g.replace(
                "<saml:Subject>",
                &format!(
                    "<saml:Subject {}>",
                    (0..40).map(|i| format!("a{i}=\"x\"")).collect::<Vec<_>>().join(" ")
                ),
            ),
            |e| matches!(e, ShapeError::TooManyAttributes),
        ),
        (
            "too large",
            g.replace("alice@example.com", &"x".repeat(shape::MAX_XML_BYTES)),
            |e| matches!(e, ShapeError::TooLarge(_)),
        ),
        (
            "encrypted with rsa-1_5",
            response(
                &encrypted(
                    "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
                    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
                ),
                true,
            ),
            |e| matches!(e, ShapeError::Encryption(m) if m.contains("rsa-1_5")),
        ),
        (
            "encrypted with AES-CBC",
            response(
                &encrypted(
                    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
                    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
                ),
                true,
            ),
            |e| matches!(e, ShapeError::Encryption(m) if m.contains("aes256-cbc")),
        ),
        (
            "encrypted without a Response signature",
            response(
                &encrypted(
                    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
                    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
                ),
                false,
            ),
            |e| matches!(e, ShapeError::EncryptedUnsigned),
        ),
    ];
    for (name, doc, want) in cases {
        match shape::check(&doc) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(want(&e), "{name}: wrong error {e:?}"),
        }
    }
}

fn encrypted(key_alg: &str, data_alg: &str) -> String {
    format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">"#,
            r#"<xenc:EncryptionMethod Algorithm="{data}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{key}"/><xenc:CipherData><xenc:CipherValue>AA</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>AA</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        data = data_alg,
        key = key_alg
    )
}

#[test]
fn an_encrypted_assertion_with_oaep_and_gcm_passes_the_shape_check() {
    let doc = response(
        &encrypted(
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        ),
        true,
    );
    let s = shape::check(&doc).expect("allowed algorithms");
    assert!(s.encrypted && s.response_signed && s.assertion_id.is_none());
}

#[test]
fn hostile_documents_are_refused_quickly() {
    let laughs = format!(
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">{}]><r>&h;</r>",
        (b'b'..=b'h')
            .map(|c| {
                let prev = (c - 1) as char;
                format!(
                    "<!ENTITY {} \"{}\">",
                    c as char,
                    format!("&{prev};").repeat(10)
                )
            })
            .collect::<String>()
    );
    let many_attrs = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" {}/>",
        (0..80_000)
            .map(|i| format!("a{i}=\"1\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for doc in [laughs, many_attrs] {
        let start = std::time::Instant::now();
        assert!(shape::check(&doc).is_err());
        // A linear scan takes milliseconds; expanding entities or comparing attributes pairwise
        // would take far longer than this bound, which leaves room for a loaded machine.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
    assert!(matches!(
        decode(&"A".repeat(MAX_BASE64_CHARS + 4)),
        Err(SamlError::Invalid(m)) if m.contains("longer than")
    ));
}

fn certificate(bits: u32) -> Vec<u8> {
    use openssl::{pkey::PKey, rsa::Rsa};
    super::test_idp::certificate(&PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap())
}

fn idp_metadata(certs: &[Vec<u8>], key_use: &str) -> String {
    let keys: String = certs
        .iter()
        .map(|c| {
            format!(
                r#"<md:KeyDescriptor{key_use}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
{}
</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                STANDARD.encode(c)
            )
        })
        .collect();
    format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
            r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/saml">"#,
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}"#,
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/post"/>"#,
            r#"<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/redirect"/>"#,
            r#"</md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
        keys = keys
    )
}

#[test]
fn metadata_gives_the_entity_its_signing_certificates_and_sso_endpoint() {
    let (a, b) = (certificate(2048), certificate(2048));
    let m = saml_metadata::parse_idp(&idp_metadata(&[a.clone(), b.clone()], r#" use="signing""#))
        .expect("valid metadata");
    assert_eq!(m.entity_id, "https://idp.example/saml");
    assert_eq!(m.signing_certificates, vec![a.clone(), b]);
    assert_eq!(
        m.sso_redirect.as_deref(),
        Some("https://idp.example/redirect")
    );
    // A KeyDescriptor without `use` serves for signing too; an encryption-only key does not.
    assert!(saml_metadata::parse_idp(&idp_metadata(std::slice::from_ref(&a), "")).is_ok());
    assert!(matches!(
        saml_metadata::parse_idp(&idp_metadata(&[a], r#" use="encryption""#)),
        Err(MetadataError::NoSigningCertificate(_))
    ));
}

#[test]
fn metadata_without_a_usable_signing_certificate_is_refused() {
    assert!(matches!(
        saml_metadata::parse_idp(&idp_metadata(&[], "")),
        Err(MetadataError::NoSigningCertificate(e)) if e == "https://idp.example/saml"
    ));
    assert!(matches!(
        saml_metadata::parse_idp(&idp_metadata(&[certificate(1024)], "")),
        Err(MetadataError::BadCertificate { why, .. }) if why.contains("1024 bits")
    ));
    assert!(matches!(
        saml_metadata::parse_idp(&idp_metadata(&[b"not a certificate".to_vec()], "")),
        Err(MetadataError::BadCertificate { .. })
    ));
    assert!(matches!(
        saml_metadata::parse_idp(&format!(
            "<!DOCTYPE x []>{}",
            idp_metadata(&[certificate(2048)], "")
        )),
        Err(MetadataError::Doctype)
    ));
    assert!(matches!(
        saml_metadata::parse_idp(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>"#
        ),
        Err(MetadataError::NoIdp)
    ));
}

#[test]
fn sp_metadata_announces_entity_acs_and_formats() {
    let doc = metadata::sp_metadata(&metadata::SpDescription {
        entity_id: "https://sp.example/saml/metadata",
        acs_url: "https://sp.example/saml/acs?a=1&b=2",
        requests_signed: false,
        signing_certificates: &[],
        encryption_certificates: &[],
    });
    assert!(doc.contains(r#"entityID="https://sp.example/saml/metadata""#));
    assert!(doc.contains(r#"Location="https://sp.example/saml/acs?a=1&amp;b=2""#));
    assert!(doc.contains("nameid-format:persistent"));
    assert!(doc.contains(r#"WantAssertionsSigned="true""#));
}

/// The AuthnRequest `_abc` of the SP at `https://sp.example` to `destination`.
fn authn_request<'a>(
    destination: &'a str,
    force_authn: bool,
    authn_contexts: &'a [String],
) -> request::AuthnRequest<'a> {
    request::AuthnRequest {
        id: "_abc",
        issue_instant: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        destination,
        issuer: "https://sp.example/saml/metadata",
        acs_url: "https://sp.example/saml/acs",
        force_authn,
        authn_contexts,
    }
}

#[test]
fn the_authn_request_is_deflated_for_the_redirect_binding() {
    use std::io::Read;
    let req = authn_request("https://idp.example/sso?tenant=1", false, &[]);
    let url = req.redirect_url("relay&state").unwrap();
    assert!(url.starts_with("https://idp.example/sso?tenant=1&SAMLRequest="));
    let parsed = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["RelayState"], "relay&state");
    let raw = STANDARD.decode(&q["SAMLRequest"]).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut xml)
        .unwrap();
    assert_eq!(xml, req.to_xml());
    assert!(xml.contains(r#"ID="_abc""#) && xml.contains("2023-11-14T22:13:20Z"));
    assert!(!xml.contains("ForceAuthn") && !xml.contains("RequestedAuthnContext"));
}

#[test]
fn a_step_up_authn_request_forces_authentication_and_asks_for_the_mfa_classes() {
    let classes = vec![
        "urn:example:mfa".to_string(),
        "urn:example:<hw>&key".to_string(),
    ];
    let req = authn_request("https://idp.example/sso", true, &classes);
    let xml = req.to_xml();
    assert!(xml.contains(r#" ForceAuthn="true""#), "{xml}");
    let requested = concat!(
        r#"<samlp:RequestedAuthnContext Comparison="exact">"#,
        "<saml:AuthnContextClassRef>urn:example:mfa</saml:AuthnContextClassRef>",
        "<saml:AuthnContextClassRef>urn:example:&lt;hw&gt;&amp;key</saml:AuthnContextClassRef>",
        "</samlp:RequestedAuthnContext>"
    );
    // Schema order: NameIDPolicy, then RequestedAuthnContext, then the end of the request.
    assert!(
        xml.ends_with(&format!(
            r#"<samlp:NameIDPolicy AllowCreate="true"/>{requested}</samlp:AuthnRequest>"#
        )),
        "{xml}"
    );
}

#[test]
fn sub_type_names_the_common_formats_and_keeps_others_whole() {
    assert_eq!(
        sub_type(Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")),
        "persistent"
    );
    assert_eq!(
        sub_type(Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient")),
        "transient"
    );
    assert_eq!(
        sub_type(Some(
            "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
        )),
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
}

const T0: i64 = 1_800_000_000;

fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A verified assertion as samael hands it over, with its times and confirmation chosen.
fn verified(
    not_before: i64,
    not_after: i64,
    bearer_until: i64,
    method: &str,
    irt: Option<&str>,
) -> Assertion {
    let irt = irt
        .map(|i| format!(r#" InResponseTo="{i}""#))
        .unwrap_or_default();
    format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="a1" Version="2.0" IssueInstant="{now}">"#,
            r#"<saml:Issuer>https://idp.example/saml</saml:Issuer>"#,
            r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">alice</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="{method}"><saml:SubjectConfirmationData NotOnOrAfter="{bu}" Recipient="https://sp.example/saml/acs"{irt}/></saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{nb}" NotOnOrAfter="{na}"><saml:AudienceRestriction><saml:Audience>https://sp.example/saml/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{now}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:mfa</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            r#"<saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue>a</saml:AttributeValue><saml:AttributeValue>b</saml:AttributeValue></saml:Attribute>"#,
            r#"<saml:Attribute Name="groups"><saml:AttributeValue>c</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"#,
            r#"</saml:Assertion>"#
        ),
        now = iso(T0),
        nb = iso(not_before),
        na = iso(not_after),
        bu = iso(bearer_until),
        method = method,
        irt = irt,
    )
    .parse()
    .unwrap()
}

fn federation(
    skew: i64,
) -> (
    SamlFederation,
    crate::clock::FixedClock,
    SamlProvider,
    IdpMetadata,
) {
    let clock = crate::clock::FixedClock::new(DateTime::from_timestamp(T0, 0).unwrap());
    let settings = SamlSettings {
        max_clock_skew_seconds: skew,
        max_concurrent_verifications: 1,
        ..super::test_idp::sp_settings(None)
    };
    let provider = SamlProvider {
        source: MetadataSource::Url("https://idp.example/md".into()),
        ..super::test_idp::provider(None, &["urn:mfa"])
    };
    let meta = IdpMetadata {
        entity_id: "https://idp.example/saml".into(),
        signing_certificates: vec![],
        sso_redirect: None,
        wants_signed_requests: false,
    };
    (
        SamlFederation::new(
            &settings,
            std::slice::from_ref(&provider),
            Arc::new(clock.clone()),
        ),
        clock,
        provider,
        meta,
    )
}

fn raw_shape() -> shape::Shape {
    shape::Shape {
        response_id: "r1".into(),
        assertion_id: Some("a1".into()),
        status: Some(STATUS_SUCCESS.into()),
        assertion_signed: true,
        ..shape::Shape::default()
    }
}

#[test]
fn times_are_checked_with_the_configured_skew_and_no_more() {
    let (fed, _clock, p, m) = federation(60);
    let check = |a: &Assertion| {
        fed.check_assertion(
            &p,
            &m,
            &raw_shape(),
            a,
            Use::Sts,
            DateTime::from_timestamp(T0, 0).unwrap(),
        )
    };
    let bearer = BEARER;
    // Expired 59 s ago: within the skew.
    let id = check(&verified(T0 - 600, T0 - 59, T0 + 300, bearer, None)).expect("within skew");
    assert_eq!(
        id.replay_until,
        T0 + 300 + 60,
        "held until the later expiry plus the skew"
    );
    assert_eq!(
        id.attributes["groups"],
        vec!["a", "b", "c"],
        "multi-valued, merged"
    );
    assert_eq!(id.mfa_time, Some(T0), "the class is listed as MFA");
    // Expired exactly the skew ago, or more: refused.
    for na in [T0 - 60, T0 - 61, T0 - 3600] {
        assert!(
            matches!(
                check(&verified(T0 - 600, na, T0 + 300, bearer, None)),
                Err(SamlError::Expired(_))
            ),
            "{na}"
        );
    }
    // Not yet valid beyond the skew.
    assert!(check(&verified(T0 + 60, T0 + 600, T0 + 300, bearer, None)).is_ok());
    assert!(
        matches!(check(&verified(T0 + 61, T0 + 600, T0 + 300, bearer, None)), Err(SamlError::Expired(m)) if m.contains("not valid before"))
    );
    // The bearer confirmation's own expiry counts too.
    assert!(
        matches!(check(&verified(T0 - 10, T0 + 600, T0 - 61, bearer, None)), Err(SamlError::Expired(m)) if m.contains("bearer"))
    );
    // Holder-of-key alone is not enough.
    assert!(matches!(
        check(&verified(T0 - 10, T0 + 600, T0 + 300, "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key", None)),
        Err(SamlError::Invalid(m)) if m.contains("not bearer")
    ));
}

#[test]
fn browser_responses_must_answer_this_browsers_request() {
    let (fed, _clock, p, m) = federation(0);
    let now = DateTime::from_timestamp(T0, 0).unwrap();
    let a = verified(T0, T0 + 300, T0 + 300, BEARER, Some("_req1"));
    let unsolicited = verified(T0, T0 + 300, T0 + 300, BEARER, None);
    let run =
        |a: &Assertion, usage: Use<'_>| fed.check_assertion(&p, &m, &raw_shape(), a, usage, now);
    assert!(run(
        &a,
        Use::Browser {
            pending: Some("_req1")
        }
    )
    .is_ok());
    assert!(matches!(
        run(
            &a,
            Use::Browser {
                pending: Some("_req2")
            }
        ),
        Err(SamlError::Unsolicited(_))
    ));
    assert!(matches!(
        run(&a, Use::Browser { pending: None }),
        Err(SamlError::Unsolicited(_))
    ));
    assert!(
        matches!(run(&unsolicited, Use::Browser { pending: None }), Err(SamlError::Unsolicited(m)) if m.contains("IdP-initiated"))
    );
    assert!(matches!(
        run(
            &unsolicited,
            Use::Browser {
                pending: Some("_req1")
            }
        ),
        Err(SamlError::Unsolicited(_))
    ));
    // The STS path answers no request of ours: InResponseTo does not matter there.
    assert!(run(&a, Use::Sts).is_ok() && run(&unsolicited, Use::Sts).is_ok());
    let mut open = p.clone();
    open.allow_idp_initiated = true;
    assert!(fed
        .check_assertion(
            &open,
            &m,
            &raw_shape(),
            &unsolicited,
            Use::Browser { pending: None },
            now
        )
        .is_ok());
    // A Response-level InResponseTo that differs from the signed one is refused.
    let mut s = raw_shape();
    s.in_response_to = Some("_other".into());
    assert!(matches!(
        fed.check_assertion(&p, &m, &s, &a, Use::Sts, now),
        Err(SamlError::Invalid(_))
    ));
}

#[test]
fn status_destination_and_issuer_are_checked() {
    let (fed, _clock, p, m) = federation(0);
    let now = DateTime::from_timestamp(T0, 0).unwrap();
    let a = verified(T0, T0 + 300, T0 + 300, BEARER, None);
    let with = |f: fn(&mut shape::Shape)| {
        let mut s = raw_shape();
        f(&mut s);
        fed.check_assertion(&p, &m, &s, &a, Use::Sts, now)
    };
    assert!(with(|_| {}).is_ok());
    assert!(
        matches!(with(|s| s.status = Some("urn:oasis:names:tc:SAML:2.0:status:Requester".into())), Err(SamlError::Invalid(m)) if m.contains("not Success"))
    );
    assert!(matches!(
        with(|s| s.status = None),
        Err(SamlError::Invalid(_))
    ));
    assert!(
        matches!(with(|s| s.destination = Some("https://evil/acs".into())), Err(SamlError::Invalid(m)) if m.contains("Destination"))
    );
    assert!(with(|s| s.destination = Some("https://sp.example/saml/acs".into())).is_ok());
    assert!(matches!(
        with(|s| s.assertion_id = Some("a2".into())),
        Err(SamlError::Invalid(_))
    ));
    let mut other = m.clone();
    other.entity_id = "https://other.example".into();
    assert!(fed
        .check_assertion(&p, &other, &raw_shape(), &a, Use::Sts, now)
        .is_err());
}

#[test]
fn a_signed_redirect_request_is_signed_over_the_encoded_request_relay_state_and_algorithm() {
    use openssl::{hash::MessageDigest, pkey::PKey, rsa::Rsa, sign::Verifier};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let der = key.private_key_to_pkcs8().unwrap();
    let req = authn_request("https://idp.example/sso?tenant=1", false, &[]);
    let url = req.redirect_url_signed("relay&state", Some(&der)).unwrap();
    let query = url.split_once('?').unwrap().1;
    let (signed, sig) = query.rsplit_once("&Signature=").unwrap();
    assert!(signed.starts_with("tenant=1&SAMLRequest="), "{signed}");
    let signed = signed.strip_prefix("tenant=1&").unwrap();
    assert!(
        signed.ends_with("&RelayState=relay%26state&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"),
        "{signed}"
    );
    let sig: String = url::form_urlencoded::parse(format!("s={sig}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    let sig = STANDARD.decode(sig).unwrap();
    let verify = |data: &[u8]| {
        let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        v.update(data).unwrap();
        v.verify(&sig).unwrap()
    };
    assert!(verify(signed.as_bytes()));
    let mut tampered = signed.as_bytes().to_vec();
    tampered[30] ^= 1;
    assert!(!verify(&tampered), "one flipped byte fails");
    // Without a key: the same request, no SigAlg, no Signature.
    let plain = req.redirect_url("relay&state").unwrap();
    assert!(!plain.contains("SigAlg") && !plain.contains("Signature"));
}
