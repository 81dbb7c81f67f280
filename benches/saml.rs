//! AssumeRoleWithSAML cost against its floor, in one run: a Response with an RSA-2048 / SHA-256
//! signed Assertion (signed here by the Debian `xmlsec1` binary, as an IdP would), verified
//!   - `xmlsec_verify`: raw xmlsec signature verification of the document (samael's
//!     `verify_signed_xml`, no reduction, no checks): the floor;
//!   - `shape_check`: the strict pre-crypto check alone;
//!   - `assume_role_with_saml`: the whole STS action (form parsing, shape check, xmlsec
//!     verification and reduction, every assertion check, replay cache, trust policy, minting,
//!     XML), each iteration with a fresh replay cache so that the one document can be reused.
//!
//! The same Assertion encrypted for rolegate (AES-256-GCM, RSA-OAEP to an RSA-2048 key) inside a
//! Response signed by the IdP:
//!   - `verify_encrypted_blocking`: the Response's signature, decryption, the decrypted Assertion's
//!     shape check and its own signature (the blocking part of an encrypted assertion), against
//!     `verify_blocking` for the plain Response;
//!   - `assume_role_with_saml_encrypted`: the whole STS action with it.
//!
//! Hostile inputs through the whole action: a billion-laughs document and one with 80,000
//! attributes (both must be refused in well under 10 ms).
//!
//! `cargo bench --bench saml`

#[path = "support/saml_idp.rs"]
mod saml_idp;

use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509::X509};
use rolegate::app::App;
use rolegate::config::Config;
use rolegate::idp::saml::{self, shape};
use rolegate::query::QueryRequest;
use rolegate::store::MemoryStore;
use rolegate::web::query;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";
const PUBLIC: &str = "http://127.0.0.1:8080";
const IDP: &str = "https://idp.example.test/saml";

struct Fixture {
    dir: tempfile::TempDir,
    cert_der: Vec<u8>,
    signed: String,
    /// The same Assertion, encrypted for rolegate's key, in a Response signed by the IdP.
    encrypted: String,
    sp_key: PKey<openssl::pkey::Private>,
}

