//! Filters: parsing (precedence, grouping, value paths, literals, URN paths), precise errors,
//! bounds against hostile input, and evaluation with the forms Okta and Entra ID send.

use super::filter::{Expr, Filter, Literal, Op, MAX_DEPTH, MAX_LEN};
use super::{ResourceKind, ScimType};
use serde_json::{json, Value};

fn user() -> Value {
    json!({
        "schemas": [super::USER_SCHEMA, super::ENTERPRISE_USER_SCHEMA],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "userName": "Bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "roles": [{"value": "Admin", "primary": true}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3\""
        },
        super::ENTERPRISE_USER_SCHEMA: {"employeeNumber": "1", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    })
}

fn group() -> Value {
    json!({
        "schemas": [super::GROUP_SCHEMA],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "User"}
        ],
        "meta": {"resourceType": "Group", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

fn m(kind: ResourceKind, f: &str, r: &Value) -> bool {
    let f = Filter::parse_for(kind, f).unwrap_or_else(|e| panic!("{f}: {e}"));
    f.matches(kind, r)
}

fn user_matches(f: &str) -> bool {
    m(ResourceKind::User, f, &user())
}

fn parse_err(f: &str) -> String {
    let e = Filter::parse(f).expect_err(f);
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(ScimType::InvalidFilter)),
        "{f}: {e}"
    );
    e.detail
}

