//! The policy simulator: `SimulatePrincipalPolicy` (a configured role's identity policies and
//! permissions boundary, plus policies given in the request) and `SimulateCustomPolicy` (only
//! policies given in the request), each evaluated with rolegate's policy engine for every action ×
//! resource asked about.
//!
//! The caller signs for `iam` and must itself be allowed `iam:SimulatePrincipalPolicy` on the role
//! (or `iam:SimulateCustomPolicy` on `*`) by its own session's policies; a role of another account
//! is reported as not found.
//!
//! The simulated request context holds only what the request supplies (`ContextEntries`, and
//! `ResourceOwner` as `aws:ResourceAccount`), plus, when simulating a role, the principal keys
//! `aws:PrincipalArn`, `aws:PrincipalAccount` and `aws:PrincipalType`; condition keys the policies
//! look at but the context lacks are reported in `MissingContextValues`, as IAM does. The principal
//! that resource-policy `Principal` elements are matched against is `CallerArn` when given, else
//! the simulated role. `ContextEntries` may name any key, those describing a session included
//! (keys that [`crate::authz::context::reserved`] keeps from services asking `/v1/authorize`): a
//! simulation grants nothing, and IAM's simulator takes such keys from the request too.
//!
//! A resource policy combines with the simulated caller's policies by the same rule as every
//! decision (`policy::evaluate`): within the caller's account as AWS does within one account, across
//! accounts only when both sides allow. The resource's account is its ARN's account field, else
//! `ResourceOwner`, else — as IAM's simulator assumes — the caller's own (`CallerArn`'s account, or
//! the simulated role's).
//!
//! Statement positions (`StartPosition`/`EndPosition`) are given for policies whose text is in the
//! request: lines count from 1 and columns from 1, each position being the one just after the
//! statement's opening or closing brace (IAM's convention). They are found by scanning the text for
//! the elements of its top-level `Statement`. Policies from the configuration are kept parsed, not
//! as text, so their statements carry no positions.

use super::{invalid_input, no_such_entity, response, SIGNING_NAME};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn::authenticate_for;
use crate::authz::decide::{decide, Question};
use crate::config::Role;
use crate::credentials::{OpenSession, SessionClaims};
use crate::policy::{
    self, ContextValue, Decision, Effect, Policy, PolicyKind, PolicyScope, PolicySet, Principal,
    RequestContext, ResourceAccount, StatementEffect,
};
use crate::query::params::Params;
use crate::query::xml::XmlWriter;
use crate::query::{QueryRequest, StsError};
use std::sync::Arc;

/// Results per page when `MaxItems` is not given.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// Largest `MaxItems`.
pub const MAX_ITEMS: usize = 1000;
/// Longest policy document the simulator accepts (`policyDocumentType`).
pub const MAX_POLICY_DOCUMENT_CHARS: usize = 131_072;

/// `SourcePolicyType` of policies given in the request.
const INPUT_POLICY_TYPE: &str = "IAM Policy";
/// `EvalDecisionDetails` keys.
const DETAIL_IDENTITY: &str = "IAM Policy";
const DETAIL_BOUNDARY: &str = "Permissions Boundary Policy";
const DETAIL_RESOURCE: &str = "Resource Policy";

/// A line and column in a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// Column (see the module documentation).
    pub column: usize,
}

/// A policy taking part in a simulation, and how the response names it.
struct Source {
    /// `SourcePolicyId`.
    id: String,
    /// `SourcePolicyType`.
    source_type: &'static str,
    /// Its role in the policy set.
    scope: PolicyScope,
    policy: Arc<Policy>,
    /// Start and end of each statement; empty when the text is not known.
    positions: Vec<(Position, Position)>,
}

/// A statement that decided a result, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Matched {
    id: String,
    source_type: &'static str,
    span: Option<(Position, Position)>,
}

/// The decision for one action on one resource, with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    decision: Effect,
    matched: Vec<Matched>,
    missing: Vec<String>,
    details: Vec<(&'static str, Effect)>,
    /// `Some` when a permissions boundary took part.
    allowed_by_boundary: Option<bool>,
}

/// One `EvaluationResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EvalResult {
    action: String,
    resource: String,
    outcome: Outcome,
    /// Whether `ResourceArns` were given (then `ResourceSpecificResults` is written).
    resource_specific: bool,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    results: Vec<EvalResult>,
    /// The marker of the next page, when there is one.
    next: Option<usize>,
}

/// Everything a simulation evaluates.
struct Simulation {
    sources: Vec<Source>,
    actions: Vec<String>,
    resources: Vec<String>,
    resources_given: bool,
    principal: Option<Principal>,
    /// The account of the simulated caller, when known.
    principal_account: Option<String>,
    /// `ResourceOwner`: the account of resources whose ARN names none.
    resource_owner: Option<String>,
    /// Context keys, applied in order (later ones replace earlier ones).
    keys: Vec<(String, ContextValue)>,
    max_items: usize,
    marker: usize,
}

