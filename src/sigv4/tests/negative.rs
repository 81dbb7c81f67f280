//! The refusals of the security design: skew, scope, expiry, unsigned token and host, both or
//! neither form, unsupported algorithms, malformed authorization.

use chrono::Duration;
use http::HeaderValue;

use super::super::{parse_authorization, verify, AuthForm, ScopeField, SigV4Error};
use super::support::*;

const GCI: &str = "/?Action=GetCallerIdentity&Version=2011-06-15";

fn code_of(result: super::super::Result<impl Sized>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{} {}", e.http_status(), e.aws_code()),
    }
}

#[test]
fn clock_skew_just_over_fifteen_minutes_fails_and_just_under_passes() {
    let req = Spec::post("/", b"Action=GetCallerIdentity&Version=2011-06-15").sign();
    let t = signed_at();
    let fifteen = Duration::minutes(15);
    let second = Duration::seconds(1);
    let cases = [
        (t, "ok"),
        (t + fifteen - second, "ok"),
        (t + fifteen, "ok"),
        (t + fifteen + second, "403 RequestTimeTooSkewed"),
        (t - fifteen + second, "ok"),
        (t - fifteen, "ok"),
        (t - fifteen - second, "403 RequestTimeTooSkewed"),
        (t + Duration::days(3), "403 RequestTimeTooSkewed"),
    ];
    for (now, expected) in cases {
        assert_eq!(code_of(req.check_with(SECRET, now)), expected, "now {now}");
    }
    let err = req.check_with(SECRET, t + fifteen + second).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::RequestTimeTooSkewed {
            request_time: t,
            now: t + fifteen + second,
            max_skew_seconds: 900
        }
    );
}

#[test]
fn presigned_request_is_refused_after_expiry_and_when_dated_in_the_future() {
    let req = Spec::get(GCI).token(TOKEN).presigned(3600).sign();
    let t = signed_at();
    let cases = [
        (t, "ok"),
        (t + Duration::seconds(3600), "ok"),
        (t + Duration::seconds(3601), "403 AccessDenied"),
        (t + Duration::days(2), "403 AccessDenied"),
        // Used before its date: fine within the skew, refused beyond it.
        (t - Duration::minutes(15), "ok"),
        (
            t - Duration::minutes(15) - Duration::seconds(1),
            "403 RequestTimeTooSkewed",
        ),
    ];
    for (now, expected) in cases {
        assert_eq!(code_of(req.check_with(SECRET, now)), expected, "now {now}");
    }
    let err = req
        .check_with(SECRET, t + Duration::seconds(3601))
        .unwrap_err();
    assert_eq!(
        err,
        SigV4Error::Expired {
            expired_at: t + Duration::seconds(3600),
            now: t + Duration::seconds(3601)
        }
    );
    assert_eq!(err.client_message(), "Request has expired");
}

#[test]
fn a_week_long_presigned_url_is_accepted_and_longer_refused() {
    let week = Spec::get(GCI).presigned(604_800).sign();
    week.check_with(SECRET, signed_at() + Duration::days(7))
        .unwrap();
    let mut longer = week.clone();
    longer.query = replace_once(
        &longer.query,
        "X-Amz-Expires=604800",
        "X-Amz-Expires=604801",
    );
    assert!(matches!(longer.check(), Err(SigV4Error::Malformed(_))));
}

