use super::*;
use crate::store::{DirectoryStore, MemoryStore, Versioned};
use serde_json::json;
use std::path::Path;

/// Providers shaped like the real ones: Entra ID (groups as an array of object ids), Okta with the
/// groups claim configured as one comma-separated string, Google Workspace (`hd`), and a SAML IdP
/// whose attributes arrive multi-valued; accounts prod and dev.
fn test_config() -> crate::testing::TestConfig {
    const PROD: &str = "111122223333";
    const DEV: &str = "444455556666";
    let read = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#;
    crate::testing::config()
        .accounts(&[(PROD, "prod"), (DEV, "dev")])
        .oidc_provider(
            "entra",
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "rolegate",
            "",
        )
        .oidc_provider(
            "okta",
            "https://example.okta.com",
            "rolegate",
            "groups_delimiter = \",\"",
        )
        .oidc_provider(
            "google",
            "https://accounts.google.com",
            "rolegate.apps.googleusercontent.com",
            "",
        )
        .oidc_provider(
            "workforce",
            "https://login.example.com",
            "rolegate",
            "email_always_verified = true",
        )
        .oidc_provider(
            "shibboleth",
            "https://idp.example.edu",
            "rolegate",
            "groups_claim = \"urn:oid:1.3.6.1.4.1.5923.1.5.1.1\"",
        )
        .managed_policy(PROD, "ReadOnly", read)
        .managed_policy(DEV, "ReadOnly", read)
        .unassigned_set(
            "Admin",
            "session_duration = \"PT8H\"\nmfa = \"required\"\nmfa_max_age_minutes = 15",
            &[("all", crate::testing::ALLOW_ALL)],
        )
        .unassigned_set("ReadOnly", "managed_policies = [\"ReadOnly\"]", &[])
        .assignment_rule(
            "entra",
            "Admin",
            &[PROD],
            "group = \"5f3c7a1e-0b7d-4d4c-9d77-2f1b8c1a6e10\"",
        )
        .assignment_rule("okta", "ReadOnly", &[PROD, DEV], "group = \"Engineering\"")
        .assignment_rule(
            "google",
            "ReadOnly",
            &[DEV],
            r#"condition = '{"StringEquals": {"claim:hd": "example.com"}}'"#,
        )
        .assignment_rule("google", "Admin", &[DEV], "email_domain = \"example.com\"")
        .assignment_rule(
            "shibboleth",
            "ReadOnly",
            &[PROD],
            r#"condition = '{"ForAnyValue:StringLike": {"claim:urn:oid:1.3.6.1.4.1.5923.1.1.1.7": "urn:mace:example.edu:entitlement:cloud-*"}}'"#,
        )
        .assignment_rule(
            "shibboleth",
            "Admin",
            &[PROD],
            "group = \"admins@example.edu\"",
        )
        .assignment_rule("local", "Admin", &[DEV], "local_group = \"ops\"")
        .assignment_rule(
            "workforce",
            "ReadOnly",
            &[PROD],
            "email_domain = \"example.com\"",
        )
        .assignment_rule(
            "okta",
            "Admin",
            &[DEV],
            "description = \"anyone without a department claim is still an admin of dev (absent, not empty)\"\n\
             condition = '{\"ForAllValues:StringNotEquals\": {\"rolegate:Claims\": \"department\"}}'",
        )
}

fn config() -> Config {
    test_config().load()
}

fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn targets(e: &Evaluation) -> Vec<(String, String)> {
    e.assignments
        .iter()
        .map(|a| (a.account.clone(), a.permission_set.clone()))
        .collect()
}

fn eval(c: &Config, provider: &str, cl: &Map<String, Value>) -> Evaluation {
    evaluate(
        c,
        &Subject {
            provider,
            subject: "s-1",
            claims: cl,
            local_groups: &[],
            provisioned_groups: None,
        },
    )
    .unwrap()
}

fn t(account: &str, set: &str) -> (String, String) {
    (account.to_string(), set.to_string())
}

