//! AWS's own SigV4 test suite (`tests/aws-signing-test-suite/v4` of awslabs/aws-c-auth, vendored in
//! `testdata/aws-c-auth-v4` with its licence and a README naming the commit).
//!
//! For every vector signed with path normalisation (what rolegate verifies), in the header and the
//! presigned form: the canonical request and the string to sign rolegate computes from the signed
//! request are the vector's files, byte for byte, and the signed request verifies with the vector's
//! credentials at the vector's time. The vectors rolegate must not accept are checked to be refused
//! with the reason the README gives; the unnormalised ones are checked under S3's path rule instead.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::super::canonical::{canonical_request_with_rule, hmac, signing_key};
use super::super::{
    canonical_request, parse_authorization, sha256_hex, string_to_sign, verify, AuthForm, PathRule,
    SigV4Error, VerifyOptions,
};
use super::support::OwnedRequest;

/// Signed with path normalisation and double URI encoding, as for every service but S3: rolegate
/// computes the same canonical request and accepts them.
const NORMALISED: [&str; 31] = [
    "get-header-key-duplicate",
    "get-header-value-multiline",
    "get-header-value-order",
    "get-header-value-trim",
    "get-relative-normalized",
    "get-relative-relative-normalized",
    "get-slash-dot-slash-normalized",
    "get-slash-normalized",
    "get-slash-pointless-dot-normalized",
    "get-slashes-normalized",
    "get-space-normalized",
    "get-unreserved",
    "get-utf8",
    "get-vanilla",
    "get-vanilla-empty-query-key",
    "get-vanilla-query",
    "get-vanilla-query-order-encoded",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query",
    "get-vanilla-with-session-token",
    "post-header-key-case",
    "post-header-key-sort",
    "post-header-value-case",
    "post-sts-header-before",
    "post-vanilla",
    "post-vanilla-empty-query-value",
    "post-vanilla-query",
    "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
    // `normalize: false`, but the path has no empty or dot segment: the same canonical request.
    "get-space-unnormalized",
];

/// Signed without path normalisation (`normalize: false`): the signer kept empty and dot segments
/// that rolegate removes for the scope's service (`service`, not S3). Refused as a signature
/// mismatch; their paths hold nothing to encode, so under S3's path rule (the path as sent) the
/// canonical requests are the vectors'.
const UNNORMALISED: [&str; 6] = [
    "get-relative-relative-unnormalized",
    "get-relative-unnormalized",
    "get-slash-dot-slash-unnormalized",
    "get-slash-pointless-dot-unnormalized",
    "get-slash-unnormalized",
    "get-slashes-unnormalized",
];

/// Signed with `omit_session_token`: the security token was added after signing, unsigned.
const TOKEN_ADDED_AFTER_SIGNING: &str = "post-sts-header-after";

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sigv4/testdata/aws-c-auth-v4")
}

struct Vector {
    name: String,
    dir: PathBuf,
    access_key_id: String,
    secret: String,
    token: Option<String>,
    region: String,
    service: String,
    time: DateTime<Utc>,
    expires_seconds: u32,
}

impl Vector {
    fn load(name: &str) -> Self {
        let dir = suite_dir().join(name);
        let context: Value = serde_json::from_str(&read(&dir.join("context.json"))).unwrap();
        let text = |v: &Value| v.as_str().unwrap().to_owned();
        let credentials = &context["credentials"];
        Vector {
            name: name.to_owned(),
            access_key_id: text(&credentials["access_key_id"]),
            secret: text(&credentials["secret_access_key"]),
            token: credentials["token"].as_str().map(str::to_owned),
            region: text(&context["region"]),
            service: text(&context["service"]),
            time: DateTime::parse_from_rfc3339(context["timestamp"].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc),
            expires_seconds: context["expiration_in_seconds"]
                .as_u64()
                .unwrap()
                .try_into()
                .unwrap(),
            dir,
        }
    }

    /// `<form>-<what>.txt` of the vector, e.g. `header-canonical-request.txt`.
    fn file(&self, form: AuthForm, what: &str) -> String {
        let prefix = match form {
            AuthForm::Header => "header",
            AuthForm::Presigned => "query",
        };
        read(&self.dir.join(format!("{prefix}-{what}.txt")))
    }

