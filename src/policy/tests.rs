//! Behaviour tests for the policy language, with expected values taken from AWS's IAM
//! documentation (condition operators, multivalued context keys, policy variables, evaluation
//! logic, Principal/NotPrincipal).

use serde_json::json;

use super::*;

const ACCOUNT: &str = "111122223333";
const OIDC: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

fn s(v: &str) -> ContextValue {
    ContextValue::Single(v.to_owned())
}

fn m(vs: &[&str]) -> ContextValue {
    ContextValue::Multi(vs.iter().map(|v| (*v).to_owned()).collect())
}

fn identity(doc: serde_json::Value) -> Policy {
    Policy::parse(&doc.to_string(), PolicyKind::Identity).unwrap()
}

fn trust(doc: serde_json::Value) -> Policy {
    Policy::parse(&doc.to_string(), PolicyKind::Trust).unwrap()
}

/// One `Allow *` statement with the given condition block.
fn with_condition(condition: serde_json::Value) -> Policy {
    identity(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}
    }))
}

fn ctx_with(keys: &[(&str, ContextValue)]) -> RequestContext {
    let mut ctx = RequestContext::new("s3:GetObject", "arn:aws:s3:::bucket/key");
    for (k, v) in keys {
        ctx.set(k, v.clone());
    }
    ctx
}

fn allowed(p: &Policy, ctx: &RequestContext) -> bool {
    evaluate(&PolicySet::new().with_identity("p", p), ctx).is_allowed()
}

type Case = (serde_json::Value, Vec<(&'static str, ContextValue)>, bool);

fn run_condition_cases(family: &str, cases: Vec<Case>) {
    for (i, (condition, keys, want)) in cases.into_iter().enumerate() {
        let p = with_condition(condition.clone());
        let ctx = ctx_with(&keys);
        assert_eq!(
            allowed(&p, &ctx),
            want,
            "{family} case {i}: {condition} with {keys:?}"
        );
    }
}

#[test]
fn string_operators() {
    let cases: Vec<Case> = vec![
        (
            json!({"StringEquals": {"aws:username": "alice"}}),
            vec![("aws:username", s("alice"))],
            true,
        ),
        (
            json!({"StringEquals": {"aws:username": "alice"}}),
            vec![("aws:username", s("Alice"))],
            false,
        ),
        (
            json!({"StringEquals": {"aws:username": "alice"}}),
            vec![],
            false,
        ),
        (
            json!({"StringEquals": {"aws:username": ["bob", "alice"]}}),
            vec![("aws:username", s("alice"))],
            true,
        ),
        (
            json!({"StringEquals": {"aws:username": "a*"}}),
            vec![("aws:username", s("abc"))],
            false,
        ),
        (
            json!({"StringEquals": {"aws:username": "a*"}}),
            vec![("aws:username", s("a*"))],
            true,
        ),
        (json!({"StringEquals": {"k": 5}}), vec![("k", s("5"))], true),
        (
            json!({"StringEquals": {"k": true}}),
            vec![("k", s("true"))],
            true,
        ),
        (json!({"StringEquals": {"k": ""}}), vec![("k", s(""))], true),
        // Condition key names are case-insensitive; values are not.
        (
            json!({"StringEquals": {"AWS:UserName": "alice"}}),
            vec![("aws:username", s("alice"))],
            true,
        ),
        (
            json!({"StringNotEquals": {"aws:username": "alice"}}),
            vec![("aws:username", s("bob"))],
            true,
        ),
        (
            json!({"StringNotEquals": {"aws:username": "alice"}}),
            vec![("aws:username", s("alice"))],
            false,
        ),
        (
            json!({"StringNotEquals": {"aws:username": "alice"}}),
            vec![],
            true,
        ),
        // A negated operator with several values: NOR.
        (
            json!({"StringNotEquals": {"k": ["a", "b"]}}),
            vec![("k", s("a"))],
            false,
        ),
        (
            json!({"StringNotEquals": {"k": ["a", "b"]}}),
            vec![("k", s("c"))],
            true,
        ),
        (
            json!({"StringEqualsIgnoreCase": {"k": "ALICE"}}),
            vec![("k", s("alice"))],
            true,
        ),
        (
            json!({"StringEqualsIgnoreCase": {"k": "ÉTÉ"}}),
            vec![("k", s("été"))],
            true,
        ),
        (
            json!({"StringEqualsIgnoreCase": {"k": "ALICE"}}),
            vec![],
            false,
        ),
        (
            json!({"StringNotEqualsIgnoreCase": {"k": "ALICE"}}),
            vec![("k", s("alice"))],
            false,
        ),
        (
            json!({"StringNotEqualsIgnoreCase": {"k": "ALICE"}}),
            vec![("k", s("bob"))],
            true,
        ),
        (
            json!({"StringNotEqualsIgnoreCase": {"k": "ALICE"}}),
            vec![],
            true,
        ),
        (
            json!({"StringLike": {"s3:prefix": "home/*"}}),
            vec![("s3:prefix", s("home/x/y"))],
            true,
        ),
        (
            json!({"StringLike": {"s3:prefix": "home/*"}}),
            vec![("s3:prefix", s("HOME/x"))],
            false,
        ),
        (
            json!({"StringLike": {"s3:prefix": "home/*"}}),
            vec![],
            false,
        ),
        (
            json!({"StringLike": {"k": "a?c"}}),
            vec![("k", s("abc"))],
            true,
        ),
        (
            json!({"StringLike": {"k": "a?c"}}),
            vec![("k", s("abbc"))],
            false,
        ),
        (
            json!({"StringLike": {"s3:prefix": ["", "home/"]}}),
            vec![("s3:prefix", s(""))],
            true,
        ),
        (
            json!({"StringNotLike": {"k": "*.example.com"}}),
            vec![("k", s("x.example.com"))],
            false,
        ),
        (
            json!({"StringNotLike": {"k": "*.example.com"}}),
            vec![("k", s("x.test"))],
            true,
        ),
        (
            json!({"StringNotLike": {"k": "*.example.com"}}),
            vec![],
            true,
        ),
        (json!({"StringEqualsIfExists": {"k": "a"}}), vec![], true),
        (
            json!({"StringEqualsIfExists": {"k": "a"}}),
            vec![("k", s("b"))],
            false,
        ),
        (
            json!({"StringEqualsIfExists": {"k": "a"}}),
            vec![("k", s("a"))],
            true,
        ),
        (
            json!({"StringNotLikeIfExists": {"k": "a*"}}),
            vec![("k", s("ab"))],
            false,
        ),
        // A multivalued key without a set qualifier: any value for positive operators ...
        (
            json!({"StringEquals": {"k": "a"}}),
            vec![("k", m(&["b", "a"]))],
            true,
        ),
        (
            json!({"StringEquals": {"k": "a"}}),
            vec![("k", m(&["b", "c"]))],
            false,
        ),
        (
            json!({"StringEquals": {"k": "a"}}),
            vec![("k", m(&[]))],
            false,
        ),
        // ... and no value matching for negated ones.
        (
            json!({"StringNotEquals": {"k": "a"}}),
            vec![("k", m(&["b", "a"]))],
            false,
        ),
        (
            json!({"StringNotEquals": {"k": "a"}}),
            vec![("k", m(&["b", "c"]))],
            true,
        ),
        (
            json!({"StringNotEquals": {"k": "a"}}),
            vec![("k", m(&[]))],
            true,
        ),
    ];
    run_condition_cases("string", cases);
}

#[test]
fn numeric_operators() {
    let cases: Vec<Case> = vec![
        (
            json!({"NumericLessThan": {"n": "10"}}),
            vec![("n", s("5"))],
            true,
        ),
        (
            json!({"NumericLessThan": {"n": "10"}}),
            vec![("n", s("10"))],
            false,
        ),
        (
            json!({"NumericLessThan": {"n": "10"}}),
            vec![("n", s("11"))],
            false,
        ),
        (json!({"NumericLessThan": {"n": "10"}}), vec![], false),
        (
            json!({"NumericLessThan": {"n": "10"}}),
            vec![("n", s("ten"))],
            false,
        ),
        (
            json!({"NumericLessThanEquals": {"s3:max-keys": "10"}}),
            vec![("s3:max-keys", s("10"))],
            true,
        ),
        (
            json!({"NumericLessThanEquals": {"s3:max-keys": 10}}),
            vec![("s3:max-keys", s("11"))],
            false,
        ),
        (
            json!({"NumericGreaterThan": {"n": 10}}),
            vec![("n", s("10.5"))],
            true,
        ),
        (
            json!({"NumericGreaterThan": {"n": 10}}),
            vec![("n", s("10"))],
            false,
        ),
        (
            json!({"NumericGreaterThanEquals": {"n": "10"}}),
            vec![("n", s("10"))],
            true,
        ),
        (
            json!({"NumericGreaterThanEquals": {"n": "10"}}),
            vec![("n", s("9"))],
            false,
        ),
        (
            json!({"NumericEquals": {"n": "10"}}),
            vec![("n", s("10.0"))],
            true,
        ),
        (
            json!({"NumericEquals": {"n": 1.5}}),
            vec![("n", s("1.5"))],
            true,
        ),
        (
            json!({"NumericEquals": {"n": ["1", "2"]}}),
            vec![("n", s("2"))],
            true,
        ),
        (
            json!({"NumericNotEquals": {"n": "10"}}),
            vec![("n", s("10"))],
            false,
        ),
        (
            json!({"NumericNotEquals": {"n": "10"}}),
            vec![("n", s("11"))],
            true,
        ),
        (json!({"NumericNotEquals": {"n": "10"}}), vec![], true),
        (
            json!({"NumericLessThanIfExists": {"n": "10"}}),
            vec![],
            true,
        ),
        (
            json!({"NumericLessThanIfExists": {"n": "10"}}),
            vec![("n", s("12"))],
            false,
        ),
    ];
    run_condition_cases("numeric", cases);
}

#[test]
fn date_operators() {
    let t = "aws:CurrentTime";
    let e = "aws:EpochTime";
    let cases: Vec<Case> = vec![
        (
            json!({"DateLessThan": {t: "2024-01-01T00:00:00Z"}}),
            vec![(t, s("2023-12-31T23:59:59Z"))],
            true,
        ),
        (
            json!({"DateLessThan": {t: "2024-01-01T00:00:00Z"}}),
            vec![(t, s("2024-01-01T00:00:00Z"))],
            false,
        ),
        (
            json!({"DateLessThan": {t: "2024-01-01T00:00:00Z"}}),
            vec![],
            false,
        ),
        (
            json!({"DateLessThanEquals": {t: "2024-01-01T00:00:00Z"}}),
            vec![(t, s("2024-01-01T00:00:00Z"))],
            true,
        ),
        (
            json!({"DateGreaterThan": {t: "2024-01-01"}}),
            vec![(t, s("2024-01-01T00:00:01Z"))],
            true,
        ),
        (
            json!({"DateGreaterThanEquals": {t: "2024-01-01T00:00:00Z"}}),
            vec![(t, s("2023-12-31T23:59:59Z"))],
            false,
        ),
        // Epoch seconds on either side.
        (
            json!({"DateGreaterThan": {e: "2024-01-01T00:00:00Z"}}),
            vec![(e, s("1704067201"))],
            true,
        ),
        (
            json!({"DateGreaterThan": {e: "2024-01-01T00:00:00Z"}}),
            vec![(e, s("1704067200"))],
            false,
        ),
        (
            json!({"DateEquals": {t: "1704067200"}}),
            vec![(t, s("2024-01-01T00:00:00Z"))],
            true,
        ),
        (
            json!({"DateEquals": {t: 1704067200}}),
            vec![(t, s("2024-01-01T01:00:00+01:00"))],
            true,
        ),
        (
            json!({"DateNotEquals": {t: "2024-01-01T00:00:00Z"}}),
            vec![],
            true,
        ),
        (
            json!({"DateNotEquals": {t: "2024-01-01T00:00:00Z"}}),
            vec![(t, s("2024-01-01T00:00:00Z"))],
            false,
        ),
        (
            json!({"DateLessThan": {t: "2024-01-01T00:00:00Z"}}),
            vec![(t, s("not a date"))],
            false,
        ),
        (
            json!({"DateLessThanIfExists": {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}}),
            vec![],
            true,
        ),
    ];
    run_condition_cases("date", cases);
}

#[test]
fn current_time_comes_from_the_context() {
    use chrono::TimeZone;
    let p = with_condition(json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}));
    let mut ctx = ctx_with(&[]);
    assert!(!allowed(&p, &ctx), "no time in the context: no match");
    ctx.set_current_time(chrono::Utc.with_ymd_and_hms(2029, 12, 31, 0, 0, 0).unwrap());
    assert!(allowed(&p, &ctx));
    ctx.set_current_time(chrono::Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
    assert!(!allowed(&p, &ctx));
    let q =
        with_condition(json!({"DateGreaterThanEquals": {"aws:EpochTime": "2030-01-01T00:00:00Z"}}));
    assert!(allowed(&q, &ctx));
}

#[test]
fn bool_binary_and_ip_operators() {
    let b64 = "QmluYXJ5VmFsdWVJbkJhc2U2NA==";
    let cases: Vec<Case> = vec![
        (
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            vec![("aws:SecureTransport", s("true"))],
            true,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            vec![("aws:SecureTransport", s("false"))],
            false,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": true}}),
            vec![("aws:SecureTransport", s("TRUE"))],
            true,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": "false"}}),
            vec![("aws:SecureTransport", s("false"))],
            true,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            vec![],
            false,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            vec![("aws:SecureTransport", s("yes"))],
            false,
        ),
        (
            json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}),
            vec![],
            true,
        ),
        (
            json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}),
            vec![("aws:MultiFactorAuthPresent", s("false"))],
            false,
        ),
        (
            json!({"BinaryEquals": {"k": b64}}),
            vec![("k", s(b64))],
            true,
        ),
        (
            json!({"BinaryEquals": {"k": b64}}),
            vec![("k", s("QQ=="))],
            false,
        ),
        (
            json!({"BinaryEquals": {"k": b64}}),
            vec![("k", s("%%%"))],
            false,
        ),
        (json!({"BinaryEquals": {"k": b64}}), vec![], false),
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("203.0.113.5"))],
            true,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("203.0.114.1"))],
            false,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![],
            false,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("garbage"))],
            false,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("::ffff:203.0.113.9"))],
            true,
        ),
        // A bare address means /32.
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}),
            vec![("aws:SourceIp", s("203.0.113.5"))],
            true,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}),
            vec![("aws:SourceIp", s("203.0.113.6"))],
            false,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}),
            vec![("aws:SourceIp", s("2001:db8:1234:5678::1"))],
            true,
        ),
        (
            json!({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}),
            vec![("aws:SourceIp", s("2001:db8:1234:5679::1"))],
            false,
        ),
        (
            json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("198.51.100.1"))],
            true,
        ),
        (
            json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("203.0.113.200"))],
            false,
        ),
        (
            json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![],
            true,
        ),
        (
            json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
            vec![("aws:SourceIp", s("garbage"))],
            true,
        ),
    ];
    run_condition_cases("bool/binary/ip", cases);
}

