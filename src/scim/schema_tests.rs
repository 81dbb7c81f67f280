//! Validation of POST/PUT bodies (the bodies Okta and Entra ID send, and every refusal), the
//! discovery documents, errors and list responses.

use super::schema::{
    resource_type, resource_types, schema, schemas, service_provider_config, validate, MAX_RESULTS,
};
use super::{
    list_response, ResourceKind, ScimError, ScimType, ENTERPRISE_USER_SCHEMA, ERROR_SCHEMA,
    GROUP_SCHEMA, LIST_RESPONSE, USER_SCHEMA,
};
use serde_json::{json, Value};

const U: ResourceKind = ResourceKind::User;
const G: ResourceKind = ResourceKind::Group;
const BASE: &str = "https://rolegate.example/scim/v2";

fn refused(kind: ResourceKind, body: Value) -> (u16, Option<ScimType>, String) {
    let e = validate(kind, &body).expect_err(&body.to_string());
    (e.status, e.scim_type, e.detail)
}

#[test]
fn okta_creates_a_user() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let out = validate(U, &body).unwrap();
    // groups (readOnly) and password (writeOnly) are not stored.
    assert_eq!(
        out,
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "active": true
        })
    );
}

#[test]
fn entra_creates_a_user_and_a_group() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": "True",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Sales",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "Boss"}
        }
    });
    let out = validate(U, &body).unwrap();
    assert_eq!(out["active"], json!(true));
    assert!(
        out.get("meta").is_none() && out.get("roles").is_none(),
        "{out}"
    );
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({
            "department": "Sales",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        })
    );
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));

    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"}
    });
    assert_eq!(
        validate(G, &body).unwrap(),
        json!({
            "schemas": [GROUP_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName"
        })
    );
    // Okta's group with no members yet.
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": []});
    assert_eq!(
        validate(G, &body).unwrap(),
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2"})
    );
}

#[test]
fn names_are_restored_to_their_canonical_casing() {
    let body = json!({
        "SCHEMAS": [USER_SCHEMA.to_uppercase()],
        "USERNAME": "a",
        "Name": {"GIVENNAME": "A"},
        "emails": [{"VALUE": "a@x", "Primary": "true"}],
        "id": "client-chosen",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EMPLOYEENUMBER": "7", "schemas": [ENTERPRISE_USER_SCHEMA]}
    });
    assert_eq!(
        validate(U, &body).unwrap(),
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "a",
            "name": {"givenName": "A"},
            "emails": [{"value": "a@x", "primary": true}],
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "7"}
        })
    );
}

#[test]
fn every_attribute_of_the_published_schema_is_stored_as_given() {
    // What a conformance checker fills in from /Schemas must come back unchanged.
    let body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "userName": "u", "externalId": "e",
        "name": {"formatted": "f", "familyName": "l", "givenName": "g", "middleName": "m", "honorificPrefix": "p", "honorificSuffix": "s"},
        "displayName": "d", "nickName": "n", "profileUrl": "https://x.test", "title": "t", "userType": "ut",
        "preferredLanguage": "en", "locale": "en-US", "timezone": "Europe/Paris", "active": false,
        "emails": [{"value": "a@b.com", "display": "d", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "123", "display": "d", "type": "mobile", "primary": true}],
        "ims": [{"value": "i", "display": "d", "type": "xmpp", "primary": true}],
        "photos": [{"value": "https://p.test", "display": "d", "type": "photo", "primary": true}],
        "addresses": [{"formatted": "f", "streetAddress": "s", "locality": "l", "region": "r", "postalCode": "p", "country": "c", "type": "home", "primary": true}],
        "entitlements": [{"value": "v", "display": "d", "type": "t", "primary": true}],
        "roles": [{"value": "v", "display": "d", "type": "t", "primary": true}],
        "x509Certificates": [{"value": "AAEC", "display": "d", "type": "t", "primary": true}],
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "1", "costCenter": "c", "organization": "o", "division": "d", "department": "dp",
            "manager": {"value": "m", "$ref": "https://rolegate.example/scim/v2/Users/m"}}
    });
    assert_eq!(validate(U, &body).unwrap(), body);
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "externalId": "e",
        "members": [{"value": "m", "$ref": "https://rolegate.example/scim/v2/Users/m", "type": "User", "display": "M"}]});
    assert_eq!(validate(G, &body).unwrap(), body);
}

