//! `[[roles]]`: the roles sessions assume, each with its trust policy (whose references to
//! providers must resolve), inline and managed policies, permissions boundary and tags, and the
//! stable role id derived from its ARN.

use super::raw;
use super::{ManagedPolicy, OidcProvider, Problem, Validator, SIGN_IN_PROVIDER};
use crate::policy::{Policy, PolicyKind};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;

/// Most managed policies one role may have attached (AWS's quota, raised to its maximum).
pub const MAX_MANAGED_PER_ROLE: usize = 20;

/// A role that sessions can assume.
#[derive(Debug, Clone)]
pub struct Role {
    /// Account id.
    pub account: String,
    /// Role name.
    pub name: String,
    /// Path, starting and ending with `/`.
    pub path: String,
    /// `arn:aws:iam::ACCOUNT:role{path}{name}`.
    pub arn: String,
    /// Stable unique id `AROA…`.
    pub role_id: String,
    /// Free text.
    pub description: Option<String>,
    /// Longest session, seconds (3600..=43200).
    pub max_session_duration: u32,
    /// Who may assume the role.
    pub trust_policy: Arc<Policy>,
    /// What sessions of the role may do: its inline policies, (name, policy).
    pub policies: Vec<(String, Arc<Policy>)>,
    /// Managed policies attached to the role, (ARN, policy).
    pub managed_policies: Vec<(String, Arc<Policy>)>,
    /// The role's permissions boundary, (managed policy ARN, policy).
    pub permissions_boundary: Option<(String, Arc<Policy>)>,
    /// Role tags.
    pub tags: BTreeMap<String, String>,
}

impl Role {
    /// Every identity-based policy of the role, labelled: inline policies by name, managed ones by ARN.
    pub fn identity_policies(&self) -> impl Iterator<Item = (&str, &Arc<Policy>)> {
        self.policies
            .iter()
            .chain(self.managed_policies.iter())
            .map(|(l, p)| (l.as_str(), p))
    }
}

/// `AROA` followed by 17 characters derived from the role ARN: stable across restarts and replicas.
pub fn role_id_for(arn: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, arn.as_bytes());
    let mut id = String::from("AROA");
    for b in digest.as_ref().iter().take(17) {
        id.push(ALPHABET[(*b as usize) % 32] as char);
    }
    id
}