fn xmlsec_sign(dir: &Path, key: &Path, element: &str, doc: &str, name: &str) -> String {
    let src = dir.join(format!("{name}.template.xml"));
    let out = dir.join(format!("{name}.xml"));
    std::fs::write(&src, doc).expect("write template");
    let status = std::process::Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem"])
        .arg(key)
        .args(["--id-attr:ID", element, "--output"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("xmlsec1 (Debian package xmlsec1) is needed to sign the benchmark's Response");
    assert!(status.success(), "xmlsec1 --sign failed");
    std::fs::read_to_string(&out).expect("signed")
}

/// `assertion` as an `EncryptedAssertion` for `sp`: AES-256-GCM, the key wrapped with
/// RSA-OAEP-MGF1P (SHA-1), as an IdP encrypts it.
fn encrypt(assertion: &str, sp: &PKey<openssl::pkey::Private>) -> String {
    use openssl::symm::Cipher;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut key).expect("rand");
    openssl::rand::rand_bytes(&mut iv).expect("rand");
    let mut tag = [0u8; 16];
    let body = openssl::symm::encrypt_aead(
        Cipher::aes_256_gcm(),
        &key,
        Some(&iv),
        &[],
        assertion.as_bytes(),
        &mut tag,
    )
    .expect("gcm");
    let data = [&iv[..], &body, &tag].concat();
    let mut e = openssl::encrypt::Encrypter::new(sp).expect("encrypter");
    e.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
        .expect("oaep");
    let mut wrapped = vec![0u8; e.encrypt_len(&key).expect("len")];
    let n = e.encrypt(&key, &mut wrapped).expect("wrap");
    wrapped.truncate(n);
    format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        wrapped = b64.encode(wrapped),
        data = b64.encode(data)
    )
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, cert_der) = saml_idp::write_idp(dir.path(), IDP);
    let key_path = dir.path().join("idp.key.pem");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("pem")).expect("write key");
    let cert_b64 = base64::engine::general_purpose::STANDARD.encode(&cert_der);
    let now = chrono::Utc::now();
    let t = |s: i64| {
        (now + chrono::Duration::seconds(s)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let acs = format!("{PUBLIC}/saml/acs");
    let template = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="{now}" Destination="{acs}">"#,
            r#"<saml:Issuer>{idp}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"<saml:Assertion ID="_a1" Version="2.0" IssueInstant="{now}"><saml:Issuer>{idp}</saml:Issuer>"#,
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#_a1"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#,
            r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">alice@example.test</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{later}"><saml:AudienceRestriction><saml:Audience>{public}/saml/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{now}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            r#"<saml:AttributeStatement><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>arn:aws:iam::{account}:role/saml-admin,arn:aws:iam::{account}:saml-provider/corp</saml:AttributeValue></saml:Attribute>"#,
            r#"<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>alice</saml:AttributeValue></saml:Attribute>"#,
            r#"<saml:Attribute Name="groups"><saml:AttributeValue>engineers</saml:AttributeValue><saml:AttributeValue>staff</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"#,
            r#"</saml:Assertion></samlp:Response>"#
        ),
        now = t(0),
        later = t(7200),
        acs = acs,
        idp = IDP,
        cert = cert_b64,
        public = PUBLIC,
        account = ACCOUNT,
    );
    let signed = xmlsec_sign(
        dir.path(),
        &key_path,
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        &template,
        "signed",
    );
    // rolegate's decryption key, and the signed Assertion (standing alone) encrypted for it.
    let sp_key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("key");
    let mut b = X509::builder().expect("x509");
    b.set_pubkey(&sp_key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
        .expect("na");
    b.sign(&sp_key, MessageDigest::sha256()).expect("sign");
    std::fs::write(
        dir.path().join("sp-enc.key"),
        sp_key.private_key_to_pem_pkcs8().expect("pem"),
    )
    .expect("write key");
    std::fs::write(
        dir.path().join("sp-enc.crt"),
        b.build().to_pem().expect("pem"),
    )
    .expect("write cert");
    let start = signed.find("<saml:Assertion ").expect("assertion");
    let end = signed.find("</saml:Assertion>").expect("assertion end") + "</saml:Assertion>".len();
    let alone = signed[start..end].replacen(
        "<saml:Assertion ",
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
        1,
    );
    let outer = template[..template.find("<saml:Assertion ").expect("assertion")]
        .replace(r#"ID="_r1""#, r#"ID="_r2""#)
        .replacen(
            "<samlp:Status>",
            concat!(
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
                r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
                r##"<ds:Reference URI="#_r2"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"##,
                r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
                r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>"#,
                r#"<ds:SignatureValue/></ds:Signature><samlp:Status>"#
            ),
            1,
        );
    let encrypted = xmlsec_sign(
        dir.path(),
        &key_path,
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        &format!("{outer}{}</samlp:Response>", encrypt(&alone, &sp_key)),
        "encrypted",
    );
    Fixture {
        signed,
        encrypted,
        sp_key,
        dir,
        cert_der,
    }
}

fn config(dir: &Path) -> Config {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::{ACCOUNT}:saml-provider/corp"}},"Action":"sts:AssumeRoleWithSAML","Condition":{{"StringEquals":{{"saml:aud":"{PUBLIC}/saml/acs"}}}}}}]}}"#
    );
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC}"
[store]
kind = "memory"
[saml]
max_response_age_seconds = 3600
decryption_key_file = "{dir}/sp-enc.key"
decryption_cert_file = "{dir}/sp-enc.crt"
[[accounts]]
id = "{ACCOUNT}"
name = "bench"
[[saml_providers]]
name = "corp"
metadata_file = "{}"
[[roles]]
account = "{ACCOUNT}"
name = "saml-admin"
trust_policy = '''{trust}'''
"#,
        dir.join("idp.xml").display(),
        dir = dir.display()
    );
    Config::from_str_with_env(&dir.join("rolegate.toml"), &text, &[]).expect("config")
}

fn form(assertion_b64: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithSAML")
        .append_pair("Version", "2011-06-15")
        .append_pair(
            "RoleArn",
            &format!("arn:aws:iam::{ACCOUNT}:role/saml-admin"),
        )
        .append_pair(
            "PrincipalArn",
            &format!("arn:aws:iam::{ACCOUNT}:saml-provider/corp"),
        )
        .append_pair("SAMLAssertion", assertion_b64)
        .finish()
        .into_bytes()
}