#[test]
fn bad_bodies_are_refused_with_the_attribute_named() {
    let s = json!([USER_SCHEMA]);
    for (body, t, detail) in [
        (
            json!([]),
            ScimType::InvalidSyntax,
            "the body of a User is not a JSON object".to_string(),
        ),
        (
            json!({"userName": "a"}),
            ScimType::InvalidSyntax,
            format!("'schemas' is missing; a User lists {USER_SCHEMA}"),
        ),
        (
            json!({"schemas": USER_SCHEMA, "userName": "a"}),
            ScimType::InvalidSyntax,
            "'schemas' is not an array of schema URNs".into(),
        ),
        (
            json!({"schemas": [GROUP_SCHEMA], "userName": "a"}),
            ScimType::InvalidSyntax,
            format!("a User has no schema {GROUP_SCHEMA}"),
        ),
        (
            json!({"schemas": [ENTERPRISE_USER_SCHEMA], "userName": "a"}),
            ScimType::InvalidSyntax,
            format!("'schemas' does not list {USER_SCHEMA}"),
        ),
        (
            json!({"schemas": s, "userName": "a", "shoeSize": 42}),
            ScimType::InvalidSyntax,
            "a User has no attribute 'shoeSize'".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "name": {"shoe": "x"}}),
            ScimType::InvalidSyntax,
            "'name' has no sub-attribute 'shoe'".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "userName ": "b"}),
            ScimType::InvalidSyntax,
            "a User has no attribute 'userName '".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "USERNAME": "c"}),
            ScimType::InvalidSyntax,
            "'userName' is given more than once".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", ENTERPRISE_USER_SCHEMA: {"shoe": 1}}),
            ScimType::InvalidSyntax,
            format!("the schema {ENTERPRISE_USER_SCHEMA} has no attribute 'shoe'"),
        ),
        (
            json!({"schemas": s}),
            ScimType::InvalidValue,
            "a User needs 'userName'".into(),
        ),
        (
            json!({"schemas": s, "userName": null}),
            ScimType::InvalidValue,
            "a User needs 'userName'".into(),
        ),
        (
            json!({"schemas": s, "userName": 5}),
            ScimType::InvalidValue,
            "'userName' is a string; got a number".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "active": "yes"}),
            ScimType::InvalidValue,
            "'active' is a boolean; got a string".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "active": 1}),
            ScimType::InvalidValue,
            "'active' is a boolean; got a number".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "emails": {"value": "a@b"}}),
            ScimType::InvalidValue,
            "'emails' is multi-valued; expected an array".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "emails": [[]]}),
            ScimType::InvalidValue,
            "'emails' holds an array in an array".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": "True"}]}),
            ScimType::InvalidValue,
            "'emails' has more than one primary value".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "name": "x"}),
            ScimType::InvalidValue,
            "'name' is complex; expected a JSON object".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "x509Certificates": [{"value": "not base64!"}]}),
            ScimType::InvalidValue,
            "'x509Certificates.value' is binary; expected base64".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", "password": 5}),
            ScimType::InvalidValue,
            "'password' is a string; got a number".into(),
        ),
        (
            json!({"schemas": s, "userName": "a", ENTERPRISE_USER_SCHEMA: "x"}),
            ScimType::InvalidValue,
            format!("'{ENTERPRISE_USER_SCHEMA}' is an extension; expected a JSON object"),
        ),
    ] {
        assert_eq!(refused(U, body.clone()), (400, Some(t), detail), "{body}");
    }
    for (body, t, detail) in [
        (
            json!({"schemas": [GROUP_SCHEMA]}),
            ScimType::InvalidValue,
            "a Group needs 'displayName'",
        ),
        (
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"display": "x"}]}),
            ScimType::InvalidValue,
            "'members' needs 'value'",
        ),
        (
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"value": 1}]}),
            ScimType::InvalidValue,
            "'members.value' is a string; got a number",
        ),
        (
            json!({"schemas": [GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA], "displayName": "g"}),
            ScimType::InvalidSyntax,
            "a Group has no schema urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ),
        (
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "userName": "u"}),
            ScimType::InvalidSyntax,
            "a Group has no attribute 'userName'",
        ),
    ] {
        assert_eq!(
            refused(G, body.clone()),
            (400, Some(t), detail.to_string()),
            "{body}"
        );
    }
}

#[test]
fn errors_render_in_the_error_schema() {
    let e = ScimError::bad_request(ScimType::InvalidFilter, "at character 3");
    assert_eq!(
        e.body(),
        json!({"schemas": [ERROR_SCHEMA], "status": "400", "scimType": "invalidFilter", "detail": "at character 3"})
    );
    assert_eq!(
        ScimError::not_found("no such user").body(),
        json!({"schemas": [ERROR_SCHEMA], "status": "404", "detail": "no such user"})
    );
    let c = ScimError::conflict("userName taken");
    assert_eq!((c.status, c.scim_type), (409, Some(ScimType::Uniqueness)));
    for (e, status) in [
        (ScimError::precondition_failed(""), 412),
        (ScimError::unauthorized(""), 401),
        (ScimError::forbidden(""), 403),
        (ScimError::too_large(""), 413),
        (ScimError::too_many_requests(""), 429),
        (ScimError::internal(""), 500),
    ] {
        assert_eq!((e.status, e.scim_type), (status, None));
    }
    assert_eq!(e.to_string(), "400 invalidFilter: at character 3");
}

#[test]
fn list_responses_count_what_they_hold() {
    let l = list_response(vec![json!({"id": "a"}), json!({"id": "b"})], 7, 3);
    assert_eq!(
        l,
        json!({"schemas": [LIST_RESPONSE], "totalResults": 7, "startIndex": 3, "itemsPerPage": 2,
        "Resources": [{"id": "a"}, {"id": "b"}]})
    );
}

