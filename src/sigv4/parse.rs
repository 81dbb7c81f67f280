//! Reading what a request claims about its signer (the `Authorization` header or the presigned
//! `X-Amz-*` query parameters), strictly and without any secret.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use http::header::{AUTHORIZATION, DATE};
use http::HeaderValue;

use super::canonical::{decode, query_pairs};
use super::error::{snippet, snippet_bytes, MAX_NAMED_HEADERS};
use super::{
    AuthForm, Authorization, Result, ScopeField, SigV4Error, SignedRequest, ALGORITHM,
    MAX_EXPIRES_SECONDS, TERMINATOR,
};

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
/// Every header named so must be signed.
const X_AMZ_PREFIX: &str = "x-amz-";

const Q_ALGORITHM: &[u8] = b"X-Amz-Algorithm";
const Q_CREDENTIAL: &[u8] = b"X-Amz-Credential";
const Q_DATE: &[u8] = b"X-Amz-Date";
const Q_EXPIRES: &[u8] = b"X-Amz-Expires";
const Q_SIGNED_HEADERS: &[u8] = b"X-Amz-SignedHeaders";
const Q_SIGNATURE: &[u8] = b"X-Amz-Signature";
const Q_SECURITY_TOKEN: &[u8] = b"X-Amz-Security-Token";

/// Query parameters whose presence means the presigned form.
const PRESIGNED_MARKERS: [&[u8]; 6] = [
    Q_ALGORITHM,
    Q_CREDENTIAL,
    Q_DATE,
    Q_EXPIRES,
    Q_SIGNED_HEADERS,
    Q_SIGNATURE,
];

/// Parses the signer's claims from the `Authorization` header or the presigned query parameters,
/// and checks that the headers which must be signed are.
///
/// Errors: [`SigV4Error::MissingAuthentication`] with neither form,
/// [`SigV4Error::AmbiguousAuthentication`] with both, [`SigV4Error::UnsupportedAlgorithm`],
/// [`SigV4Error::Malformed`], [`SigV4Error::HeaderNotSigned`],
/// [`SigV4Error::UnsignedAmzHeaders`], and
/// [`SigV4Error::InvalidScope`] for a terminator other than `aws4_request`.
pub fn parse_authorization<'a>(req: &SignedRequest<'a>) -> Result<Authorization<'a>> {
    let mut headers = req.headers.get_all(AUTHORIZATION).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(SigV4Error::Malformed(
            "Authorization header given more than once".into(),
        ));
    }
    let presigned =
        query_pairs(req.query).any(|(name, _)| PRESIGNED_MARKERS.contains(&decode(name).as_ref()));
    // Every combination is named; anything else is refused.
    let auth = match (header, presigned) {
        (Some(_), true) => Err(SigV4Error::AmbiguousAuthentication),
        (Some(value), false) => parse_header_form(req, value),
        (None, true) => parse_query_form(req),
        (None, false) => Err(SigV4Error::MissingAuthentication),
    }?;
    check_signed_header_requirements(req, &auth)?;
    Ok(auth)
}

/// `host` is always signed; in the header form the header that carries the request time is signed;
/// an `x-amz-security-token` header is signed, so that a token cannot be swapped under a signature;
/// and, in both forms, every other `x-amz-*` header present is signed too
/// ([`SigV4Error::UnsignedAmzHeaders`]), as S3 requires: such headers carry parameters of the call
/// (`x-amz-acl`, `x-amz-copy-source`, …) that a service would act on. The presigned form gets no
/// exception: its `X-Amz-*` query parameters are part of the signed query already, and S3 answers a
/// presigned URL sent with an unsigned `x-amz-*` header (`x-amz-checksum-mode`, say) the same way.
/// AWS's signers sign every `x-amz-*` header they send in the header form (botocore, aws-sigv4; the
/// unsigned `x-amzn-trace-id` is outside the namespace).
pub(super) fn check_signed_header_requirements(
    req: &SignedRequest,
    auth: &Authorization,
) -> Result<()> {
    let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    if !signed("host") {
        return Err(SigV4Error::HeaderNotSigned("host"));
    }
    if auth.form == AuthForm::Header {
        if req.headers.contains_key(X_AMZ_DATE) {
            if !signed(X_AMZ_DATE) {
                return Err(SigV4Error::HeaderNotSigned(X_AMZ_DATE));
            }
        } else if !signed("date") {
            return Err(SigV4Error::HeaderNotSigned("date"));
        }
    }
    if req.headers.contains_key(X_AMZ_SECURITY_TOKEN) && !signed(X_AMZ_SECURITY_TOKEN) {
        return Err(SigV4Error::HeaderNotSigned(X_AMZ_SECURITY_TOKEN));
    }
    // Header names are lowercase in a `HeaderMap`, as they are in SignedHeaders.
    let mut unsigned = req
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with(X_AMZ_PREFIX) && !signed(name));
    if let Some(first) = unsigned.next() {
        let mut names = vec![snippet(first)];
        let mut total = 1;
        for name in unsigned {
            if names.len() < MAX_NAMED_HEADERS {
                names.push(snippet(name));
            }
            total += 1;
        }
        return Err(SigV4Error::UnsignedAmzHeaders { names, total });
    }
    Ok(())
}