#[test]
fn arn_operators() {
    let k = "aws:SourceArn";
    let doc_pattern = "arn:aws:someservice:*:111122223333:finance/*";
    let doc_value =
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt";
    let cases: Vec<Case> = vec![
        (
            json!({"ArnEquals": {k: "arn:aws:sns:us-east-1:123456789012:topic"}}),
            vec![(k, s("arn:aws:sns:us-east-1:123456789012:topic"))],
            true,
        ),
        (
            json!({"ArnEquals": {k: "arn:aws:sns:*:123456789012:topic"}}),
            vec![(k, s("arn:aws:sns:eu-west-1:123456789012:topic"))],
            true,
        ),
        (
            json!({"ArnLike": {k: "arn:aws:sns:*:123456789012:topic"}}),
            vec![(k, s("arn:aws:sns:eu-west-1:123456789012:topic"))],
            true,
        ),
        (
            json!({"ArnLike": {k: "arn:aws:sns:*:123456789012:topic"}}),
            vec![(k, s("arn:aws:sns:eu-west-1:123456789012:Topic"))],
            false,
        ),
        (
            json!({"ArnLike": {k: "arn:aws:sns:*:123456789012:topic"}}),
            vec![],
            false,
        ),
        // AWS's example: StringLike matches across colons, ArnLike does not.
        (
            json!({"StringLike": {k: doc_pattern}}),
            vec![(k, s(doc_value))],
            true,
        ),
        (
            json!({"ArnLike": {k: doc_pattern}}),
            vec![(k, s(doc_value))],
            false,
        ),
        (
            json!({"ArnNotLike": {k: "arn:aws:sns:*:123456789012:*"}}),
            vec![(k, s("arn:aws:sns:us-east-1:123456789012:t"))],
            false,
        ),
        (
            json!({"ArnNotLike": {k: "arn:aws:sns:*:123456789012:*"}}),
            vec![(k, s("arn:aws:sns:us-east-1:999999999999:t"))],
            true,
        ),
        (
            json!({"ArnNotLike": {k: "arn:aws:sns:*:123456789012:*"}}),
            vec![],
            true,
        ),
        (
            json!({"ArnNotEquals": {k: "arn:aws:sns:us-east-1:123456789012:t"}}),
            vec![(k, s("arn:aws:sns:us-east-1:123456789012:t"))],
            false,
        ),
        (
            json!({"ArnLikeIfExists": {k: "arn:aws:sns:*:*:*"}}),
            vec![],
            true,
        ),
    ];
    run_condition_cases("arn", cases);
}

#[test]
fn null_operator() {
    let cases: Vec<Case> = vec![
        (
            json!({"Null": {"aws:TokenIssueTime": "true"}}),
            vec![],
            true,
        ),
        (
            json!({"Null": {"aws:TokenIssueTime": "true"}}),
            vec![("aws:TokenIssueTime", s("2024-01-01T00:00:00Z"))],
            false,
        ),
        (json!({"Null": {"aws:TokenIssueTime": true}}), vec![], true),
        (
            json!({"Null": {"aws:TokenIssueTime": "false"}}),
            vec![("aws:TokenIssueTime", s("2024-01-01T00:00:00Z"))],
            true,
        ),
        (
            json!({"Null": {"aws:TokenIssueTime": "false"}}),
            vec![],
            false,
        ),
        // Empty values count as null.
        (
            json!({"Null": {"aws:TagKeys": "true"}}),
            vec![("aws:TagKeys", m(&[]))],
            true,
        ),
        (
            json!({"Null": {"aws:TagKeys": "false"}}),
            vec![("aws:TagKeys", m(&[]))],
            false,
        ),
        (json!({"Null": {"k": "true"}}), vec![("k", s(""))], true),
    ];
    run_condition_cases("null", cases);
}