#[test]
fn the_service_provider_config_says_what_is_supported() {
    let c = service_provider_config(BASE);
    assert_eq!(c["patch"]["supported"], true);
    assert_eq!(
        c["filter"],
        json!({"supported": true, "maxResults": MAX_RESULTS})
    );
    assert_eq!(c["etag"]["supported"], true);
    for off in ["bulk", "sort", "changePassword"] {
        assert_eq!(c[off]["supported"], false, "{off}");
    }
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        c["meta"]["location"],
        format!("{BASE}/ServiceProviderConfig")
    );
}

fn attr<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {}", schema["id"]))
}

#[test]
fn the_schemas_publish_full_attribute_definitions() {
    let all = schemas(BASE);
    assert_eq!(all["schemas"], json!([LIST_RESPONSE]));
    let names: Vec<&str> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "User",
            "EnterpriseUser",
            "Group",
            "Schema",
            "ResourceType",
            "ServiceProviderConfig"
        ]
    );
    assert_eq!(all["totalResults"], 6);
    let user = schema(BASE, USER_SCHEMA).unwrap();
    assert_eq!(
        user["meta"],
        json!({"resourceType": "Schema", "location": format!("{BASE}/Schemas/{USER_SCHEMA}")})
    );
    assert_eq!(
        attr(&user, "userName"),
        &json!({
            "name": "userName", "type": "string", "multiValued": false,
            "description": "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.",
            "required": true, "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "server"
        })
    );
    assert_eq!(attr(&user, "password")["returned"], "never");
    assert_eq!(attr(&user, "password")["mutability"], "writeOnly");
    assert_eq!(attr(&user, "groups")["mutability"], "readOnly");
    let emails = attr(&user, "emails");
    assert_eq!(emails["multiValued"], true);
    assert_eq!(
        emails["subAttributes"][2]["canonicalValues"],
        json!(["work", "home", "other"])
    );
    assert_eq!(
        attr(&user, "profileUrl")["referenceTypes"],
        json!(["external"])
    );
    // The common attributes are not part of a schema (RFC 7643 §3.1).
    assert!(user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["name"] != "id"));
    let ent = schema(BASE, ENTERPRISE_USER_SCHEMA).unwrap();
    let manager = attr(&ent, "manager");
    assert_eq!(
        manager["subAttributes"][1]["referenceTypes"],
        json!(["User"])
    );
    assert_eq!(manager["subAttributes"][2]["mutability"], "readOnly");
    let group = schema(BASE, &GROUP_SCHEMA.to_lowercase()).unwrap();
    assert_eq!(attr(&group, "displayName")["required"], true);
    let members = attr(&group, "members");
    assert_eq!(members["subAttributes"][0]["caseExact"], true);
    assert_eq!(members["subAttributes"][0]["mutability"], "immutable");
    let meta = schema(BASE, "urn:ietf:params:scim:schemas:core:2.0:Schema").unwrap();
    let defs = attr(&meta, "attributes");
    assert_eq!(defs["subAttributes"].as_array().unwrap().len(), 12);
    assert_eq!(defs["subAttributes"][11]["name"], "subAttributes");
    assert_eq!(
        defs["subAttributes"][11]["subAttributes"]
            .as_array()
            .unwrap()
            .len(),
        11
    );
    assert!(schema(BASE, "urn:example:nothing").is_none());
    // Every attribute definition carries the characteristics of RFC 7643 §7.
    for s in all["Resources"].as_array().unwrap() {
        let mut stack: Vec<&Value> = s["attributes"].as_array().unwrap().iter().collect();
        while let Some(a) = stack.pop() {
            for k in [
                "name",
                "type",
                "multiValued",
                "description",
                "required",
                "caseExact",
                "mutability",
                "returned",
                "uniqueness",
            ] {
                assert!(a.get(k).is_some(), "{} {}: no {k}", s["id"], a["name"]);
            }
            if a["type"] == "complex" {
                stack.extend(a["subAttributes"].as_array().unwrap());
            }
            if a["type"] == "reference" {
                assert!(a["referenceTypes"].is_array(), "{}", a["name"]);
            }
        }
    }
}

#[test]
fn the_resource_types_name_their_schemas() {
    let all = resource_types(BASE);
    assert_eq!(all["totalResults"], 2);
    let user = resource_type(BASE, "user").unwrap();
    assert_eq!(
        user,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "description": "User Account",
            "endpoint": "/Users", "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{BASE}/ResourceTypes/User")}
        })
    );
    let group = resource_type(BASE, "Group").unwrap();
    assert_eq!(group["endpoint"], "/Groups");
    assert!(group.get("schemaExtensions").is_none());
    assert!(resource_type(BASE, "Device").is_none());
    // Each schema a resource type names is published.
    for rt in all["Resources"].as_array().unwrap() {
        assert!(schema(BASE, rt["schema"].as_str().unwrap()).is_some());
        for e in rt["schemaExtensions"].as_array().into_iter().flatten() {
            assert!(schema(BASE, e["schema"].as_str().unwrap()).is_some());
        }
    }
}