/// The parameters both simulations share.
struct Common {
    actions: Vec<String>,
    resources: Vec<String>,
    resources_given: bool,
    inputs: Vec<Source>,
    boundary: Option<Source>,
    resource_policy: Option<Source>,
    resource_owner: Option<String>,
    caller_arn: Option<String>,
    entries: Vec<(String, ContextValue)>,
    max_items: usize,
    marker: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Parameters

fn check_length(value: &str, member: &str, min: usize, max: usize) -> Result<(), StsError> {
    let n = value.chars().count();
    if n < min {
        return Err(StsError::validation(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(StsError::validation(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A list member: its values, or a validation error when it is required and absent or empty
/// (an empty list is sent as the bare parameter name with an empty value).
fn list<'p>(
    params: &'p Params,
    name: &str,
    member: &str,
    required: bool,
) -> Result<Vec<&'p str>, StsError> {
    let items = params.list(name, "")?;
    if items.is_empty() && required {
        return Err(match params.get(name)? {
            Some(_) => StsError::validation(
                "[]",
                member,
                "Member must have length greater than or equal to 1",
            ),
            None => StsError::missing(member),
        });
    }
    Ok(items)
}

/// Checks a policy document against `policyDocumentType` and parses it.
fn policy_source(
    text: &str,
    id: String,
    member: &str,
    kind: PolicyKind,
    scope: PolicyScope,
    source_type: &'static str,
) -> Result<Source, StsError> {
    check_length(text, member, 1, MAX_POLICY_DOCUMENT_CHARS)?;
    if !text
        .chars()
        .all(|c| matches!(c, '\u{09}' | '\u{0A}' | '\u{0D}' | '\u{20}'..='\u{FF}'))
    {
        return Err(StsError::validation(
            text,
            member,
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    let policy =
        Policy::parse(text, kind).map_err(|e| StsError::malformed_policy(format!("{id}: {e}")))?;
    Ok(Source {
        positions: statement_positions(text),
        id,
        source_type,
        scope,
        policy: Arc::new(policy),
    })
}

fn policy_list(
    params: &Params,
    name: &str,
    member: &str,
    required: bool,
    scope: PolicyScope,
) -> Result<Vec<Source>, StsError> {
    list(params, name, member, required)?
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            policy_source(
                text,
                format!("{name}.{}", i + 1),
                &format!("{member}.{}.member", i + 1),
                PolicyKind::Inline,
                scope,
                INPUT_POLICY_TYPE,
            )
        })
        .collect()
}

/// The type of a `ContextEntries` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    String,
    Numeric,
    Boolean,
    Ip,
    Binary,
    Date,
}

const KEY_TYPES: &str =
    "[string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, binary, binaryList, date, dateList]";

fn key_type(s: &str) -> Option<(KeyType, bool)> {
    Some(match s {
        "string" => (KeyType::String, false),
        "stringList" => (KeyType::String, true),
        "numeric" => (KeyType::Numeric, false),
        "numericList" => (KeyType::Numeric, true),
        "boolean" => (KeyType::Boolean, false),
        "booleanList" => (KeyType::Boolean, true),
        "ip" => (KeyType::Ip, false),
        "ipList" => (KeyType::Ip, true),
        "binary" => (KeyType::Binary, false),
        "binaryList" => (KeyType::Binary, true),
        "date" => (KeyType::Date, false),
        "dateList" => (KeyType::Date, true),
        _ => return None,
    })
}

fn is_epoch(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if is_epoch(s) || DateTime::parse_from_rfc3339(s).is_ok() {
        return true;
    }
    if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        || (s.len() == 7 && NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").is_ok())
    {
        return true;
    }
    let local = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix('z'))
        .unwrap_or(s);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(local, f).is_ok())
        || DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%:z").is_ok()
}

/// The value as the policy engine sees it, or why it is not one of `t`.
fn typed_value(t: KeyType, v: &str) -> Result<String, &'static str> {
    use base64::Engine;
    let ok = match t {
        KeyType::String => true,
        KeyType::Numeric => v.parse::<i128>().is_ok() || v.parse::<f64>().is_ok_and(f64::is_finite),
        KeyType::Boolean => {
            return if v.eq_ignore_ascii_case("true") {
                Ok("true".into())
            } else if v.eq_ignore_ascii_case("false") {
                Ok("false".into())
            } else {
                Err("a boolean (true or false)")
            }
        }
        KeyType::Ip => v.parse::<std::net::IpAddr>().is_ok() || v.parse::<ipnet::IpNet>().is_ok(),
        KeyType::Binary => base64::engine::general_purpose::STANDARD.decode(v).is_ok(),
        KeyType::Date => is_date(v),
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(match t {
            KeyType::Numeric => "a number",
            KeyType::Ip => "an IP address or CIDR block",
            KeyType::Binary => "base64",
            KeyType::Date => "a date (ISO 8601 or epoch seconds)",
            KeyType::String | KeyType::Boolean => "valid",
        })
    }
}

/// `ContextEntries`: each member's `ContextKeyName`, `ContextKeyType` and `ContextKeyValues`, as
/// context keys with typed values (list types give multivalued keys).
fn context_entries(params: &Params) -> Result<Vec<(String, ContextValue)>, StsError> {
    let names = params.list("ContextEntries", ".ContextKeyName")?;
    let types = params.list("ContextEntries", ".ContextKeyType")?;
    if names.len() != types.len() {
        return Err(invalid_input(
            "Each member of ContextEntries needs a ContextKeyName and a ContextKeyType",
        ));
    }
    let mut out: Vec<(String, ContextValue)> = Vec::with_capacity(names.len());
    for (i, (name, ty)) in names.iter().zip(types.iter()).enumerate() {
        let n = i + 1;
        check_length(
            name,
            &format!("contextEntries.{n}.member.contextKeyName"),
            5,
            256,
        )?;
        let Some((t, is_list)) = key_type(ty) else {
            return Err(StsError::validation(
                ty,
                &format!("contextEntries.{n}.member.contextKeyType"),
                &format!("Member must satisfy enum value set: {KEY_TYPES}"),
            ));
        };
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Err(invalid_input(format!(
                "Context key {name} is given more than once in ContextEntries"
            )));
        }
        let raw = params.list(&format!("ContextEntries.member.{n}.ContextKeyValues"), "")?;
        let mut values = Vec::with_capacity(raw.len());
        for v in raw {
            values.push(typed_value(t, v).map_err(|what| {
                let shown: String = v.chars().take(64).collect();
                invalid_input(format!(
                    "Value '{shown}' of context key {name} is not {what} (ContextKeyType {ty})"
                ))
            })?);
        }
        let value = if is_list {
            ContextValue::Multi(values)
        } else {
            match <[String; 1]>::try_from(values) {
                Ok([one]) => ContextValue::Single(one),
                Err(v) => {
                    return Err(invalid_input(format!(
                        "Context key {name} of type {ty} needs exactly one value, not {}",
                        v.len()
                    )))
                }
            }
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// The account of an ARN (its fifth field), when it is 12 digits.
fn arn_account(arn: &str) -> Option<&str> {
    policy::arn_account(arn).filter(|a| policy::is_account_id(a))
}

impl Common {
    fn parse(params: &Params, custom: bool) -> Result<Self, StsError> {
        for unsupported in ["ResourceHandlingOption"] {
            if params.get(unsupported)?.is_some_and(|v| !v.is_empty()) {
                return Err(invalid_input(format!(
                    "{unsupported} is not supported: rolegate simulates requests without service-specific scenarios"
                )));
            }
        }
        let excluded = params.list("PolicyExclusionList", ".PolicyType")?.len()
            + params.list("PolicyExclusionList", ".PolicyArn")?.len()
            + params
                .list("PolicyExclusionList", ".InlinePolicyIdentifier.PolicyName")?
                .len();
        let organizations = params
            .list(
                "OrderedOrganizationPolicyInputList.member.1.ServiceControlPolicyInputList",
                "",
            )?
            .len();
        if excluded > 0 || organizations > 0 {
            return Err(invalid_input(
                "PolicyExclusionList and OrderedOrganizationPolicyInputList are not supported",
            ));
        }

        let inputs = policy_list(
            params,
            "PolicyInputList",
            "policyInputList",
            custom,
            PolicyScope::Identity,
        )?;
        let mut boundaries = policy_list(
            params,
            "PermissionsBoundaryPolicyInputList",
            "permissionsBoundaryPolicyInputList",
            false,
            PolicyScope::Boundary,
        )?;
        if boundaries.len() > 1 {
            return Err(invalid_input(
                "PermissionsBoundaryPolicyInputList may contain only one permissions boundary",
            ));
        }
        let boundary = boundaries.pop();

        let actions: Vec<String> = list(params, "ActionNames", "actionNames", true)?
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                check_length(a, &format!("actionNames.{}.member", i + 1), 3, 128)?;
                match a.split_once(':') {
                    Some((svc, op)) if !svc.is_empty() && !op.is_empty() => Ok(a.to_string()),
                    _ => Err(invalid_input(format!(
                        "Action name {a} must include a service prefix, such as iam:CreateUser"
                    ))),
                }
            })
            .collect::<Result<_, _>>()?;

        let given = list(params, "ResourceArns", "resourceArns", false)?;
        let resources_given = !given.is_empty();
        let resources: Vec<String> = if resources_given {
            given
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    check_length(r, &format!("resourceArns.{}.member", i + 1), 1, 2048)?;
                    if r != "*" && !r.starts_with("arn:") {
                        return Err(invalid_input(format!("Resource {r} must be an ARN or *")));
                    }
                    Ok(r.to_string())
                })
                .collect::<Result<_, _>>()?
        } else {
            vec!["*".to_string()]
        };

        let resource_policy = match params.get("ResourcePolicy")? {
            Some(text) => Some(policy_source(
                text,
                "ResourcePolicy".to_string(),
                "resourcePolicy",
                PolicyKind::Resource,
                PolicyScope::Resource,
                "resource",
            )?),
            None => None,
        };

        let resource_owner = match params.get("ResourceOwner")? {
            Some(owner) => {
                check_length(owner, "resourceOwner", 1, 2048)?;
                let account = if owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()) {
                    owner
                } else {
                    arn_account(owner).ok_or_else(|| {
                        invalid_input(format!(
                            "ResourceOwner {owner} must be an account ARN such as arn:aws:iam::111122223333:root"
                        ))
                    })?
                };
                Some(account.to_string())
            }
            None => None,
        };

        let caller_arn = match params.get("CallerArn")? {
            Some(arn) => {
                check_length(arn, "callerArn", 1, 2048)?;
                if arn_account(arn).is_none() {
                    return Err(invalid_input(format!(
                        "CallerArn {arn} must be the ARN of a principal"
                    )));
                }
                Some(arn.to_string())
            }
            None => None,
        };

        let entries = context_entries(params)?;

        let max_items = match params.get("MaxItems")? {
            Some(v) => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| StsError::validation(v, "maxItems", "Member must be a number"))?;
                if n < 1 {
                    return Err(StsError::validation(
                        v,
                        "maxItems",
                        "Member must have value greater than or equal to 1",
                    ));
                }
                if n > MAX_ITEMS as i64 {
                    return Err(StsError::validation(
                        v,
                        "maxItems",
                        &format!("Member must have value less than or equal to {MAX_ITEMS}"),
                    ));
                }
                n as usize
            }
            None => DEFAULT_MAX_ITEMS,
        };
        let marker = match params.get("Marker")? {
            Some(m) => {
                check_length(m, "marker", 1, 320)?;
                Some(m.to_string())
            }
            None => None,
        };

        Ok(Self {
            actions,
            resources,
            resources_given,
            inputs,
            boundary,
            resource_policy,
            resource_owner,
            caller_arn,
            entries,
            max_items,
            marker,
        })
    }

    /// The marker as an offset into the `actions × resources` results.
    fn offset(&self) -> Result<usize, StsError> {
        let total = self.actions.len() * self.resources.len();
        match &self.marker {
            None => Ok(0),
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|n| *n < total)
                .ok_or_else(|| invalid_input("Invalid Marker")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Principals

/// A session ARN `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` as (account, role name, session).
fn parse_session_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:sts::")?;
    let (account, resource) = rest.split_once(':')?;
    let (name, session) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
    (!name.is_empty() && !session.is_empty() && !session.contains('/'))
        .then_some((account, name, session))
}

/// The configured role of a role session, by account and role name (names are unique per account).
fn role_of_session<'a>(app: &'a App, account: &str, name: &str) -> Option<&'a Role> {
    app.config
        .roles
        .iter()
        .find(|r| r.account == account && r.name == name)
}

