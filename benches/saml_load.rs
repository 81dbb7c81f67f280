//! The helper of `scripts/load-saml`, the HTTP load benchmark of AssumeRoleWithSAML. Assertions are
//! single-use (the replay cache), so every request needs its own document: this program signs
//! them up front and measures the floor the same documents allow.
//!
//! - `generate N DIR PUBLIC_URL`: a new IdP key (RSA-2048) and certificate, `DIR/idp.xml` (its
//!   metadata) and `DIR/bodies.txt`: N AssumeRoleWithSAML form bodies, one per line, each with its
//!   own Response (IDs unique) whose Assertion is signed RSA-SHA256 / SHA-256 by xmlsec, as an IdP
//!   signs it. Signed on two threads.
//! - `floor DIR COUNT`: raw xmlsec verification of the first COUNT documents of `bodies.txt` on two
//!   threads (as many as the machine's cores the benchmark is about), in process, three ways:
//!   `verify_signed_xml` (parse, key from the certificate, verify the document's signature),
//!   the verification and reduction rolegate calls (`reduce_xml_to_signed_with_allowed_algorithms`
//!   to the pre-digest form), and the same with the reduction that matches the signed form back onto
//!   the document and prunes it (`ValidateAndMarkNoAncestors`); prints documents/s and the p50/p99 of
//!   one verification.
//! - `serve PORT DIR`: the HTTP floor: a server that takes the same form bodies, decodes the form and
//!   the base64, runs `verify_signed_xml` on the document with the IdP certificate and answers a
//!   fixed XML body. No shape check, no assertion checks, no replay cache, no credentials.
//!
//! `cargo bench --bench saml_load -- --bench MODE ARGS…` (scripts/load-saml runs it; `cargo test`
//! runs bench targets without `--bench`, and then it does nothing).

#[path = "support/saml_idp.rs"]
mod saml_idp;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use base64::Engine;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const ACCOUNT: &str = "111122223333";
const IDP: &str = "https://idp.example.test/saml";
const XML: &str = "<AssumeRoleWithSAMLResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithSAMLResult/></AssumeRoleWithSAMLResponse>";
const ALLOWED: &[AllowedSignatureAlgorithm] = &[AllowedSignatureAlgorithm::RsaSha256];

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The Response template (the Assertion carries an empty signature for xmlsec to fill in).
fn template(n: usize, run: &str, public: &str, cert_b64: &str) -> String {
    let now = chrono::Utc::now();
    let t = |s: i64| {
        (now + chrono::Duration::seconds(s)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let acs = format!("{public}/saml/acs");
    let aid = format!("_a{run}{n}");
    format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{run}{n}" Version="2.0" IssueInstant="{now}" Destination="{acs}">"#,
            r#"<saml:Issuer>{idp}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"<saml:Assertion ID="{aid}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{idp}</saml:Issuer>"#,
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#{aid}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#,
            r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">user{n}@example.test</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{later}"><saml:AudienceRestriction><saml:Audience>{public}/saml/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{now}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
            r#"<saml:AttributeStatement><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>arn:aws:iam::{account}:role/saml-load,arn:aws:iam::{account}:saml-provider/corp</saml:AttributeValue></saml:Attribute>"#,
            r#"<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>load{n}</saml:AttributeValue></saml:Attribute>"#,
            r#"<saml:Attribute Name="groups"><saml:AttributeValue>engineers</saml:AttributeValue><saml:AttributeValue>staff</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>"#,
            r#"</saml:Assertion></samlp:Response>"#
        ),
        run = run,
        n = n,
        aid = aid,
        now = t(0),
        later = t(7200),
        acs = acs,
        idp = IDP,
        cert = cert_b64,
        public = public,
        account = ACCOUNT,
    )
}

fn form(assertion_b64: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithSAML")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", &format!("arn:aws:iam::{ACCOUNT}:role/saml-load"))
        .append_pair(
            "PrincipalArn",
            &format!("arn:aws:iam::{ACCOUNT}:saml-provider/corp"),
        )
        .append_pair("SAMLAssertion", assertion_b64)
        .finish()
}