#[test]
fn set_operators() {
    let tk = "aws:TagKeys";
    let cases: Vec<Case> = vec![
        (
            json!({"ForAnyValue:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, m(&["a", "x"]))],
            true,
        ),
        (
            json!({"ForAnyValue:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, m(&["x"]))],
            false,
        ),
        (
            json!({"ForAnyValue:StringEquals": {tk: ["a", "b"]}}),
            vec![],
            false,
        ),
        (
            json!({"ForAnyValue:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, m(&[]))],
            false,
        ),
        (
            json!({"ForAnyValue:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, s("a"))],
            true,
        ),
        (
            json!({"ForAnyValue:StringEqualsIfExists": {tk: ["a"]}}),
            vec![],
            true,
        ),
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, m(&["a", "b"]))],
            true,
        ),
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, m(&["a", "x"]))],
            false,
        ),
        // The trap: ForAllValues is true for a missing key or an empty set.
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}}),
            vec![],
            true,
        ),
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, m(&[]))],
            true,
        ),
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}}),
            vec![(tk, s(""))],
            true,
        ),
        // A Null check closes it.
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}, "Null": {tk: "false"}}),
            vec![],
            false,
        ),
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}, "Null": {tk: "false"}}),
            vec![(tk, m(&[]))],
            false,
        ),
        (
            json!({"ForAllValues:StringEquals": {tk: ["a", "b"]}, "Null": {tk: "false"}}),
            vec![(tk, m(&["b"]))],
            true,
        ),
        (
            json!({"ForAllValues:StringLike": {tk: "Created*"}}),
            vec![(tk, m(&["CreatedBy", "CreatedAt"]))],
            true,
        ),
        // AWS's example: ForAllValues:StringNotLike applies the negation to each request value.
        (
            json!({"ForAllValues:StringNotLike": {tk: "key1*"}}),
            vec![(tk, m(&["key2"]))],
            true,
        ),
        (
            json!({"ForAllValues:StringNotLike": {tk: "key1*"}}),
            vec![(tk, m(&["key1a"]))],
            false,
        ),
        (
            json!({"ForAllValues:StringNotLike": {tk: "key1*"}}),
            vec![(tk, m(&["key1a", "key2"]))],
            false,
        ),
        (
            json!({"ForAnyValue:StringNotEquals": {tk: "a"}}),
            vec![(tk, m(&["a", "b"]))],
            true,
        ),
        (
            json!({"ForAnyValue:StringNotEquals": {tk: "a"}}),
            vec![(tk, m(&["a"]))],
            false,
        ),
        // The DynamoDB example from the docs.
        (
            json!({"ForAllValues:StringLike": {"dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]}}),
            vec![(
                "dynamodb:requestedAttributes",
                m(&["PostDateTime", "Message"]),
            )],
            true,
        ),
        (
            json!({"ForAllValues:StringLike": {"dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]}}),
            vec![(
                "dynamodb:requestedAttributes",
                m(&["PostDateTime", "UserName"]),
            )],
            false,
        ),
        (
            json!({"ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}}),
            vec![(
                "dynamodb:requestedAttributes",
                m(&["UserName", "Message", "PostDateTime"]),
            )],
            true,
        ),
        (
            json!({"ForAnyValue:NumericGreaterThan": {"n": "10"}}),
            vec![("n", m(&["1", "11"]))],
            true,
        ),
        (
            json!({"ForAllValues:NumericGreaterThan": {"n": "10"}}),
            vec![("n", m(&["1", "11"]))],
            false,
        ),
        (
            json!({"ForAnyValue:IpAddress": {"ips": "10.0.0.0/8"}}),
            vec![("ips", m(&["192.0.2.1", "10.1.2.3"]))],
            true,
        ),
    ];
    run_condition_cases("set", cases);
}

#[test]
fn several_keys_and_operators_are_anded() {
    let p = with_condition(json!({
        "StringEquals": {"aws:PrincipalTag/department": "eng", "aws:PrincipalTag/role": ["audit", "security"]},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}
    }));
    let arn = ("aws:PrincipalArn", s("arn:aws:iam::111122223333:role/R"));
    let all = ctx_with(&[
        ("aws:PrincipalTag/department", s("eng")),
        ("aws:PrincipalTag/role", s("security")),
        arn.clone(),
    ]);
    assert!(allowed(&p, &all));
    let wrong_role = ctx_with(&[
        ("aws:PrincipalTag/department", s("eng")),
        ("aws:PrincipalTag/role", s("dev")),
        arn.clone(),
    ]);
    assert!(!allowed(&p, &wrong_role));
    let no_arn = ctx_with(&[
        ("aws:PrincipalTag/department", s("eng")),
        ("aws:PrincipalTag/role", s("audit")),
    ]);
    assert!(!allowed(&p, &no_arn));
}

#[test]
fn policy_variables_in_conditions() {
    let cases: Vec<Case> = vec![
        (
            json!({"StringEquals": {"k": "${aws:username}"}}),
            vec![("aws:username", s("alice")), ("k", s("alice"))],
            true,
        ),
        (
            json!({"StringEquals": {"k": "${aws:username}"}}),
            vec![("aws:username", s("alice")), ("k", s("bob"))],
            false,
        ),
        (
            json!({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}),
            vec![
                ("aws:username", s("alice")),
                ("s3:prefix", s("home/alice/docs")),
            ],
            true,
        ),
        (
            json!({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}),
            vec![
                ("aws:username", s("alice")),
                ("s3:prefix", s("home/bob/docs")),
            ],
            false,
        ),
        // Defaults.
        (
            json!({"StringEquals": {"k": "${aws:userid, 'anonymous'}"}}),
            vec![("k", s("anonymous"))],
            true,
        ),
        (
            json!({"StringEquals": {"k": "${aws:userid, 'anonymous'}"}}),
            vec![("aws:userid", s("AIDA1")), ("k", s("anonymous"))],
            false,
        ),
        // No value, no default: the value matches nothing.
        (
            json!({"StringEquals": {"k": "${aws:userid}"}}),
            vec![("k", s(""))],
            false,
        ),
        (
            json!({"StringLike": {"k": "${aws:userid}*"}}),
            vec![("k", s("x"))],
            false,
        ),
        (
            json!({"StringNotEquals": {"k": "${aws:userid}"}}),
            vec![("k", s("x"))],
            true,
        ),
        (
            json!({"StringEquals": {"k": ["${aws:userid}", "x"]}}),
            vec![("k", s("x"))],
            true,
        ),
        // A multivalued key is not a variable value.
        (
            json!({"StringEquals": {"k": "${aws:TagKeys}"}}),
            vec![("aws:TagKeys", m(&["a"])), ("k", s("a"))],
            false,
        ),
        // Escapes.
        (
            json!({"StringLike": {"k": "a${*}"}}),
            vec![("k", s("a*"))],
            true,
        ),
        (
            json!({"StringLike": {"k": "a${*}"}}),
            vec![("k", s("ab"))],
            false,
        ),
        (
            json!({"StringLike": {"k": "why${?}"}}),
            vec![("k", s("why?"))],
            true,
        ),
        (
            json!({"StringLike": {"k": "why${?}"}}),
            vec![("k", s("whyX"))],
            false,
        ),
        (
            json!({"StringEquals": {"k": "${$}{x}"}}),
            vec![("k", s("${x}"))],
            true,
        ),
        // Claims of a web identity token, by their full key.
        (
            json!({"StringEquals": {"k": "${token.actions.githubusercontent.com:sub}"}}),
            vec![
                (
                    "token.actions.githubusercontent.com:sub",
                    s("repo:o/r:ref:refs/heads/main"),
                ),
                ("k", s("repo:o/r:ref:refs/heads/main")),
            ],
            true,
        ),
        (
            json!({"StringEqualsIgnoreCase": {"k": "${aws:username}"}}),
            vec![("aws:username", s("Alice")), ("k", s("ALICE"))],
            true,
        ),
        (
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::${aws:username}-*"}}),
            vec![
                ("aws:username", s("alice")),
                ("aws:SourceArn", s("arn:aws:s3:::alice-logs")),
            ],
            true,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": "${x:flag}"}}),
            vec![("x:flag", s("true")), ("aws:SecureTransport", s("true"))],
            true,
        ),
        (
            json!({"Bool": {"aws:SecureTransport": "${x:flag}"}}),
            vec![("aws:SecureTransport", s("true"))],
            false,
        ),
    ];
    run_condition_cases("variables", cases);
}

#[test]
fn variables_are_literal_before_2012_10_17() {
    let doc = |version: Option<&str>| {
        let mut v = json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"k": "${aws:username}"}}}});
        if let Some(ver) = version {
            v["Version"] = json!(ver);
        }
        identity(v)
    };
    let literal = ctx_with(&[("k", s("${aws:username}")), ("aws:username", s("alice"))]);
    let resolved = ctx_with(&[("k", s("alice")), ("aws:username", s("alice"))]);
    for p in [doc(None), doc(Some("2008-10-17"))] {
        assert!(allowed(&p, &literal));
        assert!(!allowed(&p, &resolved));
    }
    let p = doc(Some("2012-10-17"));
    assert!(!allowed(&p, &literal));
    assert!(allowed(&p, &resolved));
}

