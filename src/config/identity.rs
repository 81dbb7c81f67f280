//! The identity model's configuration: the local directory's settings and permission sets (and the
//! roles they provision in accounts). The rules that assign permission sets to people are `rules`.

use super::raw::{RawDirectory, RawPermissionSet};
use super::{
    is_iam_name_char, role_id_for, AssignmentRule, ManagedPolicy, Role, Validator,
    MAX_MANAGED_PER_ROLE,
};
use crate::policy::{Policy, PolicyKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use toml::Spanned;

/// The provider name of rolegate's own directory in assignment rules.
pub const LOCAL_PROVIDER: &str = "local";

/// Name of the federated principal that permission-set roles trust: the sign-in path of rolegate
/// itself (portal and SSO API), never a configurable provider.
pub const SIGN_IN_PROVIDER: &str = "RolegateSSO";

/// Default prefix of the roles permission sets provision.
pub const DEFAULT_ROLE_PREFIX: &str = "RolegateSSO_";

/// Default shortest password of local users.
pub const DEFAULT_MIN_PASSWORD_LENGTH: usize = 12;

/// Settings of the local directory.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// The account local users, groups and the root user belong to.
    pub account: String,
    /// Shortest password accepted.
    pub min_password_length: usize,
    /// Prefix of the role names permission sets provision.
    pub role_prefix: String,
}

/// How much MFA a permission set demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRequirement {
    /// None.
    None,
    /// MFA at some point in the sign-in session.
    Required,
    /// MFA no longer ago than this many seconds (step-up).
    Within(u32),
}

/// A permission set: what a person assigned it may do in an account.
#[derive(Debug, Clone)]
pub struct PermissionSet {
    /// Name (1-32 of `[A-Za-z0-9_+=,.@-]`, as IAM Identity Center).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Inline policies.
    pub policies: Vec<(String, Arc<Policy>)>,
    /// Names of customer managed policies, resolved in each account the set is provisioned in.
    pub managed_policies: Vec<String>,
    /// Name of a customer managed policy used as permissions boundary in each account.
    pub permissions_boundary: Option<String>,
    /// Session length in seconds (3600..=43200).
    pub session_seconds: u32,
    /// Where the console opens, if not rolegate's own console page.
    pub relay_state: Option<String>,
    /// MFA demanded before credentials or the console are handed out.
    pub mfa: MfaRequirement,
    /// Tags of the provisioned roles.
    pub tags: BTreeMap<String, String>,
}

/// The trust policy of a permission set's role: only rolegate's own sign-in path, with the permission
/// set's MFA requirement as conditions.
pub fn permission_set_trust_policy(account: &str, mfa: MfaRequirement) -> String {
    let condition = match mfa {
        MfaRequirement::None => String::new(),
        MfaRequirement::Required => {
            r#","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}"#.to_string()
        }
        MfaRequirement::Within(s) => format!(
            r#","Condition":{{"Bool":{{"aws:MultiFactorAuthPresent":"true"}},"NumericLessThanEquals":{{"aws:MultiFactorAuthAge":"{s}"}}}}"#
        ),
    };
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"RolegateSignIn","Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::{account}:saml-provider/{SIGN_IN_PROVIDER}"}},"Action":["sts:AssumeRoleWithSAML","sts:TagSession"]{condition}}}]}}"#
    )
}

/// Whether `r` may be a permission set's relay state (where "Open console" lands): an https URL,
/// an http URL only on a loopback host, or a path of rolegate's; never with credentials in the
/// URL, control characters or backslashes.
pub fn relay_state_ok(r: &str) -> bool {
    if r.len() > 2048 || r.chars().any(|c| c.is_control() || c == '\\') {
        return false;
    }
    match url::Url::parse(r) {
        Ok(u) => {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            u.username().is_empty()
                && u.password().is_none()
                && u.host().is_some()
                && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
        }
        Err(_) => r.starts_with('/') && !r.starts_with("//"),
    }
}

/// Parses `PT<n>H`, `PT<n>M` or `PT<n>H<m>M` into seconds.
fn iso_duration(s: &str) -> Option<u32> {
    let rest = s.strip_prefix("PT")?;
    let (h, rest) = match rest.split_once('H') {
        Some((h, r)) => (h.parse::<u32>().ok()?, r),
        None => (0, rest),
    };
    let m = match rest {
        "" => 0,
        r => r.strip_suffix('M')?.parse::<u32>().ok()?,
    };
    if m >= 60 && h > 0 {
        return None;
    }
    h.checked_mul(3600)?.checked_add(m.checked_mul(60)?)
}

