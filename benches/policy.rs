//! Policy evaluation throughput: how many requests one core can judge per second.
//!
//! `cargo bench --bench policy`
//!
//! Cases:
//! - `typical`: a 10-statement permission set (tag, source IP, MFA and time conditions, a resource
//!   with `${aws:PrincipalTag/team}`, a `Deny` with `NotAction`), for an allowed and an explicitly
//!   denied request;
//! - `typical+session`: the same identity policy narrowed by a 3-statement session policy;
//! - `typical, context built per request`: the allowed request, building its [`RequestContext`]
//!   inside the timed loop as a caller does once per request;
//! - `large`: 100 statements (five managed policies of 20) with wildcard actions, wildcard
//!   resources and conditions, for a request matched by statement 97 and one matched by none;
//! - `parse`: parsing and compiling the typical policy and the five large ones (load time only).
//!
//! Every evaluation case except the per-request one builds its context once, outside the loop.

use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rolegate::policy::{
    evaluate, Effect, Policy, PolicyKind, PolicySet, Principal, RequestContext,
};

const ACCOUNT: &str = "111122223333";

const TYPICAL: &str = r#"{
  "Version": "2012-10-17",
  "Id": "team-data-access",
  "Statement": [
    {
      "Sid": "TeamBucket",
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
      "Resource": [
        "arn:aws:s3:::data-${aws:PrincipalTag/team}",
        "arn:aws:s3:::data-${aws:PrincipalTag/team}/*"
      ],
      "Condition": {
        "StringEquals": {"aws:PrincipalTag/team": ["payments", "ledger", "risk"]},
        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]}
      }
    },
    {
      "Sid": "TeamTables",
      "Effect": "Allow",
      "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
      "Resource": "arn:aws:dynamodb:us-east-1:111122223333:table/${aws:PrincipalTag/team}-*",
      "Condition": {
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
        "DateLessThan": {"aws:CurrentTime": "2027-12-31T23:59:59Z"}
      }
    },
    {
      "Sid": "Describe",
      "Effect": "Allow",
      "Action": "ec2:Describe*",
      "Resource": "*",
      "Condition": {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}}
    },
    {
      "Sid": "DecryptViaS3",
      "Effect": "Allow",
      "Action": "kms:Decrypt",
      "Resource": "arn:aws:kms:us-east-1:111122223333:key/*",
      "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
    },
    {
      "Sid": "TeamLogs",
      "Effect": "Allow",
      "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
      "Resource": "arn:aws:logs:*:111122223333:log-group:/app/${aws:PrincipalTag/team}/*"
    },
    {
      "Sid": "TeamQueues",
      "Effect": "Allow",
      "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
      "Resource": "arn:aws:sqs:us-east-1:111122223333:${aws:PrincipalTag/team}-*"
    },
    {
      "Sid": "TeamSecrets",
      "Effect": "Allow",
      "Action": "secretsmanager:GetSecretValue",
      "Resource": "arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:PrincipalTag/team}/*",
      "Condition": {
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}
      }
    },
    {
      "Sid": "Metrics",
      "Effect": "Allow",
      "Action": ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"],
      "Resource": "*"
    },
    {
      "Sid": "OwnRoles",
      "Effect": "Allow",
      "Action": ["iam:GetRole", "iam:ListRoleTags"],
      "Resource": "arn:aws:iam::111122223333:role/${aws:PrincipalTag/team}-*"
    },
    {
      "Sid": "DenyEverythingElse",
      "Effect": "Deny",
      "NotAction": [
        "s3:*", "dynamodb:*", "ec2:Describe*", "kms:Decrypt", "logs:*", "sqs:*",
        "secretsmanager:GetSecretValue", "cloudwatch:*", "iam:Get*", "iam:List*",
        "sts:GetCallerIdentity"
      ],
      "Resource": "*"
    }
  ]
}"#;

const SESSION: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::data-*"},
    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"], "Resource": "*"},
    {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}
  ]
}"#;

