//! Who someone is → what they may assume: the assignment rules of the configuration applied to the
//! claims (or attributes) a provider vouched for, giving permission sets in accounts, each with the
//! rules that gave it and, for every rule, why it matched or not. Also the login record that keeps a
//! person's assignments as of their last login (rules are authoritative: what no rule gives at a
//! login is gone). Knows nothing of IdP protocols or HTTP.
//!
//! **Condition keys of rules.** Every claim is `claim:<name>` (nested claims by path,
//! `claim:address/country`; arrays of scalars are multi-valued). rolegate adds `rolegate:Provider`,
//! `rolegate:Subject`, `rolegate:Groups` (the provider's group claim, normalised),
//! `rolegate:Email`, `rolegate:EmailDomain`, `rolegate:Claims` (the names of the claims present)
//! and, for the local directory, `rolegate:LocalGroups`.
//!
//! **Provisioned groups.** For a provider whose people a SCIM client provisions, `group` rules
//! (and `rolegate:Groups`) see the groups the client's `groups` setting names: `"claim"` (the
//! default) the provider's group claim as above; `"provisioned"` the display names of the
//! provisioned groups the person is a member of (known before their first sign-in); `"both"` the
//! two together.
//!
//! **Missing and empty are different.** A claim the token does not carry is absent from the
//! context: `StringEquals` never matches it, negated operators and `…IfExists` do. A claim that is
//! present but empty (`""`, `[]`) is present: `StringEquals: ""` matches an empty string, and its
//! name is in `rolegate:Claims`. `Null` follows IAM and treats both as null, so to tell them apart
//! test `rolegate:Claims` (`ForAllValues:StringNotEquals {"rolegate:Claims": "department"}` holds
//! only when there is no `department` claim at all). For group rules both mean "in no group". A
//! group claim of the wrong type (an object) counts as missing and is reported in the explanation.
//!
//! **Verified addresses only.** An `email_domain` rule matches only an address the provider says it
//! verified: the claim `email_verified` is the JSON boolean `true`. Absent, `false`, the string
//! `"true"` (some IdPs send strings) or anything else is not verified, and the explanation says so;
//! a provider configured with `email_always_verified = true` (one that hands out verified addresses
//! only, e.g. a workforce directory) is trusted without the claim, though an explicit `false` is
//! still believed. The claim is strict on purpose: an unverified address in the domain is anyone
//! who can type it at a consumer IdP.

use crate::config::{AssignmentRule, Config, GroupSource, RuleMatch, LOCAL_PROVIDER, RULE_ACTION};
use crate::policy::{self, ContextValue, Effect, PolicySet, RequestContext};
use crate::store::{DirWrite, DirectoryStore, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Directory kind of login records.
const LOGIN_RECORD: &str = "assignments";

/// Someone a provider vouched for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The provider's name (or [`LOCAL_PROVIDER`]).
    pub provider: &'a str,
    /// The subject at that provider.
    pub subject: &'a str,
    /// Every claim or attribute.
    pub claims: &'a Map<String, Value>,
    /// Groups of the local directory (local users only).
    pub local_groups: &'a [String],
    /// The display names of the groups the provider's SCIM client provisioned the person in
    /// (`None`: not provisioned, or provisioned inactive). Whether `group` rules look at them is
    /// the client's `groups` setting.
    pub provisioned_groups: Option<&'a [String]>,
}

/// A permission set in an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Account id.
    pub account: String,
    /// Permission set name.
    pub permission_set: String,
    /// The role the permission set provisions in the account.
    pub role_arn: String,
    /// The rules (1-based, file order) that gave it.
    #[serde(default)]
    pub rules: Vec<usize>,
}

/// How one rule judged a subject.
#[derive(Debug, Clone, Serialize)]
pub struct RuleOutcome {
    /// The rule (1-based, file order).
    pub rule: usize,
    /// Its description, if any.
    pub description: Option<String>,
    /// What it assigns.
    pub permission_set: String,
    /// Where.
    pub accounts: Vec<String>,
    /// Whether it matched.
    pub matched: bool,
    /// Why, in words.
    pub reason: String,
}

