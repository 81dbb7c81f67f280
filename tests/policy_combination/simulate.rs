//! IAM's simulator: a resource policy combines with the simulated caller's policies by where the
//! resource is (the ARN's account, else `ResourceOwner`, else the caller's own).

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Server, ALLOW_OTHER, CALLERS, RESOURCES};
use crate::support::app::{xml_text, Creds};

/// A resource policy allowing `sqs:SendMessage` to `principal`.
fn grant_to(principal: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": principal}, "Action": "sqs:SendMessage", "Resource": "*"}]})
    .to_string()
}

fn queue(account: &str) -> String {
    format!("arn:aws:sqs:us-east-1:{account}:jobs")
}

/// The `EvalDecision` of a simulation of `sqs:SendMessage` on `resource`.
async fn simulate(
    server: &Server,
    creds: &Creds,
    form: &[(&str, &str)],
    resource: &str,
    owner: Option<&str>,
) -> String {
    let owner = owner.map(|o| format!("arn:aws:iam::{o}:root"));
    let mut form = form.to_vec();
    form.extend([
        ("Version", "2010-05-08"),
        ("ActionNames.member.1", "sqs:SendMessage"),
        ("ResourceArns.member.1", resource),
    ]);
    if let Some(o) = &owner {
        form.push(("ResourceOwner", o));
    }
    let (status, body) = server.query(creds, "iam", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    xml_text(&body, "EvalDecision").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_custom_policy_combines_resource_policies_by_account() {
    let server = Server::start().await;
    let creds = server.session("simulator", "sim", None, None);
    let caller = format!("arn:aws:iam::{CALLERS}:role/someone");
    let grant = grant_to(&caller);
    let form = [
        ("Action", "SimulateCustomPolicy"),
        ("PolicyInputList.member.1", ALLOW_OTHER),
        ("ResourcePolicy", grant.as_str()),
        ("CallerArn", caller.as_str()),
    ];
    let run = |resource: String, owner: Option<&'static str>| {
        let (server, creds, form) = (&server, &creds, &form);
        async move { simulate(server, creds, form, &resource, owner).await }
    };
    // Within the caller's account the resource policy naming the caller allows on its own.
    assert_eq!(run(queue(CALLERS), None).await, "allowed");
    // In another account the identity policy must allow too, and it does not.
    assert_eq!(run(queue(RESOURCES), None).await, "implicitDeny");
    // An ARN without an account: ResourceOwner, else (as IAM's simulator) the caller's account.
    let object = "arn:aws:s3:::shared/x".to_owned();
    assert_eq!(run(object.clone(), None).await, "allowed");
    assert_eq!(run(object.clone(), Some(CALLERS)).await, "allowed");
    assert_eq!(run(object, Some(RESOURCES)).await, "implicitDeny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_principal_policy_combines_resource_policies_by_account() {
    let server = Server::start().await;
    let creds = server.session("simulator", "sim", None, None);
    // Roles whose identity policies do not allow sqs:SendMessage; the boundary of the first allows
    // everything, that of the second does not allow it.
    for (role, same_account) in [("noid-bnd", "allowed"), ("noid-nobnd", "implicitDeny")] {
        let role = format!("arn:aws:iam::{CALLERS}:role/{role}");
        let grant = grant_to(&role);
        let form = [
            ("Action", "SimulatePrincipalPolicy"),
            ("PolicySourceArn", role.as_str()),
            ("ResourcePolicy", grant.as_str()),
        ];
        // In the role's account the resource policy naming the role allows within the boundary.
        let got = simulate(&server, &creds, &form, &queue(CALLERS), None).await;
        assert_eq!(got, same_account, "{role}");
        // In another account the role's own policies must allow too.
        let got = simulate(&server, &creds, &form, &queue(RESOURCES), None).await;
        assert_eq!(got, "implicitDeny", "{role}");
        let object = "arn:aws:s3:::shared/x";
        let got = simulate(&server, &creds, &form, object, Some(RESOURCES)).await;
        assert_eq!(got, "implicitDeny", "{role}");
        let got = simulate(&server, &creds, &form, object, None).await;
        assert_eq!(got, same_account, "{role}");
    }
}