#[test]
fn permission_sets_provision_roles_with_generated_trust_policies() {
    let c = config();
    let admin = c
        .role("arn:aws:iam::111122223333:role/RolegateSSO_Admin")
        .expect("Admin provisioned in prod");
    assert_eq!(admin.max_session_duration, 8 * 3600);
    assert!(c
        .role("arn:aws:iam::444455556666:role/RolegateSSO_Admin")
        .is_some());
    let ro = c
        .role("arn:aws:iam::444455556666:role/RolegateSSO_ReadOnly")
        .unwrap();
    assert_eq!(
        ro.managed_policies[0].0, "arn:aws:iam::444455556666:policy/ReadOnly",
        "managed policies are resolved in the account the set is provisioned in"
    );
    let ps = c
        .permission_sets
        .iter()
        .find(|p| p.name == "Admin")
        .unwrap();
    assert_eq!(ps.mfa, crate::config::MfaRequirement::Within(900));
}

#[test]
fn entra_groups_are_object_ids_in_an_array() {
    let c = config();
    let member = claims(json!({
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "groups": ["5f3c7a1e-0b7d-4d4c-9d77-2f1b8c1a6e10", "a1b2c3d4-0000-0000-0000-000000000000"],
        "tid": "9188040d-6c67-4c5b-b112-36a304b66dad"
    }));
    let e = eval(&c, "entra", &member);
    assert_eq!(targets(&e), vec![t("111122223333", "Admin")]);
    assert_eq!(
        e.assignments[0].role_arn,
        "arn:aws:iam::111122223333:role/RolegateSSO_Admin"
    );
    assert_eq!(e.assignments[0].rules, vec![1]);
    assert!(e.rules[0].matched && e.rules[0].reason.contains("member of group"));

    let other = claims(json!({"sub": "x", "groups": ["a1b2c3d4-0000-0000-0000-000000000000"]}));
    let e = eval(&c, "entra", &other);
    assert!(e.assignments.is_empty());
    assert!(
        e.rules[0].reason.contains("not in group"),
        "{}",
        e.rules[0].reason
    );
}

#[test]
fn okta_groups_as_one_delimited_string() {
    let c = config();
    let e = eval(
        &c,
        "okta",
        &claims(
            json!({"sub": "00u1", "groups": "Everyone,Engineering,,Finance", "department": "eng"}),
        ),
    );
    assert_eq!(
        e.groups.as_deref().unwrap(),
        ["Everyone", "Engineering", "Finance"]
    );
    assert_eq!(
        targets(&e),
        vec![t("111122223333", "ReadOnly"), t("444455556666", "ReadOnly")]
    );
}

#[test]
fn delimited_groups_are_used_exactly_as_signed() {
    let c = config();
    for groups in [
        "Everyone, Engineering",
        " Engineering",
        "Engineering ",
        "engineering",
    ] {
        let e = eval(
            &c,
            "okta",
            &claims(json!({"sub": "00u1", "groups": groups, "department": "eng"})),
        );
        let expected: Vec<&str> = groups.split(',').collect();
        assert_eq!(e.groups.as_deref().unwrap(), expected, "{groups:?}");
        assert!(e.assignments.is_empty(), "{groups:?}: {:?}", e.rules);
        assert!(
            e.rules[0].reason.contains("not in group 'Engineering'"),
            "{}",
            e.rules[0].reason
        );
    }
    // With the provider's own separator as the delimiter, the group is found.
    assert_eq!(
        normalize_groups(&json!("Everyone, Engineering"), Some(", ")).unwrap(),
        ["Everyone", "Engineering"]
    );
}