/// The assignments of a subject and the reasons for them.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The provider's name.
    pub provider: String,
    /// The subject.
    pub subject: String,
    /// The provider's group claim, normalised; `None` when the claim is missing.
    pub groups: Option<Vec<String>>,
    /// The e-mail claim.
    pub email: Option<String>,
    /// Permission sets in accounts, ordered by account then permission set.
    pub assignments: Vec<Assignment>,
    /// Every rule of the provider, in file order.
    pub rules: Vec<RuleOutcome>,
    /// Problems with the claims worth telling an operator (a group claim of the wrong type).
    pub notes: Vec<String>,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The provider is not configured.
    #[error("provider '{0}' is not configured")]
    UnknownProvider(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A record kept changing between its read and its write, [`LOGIN_RECORD_ATTEMPTS`] times in a
    /// row: other sign-ins of the same subject are writing it. Nothing was written by this one;
    /// the sign-in may be tried again.
    #[error("{0}")]
    Contended(String),
}

/// Group claim settings of a provider.
struct GroupSettings<'a> {
    claim: &'a str,
    delimiter: Option<&'a str>,
    email_claim: &'a str,
    email_always_verified: bool,
}

fn group_settings<'a>(config: &'a Config, provider: &str) -> Option<GroupSettings<'a>> {
    if provider == LOCAL_PROVIDER {
        return Some(GroupSettings {
            claim: "groups",
            delimiter: None,
            email_claim: "email",
            email_always_verified: false,
        });
    }
    config
        .oidc_providers
        .iter()
        .find(|p| p.name == provider)
        .map(|p| GroupSettings {
            claim: &p.groups_claim,
            delimiter: p.groups_delimiter.as_deref(),
            email_claim: &p.email_claim,
            email_always_verified: p.email_always_verified,
        })
        .or_else(|| {
            config
                .saml_providers
                .iter()
                .find(|p| p.name == provider)
                .map(|p| GroupSettings {
                    claim: &p.groups_attribute,
                    delimiter: p.groups_delimiter.as_deref(),
                    email_claim: &p.email_attribute,
                    email_always_verified: p.email_always_verified,
                })
        })
}

/// A group claim as groups: arrays of strings (or numbers) as they are, a string as one group or,
/// with a delimiter, split on it with empty parts dropped. Every group is exactly as signed: nothing
/// is trimmed, so `" admins"` is not `admins` (a provider that writes `a, b` needs the delimiter
/// `", "`). `Err` for any other shape.
pub fn normalize_groups(value: &Value, delimiter: Option<&str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("a group entry is {other}, not a string")),
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) => match delimiter {
            Some(d) => s
                .split(d)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect(),
            None if s.is_empty() => Vec::new(),
            None => vec![s.clone()],
        },
        other => {
            return Err(format!(
                "the group claim is {other}, not an array or a string"
            ))
        }
    };
    let mut seen = std::collections::HashSet::new();
    out.retain(|g| seen.insert(g.clone()));
    Ok(out)
}

/// Whether the provider vouched for the e-mail address, and if not, why not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EmailVerification {
    /// `email_verified` is the boolean `true`.
    Claimed,
    /// The provider is configured with `email_always_verified`.
    Provider,
    /// Not verified; the words say what `email_verified` was.
    Not(String),
}

/// How the claims and the provider's setting vouch for the e-mail address: only the JSON boolean
/// `true` counts (not the string `"true"`), unless the provider hands out verified addresses only;
/// an explicit `false` (boolean or string) is believed even then.
fn email_verification(claims: &Map<String, Value>, always_verified: bool) -> EmailVerification {
    let claim = claims.get("email_verified");
    if claim == Some(&Value::Bool(true)) {
        return EmailVerification::Claimed;
    }
    // A SAML attribute is multi-valued: a single value is read as that value.
    let single = match claim {
        Some(Value::Array(a)) if a.len() == 1 => a.first(),
        other => other,
    };
    match (claim, single) {
        (_, Some(Value::Bool(false))) => EmailVerification::Not("email_verified is false".into()),
        (_, Some(Value::String(v))) if v == "false" => {
            EmailVerification::Not("email_verified is the string \"false\"".into())
        }
        _ if always_verified => EmailVerification::Provider,
        (None, _) => EmailVerification::Not("email_verified is absent".into()),
        (_, Some(Value::String(v))) => EmailVerification::Not(format!(
            "email_verified is the string {v:?}, not the boolean true"
        )),
        (Some(other), _) => {
            EmailVerification::Not(format!("email_verified is {other}, not the boolean true"))
        }
    }
}

fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// The request context a rule's condition is evaluated in.
pub fn rule_context(
    s: &Subject<'_>,
    groups: Option<&[String]>,
    email: Option<&str>,
) -> RequestContext {
    let mut ctx = RequestContext::new(RULE_ACTION, "*");
    crate::authz::context::add_claims(&mut ctx, "claim", s.claims);
    ctx.set("rolegate:Provider", ContextValue::Single(s.provider.into()));
    ctx.set("rolegate:Subject", ContextValue::Single(s.subject.into()));
    ctx.set(
        "rolegate:Claims",
        ContextValue::Multi(s.claims.keys().cloned().collect()),
    );
    if let Some(g) = groups {
        ctx.set("rolegate:Groups", ContextValue::Multi(g.to_vec()));
    }
    if let Some(e) = email {
        ctx.set("rolegate:Email", ContextValue::Single(e.into()));
        if let Some(d) = email_domain(e) {
            ctx.set("rolegate:EmailDomain", ContextValue::Single(d));
        }
    }
    if s.provider == LOCAL_PROVIDER {
        ctx.set(
            "rolegate:LocalGroups",
            ContextValue::Multi(s.local_groups.to_vec()),
        );
    }
    ctx
}

fn judge(
    rule: &AssignmentRule,
    s: &Subject<'_>,
    groups: Option<&[String]>,
    email: Option<&str>,
    email_verified: &EmailVerification,
    ctx: &RequestContext,
) -> (bool, String) {
    match &rule.matcher {
        RuleMatch::Group(g) => match groups {
            None => (false, format!("no group claim, so not in group '{g}'")),
            Some(gs) if gs.iter().any(|x| x == g) => (true, format!("member of group '{g}'")),
            Some(gs) => (
                false,
                format!("not in group '{g}' (groups: {})", display_list(gs)),
            ),
        },
        RuleMatch::LocalGroup(g) => {
            if s.local_groups.iter().any(|x| x.eq_ignore_ascii_case(g)) {
                (true, format!("member of local group '{g}'"))
            } else {
                (
                    false,
                    format!(
                        "not in local group '{g}' (local groups: {})",
                        display_list(s.local_groups)
                    ),
                )
            }
        }
        RuleMatch::EmailDomain(d) => match (email, email_verified) {
            (None, _) => (false, format!("no e-mail claim, so not in domain {d}")),
            (Some(e), _) if email_domain(e).as_deref() != Some(d.as_str()) => {
                (false, format!("e-mail {e} is not in domain {d}"))
            }
            (Some(e), EmailVerification::Not(why)) => (
                false,
                format!(
                    "e-mail not verified: {e} is in domain {d}, but {why} (only the boolean true counts, unless the provider is set to email_always_verified)"
                ),
            ),
            (Some(e), EmailVerification::Claimed) => (
                true,
                format!("e-mail {e} is in domain {d} and verified (email_verified is true)"),
            ),
            (Some(e), EmailVerification::Provider) => (
                true,
                format!(
                    "e-mail {e} is in domain {d} and verified (the provider hands out verified addresses only)"
                ),
            ),
        },
        RuleMatch::Condition(p) => {
            let set = PolicySet {
                identity: vec![("condition", p.as_ref())],
                ..PolicySet::default()
            };
            if policy::evaluate(&set, ctx).effect == Effect::Allow {
                (true, "the condition holds".to_string())
            } else {
                let explanation = policy::explain(&set, ctx);
                (false, format!("the condition does not hold: {explanation}"))
            }
        }
    }
}