fn malformed(detail: impl Into<String>) -> SigV4Error {
    SigV4Error::Malformed(detail.into())
}

fn parse_header_form<'a>(
    req: &SignedRequest<'a>,
    value: &'a HeaderValue,
) -> Result<Authorization<'a>> {
    let value = value
        .to_str()
        .map_err(|_| malformed("Authorization header is not visible ASCII"))?;
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(snippet(algorithm)));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let component = component.trim_matches([' ', '\t']);
        let Some((name, value)) = component.split_once('=') else {
            return Err(malformed(format!(
                "Authorization component {} is not name=value",
                snippet(component)
            )));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(malformed(format!(
                    "unknown Authorization component {}",
                    snippet(other)
                )))
            }
        };
        if value.is_empty() || value.contains([' ', '\t']) {
            return Err(malformed(format!("empty or spaced {name} component")));
        }
        if slot.replace(value).is_some() {
            return Err(malformed(format!("{name} component given more than once")));
        }
    }
    let credential = credential.ok_or_else(|| malformed("no Credential component"))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("no SignedHeaders component"))?;
    let signature = signature.ok_or_else(|| malformed("no Signature component"))?;

    let request_time = match single_header(req, X_AMZ_DATE)? {
        Some(date) => parse_amz_date(date)
            .ok_or_else(|| malformed(format!("bad x-amz-date header {}", snippet(date))))?,
        None => match single_header(req, DATE.as_str())? {
            Some(date) => parse_http_date(date)
                .ok_or_else(|| malformed(format!("bad date header {}", snippet(date))))?,
            None => return Err(malformed("neither x-amz-date nor date header")),
        },
    };

    let security_token = match (
        single_header(req, X_AMZ_SECURITY_TOKEN)?,
        single_query_param(req.query, Q_SECURITY_TOKEN)?,
    ) {
        (Some(_), Some(_)) => return Err(malformed("security token in header and query")),
        (Some(token), None) => Some(Cow::Borrowed(token)),
        (None, Some(token)) => Some(Cow::Owned(token)),
        (None, None) => None,
    };

    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    Ok(Authorization {
        form: AuthForm::Header,
        access_key_id: Cow::Borrowed(access_key_id),
        scope_date: Cow::Borrowed(scope_date),
        region: Cow::Borrowed(region),
        service: Cow::Borrowed(service),
        signed_headers: parse_signed_headers(signed_headers)?,
        signature: Cow::Borrowed(parse_signature(signature)?),
        request_time,
        expires_seconds: None,
        security_token: non_empty_token(security_token)?,
    })
}

fn parse_query_form<'a>(req: &SignedRequest<'a>) -> Result<Authorization<'a>> {
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut expires = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut security_token = None;
    for (raw_name, raw_value) in query_pairs(req.query) {
        let name = decode(raw_name);
        let slot = match name.as_ref() {
            Q_ALGORITHM => &mut algorithm,
            Q_CREDENTIAL => &mut credential,
            Q_DATE => &mut date,
            Q_EXPIRES => &mut expires,
            Q_SIGNED_HEADERS => &mut signed_headers,
            Q_SIGNATURE => &mut signature,
            Q_SECURITY_TOKEN => &mut security_token,
            _ => continue,
        };
        let value = decode_utf8(raw_value, &name)?;
        if slot.replace(value).is_some() {
            return Err(malformed(format!(
                "query parameter {} given more than once",
                snippet_bytes(&name)
            )));
        }
    }
    let algorithm = algorithm.ok_or_else(|| malformed("no X-Amz-Algorithm query parameter"))?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(snippet(&algorithm)));
    }
    let credential = credential.ok_or_else(|| malformed("no X-Amz-Credential query parameter"))?;
    let date = date.ok_or_else(|| malformed("no X-Amz-Date query parameter"))?;
    let expires = expires.ok_or_else(|| malformed("no X-Amz-Expires query parameter"))?;
    let signed_headers =
        signed_headers.ok_or_else(|| malformed("no X-Amz-SignedHeaders query parameter"))?;
    let signature = signature.ok_or_else(|| malformed("no X-Amz-Signature query parameter"))?;

    let request_time = parse_amz_date(&date)
        .ok_or_else(|| malformed(format!("bad X-Amz-Date {}", snippet(&date))))?;
    let expires_seconds = parse_expires(&expires)?;
    let security_token = match (single_header(req, X_AMZ_SECURITY_TOKEN)?, security_token) {
        (Some(_), Some(_)) => return Err(malformed("security token in header and query")),
        (Some(token), None) => Some(Cow::Borrowed(token)),
        (None, token) => token.map(Cow::Owned),
    };

    let (access_key_id, scope_date, region, service) = parse_credential(&credential)?;
    let owned = |s: &str| Cow::Owned(s.to_owned());
    Ok(Authorization {
        form: AuthForm::Presigned,
        access_key_id: owned(access_key_id),
        scope_date: owned(scope_date),
        region: owned(region),
        service: owned(service),
        signed_headers: parse_signed_headers(&signed_headers)?
            .into_iter()
            .map(|name| Cow::Owned(name.into_owned()))
            .collect(),
        signature: owned(parse_signature(&signature)?),
        request_time,
        expires_seconds: Some(expires_seconds),
        security_token: non_empty_token(security_token)?,
    })
}