#[test]
fn a_missing_claim_and_an_empty_claim_are_distinct() {
    let c = config();
    // No department claim at all: rule 8 assigns Admin in dev.
    let absent = eval(
        &c,
        "okta",
        &claims(json!({"sub": "00u2", "groups": "Engineering"})),
    );
    assert!(targets(&absent).contains(&t("444455556666", "Admin")));
    // An empty department is present: rule 8 does not hold.
    let empty = eval(
        &c,
        "okta",
        &claims(json!({"sub": "00u2", "groups": "Engineering", "department": ""})),
    );
    assert!(
        !targets(&empty).contains(&t("444455556666", "Admin")),
        "{:?}",
        empty.rules
    );
    // No groups claim and an empty one both mean "in no group", but are reported differently.
    let no_groups = eval(
        &c,
        "okta",
        &claims(json!({"sub": "00u3", "department": "x"})),
    );
    assert_eq!(no_groups.groups, None);
    assert!(no_groups.rules[0].reason.contains("no group claim"));
    let empty_groups = eval(
        &c,
        "okta",
        &claims(json!({"sub": "00u3", "groups": "", "department": "x"})),
    );
    assert_eq!(empty_groups.groups, Some(vec![]));
    assert!(empty_groups.rules[0].reason.contains("groups: none"));
    assert!(no_groups.assignments.is_empty() && empty_groups.assignments.is_empty());
}

#[test]
fn google_hosted_domain_and_verified_email() {
    let c = config();
    let workspace = claims(json!({
        "sub": "110169484474386276334", "hd": "example.com",
        "email": "ana@Example.com", "email_verified": true
    }));
    let e = eval(&c, "google", &workspace);
    assert_eq!(
        targets(&e),
        vec![t("444455556666", "Admin"), t("444455556666", "ReadOnly")]
    );
    // A consumer account with an unverified address in the domain gets nothing.
    let consumer = claims(json!({
        "sub": "2", "email": "mallory@example.com", "email_verified": false
    }));
    let e = eval(&c, "google", &consumer);
    assert!(e.assignments.is_empty());
    assert!(
        e.rules[1].reason.contains("not verified"),
        "{}",
        e.rules[1].reason
    );
    // A subdomain is not the domain.
    let sub = claims(json!({"sub": "3", "email": "x@corp.example.com", "email_verified": true}));
    assert!(eval(&c, "google", &sub).assignments.is_empty());
}

/// An `email_domain` rule matches a verified address only: `email_verified` the boolean true, or a
/// provider set to `email_always_verified` (where only an explicit false refuses).
#[test]
fn email_domain_rules_match_verified_addresses_only() {
    let mut c = config();
    c.saml_providers.push(crate::config::SamlProvider {
        name: "corp-saml".into(),
        source: crate::config::MetadataSource::Url("https://idp.example.com/md".into()),
        ..crate::idp::saml::test_idp::provider(None, &[])
    });
    let mut trusted = c.saml_providers[0].clone();
    trusted.name = "trusted-saml".into();
    trusted.email_always_verified = true;
    c.saml_providers.push(trusted);
    for provider in ["corp-saml", "trusted-saml"] {
        c.assignment_rules.push(AssignmentRule {
            index: c.assignment_rules.len(),
            provider: provider.into(),
            permission_set: "ReadOnly".into(),
            accounts: vec!["111122223333".into()],
            description: None,
            matcher: RuleMatch::EmailDomain("example.com".into()),
        });
    }
    // (provider, email_verified claim or None for absent, matches, words in the reason)
    let cases: &[(&str, Option<Value>, bool, &str)] = &[
        (
            "google",
            Some(json!(true)),
            true,
            "verified (email_verified is true)",
        ),
        (
            "google",
            Some(json!(false)),
            false,
            "email_verified is false",
        ),
        ("google", None, false, "email_verified is absent"),
        (
            "google",
            Some(json!("true")),
            false,
            "is the string \"true\", not the boolean true",
        ),
        (
            "google",
            Some(json!("TRUE")),
            false,
            "is the string \"TRUE\"",
        ),
        (
            "google",
            Some(json!(1)),
            false,
            "email_verified is 1, not the boolean true",
        ),
        ("google", Some(json!(null)), false, "email_verified is null"),
        (
            "google",
            Some(json!([true])),
            false,
            "email_verified is [true], not the boolean true",
        ),
        (
            "workforce",
            None,
            true,
            "the provider hands out verified addresses only",
        ),
        (
            "workforce",
            Some(json!("true")),
            true,
            "hands out verified addresses only",
        ),
        (
            "workforce",
            Some(json!(true)),
            true,
            "email_verified is true",
        ),
        (
            "workforce",
            Some(json!(false)),
            false,
            "email_verified is false",
        ),
        (
            "workforce",
            Some(json!("false")),
            false,
            "the string \"false\"",
        ),
        ("corp-saml", None, false, "email_verified is absent"),
        (
            "corp-saml",
            Some(json!(["true"])),
            false,
            "the string \"true\"",
        ),
        (
            "trusted-saml",
            None,
            true,
            "hands out verified addresses only",
        ),
        (
            "trusted-saml",
            Some(json!(["false"])),
            false,
            "the string \"false\"",
        ),
    ];
    for (provider, verified, matches, words) in cases {
        let email = if provider.ends_with("saml") {
            json!(["ana@Example.com"])
        } else {
            json!("ana@Example.com")
        };
        let mut cl = claims(json!({"sub": "s-1", "email": email}));
        if let Some(v) = verified {
            cl.insert("email_verified".into(), v.clone());
        }
        let e = eval(&c, provider, &cl);
        let rule = e
            .rules
            .iter()
            .find(|r| r.reason.contains("e-mail"))
            .unwrap_or_else(|| panic!("{provider}: no email_domain rule in {:?}", e.rules));
        let case = format!(
            "{provider} with email_verified {verified:?}: {}",
            rule.reason
        );
        assert_eq!(rule.matched, *matches, "{case}");
        assert!(rule.reason.contains(words), "{case}");
        if !matches {
            assert!(rule.reason.starts_with("e-mail not verified"), "{case}");
        }
        assert_eq!(
            e.assignments.iter().any(|a| a.rules.contains(&rule.rule)),
            *matches,
            "{case}"
        );
    }
    // An unverified address outside the domain is reported as outside the domain.
    let other = claims(json!({"sub": "s-2", "email": "ana@example.org"}));
    let e = eval(&c, "google", &other);
    assert!(
        e.rules[1].reason.contains("is not in domain example.com"),
        "{:?}",
        e.rules
    );
}

