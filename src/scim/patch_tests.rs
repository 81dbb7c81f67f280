//! PATCH: the message bodies Okta and Entra ID document, replayed against stored resources, and
//! every refusal with its status and scimType.

use super::patch::apply;
use super::{ResourceKind, ScimType, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA};
use serde_json::{json, Value};

const U: ResourceKind = ResourceKind::User;
const G: ResourceKind = ResourceKind::Group;

fn user() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "displayName": "Test User",
        "active": true,
        "emails": [{"value": "test.user@okta.local", "type": "work", "primary": true}],
        "groups": [{"value": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "display": "Test SCIMv2"}],
        "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z",
                 "lastModified": "2026-01-01T00:00:00Z", "version": "W/\"1\""}
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Test SCIMv2",
        "members": [
            {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "other.user@okta.local"},
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "test.user@okta.local"}
        ],
        "meta": {"resourceType": "Group", "version": "W/\"4\""}
    })
}

fn ops(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn ok(kind: ResourceKind, r: &Value, msg: Value) -> Value {
    apply(kind, r, &msg).unwrap_or_else(|e| panic!("{msg}: {e}"))
}

fn refused(kind: ResourceKind, r: &Value, msg: Value) -> (u16, Option<ScimType>, String) {
    let e = apply(kind, r, &msg).expect_err(&msg.to_string());
    (e.status, e.scim_type, e.detail)
}

fn member_ids(g: &Value) -> Vec<&str> {
    g["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["value"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn okta_deactivates_a_user_with_a_pathless_replace() {
    let out = ok(
        U,
        &user(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]
        }),
    );
    assert_eq!(out["active"], json!(false));
    // Everything else, and the server's id, meta and groups, unchanged.
    let mut expected = user();
    expected["active"] = json!(false);
    assert_eq!(out, expected);
}

#[test]
fn okta_renames_a_group_sending_its_id_along() {
    let out = ok(
        G,
        &group(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2 renamed"}}]
        }),
    );
    assert_eq!(out["displayName"], "Test SCIMv2 renamed");
    assert_eq!(out["id"], "abf4dd94-a4c0-4f67-89c9-76b03340cb9b");
    // An id in a pathless value is ignored, never stored: the stored id stays.
    let out = ok(
        G,
        &group(),
        ops(json!([{"op": "replace", "value": {"id": "other"}}])),
    );
    assert_eq!(out, group());
}

#[test]
fn okta_adds_and_removes_group_members() {
    let out = ok(
        G,
        &group(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{
                "op": "add",
                "path": "members",
                "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "new.user@okta.local"}]
            }]
        }),
    );
    assert_eq!(
        member_ids(&out),
        [
            "89bb1940-b905-4575-9e7f-6f887cfb368e",
            "2819c223-7f76-453a-919d-413861904646",
            "23a35c27-23d3-4c03-b4c5-6443c09e7173",
        ]
    );
    let out = ok(
        G,
        &out,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"}]
        }),
    );
    assert_eq!(
        member_ids(&out),
        [
            "2819c223-7f76-453a-919d-413861904646",
            "23a35c27-23d3-4c03-b4c5-6443c09e7173",
        ]
    );
    // Adding a member twice keeps one; removing one not in the group is no error.
    let again = ok(
        G,
        &out,
        ops(
            json!([{"op": "add", "path": "members", "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"}]}]),
        ),
    );
    assert_eq!(member_ids(&again), member_ids(&out));
    let same = ok(
        G,
        &out,
        ops(json!([{"op": "remove", "path": "members[value eq \"not-a-member\"]"}])),
    );
    assert_eq!(same, out);
    // Okta replaces the whole membership with a replace on members.
    let out = ok(
        G,
        &group(),
        ops(
            json!([{"op": "replace", "path": "members", "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"}]}]),
        ),
    );
    assert_eq!(member_ids(&out), ["23a35c27-23d3-4c03-b4c5-6443c09e7173"]);
    // Removing every member leaves no members attribute.
    let out = ok(
        G,
        &group(),
        ops(json!([{"op": "remove", "path": "members"}])),
    );
    assert!(out.get("members").is_none(), "{out}");
}

#[test]
fn entra_disables_a_user_with_a_string_boolean() {
    for value in [json!("False"), json!(false), json!("false")] {
        let out = ok(
            U,
            &user(),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "active", "value": value}]
            }),
        );
        assert_eq!(out["active"], json!(false));
    }
    let off = ok(
        U,
        &user(),
        ops(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    );
    let on = ok(
        U,
        &off,
        ops(json!([{"op": "Replace", "path": "active", "value": "True"}])),
    );
    assert_eq!(on["active"], json!(true));
}