fn display_list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// Applies every rule of the subject's provider.
pub fn evaluate(config: &Config, s: &Subject<'_>) -> Result<Evaluation, MappingError> {
    let settings = group_settings(config, s.provider)
        .ok_or_else(|| MappingError::UnknownProvider(s.provider.to_string()))?;
    let mut notes = Vec::new();
    let source = config
        .scim_client_for(s.provider)
        .map_or(GroupSource::Claim, |c| c.groups);
    let claimed = match s.claims.get(settings.claim) {
        None => None,
        Some(_) if !source.claim() => None,
        Some(v) => match normalize_groups(v, settings.delimiter) {
            Ok(g) => Some(g),
            Err(e) => {
                notes.push(format!("claim '{}' ignored: {e}", settings.claim));
                None
            }
        },
    };
    // Provisioned groups (by display name), per the SCIM client's `groups` setting: instead of
    // the group claim, or besides it.
    let groups = match (
        claimed,
        s.provisioned_groups.filter(|_| source.provisioned()),
    ) {
        (c, None) => c,
        (None, Some(p)) => Some(p.to_vec()),
        (Some(mut c), Some(p)) => {
            for g in p {
                if !c.contains(g) {
                    c.push(g.clone());
                }
            }
            Some(c)
        }
    };
    let email = s
        .claims
        .get(settings.email_claim)
        .and_then(|v| match v {
            Value::String(s) => Some(s.as_str()),
            // A SAML attribute: multi-valued, used when it has exactly one value.
            Value::Array(a) if a.len() == 1 => a[0].as_str(),
            _ => None,
        })
        .map(String::from);
    let email_verified = email_verification(s.claims, settings.email_always_verified);
    let ctx = rule_context(s, groups.as_deref(), email.as_deref());
    let mut outcomes = Vec::new();
    let mut assignments: Vec<Assignment> = Vec::new();
    let prefix = config
        .directory
        .as_ref()
        .map(|d| d.role_prefix.as_str())
        .unwrap_or(crate::config::DEFAULT_ROLE_PREFIX);
    for rule in config
        .assignment_rules
        .iter()
        .filter(|r| r.provider == s.provider)
    {
        let (matched, reason) = judge(
            rule,
            s,
            groups.as_deref(),
            email.as_deref(),
            &email_verified,
            &ctx,
        );
        if matched {
            for account in &rule.accounts {
                match assignments
                    .iter_mut()
                    .find(|a| a.account == *account && a.permission_set == rule.permission_set)
                {
                    Some(a) => a.rules.push(rule.index + 1),
                    None => assignments.push(Assignment {
                        account: account.clone(),
                        permission_set: rule.permission_set.clone(),
                        role_arn: format!(
                            "arn:aws:iam::{account}:role/{prefix}{}",
                            rule.permission_set
                        ),
                        rules: vec![rule.index + 1],
                    }),
                }
            }
        }
        outcomes.push(RuleOutcome {
            rule: rule.index + 1,
            description: rule.description.clone(),
            permission_set: rule.permission_set.clone(),
            accounts: rule.accounts.clone(),
            matched,
            reason,
        });
    }
    assignments.sort_by(|a, b| {
        (a.account.as_str(), a.permission_set.as_str())
            .cmp(&(b.account.as_str(), b.permission_set.as_str()))
    });
    Ok(Evaluation {
        provider: s.provider.to_string(),
        subject: s.subject.to_string(),
        groups,
        email,
        assignments,
        rules: outcomes,
        notes,
    })
}

/// A person's assignments as of their last login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRecord {
    /// The provider's name.
    pub provider: String,
    /// The subject.
    pub subject: String,
    /// Unix seconds (to [`LOGIN_RECORD_RESOLUTION`] when the assignments stayed the same).
    pub last_login: i64,
    /// What the rules gave at that login.
    pub assignments: Vec<Assignment>,
}

/// What a login changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoginChanges {
    /// Assignments the person did not have at the previous login.
    pub added: Vec<Assignment>,
    /// Assignments the person had and no longer has.
    pub removed: Vec<Assignment>,
}

/// Every login record (who signed in, and what the rules gave them then), for the operators'
/// view of who has access to what; a record that no longer decodes is left out.
pub async fn login_records(store: &dyn Store) -> Result<Vec<LoginRecord>, MappingError> {
    Ok(store
        .dir_list(LOGIN_RECORD)
        .await?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str(&v.value).ok())
        .collect())
}

fn record_key(provider: &str, subject: &str) -> String {
    format!("{provider}\u{1f}{subject}")
}

fn same_target(a: &Assignment, b: &Assignment) -> bool {
    a.account == b.account && a.permission_set == b.permission_set
}

/// A login record whose assignments a login would not change is rewritten at most this often
/// (seconds): its `last_login` is that precise.
pub const LOGIN_RECORD_RESOLUTION: i64 = 60;

/// How many times [`record_login`] reads and writes a record that keeps changing under it before it
/// gives up with [`MappingError::Contended`].
pub const LOGIN_RECORD_ATTEMPTS: usize = 8;

