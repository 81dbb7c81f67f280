//! The parameters both simulations share: read from the request and checked as IAM checks them
//! (lengths, patterns and enumerations as `ValidationError`, the rest as `InvalidInput`).

use super::context::context_entries;
use super::eval::Source;
use super::positions::statement_positions;
use super::principal::arn_account;
use crate::iam::invalid_input;
use crate::policy::{ContextValue, Policy, PolicyKind, PolicyScope};
use crate::query::params::Params;
use crate::query::QueryError;
use std::sync::Arc;

/// Results per page when `MaxItems` is not given.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// Largest `MaxItems`.
pub const MAX_ITEMS: usize = 1000;
/// Longest policy document the simulator accepts (`policyDocumentType`).
pub const MAX_POLICY_DOCUMENT_CHARS: usize = 131_072;

/// `SourcePolicyType` of policies given in the request.
pub(super) const INPUT_POLICY_TYPE: &str = "IAM Policy";

/// The parameters both simulations share.
pub(super) struct Common {
    pub(super) actions: Vec<String>,
    pub(super) resources: Vec<String>,
    pub(super) resources_given: bool,
    pub(super) inputs: Vec<Source>,
    pub(super) boundary: Option<Source>,
    pub(super) resource_policy: Option<Source>,
    pub(super) resource_owner: Option<String>,
    pub(super) caller_arn: Option<String>,
    pub(super) entries: Vec<(String, ContextValue)>,
    pub(super) max_items: usize,
    pub(super) marker: Option<String>,
}

/// A `ValidationError` unless `value` has `min` to `max` characters.
pub(super) fn check_length(
    value: &str,
    member: &str,
    min: usize,
    max: usize,
) -> Result<(), QueryError> {
    let n = value.chars().count();
    if n < min {
        return Err(QueryError::validation(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(QueryError::validation(
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
) -> Result<Vec<&'p str>, QueryError> {
    let items = params.list(name, "")?;
    if items.is_empty() && required {
        return Err(match params.get(name)? {
            Some(_) => QueryError::validation(
                "[]",
                member,
                "Member must have length greater than or equal to 1",
            ),
            None => QueryError::missing(member),
        });
    }
    Ok(items)
}

/// Checks a policy document against `policyDocumentType` and parses it.
pub(super) fn policy_source(
    text: &str,
    id: String,
    member: &str,
    kind: PolicyKind,
    scope: PolicyScope,
    source_type: &'static str,
) -> Result<Source, QueryError> {
    check_length(text, member, 1, MAX_POLICY_DOCUMENT_CHARS)?;
    if !text
        .chars()
        .all(|c| matches!(c, '\u{09}' | '\u{0A}' | '\u{0D}' | '\u{20}'..='\u{FF}'))
    {
        return Err(QueryError::validation(
            text,
            member,
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    let policy = Policy::parse(text, kind)
        .map_err(|e| QueryError::malformed_policy(format!("{id}: {e}")))?;
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
) -> Result<Vec<Source>, QueryError> {
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

impl Common {
    /// Reads and checks the parameters; `custom` (`SimulateCustomPolicy`) requires
    /// `PolicyInputList`.
    pub(super) fn parse(params: &Params, custom: bool) -> Result<Self, QueryError> {
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
                let n: i64 = v.parse().map_err(|_| {
                    QueryError::validation(v, "maxItems", "Member must be a number")
                })?;
                if n < 1 {
                    return Err(QueryError::validation(
                        v,
                        "maxItems",
                        "Member must have value greater than or equal to 1",
                    ));
                }
                if n > MAX_ITEMS as i64 {
                    return Err(QueryError::validation(
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
    pub(super) fn offset(&self) -> Result<usize, QueryError> {
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