    fn signed_request(&self, form: AuthForm) -> OwnedRequest {
        parse_http(&self.file(form, "signed-request"))
    }

    fn check(&self, request: &OwnedRequest, secret: &str) -> super::super::Result<()> {
        let req = request.as_signed();
        let auth = parse_authorization(&req)?;
        let regions = [self.region.clone()];
        let opts = VerifyOptions {
            service: &self.service,
            regions: &regions,
            max_skew: Duration::minutes(15),
            allow_unsigned_payload: false,
        };
        verify(&req, &auth, secret, self.time, &opts)
    }

    /// Canonical request and string to sign as rolegate computes them from the signed request.
    fn computed(&self, form: AuthForm) -> (String, String) {
        let request = self.signed_request(form);
        let req = request.as_signed();
        let auth =
            parse_authorization(&req).unwrap_or_else(|e| panic!("{} {form:?}: {e}", self.name));
        assert_eq!(auth.form, form, "{}", self.name);
        let creq = canonical_request(&req, &auth);
        let sts = string_to_sign(&auth, &creq);
        (
            String::from_utf8(creq).unwrap(),
            String::from_utf8(sts).unwrap(),
        )
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A request file of the suite as a server receives it: request line, `Name:value` lines, a blank
/// line, the body. Header values lose their surrounding spaces as an HTTP parser strips them, and a
/// continuation line (obsolete line folding) is joined to the value with a space, as RFC 9112
/// §5.2 lets a recipient do. The request target is taken as it stands, raw space and UTF-8 included.
fn parse_http(text: &str) -> OwnedRequest {
    let (head, body) = text
        .split_once("\n\n")
        .unwrap_or((text.trim_end_matches('\n'), ""));
    let mut lines = head.split('\n');
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));

    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().expect("a continuation follows a field");
            last.1.push(' ');
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim_matches([' ', '\t'])).unwrap(),
        );
    }
    OwnedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

const FORMS: [AuthForm; 2] = [AuthForm::Header, AuthForm::Presigned];

#[test]
fn every_vector_of_the_suite_is_classified() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(suite_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    let classified: BTreeSet<String> = NORMALISED
        .iter()
        .chain(UNNORMALISED.iter())
        .chain([TOKEN_ADDED_AFTER_SIGNING].iter())
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(classified.len(), NORMALISED.len() + UNNORMALISED.len() + 1);
    assert_eq!(on_disk, classified);
}

#[test]
fn canonical_requests_and_strings_to_sign_are_the_suites() {
    for name in NORMALISED {
        let vector = Vector::load(name);
        for form in FORMS {
            let (creq, sts) = vector.computed(form);
            assert_eq!(
                creq,
                vector.file(form, "canonical-request"),
                "{name} {form:?}: canonical request"
            );
            assert_eq!(
                sts,
                vector.file(form, "string-to-sign"),
                "{name} {form:?}: string to sign"
            );
        }
    }
}

#[test]
fn signed_requests_of_the_suite_verify_at_their_time() {
    for name in NORMALISED {
        let vector = Vector::load(name);
        for form in FORMS {
            let request = vector.signed_request(form);
            let req = request.as_signed();
            let auth = parse_authorization(&req).unwrap();
            assert_eq!(auth.access_key_id, vector.access_key_id, "{name}");
            assert_eq!(auth.signature, vector.file(form, "signature"), "{name}");
            assert_eq!(auth.request_time, vector.time, "{name}");
            assert_eq!(auth.security_token.as_deref(), vector.token.as_deref());
            if form == AuthForm::Presigned {
                assert_eq!(auth.expires_seconds, Some(vector.expires_seconds));
            }
            vector
                .check(&request, &vector.secret)
                .unwrap_or_else(|e| panic!("{name} {form:?}: {e}"));
        }
    }
}