#[test]
fn entra_adds_and_removes_members() {
    let out = ok(
        G,
        &group(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]
        }),
    );
    assert_eq!(out["members"][2], json!({"value": "f648f8d5ea4e4cd38e9c"}));
    // The compliant form: a value filter in the path.
    let gone = ok(
        G,
        &out,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Remove", "path": "members[value eq \"f648f8d5ea4e4cd38e9c\"]"}]
        }),
    );
    assert_eq!(gone, group());
    // The older form: path "members" with the members to remove as the value.
    let gone = ok(
        G,
        &out,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]
        }),
    );
    assert_eq!(gone, group());
    // The older form names values by what it gives of them, for any multi-valued attribute.
    let out = ok(
        U,
        &user(),
        ops(json!([
            {"op": "Remove", "path": "emails", "value": [{"value": "test.user@okta.local"}]}
        ])),
    );
    assert!(out.get("emails").is_none(), "{out}");
    let out = ok(
        U,
        &user(),
        ops(json!([
            {"op": "Remove", "path": "emails", "value": [{"value": "test.user@okta.local", "type": "home"}]}
        ])),
    );
    assert_eq!(out, user());
}

#[test]
fn entra_replaces_without_a_path_with_dotted_and_urn_keys() {
    let out = ok(
        U,
        &user(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{
                "op": "replace",
                "value": {
                    "displayName": "Pvgauhmfzutc",
                    "name.givenName": "Mjdwmrrkx",
                    "name.familyName": "Cqrzxaqtuz",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Wwrrbrqn",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Vswqlzx",
                    "active": "False"
                }
            }]
        }),
    );
    assert_eq!(out["displayName"], "Pvgauhmfzutc");
    assert_eq!(
        out["name"],
        json!({"givenName": "Mjdwmrrkx", "familyName": "Cqrzxaqtuz"})
    );
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"employeeNumber": "Wwrrbrqn", "department": "Vswqlzx"})
    );
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    assert_eq!(out["active"], json!(false));
    // Keys with value filters, and null to unassign.
    let out2 = ok(
        U,
        &user(),
        ops(json!([{"op": "replace", "value": {
            "emails[type eq \"work\"].value": "new@x.org",
            "addresses[type eq \"work\"].locality": "Paris",
            "displayName": null
        }}])),
    );
    assert_eq!(
        out2["emails"],
        json!([{"value": "new@x.org", "type": "work", "primary": true}])
    );
    assert_eq!(
        out2["addresses"],
        json!([{"type": "work", "locality": "Paris"}])
    );
    assert!(out2.get("displayName").is_none(), "{out2}");
    // The extension object under its URN works the same.
    let same = ok(
        U,
        &user(),
        ops(json!([{"op": "replace", "value": {
            "displayName": "Pvgauhmfzutc",
            "name": {"givenName": "Mjdwmrrkx", "familyName": "Cqrzxaqtuz"},
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "Wwrrbrqn", "department": "Vswqlzx"},
            "active": false
        }}])),
    );
    assert_eq!(same, out);
}