#[test]
fn policy_variables_in_resources() {
    let p = identity(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": "arn:aws:s3:::bucket/home/${aws:username}/*"}
    }));
    let mut ctx = RequestContext::new("s3:GetObject", "arn:aws:s3:::bucket/home/alice/notes.txt");
    let d = evaluate(&PolicySet::new().with_identity("p", &p), &ctx);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(d.missing_context_keys, vec!["aws:username"]);
    ctx.set_string("aws:username", "alice");
    let d = evaluate(&PolicySet::new().with_identity("p", &p), &ctx);
    assert_eq!(d.effect, Effect::Allow);
    assert!(d.missing_context_keys.is_empty());
    ctx.set_string("aws:username", "bob");
    assert!(!allowed(&p, &ctx));

    let tagged = identity(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "s3:*",
            "Resource": "arn:aws:s3:::${aws:PrincipalTag/team, 'shared'}-bucket/*"}
    }));
    let mut ctx = RequestContext::new("s3:GetObject", "arn:aws:s3:::shared-bucket/x");
    assert!(allowed(&tagged, &ctx));
    ctx.set_string("aws:PrincipalTag/team", "blue");
    assert!(!allowed(&tagged, &ctx));
    let ctx = RequestContext::new("s3:GetObject", "arn:aws:s3:::blue-bucket/x")
        .with("aws:principaltag/TEAM", "blue");
    assert!(allowed(&tagged, &ctx));
}

#[test]
fn action_wildcards_are_case_insensitive() {
    let cases: &[(&str, &str, bool)] = &[
        ("s3:GetObject", "s3:GetObject", true),
        ("s3:getobject", "S3:GETOBJECT", true),
        ("S3:Get*", "s3:GetObjectAcl", true),
        ("s3:Get*", "s3:PutObject", false),
        ("s3:*", "s3:PutObject", true),
        ("s3:*", "s3x:PutObject", false),
        ("iam:*AccessKey*", "iam:CreateAccessKey", true),
        ("iam:*AccessKey*", "iam:ListUsers", false),
        ("ec2:Describe?nstances", "ec2:DescribeInstances", true),
        ("ec2:Describe?nstances", "ec2:DescribeXXnstances", false),
        ("*", "anything:AtAll", true),
        ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", false),
    ];
    for (pattern, action, want) in cases {
        let p =
            identity(json!({"Statement": {"Effect": "Allow", "Action": pattern, "Resource": "*"}}));
        let ctx = RequestContext::new(*action, "*");
        assert_eq!(allowed(&p, &ctx), *want, "{pattern} vs {action}");
    }
}

#[test]
fn resource_wildcards_are_case_sensitive() {
    let cases: &[(&str, &str, bool)] = &[
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b", true),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::Bucket/a", false),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b", true),
        (
            "arn:aws:iam::111122223333:user/Bob",
            "arn:aws:iam::111122223333:user/bob",
            false,
        ),
        (
            "arn:aws:iam::111122223333:user/accounting/*",
            "arn:aws:iam::111122223333:user/accounting/x",
            true,
        ),
        (
            "arn:aws:sqs:us-east-2:*:queue1",
            "arn:aws:sqs:us-east-2:444455556666:queue1",
            true,
        ),
        (
            "arn:aws:sqs:us-east-2:*:queue1",
            "arn:aws:sqs:us-east-2:444455556666:queue2",
            false,
        ),
        (
            "arn:aws:ec2:*",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
            true,
        ),
        ("*", "arn:aws:anything:::x", true),
    ];
    for (pattern, resource, want) in cases {
        let p =
            identity(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": pattern}}));
        let ctx = RequestContext::new("s3:GetObject", *resource);
        assert_eq!(allowed(&p, &ctx), *want, "{pattern} vs {resource}");
    }
}

#[test]
fn not_action_and_not_resource() {
    let p =
        identity(json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}));
    assert!(allowed(&p, &RequestContext::new("s3:GetObject", "*")));
    assert!(!allowed(&p, &RequestContext::new("iam:CreateUser", "*")));

    let q = identity(json!({"Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::safe", "arn:aws:s3:::safe/*"]}
    ]}));
    let set = PolicySet::new().with_identity("q", &q);
    let inside = RequestContext::new("s3:GetObject", "arn:aws:s3:::safe/x");
    assert_eq!(evaluate(&set, &inside).effect, Effect::Allow);
    let outside = RequestContext::new("s3:GetObject", "arn:aws:s3:::other/x");
    let d = evaluate(&set, &outside);
    assert_eq!(d.effect, Effect::ExplicitDeny);
    assert_eq!(d.matched.len(), 2);
    assert_eq!(d.matched[1].index, 1);
    assert_eq!(d.matched[1].effect, StatementEffect::Deny);
}

#[test]
fn explicit_deny_wins_everywhere() {
    let allow_all =
        identity(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
    let deny_delete = identity(json!({"Statement": {"Sid": "NoDelete", "Effect": "Deny",
        "Action": "s3:DeleteObject", "Resource": "*"}}));
    let ctx = RequestContext::new("s3:DeleteObject", "arn:aws:s3:::b/k");
    let sets = [
        PolicySet::new()
            .with_identity("a", &allow_all)
            .with_identity("d", &deny_delete),
        PolicySet::new()
            .with_identity("a", &allow_all)
            .with_session("d", &deny_delete),
        PolicySet::new()
            .with_identity("a", &allow_all)
            .with_boundary("d", &deny_delete),
    ];
    for set in &sets {
        let d = evaluate(set, &ctx);
        assert_eq!(d.effect, Effect::ExplicitDeny);
        assert!(d
            .matched
            .iter()
            .any(|m| m.sid.as_deref() == Some("NoDelete") && m.effect == StatementEffect::Deny));
    }
    let get = RequestContext::new("s3:GetObject", "arn:aws:s3:::b/k");
    assert!(evaluate(&sets[0], &get).is_allowed());
}

#[test]
fn nothing_allows_by_default() {
    let ctx = RequestContext::new("s3:GetObject", "*");
    assert_eq!(
        evaluate(&PolicySet::new(), &ctx).effect,
        Effect::ImplicitDeny
    );
    let p = identity(json!({"Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}}));
    let d = evaluate(&PolicySet::new().with_identity("p", &p), &ctx);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert!(d.matched.is_empty());
}

fn allow(action: &str) -> Policy {
    identity(json!({"Statement": {"Effect": "Allow", "Action": action, "Resource": "*"}}))
}

#[test]
fn session_policies_intersect() {
    let id = allow("s3:*");
    let session = allow("s3:GetObject");
    let other_session = allow("s3:ListBucket");
    let get = RequestContext::new("s3:GetObject", "arn:aws:s3:::b/k");
    let put = RequestContext::new("s3:PutObject", "arn:aws:s3:::b/k");
    let list = RequestContext::new("s3:ListBucket", "arn:aws:s3:::b");

    let set = PolicySet::new()
        .with_identity("id", &id)
        .with_session("s", &session);
    assert!(evaluate(&set, &get).is_allowed());
    assert_eq!(evaluate(&set, &put).effect, Effect::ImplicitDeny);

    // Several session policies: their union, still within the identity policies.
    let both = set.clone().with_session("s2", &other_session);
    assert!(evaluate(&both, &list).is_allowed());
    assert_eq!(evaluate(&both, &put).effect, Effect::ImplicitDeny);

    // A session policy grants nothing by itself.
    let only_session = PolicySet::new().with_session("s", &session);
    assert_eq!(evaluate(&only_session, &get).effect, Effect::ImplicitDeny);

    // Present but empty: nothing is allowed.
    let mut empty = PolicySet::new().with_identity("id", &id);
    empty.session = Some(Vec::new());
    assert_eq!(evaluate(&empty, &get).effect, Effect::ImplicitDeny);
}

#[test]
fn permissions_boundary_intersects() {
    let id = allow("s3:*");
    let boundary = allow("s3:Get*");
    let set = PolicySet::new()
        .with_identity("id", &id)
        .with_boundary("b", &boundary);
    assert!(evaluate(&set, &RequestContext::new("s3:GetObject", "*")).is_allowed());
    assert_eq!(
        evaluate(&set, &RequestContext::new("s3:PutObject", "*")).effect,
        Effect::ImplicitDeny
    );
    let only_boundary = PolicySet::new().with_boundary("b", &boundary);
    assert_eq!(
        evaluate(&only_boundary, &RequestContext::new("s3:GetObject", "*")).effect,
        Effect::ImplicitDeny
    );
}

fn resource_policy(principal: serde_json::Value) -> Policy {
    Policy::parse(
        &json!({"Statement": {"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*"}})
        .to_string(),
        PolicyKind::Resource,
    )
    .unwrap()
}

#[test]
fn resource_policies_by_principal_kind() {
    let session_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/R/S");
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/R");
    let caller = Principal::assumed_role("aws", ACCOUNT, "R", "S");
    let ctx = RequestContext::new("s3:GetObject", "arn:aws:s3:::b/k").with_principal(caller);
    let nothing = allow("ec2:*");
    let get = allow("s3:GetObject");

    // Named directly by its session ARN: allowed even though the session policy is silent.
    let direct = resource_policy(json!({"AWS": session_arn}));
    let set = PolicySet::new()
        .with_identity("id", &nothing)
        .with_session("s", &nothing)
        .with_resource("bucket", &direct);
    assert_eq!(evaluate(&set, &ctx).effect, Effect::Allow);

    // Named by its role ARN: an allow, but limited by the session policy and boundary.
    let by_role = resource_policy(json!({"AWS": role_arn}));
    let set = PolicySet::new()
        .with_identity("id", &nothing)
        .with_resource("bucket", &by_role);
    assert_eq!(evaluate(&set, &ctx).effect, Effect::Allow);
    let limited = set.clone().with_session("s", &nothing);
    assert_eq!(evaluate(&limited, &ctx).effect, Effect::ImplicitDeny);
    let bounded = set.clone().with_boundary("b", &nothing);
    assert_eq!(evaluate(&bounded, &ctx).effect, Effect::ImplicitDeny);
    let permitted = set.clone().with_session("s", &get);
    assert_eq!(evaluate(&permitted, &ctx).effect, Effect::Allow);

    // Named by account only: delegates to the identity policies.
    for account in [
        json!(ACCOUNT),
        json!(format!("arn:aws:iam::{ACCOUNT}:root")),
    ] {
        let by_account = resource_policy(json!({ "AWS": account }));
        let set = PolicySet::new()
            .with_identity("id", &nothing)
            .with_resource("bucket", &by_account);
        assert_eq!(evaluate(&set, &ctx).effect, Effect::ImplicitDeny);
        let set = PolicySet::new()
            .with_identity("id", &get)
            .with_resource("bucket", &by_account);
        assert_eq!(evaluate(&set, &ctx).effect, Effect::Allow);
    }

    // Anyone: granted, but within the session policy.
    let public = resource_policy(json!("*"));
    let set = PolicySet::new().with_resource("bucket", &public);
    assert_eq!(evaluate(&set, &ctx).effect, Effect::Allow);
    assert_eq!(
        evaluate(
            &set,
            &RequestContext::new("s3:GetObject", "arn:aws:s3:::b/k")
        )
        .effect,
        Effect::Allow
    );
    let limited = set.clone().with_session("s", &nothing);
    assert_eq!(evaluate(&limited, &ctx).effect, Effect::ImplicitDeny);

    // Someone else entirely.
    let other = resource_policy(json!({"AWS": "arn:aws:iam::444455556666:user/Bob"}));
    let set = PolicySet::new().with_resource("bucket", &other);
    assert_eq!(evaluate(&set, &ctx).effect, Effect::ImplicitDeny);
}

fn github_trust() -> Policy {
    trust(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GitHubActions",
            "Effect": "Allow",
            "Principal": {"Federated": OIDC},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                "StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org/octo-repo:*"}
            }
        }]
    }))
}

fn web_identity_ctx(sub: &str) -> RequestContext {
    RequestContext::new(
        "sts:AssumeRoleWithWebIdentity",
        format!("arn:aws:iam::{ACCOUNT}:role/deploy"),
    )
    .with_principal(Principal::federated(OIDC))
    .with(
        "token.actions.githubusercontent.com:aud",
        "sts.amazonaws.com",
    )
    .with("token.actions.githubusercontent.com:sub", sub)
}

#[test]
fn trust_policy_for_web_identity() {
    let t = github_trust();
    let ok = evaluate_trust(
        &t,
        &web_identity_ctx("repo:octo-org/octo-repo:ref:refs/heads/main"),
    );
    assert_eq!(ok.effect, Effect::Allow);
    assert_eq!(ok.matched[0].sid.as_deref(), Some("GitHubActions"));
    assert_eq!(ok.matched[0].policy, "trust");

    let wrong_repo = evaluate_trust(
        &t,
        &web_identity_ctx("repo:evil/octo-repo:ref:refs/heads/main"),
    );
    assert_eq!(wrong_repo.effect, Effect::ImplicitDeny);

    let other_provider = web_identity_ctx("repo:octo-org/octo-repo:x")
        .with_principal(Principal::federated("accounts.google.com"));
    assert_eq!(
        evaluate_trust(&t, &other_provider).effect,
        Effect::ImplicitDeny
    );

    let wrong_action = RequestContext::new("sts:AssumeRole", "*")
        .with_principal(Principal::federated(OIDC))
        .with(
            "token.actions.githubusercontent.com:aud",
            "sts.amazonaws.com",
        )
        .with(
            "token.actions.githubusercontent.com:sub",
            "repo:octo-org/octo-repo:x",
        );
    assert_eq!(
        evaluate_trust(&t, &wrong_action).effect,
        Effect::ImplicitDeny
    );

    let mut no_sub = web_identity_ctx("x");
    no_sub.remove("token.actions.githubusercontent.com:sub");
    let d = evaluate_trust(&t, &no_sub);
    assert_eq!(d.effect, Effect::ImplicitDeny);
    assert_eq!(
        d.missing_context_keys,
        vec!["token.actions.githubusercontent.com:sub"]
    );
}

#[test]
fn principal_matching() {
    let session = Principal::assumed_role("aws", ACCOUNT, "R", "S");
    let user = Principal::aws([
        format!("arn:aws:iam::{ACCOUNT}:user/Bob"),
        format!("arn:aws:iam::{ACCOUNT}:root"),
    ]);
    let cases: Vec<(serde_json::Value, Option<Principal>, bool)> = vec![
        (json!("*"), Some(session.clone()), true),
        (json!("*"), None, true),
        (json!({"AWS": "*"}), Some(session.clone()), true),
        (json!({"AWS": "*"}), Some(Principal::federated(OIDC)), false),
        (json!({"AWS": "*"}), None, false),
        (json!({"AWS": ACCOUNT}), Some(session.clone()), true),
        (
            json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}),
            Some(session.clone()),
            true,
        ),
        (json!({"AWS": "444455556666"}), Some(session.clone()), false),
        (
            json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:role/R")}),
            Some(session.clone()),
            true,
        ),
        (
            json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:role/Other")}),
            Some(session.clone()),
            false,
        ),
        (
            json!({"AWS": format!("arn:aws:sts::{ACCOUNT}:assumed-role/R/S")}),
            Some(session.clone()),
            true,
        ),
        (
            json!({"AWS": [format!("arn:aws:iam::{ACCOUNT}:user/Alice"), format!("arn:aws:iam::{ACCOUNT}:user/Bob")]}),
            Some(user.clone()),
            true,
        ),
        (
            json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:user/Alice")}),
            Some(user.clone()),
            false,
        ),
        (
            json!({"Federated": OIDC}),
            Some(Principal::federated(OIDC)),
            true,
        ),
        (
            json!({"Federated": "accounts.google.com"}),
            Some(Principal::federated(OIDC)),
            false,
        ),
        (json!({"Federated": OIDC}), Some(session.clone()), false),
        (
            json!({"Service": "ec2.amazonaws.com"}),
            Some(Principal::service("ec2.amazonaws.com")),
            true,
        ),
        (
            json!({"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]}),
            Some(Principal::service("ec2.amazonaws.com")),
            true,
        ),
        (
            json!({"Service": "ec2.amazonaws.com"}),
            Some(Principal::service("lambda.amazonaws.com")),
            false,
        ),
        (
            json!({"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}),
            Some(session.clone()),
            false,
        ),
    ];
    for (i, (principal, caller, want)) in cases.into_iter().enumerate() {
        let t = trust(
            json!({"Statement": {"Effect": "Allow", "Principal": principal.clone(),
            "Action": "sts:AssumeRole"}}),
        );
        let mut ctx = RequestContext::new(
            "sts:AssumeRole",
            format!("arn:aws:iam::{ACCOUNT}:role/target"),
        );
        if let Some(c) = caller.clone() {
            ctx = ctx.with_principal(c);
        }
        assert_eq!(
            evaluate_trust(&t, &ctx).is_allowed(),
            want,
            "case {i}: {principal} vs {caller:?}"
        );
    }
}

#[test]
fn not_principal_must_list_every_identity_of_the_caller() {
    let session_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/R/S");
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/R");
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    let caller = Principal::assumed_role("aws", ACCOUNT, "R", "S");
    let policy = |excluded: serde_json::Value| {
        trust(json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": excluded}, "Action": "sts:AssumeRole"}
        ]}))
    };
    let ctx = RequestContext::new("sts:AssumeRole", "*").with_principal(caller);
    let all_three = policy(json!([session_arn.clone(), role_arn.clone(), root.clone()]));
    assert_eq!(evaluate_trust(&all_three, &ctx).effect, Effect::Allow);
    let session_only = policy(json!([session_arn.clone()]));
    assert_eq!(
        evaluate_trust(&session_only, &ctx).effect,
        Effect::ExplicitDeny
    );
    let without_account = policy(json!([session_arn, role_arn]));
    assert_eq!(
        evaluate_trust(&without_account, &ctx).effect,
        Effect::ExplicitDeny
    );

    // An anonymous caller is never excluded.
    let anonymous = RequestContext::new("sts:AssumeRole", "*");
    assert_eq!(
        evaluate_trust(&all_three, &anonymous).effect,
        Effect::ExplicitDeny
    );

    // Allow with NotPrincipal: everyone else.
    let allow_others = trust(json!({"Statement": {"Effect": "Allow",
        "NotPrincipal": {"Federated": OIDC}, "Action": "sts:AssumeRole"}}));
    assert!(evaluate_trust(&allow_others, &ctx).is_allowed());
    let fed = RequestContext::new("sts:AssumeRole", "*").with_principal(Principal::federated(OIDC));
    assert!(!evaluate_trust(&allow_others, &fed).is_allowed());
}

#[test]
fn trust_policy_deny_statement_wins() {
    let t = trust(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": OIDC}, "Action": "sts:AssumeRoleWithWebIdentity"},
        {"Sid": "NoForks", "Effect": "Deny", "Principal": "*", "Action": "sts:*",
            "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:*/fork:*"}}}
    ]}));
    assert!(evaluate_trust(&t, &web_identity_ctx("repo:o/main:ref")).is_allowed());
    let d = evaluate_trust(&t, &web_identity_ctx("repo:o/fork:ref"));
    assert_eq!(d.effect, Effect::ExplicitDeny);
    assert_eq!(d.matched.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Parse errors

fn parse_err(doc: &str, kind: PolicyKind) -> PolicyError {
    match Policy::parse(doc, kind) {
        Ok(_) => panic!("expected an error for {doc}"),
        Err(e) => e,
    }
}

fn invalid(doc: serde_json::Value, kind: PolicyKind) -> (Option<usize>, String, String) {
    match parse_err(&doc.to_string(), kind) {
        PolicyError::Invalid {
            statement,
            path,
            message,
            ..
        } => (statement, path, message),
        other => panic!("expected Invalid for {doc}, got {other:?}"),
    }
}

#[test]
fn malformed_documents_name_the_place() {
    let ok_stmt = json!({"Effect": "Allow", "Action": "*", "Resource": "*"});
    let with = |k: &str, v: serde_json::Value| {
        let mut st = ok_stmt.clone();
        st[k] = v;
        json!({"Version": "2012-10-17", "Statement": [st]})
    };
    let cond = |c: serde_json::Value| with("Condition", c);
    let id = PolicyKind::Identity;
    let cases: Vec<(serde_json::Value, PolicyKind, Option<usize>, &str, &str)> = vec![
        (json!([]), id, None, "$", "must be a JSON object"),
        (
            json!({"Versoin": "2012-10-17", "Statement": [ok_stmt.clone()]}),
            id,
            None,
            "Versoin",
            "unknown element",
        ),
        (
            json!({"version": "2012-10-17", "Statement": [ok_stmt.clone()]}),
            id,
            None,
            "version",
            "did you mean \"Version\"",
        ),
        (
            json!({"Version": "2013-01-01", "Statement": [ok_stmt.clone()]}),
            id,
            None,
            "Version",
            "unsupported policy language version",
        ),
        (
            json!({"Version": 2012, "Statement": [ok_stmt.clone()]}),
            id,
            None,
            "Version",
            "must be a string",
        ),
        (
            json!({"Version": "2012-10-17"}),
            id,
            None,
            "$",
            "no Statement",
        ),
        (
            json!({"Statement": []}),
            id,
            None,
            "Statement",
            "must not be an empty array",
        ),
        (
            json!({"Statement": "x"}),
            id,
            None,
            "Statement",
            "object or an array",
        ),
        (
            json!({"Id": 5, "Statement": [ok_stmt.clone()]}),
            id,
            None,
            "Id",
            "must be a string",
        ),
        (
            json!({"Statement": [1]}),
            id,
            Some(0),
            "Statement[0]",
            "must be an object",
        ),
        (
            json!({"Statement": [ok_stmt.clone(), {"Effect": "Allow", "Action": "*"}]}),
            id,
            Some(1),
            "Statement[1]",
            "Resource or NotResource",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Action": "*"}}),
            id,
            Some(0),
            "Statement",
            "Resource or NotResource",
        ),
        (
            with("Effect", json!("allow")),
            id,
            Some(0),
            "Statement[0].Effect",
            "must be \"Allow\" or \"Deny\"",
        ),
        (
            with("Sid", json!(1)),
            id,
            Some(0),
            "Statement[0].Sid",
            "must be a string",
        ),
        (
            with("effect", json!("Allow")),
            id,
            Some(0),
            "Statement[0].effect",
            "did you mean \"Effect\"",
        ),
        (
            with("Resources", json!("*")),
            id,
            Some(0),
            "Statement[0].Resources",
            "unknown element",
        ),
        (
            json!({"Statement": {"Action": "*", "Resource": "*"}}),
            id,
            Some(0),
            "Statement",
            "no Effect",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Resource": "*"}}),
            id,
            Some(0),
            "Statement",
            "Action or NotAction",
        ),
        (
            with("NotAction", json!("s3:*")),
            id,
            Some(0),
            "Statement[0].NotAction",
            "both Action and NotAction",
        ),
        // `json!` sorts keys, so NotResource comes first and Resource is the one refused.
        (
            with("NotResource", json!("*")),
            id,
            Some(0),
            "Statement[0].Resource",
            "both Resource and NotResource",
        ),
        (
            with("Action", json!([])),
            id,
            Some(0),
            "Statement[0].Action",
            "must not be an empty array",
        ),
        (
            with("Action", json!(5)),
            id,
            Some(0),
            "Statement[0].Action",
            "string or an array of strings",
        ),
        (
            with("Action", json!(["s3:GetObject", 5])),
            id,
            Some(0),
            "Statement[0].Action[1]",
            "must be a string",
        ),
        (
            with("Action", json!("s3GetObject")),
            id,
            Some(0),
            "Statement[0].Action",
            "service:action",
        ),
        (
            with("Action", json!(["s3:Get*", "s3:"])),
            id,
            Some(0),
            "Statement[0].Action[1]",
            "service:action",
        ),
        (
            with("Resource", json!("bucket/*")),
            id,
            Some(0),
            "Statement[0].Resource",
            "must be \"*\" or an ARN",
        ),
        (
            with("Resource", json!("arn:aws:s3:::b/${aws:username")),
            id,
            Some(0),
            "Statement[0].Resource",
            "unterminated policy variable",
        ),
        (
            with("Principal", json!("*")),
            id,
            Some(0),
            "Statement[0]",
            "not allowed in an identity policy",
        ),
        (
            with("Principal", json!("*")),
            PolicyKind::Session,
            Some(0),
            "Statement[0]",
            "not allowed in a session policy",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement",
            "needs Principal or NotPrincipal",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": "alice", "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal",
            "must be \"*\" or an object",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {}, "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal",
            "at least one principal",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/*"}, "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal.AWS",
            "without wildcards",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": ["111122223333", "12345"]}, "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal.AWS[1]",
            "12-digit account",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {"Aws": "111122223333"}, "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal.Aws",
            "unknown principal type",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": {"Federated": []}, "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal.Federated",
            "must not be an empty array",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "NotPrincipal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"}}),
            PolicyKind::Trust,
            Some(0),
            "Statement.Principal",
            "both Principal and NotPrincipal",
        ),
        (
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}}),
            PolicyKind::Resource,
            Some(0),
            "Statement",
            "Resource or NotResource",
        ),
        (
            with("Condition", json!("x")),
            id,
            Some(0),
            "Statement[0].Condition",
            "must be an object",
        ),
        (
            cond(json!({"StringEqualz": {"k": "v"}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEqualz",
            "unknown condition operator",
        ),
        (
            cond(json!({"NullIfExists": {"k": "true"}})),
            id,
            Some(0),
            "Statement[0].Condition.NullIfExists",
            "IfExists",
        ),
        (
            cond(json!({"ForAllValues:Null": {"k": "true"}})),
            id,
            Some(0),
            "Statement[0].Condition.ForAllValues:Null",
            "prefix",
        ),
        (
            cond(json!({"StringEquals": {}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals",
            "at least one condition key",
        ),
        (
            cond(json!({"StringEquals": "v"})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals",
            "object of condition keys",
        ),
        (
            cond(json!({"StringEquals": {"k": []}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals[\"k\"]",
            "must not be an empty array",
        ),
        (
            cond(json!({"StringEquals": {"k": null}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals[\"k\"]",
            "not null",
        ),
        (
            cond(json!({"StringEquals": {"k": {"a": 1}}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals[\"k\"]",
            "not an object",
        ),
        (
            cond(json!({"StringEquals": {"k": ["a", ["b"]]}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals[\"k\"][1]",
            "not an array",
        ),
        (
            cond(json!({"StringEquals": {"": "v"}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals[\"\"]",
            "must not be empty",
        ),
        (
            cond(json!({"StringEquals": {"aws:username": "a", "AWS:UserName": "b"}})),
            id,
            Some(0),
            "Statement[0].Condition.StringEquals[\"aws:username\"]",
            "appears twice",
        ),
        (
            cond(json!({"NumericLessThan": {"s3:max-keys": "ten"}})),
            id,
            Some(0),
            "Statement[0].Condition.NumericLessThan[\"s3:max-keys\"]",
            "not a number",
        ),
        (
            cond(json!({"NumericLessThan": {"n": ["1", "x"]}})),
            id,
            Some(0),
            "Statement[0].Condition.NumericLessThan[\"n\"][1]",
            "not a number",
        ),
        (
            cond(json!({"NumericEquals": {"n": "${aws:username}"}})),
            id,
            Some(0),
            "Statement[0].Condition.NumericEquals[\"n\"]",
            "not a number",
        ),
        (
            cond(json!({"DateLessThan": {"aws:CurrentTime": "yesterday"}})),
            id,
            Some(0),
            "Statement[0].Condition.DateLessThan[\"aws:CurrentTime\"]",
            "ISO 8601",
        ),
        (
            cond(json!({"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}})),
            id,
            Some(0),
            "Statement[0].Condition.IpAddress[\"aws:SourceIp\"]",
            "CIDR",
        ),
        (
            cond(json!({"BinaryEquals": {"k": "not base64!"}})),
            id,
            Some(0),
            "Statement[0].Condition.BinaryEquals[\"k\"]",
            "base64",
        ),
        (
            cond(json!({"Bool": {"k": "yes"}})),
            id,
            Some(0),
            "Statement[0].Condition.Bool[\"k\"]",
            "true or false",
        ),
        (
            cond(json!({"Null": {"k": "maybe"}})),
            id,
            Some(0),
            "Statement[0].Condition.Null[\"k\"]",
            "true or false",
        ),
        (
            cond(json!({"StringLike": {"k": "${a, anonymous}"}})),
            id,
            Some(0),
            "Statement[0].Condition.StringLike[\"k\"]",
            "single quotes",
        ),
    ];
    for (doc, kind, statement, path, needle) in cases {
        let (s, p, msg) = invalid(doc.clone(), kind);
        assert_eq!(s, statement, "{doc}");
        assert_eq!(p, path, "{doc}: {msg}");
        assert!(msg.contains(needle), "{doc}: {msg:?} lacks {needle:?}");
    }
}

#[test]
fn error_display_names_statement_sid_and_path() {
    let err = parse_err(
        &json!({"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "B", "Effect": "Permit", "Action": "*", "Resource": "*"}]})
        .to_string(),
        PolicyKind::Identity,
    );
    assert_eq!(
        err.to_string(),
        "statement 1 (Sid \"B\") at Statement[1].Effect: Effect must be \"Allow\" or \"Deny\", not \"Permit\""
    );
}

#[test]
fn duplicate_sids_are_rejected() {
    let (s, p, msg) = invalid(
        json!({"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "A", "Effect": "Deny", "Action": "*", "Resource": "*"}]}),
        PolicyKind::Identity,
    );
    assert_eq!((s, p.as_str()), (Some(1), "Statement[1].Sid"));
    assert!(msg.contains("more than one statement"), "{msg}");
}

#[test]
fn json_errors_carry_line_and_column() {
    let dup = "{\n  \"Statement\": {\n    \"Effect\": \"Allow\",\n    \"Effect\": \"Deny\",\n    \"Action\": \"*\", \"Resource\": \"*\"\n  }\n}";
    match parse_err(dup, PolicyKind::Identity) {
        PolicyError::Syntax { line, message, .. } => {
            assert_eq!(line, 4);
            assert!(message.contains("duplicate key \"Effect\""), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    match parse_err(
        "{\"Statement\": [\n  {\"Effect\": \"Allow\",}\n]}",
        PolicyKind::Identity,
    ) {
        PolicyError::Syntax { line, column, .. } => assert_eq!((line, column), (2, 22)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        parse_err("", PolicyKind::Identity),
        PolicyError::Syntax { .. }
    ));
}

#[test]
fn unterminated_variable_is_only_an_error_in_2012_10_17() {
    let doc = |version: &str| {
        json!({"Version": version, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"k": "${oops"}}}})
        .to_string()
    };
    assert!(Policy::parse(&doc("2008-10-17"), PolicyKind::Identity).is_ok());
    assert!(Policy::parse(&doc("2012-10-17"), PolicyKind::Identity).is_err());
}

/// A valid policy padded (inside a Sid) to exactly `target` counted characters.
fn padded(target: usize, principal: bool, spaces: usize) -> String {
    let principal = if principal { r#""Principal":"*","# } else { "" };
    let head = format!(
        r#"{{"Statement":{{{principal}"Effect":"Allow","Action":"*","Resource":"*","Sid":""#
    );
    let tail = r#""}}"#;
    let fill = target - head.len() - tail.len();
    format!("{}{head}{}{tail}", " ".repeat(spaces), "a".repeat(fill))
}

#[test]
fn size_limits_per_kind() {
    let cases: &[(PolicyKind, usize, bool)] = &[
        (PolicyKind::Identity, 6_144, false),
        (PolicyKind::Inline, 10_240, false),
        (PolicyKind::Trust, 2_048, true),
        (PolicyKind::Resource, 20_480, true),
        (PolicyKind::Session, 2_048, false),
    ];
    for (kind, limit, principal) in cases {
        assert_eq!(kind.max_chars(), *limit);
        let at = padded(*limit, *principal, 0);
        assert!(Policy::parse(&at, *kind).is_ok(), "{kind} at the limit");
        let over = padded(limit + 1, *principal, 0);
        assert_eq!(
            parse_err(&over, *kind),
            PolicyError::TooLarge {
                kind: *kind,
                limit: *limit,
                actual: limit + 1
            },
            "{kind} over the limit"
        );
        // Leading whitespace counts only for session policies.
        let spaced = padded(*limit, *principal, 10);
        assert_eq!(
            Policy::parse(&spaced, *kind).is_ok(),
            !kind.counts_whitespace(),
            "{kind} with whitespace"
        );
    }
    assert!(matches!(
        parse_err(
            "{\"Statement\":{\"Sid\":\"\u{263a}\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
            PolicyKind::Session
        ),
        PolicyError::InvalidCharacter { character: '\u{263a}', .. }
    ));
}

#[test]
fn accepted_shapes() {
    // Statement as one object, values as single strings, JSON numbers and booleans as values.
    let p = Policy::parse(
        &json!({"Version": "2012-10-17", "Id": "example", "Statement": {"Sid": "One", "Effect": "Deny",
            "Action": "s3:*", "NotResource": "arn:aws:s3:::b/*",
            "Condition": {"NumericGreaterThan": {"n": [1, 2.5]}, "Bool": {"b": false}}}})
        .to_string(),
        PolicyKind::Inline,
    )
    .unwrap();
    assert_eq!(p.id(), Some("example"));
    assert_eq!(p.version(), PolicyVersion::V2012);
    assert_eq!(p.sids().collect::<Vec<_>>(), vec![Some("One")]);
    // A trust policy needs no Resource; CanonicalUser and Service principals parse.
    let t = trust(json!({"Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"], "CanonicalUser": "abc"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": ["*", ACCOUNT]}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    ]}));
    assert_eq!(t.statement_count(), 2);
    assert_eq!(t.kind(), PolicyKind::Trust);
}

#[test]
fn warnings_point_at_likely_mistakes() {
    let p = identity(json!({"Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}},
        {"Sid": "Guarded", "Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}, "Null": {"aws:TagKeys": "false"}}},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}},
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${aws:username}"}
    ]}));
    let w = p.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0].statement, 0);
    assert!(
        w[0].message.contains("missing or empty"),
        "{}",
        w[0].message
    );
    assert_eq!(w[1].statement, 3);
    assert!(w[1].message.contains("2012-10-17"), "{}", w[1].message);

    let t = trust(json!({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "NotPrincipal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    ]}));
    let w = t.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].message.contains("any principal"));
    assert!(w[1].message.contains("NotPrincipal"));
    // AWS's own GitHub example matches the subject by wildcard: legal, and worth a warning.
    let w = github_trust().warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message
            .contains("wildcard pattern \"repo:octo-org/octo-repo:*\""),
        "{}",
        w[0].message
    );
}

#[test]
fn lint_flags_broad_and_unreachable_statements() {
    let messages = |p: &Policy| {
        p.warnings()
            .into_iter()
            .map(|w| (w.statement, w.message))
            .collect::<Vec<_>>()
    };
    let has = |w: &[(usize, String)], i: usize, needle: &str| {
        w.iter().any(|(s, m)| *s == i && m.contains(needle))
    };

    // Allow with NotAction; an Allow shadowed by an unconditional Deny; a Deny with a condition
    // shadows nothing; a prefix pattern covers the narrower one.
    let p = identity(json!({"Statement": [
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*"], "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "NoS3", "Effect": "Deny", "Action": "S3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:*", "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}},
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:*:table/t"},
        {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:*:*:table/other"}
    ]}));
    let w = messages(&p);
    assert!(has(&w, 0, "NotAction"), "{w:?}");
    assert!(
        has(&w, 1, "statement 2 (NoS3) denies all of its actions"),
        "{w:?}"
    );
    assert!(
        !has(&w, 3, "can never allow"),
        "a conditional Deny shadows nothing: {w:?}"
    );
    assert!(
        !has(&w, 5, "can never allow"),
        "a Deny on another resource shadows nothing: {w:?}"
    );
    assert_eq!(w.len(), 2, "{w:?}");

    // Federated trust: no aud/sub pin (a negated operator pins nothing), a wildcard sub, and a
    // statement about an action trust policies are never asked about.
    let t = trust(json!({"Statement": [
        {"Effect": "Allow", "Principal": {"Federated": OIDC}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringNotEquals": {"token.actions.githubusercontent.com:sub": "x"}}},
        {"Effect": "Allow", "Principal": {"Federated": OIDC}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "*"}}},
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:GetObject"},
        {"Effect": "Allow", "Principal": {"Federated": OIDC}, "Action": "sts:*",
            "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}}
    ]}));
    let w = messages(&t);
    assert!(has(&w, 0, "without conditions on 'aud' or 'sub'"), "{w:?}");
    assert!(has(&w, 1, "wildcard pattern \"*\""), "{w:?}");
    assert!(
        !has(&w, 1, "without conditions"),
        "a StringLike on sub pins it: {w:?}"
    );
    assert!(has(&w, 2, "never applies"), "{w:?}");
    assert!(
        !has(&w, 3, "never applies") && !has(&w, 3, "without conditions"),
        "{w:?}"
    );
    assert_eq!(w.len(), 3, "{w:?}");
}

// ---------------------------------------------------------------------------------------------
// Explanations

#[test]
fn explains_a_failed_trust_condition() {
    let e = explain_trust(&github_trust(), &web_identity_ctx("repo:evil/x:ref"));
    assert_eq!(e.effect, Effect::ImplicitDeny);
    assert!(
        e.summary
            .contains("no statement of the trust policy allows"),
        "{}",
        e.summary
    );
    let st = &e.policies[0].statements[0];
    assert_eq!(st.sid.as_deref(), Some("GitHubActions"));
    assert!(!st.applies);
    let failed: Vec<&Check> = st.checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].element, "Condition");
    assert_eq!(failed[0].operator.as_deref(), Some("StringLike"));
    assert_eq!(
        failed[0].key.as_deref(),
        Some("token.actions.githubusercontent.com:sub")
    );
    assert_eq!(failed[0].expected, vec!["repo:octo-org/octo-repo:*"]);
    assert_eq!(failed[0].actual, vec!["repo:evil/x:ref"]);
    let text = e.to_string();
    assert!(text.starts_with("ImplicitDeny: "), "{text}");
    assert!(
        text.contains("[FAIL] Condition StringLike \"token.actions.githubusercontent.com:sub\""),
        "{text}"
    );
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["effect"], "ImplicitDeny");
    assert_eq!(v["policies"][0]["scope"], "Resource");
}

#[test]
fn explains_principal_and_missing_keys() {
    let ctx = web_identity_ctx("repo:octo-org/octo-repo:x")
        .with_principal(Principal::federated("accounts.google.com"));
    let e = explain_trust(&github_trust(), &ctx);
    let principal = &e.policies[0].statements[0].checks[0];
    assert_eq!(principal.element, "Principal");
    assert!(!principal.passed);
    assert_eq!(principal.expected, vec![format!("Federated:{OIDC}")]);
    assert_eq!(principal.actual, vec!["accounts.google.com"]);

    let p = with_condition(json!({"StringNotEquals": {"aws:PrincipalTag/team": "red"},
        "ForAllValues:StringEquals": {"aws:TagKeys": "a"}}));
    let e = explain(&PolicySet::new().with_identity("p", &p), &ctx_with(&[]));
    assert_eq!(e.effect, Effect::Allow);
    // Conditions in document order (`json!` sorts the operators).
    assert_eq!(
        e.missing_context_keys,
        vec!["aws:TagKeys", "aws:PrincipalTag/team"]
    );
    let notes: Vec<String> = e.policies[0].statements[0]
        .checks
        .iter()
        .filter_map(|c| c.note.clone())
        .collect();
    assert!(notes[0].contains("ForAllValues is true"), "{notes:?}");
    assert!(notes[1].contains("negated operator is true"), "{notes:?}");
}

#[test]
fn explains_explicit_deny_session_and_boundary() {
    let id = allow("s3:*");
    let deny = identity(json!({"Statement": {"Sid": "NoDelete", "Effect": "Deny",
        "Action": "s3:DeleteObject", "Resource": "*"}}));
    let narrow = allow("s3:GetObject");
    let del = RequestContext::new("s3:DeleteObject", "arn:aws:s3:::b/k");
    let put = RequestContext::new("s3:PutObject", "arn:aws:s3:::b/k");

    let e = explain(
        &PolicySet::new()
            .with_identity("id", &id)
            .with_identity("guard", &deny),
        &del,
    );
    assert_eq!(e.effect, Effect::ExplicitDeny);
    assert_eq!(e.explicit_denies.len(), 1);
    assert_eq!(e.explicit_denies[0].policy, "guard");
    assert!(e.summary.contains("Sid \"NoDelete\""), "{}", e.summary);
    assert!(
        e.summary.contains("identity policy \"guard\""),
        "{}",
        e.summary
    );

    let e = explain(
        &PolicySet::new()
            .with_identity("id", &id)
            .with_session("s", &narrow),
        &put,
    );
    assert_eq!(e.effect, Effect::ImplicitDeny);
    assert!(
        e.summary.contains("session policies do not allow"),
        "{}",
        e.summary
    );

    let e = explain(
        &PolicySet::new()
            .with_identity("id", &id)
            .with_boundary("b", &narrow),
        &put,
    );
    assert!(
        e.summary.contains("permissions boundary does not allow"),
        "{}",
        e.summary
    );

    let e = explain(&PolicySet::new().with_identity("n", &narrow), &put);
    assert!(
        e.summary.contains("no identity-based policy statement"),
        "{}",
        e.summary
    );
    let action = &e.policies[0].statements[0].checks[0];
    assert_eq!(action.element, "Action");
    assert_eq!(action.expected, vec!["s3:GetObject"]);
    assert_eq!(action.actual, vec!["s3:PutObject"]);
}

#[test]
fn explains_unresolved_variables() {
    let p = identity(
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*",
        "Resource": "arn:aws:s3:::b/${aws:username}/*"}}),
    );
    let ctx = RequestContext::new("s3:GetObject", "arn:aws:s3:::b/alice/x");
    let e = explain(&PolicySet::new().with_identity("p", &p), &ctx);
    let resource = &e.policies[0].statements[0].checks[1];
    assert_eq!(resource.element, "Resource");
    assert!(!resource.passed);
    assert!(
        resource
            .note
            .as_deref()
            .unwrap_or("")
            .contains("${aws:username}"),
        "{resource:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests

mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::*;

    const ACTIONS: [&str; 6] = [
        "s3:GetObject",
        "s3:*",
        "s3:Get*",
        "iam:*",
        "*",
        "ec2:Describe?nstances",
    ];
    const RESOURCES: [&str; 5] = [
        "*",
        "arn:aws:s3:::b/*",
        "arn:aws:s3:::b/k",
        "arn:aws:s3:::c/*",
        "arn:aws:s3:::${aws:username}/*",
    ];

    fn conditions() -> Vec<Value> {
        vec![
            json!({"StringEquals": {"aws:username": "alice"}}),
            json!({"StringNotEquals": {"aws:username": "alice"}}),
            json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}),
            json!({"ForAnyValue:StringLike": {"aws:TagKeys": "a*"}}),
            json!({"NumericLessThan": {"n": "10"}}),
            json!({"NumericLessThanIfExists": {"n": "10"}}),
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            json!({"Null": {"aws:username": "true"}}),
            json!({"StringLike": {"s3:prefix": "${aws:username}/*"}}),
        ]
    }

    fn statement() -> impl Strategy<Value = Value> {
        (
            any::<bool>(),
            any::<bool>(),
            prop::sample::subsequence(ACTIONS.to_vec(), 1..3),
            any::<bool>(),
            prop::sample::subsequence(RESOURCES.to_vec(), 1..3),
            prop::option::of(prop::sample::subsequence(conditions(), 1..3)),
        )
            .prop_map(
                |(allow, not_action, actions, not_resource, resources, conds)| {
                    let mut st = json!({"Effect": if allow { "Allow" } else { "Deny" }});
                    st[if not_action { "NotAction" } else { "Action" }] = json!(actions);
                    st[if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    }] = json!(resources);
                    if let Some(cs) = conds {
                        let mut block = serde_json::Map::new();
                        for c in cs {
                            if let Value::Object(o) = c {
                                for (k, v) in o {
                                    block.insert(k, v);
                                }
                            }
                        }
                        st["Condition"] = Value::Object(block);
                    }
                    st
                },
            )
    }

    fn deny_statement() -> impl Strategy<Value = Value> {
        statement().prop_map(|mut s| {
            s["Effect"] = json!("Deny");
            s
        })
    }

    fn policy_of(statements: &[Value]) -> Policy {
        let doc = json!({"Version": "2012-10-17", "Statement": statements});
        Policy::parse(&doc.to_string(), PolicyKind::Inline).unwrap()
    }

    fn context() -> impl Strategy<Value = RequestContext> {
        (
            prop::sample::select(vec![
                "s3:GetObject",
                "s3:PutObject",
                "iam:CreateUser",
                "ec2:DescribeInstances",
            ]),
            prop::sample::select(vec![
                "arn:aws:s3:::b/k",
                "arn:aws:s3:::c/x",
                "arn:aws:s3:::alice/x",
                "*",
            ]),
            prop::option::of(prop::sample::select(vec!["alice", "bob"])),
            prop::option::of(prop::sample::subsequence(vec!["a", "b", "x"], 0..3)),
            prop::option::of(prop::sample::select(vec!["5", "15"])),
            prop::option::of(any::<bool>()),
            prop::option::of(prop::sample::select(vec!["10.1.2.3", "192.0.2.1"])),
            prop::option::of(prop::sample::select(vec!["alice/x", "bob/y"])),
        )
            .prop_map(|(action, resource, user, tags, n, secure, ip, prefix)| {
                let mut ctx = RequestContext::new(action, resource);
                if let Some(u) = user {
                    ctx.set_string("aws:username", u);
                }
                if let Some(t) = tags {
                    ctx.set_strings("aws:TagKeys", t);
                }
                if let Some(n) = n {
                    ctx.set_string("n", n);
                }
                if let Some(b) = secure {
                    ctx.set_bool("aws:SecureTransport", b);
                }
                if let Some(ip) = ip {
                    ctx.set_string("aws:SourceIp", ip);
                }
                if let Some(p) = prefix {
                    ctx.set_string("s3:prefix", p);
                }
                ctx
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn adding_a_deny_statement_never_allows_more(
            stmts in prop::collection::vec(statement(), 1..6),
            deny in deny_statement(),
            ctx in context(),
        ) {
            let before = policy_of(&stmts);
            let mut more = stmts.clone();
            more.push(deny);
            let after = policy_of(&more);
            let b = evaluate(&PolicySet::new().with_identity("p", &before), &ctx);
            let a = evaluate(&PolicySet::new().with_identity("p", &after), &ctx);
            // allowed after => allowed before
            prop_assert!(!a.is_allowed() || b.is_allowed());
            if b.effect == Effect::ExplicitDeny {
                prop_assert_eq!(a.effect, Effect::ExplicitDeny);
            }
        }

        #[test]
        fn adding_a_session_policy_never_widens(
            id_stmts in prop::collection::vec(statement(), 1..5),
            session_stmts in prop::collection::vec(statement(), 1..4),
            boundary_stmts in prop::option::of(prop::collection::vec(statement(), 1..4)),
            ctx in context(),
        ) {
            let id = policy_of(&id_stmts);
            let session = policy_of(&session_stmts);
            let boundary = boundary_stmts.map(|b| policy_of(&b));
            let mut without = PolicySet::new().with_identity("id", &id);
            if let Some(b) = &boundary {
                without = without.with_boundary("b", b);
            }
            let with = without.clone().with_session("s", &session);
            let w = evaluate(&with, &ctx);
            let wo = evaluate(&without, &ctx);
            prop_assert!(!w.is_allowed() || wo.is_allowed());
            // Nor does a boundary.
            let bounded = PolicySet::new().with_identity("id", &id).with_boundary("b", &session);
            let unbounded = PolicySet::new().with_identity("id", &id);
            prop_assert!(
                !evaluate(&bounded, &ctx).is_allowed() || evaluate(&unbounded, &ctx).is_allowed()
            );
        }

        #[test]
        fn statement_order_does_not_matter(
            (stmts, shuffled) in prop::collection::vec(statement(), 1..7)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            ctx in context(),
        ) {
            let p = policy_of(&stmts);
            let q = policy_of(&shuffled);
            let a = evaluate(&PolicySet::new().with_identity("p", &p), &ctx);
            let b = evaluate(&PolicySet::new().with_identity("p", &q), &ctx);
            prop_assert_eq!(a.effect, b.effect);
            prop_assert_eq!(a.matched.len(), b.matched.len());
            let mut ka: Vec<&str> = a.missing_context_keys.iter().map(String::as_str).collect();
            let mut kb: Vec<&str> = b.missing_context_keys.iter().map(String::as_str).collect();
            ka.sort_unstable();
            kb.sort_unstable();
            prop_assert_eq!(ka, kb);
        }

        #[test]
        fn explain_agrees_with_evaluate(
            id_stmts in prop::collection::vec(statement(), 1..5),
            session_stmts in prop::option::of(prop::collection::vec(statement(), 1..3)),
            boundary_stmts in prop::option::of(prop::collection::vec(statement(), 1..3)),
            ctx in context(),
        ) {
            let id = policy_of(&id_stmts);
            let session = session_stmts.map(|s| policy_of(&s));
            let boundary = boundary_stmts.map(|b| policy_of(&b));
            let mut set = PolicySet::new().with_identity("id", &id);
            if let Some(s) = &session {
                set = set.with_session("s", s);
            }
            if let Some(b) = &boundary {
                set = set.with_boundary("b", b);
            }
            let d = evaluate(&set, &ctx);
            let e = explain(&set, &ctx);
            prop_assert_eq!(d.effect, e.effect);
            prop_assert_eq!(&d.missing_context_keys, &e.missing_context_keys);
            let applied = e.policies.iter().flat_map(|p| &p.statements).filter(|s| s.applies).count();
            prop_assert_eq!(applied, d.matched.len());
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,300}") {
            let _ = Policy::parse(&text, PolicyKind::Identity);
            let _ = Policy::parse(&text, PolicyKind::Session);
        }

        #[test]
        fn parse_never_panics_on_policy_like_text(
            stmts in prop::collection::vec(statement(), 1..3),
            cut in 0usize..400,
            junk in "[\\[\\]{}:,\"*?$]{0,3}",
        ) {
            let mut text = json!({"Version": "2012-10-17", "Statement": stmts}).to_string();
            let at = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.insert_str(at, &junk);
            let _ = Policy::parse(&text, PolicyKind::Inline);
        }

        #[test]
        fn string_like_agrees_with_a_reference_matcher(
            pattern in "[ab*?]{0,8}",
            value in "[ab]{0,8}",
        ) {
            let p = super::with_condition(json!({"StringLike": {"k": pattern.clone()}}));
            let ctx = super::ctx_with(&[("k", super::s(&value))]);
            prop_assert_eq!(super::allowed(&p, &ctx), reference_glob(pattern.as_bytes(), value.as_bytes()));
        }
    }

    fn reference_glob(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(b'*'), _) => {
                reference_glob(&p[1..], v) || (!v.is_empty() && reference_glob(p, &v[1..]))
            }
            (Some(b'?'), Some(_)) => reference_glob(&p[1..], &v[1..]),
            (Some(c), Some(d)) if c == d => reference_glob(&p[1..], &v[1..]),
            _ => false,
        }
    }
}

#[test]
fn size_error_message_reads_well() {
    let err = parse_err(&padded(6_145, false, 0), PolicyKind::Identity);
    assert_eq!(
        err.to_string(),
        "policy document is 6145 characters long; an identity policy may have at most 6144"
    );
}
