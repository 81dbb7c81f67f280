//! `[[assignment_rules]]`: the rules that assign permission sets in accounts to people by their
//! provider's groups, e-mail domain or claims (an IAM condition block), or by local groups.

use super::raw::RawAssignmentRule;
use super::{OidcProvider, SamlProvider, Validator, LOCAL_PROVIDER};
use crate::policy::{Policy, PolicyKind};
use std::collections::HashSet;
use std::sync::Arc;
use toml::Spanned;

/// What an assignment rule looks at.
#[derive(Debug, Clone)]
pub enum RuleMatch {
    /// Membership in a group of the provider's (normalised) group claim.
    Group(String),
    /// The domain of the e-mail claim (exact, case-insensitive), of a verified address only:
    /// `email_verified` must be the boolean `true` unless the provider is configured with
    /// `email_always_verified`.
    EmailDomain(String),
    /// Membership in a group of the local directory.
    LocalGroup(String),
    /// An IAM condition block over the identity's condition keys, as a one-statement policy.
    Condition(Arc<Policy>),
}

/// Assigns a permission set in accounts to the identities of one provider that match.
#[derive(Debug, Clone)]
pub struct AssignmentRule {
    /// Position in the file (0-based), for explanations.
    pub index: usize,
    /// The provider's name, or [`LOCAL_PROVIDER`].
    pub provider: String,
    /// The permission set assigned.
    pub permission_set: String,
    /// The accounts it is assigned in.
    pub accounts: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// What must match.
    pub matcher: RuleMatch,
}

/// The action a rule's condition is evaluated for.
pub const RULE_ACTION: &str = "rolegate:AssignPermissionSet";

/// The policy text a rule's condition block becomes.
fn condition_policy(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{RULE_ACTION}","Resource":"*","Condition":{condition}}}]}}"#
    )
}

impl Validator<'_> {
    /// The assignment rules, in file order.
    pub(super) fn validate_rules(
        &mut self,
        raw: &[Spanned<RawAssignmentRule>],
        providers: &[OidcProvider],
        saml_providers: &[SamlProvider],
        permission_sets: &[&str],
        accounts: &HashSet<String>,
    ) -> Vec<AssignmentRule> {
        let mut assignment_rules = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let names: Vec<&str> = providers
                .iter()
                .map(|p| p.name.as_str())
                .chain(saml_providers.iter().map(|p| p.name.as_str()))
                .collect();
            if let Some(rule) = self.validate_rule(i, r, &names, permission_sets, accounts) {
                assignment_rules.push(rule);
            }
        }
        assignment_rules
    }

    /// One assignment rule (`index`: its 0-based position in the file); `providers` are the names
    /// of the configured OpenID and SAML providers, `sets` those of every permission set written
    /// in the file (one with problems of its own included: its name is known, and a rule naming it
    /// is not a second problem).
    fn validate_rule(
        &mut self,
        index: usize,
        r: &Spanned<RawAssignmentRule>,
        providers: &[&str],
        sets: &[&str],
        accounts: &HashSet<String>,
    ) -> Option<AssignmentRule> {
        let at = Some(r.span().start);
        let raw = r.get_ref();
        let what = format!("assignment rule {} ({})", index + 1, raw.permission_set);
        let mut ok = true;
        if raw.provider != LOCAL_PROVIDER && !providers.contains(&raw.provider.as_str()) {
            let known = providers;
            self.err(
                at,
                format!(
                    "{what}: provider '{}' is not defined (known: {LOCAL_PROVIDER}{}{})",
                    raw.provider,
                    if known.is_empty() { "" } else { ", " },
                    known.join(", ")
                ),
            );
            ok = false;
        }
        if !sets.contains(&raw.permission_set.as_str()) {
            self.err(
                at,
                format!(
                    "{what}: permission set '{}' is not defined",
                    raw.permission_set
                ),
            );
            ok = false;
        }
        if raw.accounts.is_empty() {
            self.err(
                at,
                format!("{what}: accounts must list at least one account"),
            );
            ok = false;
        }
        for a in &raw.accounts {
            if !accounts.contains(a) {
                self.err(at, format!("{what}: account {a} is not defined"));
                ok = false;
            }
        }
        let given = [
            raw.group.is_some(),
            raw.email_domain.is_some(),
            raw.local_group.is_some(),
            raw.condition.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            self.err(
                at,
                format!(
                    "{what}: give exactly one of group, email_domain, local_group, condition (got {given})"
                ),
            );
            return None;
        }
        let matcher = if let Some(g) = &raw.group {
            if g.is_empty() {
                self.err(at, format!("{what}: group must not be empty"));
                ok = false;
            }
            if raw.provider == LOCAL_PROVIDER {
                self.err(
                    at,
                    format!("{what}: for the local directory use local_group, not group"),
                );
                ok = false;
            }
            RuleMatch::Group(g.clone())
        } else if let Some(d) = &raw.email_domain {
            let d = d.trim_start_matches('@').to_ascii_lowercase();
            if d.is_empty() || d.contains('@') || !d.contains('.') {
                self.err(
                    at,
                    format!("{what}: email_domain '{d}' is not a domain name"),
                );
                ok = false;
            }
            RuleMatch::EmailDomain(d)
        } else if let Some(g) = &raw.local_group {
            if raw.provider != LOCAL_PROVIDER {
                self.err(
                    at,
                    format!("{what}: local_group applies only to provider \"{LOCAL_PROVIDER}\""),
                );
                ok = false;
            }
            RuleMatch::LocalGroup(g.clone())
        } else {
            let c = raw.condition.as_ref()?;
            let cat = Some(c.span().start);
            match serde_json::from_str::<serde_json::Value>(c.get_ref()) {
                Ok(serde_json::Value::Object(m)) if !m.is_empty() => {}
                _ => {
                    self.err(
                        cat,
                        format!(
                            "{what}: condition must be a non-empty IAM condition block, e.g. {{\"StringLike\": {{\"claim:department\": \"eng*\"}}}}"
                        ),
                    );
                    return None;
                }
            }
            match Policy::parse(&condition_policy(c.get_ref()), PolicyKind::Identity) {
                Ok(p) => RuleMatch::Condition(Arc::new(p)),
                Err(e) => {
                    self.err(cat, format!("{what}: condition: {e}"));
                    return None;
                }
            }
        };
        ok.then(|| AssignmentRule {
            index,
            provider: raw.provider.clone(),
            permission_set: raw.permission_set.clone(),
            accounts: raw.accounts.clone(),
            description: raw.description.clone(),
            matcher,
        })
    }
}