#[test]
fn the_filters_okta_and_entra_send_match() {
    // Each filter and whether it matches the user, then the group.
    let users = [
        (r#"userName eq "bjensen@example.com""#, true),
        (r#"userName eq "someone@example.com""#, false),
        (r#"externalId eq "00ujl29u0le5T6Aj10h7""#, true),
        (r#"displayName eq "Babs Jensen""#, true),
        (r#"id eq "2819c223-7f76-453a-919d-413861904646""#, true),
        (r#"emails[type eq "work"]"#, true),
        (r#"emails[type eq "other"]"#, false),
        (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
    ];
    let groups = [
        (r#"displayName eq "Tour Guides""#, true),
        (
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            true,
        ),
        (
            r#"members[value eq "00000000-0000-0000-0000-000000000000"]"#,
            false,
        ),
        (
            r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members[value eq "902c246b-6245-4190-8e05-00816be7344a"]"#,
            true,
        ),
    ];
    let (u, g) = (user(), group());
    for (kind, r, cases) in [
        (ResourceKind::User, &u, &users[..]),
        (ResourceKind::Group, &g, &groups[..]),
    ] {
        for &(f, want) in cases {
            assert_eq!(m(kind, f, r), want, "{f}");
        }
    }
}

#[test]
fn the_examples_of_rfc_7644_parse_and_check() {
    for f in [
        r#"userName Eq "john""#,
        r#"Username eq "john""#,
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"title pr"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ] {
        Filter::parse_for(ResourceKind::User, f).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    assert!(user_matches(
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#
    ));
    assert!(!m(
        ResourceKind::Group,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        &group()
    ));
}

#[test]
fn string_comparison_follows_case_exactness() {
    // userName, displayName, emails.value: caseExact false.
    assert!(user_matches(r#"USERNAME Eq "BJENSEN@EXAMPLE.COM""#));
    assert!(user_matches(r#"emails.value co "JENSEN.ORG""#));
    // id, externalId, members.value: caseExact true.
    assert!(!user_matches(r#"externalId eq "00UJL29U0LE5T6AJ10H7""#));
    assert!(!user_matches(
        r#"id eq "2819C223-7F76-453A-919D-413861904646""#
    ));
    assert!(!m(
        ResourceKind::Group,
        r#"members[value eq "2819C223-7F76-453A-919D-413861904646"]"#,
        &group()
    ));
}

#[test]
fn operators_evaluate_per_rfc_7644() {
    for (f, want) in [
        (r#"userName sw "bjen""#, true),
        (r#"userName ew "example.com""#, true),
        (r#"userName co "jensen@""#, true),
        (r#"userName ne "bjensen@example.com""#, false),
        (r#"nickName ne "x""#, true), // absent is ne anything
        (r#"title pr"#, false),
        (r#"name pr"#, true),
        (r#"name.givenName pr"#, true),
        (r#"emails pr"#, true),
        (r#"userName gt "a""#, true),
        (r#"userName lt "a""#, false),
        (r#"meta.created lt "2010-01-23T05:56:22+01:00""#, false),
        (r#"meta.created le "2010-01-23T05:56:22+01:00""#, true),
        (r#"meta.created ge "2010-01-23T04:56:22.000Z""#, true),
        (r#"meta.created eq "2010-01-23T04:56:22Z""#, true),
        (r#"active eq true"#, true),
        (r#"active eq false"#, false),
        (r#"active ne false"#, true),
        (r#"active eq "True""#, true),
        (r#"title eq null"#, true),
        (r#"userName eq null"#, false),
        (r#"emails co "jensen.org""#, true), // a complex attribute compares its value
        (r#"emails.type eq "home""#, true),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            true,
        ),
        (
            r#"emails[type eq "home" and value co "@example.com"]"#,
            false,
        ),
        (r#"roles[primary eq "True"]"#, true),
        // Entra ID's form with a sub-attribute after the brackets.
        (
            r#"emails[type eq "work"].value eq "bjensen@example.com""#,
            true,
        ),
        (
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            false,
        ),
        (
            r#"emails[type eq "work" or type eq "home"].value ew "jensen.org""#,
            true,
        ),
        (r#"emails[type eq "work"].display pr"#, false),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
            true,
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
            true,
        ),
        (r#"employeeNumber eq "1""#, true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#,
            true,
        ),
        (
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME sw "B""#,
            true,
        ),
    ] {
        assert_eq!(user_matches(f), want, "{f}");
    }
}

#[test]
fn precedence_is_not_then_and_then_or() {
    // a or b and c  ==  a or (b and c)
    let f = Filter::parse(r#"title pr or userName pr and nickName pr"#).unwrap();
    let Expr::Or(terms) = &f.expr else {
        panic!("{f:?}")
    };
    assert!(matches!(terms[0], Expr::Present(_)));
    assert!(matches!(&terms[1], Expr::And(v) if v.len() == 2));
    // false or (true and false) → false; (false or true) and false → false; false or true → true
    assert!(!user_matches(r#"title pr or userName pr and nickName pr"#));
    assert!(user_matches(
        r#"title pr or userName pr and not (nickName pr)"#
    ));
    assert!(!user_matches(
        r#"(title pr or userName pr) and nickName pr"#
    ));
    assert!(user_matches(r#"not (title pr) and not(nickName pr)"#));
    assert!(user_matches(
        r#"userName pr and active eq true or title pr"#
    ));
    // Chains are flat lists, not deep trees.
    let f = Filter::parse(r#"title pr or nickName pr or userName pr or locale pr"#).unwrap();
    assert!(matches!(&f.expr, Expr::Or(v) if v.len() == 4));
    assert!(user_matches(
        r#"title pr or nickName pr or userName pr or locale pr"#
    ));
}

#[test]
fn literals_follow_json() {
    let f = Filter::parse(r#"displayName eq "a \"quoted\" \\ name \u00e9\n""#).unwrap();
    assert_eq!(
        f.equality(),
        Some(("displayname".into(), "a \"quoted\" \\ name é\n".into()))
    );
    let f = Filter::parse("x eq -1.5e3").unwrap();
    assert!(
        matches!(&f.expr, Expr::Compare(_, Op::Eq, Literal::Num(n)) if n.as_f64() == Some(-1500.0))
    );
    let f = Filter::parse("x eq TRUE").unwrap();
    assert!(matches!(
        &f.expr,
        Expr::Compare(_, Op::Eq, Literal::Bool(true))
    ));
    let f = Filter::parse("x eq null").unwrap();
    assert!(matches!(&f.expr, Expr::Compare(_, Op::Eq, Literal::Null)));
    let f = Filter::parse(r#"displayName eq "日本語 \ud83d\ude00""#).unwrap();
    assert_eq!(f.equality().map(|e| e.1), Some("日本語 😀".into()));
}

#[test]
fn equality_lets_the_caller_use_an_index() {
    // Each filter and the attribute and value an index would be asked for, if any.
    for (filter, want) in [
        (r#"userName eq "Alice""#, Some(("username", "Alice"))),
        (r#"externalId eq "x""#, Some(("externalid", "x"))),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
            Some(("username", "a")),
        ),
        (r#"name.givenName eq "a""#, Some(("name.givenname", "a"))),
        (r#"members[value eq "a"]"#, Some(("members.value", "a"))),
        (r#"(userName eq "a")"#, Some(("username", "a"))),
        (r#"userName eq "a" and active eq true"#, None),
        (r#"userName ne "a""#, None),
        (r#"userName eq 1"#, None),
        (r#"members[value eq "a" or value eq "b"]"#, None),
    ] {
        let want = want.map(|(attribute, value)| (attribute.to_string(), value.to_string()));
        assert_eq!(Filter::parse(filter).unwrap().equality(), want, "{filter}");
    }
}

#[test]
fn malformed_filters_say_where_and_what_was_expected() {
    for (f, detail) in [
        ("", "invalid filter at character 1: the filter is empty; expected an attribute path"),
        ("   ", "invalid filter at character 4: the filter is empty; expected an attribute path"),
        ("userName", "invalid filter at character 9: expected an operator (eq ne co sw ew gt ge lt le pr), found the end"),
        ("userName eq", "invalid filter at character 12: expected a value (a JSON string in double quotes, a number, true, false or null), found the end"),
        ("userName eq bjensen", "invalid filter at character 13: expected a value (a JSON string in double quotes, a number, true, false or null), found 'bjensen'"),
        ("userName xx \"a\"", "invalid filter at character 10: expected an operator (eq ne co sw ew gt ge lt le pr), found 'xx'"),
        ("userName eq \"a", "invalid filter at character 13: unterminated string"),
        ("userName eq \"a\\q\"", "invalid filter at character 13: invalid string (invalid escape at line 1 column 4)"),
        ("userName eq \"a\" and", "invalid filter at character 20: expected an attribute path, '(' or 'not', found the end"),
        ("userName eq \"a\" userName eq \"b\"", "invalid filter at character 17: expected 'and', 'or' or the end, found 'userName'"),
        ("(userName pr", "invalid filter at character 13: expected ')' to close '(', found the end"),
        ("userName pr)", "invalid filter at character 12: expected 'and', 'or' or the end, found ')'"),
        ("not userName pr", "invalid filter at character 5: expected '(' after 'not', found 'userName'"),
        ("emails[type eq \"work\"", "invalid filter at character 22: expected ']' to close the value filter, found the end"),
        ("emails[type eq \"work\"].value", "invalid filter at character 29: expected an operator (eq ne co sw ew gt ge lt le pr), found the end"),
        ("emails[type eq \"work\"].value.x eq \"a\"", "invalid filter at character 24: expected one sub-attribute name, found 'value.x'"),
        ("emails[type eq \"work\"] .value eq \"a\"", "invalid filter at character 24: expected 'and', 'or' or the end, found '.value'"),
        ("emails[members[value pr]]", "invalid filter at character 15: value filters do not nest"),
        ("emails[emails.type pr]", "invalid filter at character 8: inside a value filter, name a sub-attribute of the bracketed attribute"),
        ("name.givenName.x pr", "invalid filter at character 1: 'name.givenName.x' goes deeper than an attribute and its sub-attribute"),
        ("1userName pr", "invalid filter at character 1: '1userName' is not an attribute name"),
        ("urn:example:foo:bar pr", "invalid filter at character 1: 'urn:example:foo:bar' names an unknown schema"),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr", "invalid filter at character 1: the path names a schema, not an attribute"),
        ("userName eq 1.2.3", "invalid filter at character 13: '1.2.3' is not a JSON number"),
        ("userName eq \"a\" & x", "invalid filter at character 17: unexpected character '&'"),
        ("é eq \"a\"", "invalid filter at character 1: unexpected character 'é'"),
        ("userName eq \"é\" ! x", "invalid filter at character 17: unexpected character '!'"),
    ] {
        assert_eq!(parse_err(f), detail, "{f}");
    }
}

#[test]
fn filters_on_what_is_not_there_or_cannot_be_compared_are_refused() {
    let check = |kind, f: &str| {
        let e = Filter::parse_for(kind, f).expect_err(f);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidFilter)),
            "{f}"
        );
        e.detail
    };
    let u = ResourceKind::User;
    assert_eq!(
        check(u, "shoeSize eq 5"),
        "a User has no attribute 'shoeSize'"
    );
    assert_eq!(
        check(u, "name.shoe pr"),
        "'name' has no sub-attribute 'shoe'"
    );
    assert_eq!(
        check(u, "emails[shoe eq \"x\"]"),
        "'emails' has no sub-attribute 'shoe'"
    );
    assert_eq!(
        check(u, "userName[value eq \"x\"]"),
        "'userName' has no sub-attributes to filter on in brackets"
    );
    assert_eq!(
        check(u, "password eq \"secret\""),
        "'password' cannot be filtered on"
    );
    assert_eq!(
        check(u, "active gt true"),
        "'active' is a boolean; 'gt' does not apply to it"
    );
    assert_eq!(
        check(u, "name eq \"x\""),
        "'name' is a complex; 'eq' does not apply to it"
    );
    assert_eq!(check(u, "meta.lastModified gt \"yesterday\""), "'meta.lastmodified' is a dateTime; \"yesterday\" is not one (xsd:dateTime, e.g. 2011-05-13T04:42:34Z)");
    assert_eq!(
        check(ResourceKind::Group, "userName eq \"x\""),
        "a Group has no attribute 'userName'"
    );
    assert_eq!(
        check(
            ResourceKind::Group,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr"
        ),
        "a Group has no schema urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    // Without the check, such a filter matches nothing.
    assert!(!Filter::parse("shoeSize eq 5").unwrap().matches(u, &user()));
}

#[test]
fn a_hostile_filter_cannot_exhaust_the_stack() {
    // 10,000 opening parentheses: refused by length before any parsing.
    let deep = format!("{}userName pr{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = Filter::parse(&deep).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    assert_eq!(
        e.detail,
        format!("the filter is 20011 bytes long; at most {MAX_LEN} are accepted")
    );
    // 2,000 within the length bound: refused by depth, at the parenthesis that goes too deep.
    let deep = format!("{}userName pr{}", "(".repeat(2000), ")".repeat(2000));
    let e = Filter::parse(&deep).unwrap_err();
    assert_eq!(e.detail, format!("invalid filter at character {}: nested deeper than {MAX_DEPTH} levels of parentheses, 'not' and brackets", MAX_DEPTH + 1));
    let nots = format!("{}userName pr{}", "not (".repeat(600), ")".repeat(600));
    assert!(Filter::parse(&nots)
        .unwrap_err()
        .detail
        .contains("nested deeper than"));
    // As deep as allowed parses and evaluates.
    let ok = format!(
        "{}userName pr{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(user_matches(&ok));
    // A long flat chain is fine: it is a list, not a tree.
    let chain = vec!["title pr"; 300].join(" or ") + " or userName pr";
    assert!(chain.len() < MAX_LEN);
    assert!(user_matches(&chain));
}

proptest::proptest! {
    /// Any text, built from the filter grammar's own pieces, is parsed or refused with
    /// invalidFilter, never a panic; what parses evaluates without one.
    #[test]
    fn any_text_is_parsed_or_refused_without_a_panic(
        parts in proptest::collection::vec(proptest::sample::select(vec![
            "(", ")", "[", "]", " ", "not", "and", "or", "eq", "pr", "gt", "co", "\"", "\\", "\"a\"",
            "\"\\u00e9\"", "1", "-2.5e3", "true", "null", "userName", "emails", ".value", "type",
            "members", "meta.lastModified", "\"2011-05-13T04:42:34Z\"", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:", ":", "é", "$ref", ".",
        ]), 0..40)
    ) {
        let text: String = parts.concat();
        match Filter::parse(&text) {
            Ok(f) => {
                let _ = f.matches(ResourceKind::User, &user());
                let _ = f.matches(ResourceKind::Group, &group());
                let _ = f.check(ResourceKind::User);
                let _ = f.equality();
            }
            Err(e) => proptest::prop_assert_eq!(e.scim_type, Some(ScimType::InvalidFilter)),
        }
        if let Err(e) = super::filter::parse_patch_path(&text) {
            proptest::prop_assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        }
    }
}