#[test]
fn entra_updates_multi_valued_and_single_valued_properties() {
    let out = ok(
        U,
        &user(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}
            ]
        }),
    );
    assert_eq!(
        out["emails"],
        json!([{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}])
    );
    assert_eq!(out["name"]["familyName"], "updatedFamilyName");
    assert_eq!(out["name"]["givenName"], "Test");
    assert_eq!(
        out["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    // Replace of a work address the user does not have yet adds it (Entra ID counts noTarget as
    // a failed update).
    let mut no_work = user();
    no_work["emails"] = json!([{"value": "home@x.org", "type": "home"}]);
    let out = ok(
        U,
        &no_work,
        ops(json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"}
        ])),
    );
    assert_eq!(
        out["emails"],
        json!([
            {"value": "home@x.org", "type": "home"},
            {"value": "updatedEmail@microsoft.com", "type": "work"}
        ])
    );
    // Add with a filter that selects nothing creates the value the filter describes.
    let out = ok(
        U,
        &user(),
        ops(json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"}
        ])),
    );
    assert_eq!(
        out["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
    assert_eq!(out["roles"], json!([{"primary": true, "value": "Admin"}]));
}

#[test]
fn enterprise_manager_takes_an_object_a_string_or_a_list_of_one() {
    let path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    let want = json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"});
    for (p, value) in [
        (
            path,
            json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"}),
        ),
        (path, json!("26118915-6090-4610-87e4-49d8ca9f808d")),
        (
            "manager",
            json!([{"$ref": null, "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]),
        ),
    ] {
        let out = ok(
            U,
            &user(),
            ops(json!([{"op": "Add", "path": p, "value": value}])),
        );
        assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], want, "{p} {value}");
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        // And removed again, the extension goes with its last attribute.
        let out = ok(U, &out, ops(json!([{"op": "Remove", "path": p}])));
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none(), "{out}");
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    }
    // A path naming the extension takes the extension object, which may list its schema.
    let out = ok(
        U,
        &user(),
        ops(
            json!([{"op": "add", "path": ENTERPRISE_USER_SCHEMA, "value": {
                "schemas": [ENTERPRISE_USER_SCHEMA], "employeeNumber": "7", "manager": {"value": "m"}
            }}]),
        ),
    );
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"employeeNumber": "7", "manager": {"value": "m"}})
    );
    let out = ok(
        U,
        &out,
        ops(
            json!([{"op": "replace", "path": ENTERPRISE_USER_SCHEMA, "value": {"employeeNumber": "8"}}]),
        ),
    );
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"employeeNumber": "8", "manager": {"value": "m"}})
    );
    let out = ok(
        U,
        &out,
        ops(json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}])),
    );
    assert_eq!(out, user());
    // manager.displayName is the server's: a replace of it is refused.
    assert_eq!(
        refused(
            U,
            &user(),
            ops(json!([{"op": "replace", "path": format!("{path}.displayName"), "value": "x"}]))
        ),
        (
            400,
            Some(ScimType::Mutability),
            "operation 1: 'manager.displayName' is readOnly".into()
        )
    );
}

#[test]
fn rfc_7644_operations_on_complex_and_multi_valued_attributes() {
    // add to a complex attribute merges its sub-attributes.
    let out = ok(
        U,
        &user(),
        ops(json!([{"op": "add", "path": "name", "value": {"middleName": "Q"}}])),
    );
    assert_eq!(
        out["name"],
        json!({"givenName": "Test", "familyName": "User", "middleName": "Q"})
    );
    // add to a multi-valued attribute appends; a new primary clears the old one.
    let out = ok(
        U,
        &user(),
        ops(
            json!([{"op": "add", "path": "emails", "value": [{"value": "b@x.org", "type": "home", "primary": true}]}]),
        ),
    );
    assert_eq!(
        out["emails"],
        json!([
            {"value": "test.user@okta.local", "type": "work", "primary": false},
            {"value": "b@x.org", "type": "home", "primary": true}
        ])
    );
    // replace of a filtered value replaces it whole.
    let out2 = ok(
        U,
        &out,
        ops(
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "c@x.org", "type": "other"}}]),
        ),
    );
    assert_eq!(
        out2["emails"][1],
        json!({"value": "c@x.org", "type": "other"})
    );
    // remove of a sub-attribute of the selected values.
    let out3 = ok(
        U,
        &out,
        ops(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}])),
    );
    assert_eq!(
        out3["emails"][0],
        json!({"value": "test.user@okta.local", "type": "work"})
    );
    // remove of a single attribute, of a sub-attribute.
    let out4 = ok(
        U,
        &user(),
        ops(
            json!([{"op": "remove", "path": "displayName"}, {"op": "remove", "path": "name.givenName"}]),
        ),
    );
    assert!(out4.get("displayName").is_none());
    assert_eq!(out4["name"], json!({"familyName": "User"}));
    // ops and paths in any case; attribute names stored in canonical casing.
    let out5 = ok(
        U,
        &user(),
        ops(json!([{"OP": "ADD", "PATH": "NICKNAME", "VALUE": "Babs"}])),
    );
    assert_eq!(out5["nickName"], "Babs");
    // Operations apply in order.
    let out6 = ok(
        U,
        &user(),
        ops(json!([
            {"op": "replace", "path": "title", "value": "a"},
            {"op": "replace", "path": "title", "value": "b"}
        ])),
    );
    assert_eq!(out6["title"], "b");
}

