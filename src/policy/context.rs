//! The request context a policy is evaluated in: action, resource, principal and condition keys.

use std::collections::HashMap;

/// Condition keys are looked up several times per statement: foldhash is several times faster than
/// SipHash on short keys and still seeded per process, so key names chosen by a caller cannot be
/// aimed at collisions.
type KeyMap = HashMap<String, ContextValue, foldhash::fast::RandomState>;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The value of one condition key in a request.
///
/// Everything is a string, as in AWS's request context: booleans are `"true"`/`"false"`, numbers
/// are decimal text, dates are ISO 8601 or epoch seconds, binary values are base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ContextValue {
    /// A single-valued key.
    Single(String),
    /// A multivalued key (for example `aws:TagKeys`); may be empty.
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice (one element for [`ContextValue::Single`]).
    pub fn as_slice(&self) -> &[String] {
        match self {
            ContextValue::Single(v) => std::slice::from_ref(v),
            ContextValue::Multi(vs) => vs,
        }
    }

    /// The values as a set operator sees them: an empty string is an empty set.
    pub(crate) fn as_set(&self) -> &[String] {
        match self {
            ContextValue::Single(v) if v.is_empty() => &[],
            other => other.as_slice(),
        }
    }

    /// Whether the key counts as null for the `Null` operator: an empty list or an empty string.
    pub(crate) fn is_null(&self) -> bool {
        self.as_set().is_empty()
    }
}

impl From<&str> for ContextValue {
    fn from(v: &str) -> Self {
        ContextValue::Single(v.to_owned())
    }
}

impl From<String> for ContextValue {
    fn from(v: String) -> Self {
        ContextValue::Single(v)
    }
}

impl From<Vec<String>> for ContextValue {
    fn from(v: Vec<String>) -> Self {
        ContextValue::Multi(v)
    }
}

impl From<bool> for ContextValue {
    fn from(v: bool) -> Self {
        ContextValue::Single(if v { "true" } else { "false" }.to_owned())
    }
}

/// How the caller is known, for matching `Principal`/`NotPrincipal` in resource-based (trust)
/// policies.
///
/// An assumed-role session is known by its session ARN, its role ARN and its account, e.g.
/// `aws = ["arn:aws:sts::A:assumed-role/R/S", "arn:aws:iam::A:role/R", "arn:aws:iam::A:root"]`; a
/// policy naming the account as `"A"` or `arn:aws:iam::A:root` then matches it. A web identity
/// caller is known by `federated` (the provider ARN or name); an anonymous caller by nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// AWS identities (ARNs), most specific first.
    pub aws: Vec<String>,
    /// The federated identity provider, e.g. `arn:aws:iam::A:oidc-provider/issuer.example`.
    pub federated: Option<String>,
    /// The service principal, e.g. `ec2.amazonaws.com`.
    pub service: Option<String>,
}

impl Principal {
    /// A principal known only by the given AWS ARNs.
    pub fn aws<I, S>(arns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Principal {
            aws: arns.into_iter().map(Into::into).collect(),
            ..Principal::default()
        }
    }

    /// A web identity or SAML caller of the given provider.
    pub fn federated(provider: impl Into<String>) -> Self {
        Principal {
            federated: Some(provider.into()),
            ..Principal::default()
        }
    }

    /// A service principal.
    pub fn service(name: impl Into<String>) -> Self {
        Principal {
            service: Some(name.into()),
            ..Principal::default()
        }
    }

    /// A role session: its session ARN, role ARN (the role name may include a path) and account.
    pub fn assumed_role(partition: &str, account: &str, role: &str, session: &str) -> Self {
        let role_name = role.rsplit('/').next().unwrap_or(role);
        Principal::aws([
            format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}"),
            format!("arn:{partition}:iam::{account}:role/{role}"),
            format!("arn:{partition}:iam::{account}:root"),
        ])
    }

    /// Every identity of the caller (AWS ARNs, then federated provider, then service).
    pub fn identities(&self) -> impl Iterator<Item = &str> {
        self.aws
            .iter()
            .map(String::as_str)
            .chain(self.federated.as_deref())
            .chain(self.service.as_deref())
    }
}

/// Everything a policy is evaluated against: action, resource, principal and condition keys.
///
/// Condition key names are case-insensitive.
#[derive(Debug, Clone)]
pub struct RequestContext {
    action: String,
    resource: String,
    principal: Option<Principal>,
    keys: KeyMap,
}

