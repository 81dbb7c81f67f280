//! Attribute projection (`attributes`, `excludedAttributes`).

use super::project::project;
use super::{ResourceKind, ScimType, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{json, Value};

const U: ResourceKind = ResourceKind::User;

fn user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "u1",
        "externalId": "e1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "emails": [{"value": "b@x.org", "type": "work"}, {"value": "c@x.org", "type": "home"}],
        "groups": [{"value": "g1", "display": "Tour Guides"}],
        "meta": {"resourceType": "User", "version": "W/\"1\""},
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7", "department": "Sales"}
    })
}

fn p(a: Option<&str>, e: Option<&str>) -> Value {
    project(U, &user(), a, e).unwrap()
}

#[test]
fn without_parameters_everything_but_never_returned_attributes_is_returned() {
    assert_eq!(p(None, None), user());
    let mut with_password = user();
    with_password["password"] = json!("secret");
    assert_eq!(project(U, &with_password, None, None).unwrap(), user());
}

#[test]
fn attributes_selects_and_keeps_id_and_schemas() {
    assert_eq!(
        p(Some("userName"), None),
        json!({"schemas": [USER_SCHEMA], "id": "u1", "userName": "bjensen"})
    );
    assert_eq!(
        p(Some("USERNAME, name.givenName,emails.value"), None),
        json!({"schemas": [USER_SCHEMA], "id": "u1", "userName": "bjensen", "name": {"givenName": "Barbara"},
               "emails": [{"value": "b@x.org"}, {"value": "c@x.org"}]})
    );
    assert_eq!(
        p(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None
        ),
        json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "u1", ENTERPRISE_USER_SCHEMA: {"department": "Sales"}})
    );
    assert_eq!(
        p(Some(ENTERPRISE_USER_SCHEMA), None),
        json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "u1", ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7", "department": "Sales"}})
    );
    assert_eq!(
        p(
            Some("urn:ietf:params:scim:schemas:core:2.0:User:displayName,meta"),
            None
        ),
        json!({"schemas": [USER_SCHEMA], "id": "u1", "displayName": "Babs", "meta": {"resourceType": "User", "version": "W/\"1\""}})
    );
    // An attribute the resource does not have, or no attribute at all, is no error.
    assert_eq!(
        p(Some("nickName,shoeSize"), None),
        json!({"schemas": [USER_SCHEMA], "id": "u1"})
    );
    assert_eq!(
        p(Some("password"), None),
        json!({"schemas": [USER_SCHEMA], "id": "u1"})
    );
}

#[test]
fn excluded_attributes_removes_but_never_id_or_schemas() {
    let mut want = user();
    let o = want.as_object_mut().unwrap();
    o.remove("emails");
    o.remove("meta");
    assert_eq!(p(None, Some("emails,META,id,schemas")), want);
    let out = p(None, Some("name.familyName,emails.type"));
    assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    assert_eq!(
        out["emails"],
        json!([{"value": "b@x.org"}, {"value": "c@x.org"}])
    );
    let out = p(None, Some(ENTERPRISE_USER_SCHEMA));
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    let out = p(
        None,
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
    );
    assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "Sales"}));
    // Entra ID reads groups without their members.
    let g = json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "G", "members": [{"value": "u1"}]});
    assert_eq!(
        project(ResourceKind::Group, &g, None, Some("members")).unwrap(),
        json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "G"})
    );
    // Both: select, then remove.
    assert_eq!(
        p(Some("userName,displayName"), Some("displayName")),
        json!({"schemas": [USER_SCHEMA], "id": "u1", "userName": "bjensen"})
    );
}

#[test]
fn malformed_attribute_lists_are_refused() {
    for (a, detail) in [
        (
            "name..givenName",
            "attributes: 'name..givenName' goes deeper than an attribute and its sub-attribute",
        ),
        (
            "user name",
            "attributes: 'user name' is not an attribute name",
        ),
        (
            "urn:example:x:y",
            "attributes: 'urn:example:x:y' names an unknown schema",
        ),
    ] {
        let e = project(U, &user(), Some(a), None).unwrap_err();
        assert_eq!(
            (e.status, e.scim_type, e.detail.as_str()),
            (400, Some(ScimType::InvalidValue), detail),
            "{a}"
        );
    }
    let e = project(U, &user(), None, Some("emails[type eq \"work\"]")).unwrap_err();
    assert_eq!(
        e.detail,
        "excludedAttributes: 'emails[type eq \"work\"]' is not an attribute name"
    );
}