/// Statement `i` of the large set: four families of service, each with wildcards.
fn large_statement(i: usize) -> String {
    match i % 4 {
        0 => format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":["arn:aws:s3:::bucket-{i}","arn:aws:s3:::bucket-{i}/*"],"Condition":{{"StringEquals":{{"aws:PrincipalTag/team":["team-{i}","payments"]}},"Bool":{{"aws:SecureTransport":"true"}}}}}}"#
        ),
        1 => format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Action":["ec2:Describe*","ec2:Get*"],"Resource":"*","Condition":{{"StringEquals":{{"aws:RequestedRegion":"region-{i}"}}}}}}"#
        ),
        2 => format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Action":["dynamodb:*Item","dynamodb:Query"],"Resource":"arn:aws:dynamodb:*:{ACCOUNT}:table/table-{i}*","Condition":{{"IpAddress":{{"aws:SourceIp":["10.{i}.0.0/16","192.0.2.0/24"]}}}}}}"#
        ),
        _ => format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Action":["sqs:Send*","sqs:Receive*","sns:Publish"],"Resource":["arn:aws:sqs:*:{ACCOUNT}:queue-{i}-*","arn:aws:sns:*:{ACCOUNT}:topic-{i}"],"Condition":{{"DateLessThan":{{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}}}}}"#
        ),
    }
}

/// The large set: five managed policies of 20 statements each (a managed policy may hold at most
/// 6,144 characters, so 100 statements take several).
fn large_documents() -> Vec<String> {
    (0..5)
        .map(|p| {
            let statements: Vec<String> = (p * 20..p * 20 + 20).map(large_statement).collect();
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                statements.join(",")
            )
        })
        .collect()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

/// The context a caller builds for one request of the typical role's session.
fn context(action: &str, resource: &str) -> RequestContext {
    let mut ctx = RequestContext::new(action, resource).with_principal(Principal::assumed_role(
        "aws",
        ACCOUNT,
        "payments-reader",
        "alice@example.com",
    ));
    ctx.set_string("aws:PrincipalTag/team", "payments");
    ctx.set_string("aws:SourceIp", "10.20.30.40");
    ctx.set_bool("aws:MultiFactorAuthPresent", true);
    ctx.set_bool("aws:SecureTransport", true);
    ctx.set_number("aws:MultiFactorAuthAge", 300);
    ctx.set_string("aws:RequestedRegion", "us-east-1");
    ctx.set_string("aws:PrincipalAccount", ACCOUNT);
    ctx.set_string("aws:userid", "AROAEXAMPLEID123456789:alice@example.com");
    ctx.set_strings("aws:PrincipalTag/groups", ["dev", "oncall"]);
    ctx.set_current_time(now());
    ctx
}

const ALLOWED: (&str, &str) = (
    "s3:GetObject",
    "arn:aws:s3:::data-payments/reports/2026/11/summary.csv",
);
const DENIED: (&str, &str) = ("iam:PassRole", "arn:aws:iam::111122223333:role/admin");
const LARGE_HIT: (&str, &str) = ("s3:GetObject", "arn:aws:s3:::bucket-96/reports/q3.csv");
const LARGE_MISS: (&str, &str) = ("s3:GetObject", "arn:aws:s3:::unknown-bucket/reports/q3.csv");

fn parse(text: &str) -> Policy {
    Policy::parse(text, PolicyKind::Identity).expect("benchmark policy parses")
}

fn bench_typical(c: &mut Criterion) {
    let typical = parse(TYPICAL);
    let session = Policy::parse(SESSION, PolicyKind::Session).expect("session policy parses");
    let set = PolicySet::new().with_identity("team-data-access", &typical);
    let narrowed = PolicySet::new()
        .with_identity("team-data-access", &typical)
        .with_session("session", &session);
    let allowed = context(ALLOWED.0, ALLOWED.1);
    let denied = context(DENIED.0, DENIED.1);
    assert_eq!(evaluate(&set, &allowed).effect, Effect::Allow);
    assert_eq!(evaluate(&set, &denied).effect, Effect::ExplicitDeny);
    assert_eq!(evaluate(&narrowed, &allowed).effect, Effect::Allow);

    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("typical/allowed", |b| {
        b.iter(|| evaluate(black_box(&set), black_box(&allowed)))
    });
    g.bench_function("typical/denied", |b| {
        b.iter(|| evaluate(black_box(&set), black_box(&denied)))
    });
    g.bench_function("typical+session/allowed", |b| {
        b.iter(|| evaluate(black_box(&narrowed), black_box(&allowed)))
    });
    g.bench_function("typical/allowed, context built per request", |b| {
        b.iter(|| {
            let ctx = context(black_box(ALLOWED.0), black_box(ALLOWED.1));
            evaluate(black_box(&set), &ctx)
        })
    });
    g.finish();
}

fn bench_large(c: &mut Criterion) {
    let docs = large_documents();
    let policies: Vec<Policy> = docs.iter().map(|d| parse(d)).collect();
    let labels: Vec<String> = (1..=policies.len())
        .map(|i| format!("managed-{i}"))
        .collect();
    let set = labels
        .iter()
        .zip(&policies)
        .fold(PolicySet::new(), |s, (l, p)| s.with_identity(l, p));
    assert_eq!(
        policies.iter().map(Policy::statement_count).sum::<usize>(),
        100
    );
    let hit = context(LARGE_HIT.0, LARGE_HIT.1);
    let miss = context(LARGE_MISS.0, LARGE_MISS.1);
    let decision = evaluate(&set, &hit);
    assert_eq!(decision.effect, Effect::Allow);
    assert_eq!(decision.matched.len(), 1);
    assert_eq!(decision.matched[0].sid.as_deref(), Some("S96"));
    assert_eq!(evaluate(&set, &miss).effect, Effect::ImplicitDeny);

    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("large/match near the end", |b| {
        b.iter(|| evaluate(black_box(&set), black_box(&hit)))
    });
    g.bench_function("large/no match", |b| {
        b.iter(|| evaluate(black_box(&set), black_box(&miss)))
    });
    g.finish();
}

fn bench_parse(c: &mut Criterion) {
    let docs = large_documents();
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse/typical", |b| b.iter(|| parse(black_box(TYPICAL))));
    g.bench_function("parse/large (5 policies, 100 statements)", |b| {
        b.iter(|| docs.iter().map(|d| parse(black_box(d))).collect::<Vec<_>>())
    });
    g.finish();
}

criterion_group!(benches, bench_typical, bench_large, bench_parse);
criterion_main!(benches);
