//! Feeds arbitrary text to `Policy::parse` for every `PolicyKind`; every policy that parses is then
//! evaluated and explained against fixed request contexts. Neither may panic, and an explanation
//! must always reach the same decision as the evaluation.

#![no_main]

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use rolegate::policy::{
    evaluate, evaluate_trust, explain, explain_trust, Policy, PolicyKind, PolicySet, Principal,
    RequestContext,
};

const KINDS: [PolicyKind; 5] = [
    PolicyKind::Identity,
    PolicyKind::Inline,
    PolicyKind::Trust,
    PolicyKind::Resource,
    PolicyKind::Session,
];

/// Fails to compile when a kind is added without adding it to [`KINDS`].
#[allow(dead_code)]
fn listed(kind: PolicyKind) {
    match kind {
        PolicyKind::Identity
        | PolicyKind::Inline
        | PolicyKind::Trust
        | PolicyKind::Resource
        | PolicyKind::Session => {}
    }
}

fn contexts() -> &'static [RequestContext] {
    static CONTEXTS: OnceLock<Vec<RequestContext>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let mut role = RequestContext::new(
            "s3:GetObject",
            "arn:aws:s3:::data-payments/reports/2026/summary.csv",
        )
        .with_principal(Principal::assumed_role(
            "aws",
            "111122223333",
            "path/payments-reader",
            "alice",
        ));
        role.set_string("aws:PrincipalTag/team", "payments");
        role.set_string("aws:SourceIp", "10.20.30.40");
        role.set_bool("aws:MultiFactorAuthPresent", true);
        role.set_number("aws:MultiFactorAuthAge", 300);
        role.set_strings("aws:TagKeys", ["team", "env"]);
        role.set_strings("aws:PrincipalTag/groups", Vec::<String>::new());
        role.set_string("aws:username", "");
        role.set_string("s3:x-amz-server-side-encryption-customer-algorithm", "QUVTMjU2");
        role.set_current_time(now);

        let mut web = RequestContext::new(
            "sts:AssumeRoleWithWebIdentity",
            "arn:aws:iam::111122223333:role/deploy",
        )
        .with_principal(Principal::federated(
            "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
        ));
        web.set_string(
            "token.actions.githubusercontent.com:sub",
            "repo:example/app:ref:refs/heads/main",
        );
        web.set_string("token.actions.githubusercontent.com:aud", "sts.amazonaws.com");
        web.set_string("aws:SourceIp", "2001:db8::1");
        web.set_current_time(now);

        let anonymous = RequestContext::new("sqs:SendMessage", "*");
        vec![role, web, anonymous]
    })
}

fn exercise(policy: &Policy, kind: PolicyKind) {
    let _ = policy.warnings();
    for ctx in contexts() {
        if kind == PolicyKind::Trust {
            let decision = evaluate_trust(policy, ctx);
            let explanation = explain_trust(policy, ctx);
            assert_eq!(decision.effect, explanation.effect, "trust: {explanation}");
        }
        let set = match kind {
            PolicyKind::Identity | PolicyKind::Inline => {
                PolicySet::new().with_identity("fuzzed", policy)
            }
            PolicyKind::Session => PolicySet::new()
                .with_identity("fuzzed", policy)
                .with_session("fuzzed-session", policy),
            PolicyKind::Trust | PolicyKind::Resource => {
                PolicySet::new().with_resource("fuzzed", policy)
            }
        };
        let decision = evaluate(&set, ctx);
        let explanation = explain(&set, ctx);
        assert_eq!(decision.effect, explanation.effect, "{explanation}");
        let _ = explanation.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for kind in KINDS {
        if let Ok(policy) = Policy::parse(&text, kind) {
            exercise(&policy, kind);
        }
    }
});