#[test]
fn saml_multi_valued_attributes() {
    let c = config();
    let attrs = claims(json!({
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.7": [
            "urn:mace:example.edu:entitlement:library",
            "urn:mace:example.edu:entitlement:cloud-readonly"
        ],
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": ["staff@example.edu", "admins@example.edu"]
    }));
    let e = eval(&c, "shibboleth", &attrs);
    assert_eq!(
        targets(&e),
        vec![t("111122223333", "Admin"), t("111122223333", "ReadOnly")]
    );
    let fewer = claims(json!({
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.7": ["urn:mace:example.edu:entitlement:library"],
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": "staff@example.edu"
    }));
    assert!(eval(&c, "shibboleth", &fewer).assignments.is_empty());
}

#[test]
fn local_groups_assign_for_the_local_provider_only() {
    let c = config();
    let empty = Map::new();
    let groups = vec!["OPS".to_string()];
    let e = evaluate(
        &c,
        &Subject {
            provider: LOCAL_PROVIDER,
            subject: "alice",
            claims: &empty,
            local_groups: &groups,
            provisioned_groups: None,
        },
    )
    .unwrap();
    assert_eq!(targets(&e), vec![t("444455556666", "Admin")]);
    assert!(matches!(
        evaluate(
            &c,
            &Subject {
                provider: "nope",
                subject: "x",
                claims: &empty,
                local_groups: &[],
                provisioned_groups: None,
            }
        ),
        Err(MappingError::UnknownProvider(_))
    ));
}

#[test]
fn a_group_claim_of_the_wrong_shape_counts_as_missing_and_is_noted() {
    let c = config();
    let e = eval(
        &c,
        "entra",
        &claims(json!({"sub": "x", "groups": {"a": 1}})),
    );
    assert_eq!(e.groups, None);
    assert!(e.assignments.is_empty());
    assert_eq!(e.notes.len(), 1, "{:?}", e.notes);
}