/// What `PolicySourceArn` names.
enum SourceArn<'a> {
    /// A role, by ARN.
    Role(&'a str),
    /// A session of a role.
    Session {
        account: &'a str,
        role_name: &'a str,
        session: &'a str,
    },
    /// Another IAM entity (user or group), which rolegate does not have.
    Other { kind: &'a str, name: &'a str },
}

fn parse_source_arn(arn: &str) -> Result<SourceArn<'_>, StsError> {
    if let Some((account, role_name, session)) = parse_session_arn(arn) {
        return Ok(SourceArn::Session {
            account,
            role_name,
            session,
        });
    }
    let bad = || invalid_input(format!("ARN {arn} is not valid."));
    if arn_account(arn).is_none() {
        return Err(bad());
    }
    let mut f = arn.splitn(6, ':');
    let service = f.nth(2).unwrap_or_default();
    let resource = f.nth(2).unwrap_or_default();
    let (kind, path_and_name) = resource.split_once('/').ok_or_else(bad)?;
    if service != "iam" || !matches!(kind, "role" | "user" | "group") {
        return Err(bad());
    }
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        return Err(bad());
    }
    Ok(if kind == "role" {
        SourceArn::Role(arn)
    } else {
        SourceArn::Other { kind, name }
    })
}

/// How a `CallerArn` is known to resource policies: the ARN, the role of a role session, the
/// account (as session principals are).
fn caller_principal(app: &App, arn: &str) -> Principal {
    let mut aws = vec![arn.to_string()];
    if let Some((account, name, _)) = parse_session_arn(arn) {
        if let Some(role) = role_of_session(app, account, name) {
            aws.push(role.arn.clone());
        }
    }
    if let Some(account) = arn_account(arn) {
        aws.push(format!("arn:aws:iam::{account}:root"));
        aws.push(account.to_string());
    }
    Principal::aws(aws)
}

