//! Lists through `/scim/v2`: `POST /.search`, filters on attributes the resource type does not
//! have, `count` above the published maximum, and the methods discovery does not allow.

use super::*;

#[tokio::test]
async fn search_lists_like_get_and_refuses_a_bad_search_request() {
    let app = app().await;
    let id = create_user(&app, OKTA, "ana@corp.example").await;
    create_user(&app, OKTA, "bo@corp.example").await;
    let a = call(
        &app,
        Method::POST,
        "/scim/v2/Users/.search",
        OKTA,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName sw \"ana\"",
            "attributes": ["userName"],
            "count": 5
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["totalResults"], 1);
    assert_eq!(a.body["Resources"][0]["id"], id.as_str());
    assert!(a.body["Resources"][0].get("emails").is_none(), "{}", a.body);
    let before = state(&app).await;
    let a = call(
        &app,
        Method::POST,
        "/scim/v2/Users/.search",
        OKTA,
        Some(json!({"filter": 7})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.scim_type(), "invalidValue");
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn a_filter_on_an_unknown_attribute_is_invalid_and_count_is_capped() {
    let app = app().await;
    for i in 0..3 {
        create_user(&app, OKTA, &format!("u{i}@corp.example")).await;
    }
    let a = call(
        &app,
        Method::GET,
        &format!("{USERS}?filter=shoeSize%20eq%2044"),
        OKTA,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.scim_type(), "invalidFilter");
    let (decision, reason, _) = last(&app, &a, "scim:ListUsers").await;
    assert_eq!(decision, "deny");
    assert!(reason.to_lowercase().contains("shoesize"), "{reason}");
    let a = call(
        &app,
        Method::GET,
        &format!("{USERS}?count=100000"),
        OKTA,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["itemsPerPage"], 3);
    let a = call(&app, Method::GET, &format!("{USERS}?count=x"), OKTA, None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn discovery_documents_allow_get_only() {
    let app = app().await;
    for (method, path) in [
        (Method::POST, "/scim/v2/ServiceProviderConfig"),
        (Method::PUT, "/scim/v2/Schemas"),
        (Method::PATCH, "/scim/v2/ResourceTypes/User"),
        (
            Method::DELETE,
            "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        ),
    ] {
        let a = call(&app, method.clone(), path, OKTA, Some(json!({}))).await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(a.body["status"], "405");
    }
    let a = call(
        &app,
        Method::GET,
        "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        OKTA,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(&app, Method::GET, "/scim/v2/Schemas/urn:nope", OKTA, None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_search_at_the_root_is_not_implemented_and_says_where_to_search() {
    let app = app().await;
    create_user(&app, OKTA, "ana@corp.example").await;
    let before = state(&app).await;
    let a = call(
        &app,
        Method::POST,
        "/scim/v2/.search",
        OKTA,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": ["userName"]
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{}", a.body);
    assert_eq!(a.body["status"], "501");
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("/Users/.search"),
        "{}",
        a.body
    );
    let (decision, reason, _) = last(&app, &a, "scim:Unknown").await;
    assert_eq!(decision, "deny");
    assert!(reason.contains("several resource types"), "{reason}");
    assert_eq!(state(&app).await, before);
}
