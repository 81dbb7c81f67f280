//! Requests signed by the aws-sigv4 crate verify, in both forms, with and without a session token.

use chrono::Duration;

use super::super::{parse_authorization, verify, AuthForm, SigV4Error, VerifyOptions};
use super::support::*;

const STS_BODY: &[u8] =
    b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo\
&RoleSessionName=alice%40example.com&DurationSeconds=3600&Version=2011-06-15";

/// Requests that exercise the canonical form: each is signed four ways (header or presigned, with
/// or without a session token) and must verify.
fn cases() -> Vec<(&'static str, Spec<'static>)> {
    vec![
        (
            "get caller identity",
            Spec::get("/?Action=GetCallerIdentity&Version=2011-06-15"),
        ),
        ("post form body", Spec::post("/", STS_BODY)),
        (
            "post form body and query",
            Spec::post("/?Action=AssumeRole", STS_BODY),
        ),
        ("empty path", Spec::get("")),
        ("encoded space in path", Spec::get("/a%20b/c")),
        ("encoded slash in path", Spec::get("/a%2Fb/c%2f")),
        (
            "unicode in path",
            Spec::get("/caf%C3%A9/%E2%82%AC/%F0%9F%A6%80"),
        ),
        ("plus equals tilde in path", Spec::get("/a+b/c=d/~e/%7Ef")),
        ("sub-delims in path", Spec::get("/a:b@c/!$&'()*,;/x")),
        ("dot segments", Spec::get("/a/./b/../c/./")),
        ("dot segments then a slash at end", Spec::get("/a/b/../")),
        ("dot segments above root", Spec::get("/../../x")),
        ("dot-like segments", Spec::get("/.a/..b/.../x")),
        ("double slashes", Spec::get("//a//b//")),
        (
            "repeated and unordered parameters",
            Spec::get("/?b=2&a=3&a=1&a=2&B=0&c=1&a-b=0"),
        ),
        (
            "empty values and bare names",
            Spec::get("/?acl&empty=&x=1&=v"),
        ),
        (
            "unicode in query",
            Spec::get("/?name=%E2%82%AC%20euro&k%C3%A9y=caf%C3%A9&emoji=%F0%9F%A6%80"),
        ),
        (
            "plus and encoded plus in query",
            Spec::get("/?q=a+b&r=a%2Bb&s=a%20b"),
        ),
        (
            "lowercase escapes and reserved characters in query",
            Spec::get("/?t=%7e%2f%3a&u=a%3Db&v=%26%3D%3F"),
        ),
        (
            "repeated headers and odd whitespace",
            Spec::post("/", STS_BODY)
                .header("x-custom", "  first   value  ")
                .header("x-custom", "second")
                .header("X-Mixed-Case", "a  \"b   c\"  d")
                .header("x-empty", "")
                .header("x-after", "z"),
        ),
    ]
}

#[test]
fn aws_sigv4_signed_requests_verify_in_every_form() {
    for (name, spec) in cases() {
        for token in [None, Some(TOKEN)] {
            for presign in [None, Some(900)] {
                let mut spec = spec.clone();
                spec.token = token;
                spec.presign = presign.map(std::time::Duration::from_secs);
                let req = spec.sign();
                let auth = req
                    .check()
                    .unwrap_or_else(|e| panic!("{name} token={token:?} presign={presign:?}: {e}"));
                let expected_form = if presign.is_some() {
                    AuthForm::Presigned
                } else {
                    AuthForm::Header
                };
                assert_eq!(auth.form, expected_form, "{name}");
                assert_eq!(auth.security_token.as_deref(), token, "{name}");
                assert_eq!(auth.expires_seconds, presign.map(|s| s as u32), "{name}");
            }
        }
    }
}

/// A path ending in a dot segment: aws-sigv4 keeps a slash after it (`/a/b/..` is `/a/`, as RFC
/// 3986's `remove_dot_segments` has it), where AWS's reference signer (aws-c-auth) and botocore sign
/// `/a`, which rolegate verifies (see `canonical`). The two cannot both verify: rolegate follows the
/// reference signer, and refuses aws-sigv4's signature for such a path.
#[test]
fn aws_sigv4_keeps_a_slash_after_a_final_dot_segment_where_the_reference_signer_does_not() {
    for path in ["/a/b/..", "/a/."] {
        let req = Spec::get(path).sign();
        let auth = parse_authorization(&req.as_signed()).unwrap();
        let creq = super::super::canonical_request(&req.as_signed(), &auth);
        assert!(creq.starts_with(b"GET\n/a\n"), "{path}");
        assert_eq!(req.check(), Err(SigV4Error::SignatureMismatch), "{path}");
    }
}