/// The value of a header that may appear at most once, as visible ASCII.
fn single_header<'a>(req: &SignedRequest<'a>, name: &str) -> Result<Option<&'a str>> {
    let mut values = req.headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed(format!("{name} header given more than once")));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| malformed(format!("{name} header is not visible ASCII")))
}

/// The decoded value of a query parameter that may appear at most once.
fn single_query_param(query: &str, wanted: &[u8]) -> Result<Option<String>> {
    let mut found = None;
    for (raw_name, raw_value) in query_pairs(query) {
        let name = decode(raw_name);
        if name.as_ref() == wanted && found.replace(decode_utf8(raw_value, &name)?).is_some() {
            return Err(malformed(format!(
                "query parameter {} given more than once",
                snippet_bytes(wanted)
            )));
        }
    }
    Ok(found)
}

fn decode_utf8(raw: &str, name: &[u8]) -> Result<String> {
    String::from_utf8(decode(raw).into_owned()).map_err(|_| {
        malformed(format!(
            "query parameter {} is not UTF-8",
            snippet_bytes(name)
        ))
    })
}

fn non_empty_token(token: Option<Cow<'_, str>>) -> Result<Option<Cow<'_, str>>> {
    match token {
        Some(token) if token.is_empty() => Err(malformed("empty security token")),
        other => Ok(other),
    }
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str)> {
    let mut split = credential.split('/');
    let parts = [(); 5].map(|()| split.next());
    let ([Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator)], None) =
        (parts, split.next())
    else {
        return Err(malformed(format!(
            "credential {} does not have five parts",
            snippet(credential)
        )));
    };
    if access_key_id.is_empty()
        || access_key_id.len() > 128
        || !access_key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(malformed(format!(
            "bad access key id {}",
            snippet(access_key_id)
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("bad scope date {}", snippet(date))));
    }
    if region.is_empty() || service.is_empty() {
        return Err(malformed("empty region or service in credential"));
    }
    if terminator != TERMINATOR {
        return Err(SigV4Error::InvalidScope {
            field: ScopeField::Terminator,
            detail: format!("terminator {}", snippet(terminator)),
        });
    }
    Ok((access_key_id, date, region, service))
}

/// Lowercase header names separated by `;`, strictly ascending (sorted, no repeats), borrowed.
fn parse_signed_headers(value: &str) -> Result<Vec<Cow<'_, str>>> {
    let mut names: Vec<Cow<'_, str>> = Vec::with_capacity(value.len() / 8 + 1);
    for name in value.split(';') {
        let well_formed = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            });
        if !well_formed {
            return Err(malformed(format!(
                "bad signed header name {}",
                snippet(name)
            )));
        }
        if names.last().is_some_and(|last| &**last >= name) {
            return Err(malformed("signed headers not sorted or repeated"));
        }
        names.push(Cow::Borrowed(name));
    }
    Ok(names)
}

fn parse_signature(value: &str) -> Result<&str> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(value)
    } else {
        Err(malformed(format!(
            "signature {} is not 64 lowercase hex digits",
            snippet(value)
        )))
    }
}