#[test]
fn refusals_carry_the_status_and_scim_type() {
    let u = user();
    let cases: Vec<(Value, ScimType, &str)> = vec![
        (json!([{"op": "remove"}]), ScimType::NoTarget, "operation 1: a remove operation needs a 'path'"),
        (json!([{"op": "replace", "path": "emails[value co \"@nowhere\"].value", "value": "x@y"}]), ScimType::NoTarget,
            "operation 1: the value filter selects no value of 'emails'"),
        (json!([{"op": "replace", "path": "id", "value": "x"}]), ScimType::Mutability, "operation 1: 'id' is readOnly"),
        (json!([{"op": "replace", "path": "meta.lastModified", "value": "2026-01-01T00:00:00Z"}]), ScimType::Mutability,
            "operation 1: 'meta.lastModified' is readOnly"),
        (json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]), ScimType::Mutability, "operation 1: 'groups' is readOnly"),
        (json!([{"op": "replace", "path": "shoeSize", "value": 1}]), ScimType::InvalidPath, "operation 1: a User has no attribute 'shoeSize'"),
        (json!([{"op": "replace", "path": "name.shoe", "value": 1}]), ScimType::InvalidPath, "operation 1: 'name' has no sub-attribute 'shoe'"),
        (json!([{"op": "replace", "path": "emails[type eq \"work\"", "value": 1}]), ScimType::InvalidPath,
            "operation 1: invalid path at character 22: expected ']' to close the value filter, found the end"),
        (json!([{"op": "replace", "path": "emails[shoe eq \"x\"].value", "value": "v"}]), ScimType::InvalidPath,
            "operation 1: 'emails' has no sub-attribute 'shoe'"),
        (json!([{"op": "replace", "path": "userName[value eq \"x\"]", "value": "v"}]), ScimType::InvalidPath,
            "operation 1: 'userName' is not a multi-valued complex attribute; a value filter does not apply"),
        (json!([{"op": "replace", "path": "emails.value", "value": "v"}]), ScimType::InvalidPath,
            "operation 1: 'emails' is multi-valued: select values with a filter, e.g. emails[type eq \"work\"].value"),
        (json!([{"op": "replace", "path": 5, "value": "v"}]), ScimType::InvalidPath, "operation 1: 'path' is not a string"),
        (json!([{"op": "replace", "value": {"shoeSize": 1}}]), ScimType::InvalidPath, "operation 1: a User has no attribute 'shoeSize'"),
        (json!([{"op": "replace", "path": "active", "value": "yes"}]), ScimType::InvalidValue, "operation 1: 'active' is a boolean; got a string"),
        (json!([{"op": "replace", "path": "emails", "value": [{"value": 5}]}]), ScimType::InvalidValue, "operation 1: 'emails.value' is a string; got a number"),
        (json!([{"op": "replace", "path": "title"}]), ScimType::InvalidValue, "operation 1: 'title' needs a 'value'"),
        (json!([{"op": "replace", "value": "x"}]), ScimType::InvalidValue,
            "operation 1: an add or replace without 'path' needs an object 'value' of attributes"),
        (json!([{"op": "remove", "path": "userName"}]), ScimType::InvalidValue, "a User needs 'userName'"),
        (json!([{"op": "move", "path": "title"}]), ScimType::InvalidSyntax, "operation 1: 'op' is 'move'; expected add, replace or remove"),
        (json!([{"path": "title"}]), ScimType::InvalidSyntax, "operation 1: 'op' is missing"),
        (json!(["replace"]), ScimType::InvalidSyntax, "operation 1: an operation is not a JSON object"),
        (json!([]), ScimType::InvalidSyntax, "'Operations' is missing or empty; a PATCH body holds at least one operation"),
        (json!([{"op": "replace", "path": "title", "value": "ok"}, {"op": "replace", "path": "id", "value": "x"}]), ScimType::Mutability,
            "operation 2: 'id' is readOnly"),
    ];
    for (o, t, detail) in cases {
        assert_eq!(
            refused(U, &u, ops(o.clone())),
            (400, Some(t), detail.to_string()),
            "{o}"
        );
    }
    let g = group();
    let cases: Vec<(Value, ScimType, &str)> = vec![
        (json!([{"op": "replace", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"].value", "value": "x"}]),
            ScimType::Mutability, "operation 1: 'members.value' is immutable"),
        (json!([{"op": "add", "path": "members", "value": [{"display": "no value"}]}]), ScimType::InvalidValue,
            "operation 1: 'members' needs 'value'"),
        (json!([{"op": "replace", "path": "displayName", "value": null}]), ScimType::InvalidValue, "operation 1: 'displayName' needs a 'value'"),
        (json!([{"op": "remove", "path": "displayName"}]), ScimType::InvalidValue, "a Group needs 'displayName'"),
        (json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "x"}]),
            ScimType::InvalidPath, "operation 1: a Group has no schema urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
    ];
    for (o, t, detail) in cases {
        assert_eq!(
            refused(G, &g, ops(o.clone())),
            (400, Some(t), detail.to_string()),
            "{o}"
        );
    }
    // The message itself.
    assert_eq!(
        refused(U, &u, json!([])),
        (
            400,
            Some(ScimType::InvalidSyntax),
            "the PATCH body is not a JSON object".into()
        )
    );
    assert_eq!(
        refused(
            U,
            &u,
            json!({"Operations": [{"op": "remove", "path": "title"}]})
        ),
        (
            400,
            Some(ScimType::InvalidSyntax),
            format!("'schemas' of a PATCH body lists {PATCH_OP}")
        )
    );
}

