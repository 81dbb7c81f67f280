//! Every `x-amz-*` header present must be among the signed headers, in both forms: one added after
//! signing (or left out of a correct signature) is refused with AccessDenied, naming the header.

use super::super::{parse_authorization, verify, SigV4Error, MAX_NAMED_HEADERS};
use super::support::*;

const GCI: &str = "/?Action=GetCallerIdentity&Version=2011-06-15";
const GCI_BODY: &[u8] = b"Action=GetCallerIdentity&Version=2011-06-15";

fn unsigned_names(err: &SigV4Error) -> (Vec<String>, usize) {
    match err {
        SigV4Error::UnsignedAmzHeaders { names, total } => (names.clone(), *total),
        other => panic!("expected UnsignedAmzHeaders, got {other:?}"),
    }
}

#[test]
fn an_x_amz_header_added_after_signing_is_refused_with_access_denied_naming_it() {
    for (what, spec) in [
        ("long-term key", Spec::post("/", GCI_BODY)),
        ("session token", Spec::post("/", GCI_BODY).token(TOKEN)),
    ] {
        let req = spec.sign();
        req.check()
            .unwrap_or_else(|e| panic!("{what}: control: {e}"));
        for header in ["x-amz-acl", "x-amz-copy-source", "x-amz-grant-full-control"] {
            let mut tampered = req.clone();
            tampered.set_header(header, "injected");
            let err = tampered.check().unwrap_err();
            assert_eq!(
                unsigned_names(&err),
                (vec![format!("{header:?}")], 1),
                "{what}"
            );
            assert_eq!(err.aws_code(), "AccessDenied");
            assert_eq!(err.http_status(), 403);
            assert_eq!(
                err.client_message(),
                "There were headers present in the request which were not signed"
            );
            assert!(err.to_string().contains(header), "{err}");
            assert!(err.to_string().contains("not in SignedHeaders"), "{err}");
        }
    }
}

#[test]
fn verify_refuses_it_too_for_callers_that_parsed_before_the_header_was_added() {
    let req = Spec::post("/", GCI_BODY).token(TOKEN).sign();
    let mut tampered = req.clone();
    tampered.set_header("x-amz-acl", "public-read");
    let auth = parse_authorization(&req.as_signed()).unwrap();
    let regions = regions();
    let err = verify(
        &tampered.as_signed(),
        &auth,
        SECRET,
        soon(),
        &sts_options(&regions),
    )
    .unwrap_err();
    assert_eq!(unsigned_names(&err), (vec!["\"x-amz-acl\"".into()], 1));
}

#[test]
fn every_unsigned_header_is_counted_and_the_first_few_named() {
    let req = Spec::post("/", GCI_BODY).sign();
    let mut three = req.clone();
    for h in ["x-amz-acl", "x-amz-copy-source", "x-amz-grant-full-control"] {
        three.set_header(h, "v");
    }
    let err = three.check().unwrap_err();
    let (mut names, total) = unsigned_names(&err);
    names.sort();
    assert_eq!(total, 3);
    assert_eq!(
        names,
        [
            "\"x-amz-acl\"",
            "\"x-amz-copy-source\"",
            "\"x-amz-grant-full-control\""
        ]
    );

    let mut many = req.clone();
    for i in 0..20 {
        many.set_header(&format!("x-amz-meta-k{i:02}"), "v");
    }
    let err = many.check().unwrap_err();
    let (names, total) = unsigned_names(&err);
    assert_eq!((names.len(), total), (MAX_NAMED_HEADERS, 20));
    assert!(err.to_string().starts_with("20 x-amz-* header(s)"), "{err}");
    assert!(err.to_string().ends_with(", …"), "{err}");

    let mut long = req.clone();
    long.set_header(&format!("x-amz-{}", "a".repeat(500)), "v");
    let err = long.check().unwrap_err();
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn the_same_headers_signed_are_accepted() {
    let req = Spec::post("/", GCI_BODY)
        .token(TOKEN)
        .header("x-amz-acl", "private")
        .header("x-amz-copy-source", "bucket/key")
        .header("x-amz-grant-full-control", "id=abc")
        .sign();
    let auth = req.check().unwrap();
    for h in ["x-amz-acl", "x-amz-copy-source", "x-amz-grant-full-control"] {
        assert!(auth.signed_headers.iter().any(|s| s == h), "{h}");
    }
    let presigned = Spec::get(GCI)
        .header("x-amz-acl", "private")
        .presigned(900)
        .sign();
    presigned.check().unwrap();
}

#[test]
fn headers_outside_the_x_amz_namespace_may_stay_unsigned() {
    let mut req = Spec::post("/", GCI_BODY).token(TOKEN).sign();
    for (name, value) in [
        (
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        ),
        ("user-agent", "aws-cli/2"),
        ("x-amz", "not the prefix"),
        ("x-forwarded-for", "203.0.113.9"),
        ("amz-sdk-invocation-id", "e4b0c3b2"),
    ] {
        req.set_header(name, value);
    }
    req.check().unwrap();
}

#[test]
fn a_presigned_request_with_an_unsigned_x_amz_header_is_refused() {
    for token in [None, Some(TOKEN)] {
        let mut spec = Spec::get(GCI).presigned(900);
        spec.token = token;
        let req = spec.sign();
        req.check().unwrap();
        let mut tampered = req.clone();
        tampered.set_header("x-amz-copy-source", "other-bucket/secret");
        let err = tampered.check().unwrap_err();
        assert_eq!(
            unsigned_names(&err),
            (vec!["\"x-amz-copy-source\"".into()], 1),
            "token {token:?}"
        );
        assert_eq!(err.aws_code(), "AccessDenied");
    }
}

#[test]
fn a_correct_signature_that_leaves_out_an_x_amz_header_is_still_refused() {
    // The signature covers exactly what SignedHeaders lists: honest for the signer's claims, but
    // the header may have been put there by anyone.
    let mut spec = Spec::post("/", GCI_BODY).header("x-amz-acl", "private");
    spec.content_sha256 = true;
    let req = spec.sign();
    req.check().unwrap();
    for left_out in ["x-amz-acl", "x-amz-content-sha256"] {
        let forged = resign(&req, |auth| auth.signed_headers.retain(|h| h != left_out));
        let err = forged.check().unwrap_err();
        assert_eq!(
            unsigned_names(&err),
            (vec![format!("{left_out:?}")], 1),
            "{left_out}"
        );
    }
}