#[test]
fn parsed_claims_of_a_header_signed_request_are_exact() {
    let req = Spec::post("/", STS_BODY).token(TOKEN).sign();
    let auth = req.check().unwrap();
    assert_eq!(auth.form, AuthForm::Header);
    assert_eq!(auth.access_key_id, AKID);
    assert_eq!(auth.scope_date, "20240517");
    assert_eq!(auth.region, REGION);
    assert_eq!(auth.service, SERVICE);
    assert_eq!(
        auth.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    );
    assert_eq!(auth.request_time, signed_at());
    assert_eq!(auth.expires_seconds, None);
    assert_eq!(auth.security_token.as_deref(), Some(TOKEN));
    let header = req.header("authorization");
    assert!(header.ends_with(&format!("Signature={}", auth.signature)));
}

#[test]
fn parsed_claims_of_a_presigned_request_are_exact() {
    let req = Spec::get("/?Action=GetCallerIdentity&Version=2011-06-15")
        .token(TOKEN)
        .presigned(300)
        .sign();
    let auth = req.check().unwrap();
    assert_eq!(auth.form, AuthForm::Presigned);
    assert_eq!(auth.access_key_id, AKID);
    assert_eq!(auth.scope_date, "20240517");
    assert_eq!(auth.signed_headers, ["host"]);
    assert_eq!(auth.request_time, signed_at());
    assert_eq!(auth.expires_seconds, Some(300));
    assert_eq!(auth.security_token.as_deref(), Some(TOKEN));
}

#[test]
fn signed_content_sha256_header_verifies() {
    let mut spec = Spec::post("/", STS_BODY).token(TOKEN);
    spec.content_sha256 = true;
    let req = spec.sign();
    let auth = req.check().unwrap();
    assert!(auth
        .signed_headers
        .iter()
        .any(|h| h == "x-amz-content-sha256"));
}

#[test]
fn unsigned_payload_verifies_only_where_allowed() {
    let mut spec = Spec::post("/", STS_BODY);
    spec.content_sha256 = true;
    spec.unsigned = true;
    let req = spec.sign();
    assert_eq!(req.header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    assert!(matches!(
        req.check(),
        Err(SigV4Error::PayloadHashMismatch { .. })
    ));

    let regions = regions();
    let opts = VerifyOptions {
        allow_unsigned_payload: true,
        ..sts_options(&regions)
    };
    let signed = req.as_signed();
    let auth = parse_authorization(&signed).unwrap();
    verify(&signed, &auth, SECRET, soon(), &opts).unwrap();
    // With the payload unsigned, a changed body still verifies: that is what the option means.
    let mut changed = req.clone();
    changed.body = b"Action=Other".to_vec();
    verify(&changed.as_signed(), &auth, SECRET, soon(), &opts).unwrap();
}

#[test]
fn any_well_formed_region_is_accepted_when_no_region_is_configured() {
    for region in ["eu-west-3", "us-gov-west-1", "cn-north-1", "local"] {
        let mut spec = Spec::get("/?Action=GetCallerIdentity");
        spec.region = region;
        let req = spec.sign();
        let signed = req.as_signed();
        let auth = parse_authorization(&signed).unwrap();
        let opts = sts_options(&[]);
        verify(&signed, &auth, SECRET, soon(), &opts).unwrap_or_else(|e| panic!("{region}: {e}"));
    }
}

#[test]
fn skew_allowance_follows_the_options() {
    let req = Spec::get("/").sign();
    let signed = req.as_signed();
    let auth = parse_authorization(&signed).unwrap();
    let regions = regions();
    let opts = VerifyOptions {
        max_skew: Duration::minutes(5),
        ..sts_options(&regions)
    };
    verify(
        &signed,
        &auth,
        SECRET,
        signed_at() + Duration::minutes(5),
        &opts,
    )
    .unwrap();
    assert!(matches!(
        verify(
            &signed,
            &auth,
            SECRET,
            signed_at() + Duration::minutes(5) + Duration::seconds(1),
            &opts
        ),
        Err(SigV4Error::RequestTimeTooSkewed { .. })
    ));
}