/// Principal keys for a `CallerArn` (a role session's `aws:PrincipalArn` is its role).
fn caller_keys(app: &App, arn: &str) -> Vec<(String, ContextValue)> {
    let mut keys = Vec::new();
    let principal_arn = parse_session_arn(arn)
        .and_then(|(account, name, _)| role_of_session(app, account, name))
        .map_or_else(|| arn.to_string(), |r| r.arn.clone());
    keys.push((
        "aws:PrincipalArn".into(),
        ContextValue::Single(principal_arn),
    ));
    if let Some(account) = arn_account(arn) {
        keys.push((
            "aws:PrincipalAccount".into(),
            ContextValue::Single(account.into()),
        ));
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// Authorization of the caller

async fn authorize(
    app: &App,
    req: &QueryRequest<'_>,
    caller: &SessionClaims,
    action: &str,
    resource: &str,
    ev: &mut AuditEvent,
) -> Result<(), StsError> {
    let q =
        Question::new(caller, action, resource).from_address(req.source_ip, req.secure_transport);
    let verdict = decide(app, q).await?;
    if verdict.allowed() {
        return Ok(());
    }
    let reason = verdict.audit_denial(ev);
    let why = if verdict.explicit_deny() {
        "with an explicit deny in an identity-based policy".to_string()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    Err(StsError::access_denied(format!("{} {why}", verdict.denial_message())).because(reason))
}

async fn authenticate(
    app: &App,
    req: &QueryRequest<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, StsError> {
    let caller = authenticate_for(app, req, ev, SIGNING_NAME).await?;
    ev.principal = Some(caller.principal.arn());
    ev.access_key_id = Some(caller.access_key_id.clone());
    if let Some(f) = &caller.federation {
        ev.provider = Some(f.provider_arn.clone());
        ev.subject = Some(f.subject.clone());
    }
    Ok(caller)
}

// ---------------------------------------------------------------------------------------------
// Actions

/// `SimulatePrincipalPolicy`.
pub async fn simulate_principal_policy(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let caller = authenticate(app, req, ev).await?;
    let source_arn = params.required("PolicySourceArn", "policySourceArn")?;
    check_length(source_arn, "policySourceArn", 20, 2048)?;
    let target = parse_source_arn(source_arn)?;
    let common = Common::parse(params, false)?;
    let marker = common.offset()?;

    let (role, session) = match &target {
        SourceArn::Role(arn) => (app.config.role(arn), None),
        SourceArn::Session {
            account,
            role_name,
            session,
        } => (role_of_session(app, account, role_name), Some(*session)),
        SourceArn::Other { .. } => (None, None),
    };
    // Authorized on the role (a session ARN stands for its role); on the ARN as given when it
    // names nothing, so that the answer for an unknown entity needs the same permission.
    let resource = role.map_or(source_arn, |r| r.arn.as_str());
    ev.role_arn = Some(resource.to_string());
    authorize(
        app,
        req,
        &caller,
        "iam:SimulatePrincipalPolicy",
        resource,
        ev,
    )
    .await?;
    let not_found = || match &target {
        SourceArn::Role(arn) => {
            let name = arn.rsplit('/').next().unwrap_or_default();
            no_such_entity(format!("The role with name {name} cannot be found."))
        }
        SourceArn::Session { role_name, .. } => {
            no_such_entity(format!("The role with name {role_name} cannot be found."))
        }
        SourceArn::Other { kind, name } => {
            no_such_entity(format!("The {kind} with name {name} cannot be found."))
        }
    };
    let role = match role {
        Some(r) if r.account == caller.principal.account() => r,
        Some(r) => {
            return Err(not_found().because(format!(
                "role {} belongs to account {}, not to the caller's account {}",
                r.arn,
                r.account,
                caller.principal.account()
            )))
        }
        None => return Err(not_found().because(format!("{source_arn} is not a configured role"))),
    };

    let mut sources: Vec<Source> = Vec::new();
    for (name, p) in &role.policies {
        sources.push(Source {
            id: name.clone(),
            source_type: "role",
            scope: PolicyScope::Identity,
            policy: Arc::clone(p),
            positions: Vec::new(),
        });
    }
    for (arn, p) in &role.managed_policies {
        sources.push(Source {
            id: arn.clone(),
            source_type: "user-managed",
            scope: PolicyScope::Identity,
            policy: Arc::clone(p),
            positions: Vec::new(),
        });
    }
    let Common {
        actions,
        resources,
        resources_given,
        inputs,
        boundary,
        resource_policy,
        resource_owner,
        caller_arn,
        entries,
        max_items,
        ..
    } = common;
    sources.extend(inputs);
    match boundary {
        Some(b) => sources.push(b),
        None => {
            if let Some((arn, p)) = &role.permissions_boundary {
                sources.push(Source {
                    id: arn.clone(),
                    source_type: "user-managed",
                    scope: PolicyScope::Boundary,
                    policy: Arc::clone(p),
                    positions: Vec::new(),
                });
            }
        }
    }
    sources.extend(resource_policy);

    let principal = match &caller_arn {
        Some(arn) => caller_principal(app, arn),
        None => {
            let mut aws = Vec::new();
            if session.is_some() {
                aws.push(source_arn.to_string());
            }
            aws.push(role.arn.clone());
            aws.push(format!("arn:aws:iam::{}:root", role.account));
            aws.push(role.account.clone());
            Principal::aws(aws)
        }
    };
    let mut keys: Vec<(String, ContextValue)> = vec![
        ("aws:PrincipalArn".into(), role.arn.as_str().into()),
        ("aws:PrincipalAccount".into(), role.account.as_str().into()),
        ("aws:PrincipalType".into(), "AssumedRole".into()),
    ];
    if let Some(s) = session {
        keys.push((
            "aws:userid".into(),
            ContextValue::Single(format!("{}:{s}", role.role_id)),
        ));
    }
    if let Some(owner) = &resource_owner {
        keys.push((
            "aws:ResourceAccount".into(),
            ContextValue::Single(owner.clone()),
        ));
    }
    keys.extend(entries);
    let principal_account = caller_arn
        .as_deref()
        .and_then(arn_account)
        .unwrap_or(&role.account)
        .to_string();

    let sim = Simulation {
        sources,
        actions,
        resources,
        resources_given,
        principal: Some(principal),
        principal_account: Some(principal_account),
        resource_owner,
        keys,
        max_items,
        marker,
    };
    let page = sim.run();
    Ok(render("SimulatePrincipalPolicy", &page, req.request_id))
}

/// `SimulateCustomPolicy`.
pub async fn simulate_custom_policy(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let caller = authenticate(app, req, ev).await?;
    let common = Common::parse(params, true)?;
    let marker = common.offset()?;
    authorize(app, req, &caller, "iam:SimulateCustomPolicy", "*", ev).await?;

    let Common {
        actions,
        resources,
        resources_given,
        inputs,
        boundary,
        resource_policy,
        resource_owner,
        caller_arn,
        entries,
        max_items,
        ..
    } = common;
    let mut sources = inputs;
    sources.extend(boundary);
    sources.extend(resource_policy);
    let mut keys = Vec::new();
    let principal = caller_arn.as_deref().map(|arn| {
        keys.extend(caller_keys(app, arn));
        caller_principal(app, arn)
    });
    if let Some(owner) = &resource_owner {
        keys.push((
            "aws:ResourceAccount".into(),
            ContextValue::Single(owner.clone()),
        ));
    }
    keys.extend(entries);
    let principal_account = caller_arn
        .as_deref()
        .and_then(arn_account)
        .map(String::from);
    let sim = Simulation {
        sources,
        actions,
        resources,
        resources_given,
        principal,
        principal_account,
        resource_owner,
        keys,
        max_items,
        marker,
    };
    let page = sim.run();
    Ok(render("SimulateCustomPolicy", &page, req.request_id))
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// What the statements of one scope said on their own.
fn scope_effect(d: &Decision, scope: PolicyScope) -> Effect {
    let mut allowed = false;
    for m in d.matched.iter().filter(|m| m.scope == scope) {
        if m.effect == StatementEffect::Deny {
            return Effect::ExplicitDeny;
        }
        allowed = true;
    }
    if allowed {
        Effect::Allow
    } else {
        Effect::ImplicitDeny
    }
}

impl Simulation {
    fn set<'a>(&'a self, labels: &'a [String]) -> PolicySet<'a> {
        let mut set = PolicySet::new();
        // Labels are source indices, so that two sources with the same name stay apart.
        for (label, s) in labels.iter().zip(&self.sources) {
            let p: &Policy = &s.policy;
            let label: &str = label;
            match s.scope {
                PolicyScope::Identity => set.identity.push((label, p)),
                PolicyScope::Session => set.session.get_or_insert_with(Vec::new).push((label, p)),
                PolicyScope::Boundary => set.boundary = Some((label, p)),
                PolicyScope::Resource => set.resource = Some((label, p)),
            }
        }
        set
    }

    fn context(&self, action: &str, resource: &str) -> RequestContext {
        let mut ctx = RequestContext::new(action, resource);
        if let Some(p) = &self.principal {
            ctx = ctx.with_principal(p.clone());
        }
        for (k, v) in &self.keys {
            ctx.set(k, v.clone());
        }
        ctx
    }

    fn outcome(&self, set: &PolicySet<'_>, ctx: &RequestContext) -> Outcome {
        let d = policy::evaluate(set, ctx);
        let explicit = d.effect == Effect::ExplicitDeny;
        let matched = d
            .matched
            .iter()
            // With an explicit deny, the deny statements alone decide (and are all IAM lists).
            .filter(|m| !explicit || m.effect == StatementEffect::Deny)
            .filter_map(|m| {
                let s = self.sources.get(m.policy.parse::<usize>().ok()?)?;
                Some(Matched {
                    id: s.id.clone(),
                    source_type: s.source_type,
                    span: s.positions.get(m.index).copied(),
                })
            })
            .collect();
        let mut details = vec![(DETAIL_IDENTITY, scope_effect(&d, PolicyScope::Identity))];
        if set.boundary.is_some() {
            details.push((DETAIL_BOUNDARY, scope_effect(&d, PolicyScope::Boundary)));
        }
        if set.resource.is_some() {
            details.push((DETAIL_RESOURCE, scope_effect(&d, PolicyScope::Resource)));
        }
        let allowed_by_boundary = set
            .boundary
            .is_some()
            .then(|| scope_effect(&d, PolicyScope::Boundary) == Effect::Allow);
        Outcome {
            decision: d.effect,
            matched,
            missing: d.missing_context_keys,
            details,
            allowed_by_boundary,
        }
    }

    /// Where `resource` is, seen from the simulated caller: its ARN's account, else
    /// `ResourceOwner`, else (as IAM's simulator assumes) the caller's own account.
    fn resource_account(&self, resource: &str) -> ResourceAccount {
        let Some(caller) = self.principal_account.as_deref() else {
            return ResourceAccount::Same;
        };
        let owner = policy::arn_account(resource)
            .or(self.resource_owner.as_deref())
            .unwrap_or(caller);
        ResourceAccount::of(caller, Some(owner))
    }

    /// The page of results from `marker`: actions in the order given, each against every resource.
    fn run(&self) -> Page {
        let labels: Vec<String> = (0..self.sources.len()).map(|i| i.to_string()).collect();
        let mut set = self.set(&labels);
        let per_action = self.resources.len();
        let total = self.actions.len() * per_action;
        let end = total.min(self.marker.saturating_add(self.max_items));
        let results = (self.marker..end)
            .map(|k| {
                let action = &self.actions[k / per_action];
                let resource = &self.resources[k % per_action];
                let ctx = self.context(action, resource);
                set.resource_account = self.resource_account(resource);
                EvalResult {
                    action: action.clone(),
                    resource: resource.clone(),
                    outcome: self.outcome(&set, &ctx),
                    resource_specific: self.resources_given,
                }
            })
            .collect();
        Page {
            results,
            next: (end < total).then_some(end),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response

fn decision_word(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allowed",
        Effect::ExplicitDeny => "explicitDeny",
        Effect::ImplicitDeny => "implicitDeny",
    }
}

fn write_position(w: &mut XmlWriter, name: &str, p: Position) {
    w.open(name);
    w.leaf("Line", &p.line.to_string());
    w.leaf("Column", &p.column.to_string());
    w.close(name);
}

/// `MatchedStatements`, `MissingContextValues`, `EvalDecisionDetails` and
/// `PermissionsBoundaryDecisionDetail`, shared by a result and its resource-specific results.
fn write_details(w: &mut XmlWriter, o: &Outcome) {
    w.open("MatchedStatements");
    for m in &o.matched {
        w.open("member");
        w.leaf("SourcePolicyId", &m.id);
        w.leaf("SourcePolicyType", m.source_type);
        if let Some((start, end)) = m.span {
            write_position(w, "StartPosition", start);
            write_position(w, "EndPosition", end);
        }
        w.close("member");
    }
    w.close("MatchedStatements");
    w.open("MissingContextValues");
    for k in &o.missing {
        w.leaf("member", k);
    }
    w.close("MissingContextValues");
    w.open("EvalDecisionDetails");
    for (source, effect) in &o.details {
        w.open("entry");
        w.leaf("key", source);
        w.leaf("value", decision_word(*effect));
        w.close("entry");
    }
    w.close("EvalDecisionDetails");
    if let Some(allowed) = o.allowed_by_boundary {
        w.open("PermissionsBoundaryDecisionDetail");
        w.leaf(
            "AllowedByPermissionsBoundary",
            if allowed { "true" } else { "false" },
        );
        w.close("PermissionsBoundaryDecisionDetail");
    }
}

fn write_result(w: &mut XmlWriter, r: &EvalResult) {
    w.open("member");
    w.leaf("EvalActionName", &r.action);
    w.leaf("EvalResourceName", &r.resource);
    w.leaf("EvalDecision", decision_word(r.outcome.decision));
    write_details(w, &r.outcome);
    if r.resource_specific {
        w.open("ResourceSpecificResults");
        w.open("member");
        w.leaf("EvalResourceName", &r.resource);
        w.leaf("EvalResourceDecision", decision_word(r.outcome.decision));
        write_details(w, &r.outcome);
        w.close("member");
        w.close("ResourceSpecificResults");
    }
    w.close("member");
}

fn render(op: &str, page: &Page, request_id: &str) -> String {
    response(op, request_id, |w| {
        w.open("EvaluationResults");
        for r in &page.results {
            write_result(w, r);
        }
        w.close("EvaluationResults");
        w.leaf(
            "IsTruncated",
            if page.next.is_some() { "true" } else { "false" },
        );
        if let Some(next) = page.next {
            w.leaf("Marker", &next.to_string());
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Statement positions

/// A scanner over valid JSON that only finds where values begin and end.
struct Scan {
    chars: Vec<char>,
    at: usize,
}

impl Scan {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: char) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.at += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Some(out),
                '\\' => match self.next()? {
                    'u' => {
                        let hex: String = (0..4).map(|_| self.next()).collect::<Option<_>>()?;
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
    }

    /// Skips one value (after any whitespace).
    fn value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            '{' => {
                self.at += 1;
                self.skip_ws();
                if self.peek()? == '}' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    self.string()?;
                    self.skip_ws();
                    self.expect(':')?;
                    self.value()?;
                    self.skip_ws();
                    match self.next()? {
                        ',' => continue,
                        '}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            '[' => {
                self.at += 1;
                self.skip_ws();
                if self.peek()? == ']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.value()?;
                    self.skip_ws();
                    match self.next()? {
                        ',' => continue,
                        ']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            '"' => self.string().map(|_| ()),
            _ => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']' | ' ' | '\t' | '\n' | '\r'))
                {
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }

    /// One value whose first and last characters are recorded (as character indices).
    fn spanned(&mut self) -> Option<(usize, usize)> {
        self.skip_ws();
        let start = self.at;
        self.value()?;
        Some((start, self.at - 1))
    }

    /// The spans of the elements of the top-level `Statement` (one for a single object).
    fn statements(&mut self) -> Option<Vec<(usize, usize)>> {
        let mut spans = Vec::new();
        self.skip_ws();
        self.expect('{')?;
        self.skip_ws();
        if self.peek()? == '}' {
            return Some(spans);
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(':')?;
            self.skip_ws();
            if key == "Statement" && self.peek()? == '[' {
                self.at += 1;
                self.skip_ws();
                if self.peek()? == ']' {
                    self.at += 1;
                } else {
                    loop {
                        spans.push(self.spanned()?);
                        self.skip_ws();
                        match self.next()? {
                            ',' => continue,
                            ']' => break,
                            _ => return None,
                        }
                    }
                }
            } else if key == "Statement" {
                spans.push(self.spanned()?);
            } else {
                self.value()?;
            }
            self.skip_ws();
            match self.next()? {
                ',' => continue,
                '}' => return Some(spans),
                _ => return None,
            }
        }
    }
}

/// Where each statement of a policy document begins and ends, in IAM's convention (see the module
/// documentation); empty when the text cannot be scanned.
pub(crate) fn statement_positions(text: &str) -> Vec<(Position, Position)> {
    let mut scan = Scan {
        chars: text.chars().collect(),
        at: 0,
    };
    let Some(spans) = scan.statements() else {
        return Vec::new();
    };
    // Character index at which each line starts; `\n`, `\r\n` and a lone `\r` end a line.
    let chars = &scan.chars;
    let mut line_starts = vec![0usize];
    for (i, c) in chars.iter().enumerate() {
        match c {
            '\n' => line_starts.push(i + 1),
            '\r' if chars.get(i + 1) != Some(&'\n') => line_starts.push(i + 1),
            _ => {}
        }
    }
    let position = |i: usize| {
        let line = line_starts.partition_point(|s| *s <= i);
        Position {
            line,
            column: i - line_starts[line - 1] + 2,
        }
    };
    spans
        .into_iter()
        .map(|(start, end)| (position(start), position(end)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut p = Params::default();
        p.add_form(form.as_bytes());
        p
    }

    fn entry(n: usize, name: &str, ty: &str, values: &[&str]) -> Vec<(String, String)> {
        let mut out = vec![
            (
                format!("ContextEntries.member.{n}.ContextKeyName"),
                name.into(),
            ),
            (
                format!("ContextEntries.member.{n}.ContextKeyType"),
                ty.into(),
            ),
        ];
        for (i, v) in values.iter().enumerate() {
            out.push((
                format!(
                    "ContextEntries.member.{n}.ContextKeyValues.member.{}",
                    i + 1
                ),
                (*v).into(),
            ));
        }
        out
    }

    fn entries(list: &[Vec<(String, String)>]) -> Result<Vec<(String, ContextValue)>, StsError> {
        let pairs: Vec<(&str, &str)> = list
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        context_entries(&params(&pairs))
    }

    #[test]
    fn context_entries_become_typed_keys() {
        let got = entries(&[
            entry(1, "aws:SourceIp", "ip", &["203.0.113.0/24"]),
            entry(2, "aws:TagKeys", "stringList", &["a", "b"]),
            entry(3, "aws:MultiFactorAuthPresent", "boolean", &["TRUE"]),
            entry(4, "s3:max-keys", "numeric", &["10"]),
            entry(5, "aws:CurrentTime", "date", &["2024-05-01T12:00:00Z"]),
            entry(
                6,
                "aws:EpochTime",
                "dateList",
                &["1714564800", "2024-05-01"],
            ),
            entry(7, "ec2:Data", "binary", &["aGVsbG8="]),
            entry(8, "s3:prefixes", "stringList", &[]),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "aws:SourceIp".into(),
                    ContextValue::Single("203.0.113.0/24".into())
                ),
                (
                    "aws:TagKeys".into(),
                    ContextValue::Multi(vec!["a".into(), "b".into()])
                ),
                (
                    "aws:MultiFactorAuthPresent".into(),
                    ContextValue::Single("true".into())
                ),
                ("s3:max-keys".into(), ContextValue::Single("10".into())),
                (
                    "aws:CurrentTime".into(),
                    ContextValue::Single("2024-05-01T12:00:00Z".into())
                ),
                (
                    "aws:EpochTime".into(),
                    ContextValue::Multi(vec!["1714564800".into(), "2024-05-01".into()])
                ),
                ("ec2:Data".into(), ContextValue::Single("aGVsbG8=".into())),
                ("s3:prefixes".into(), ContextValue::Multi(vec![])),
            ]
        );
        assert!(entries(&[]).unwrap().is_empty());
    }

    #[test]
    fn context_entries_are_checked() {
        let code = |list: &[Vec<(String, String)>]| entries(list).unwrap_err().code;
        let cases = [
            ("aws:SourceIp", "ip", "nope", "InvalidInput"),
            ("s3:n", "numeric", "1", "ValidationError"),
            ("aws:x-num", "numeric", "ten", "InvalidInput"),
            ("aws:flag", "boolean", "yes", "InvalidInput"),
            ("aws:when", "date", "yesterday", "InvalidInput"),
            ("aws:blob", "binary", "%%%", "InvalidInput"),
            ("aws:key", "text", "x", "ValidationError"),
        ];
        for (key, kind, value, want) in cases {
            assert_eq!(
                code(&[entry(1, key, kind, &[value])]),
                want,
                "{key} {kind} {value}"
            );
        }
        // A single-valued type needs exactly one value.
        assert_eq!(code(&[entry(1, "aws:key", "string", &[])]), "InvalidInput");
        assert_eq!(
            code(&[entry(1, "aws:key", "string", &["a", "b"])]),
            "InvalidInput"
        );
        // Names are case-insensitive, so one key cannot be given twice.
        assert_eq!(
            code(&[
                entry(1, "aws:Key", "string", &["a"]),
                entry(2, "AWS:key", "string", &["b"])
            ]),
            "InvalidInput"
        );
        // Members are numbered from 1 without gaps, and each has a name and a type.
        assert_eq!(
            code(&[entry(2, "aws:key", "string", &["a"])]),
            "InvalidParameterValue"
        );
        let p = params(&[("ContextEntries.member.1.ContextKeyName", "aws:key")]);
        assert_eq!(context_entries(&p).unwrap_err().code, "InvalidInput");
    }

    #[test]
    fn values_are_validated_by_type() {
        assert!(typed_value(KeyType::Numeric, "1.5e3").is_ok());
        assert!(typed_value(KeyType::Numeric, "-7").is_ok());
        assert!(typed_value(KeyType::Numeric, "NaN").is_err());
        assert!(typed_value(KeyType::Ip, "2001:db8::/32").is_ok());
        assert!(typed_value(KeyType::Ip, "10.0.0.1").is_ok());
        for d in [
            "2024-05",
            "2024-05-01",
            "2024-05-01T12:00Z",
            "2024-05-01T12:00:00.250+02:00",
            "2024-05-01T12:00:00",
            "1714564800.5",
        ] {
            assert!(is_date(d), "{d}");
        }
        assert!(!is_date("2024-13-01"));
        assert_eq!(typed_value(KeyType::Boolean, "False").unwrap(), "false");
    }

    fn common(pairs: &[(&str, &str)], custom: bool) -> Result<Common, StsError> {
        Common::parse(&params(pairs), custom)
    }

    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;

    #[test]
    fn required_and_limited_members() {
        let err = |pairs: &[(&str, &str)], custom| common(pairs, custom).err().unwrap();
        let e = err(&[("PolicyInputList.member.1", ALLOW_ALL)], true);
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.contains("'actionNames'"), "{}", e.message);
        assert!(e.message.contains("must not be null"), "{}", e.message);
        let e = err(
            &[("ActionNames", ""), ("PolicyInputList.member.1", ALLOW_ALL)],
            true,
        );
        assert!(
            e.message.contains("greater than or equal to 1"),
            "{}",
            e.message
        );
        let e = err(&[("ActionNames.member.1", "s3:GetObject")], true);
        assert!(e.message.contains("'policyInputList'"), "{}", e.message);
        assert!(common(&[("ActionNames.member.1", "s3:GetObject")], false).is_ok());
        let e = err(&[("ActionNames.member.1", "GetObject")], false);
        assert_eq!(e.code, "InvalidInput");
        let e = err(
            &[("ActionNames.member.1", "s3:X"), ("MaxItems", "0")],
            false,
        );
        assert_eq!(e.code, "ValidationError");
        let e = err(
            &[("ActionNames.member.1", "s3:X"), ("MaxItems", "1001")],
            false,
        );
        assert_eq!(e.code, "ValidationError");
        let e = err(
            &[
                ("ActionNames.member.1", "s3:X"),
                ("PolicyInputList.member.1", "{\"Version\": \"2012-10-17\"}"),
            ],
            false,
        );
        assert_eq!(e.code, "MalformedPolicyDocument");
        assert!(
            e.message.starts_with("PolicyInputList.1: "),
            "{}",
            e.message
        );
        let e = err(
            &[
                ("ActionNames.member.1", "s3:X"),
                ("PermissionsBoundaryPolicyInputList.member.1", ALLOW_ALL),
                ("PermissionsBoundaryPolicyInputList.member.2", ALLOW_ALL),
            ],
            false,
        );
        assert_eq!(e.code, "InvalidInput");
        let e = err(
            &[
                ("ActionNames.member.1", "s3:X"),
                ("ResourceHandlingOption", "EC2-VPC-InstanceStore"),
            ],
            false,
        );
        assert_eq!(e.code, "InvalidInput");
        let c = common(
            &[
                ("ActionNames.member.1", "s3:X"),
                ("ResourceOwner", "arn:aws:iam::111122223333:root"),
                ("CallerArn", "arn:aws:iam::111122223333:user/u"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(c.resource_owner.as_deref(), Some("111122223333"));
        assert_eq!(c.resources, vec!["*"]);
        assert!(!c.resources_given);
        assert_eq!(c.max_items, DEFAULT_MAX_ITEMS);
    }

    #[test]
    fn markers_are_offsets_into_the_results() {
        let c = common(
            &[
                ("ActionNames.member.1", "s3:A"),
                ("ActionNames.member.2", "s3:B"),
                ("Marker", "1"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(c.offset().unwrap(), 1);
        for bad in ["2", "x", "-1"] {
            let c = common(&[("ActionNames.member.1", "s3:A"), ("Marker", bad)], false).unwrap();
            assert_eq!(c.offset().unwrap_err().code, "InvalidInput", "{bad}");
        }
    }

    #[test]
    fn source_arns() {
        assert!(matches!(
            parse_source_arn("arn:aws:iam::111122223333:role/p/app").unwrap(),
            SourceArn::Role(_)
        ));
        assert!(matches!(
            parse_source_arn("arn:aws:sts::111122223333:assumed-role/app/s1").unwrap(),
            SourceArn::Session {
                account: "111122223333",
                role_name: "app",
                session: "s1"
            }
        ));
        assert!(matches!(
            parse_source_arn("arn:aws:iam::111122223333:user/path/bob").unwrap(),
            SourceArn::Other {
                kind: "user",
                name: "bob"
            }
        ));
        for bad in [
            "arn:aws:s3:::bucket-name-long-enough",
            "arn:aws:iam::1111:role/app-name-here",
            "arn:aws:iam::111122223333:policy/x",
            "arn:aws:iam::111122223333:role/",
            "not an arn at all, really",
        ] {
            assert_eq!(
                parse_source_arn(bad).err().unwrap().code,
                "InvalidInput",
                "{bad}"
            );
        }
    }

    #[test]
    fn positions_follow_iams_convention() {
        // The example of IAM's documentation: 1-based lines, columns just after each brace.
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}"#;
        assert_eq!(
            statement_positions(one),
            vec![(
                Position {
                    line: 1,
                    column: 38
                },
                Position {
                    line: 1,
                    column: 167
                }
            )]
        );
        let pretty = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": \"s3:*\",\n      \"Resource\": \"*\"\n    },\r\n    {\"Sid\": \"b]}\", \"Effect\": \"Deny\", \"Action\": \"s3:Delete*\", \"Resource\": [\"*\"]}\n  ]\n}";
        assert_eq!(
            statement_positions(pretty),
            vec![
                (
                    Position { line: 4, column: 6 },
                    Position { line: 8, column: 6 }
                ),
                (
                    Position { line: 9, column: 6 },
                    Position {
                        line: 9,
                        column: 80
                    }
                ),
            ]
        );
        let escaped = r#"{"\u0053tatement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert_eq!(statement_positions(escaped).len(), 1);
        assert!(statement_positions("not json").is_empty());
    }

    fn source(text: &str, id: &str, scope: PolicyScope) -> Source {
        let kind = if scope == PolicyScope::Resource {
            PolicyKind::Resource
        } else {
            PolicyKind::Inline
        };
        policy_source(text, id.into(), "m", kind, scope, INPUT_POLICY_TYPE).unwrap()
    }

    fn simulation(sources: Vec<Source>, actions: &[&str], resources: &[&str]) -> Simulation {
        Simulation {
            sources,
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: if resources.is_empty() {
                vec!["*".into()]
            } else {
                resources.iter().map(|s| s.to_string()).collect()
            },
            resources_given: !resources.is_empty(),
            principal: None,
            principal_account: None,
            resource_owner: None,
            keys: Vec::new(),
            max_items: DEFAULT_MAX_ITEMS,
            marker: 0,
        }
    }

    #[test]
    fn decisions_statements_and_missing_keys() {
        let identity = r#"{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":"s3:*","Resource":"*"},
{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"},
{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#;
        let boundary = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","ec2:*"],"Resource":"*"}]}"#;
        let sim = simulation(
            vec![
                source(identity, "PolicyInputList.1", PolicyScope::Identity),
                source(
                    boundary,
                    "PermissionsBoundaryPolicyInputList.1",
                    PolicyScope::Boundary,
                ),
            ],
            &["s3:GetObject", "s3:DeleteBucket", "ec2:RunInstances"],
            &[],
        );
        let page = sim.run();
        assert_eq!(page.next, None);
        let [get, delete, run] = &page.results[..] else {
            panic!("{page:?}")
        };
        assert_eq!(get.outcome.decision, Effect::Allow);
        assert_eq!(
            get.outcome
                .matched
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>(),
            vec!["PolicyInputList.1", "PermissionsBoundaryPolicyInputList.1"]
        );
        assert_eq!(
            get.outcome.matched[0].span,
            Some((
                Position { line: 2, column: 2 },
                Position {
                    line: 2,
                    column: 50
                }
            ))
        );
        assert_eq!(get.outcome.allowed_by_boundary, Some(true));
        assert_eq!(delete.outcome.decision, Effect::ExplicitDeny);
        assert_eq!(delete.outcome.matched.len(), 1);
        assert_eq!(
            delete.outcome.matched[0].span.unwrap().0,
            Position { line: 3, column: 2 }
        );
        assert_eq!(
            delete.outcome.details,
            vec![
                (DETAIL_IDENTITY, Effect::ExplicitDeny),
                (DETAIL_BOUNDARY, Effect::Allow)
            ]
        );
        assert_eq!(run.outcome.decision, Effect::ImplicitDeny);
        assert_eq!(run.outcome.missing, vec!["aws:RequestedRegion"]);
    }

    #[test]
    fn pages_walk_actions_then_resources() {
        let mut sim = simulation(
            vec![source(
                ALLOW_ALL,
                "PolicyInputList.1",
                PolicyScope::Identity,
            )],
            &["s3:A", "s3:B"],
            &["arn:aws:s3:::x", "arn:aws:s3:::y"],
        );
        sim.max_items = 3;
        let first = sim.run();
        let names: Vec<(&str, &str)> = first
            .results
            .iter()
            .map(|r| (r.action.as_str(), r.resource.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("s3:A", "arn:aws:s3:::x"),
                ("s3:A", "arn:aws:s3:::y"),
                ("s3:B", "arn:aws:s3:::x")
            ]
        );
        assert_eq!(first.next, Some(3));
        sim.marker = 3;
        let second = sim.run();
        assert_eq!(second.results.len(), 1);
        assert_eq!(second.results[0].resource, "arn:aws:s3:::y");
        assert_eq!(second.next, None);
    }

    #[test]
    fn xml_shape() {
        let result = EvalResult {
            action: "s3:GetObject".into(),
            resource: "arn:aws:s3:::b/k".into(),
            outcome: Outcome {
                decision: Effect::Allow,
                matched: vec![
                    Matched {
                        id: "PolicyInputList.1".into(),
                        source_type: INPUT_POLICY_TYPE,
                        span: Some((
                            Position {
                                line: 1,
                                column: 38,
                            },
                            Position {
                                line: 1,
                                column: 90,
                            },
                        )),
                    },
                    Matched {
                        id: "inline".into(),
                        source_type: "role",
                        span: None,
                    },
                ],
                missing: vec!["aws:SourceIp".into()],
                details: vec![
                    (DETAIL_IDENTITY, Effect::Allow),
                    (DETAIL_BOUNDARY, Effect::Allow),
                ],
                allowed_by_boundary: Some(true),
            },
            resource_specific: true,
        };
        let page = Page {
            results: vec![result],
            next: Some(1),
        };
        let details = "<MatchedStatements>\n<member>\n\
            <SourcePolicyId>PolicyInputList.1</SourcePolicyId>\n\
            <SourcePolicyType>IAM Policy</SourcePolicyType>\n\
            <StartPosition>\n<Line>1</Line>\n<Column>38</Column>\n</StartPosition>\n\
            <EndPosition>\n<Line>1</Line>\n<Column>90</Column>\n</EndPosition>\n</member>\n\
            <member>\n<SourcePolicyId>inline</SourcePolicyId>\n\
            <SourcePolicyType>role</SourcePolicyType>\n</member>\n</MatchedStatements>\n\
            <MissingContextValues>\n<member>aws:SourceIp</member>\n</MissingContextValues>\n\
            <EvalDecisionDetails>\n\
            <entry>\n<key>IAM Policy</key>\n<value>allowed</value>\n</entry>\n\
            <entry>\n<key>Permissions Boundary Policy</key>\n<value>allowed</value>\n</entry>\n\
            </EvalDecisionDetails>\n\
            <PermissionsBoundaryDecisionDetail>\n\
            <AllowedByPermissionsBoundary>true</AllowedByPermissionsBoundary>\n\
            </PermissionsBoundaryDecisionDetail>\n";
        let expected = format!(
            "<SimulateCustomPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n\
             <SimulateCustomPolicyResult>\n<EvaluationResults>\n<member>\n\
             <EvalActionName>s3:GetObject</EvalActionName>\n\
             <EvalResourceName>arn:aws:s3:::b/k</EvalResourceName>\n\
             <EvalDecision>allowed</EvalDecision>\n{details}\
             <ResourceSpecificResults>\n<member>\n\
             <EvalResourceName>arn:aws:s3:::b/k</EvalResourceName>\n\
             <EvalResourceDecision>allowed</EvalResourceDecision>\n{details}\
             </member>\n</ResourceSpecificResults>\n</member>\n</EvaluationResults>\n\
             <IsTruncated>true</IsTruncated>\n<Marker>1</Marker>\n\
             </SimulateCustomPolicyResult>\n<ResponseMetadata>\n<RequestId>rid</RequestId>\n\
             </ResponseMetadata>\n</SimulateCustomPolicyResponse>\n"
        );
        assert_eq!(render("SimulateCustomPolicy", &page, "rid"), expected);

        let empty = Page {
            results: Vec::new(),
            next: None,
        };
        assert!(render("SimulatePrincipalPolicy", &empty, "rid").contains(
            "<SimulatePrincipalPolicyResult>\n<EvaluationResults>\n</EvaluationResults>\n\
             <IsTruncated>false</IsTruncated>\n</SimulatePrincipalPolicyResult>"
        ));
    }
}