impl RequestContext {
    /// A request for `action` (e.g. `sts:AssumeRoleWithWebIdentity`) on `resource` (an ARN or `*`).
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        RequestContext {
            action: action.into(),
            resource: resource.into(),
            principal: None,
            keys: KeyMap::default(),
        }
    }

    /// Sets who is asking.
    pub fn with_principal(mut self, p: Principal) -> Self {
        self.principal = Some(p);
        self
    }

    /// Sets a condition key (builder form of [`RequestContext::set`]).
    pub fn with(mut self, key: &str, v: impl Into<ContextValue>) -> Self {
        self.set(key, v.into());
        self
    }

    /// Sets a condition key, replacing any previous value.
    pub fn set(&mut self, key: &str, v: ContextValue) {
        self.keys.insert(key.to_lowercase(), v);
    }

    /// Sets a single-valued string key.
    pub fn set_string(&mut self, key: &str, v: impl Into<String>) {
        self.set(key, ContextValue::Single(v.into()));
    }

    /// Sets a multivalued key.
    pub fn set_strings<I, S>(&mut self, key: &str, vs: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set(
            key,
            ContextValue::Multi(vs.into_iter().map(Into::into).collect()),
        );
    }

    /// Sets a boolean key (`"true"`/`"false"`).
    pub fn set_bool(&mut self, key: &str, v: bool) {
        self.set(key, v.into());
    }

    /// Sets a numeric key.
    pub fn set_number(&mut self, key: &str, v: i64) {
        self.set(key, ContextValue::Single(v.to_string()));
    }

    /// Sets a date key as ISO 8601 (`2024-05-01T12:00:00Z`).
    pub fn set_time(&mut self, key: &str, t: DateTime<Utc>) {
        self.set(key, ContextValue::Single(crate::clock::rfc3339(&t, false)));
    }

    /// Sets `aws:CurrentTime` and `aws:EpochTime`: the only way time reaches policy evaluation.
    pub fn set_current_time(&mut self, now: DateTime<Utc>) {
        self.set_time("aws:CurrentTime", now);
        self.set_number("aws:EpochTime", now.timestamp());
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        self.keys.remove(&key.to_lowercase())
    }

    /// The value of a key (name compared case-insensitively).
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.keys.get(&key.to_lowercase())
    }

    /// Lookup by an already lower-cased key (evaluation path; no allocation).
    pub(crate) fn lookup(&self, lower_key: &str) -> Option<&ContextValue> {
        self.keys.get(lower_key)
    }

    /// The action asked for.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The resource asked for.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Who is asking, if known.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// All keys (lower-cased) and values.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut ctx = RequestContext::new("sts:AssumeRole", "*");
        ctx.set_string("aws:SourceIp", "203.0.113.5");
        assert_eq!(
            ctx.get("AWS:sourceip"),
            Some(&ContextValue::Single("203.0.113.5".into()))
        );
        assert_eq!(
            ctx.lookup("aws:sourceip").map(|v| v.as_slice().len()),
            Some(1)
        );
        ctx.set_string("AWS:SOURCEIP", "198.51.100.1");
        assert_eq!(ctx.keys().count(), 1);
        assert!(ctx.remove("aws:sourceIP").is_some());
        assert_eq!(ctx.get("aws:SourceIp"), None);
    }

    #[test]
    fn current_time_sets_both_time_keys() {
        let mut ctx = RequestContext::new("sts:AssumeRole", "*");
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        ctx.set_current_time(now);
        assert_eq!(
            ctx.get("aws:CurrentTime"),
            Some(&ContextValue::Single("2024-05-01T12:00:00Z".into()))
        );
        assert_eq!(
            ctx.get("aws:EpochTime"),
            Some(&ContextValue::Single("1714564800".into()))
        );
    }

    #[test]
    fn assumed_role_principal_has_three_identities() {
        let p = Principal::assumed_role("aws", "111122223333", "path/R", "S");
        assert_eq!(
            p.aws,
            vec![
                "arn:aws:sts::111122223333:assumed-role/R/S",
                "arn:aws:iam::111122223333:role/path/R",
                "arn:aws:iam::111122223333:root",
            ]
        );
        assert_eq!(p.identities().count(), 3);
    }

    #[test]
    fn empty_values_are_null_for_sets() {
        assert!(ContextValue::Single(String::new()).is_null());
        assert!(ContextValue::Multi(vec![]).is_null());
        assert!(!ContextValue::Single("x".into()).is_null());
        assert_eq!(ContextValue::Single(String::new()).as_slice().len(), 1);
    }
}