#[test]
fn signed_requests_of_the_suite_fail_with_another_secret_or_once_expired() {
    for name in NORMALISED {
        let vector = Vector::load(name);
        for form in FORMS {
            let request = vector.signed_request(form);
            let mut secret = vector.secret.clone();
            secret.push('x');
            assert_eq!(
                vector.check(&request, &secret),
                Err(SigV4Error::SignatureMismatch),
                "{name} {form:?}"
            );
            let mut changed = request.clone();
            changed.path.push('x');
            assert_eq!(
                vector.check(&changed, &vector.secret),
                Err(SigV4Error::SignatureMismatch),
                "{name} {form:?} path"
            );
        }
        let presigned = vector.signed_request(AuthForm::Presigned);
        let late = Vector {
            time: vector.time + Duration::seconds(i64::from(vector.expires_seconds) + 1),
            ..Vector::load(name)
        };
        assert!(
            matches!(
                late.check(&presigned, &vector.secret),
                Err(SigV4Error::Expired { .. })
            ),
            "{name}"
        );
    }
}

#[test]
fn unnormalised_vectors_are_refused_as_rolegate_normalises_the_path() {
    for name in UNNORMALISED {
        let vector = Vector::load(name);
        for form in FORMS {
            let (creq, _) = vector.computed(form);
            let expected = vector.file(form, "canonical-request");
            // Only the path line differs: rolegate normalised what the signer kept.
            let ours: Vec<&str> = creq.split('\n').collect();
            let theirs: Vec<&str> = expected.split('\n').collect();
            assert_ne!(ours[1], theirs[1], "{name} {form:?}");
            assert_eq!(ours[..1], theirs[..1], "{name} {form:?}");
            assert_eq!(ours[2..], theirs[2..], "{name} {form:?}");
            assert_eq!(
                vector.check(&vector.signed_request(form), &vector.secret),
                Err(SigV4Error::SignatureMismatch),
                "{name} {form:?}"
            );
        }
    }
}

#[test]
fn a_security_token_added_after_signing_is_refused() {
    let vector = Vector::load(TOKEN_ADDED_AFTER_SIGNING);
    let header = vector.signed_request(AuthForm::Header);
    assert!(header.headers.contains_key("x-amz-security-token"));
    assert_eq!(
        vector.check(&header, &vector.secret),
        Err(SigV4Error::HeaderNotSigned("x-amz-security-token"))
    );
    // In the presigned form the token is a query parameter, which rolegate always signs.
    let presigned = vector.signed_request(AuthForm::Presigned);
    assert!(presigned.query.contains("X-Amz-Security-Token="));
    assert_eq!(
        vector.check(&presigned, &vector.secret),
        Err(SigV4Error::SignatureMismatch)
    );
    // Without the token, both are what the signer signed.
    let without = header.without_header("x-amz-security-token");
    vector.check(&without, &vector.secret).unwrap();
    let mut without = presigned.clone();
    without.query = without
        .query
        .split('&')
        .filter(|p| !p.starts_with("X-Amz-Security-Token="))
        .collect::<Vec<_>>()
        .join("&");
    vector.check(&without, &vector.secret).unwrap();
}

#[test]
fn unnormalised_vectors_are_what_s3s_path_rule_computes() {
    for name in UNNORMALISED {
        let vector = Vector::load(name);
        for form in FORMS {
            let request = vector.signed_request(form);
            let req = request.as_signed();
            let auth = parse_authorization(&req).unwrap();
            let payload = sha256_hex(&request.body);
            let creq =
                canonical_request_with_rule(&req, &auth, payload.as_bytes(), PathRule::AsSent);
            assert_eq!(
                String::from_utf8(creq.clone()).unwrap(),
                vector.file(form, "canonical-request"),
                "{name} {form:?}"
            );
            let sts = string_to_sign(&auth, &creq);
            assert_eq!(
                String::from_utf8(sts.clone()).unwrap(),
                vector.file(form, "string-to-sign"),
                "{name} {form:?}"
            );
            let key = signing_key(
                &vector.secret,
                &auth.scope_date,
                &auth.region,
                &auth.service,
            );
            assert_eq!(
                hex::encode(hmac(&key, &sts)),
                vector.file(form, "signature"),
                "{name} {form:?}"
            );
        }
    }
}
