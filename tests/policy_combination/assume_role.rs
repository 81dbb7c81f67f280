//! STS `AssumeRole`: the target role's trust policy is its resource policy and combines with the
//! caller's own policies by the same rule as every resource policy.

use reqwest::StatusCode;

use crate::harness::{target, Caller, Names, Server, CALLERS, CALLERS_ALL, RESOURCES};
use crate::support::app::{credentials, error_code, request_id, Creds};

/// Expected `AssumeRole` outcomes per caller (order of [`CALLERS_ALL`]); the trust policy is the
/// target role's resource policy, so the rule is the one of [`SAME_ACCOUNT`] and
/// [`OTHER_ACCOUNT`]; a trust policy naming someone else refuses before the caller's policies
/// count.
const ASSUME_SAME: [(Names, &str); 4] = [
    (Names::Session, "AAAAA-"),
    (Names::Role, "A-A---"),
    (Names::Account, "A-----"),
    (Names::Other, "------"),
];
const ASSUME_CROSS: [(Names, &str); 4] = [
    (Names::Session, "A-----"),
    (Names::Role, "A-----"),
    (Names::Account, "A-----"),
    (Names::Other, "------"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_combines_the_trust_policy_with_the_callers_policies() {
    let server = Server::start().await;
    let sessions: Vec<(Caller, Creds)> = CALLERS_ALL
        .iter()
        .map(|c| (*c, server.caller(*c)))
        .collect();
    let mut failures = Vec::new();
    for (account, table) in [(CALLERS, &ASSUME_SAME), (RESOURCES, &ASSUME_CROSS)] {
        for (names, codes) in table {
            let role = target(account, *names);
            for ((caller, creds), code) in sessions.iter().zip(codes.bytes()) {
                let (status, body) = server.assume_role(creds, &role).await;
                let want_allowed = code == b'A';
                let allowed = status == StatusCode::OK && credentials(&body).is_some();
                if allowed != want_allowed {
                    failures.push(format!(
                        "{role} × {caller:?}: expected {}, got {status} {}",
                        if want_allowed {
                            "credentials"
                        } else {
                            "AccessDenied"
                        },
                        error_code(&body).unwrap_or_default()
                    ));
                } else if !allowed {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
                    assert_eq!(error_code(&body).as_deref(), Some("AccessDenied"), "{body}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_trusted_by_role_arn_is_denied_by_the_callers_boundary() {
    let server = Server::start().await;
    let creds = server.caller(Caller::BoundaryDenies);
    let role = target(CALLERS, Names::Role);
    let (status, body) = server.assume_role(&creds, &role).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("AccessDenied"), "{body}");
    let request_id = request_id(&body).unwrap_or_default();
    let event = server.audit_event(&request_id).await;
    let reason = event.reason.unwrap_or_default();
    assert!(
        reason.contains("do not allow sts:AssumeRole")
            && reason.contains("permissions boundary does not allow"),
        "{reason}"
    );
}
