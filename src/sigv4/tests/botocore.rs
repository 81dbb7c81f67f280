//! Requests signed by botocore (recorded by `testdata/make_botocore_fixtures.py`) verify at the
//! time they record.

use chrono::{DateTime, NaiveDateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::super::{parse_authorization, verify, AuthForm, PathRule, SigV4Error, VerifyOptions};
use super::support::OwnedRequest;

const FIXTURES: [(&str, &str); 11] = [
    (
        "header_post_form_with_token",
        include_str!("../testdata/botocore/header_post_form_with_token.json"),
    ),
    (
        "header_get_tricky_path_and_params",
        include_str!("../testdata/botocore/header_get_tricky_path_and_params.json"),
    ),
    (
        "header_date_instead_of_x_amz_date",
        include_str!("../testdata/botocore/header_date_instead_of_x_amz_date.json"),
    ),
    (
        "header_repeated_headers_odd_whitespace",
        include_str!("../testdata/botocore/header_repeated_headers_odd_whitespace.json"),
    ),
    (
        "presigned_get_caller_identity_with_token",
        include_str!("../testdata/botocore/presigned_get_caller_identity_with_token.json"),
    ),
    (
        "presigned_post_body_moved_to_query",
        include_str!("../testdata/botocore/presigned_post_body_moved_to_query.json"),
    ),
    (
        "presigned_get_with_existing_query",
        include_str!("../testdata/botocore/presigned_get_with_existing_query.json"),
    ),
    (
        "header_get_path_ending_in_dot_segment",
        include_str!("../testdata/botocore/header_get_path_ending_in_dot_segment.json"),
    ),
    (
        "presigned_get_path_ending_in_dot",
        include_str!("../testdata/botocore/presigned_get_path_ending_in_dot.json"),
    ),
    (
        "header_s3_key_with_space_and_dot_segments",
        include_str!("../testdata/botocore/header_s3_key_with_space_and_dot_segments.json"),
    ),
    (
        "presigned_s3_key_with_dot_segments",
        include_str!("../testdata/botocore/presigned_s3_key_with_dot_segments.json"),
    ),
];

struct Fixture {
    name: String,
    request: OwnedRequest,
    signed_at: DateTime<Utc>,
    access_key_id: String,
    secret: String,
    token: Option<String>,
    region: String,
    service: String,
}

fn load(name: &str, text: &str) -> Fixture {
    let doc: Value = serde_json::from_str(text).unwrap();
    assert_eq!(doc["name"], name);
    let uri: http::Uri = doc["url"].as_str().unwrap().parse().unwrap();
    let mut headers = HeaderMap::new();
    for pair in doc["headers"].as_array().unwrap() {
        headers.append(
            HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
            HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap(),
        );
    }
    let signed_at =
        NaiveDateTime::parse_from_str(doc["signed_at"].as_str().unwrap(), "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc();
    let text = |key: &str| doc[key].as_str().unwrap().to_owned();
    Fixture {
        name: name.to_owned(),
        request: OwnedRequest {
            method: text("method"),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers,
            body: text("body").into_bytes(),
        },
        signed_at,
        access_key_id: text("access_key_id"),
        secret: text("secret_access_key"),
        token: doc["security_token"].as_str().map(str::to_owned),
        region: text("region"),
        service: text("service"),
    }
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .iter()
        .map(|(name, text)| load(name, text))
        .collect()
}

/// Verifies as a service of the fixture's signing name would: an S3 service accepts unsigned
/// payloads.
fn check(fixture: &Fixture, request: &OwnedRequest) -> super::super::Result<()> {
    check_allowing(fixture, request, is_s3(fixture))
}

fn is_s3(fixture: &Fixture) -> bool {
    PathRule::for_service(&fixture.service) == PathRule::AsSent
}

fn check_allowing(
    fixture: &Fixture,
    request: &OwnedRequest,
    allow_unsigned_payload: bool,
) -> super::super::Result<()> {
    let req = request.as_signed();
    let auth = parse_authorization(&req)?;
    let regions = [fixture.region.clone()];
    let opts = VerifyOptions {
        service: &fixture.service,
        regions: &regions,
        max_skew: chrono::Duration::minutes(15),
        allow_unsigned_payload,
    };
    verify(&req, &auth, &fixture.secret, fixture.signed_at, &opts)
}

#[test]
fn botocore_signed_requests_verify() {
    for fixture in fixtures() {
        let req = fixture.request.as_signed();
        let auth = parse_authorization(&req).unwrap_or_else(|e| panic!("{}: {e}", fixture.name));
        assert_eq!(
            auth.access_key_id, fixture.access_key_id,
            "{}",
            fixture.name
        );
        assert_eq!(
            auth.security_token.as_deref(),
            fixture.token.as_deref(),
            "{}",
            fixture.name
        );
        assert_eq!(auth.request_time, fixture.signed_at, "{}", fixture.name);
        let expected_form = if fixture.name.starts_with("presigned") {
            AuthForm::Presigned
        } else {
            AuthForm::Header
        };
        assert_eq!(auth.form, expected_form, "{}", fixture.name);
        check(&fixture, &fixture.request).unwrap_or_else(|e| panic!("{}: {e}", fixture.name));
    }
}

#[test]
fn botocore_signed_requests_fail_once_changed() {
    for fixture in fixtures() {
        let mut body = fixture.request.clone();
        body.body.push(b'x');
        let mut path = fixture.request.clone();
        path.path.push('x');
        let mut query = fixture.request.clone();
        query.query = format!("extra=1&{}", query.query)
            .trim_end_matches('&')
            .to_owned();
        for (what, changed) in [("body", body), ("path", path), ("query", query)] {
            if what == "body" && is_s3(&fixture) && fixture.name.starts_with("presigned") {
                // A presigned S3 URL signs no payload.
                check(&fixture, &changed).unwrap();
                continue;
            }
            if what == "body" && changed.headers.contains_key("x-amz-content-sha256") {
                // The body no longer has the hash the signed header claims.
                assert!(matches!(
                    check(&fixture, &changed),
                    Err(SigV4Error::PayloadHashMismatch { .. })
                ));
                continue;
            }
            assert_eq!(
                check(&fixture, &changed),
                Err(SigV4Error::SignatureMismatch),
                "{} {what}",
                fixture.name
            );
        }
        let mut secret = fixture.secret.clone();
        secret.push('x');
        let wrong = Fixture {
            secret,
            ..load(
                &fixture.name,
                FIXTURES.iter().find(|f| f.0 == fixture.name).unwrap().1,
            )
        };
        assert_eq!(
            check(&wrong, &fixture.request),
            Err(SigV4Error::SignatureMismatch),
            "{} secret",
            fixture.name
        );
    }
}

#[test]
fn the_date_header_fixture_takes_its_time_from_date() {
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name == "header_date_instead_of_x_amz_date")
        .unwrap();
    assert!(!fixture.request.headers.contains_key("x-amz-date"));
    assert_eq!(
        fixture.request.headers["date"],
        "Fri, 17 May 2024 12:34:56 -0000"
    );
    let mut later = fixture.request.clone();
    later.set_header("date", "Fri, 17 May 2024 12:34:57 GMT");
    assert_eq!(check(&fixture, &later), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn a_path_ending_in_a_dot_segment_is_canonical_without_a_trailing_slash() {
    for name in [
        "header_get_path_ending_in_dot_segment",
        "presigned_get_path_ending_in_dot",
    ] {
        let fixture = fixtures().into_iter().find(|f| f.name == name).unwrap();
        assert!(fixture.request.path.ends_with('.'), "{name}");
        let req = fixture.request.as_signed();
        let auth = parse_authorization(&req).unwrap();
        let creq = super::super::canonical_request(&req, &auth);
        assert!(creq.starts_with(b"GET\n/example\n"), "{name}");
        check(&fixture, &fixture.request).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn s3_paths_are_canonical_as_sent() {
    for (name, path) in [
        (
            "header_s3_key_with_space_and_dot_segments",
            "/bucket/a%20b//./c/../d.txt",
        ),
        (
            "presigned_s3_key_with_dot_segments",
            "/bucket/x/../%E2%82%AC/.",
        ),
    ] {
        let fixture = fixtures().into_iter().find(|f| f.name == name).unwrap();
        assert_eq!(fixture.service, "s3");
        assert_eq!(fixture.request.path, path);
        let req = fixture.request.as_signed();
        let auth = parse_authorization(&req).unwrap();
        let creq = super::super::canonical_request(&req, &auth);
        assert!(
            creq.starts_with(format!("GET\n{path}\n").as_bytes()),
            "{name}"
        );
        check(&fixture, &fixture.request).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Normalised, the path would no longer be what botocore signed.
        let mut normalised = fixture.request.clone();
        normalised.path = "/bucket/a%20b/d.txt".to_owned();
        assert_eq!(
            check(&fixture, &normalised),
            Err(SigV4Error::SignatureMismatch),
            "{name}"
        );
    }
}

#[test]
fn a_presigned_s3_url_signs_no_payload_and_needs_unsigned_payloads_allowed() {
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name == "presigned_s3_key_with_dot_segments")
        .unwrap();
    let req = fixture.request.as_signed();
    let auth = parse_authorization(&req).unwrap();
    let creq = super::super::canonical_request(&req, &auth);
    assert!(creq.ends_with(b"\nUNSIGNED-PAYLOAD"));
    check_allowing(&fixture, &fixture.request, true).unwrap();
    assert_eq!(
        check_allowing(&fixture, &fixture.request, false),
        Err(SigV4Error::PayloadHashMismatch {
            claimed: "UNSIGNED-PAYLOAD".into()
        })
    );
}