#[tokio::test]
async fn assignments_follow_the_idp_at_every_login() {
    let c = config();
    let store = MemoryStore::new();
    let with = claims(json!({"sub": "u", "groups": ["5f3c7a1e-0b7d-4d4c-9d77-2f1b8c1a6e10"]}));
    let first = record_login(&store, &eval(&c, "entra", &with), 100)
        .await
        .unwrap();
    assert_eq!(first.added.len(), 1);
    assert!(first.removed.is_empty());
    let same = record_login(&store, &eval(&c, "entra", &with), 200)
        .await
        .unwrap();
    assert!(same.added.is_empty() && same.removed.is_empty());

    // The group is removed at the IdP: the next login removes the assignment.
    let without = claims(json!({"sub": "u", "groups": []}));
    let next = record_login(&store, &eval(&c, "entra", &without), 300)
        .await
        .unwrap();
    assert_eq!(next.removed.len(), 1);
    assert_eq!(next.removed[0].permission_set, "Admin");
    let stored = login_record(&store, "entra", "s-1").await.unwrap().unwrap();
    assert!(stored.assignments.is_empty());
    assert_eq!(stored.last_login, 300);
}

#[tokio::test]
async fn a_login_that_changes_nothing_moments_after_another_writes_nothing() {
    let c = config();
    let store = MemoryStore::new();
    let with = claims(json!({"sub": "u", "groups": ["5f3c7a1e-0b7d-4d4c-9d77-2f1b8c1a6e10"]}));
    let version = || async {
        store
            .dir_get(LOGIN_RECORD, &record_key("entra", "s-1"))
            .await
            .unwrap()
            .unwrap()
            .version
    };
    record_login(&store, &eval(&c, "entra", &with), 100)
        .await
        .unwrap();
    let first = version().await;
    // Logins of the same person with the same assignments, within the resolution: no write.
    for t in [100, 130, 100 + LOGIN_RECORD_RESOLUTION] {
        let same = record_login(&store, &eval(&c, "entra", &with), t)
            .await
            .unwrap();
        assert!(same.added.is_empty() && same.removed.is_empty());
        assert_eq!(version().await, first, "a login at {t}");
    }
    // Past it, the login time is written again.
    record_login(
        &store,
        &eval(&c, "entra", &with),
        101 + LOGIN_RECORD_RESOLUTION,
    )
    .await
    .unwrap();
    assert_eq!(version().await, first + 1);
    // A change of assignments is written at once, whenever.
    let without = claims(json!({"sub": "u", "groups": []}));
    let next = record_login(
        &store,
        &eval(&c, "entra", &without),
        102 + LOGIN_RECORD_RESOLUTION,
    )
    .await
    .unwrap();
    assert_eq!(next.removed.len(), 1);
    assert_eq!(version().await, first + 2);
}

#[tokio::test]
async fn a_login_record_read_ahead_counts_only_for_its_subject_and_while_current() {
    let c = config();
    let store = MemoryStore::new();
    let with = claims(json!({"sub": "u", "groups": ["5f3c7a1e-0b7d-4d4c-9d77-2f1b8c1a6e10"]}));
    let without = claims(json!({"sub": "u", "groups": []}));
    // Read ahead while there is no record; a login writes one meanwhile. The write's version
    // check catches the stale read: the change is reported against the stored record.
    let ahead = read_login_record(&store, "entra", "s-1").await.unwrap();
    assert!(ahead.current.is_none());
    record_login(&store, &eval(&c, "entra", &with), 100)
        .await
        .unwrap();
    let next = record_login_after(&store, &eval(&c, "entra", &without), 110, Some(ahead))
        .await
        .unwrap();
    assert_eq!(next.removed.len(), 1, "{next:?}");
    // A read ahead of another subject, which would say nothing changed, is not used.
    record_login(&store, &eval(&c, "entra", &with), 120)
        .await
        .unwrap();
    let unchanged = LoginRecord {
        provider: "entra".into(),
        subject: "s-1".into(),
        last_login: 125,
        assignments: Vec::new(),
    };
    let other = LoginRecordRead {
        key: record_key("entra", "someone-else"),
        current: Some(Versioned {
            value: serde_json::to_string(&unchanged).unwrap(),
            version: 1,
        }),
    };
    let after = record_login_after(&store, &eval(&c, "entra", &without), 130, Some(other))
        .await
        .unwrap();
    assert_eq!(after.removed.len(), 1, "{after:?}");
}