fn generate(n: usize, dir: &Path, public: &str) {
    let (key, cert_der) = saml_idp::write_idp(dir, IDP);
    let cert_b64 = b64().encode(&cert_der);
    std::fs::write(dir.join("idp.cert.der"), &cert_der).expect("write cert");
    let key_der = key.private_key_to_der().expect("key der");
    let mut r = [0u8; 6];
    openssl::rand::rand_bytes(&mut r).expect("rand");
    let run = hex::encode(r);
    let threads = 2;
    let start = Instant::now();
    let parts: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (key_der, run, cert_b64) = (&key_der, &run, &cert_b64);
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let signed =
                                Crypto::sign_xml(template(i, run, public, cert_b64), key_der)
                                    .expect("xmlsec signs");
                            form(&b64().encode(signed))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signer"))
            .collect()
    });
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(dir.join("bodies.txt")).expect("bodies.txt"));
    for i in 0..n {
        writeln!(out, "{}", parts[i % threads][i / threads]).expect("write");
    }
    out.flush().expect("flush");
    eprintln!(
        "signed {n} Responses in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// The decoded XML documents of the first `count` bodies.
fn documents(dir: &Path, count: usize) -> Vec<String> {
    std::fs::read_to_string(dir.join("bodies.txt"))
        .expect("bodies.txt")
        .lines()
        .take(count)
        .map(|line| decode_body(line.as_bytes()).expect("a body"))
        .collect()
}

fn decode_body(body: &[u8]) -> Option<String> {
    let a = form_urlencoded::parse(body)
        .find(|(k, _)| k == "SAMLAssertion")
        .map(|(_, v)| v.into_owned())?;
    String::from_utf8(b64().decode(a.trim()).ok()?).ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn floor(dir: &Path, count: usize) {
    let cert = CertificateDer::from(std::fs::read(dir.join("idp.cert.der")).expect("cert"));
    let docs = documents(dir, count);
    type Verify = fn(&str, &CertificateDer) -> bool;
    let ways: [(&str, Verify); 4] = [
        ("verify_signed_xml", |d, c| {
            Crypto::verify_signed_xml(d.as_bytes(), c, Some("ID")).is_ok()
        }),
        (
            "verify_pre_digest, keys decoded once (rolegate's call)",
            |d, c| {
                static KEYS: std::sync::OnceLock<rolegate_xmlsec::VerifyingKeys> =
                    std::sync::OnceLock::new();
                let keys = KEYS.get_or_init(|| {
                    rolegate_xmlsec::VerifyingKeys::from_certificates(&[c.der_data().to_vec()])
                });
                rolegate_xmlsec::verify_pre_digest(d, keys, ALLOWED).is_ok()
            },
        ),
        (
            "reduce_xml_to_signed, pre-digest (samael: the certificate decoded on every call)",
            |d, c| {
                Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                    d,
                    std::slice::from_ref(c),
                    ReduceMode::PreDigest,
                    Some(ALLOWED),
                )
                .is_ok()
            },
        ),
        (
            "reduce_xml_to_signed, matched back and pruned (ValidateAndMarkNoAncestors)",
            |d, c| {
                Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                    d,
                    std::slice::from_ref(c),
                    ReduceMode::ValidateAndMarkNoAncestors,
                    Some(ALLOWED),
                )
                .is_ok()
            },
        ),
    ];
    for (name, verify) in ways {
        // Warm-up.
        for d in docs.iter().take(50) {
            assert!(verify(d, &cert), "{name}: a document does not verify");
        }
        let start = Instant::now();
        let mut times: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let (docs, cert) = (&docs, &cert);
                    s.spawn(move || {
                        docs.iter()
                            .skip(t)
                            .step_by(2)
                            .map(|d| {
                                let one = Instant::now();
                                assert!(verify(d, cert));
                                one.elapsed().as_secs_f64() * 1000.0
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("verifier"))
                .collect()
        });
        let wall = start.elapsed().as_secs_f64();
        times.sort_by(f64::total_cmp);
        println!(
            "FLOOR {name}|{:.0}|{:.3}|{:.3}|{}",
            docs.len() as f64 / wall,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            docs.len()
        );
    }
}

fn serve(port: u16, dir: &Path) {
    let cert = Arc::new(CertificateDer::from(
        std::fs::read(dir.join("idp.cert.der")).expect("cert"),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = Router::new().route(
            "/",
            post(move |body: Bytes| {
                let cert = cert.clone();
                async move {
                    let ok = decode_body(&body).is_some_and(|doc| {
                        Crypto::verify_signed_xml(doc.as_bytes(), &cert, Some("ID")).is_ok()
                    });
                    if ok {
                        (axum::http::StatusCode::OK, XML)
                    } else {
                        (axum::http::StatusCode::BAD_REQUEST, "invalid")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        axum::serve(listener, app).await.expect("serve");
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(pos) = args.iter().position(|a| a == "--bench") else {
        return;
    };
    let rest = &args[pos + 1..];
    let usage = || -> ! {
        eprintln!(
            "usage: saml_load --bench generate N DIR PUBLIC_URL | floor DIR COUNT | serve PORT DIR"
        );
        std::process::exit(2)
    };
    match rest.first().map(String::as_str) {
        Some("generate") if rest.len() == 4 => generate(
            rest[1].parse().unwrap_or_else(|_| usage()),
            Path::new(&rest[2]),
            rest[3].trim_end_matches('/'),
        ),
        Some("floor") if rest.len() == 3 => floor(
            Path::new(&rest[1]),
            rest[2].parse().unwrap_or_else(|_| usage()),
        ),
        Some("serve") if rest.len() == 3 => serve(
            rest[1].parse().unwrap_or_else(|_| usage()),
            Path::new(&rest[2]),
        ),
        _ => usage(),
    }
}