async fn call(app: &Arc<App>, body: &[u8]) -> u16 {
    let method = http::Method::POST;
    let headers = http::HeaderMap::new();
    let r = query::handle(
        app,
        QueryRequest {
            method: &method,
            path: "/",
            query: "",
            headers: &headers,
            body,
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            secure_transport: false,
            request_id: "bench",
        },
    )
    .await;
    r.status().as_u16()
}

fn saml(c: &mut Criterion) {
    let f = fixture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = config(f.dir.path());
    let new_app = || {
        rt.block_on(App::build(
            cfg.clone(),
            Arc::new(MemoryStore::new()),
            Arc::new(rolegate::clock::SystemClock),
        ))
        .expect("app")
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&f.signed);
    let body = form(&b64);
    let app = new_app();
    assert_eq!(
        rt.block_on(call(&app, &body)),
        200,
        "the fixture is accepted"
    );
    assert_eq!(
        rt.block_on(call(&app, &body)),
        400,
        "and refused as a replay"
    );

    let enc_body = form(&base64::engine::general_purpose::STANDARD.encode(&f.encrypted));
    assert_eq!(
        rt.block_on(call(&new_app(), &enc_body)),
        200,
        "the encrypted fixture (the same assertion ID: a new app) is accepted"
    );

    let mut g = c.benchmark_group("saml");
    g.sample_size(50);
    let cert = CertificateDer::from(f.cert_der.clone());
    let certs = saml::VerifyingKeys::from_certificates(std::slice::from_ref(&f.cert_der));
    let keys = [f.sp_key.clone()];
    g.bench_function("verify_blocking", |b| {
        b.iter(|| saml::verify_blocking(black_box(&f.signed), &certs).expect("verifies"))
    });
    g.bench_function("verify_encrypted_blocking", |b| {
        b.iter(|| {
            saml::verify_encrypted_blocking(black_box(&f.encrypted), &certs, &keys)
                .expect("decrypts")
        })
    });
    g.bench_function("assume_role_with_saml_encrypted", |b| {
        b.iter_batched(
            new_app,
            |app| {
                let status = rt.block_on(call(&app, &enc_body));
                assert_eq!(status, 200);
                app
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("xmlsec_verify", |b| {
        b.iter(|| {
            Crypto::verify_signed_xml(black_box(f.signed.as_bytes()), &cert, Some("ID"))
                .expect("verifies")
        })
    });
    g.bench_function("shape_check", |b| {
        b.iter(|| shape::check(black_box(&f.signed)).expect("shape"))
    });
    g.bench_function("assume_role_with_saml", |b| {
        b.iter_batched(
            new_app,
            |app| {
                let status = rt.block_on(call(&app, &body));
                assert_eq!(status, 200);
                app
            },
            BatchSize::PerIteration,
        )
    });

    let laughs = format!(
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">{}]><samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">&i;</samlp:Response>",
        (b'b'..=b'i')
            .map(|c| format!("<!ENTITY {} \"{}\">", c as char, format!("&{};", (c - 1) as char).repeat(10)))
            .collect::<String>()
    );
    let many = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_r\"><x {}/></samlp:Response>",
        (0..80_000).map(|i| format!("a{i}=\"1\"")).collect::<Vec<_>>().join(" ")
    );
    // 80,000 attributes in as few bytes as the size limit allows: the shape check's own bound.
    let many_small = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_r\">{}</samlp:Response>",
        "<x a=\"\" b=\"\" c=\"\" d=\"\"/>".repeat(2_800)
    );
    for (name, doc) in [
        ("billion_laughs", laughs),
        ("80k_attributes", many),
        ("attributes_within_size", many_small),
    ] {
        let body = form(&base64::engine::general_purpose::STANDARD.encode(&doc));
        assert_eq!(rt.block_on(call(&app, &body)), 400, "{name} refused");
        g.bench_function(format!("refuse_{name}"), |b| {
            b.iter(|| rt.block_on(call(&app, black_box(&body))))
        });
        g.bench_function(format!("shape_check_{name}"), |b| {
            b.iter(|| shape::check(black_box(&doc)).is_err())
        });
    }
    g.finish();
}

criterion_group!(benches, saml);
criterion_main!(benches);