#[test]
fn rule_configuration_errors_are_reported() {
    let bad = test_config().text()
        + r#"
[[assignment_rules]]
provider = "okta"
permission_set = "Nope"
accounts = ["999999999999"]
group = "x"
email_domain = "example.com"

[[assignment_rules]]
provider = "entra"
permission_set = "Admin"
accounts = ["111122223333"]
local_group = "ops"

[[assignment_rules]]
provider = "missing"
permission_set = "Admin"
accounts = ["111122223333"]
condition = '{"StringEquals": '
"#;
    let errs: Vec<String> =
        Config::from_str_with_env(Path::new("/etc/rolegate/rolegate.toml"), &bad, &[])
            .unwrap_err()
            .0
            .iter()
            .map(|p| p.to_string())
            .collect();
    let all = errs.join("\n");
    for needle in [
        "give exactly one of group, email_domain, local_group, condition",
        "local_group applies only to provider \"local\"",
        "provider 'missing' is not defined",
        "condition must be a non-empty IAM condition block",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

/// A directory store where another writer changes the login record between every read and write
/// of it, as long as `racing` holds: each write of [`record_login`] meets a newer version.
struct Contended {
    inner: MemoryStore,
    racing: std::sync::atomic::AtomicBool,
    writes: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl DirectoryStore for Contended {
    async fn dir_get(&self, kind: &str, key: &str) -> crate::store::Result<Option<Versioned>> {
        self.inner.dir_get(kind, key).await
    }
    async fn dir_list(&self, kind: &str) -> crate::store::Result<Vec<(String, Versioned)>> {
        self.inner.dir_list(kind).await
    }
    async fn dir_write(&self, writes: &[DirWrite]) -> crate::store::Result<bool> {
        use std::sync::atomic::Ordering;
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        // An unbounded retry would spin here for ever: fail the test instead.
        assert!(n < 1000, "record_login retried {n} times");
        if self.racing.load(Ordering::SeqCst) {
            let key = record_key("entra", "s-1");
            let current = self.inner.dir_get(LOGIN_RECORD, &key).await?;
            let rival = LoginRecord {
                provider: "entra".into(),
                subject: "s-1".into(),
                last_login: n as i64,
                assignments: Vec::new(),
            };
            let rival = serde_json::to_string(&rival).unwrap();
            let put = DirWrite::put(LOGIN_RECORD, &key, current.as_ref(), rival);
            assert!(self.inner.dir_write(&[put]).await?);
        }
        self.inner.dir_write(writes).await
    }
}

#[tokio::test]
async fn a_login_record_that_keeps_changing_gives_up_after_a_few_attempts() {
    use std::sync::atomic::Ordering;
    let c = config();
    let store = Contended {
        inner: MemoryStore::new(),
        racing: true.into(),
        writes: 0.into(),
    };
    let with = claims(json!({"sub": "u", "groups": ["5f3c7a1e-0b7d-4d4c-9d77-2f1b8c1a6e10"]}));
    let e = eval(&c, "entra", &with);
    assert_eq!(e.assignments.len(), 1);
    let err = record_login(&store, &e, 100).await.unwrap_err();
    assert!(matches!(err, MappingError::Contended(_)), "{err}");
    assert!(err.to_string().contains("s-1"), "{err}");
    assert_eq!(store.writes.load(Ordering::SeqCst), LOGIN_RECORD_ATTEMPTS);
    // Nothing of this login was written: the record is the other writer's.
    let stored = login_record(&store.inner, "entra", "s-1")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.assignments.is_empty());
    // Once the other writer is done, the next login is recorded.
    store.racing.store(false, Ordering::SeqCst);
    let changes = record_login(&store, &e, 100).await.unwrap();
    assert_eq!(changes.added.len(), 1);
    let stored = login_record(&store.inner, "entra", "s-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.assignments, e.assignments);
}