#[test]
fn scope_date_other_than_the_request_day_is_refused_even_when_correctly_signed() {
    for form in [None, Some(900)] {
        let mut spec = Spec::get(GCI);
        spec.presign = form.map(std::time::Duration::from_secs);
        let req = spec.sign();
        // Control: re-signing without a change verifies.
        resign(&req, |_| {}).check().unwrap();
        let forged = resign(&req, |auth| auth.scope_date = "20240516".into());
        let err = forged.check().unwrap_err();
        assert!(
            matches!(
                err,
                SigV4Error::InvalidScope {
                    field: ScopeField::Date,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.aws_code(), "SignatureDoesNotMatch");
        assert_eq!(err.http_status(), 403);
        assert!(err.client_message().starts_with("Date in Credential scope"));
        assert!(err.to_string().contains("\"20240516\""), "{err}");
    }
}

#[test]
fn wrong_region_service_or_terminator_is_refused_even_when_correctly_signed() {
    let req = Spec::get(GCI).sign();
    type Change = fn(&mut super::super::Authorization);
    let cases: [(&str, Change, ScopeField, &str); 5] = [
        (
            "other region",
            |a| a.region = "eu-west-1".into(),
            ScopeField::Region,
            "Credential should be scoped to a valid region.",
        ),
        (
            "region with upper case",
            |a| a.region = "US-EAST-1".into(),
            ScopeField::Region,
            "Credential should be scoped to a valid region.",
        ),
        (
            "other service",
            |a| a.service = "iam".into(),
            ScopeField::Service,
            "Credential should be scoped to correct service.",
        ),
        (
            "service case",
            |a| a.service = "STS".into(),
            ScopeField::Service,
            "Credential should be scoped to correct service.",
        ),
        (
            "other date",
            |a| a.scope_date = "20240518".into(),
            ScopeField::Date,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ),
    ];
    for (name, change, field, message) in cases {
        let err = resign(&req, change).check().unwrap_err();
        match &err {
            SigV4Error::InvalidScope { field: f, .. } if *f == field => {}
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(err.client_message(), message, "{name}");
    }

    let mut terminator = req.clone();
    let value = replace_once(
        &req.header("authorization"),
        "/aws4_request",
        "/aws4_reqeust",
    );
    terminator.set_header("authorization", &value);
    let err = terminator.check().unwrap_err();
    assert!(
        matches!(
            err,
            SigV4Error::InvalidScope {
                field: ScopeField::Terminator,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.client_message(),
        "Credential should be scoped with a valid terminator: 'aws4_request'."
    );
}

#[test]
fn region_syntax_is_checked_when_any_region_is_allowed() {
    for bad in ["us_east_1", "1us-east", "us-east-", "us east", "-x"] {
        let mut spec = Spec::get(GCI);
        spec.region = bad;
        let req = spec.presigned(60).sign();
        let signed = req.as_signed();
        let auth = parse_authorization(&signed).unwrap();
        let err = verify(&signed, &auth, SECRET, soon(), &sts_options(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                SigV4Error::InvalidScope {
                    field: ScopeField::Region,
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn a_security_token_must_be_signed() {
    // Header form: a token header added after signing.
    let req = Spec::post("/", b"Action=GetCallerIdentity").sign();
    let mut with_token = req.clone();
    with_token.set_header("x-amz-security-token", TOKEN);
    let err = with_token.check().unwrap_err();
    assert_eq!(err, SigV4Error::HeaderNotSigned("x-amz-security-token"));
    assert_eq!(err.aws_code(), "IncompleteSignature");
    assert_eq!(err.http_status(), 400);
    assert_eq!(
        err.client_message(),
        "'x-amz-security-token' must be a signed header."
    );
    // Still refused when the signature itself is correct for the unsigned token.
    let claims = parse_authorization(&req.as_signed()).unwrap();
    let forged = sign_claims(&with_token, &claims);
    assert_eq!(
        forged.check().unwrap_err(),
        SigV4Error::HeaderNotSigned("x-amz-security-token")
    );

    // Presigned form: a token header next to a presigned URL that did not sign it.
    let presigned = Spec::get(GCI).presigned(900).sign();
    let mut with_token = presigned.clone();
    with_token.set_header("x-amz-security-token", TOKEN);
    assert_eq!(
        with_token.check().unwrap_err(),
        SigV4Error::HeaderNotSigned("x-amz-security-token")
    );

    // A token added to the query is part of the canonical query: the signature breaks.
    let mut in_query = presigned.clone();
    in_query.query.push_str("&X-Amz-Security-Token=abc");
    assert_eq!(in_query.check().unwrap_err(), SigV4Error::SignatureMismatch);
    let mut in_query = req.clone();
    in_query.query = "X-Amz-Security-Token=abc".into();
    assert_eq!(in_query.check().unwrap_err(), SigV4Error::SignatureMismatch);

    // A token in both places is ambiguous.
    let signed = Spec::get(GCI).token(TOKEN).presigned(900).sign();
    let mut both = signed.clone();
    both.set_header("x-amz-security-token", TOKEN);
    assert!(matches!(both.check(), Err(SigV4Error::Malformed(_))));
    let signed = Spec::post("/", b"").token(TOKEN).sign();
    let mut both = signed.clone();
    both.query = "X-Amz-Security-Token=x".into();
    assert!(matches!(both.check(), Err(SigV4Error::Malformed(_))));
    let mut empty = signed.clone();
    empty.set_header("x-amz-security-token", "");
    assert!(matches!(empty.check(), Err(SigV4Error::Malformed(_))));
}

#[test]
fn host_must_be_signed_even_when_the_signature_is_correct() {
    for form in [None, Some(900)] {
        let mut spec = Spec::get(GCI);
        spec.presign = form.map(std::time::Duration::from_secs);
        let req = spec.header("x-other", "1").sign();
        let forged = resign(&req, |auth| auth.signed_headers.retain(|h| h != "host"));
        let err = forged.check().unwrap_err();
        assert_eq!(err, SigV4Error::HeaderNotSigned("host"), "{form:?}");
        assert_eq!(err.http_status(), 400);
    }
}

#[test]
fn the_date_header_in_use_must_be_signed() {
    let req = Spec::get(GCI).header("x-other", "1").sign();
    let forged = resign(&req, |auth| {
        auth.signed_headers.retain(|h| h != "x-amz-date")
    });
    assert_eq!(
        forged.check().unwrap_err(),
        SigV4Error::HeaderNotSigned("x-amz-date")
    );

    // With the time in a Date header, that header must be signed.
    let mut dated = req.without_header("x-amz-date");
    dated.set_header("date", "Fri, 17 May 2024 12:34:56 GMT");
    let mut claims = parse_authorization(&req.as_signed()).unwrap();
    claims.signed_headers = vec!["host".into(), "x-other".into()];
    let forged = sign_claims(&dated, &claims);
    assert_eq!(
        forged.check().unwrap_err(),
        SigV4Error::HeaderNotSigned("date")
    );
    claims.signed_headers = vec!["date".into(), "host".into(), "x-other".into()];
    let signed_date = sign_claims(&dated, &claims);
    let auth = signed_date.check().unwrap();
    assert_eq!(auth.request_time, signed_at());

    // Neither header: nothing to check the time against.
    let undated = req.without_header("x-amz-date");
    assert!(matches!(undated.check(), Err(SigV4Error::Malformed(_))));
}

#[test]
fn both_forms_at_once_are_refused() {
    let header = Spec::get(GCI).sign();
    let presigned = Spec::get(GCI).presigned(900).sign();
    let mut both = presigned.clone();
    both.headers
        .insert("authorization", header.headers["authorization"].clone());
    let err = both.check().unwrap_err();
    assert_eq!(err, SigV4Error::AmbiguousAuthentication);
    assert_eq!(err.aws_code(), "IncompleteSignature");
    assert_eq!(err.http_status(), 400);

    // A single presigned parameter next to an Authorization header is enough to refuse.
    for param in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Credential=x",
        "X-Amz-Date=20240517T123456Z",
        "X-Amz-Expires=60",
        "X-Amz-SignedHeaders=host",
        "X-Amz-Signature=00",
        "X-Amz-%53ignature=00",
    ] {
        let mut req = header.clone();
        req.query = format!("{}&{param}", req.query);
        assert_eq!(
            req.check().unwrap_err(),
            SigV4Error::AmbiguousAuthentication,
            "{param}"
        );
    }
}

#[test]
fn neither_form_is_missing_authentication() {
    let req = Spec::get(GCI).sign().without_header("authorization");
    let err = req.check().unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthentication);
    assert_eq!(err.aws_code(), "MissingAuthenticationToken");
    assert_eq!(err.http_status(), 403);
    // Lowercase parameter names are ordinary parameters, not a presigned form.
    let mut lower = req.clone();
    lower.query = "x-amz-algorithm=AWS4-HMAC-SHA256&x-amz-signature=00".into();
    assert_eq!(
        lower.check().unwrap_err(),
        SigV4Error::MissingAuthentication
    );
}

#[test]
fn unsupported_algorithms_are_refused_in_both_forms() {
    let req = Spec::get(GCI).sign();
    let value = req.header("authorization");
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").unwrap();
    for algorithm in [
        "AWS4-HMAC-SHA512",
        "AWS4-ECDSA-P256-SHA256",
        "aws4-hmac-sha256",
        "AWS4-HMAC-SHA256,",
        "AWS",
        "Bearer",
        "",
    ] {
        let mut changed = req.clone();
        changed.set_header("authorization", &format!("{algorithm} {rest}"));
        let err = changed.check().unwrap_err();
        assert!(
            matches!(err, SigV4Error::UnsupportedAlgorithm(_)),
            "{algorithm:?}: {err}"
        );
        assert_eq!(err.aws_code(), "IncompleteSignature");
    }
    for whole in [
        "AWS AKIDEXAMPLE:c2lnbmF0dXJl",
        "Basic dXNlcjpwYXNz",
        "Bearer eyJhbGciOi",
    ] {
        let mut changed = req.clone();
        changed.set_header("authorization", whole);
        assert!(
            matches!(changed.check(), Err(SigV4Error::UnsupportedAlgorithm(_))),
            "{whole:?}"
        );
    }

    let presigned = Spec::get(GCI).presigned(900).sign();
    for algorithm in [
        "AWS4-HMAC-SHA1",
        "AWS4-ECDSA-P256-SHA256",
        "aws4-hmac-sha256",
        "",
    ] {
        let mut changed = presigned.clone();
        changed.query = replace_once(
            &changed.query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            &format!("X-Amz-Algorithm={algorithm}"),
        );
        assert!(
            matches!(changed.check(), Err(SigV4Error::UnsupportedAlgorithm(_))),
            "{algorithm:?}"
        );
    }
}

#[test]
fn authorization_header_spacing_variants_are_tolerated() {
    let req = Spec::get(GCI).sign();
    let auth = req.check().unwrap();
    let credential = "AKIDEXAMPLE/20240517/us-east-1/sts/aws4_request";
    let signed = auth.signed_headers.join(";");
    let sig = &auth.signature;
    for variant in [
        format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={credential},SignedHeaders={signed},Signature={sig}"),
        format!("AWS4-HMAC-SHA256   Credential={credential} ,  SignedHeaders={signed} ,Signature={sig} "),
        format!("AWS4-HMAC-SHA256\tCredential={credential},\tSignedHeaders={signed},\tSignature={sig}"),
        format!("AWS4-HMAC-SHA256 Signature={sig}, Credential={credential}, SignedHeaders={signed}"),
    ] {
        let mut changed = req.clone();
        changed.set_header("authorization", &variant);
        changed.check().unwrap_or_else(|e| panic!("{variant:?}: {e}"));
    }
}

#[test]
fn malformed_authorization_headers_are_incomplete_signatures() {
    let req = Spec::get(GCI).sign();
    let auth = req.check().unwrap();
    let c = "AKIDEXAMPLE/20240517/us-east-1/sts/aws4_request";
    let h = auth.signed_headers.join(";");
    let s = auth.signature.clone();
    let cases = [
        ("algorithm only", "AWS4-HMAC-SHA256".to_owned()),
        ("algorithm and space", "AWS4-HMAC-SHA256 ".to_owned()),
        ("no Credential", format!("AWS4-HMAC-SHA256 SignedHeaders={h}, Signature={s}")),
        ("no SignedHeaders", format!("AWS4-HMAC-SHA256 Credential={c}, Signature={s}")),
        ("no Signature", format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}")),
        (
            "repeated Credential",
            format!("AWS4-HMAC-SHA256 Credential={c}, Credential={c}, SignedHeaders={h}, Signature={s}"),
        ),
        (
            "repeated Signature",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, Signature={s}"),
        ),
        (
            "unknown component",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, Extra=1"),
        ),
        (
            "lowercase component name",
            format!("AWS4-HMAC-SHA256 credential={c}, SignedHeaders={h}, Signature={s}"),
        ),
        (
            "empty value",
            format!("AWS4-HMAC-SHA256 Credential=, SignedHeaders={h}, Signature={s}"),
        ),
        (
            "trailing comma",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s},"),
        ),
        (
            "no commas",
            format!("AWS4-HMAC-SHA256 Credential={c} SignedHeaders={h} Signature={s}"),
        ),
        (
            "component without =",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders, Signature={s}"),
        ),
        (
            "four-part credential",
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/sts, SignedHeaders={h}, Signature={s}"),
        ),
        (
            "bad scope date",
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2024-05-17/us-east-1/sts/aws4_request, SignedHeaders={h}, Signature={s}"),
        ),
        (
            "short signature",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={}", &s[..63]),
        ),
        (
            "uppercase signature",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={}", s.to_uppercase()),
        ),
        (
            "unsorted signed headers",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=x-amz-date;host, Signature={s}"),
        ),
        (
            "uppercase signed header",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=Host;x-amz-date, Signature={s}"),
        ),
        (
            "empty signed header",
            format!("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;;x-amz-date, Signature={s}"),
        ),
    ];
    for (name, value) in cases {
        let mut changed = req.clone();
        changed.set_header("authorization", &value);
        let err = changed.check().unwrap_err();
        assert!(matches!(err, SigV4Error::Malformed(_)), "{name}: {err:?}");
        assert_eq!(err.aws_code(), "IncompleteSignature", "{name}");
        assert_eq!(err.http_status(), 400, "{name}");
        assert_eq!(
            err.client_message(),
            "The request signature does not conform to AWS standards.",
            "{name}"
        );
    }

    let mut non_ascii = req.clone();
    non_ascii.headers.insert(
        "authorization",
        HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xe9").unwrap(),
    );
    assert!(matches!(non_ascii.check(), Err(SigV4Error::Malformed(_))));

    let mut twice = req.clone();
    twice
        .headers
        .append("authorization", req.headers["authorization"].clone());
    assert!(matches!(twice.check(), Err(SigV4Error::Malformed(_))));

    for (name, value) in [
        ("x-amz-date", "2024-05-17T12:34:56Z"),
        ("x-amz-date", "20240517T123456"),
        ("x-amz-date", ""),
    ] {
        let mut changed = req.clone();
        changed.set_header(name, value);
        assert!(
            matches!(changed.check(), Err(SigV4Error::Malformed(_))),
            "{name}: {value:?}"
        );
    }
    let mut two_dates = req.clone();
    two_dates
        .headers
        .append("x-amz-date", HeaderValue::from_static("20240517T123456Z"));
    assert!(matches!(two_dates.check(), Err(SigV4Error::Malformed(_))));
}

#[test]
fn malformed_presigned_parameters_are_incomplete_signatures() {
    let req = Spec::get(GCI).token(TOKEN).presigned(900).sign();
    let params = [
        "X-Amz-Algorithm=",
        "X-Amz-Credential=",
        "X-Amz-Date=",
        "X-Amz-Expires=",
        "X-Amz-SignedHeaders=",
        "X-Amz-Signature=",
    ];
    for param in params {
        let kept: Vec<&str> = req
            .query
            .split('&')
            .filter(|p| !p.starts_with(param))
            .collect();
        let mut missing = req.clone();
        missing.query = kept.join("&");
        let err = missing.check().unwrap_err();
        assert!(
            matches!(err, SigV4Error::Malformed(_)),
            "without {param}: {err:?}"
        );

        let repeated_value = req
            .query
            .split('&')
            .find(|p| p.starts_with(param))
            .unwrap()
            .to_owned();
        let mut repeated = req.clone();
        repeated.query.push('&');
        repeated.query.push_str(&repeated_value);
        assert!(
            matches!(repeated.check(), Err(SigV4Error::Malformed(_))),
            "repeated {param}"
        );
    }
    let mut repeated_token = req.clone();
    repeated_token.query.push_str("&X-Amz-Security-Token=x");
    assert!(matches!(
        repeated_token.check(),
        Err(SigV4Error::Malformed(_))
    ));

    for (from, to) in [
        ("X-Amz-Expires=900", "X-Amz-Expires=0"),
        ("X-Amz-Expires=900", "X-Amz-Expires=-1"),
        ("X-Amz-Expires=900", "X-Amz-Expires=9e2"),
        ("X-Amz-Date=20240517T123456Z", "X-Amz-Date=2024-05-17"),
        ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=HOST"),
        (
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "X-Amz-Credential=AKID%2FEXAMPLE%2F",
        ),
        ("X-Amz-Security-Token=", "X-Amz-Security-Token=%FF"),
    ] {
        let mut changed = req.clone();
        changed.query = replace_once(&changed.query, from, to);
        assert!(
            matches!(changed.check(), Err(SigV4Error::Malformed(_))),
            "{to}: {:?}",
            changed.check()
        );
    }
}

#[test]
fn a_wrong_or_random_secret_fails_with_a_signature_mismatch() {
    for req in [Spec::get(GCI).sign(), Spec::get(GCI).presigned(60).sign()] {
        assert_eq!(
            req.check_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", soon())
                .unwrap_err(),
            SigV4Error::SignatureMismatch
        );
        assert_eq!(
            req.check_with("", soon()).unwrap_err(),
            SigV4Error::SignatureMismatch
        );
    }
}

#[test]
fn when_several_checks_fail_the_first_in_order_is_reported() {
    // Unsigned host, wrong service, far in the future, wrong secret: host comes first.
    let mut spec = Spec::get(GCI);
    spec.service = "iam";
    spec.time = signed_at() + Duration::days(1);
    let req = resign(&spec.sign(), |auth| {
        auth.signed_headers.retain(|h| h != "host")
    });
    assert_eq!(
        req.check_with("wrong", signed_at()).unwrap_err(),
        SigV4Error::HeaderNotSigned("host")
    );
    // Without the host problem, the scope.
    let req = spec.sign();
    assert!(matches!(
        req.check_with("wrong", signed_at()).unwrap_err(),
        SigV4Error::InvalidScope {
            field: ScopeField::Service,
            ..
        }
    ));
    // A correct scope but far in the future and a wrong secret: the skew.
    let req = Spec::get(GCI).sign();
    assert!(matches!(
        req.check_with("wrong", signed_at() - Duration::hours(1))
            .unwrap_err(),
        SigV4Error::RequestTimeTooSkewed { .. }
    ));
}

#[test]
fn verify_refuses_a_presigned_claim_without_expiry() {
    let req = Spec::get(GCI).presigned(60).sign();
    let signed = req.as_signed();
    let mut auth = parse_authorization(&signed).unwrap();
    assert_eq!(auth.form, AuthForm::Presigned);
    auth.expires_seconds = None;
    let regions = regions();
    assert!(matches!(
        verify(&signed, &auth, SECRET, soon(), &sts_options(&regions)),
        Err(SigV4Error::Malformed(_))
    ));
    auth.expires_seconds = Some(0);
    assert!(matches!(
        verify(&signed, &auth, SECRET, soon(), &sts_options(&regions)),
        Err(SigV4Error::Malformed(_))
    ));
}

#[test]
fn verify_rechecks_what_the_claims_require_of_the_request() {
    // Claims parsed from one request cannot vouch for another that lacks the signed host.
    let req = Spec::get(GCI).sign();
    let signed = req.as_signed();
    let mut auth = parse_authorization(&signed).unwrap();
    auth.signed_headers.retain(|h| h != "host");
    let regions = regions();
    assert_eq!(
        verify(&signed, &auth, SECRET, soon(), &sts_options(&regions)).unwrap_err(),
        SigV4Error::HeaderNotSigned("host")
    );
}

#[test]
fn client_messages_do_not_carry_the_detail() {
    let errors = [
        (
            SigV4Error::MissingAuthentication,
            403,
            "MissingAuthenticationToken",
        ),
        (
            SigV4Error::AmbiguousAuthentication,
            400,
            "IncompleteSignature",
        ),
        (
            SigV4Error::UnsupportedAlgorithm("\"X\"".into()),
            400,
            "IncompleteSignature",
        ),
        (
            SigV4Error::Malformed("secret detail".into()),
            400,
            "IncompleteSignature",
        ),
        (
            SigV4Error::HeaderNotSigned("host"),
            400,
            "IncompleteSignature",
        ),
        (
            SigV4Error::InvalidScope {
                field: ScopeField::Region,
                detail: "region \"secret detail\"".into(),
            },
            403,
            "SignatureDoesNotMatch",
        ),
        (
            SigV4Error::RequestTimeTooSkewed {
                request_time: signed_at(),
                now: soon(),
                max_skew_seconds: 900,
            },
            403,
            "RequestTimeTooSkewed",
        ),
        (
            SigV4Error::Expired {
                expired_at: signed_at(),
                now: soon(),
            },
            403,
            "AccessDenied",
        ),
        (
            SigV4Error::PayloadHashMismatch {
                claimed: "\"secret detail\"".into(),
            },
            403,
            "SignatureDoesNotMatch",
        ),
        (SigV4Error::SignatureMismatch, 403, "SignatureDoesNotMatch"),
    ];
    for (err, status, code) in errors {
        assert_eq!(err.http_status(), status, "{err:?}");
        assert_eq!(err.aws_code(), code, "{err:?}");
        let message = err.client_message();
        assert!(!message.is_empty());
        assert!(!message.contains("secret detail"), "{message}");
        assert!(!message.contains("2024"), "{message}");
        assert_ne!(message, err.to_string());
    }
}

#[test]
fn details_escape_and_truncate_untrusted_text() {
    let req = Spec::get(GCI).sign();
    let mut changed = req.clone();
    let long = format!("AWS4\"HMAC{}", "A".repeat(500));
    changed.set_header("authorization", &format!("{long} Credential=x"));
    let err = changed.check().unwrap_err();
    let detail = err.to_string();
    assert!(detail.contains("AWS4\\\"HMAC"), "{detail}");
    assert!(detail.len() < 200, "{detail}");
}

#[test]
fn debug_output_hides_the_security_token() {
    let req = Spec::get(GCI).token(TOKEN).sign();
    let auth = req.check().unwrap();
    let debug = format!("{auth:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    assert!(debug.contains(AKID), "{debug}");
}

#[test]
fn debug_output_of_a_request_shows_no_header_values_query_or_body() {
    let req = Spec::post("/?secret-param=1", b"Password=hunter2")
        .token(TOKEN)
        .sign();
    let debug = format!("{:?}", req.as_signed());
    for hidden in [TOKEN, "secret-param", "hunter2", "Signature="] {
        assert!(!debug.contains(hidden), "{hidden} in {debug}");
    }
    assert!(debug.contains("x-amz-security-token"), "{debug}");
}
