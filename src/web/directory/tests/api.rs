//! The table of the admin API ([`super::super::API`]) against the router that serves it: every entry
//! is a route of its own that the router serves with the entry's action on the entry's resource,
//! a caller whose policies grant nothing is refused on every route with 403 and a deny audit event,
//! and the admin token reaches every route's operation.

use super::super::route::{Resource, Route};
use super::super::API;
use super::*;
use std::collections::HashSet;

/// One body that every route's operation can parse: each takes the fields it knows.
fn body() -> Value {
    json!({
        "name": "carol",
        "password": "a long enough password",
        "status": "Inactive",
        "code1": "000000",
        "code2": "111111",
        "document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]},
        "provider": "consumer",
        "claims": {"sub": "carol"},
        "scope": "user",
        "value": "alice",
        "reason": "a ticket",
    })
}

/// The route's path with its segments filled in (user `alice`, group `devs`), and its query.
fn concrete(route: &Route) -> String {
    let path = route
        .path
        .replace("{name}", "alice")
        .replace("{group}", "devs")
        .replace("{id}", "AKIAAAAAAAAAAAAAAAAA")
        .replace("{policy}", "a-policy");
    assert!(
        !path.contains('{'),
        "{}: a segment without a value",
        route.path
    );
    if route.action == "rolegate:DeactivateMFADevice" {
        format!("{path}?serial=arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Amfa%2Falice")
    } else {
        path
    }
}

/// What the route's resource is for [`concrete`] and [`body`], written out independently of the
/// code that builds it.
fn expected_resource(resource: Resource) -> String {
    let user = |n: &str| format!("arn:aws:iam::{ACCOUNT}:user/{n}");
    let group = |n: &str| format!("arn:aws:iam::{ACCOUNT}:group/{n}");
    match resource {
        Resource::AllUsers => user("*"),
        Resource::User | Resource::ChangesUser | Resource::Sessions => user("alice"),
        Resource::UserInBody => user("carol"),
        Resource::AllGroups => group("*"),
        Resource::Group | Resource::GroupMember => group("devs"),
        Resource::GroupInBody => group("carol"),
        Resource::Assignments => "arn:aws:rolegate:::assignments".into(),
    }
}

/// A fixture with user `alice` and group `devs`.
async fn fixture() -> Fixture {
    let f = Fixture::new().await;
    f.directory().create_user("alice", None).await.unwrap();
    f.directory().create_group("devs", None).await.unwrap();
    f
}

#[test]
fn every_entry_is_a_route_of_its_own_asking_a_rolegate_action_on_segments_its_path_has() {
    let mut routes = HashSet::new();
    let mut actions = HashSet::new();
    for route in API {
        assert!(
            routes.insert((route.verb, route.path)),
            "{:?} {} twice",
            route.verb,
            route.path
        );
        let name = route.action.strip_prefix("rolegate:").unwrap_or_default();
        assert!(
            name.len() > 3
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{}: not a rolegate:Action",
            route.action
        );
        // The action names the route in the audit log.
        assert!(actions.insert(route.action), "{} twice", route.action);
        for segment in route.resource.params() {
            assert!(
                route.path.contains(&format!("{{{segment}}}")),
                "{}: {:?} needs {{{segment}}}",
                route.path,
                route.resource
            );
        }
        assert!(route.path.starts_with("/admin/"), "{}", route.path);
    }
}

#[tokio::test]
async fn a_caller_whose_policies_grant_nothing_is_refused_on_every_route_with_403_and_an_audit_event(
) {
    let f = fixture().await;
    let nobody = f
        .user_with_grant("nobody", &["arn:aws:s3:::not-the-directory"])
        .await;
    let caller = format!("arn:aws:iam::{ACCOUNT}:user/nobody");
    let users_before = f.directory().users().await.unwrap();
    let groups_before = f.directory().groups().await.unwrap().len();
    for route in API {
        let path = concrete(route);
        let a = f
            .signed(&nobody, route.verb.method(), &path, Some(body()))
            .await;
        let case = format!("{:?} {path}: {} {}", route.verb, a.status, a.body);
        let resource = expected_resource(route.resource);
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{case}");
        assert_eq!(
            a.body["error"],
            json!(format!(
                "User: {caller} is not authorized to perform: {} on resource: {resource}",
                route.action
            )),
            "{case}"
        );
        let events = f.audit(route.action).await;
        assert!(
            events.iter().any(|e| e.decision == "deny"
                && e.principal.as_deref() == Some(caller.as_str())
                && e.role_arn.as_deref() == Some(resource.as_str())
                && e.reason.as_deref().is_some_and(|r| r.contains(&resource))),
            "{case}: no deny event naming the caller and the resource: {events:?}"
        );
    }
    assert_eq!(f.directory().users().await.unwrap(), users_before);
    assert_eq!(f.directory().groups().await.unwrap().len(), groups_before);
}

#[tokio::test]
async fn the_admin_token_reaches_the_operation_of_every_route() {
    let f = fixture().await;
    for route in API {
        let path = concrete(route);
        let a = f.admin(route.verb.method(), &path, Some(body())).await;
        let case = format!("{:?} {path}: {} {}", route.verb, a.status, a.body);
        // The operation ran: it answered, or the directory refused what it was asked.
        assert!(
            !a.status.is_server_error()
                && a.status != StatusCode::UNAUTHORIZED
                && a.status != StatusCode::FORBIDDEN
                && a.status != StatusCode::METHOD_NOT_ALLOWED
                && (a.body.is_object() || a.body.is_array()),
            "{case}"
        );
        let events = f.audit(route.action).await;
        assert!(
            events
                .iter()
                .any(|e| e.principal.as_deref() == Some("admin-token")
                    && e.role_arn.as_deref() == Some(expected_resource(route.resource).as_str())),
            "{case}: no audit event of the admin token"
        );
    }
}