/// Replaces the stored assignments of the evaluation's subject with the evaluation's (rules are
/// authoritative at every login) and reports what changed. A record that already holds these
/// assignments from a login less than [`LOGIN_RECORD_RESOLUTION`] ago is left as it is. A record
/// changed by another writer between the read and the write is read again, at most
/// [`LOGIN_RECORD_ATTEMPTS`] times: then [`MappingError::Contended`], and nothing written.
pub async fn record_login(
    store: &dyn DirectoryStore,
    e: &Evaluation,
    now: i64,
) -> Result<LoginChanges, MappingError> {
    record_login_after(store, e, now, None).await
}

/// The login record of a provider's subject, read ahead of [`record_login_after`] so that the
/// read overlaps other work of the sign-in (the password check).
pub struct LoginRecordRead {
    key: String,
    current: Option<crate::store::Versioned>,
}

/// Reads the login record of `subject` at `provider`; `None` when the store did not answer
/// (`record_login_after` then reads it itself).
pub async fn read_login_record(
    store: &dyn DirectoryStore,
    provider: &str,
    subject: &str,
) -> Option<LoginRecordRead> {
    let key = record_key(provider, subject);
    let current = store.dir_get(LOGIN_RECORD, &key).await.ok()?;
    Some(LoginRecordRead { key, current })
}

/// [`record_login`], starting from a record read ahead if it is this subject's: a record changed
/// since is caught by the write's version check and read again.
pub async fn record_login_after(
    store: &dyn DirectoryStore,
    e: &Evaluation,
    now: i64,
    ahead: Option<LoginRecordRead>,
) -> Result<LoginChanges, MappingError> {
    let key = record_key(&e.provider, &e.subject);
    let mut ahead = ahead.filter(|r| r.key == key).map(|r| r.current);
    let record = LoginRecord {
        provider: e.provider.clone(),
        subject: e.subject.clone(),
        last_login: now,
        assignments: e.assignments.clone(),
    };
    let value = serde_json::to_string(&record)
        .map_err(|err| StoreError::Invalid(format!("login record: {err}")))?;
    for _ in 0..LOGIN_RECORD_ATTEMPTS {
        let current = match ahead.take() {
            Some(current) => current,
            None => store.dir_get(LOGIN_RECORD, &key).await?,
        };
        let stored = match &current {
            Some(v) => Some(
                serde_json::from_str::<LoginRecord>(&v.value)
                    .map_err(|err| StoreError::Corrupt(format!("login record {key}: {err}")))?,
            ),
            None => None,
        };
        if stored.as_ref().is_some_and(|r| {
            r.assignments == e.assignments
                && (now - LOGIN_RECORD_RESOLUTION..=now).contains(&r.last_login)
        }) {
            // Nothing changed since a login moments ago: no write, so the logins of one person
            // (on any replica) do not all update one row.
            return Ok(LoginChanges::default());
        }
        let previous = stored.map(|r| r.assignments).unwrap_or_default();
        let write = DirWrite::put(LOGIN_RECORD, &key, current.as_ref(), value.clone());
        if store.dir_write(&[write]).await? {
            return Ok(LoginChanges {
                added: e
                    .assignments
                    .iter()
                    .filter(|a| !previous.iter().any(|p| same_target(a, p)))
                    .cloned()
                    .collect(),
                removed: previous
                    .iter()
                    .filter(|p| !e.assignments.iter().any(|a| same_target(a, p)))
                    .cloned()
                    .collect(),
            });
        }
    }
    Err(MappingError::Contended(format!(
        "the login record of {} at {} changed under each of {LOGIN_RECORD_ATTEMPTS} attempts to \
         write it (other sign-ins of the same subject): not recorded; try again",
        e.subject, e.provider
    )))
}

/// The stored assignments of a subject as of their last login.
pub async fn login_record(
    store: &dyn Store,
    provider: &str,
    subject: &str,
) -> Result<Option<LoginRecord>, MappingError> {
    match store
        .dir_get(LOGIN_RECORD, &record_key(provider, subject))
        .await?
    {
        Some(v) => Ok(Some(serde_json::from_str(&v.value).map_err(|err| {
            StoreError::Corrupt(format!("login record {provider}/{subject}: {err}"))
        })?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