fn parse_expires(value: &str) -> Result<u32> {
    let seconds =
        if !value.is_empty() && value.len() <= 7 && value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u32>().ok()
        } else {
            None
        };
    match seconds {
        Some(s) if (1..=MAX_EXPIRES_SECONDS).contains(&s) => Ok(s),
        _ => Err(malformed(format!(
            "X-Amz-Expires {} is not within 1..=604800",
            snippet(value)
        ))),
    }
}

/// `YYYYMMDDTHHMMSSZ`, nothing else.
pub(super) fn parse_amz_date(value: &str) -> Option<DateTime<Utc>> {
    let bytes = value.as_bytes();
    let shape = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        bytes[r]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let date = NaiveDate::from_ymd_opt(num(0..4) as i32, num(4..6), num(6..8))?;
    // A leap second (60) is not a SigV4 time.
    let time = NaiveTime::from_hms_opt(num(9..11), num(11..13), num(13..15))?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// An HTTP `Date` header (RFC 1123 / RFC 2822 form).
pub(super) fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn amz_date_accepts_only_the_basic_iso_form() {
        let expected = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap();
        assert_eq!(parse_amz_date("20240229T235958Z"), Some(expected));
        for bad in [
            "",
            "20240229T235958",
            "20240229T235958z",
            "2024-02-29T23:59:58Z",
            "20240229 235958Z",
            "20230229T235958Z",
            "20241301T000000Z",
            "20240101T240000Z",
            "+2024010T000000Z",
            "２0240101T000000Z",
            "20240101T000000Z ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_date_accepts_imf_fixdate_and_numeric_zones() {
        let expected = Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap();
        for good in [
            "Sun, 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:00 -0000",
            "Sun, 30 Aug 2015 12:36:00 +0000",
            "Sun, 30 Aug 2015 14:36:00 +0200",
        ] {
            assert_eq!(parse_http_date(good), Some(expected), "{good:?}");
        }
        for bad in ["", "20150830T123600Z", "Sunday, 30-Aug-15 12:36:00 GMT"] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn credential_needs_five_well_formed_parts() {
        assert_eq!(
            parse_credential("AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request").unwrap(),
            ("AKIDEXAMPLE", "20150830", "us-east-1", "iam")
        );
        for bad in [
            "",
            "AKIDEXAMPLE/20150830/us-east-1/iam",
            "AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request/x",
            "/20150830/us-east-1/iam/aws4_request",
            "AKID-EXAMPLE/20150830/us-east-1/iam/aws4_request",
            "AKIDEXAMPLE/2015083/us-east-1/iam/aws4_request",
            "AKIDEXAMPLE/2015-08-30/us-east-1/iam/aws4_request",
            "AKIDEXAMPLE/20150830//iam/aws4_request",
            "AKIDEXAMPLE/20150830/us-east-1//aws4_request",
        ] {
            assert_eq!(
                parse_credential(bad).unwrap_err().aws_code(),
                "IncompleteSignature",
                "{bad:?}"
            );
        }
        for bad_terminator in ["aws4_requesT", "aws4_request ", "", "aws5_request"] {
            let credential = format!("AKIDEXAMPLE/20150830/us-east-1/iam/{bad_terminator}");
            assert!(
                matches!(
                    parse_credential(&credential),
                    Err(SigV4Error::InvalidScope {
                        field: ScopeField::Terminator,
                        ..
                    })
                ),
                "{credential:?}"
            );
        }
    }

    #[test]
    fn signed_headers_must_be_lowercase_sorted_and_unique() {
        assert_eq!(
            parse_signed_headers("content-type;host;x-amz-date").unwrap(),
            ["content-type", "host", "x-amz-date"]
        );
        for bad in [
            "",
            ";",
            "host;",
            ";host",
            "Host",
            "host;host",
            "x-amz-date;host",
            "host x-amz-date",
            "ho:st",
            "host;;x-amz-date",
        ] {
            assert!(
                matches!(parse_signed_headers(bad), Err(SigV4Error::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn signature_must_be_64_lowercase_hex() {
        let good = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        assert_eq!(parse_signature(good).unwrap(), good);
        for bad in [
            "",
            &good[..63],
            &format!("{good}0"),
            &good.to_uppercase(),
            &format!("{}g", &good[..63]),
        ] {
            assert!(parse_signature(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expires_must_be_within_a_week() {
        for (raw, expected) in [
            ("1", Some(1)),
            ("3600", Some(3600)),
            ("604800", Some(604_800)),
        ] {
            assert_eq!(parse_expires(raw).ok(), expected, "{raw:?}");
        }
        for bad in ["", "0", "604801", "-1", "+5", "1.5", "99999999999", " 60"] {
            assert!(parse_expires(bad).is_err(), "{bad:?}");
        }
    }
}