impl Validator<'_> {
    /// The configured roles; a name is unique within its account, whatever its case.
    pub(super) fn validate_roles(
        &mut self,
        raw: &[Spanned<raw::RawRole>],
        accounts: &HashSet<String>,
        providers: &[OidcProvider],
        managed: &[ManagedPolicy],
    ) -> Vec<Role> {
        let mut roles: Vec<Role> = Vec::new();
        for r in raw {
            if let Some(role) = self.validate_role(r, accounts, providers, managed) {
                if roles
                    .iter()
                    .any(|x| x.account == role.account && x.name.eq_ignore_ascii_case(&role.name))
                {
                    self.err(
                        Some(r.span().start),
                        format!(
                            "role {} is defined twice in account {}",
                            role.name, role.account
                        ),
                    );
                }
                roles.push(role);
            }
        }
        roles
    }

    fn validate_role(
        &mut self,
        r: &Spanned<raw::RawRole>,
        accounts: &HashSet<String>,
        providers: &[OidcProvider],
        managed: &[ManagedPolicy],
    ) -> Option<Role> {
        let at = Some(r.span().start);
        let raw = r.get_ref();
        let what = format!("role '{}'", raw.name);
        let (path, mut ok) = self.iam_entity(
            at,
            &what,
            accounts,
            (&raw.account, &raw.name, raw.path.as_ref()),
            64,
        );
        let max = raw.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max) {
            self.err(
                at,
                format!("{what}: max_session_duration must be 3600..=43200 seconds"),
            );
            ok = false;
        }
        ok &= self.tags_ok(at, &what, &raw.tags);
        let trust = self
            .policy_text(
                raw.trust_policy.as_ref(),
                raw.trust_policy_file.as_ref(),
                &format!("{what} trust_policy"),
                at,
            )
            .and_then(|(text, file, line)| {
                self.lint_trust_policy(&text, &raw.account, providers, &file, line, &what);
                let tw = format!("{what} trust policy");
                let p = self.parse_policy(&text, PolicyKind::Trust, &file, line, &tw)?;
                self.policy_warnings(&p, &file, line, &tw);
                Some(p)
            });
        let policies = match self.inline_policies(&raw.policies, &what) {
            Some(p) => p,
            None => {
                ok = false;
                Vec::new()
            }
        };
        let mut managed_policies = Vec::new();
        for arn in &raw.managed_policy_arns {
            match managed.iter().find(|m| &m.arn == arn) {
                Some(m) if m.account == raw.account => {
                    if managed_policies.iter().any(|(a, _)| a == arn) {
                        self.err(
                            at,
                            format!("{what}: managed policy {arn} is attached twice"),
                        );
                        ok = false;
                    }
                    managed_policies.push((m.arn.clone(), Arc::clone(&m.policy)));
                }
                Some(_) => {
                    self.err(
                        at,
                        format!("{what}: managed policy {arn} belongs to another account"),
                    );
                    ok = false;
                }
                None => {
                    self.err(at, format!("{what}: managed policy {arn} is not defined"));
                    ok = false;
                }
            }
        }
        if managed_policies.len() > MAX_MANAGED_PER_ROLE {
            self.err(
                at,
                format!("{what}: at most {MAX_MANAGED_PER_ROLE} managed policies may be attached"),
            );
            ok = false;
        }
        let permissions_boundary = match &raw.permissions_boundary {
            None => None,
            Some(arn) => match managed.iter().find(|m| &m.arn == arn) {
                Some(m) if m.account == raw.account => Some((m.arn.clone(), Arc::clone(&m.policy))),
                Some(_) => {
                    self.err(
                        at,
                        format!("{what}: permissions boundary {arn} belongs to another account"),
                    );
                    ok = false;
                    None
                }
                None => {
                    self.err(
                        at,
                        format!(
                            "{what}: permissions boundary {arn} is not a defined managed policy"
                        ),
                    );
                    ok = false;
                    None
                }
            },
        };
        let trust = trust?;
        if !ok {
            return None;
        }
        let arn = crate::policy::arn::role(&raw.account, &path, &raw.name);
        Some(Role {
            account: raw.account.clone(),
            name: raw.name.clone(),
            role_id: role_id_for(&arn),
            arn,
            path,
            description: raw.description.clone(),
            max_session_duration: max as u32,
            trust_policy: Arc::new(trust),
            policies,
            managed_policies,
            permissions_boundary,
            tags: raw.tags.clone(),
        })
    }

    /// Dangling references in a trust policy are errors (risky shapes are the policy's own warnings).
    fn lint_trust_policy(
        &mut self,
        text: &str,
        account: &str,
        providers: &[OidcProvider],
        file: &Path,
        line: usize,
        what: &str,
    ) {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
            return; // the parser reports syntax errors
        };
        let statements = match doc.get("Statement") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            Some(s @ serde_json::Value::Object(_)) => vec![s.clone()],
            _ => return,
        };
        let push = |v: &mut Vec<Problem>, msg: String| {
            v.push(Problem {
                file: file.to_path_buf(),
                line: Some(line),
                message: format!("{what} trust policy: {msg}"),
            })
        };
        for (i, st) in statements.iter().enumerate() {
            let federated: Vec<String> = match st.get("Principal").and_then(|p| p.get("Federated"))
            {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => vec![],
            };
            for f in &federated {
                if let Some(rest) = f.strip_prefix("arn:aws:iam::") {
                    if let Some((acc, name)) = rest.split_once(":oidc-provider/") {
                        let known = providers.iter().find(|p| p.key_prefix == name);
                        match known {
                            None => push(
                                &mut self.problems,
                                format!("statement {i} trusts {f}, but no oidc provider with issuer '{name}' is configured"),
                            ),
                            Some(p) if acc != account || !p.serves_account(acc) => push(
                                &mut self.problems,
                                format!("statement {i} trusts {f}, which is not a provider of account {account}"),
                            ),
                            Some(_) => {}
                        }
                    }
                    if let Some((acc, name)) = rest.split_once(":saml-provider/") {
                        match self.saml_names.iter().find(|(n, _)| n == name) {
                            None if name == SIGN_IN_PROVIDER => {}
                            None => push(
                                &mut self.problems,
                                format!("statement {i} trusts {f}, but no saml provider named '{name}' is configured"),
                            ),
                            Some((_, accounts))
                                if acc != account
                                    || accounts.as_ref().is_some_and(|a| !a.iter().any(|x| x == acc)) =>
                            {
                                push(
                                    &mut self.problems,
                                    format!("statement {i} trusts {f}, which is not a provider of account {account}"),
                                )
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
}
