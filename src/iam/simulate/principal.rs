//! Who is simulated: the entity `PolicySourceArn` names (a configured role, or a session of one)
//! with the policies it brings, and the principal that `CallerArn` stands for.

use super::eval::Source;
use crate::app::App;
use crate::config::Role;
use crate::iam::{invalid_input, no_such_entity};
use crate::policy::{self, ContextValue, PolicyScope, Principal};
use crate::query::QueryError;

/// The account of an ARN (its fifth field), when it is 12 digits.
pub(super) fn arn_account(arn: &str) -> Option<&str> {
    policy::arn_account(arn).filter(|a| policy::is_account_id(a))
}

/// A session ARN `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` as (account, role name, session).
fn parse_session_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let a = policy::Arn::parse(arn).filter(|a| (a.partition, a.service) == ("aws", "sts"))?;
    let account = a.account;
    let (name, session) = a.resource.strip_prefix("assumed-role/")?.split_once('/')?;
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
pub(super) enum SourceArn<'a> {
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

impl<'s> SourceArn<'s> {
    /// The configured role named (a session stands for its role), and the session's name.
    pub(super) fn role<'a>(&self, app: &'a App) -> (Option<&'a Role>, Option<&'s str>) {
        match self {
            SourceArn::Role(arn) => (app.config.role(arn), None),
            SourceArn::Session {
                account,
                role_name,
                session,
            } => (role_of_session(app, account, role_name), Some(*session)),
            SourceArn::Other { .. } => (None, None),
        }
    }

    /// `NoSuchEntity` for the entity named.
    pub(super) fn not_found(&self) -> QueryError {
        let (kind, name) = match self {
            SourceArn::Role(arn) => ("role", arn.rsplit('/').next().unwrap_or_default()),
            SourceArn::Session { role_name, .. } => ("role", *role_name),
            SourceArn::Other { kind, name } => (*kind, *name),
        };
        no_such_entity(format!("The {kind} with name {name} cannot be found."))
    }
}

/// Reads `PolicySourceArn`: a role, a role session, or a user or group (which rolegate lacks).
pub(super) fn parse_source_arn(arn: &str) -> Result<SourceArn<'_>, QueryError> {
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
    let a = policy::Arn::parse(arn).ok_or_else(bad)?;
    let (kind, path_and_name) = a.resource.split_once('/').ok_or_else(bad)?;
    if a.service != "iam" || !matches!(kind, "role" | "user" | "group") {
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
pub(super) fn caller_principal(app: &App, arn: &str) -> Principal {
    let mut aws = vec![arn.to_string()];
    if let Some((account, name, _)) = parse_session_arn(arn) {
        if let Some(role) = role_of_session(app, account, name) {
            aws.push(role.arn.clone());
        }
    }
    if let Some(account) = arn_account(arn) {
        aws.push(crate::policy::arn::root(account));
        aws.push(account.to_string());
    }
    Principal::aws(aws)
}

/// Principal keys for a `CallerArn` (a role session's `aws:PrincipalArn` is its role).
pub(super) fn caller_keys(app: &App, arn: &str) -> Vec<(String, ContextValue)> {
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

/// A configured role as the simulated principal: what it brings to a simulation besides the
/// policies in the request.
pub(super) struct SimulatedRole {
    /// Its identity policies (inline, then managed), evaluated before those in the request.
    pub(super) policies: Vec<Source>,
    /// Its permissions boundary, unless the request gives one.
    pub(super) boundary: Option<Source>,
    /// Who resource policies see, unless `CallerArn` is given.
    pub(super) principal: Principal,
    /// Its principal keys (kept when `CallerArn` is given).
    pub(super) keys: Vec<(String, ContextValue)>,
    /// Its account, unless `CallerArn` names one.
    pub(super) account: String,
}

impl SimulatedRole {
    /// `role`, or one of its sessions when `session` (its ARN and name) is given.
    pub(super) fn new(role: &Role, session: Option<(&str, &str)>) -> Self {
        let mut policies = Vec::new();
        for (name, p) in &role.policies {
            policies.push(Source::configured(name, "role", PolicyScope::Identity, p));
        }
        for (arn, p) in &role.managed_policies {
            policies.push(Source::configured(
                arn,
                "user-managed",
                PolicyScope::Identity,
                p,
            ));
        }
        let boundary = role
            .permissions_boundary
            .as_ref()
            .map(|(arn, p)| Source::configured(arn, "user-managed", PolicyScope::Boundary, p));

        let mut aws = Vec::new();
        if let Some((session_arn, _)) = session {
            aws.push(session_arn.to_string());
        }
        aws.push(role.arn.clone());
        aws.push(crate::policy::arn::root(&role.account));
        aws.push(role.account.clone());

        let mut keys: Vec<(String, ContextValue)> = vec![
            ("aws:PrincipalArn".into(), role.arn.as_str().into()),
            ("aws:PrincipalAccount".into(), role.account.as_str().into()),
            ("aws:PrincipalType".into(), "AssumedRole".into()),
        ];
        if let Some((_, s)) = session {
            keys.push((
                "aws:userid".into(),
                ContextValue::Single(format!("{}:{s}", role.role_id)),
            ));
        }
        Self {
            policies,
            boundary,
            principal: Principal::aws(aws),
            keys,
            account: role.account.clone(),
        }
    }
}