#[test]
fn a_failing_operation_applies_nothing() {
    // The function is pure: the caller keeps the stored resource, and the error says which
    // operation failed even when earlier ones were fine.
    let u = user();
    let before = u.clone();
    let e = apply(
        U,
        &u,
        &ops(json!([
            {"op": "replace", "path": "active", "value": false},
            {"op": "replace", "path": "externalId", "value": 5}
        ])),
    )
    .unwrap_err();
    assert_eq!(
        e.detail,
        "operation 2: 'externalId' is a string; got a number"
    );
    assert_eq!(u, before);
}

proptest::proptest! {
    /// Any operation built from the pieces the dialects use either applies, giving a resource that
    /// validates again, or is refused with a 400 and a scimType; never a panic.
    #[test]
    fn any_operation_applies_or_is_refused_with_a_scim_type(
        op in proptest::sample::select(vec!["add", "Replace", "remove", "move"]),
        path in proptest::option::of(proptest::sample::select(vec![
            "members", "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]", "members[value eq \"x\"].display",
            "displayName", "emails", "emails[type eq \"work\"].value", "emails[type eq \"home\"]", "name.givenName",
            "active", "id", "meta", "groups", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "manager.value", "x[", "",
            "roles[primary eq \"True\"].value", "name", "externalId", "schemas",
        ])),
        value in proptest::option::of(proptest::sample::select(vec![
            json!("False"), json!(true), json!("s"), json!(5), json!(null), json!([]), json!({}),
            json!([{"value": "v"}]), json!({"value": "v"}), json!({"active": false, "name.givenName": "g"}),
            json!([{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]), json!({"displayName": "d", "id": "i"}),
            json!([{"value": "a", "primary": true}, {"value": "b", "primary": true}]),
        ])),
        group_kind in proptest::bool::ANY,
    ) {
        let (kind, r) = if group_kind { (G, group()) } else { (U, user()) };
        let mut o = serde_json::Map::new();
        o.insert("op".into(), json!(op));
        if let Some(p) = path { o.insert("path".into(), json!(p)); }
        if let Some(v) = value { o.insert("value".into(), v); }
        match apply(kind, &r, &ops(json!([o]))) {
            Ok(out) => {
                proptest::prop_assert!(super::schema::validate(kind, &out).is_ok(), "{}", out);
                proptest::prop_assert_eq!(&out["id"], &r["id"]);
            }
            Err(e) => {
                proptest::prop_assert_eq!(e.status, 400);
                proptest::prop_assert!(e.scim_type.is_some());
            }
        }
    }
}

#[test]
fn removing_members_by_a_value_list_removes_exactly_the_members_each_value_covers() {
    // Every given value must cover the member: a `display` differing keeps it; duplicates and
    // unknown ids remove nothing more.
    let out = ok(
        G,
        &group(),
        ops(json!([{"op": "Remove", "path": "members", "value": [
            {"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "someone.else@okta.local"},
            {"value": "2819c223-7f76-453a-919d-413861904646"},
            {"value": "2819c223-7f76-453a-919d-413861904646"},
            {"value": "no-such-member"}
        ]}])),
    );
    assert_eq!(
        out["members"],
        json!([{"value": "89bb1940-b905-4575-9e7f-6f887cfb368e", "display": "other.user@okta.local"}])
    );
}
