//! What a new session carries besides its principal: the session policies a request passes
//! (validated, and checked to exist in the role's account), session tags, and their packed size.

use crate::app::App;
use crate::config::Role;
use crate::credentials::Tag;
use crate::policy::{Policy, PolicyKind};
use crate::query::params::{self, Params};
use crate::query::QueryError;
use serde_json::Value;

/// Most session tags.
const MAX_TAGS: usize = 50;

/// Session policy parameters, validated.
pub(super) struct SessionPolicy {
    pub(super) text: Option<String>,
    pub(super) arns: Vec<String>,
    pub(super) minified_len: usize,
}

impl SessionPolicy {
    /// No session policy: the session has its principal's permissions.
    pub(super) fn none() -> Self {
        SessionPolicy {
            text: None,
            arns: Vec::new(),
            minified_len: 0,
        }
    }

    /// Whether the request passed any session policy.
    pub(super) fn is_some(&self) -> bool {
        self.text.is_some() || !self.arns.is_empty()
    }
}

pub(super) fn session_policy(params: &Params) -> Result<SessionPolicy, QueryError> {
    let arns: Vec<String> = params
        .list("PolicyArns", ".arn")?
        .into_iter()
        .map(String::from)
        .collect();
    let refs: Vec<&str> = arns.iter().map(String::as_str).collect();
    params::check_policy_arns(&refs)?;
    let mut minified_len = 0;
    let text = match params.get("Policy")? {
        Some(t) => {
            params::check_session_policy_text(t)?;
            Policy::parse(t, PolicyKind::Session)
                .map_err(|e| QueryError::malformed_policy(e.to_string()))?;
            minified_len = serde_json::from_str::<Value>(t)
                .map(|v| v.to_string().len())
                .unwrap_or(t.len());
            Some(t.to_string())
        }
        None => None,
    };
    Ok(SessionPolicy {
        text,
        arns,
        minified_len,
    })
}

/// Every `PolicyArns` entry must name a managed policy of the role's account: a session policy that
/// cannot be evaluated must never be silently dropped, since that would widen the session.
pub(super) fn check_policy_arns_exist(
    app: &App,
    sp: &SessionPolicy,
    role: &Role,
) -> Result<(), QueryError> {
    for arn in &sp.arns {
        match app.config.managed_policy(arn) {
            Some(m) if m.account == role.account => {}
            found => {
                let why = if found.is_some() {
                    format!(
                        "managed policy {arn} belongs to another account than role {}",
                        role.arn
                    )
                } else {
                    format!("managed policy {arn} is not defined")
                };
                return Err(QueryError::invalid_parameter(format!(
                    "Policy {arn} does not exist or is not attachable."
                ))
                .because(why));
            }
        }
    }
    Ok(())
}

/// Packed size of session policy and tags as a percentage of the allowed size; over 100 is
/// `PackedPolicyTooLarge`.
pub(super) fn packed_percent(sp: &SessionPolicy, tags: &[Tag]) -> Result<u32, QueryError> {
    let tag_bytes: usize = tags.iter().map(|t| t.key.len() + t.value.len() + 2).sum();
    let bytes = sp.minified_len + sp.arns.iter().map(String::len).sum::<usize>() + tag_bytes;
    let percent = (bytes * 100).div_ceil(2048) as u32;
    if percent > 100 {
        return Err(QueryError::packed_policy_too_large(percent));
    }
    Ok(percent)
}

pub(super) fn check_tag_set(tags: &[Tag]) -> Result<(), QueryError> {
    if tags.len() > MAX_TAGS {
        return Err(QueryError::validation(
            &tags.len().to_string(),
            "tags",
            "Member must have length less than or equal to 50",
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        if tags[..i].iter().any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            return Err(QueryError::invalid_parameter(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

pub(super) fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}
