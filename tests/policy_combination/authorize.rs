//! `POST /v1/authorize`: a resource policy combines with the session's policies by where the
//! resource is (the ARN's account, or `resource_account`).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{principal, Caller, Names, Server, CALLERS, CALLERS_ALL, RESOURCES};
use crate::support::app::Creds;

/// Where the resource of an authorization request is, and how the request says so.
#[derive(Clone, Copy, Debug)]
enum Where {
    /// An SQS queue of the caller's account (the ARN says).
    Same,
    /// An SQS queue of another account (the ARN says).
    Cross,
    /// An S3 object (the ARN names no account) without `resource_account`.
    Unknown,
    /// An S3 object with `resource_account` the caller's.
    SameByField,
    /// An S3 object with `resource_account` another account.
    CrossByField,
}

impl Where {
    fn request(self) -> (&'static str, String, Option<&'static str>) {
        let queue = |account: &str| format!("arn:aws:sqs:us-east-1:{account}:jobs");
        let object = "arn:aws:s3:::shared/report.csv".to_owned();
        match self {
            Where::Same => ("sqs:SendMessage", queue(CALLERS), None),
            Where::Cross => ("sqs:SendMessage", queue(RESOURCES), None),
            Where::Unknown => ("s3:GetObject", object, None),
            Where::SameByField => ("s3:GetObject", object, Some(CALLERS)),
            Where::CrossByField => ("s3:GetObject", object, Some(RESOURCES)),
        }
    }
}

/// Expected decisions for the callers in the order of [`CALLERS_ALL`]: `A` allowed, `-` implicitly
/// denied, `X` explicitly denied.
///
/// Within one account (AWS's policy evaluation logic): a resource policy naming the session ARN
/// allows on its own, whatever the identity policies, boundary or session policy say; one naming
/// the role ARN allows but is still limited by the boundary and the session policy; one naming the
/// account (or someone else, or no resource policy) leaves it to the identity policies within the
/// boundary and session policy. Across accounts both sides must allow. An explicit deny wins.
const SAME_ACCOUNT: [(Names, &str); 5] = [
    (Names::Session, "AAAAAX"),
    (Names::Role, "A-A--X"),
    (Names::Account, "A----X"),
    (Names::Other, "A----X"),
    (Names::Nothing, "A----X"),
];
const OTHER_ACCOUNT: [(Names, &str); 5] = [
    (Names::Session, "A----X"),
    (Names::Role, "A----X"),
    (Names::Account, "A----X"),
    (Names::Other, "-----X"),
    (Names::Nothing, "-----X"),
];
/// With the account unknown, a resource policy never allows on its own, but without one the
/// session's policies decide.
const UNKNOWN_ACCOUNT: [(Names, &str); 5] = [
    (Names::Session, "A----X"),
    (Names::Role, "A----X"),
    (Names::Account, "A----X"),
    (Names::Other, "-----X"),
    (Names::Nothing, "A----X"),
];

fn expected(code: u8) -> &'static str {
    match code {
        b'A' => "Allow",
        b'X' => "ExplicitDeny",
        _ => "ImplicitDeny",
    }
}

fn resource_policy(names: Names) -> Option<Value> {
    (names != Names::Nothing).then(|| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": principal(names), "Action": ["sqs:SendMessage", "s3:GetObject"],
            "Resource": "*"}]})
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_combines_resource_policies_by_account() {
    let server = Server::start().await;
    let sessions: Vec<(Caller, Creds)> = CALLERS_ALL
        .iter()
        .map(|c| (*c, server.caller(*c)))
        .collect();
    let tables: [(Where, &[(Names, &str); 5]); 5] = [
        (Where::Same, &SAME_ACCOUNT),
        (Where::SameByField, &SAME_ACCOUNT),
        (Where::Cross, &OTHER_ACCOUNT),
        (Where::CrossByField, &OTHER_ACCOUNT),
        (Where::Unknown, &UNKNOWN_ACCOUNT),
    ];
    let mut failures = Vec::new();
    for (place, table) in tables {
        let (action, resource, account) = place.request();
        for (names, codes) in table {
            for ((caller, creds), code) in sessions.iter().zip(codes.bytes()) {
                let mut extra = json!({});
                if let Some(rp) = resource_policy(*names) {
                    extra["resource_policy"] = rp;
                }
                if let Some(a) = account {
                    extra["resource_account"] = json!(a);
                }
                let (status, out) = server.authorize(creds, action, &resource, extra).await;
                let want = expected(code);
                if status != StatusCode::OK || out["decision"] != want {
                    failures.push(format!(
                        "{place:?} × resource policy naming {names:?} × {caller:?}: expected \
                         {want}, got {status} {} ({})",
                        out["decision"], out["explanation"]["summary"]
                    ));
                } else {
                    assert_eq!(out["allowed"], json!(want == "Allow"), "{out}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_explains_a_cross_account_denial() {
    let server = Server::start().await;
    let creds = server.caller(Caller::Neither);
    let queue = format!("arn:aws:sqs:us-east-1:{RESOURCES}:jobs");
    let (status, out) = server
        .authorize(
            &creds,
            "sqs:SendMessage",
            &queue,
            json!({"resource_policy": resource_policy(Names::Session)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["decision"], "ImplicitDeny", "{out}");
    let summary = out["explanation"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("another account") && summary.contains("no identity-based policy"),
        "{summary}"
    );
    // A resource in another account without a resource policy: nothing is allowed.
    let creds = server.caller(Caller::Allowed);
    let (_, out) = server
        .authorize(&creds, "sqs:SendMessage", &queue, json!({}))
        .await;
    assert_eq!(out["decision"], "ImplicitDeny", "{out}");
    let summary = out["explanation"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("has no resource policy"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_checks_resource_account() {
    let server = Server::start().await;
    let creds = server.caller(Caller::Allowed);
    let queue = format!("arn:aws:sqs:us-east-1:{RESOURCES}:jobs");
    let cases = [
        (
            queue.as_str(),
            json!(CALLERS),
            "contradicts the account 111122223333",
        ),
        (
            "arn:aws:s3:::shared/x",
            json!("12345"),
            "not a 12-digit account id",
        ),
        (
            "arn:aws:s3:::shared/x",
            json!("abcdefghijkl"),
            "not a 12-digit account id",
        ),
    ];
    for (resource, account, needle) in cases {
        let (status, out) = server
            .authorize(
                &creds,
                "s3:GetObject",
                resource,
                json!({ "resource_account": account }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert_eq!(out["error"]["code"], "InvalidInput", "{out}");
        let message = out["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message}");
    }
    // The same account given twice is fine.
    let (status, out) = server
        .authorize(
            &creds,
            "sqs:SendMessage",
            &queue,
            json!({ "resource_account": RESOURCES, "resource_policy": resource_policy(Names::Role) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["decision"], "Allow", "{out}");
}
