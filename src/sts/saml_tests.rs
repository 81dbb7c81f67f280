//! `AssumeRoleWithSAML` through the router with Responses signed by a test IdP: the NameID, the
//! Role attribute and SessionDuration are used exactly as signed, never trimmed.

use crate::app::App;
use crate::idp::saml::test_idp::{self, Claims, Signed};
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::pkey::{PKey, Private};
use std::sync::Arc;

const T0: i64 = 1_800_000_000;
const ACCOUNT: &str = "111122223333";
const PUBLIC: &str = crate::testing::PUBLIC_URL;
const PROVIDER_ARN: &str = "arn:aws:iam::111122223333:saml-provider/corp";
const ROLE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
const NAME_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
const DURATION_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// A trust policy for the provider with one extra `StringEquals` condition (or none).
fn trust(extra: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{PROVIDER_ARN}"}},"Action":"sts:AssumeRoleWithSAML","Condition":{{"StringEquals":{{"saml:aud":"{PUBLIC}/saml/acs"{extra}}}}}}}]}}"#
    )
}

struct Fixture {
    app: Arc<App>,
    idp: PKey<Private>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let idp = test_idp::rsa_key();
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("idp.xml");
    std::fs::write(&metadata, test_idp::metadata_xml(&idp)).unwrap();
    let (app, _clock) = crate::testing::config()
        .with(&format!(
            "[saml]\n[[saml_providers]]\nname = \"corp\"\nmetadata_file = \"{}\"\n",
            metadata.display()
        ))
        .role("any-subject", &trust(""))
        .role("only-alice", &trust(r#","saml:sub":"alice""#))
        .build(T0)
        .await;
    Fixture {
        app,
        idp,
        _dir: dir,
    }
}

impl Fixture {
    /// A Response signed by the IdP (the Response and, separately, the Assertion: `id` and
    /// `id`-a) about `name_id`, whose Role attribute is `role_value`.
    fn responses(&self, id: &str, name_id: &str, role_value: &str) -> Vec<String> {
        self.responses_with(id, name_id, role_value, &[])
    }

    /// [`Fixture::responses`] with `extra` attributes.
    fn responses_with(
        &self,
        id: &str,
        name_id: &str,
        role_value: &str,
        extra: &[(&str, &str)],
    ) -> Vec<String> {
        let ids = [id.to_string(), format!("{id}-a")];
        let acs = format!("{PUBLIC}/saml/acs");
        let audience = format!("{PUBLIC}/saml/metadata");
        [Signed::Response, Signed::Assertion]
            .into_iter()
            .zip(&ids)
            .map(|(signed, id)| {
                let mut c = Claims::new(name_id, &audience, &acs, T0)
                    .attribute(ROLE_ATTRIBUTE, &[role_value])
                    .attribute(NAME_ATTRIBUTE, &["saml-session"]);
                for (name, value) in extra {
                    c = c.attribute(name, &[value]);
                }
                c.id = id;
                test_idp::response(&c, &self.idp, signed)
            })
            .collect()
    }

    /// `AssumeRoleWithSAML` of `role_arn` with `response`: the status, the body, and the audit
    /// event of the call.
    async fn assume(
        &self,
        role_arn: &str,
        response: &str,
    ) -> (StatusCode, String, crate::audit::AuditEvent) {
        let assertion = STANDARD.encode(response);
        crate::web::testing::unsigned_sts_call(
            &self.app,
            &[
                ("Action", "AssumeRoleWithSAML"),
                ("Version", "2011-06-15"),
                ("RoleArn", role_arn),
                ("PrincipalArn", PROVIDER_ARN),
                ("SAMLAssertion", &assertion),
            ],
        )
        .await
    }
}

fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let (_, rest) = xml.split_once(&format!("<{tag}>"))?;
    rest.split_once(&format!("</{tag}>")).map(|(t, _)| t)
}

#[tokio::test]
async fn a_name_id_with_a_leading_space_is_not_the_same_subject() {
    let f = fixture().await;
    let any = role("any-subject");
    let pair = format!("{any},{PROVIDER_ARN}");
    for (n, response) in f.responses("s1", " alice", &pair).iter().enumerate() {
        let (status, body, ev) = f.assume(&any, response).await;
        assert_eq!(status, StatusCode::OK, "{n}: {body}");
        assert_eq!(xml_text(&body, "Subject"), Some(" alice"), "{body}");
        assert_eq!(ev.subject.as_deref(), Some(" alice"));
        assert_eq!(ev.decision, "allow");
    }
    // A trust policy for "alice" does not let " alice" in: saml:sub is the NameID as signed.
    let alice = role("only-alice");
    let pair = format!("{alice},{PROVIDER_ARN}");
    for (n, response) in f.responses("s2", " alice", &pair).iter().enumerate() {
        let (status, body, ev) = f.assume(&alice, response).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{n}: {body}");
        assert_eq!(xml_text(&body, "Code"), Some("AccessDenied"), "{body}");
        assert!(!body.contains("<Credentials>"), "{body}");
        assert_eq!(ev.decision, "deny");
        assert_eq!(ev.subject.as_deref(), Some(" alice"));
    }
    // Control: "alice" herself is let in.
    for response in f.responses("s3", "alice", &pair) {
        let (status, body, _) = f.assume(&alice, &response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(xml_text(&body, "Subject"), Some("alice"), "{body}");
    }
}

#[tokio::test]
async fn the_role_attribute_is_compared_exactly_as_signed() {
    let f = fixture().await;
    let any = role("any-subject");
    for (id, value) in [
        ("r1", format!("{any}, {PROVIDER_ARN}")),
        ("r2", format!(" {any},{PROVIDER_ARN}")),
        ("r3", format!("{PROVIDER_ARN} ,{any}")),
    ] {
        for response in f.responses(id, "alice", &value) {
            let (status, body, ev) = f.assume(&any, &response).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{value:?}: {body}");
            assert_eq!(xml_text(&body, "Code"), Some("AccessDenied"), "{body}");
            let reason = ev.reason.unwrap_or_default();
            assert!(
                reason.contains("Role attribute does not contain"),
                "{reason}"
            );
        }
    }
    // Either order, without spaces, is AWS's form.
    for (id, value) in [
        ("r4", format!("{any},{PROVIDER_ARN}")),
        ("r5", format!("{PROVIDER_ARN},{any}")),
    ] {
        for response in f.responses(id, "alice", &value) {
            let (status, body, _) = f.assume(&any, &response).await;
            assert_eq!(status, StatusCode::OK, "{value:?}: {body}");
        }
    }
}

#[tokio::test]
async fn the_session_duration_is_taken_exactly_as_signed() {
    let f = fixture().await;
    let any = role("any-subject");
    let pair = format!("{any},{PROVIDER_ARN}");
    for (n, value) in [" 3600", "3600 ", "+3600", "3600\n"]
        .into_iter()
        .enumerate()
    {
        let extra = [(DURATION_ATTRIBUTE, value)];
        for response in f.responses_with(&format!("d{n}"), "alice", &pair, &extra) {
            let (status, body, ev) = f.assume(&any, &response).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{value:?}: {body}");
            assert_eq!(xml_text(&body, "Code"), Some("InvalidIdentityToken"));
            assert!(!body.contains("<Credentials>"), "{body}");
            let reason = ev.reason.unwrap_or_default();
            assert!(
                reason.contains(&format!("{value:?} is not a number of seconds")),
                "{reason}"
            );
        }
    }
    // Control: the digits alone.
    let extra = [(DURATION_ATTRIBUTE, "3600")];
    for response in f.responses_with("d-ok", "alice", &pair, &extra) {
        let (status, body, _) = f.assume(&any, &response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn an_assertion_refused_by_the_trust_policy_is_not_spent_and_one_used_is() {
    let f = fixture().await;
    let alice = role("only-alice");
    let pair = format!("{alice},{PROVIDER_ARN}");
    // bob's assertion is refused by the trust policy, every time: it was never spent.
    for response in f.responses("u1", "bob", &pair) {
        for attempt in 0..2 {
            let (status, body, ev) = f.assume(&alice, &response).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{attempt}: {body}");
            let reason = ev.reason.unwrap_or_default();
            assert!(
                reason.contains("trust policy") && !reason.contains("already used"),
                "{attempt}: {reason}"
            );
        }
    }
    // alice's assertion gets credentials once; the second use is a replay.
    for response in f.responses("u2", "alice", &pair) {
        let (status, body, _) = f.assume(&alice, &response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body, ev) = f.assume(&alice, &response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!body.contains("<Credentials>"), "{body}");
        let reason = ev.reason.unwrap_or_default();
        assert!(reason.contains("already used"), "{reason}");
    }
}