impl Validator<'_> {
    pub(super) fn validate_directory(
        &mut self,
        raw: Option<&Spanned<RawDirectory>>,
        accounts: &[super::Account],
    ) -> Option<DirectorySettings> {
        let at = raw.map(|r| r.span().start);
        let d = raw.map(|r| r.get_ref());
        let account = match d.and_then(|d| d.account.clone()) {
            Some(a) if accounts.iter().any(|x| x.id == a) => a,
            Some(a) => {
                self.err(at, format!("directory.account: account {a} is not defined"));
                return None;
            }
            None => accounts.first()?.id.clone(),
        };
        let min = d
            .and_then(|d| d.min_password_length)
            .unwrap_or(DEFAULT_MIN_PASSWORD_LENGTH as i64);
        if !(8..=128).contains(&min) {
            self.err(
                at,
                "directory.min_password_length: must be between 8 and 128",
            );
        }
        let role_prefix = d
            .and_then(|d| d.permission_set_role_prefix.clone())
            .unwrap_or_else(|| DEFAULT_ROLE_PREFIX.to_string());
        if role_prefix.len() > 32 || !role_prefix.chars().all(is_iam_name_char) {
            self.err(
                at,
                "directory.permission_set_role_prefix: at most 32 characters of [A-Za-z0-9_+=,.@-]",
            );
        }
        Some(DirectorySettings {
            account,
            min_password_length: min.clamp(8, 128) as usize,
            role_prefix,
        })
    }

    fn validate_permission_set(&mut self, p: &Spanned<RawPermissionSet>) -> Option<PermissionSet> {
        let at = Some(p.span().start);
        let raw = p.get_ref();
        let what = format!("permission set '{}'", raw.name);
        let mut ok = true;
        if raw.name.is_empty() || raw.name.len() > 32 || !raw.name.chars().all(is_iam_name_char) {
            self.err(
                at,
                format!("{what}: name must be 1-32 characters of [A-Za-z0-9_+=,.@-]"),
            );
            ok = false;
        }
        let session_seconds = match raw.session_duration.as_deref() {
            None => 3600,
            Some(d) => match iso_duration(d) {
                Some(s) if (3600..=43200).contains(&s) => s,
                _ => {
                    self.err(
                        at,
                        format!(
                            "{what}: session_duration '{d}' must be an ISO 8601 duration from PT1H to PT12H (e.g. PT8H, PT1H30M)"
                        ),
                    );
                    ok = false;
                    3600
                }
            },
        };
        let mfa = match (raw.mfa.as_deref(), raw.mfa_max_age_minutes) {
            (None | Some("none"), None) => MfaRequirement::None,
            (Some("required"), None) => MfaRequirement::Required,
            (Some("required"), Some(m)) if (1..=720).contains(&m) => {
                MfaRequirement::Within((m * 60) as u32)
            }
            (Some("required"), Some(_)) => {
                self.err(
                    at,
                    format!("{what}: mfa_max_age_minutes must be between 1 and 720"),
                );
                ok = false;
                MfaRequirement::Required
            }
            (None | Some("none"), Some(_)) => {
                self.err(
                    at,
                    format!("{what}: mfa_max_age_minutes needs mfa = \"required\""),
                );
                ok = false;
                MfaRequirement::None
            }
            (Some(other), _) => {
                self.err(
                    at,
                    format!("{what}: mfa '{other}' must be \"none\" or \"required\""),
                );
                ok = false;
                MfaRequirement::None
            }
        };
        if let Some(r) = &raw.relay_state {
            if !relay_state_ok(r) {
                self.err(
                    at,
                    format!(
                        "{what}: relay_state '{r}' must be an https URL (http only on a loopback \
                         host), without user name or password, or a path starting with one '/'"
                    ),
                );
                ok = false;
            }
        }
        ok &= self.tags_ok(at, &what, &raw.tags);
        let policies = match self.inline_policies(&raw.policies, &what) {
            Some(p) => p,
            None => {
                ok = false;
                Vec::new()
            }
        };
        if raw.managed_policies.len() > MAX_MANAGED_PER_ROLE {
            self.err(
                at,
                format!("{what}: at most {MAX_MANAGED_PER_ROLE} managed policies"),
            );
            ok = false;
        }
        ok.then(|| PermissionSet {
            name: raw.name.clone(),
            description: raw.description.clone(),
            policies,
            managed_policies: raw.managed_policies.clone(),
            permissions_boundary: raw.permissions_boundary.clone(),
            session_seconds,
            relay_state: raw.relay_state.clone(),
            mfa,
            tags: raw.tags.clone(),
        })
    }

    /// The permission sets; names unique whatever their case.
    pub(super) fn validate_permission_sets(
        &mut self,
        raw: &[Spanned<RawPermissionSet>],
    ) -> Vec<PermissionSet> {
        let mut permission_sets: Vec<PermissionSet> = Vec::new();
        for p in raw {
            if let Some(ps) = self.validate_permission_set(p) {
                if permission_sets
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case(&ps.name))
                {
                    self.err(
                        Some(p.span().start),
                        format!("permission set '{}' is defined twice", ps.name),
                    );
                }
                permission_sets.push(ps);
            }
        }
        permission_sets
    }

    /// With a local directory, the roles the permission sets provision, added to `roles`: one for
    /// each account and permission set a rule assigns; a name a configured role already has in that
    /// account is a problem.
    pub(super) fn provision_roles(
        &mut self,
        directory: Option<&DirectorySettings>,
        assignment_rules: &[AssignmentRule],
        permission_sets: &[PermissionSet],
        managed: &[ManagedPolicy],
        roles: &mut Vec<Role>,
    ) {
        if let Some(d) = directory {
            let mut provisioned: Vec<(String, String)> = Vec::new();
            for rule in assignment_rules {
                for a in &rule.accounts {
                    let pair = (a.clone(), rule.permission_set.clone());
                    if !provisioned.contains(&pair) {
                        provisioned.push(pair);
                    }
                }
            }
            for (account, name) in provisioned {
                let Some(set) = permission_sets.iter().find(|s| s.name == name) else {
                    continue;
                };
                if let Some(role) = self.provision(set, &account, &d.role_prefix, managed) {
                    if roles.iter().any(|x| {
                        x.account == role.account && x.name.eq_ignore_ascii_case(&role.name)
                    }) {
                        self.err(
                            None,
                            format!(
                                "permission set '{name}' provisions role {} in account {account}, which is also configured as a role; rename one or change directory.permission_set_role_prefix",
                                role.name
                            ),
                        );
                    }
                    roles.push(role);
                }
            }
        }
    }

    /// The role a permission set provisions in an account, with its managed policies resolved there.
    fn provision(
        &mut self,
        set: &PermissionSet,
        account: &str,
        prefix: &str,
        managed: &[ManagedPolicy],
    ) -> Option<Role> {
        let what = format!("permission set '{}' in account {account}", set.name);
        let name = format!("{prefix}{}", set.name);
        if name.len() > 64 {
            self.err(
                None,
                format!("{what}: role name {name} is longer than 64 characters"),
            );
            return None;
        }
        let find = |n: &str| managed.iter().find(|m| m.account == account && m.name == n);
        let mut managed_policies = Vec::new();
        for n in &set.managed_policies {
            match find(n) {
                Some(m) => managed_policies.push((m.arn.clone(), Arc::clone(&m.policy))),
                None => {
                    self.err(
                        None,
                        format!("{what}: managed policy '{n}' is not defined in account {account}"),
                    );
                    return None;
                }
            }
        }
        let permissions_boundary = match &set.permissions_boundary {
            None => None,
            Some(n) => match find(n) {
                Some(m) => Some((m.arn.clone(), Arc::clone(&m.policy))),
                None => {
                    self.err(
                        None,
                        format!(
                            "{what}: permissions boundary '{n}' is not a managed policy of account {account}"
                        ),
                    );
                    return None;
                }
            },
        };
        let trust = match Policy::parse(
            &permission_set_trust_policy(account, set.mfa),
            PolicyKind::Trust,
        ) {
            Ok(p) => p,
            Err(e) => {
                self.err(None, format!("{what}: generated trust policy: {e}"));
                return None;
            }
        };
        let arn = crate::policy::arn::role(account, "/", &name);
        Some(Role {
            account: account.to_string(),
            role_id: role_id_for(&arn),
            arn,
            name,
            path: "/".into(),
            description: Some(format!(
                "Provisioned by permission set {}{}",
                set.name,
                set.description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )),
            max_session_duration: set.session_seconds,
            trust_policy: Arc::new(trust),
            policies: set.policies.clone(),
            managed_policies,
            permissions_boundary,
            tags: set.tags.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations_from_one_to_twelve_hours() {
        for (s, want) in [
            ("PT1H", Some(3600)),
            ("PT12H", Some(43200)),
            ("PT1H30M", Some(5400)),
            ("PT90M", Some(5400)),
            ("PT8H", Some(28800)),
            ("P1D", None),
            ("PT", Some(0)),
            ("PT1H60M", None),
            ("1H", None),
            ("PT-1H", None),
            ("PTxH", None),
        ] {
            assert_eq!(iso_duration(s), want, "{s}");
        }
    }

    #[test]
    fn generated_trust_policies_parse_and_carry_the_mfa_requirement() {
        for (mfa, needle) in [
            (MfaRequirement::None, None),
            (
                MfaRequirement::Required,
                Some(r#""aws:MultiFactorAuthPresent":"true""#),
            ),
            (
                MfaRequirement::Within(900),
                Some(r#""aws:MultiFactorAuthAge":"900""#),
            ),
        ] {
            let text = permission_set_trust_policy("111122223333", mfa);
            Policy::parse(&text, PolicyKind::Trust).expect("generated trust policy parses");
            match needle {
                Some(n) => assert!(text.contains(n), "{text}"),
                None => assert!(!text.contains("Condition"), "{text}"),
            }
        }
    }
}
