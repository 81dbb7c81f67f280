//! The IAM policy language: grammar, wildcard and ARN matching, condition operators, policy
//! variables, evaluation and explanations.
//!
//! This module owns turning a policy document into a compiled [`Policy`] (every wildcard, policy
//! variable and condition value is compiled once, at parse time, so evaluation never reparses the
//! policy), the [`RequestContext`] a request is judged in, the [`Decision`] for a [`PolicySet`] or a
//! role trust policy, and the [`Explanation`] of a decision.
//!
//! It must not know about I/O, storage, authentication or the clock: the caller says who the
//! principal is, and time reaches conditions only through the `aws:CurrentTime` and
//! `aws:EpochTime` context keys ([`RequestContext::set_current_time`]).
//!
//! # Grammar
//!
//! `Version` is `2008-10-17` or `2012-10-17`; a missing `Version` means `2008-10-17`, under which
//! `${…}` is literal text. Policy variables (`${key}`, `${key, 'default'}`, and the escapes `${*}`,
//! `${?}`, `${$}`) are recognised only under `2012-10-17`, in `Resource`/`NotResource` and in the
//! values of the String, ARN and Bool condition operators. A variable resolves to the single value
//! of that context key; a missing or multivalued key without a default makes that one resource or
//! condition value match nothing.
//!
//! Actions are `service:action` patterns matched case-insensitively with `*` and `?`. Resources are
//! `*` or ARNs matched case-sensitively: the first five `:`-separated fields (`arn`, partition,
//! service, region, account) are matched field by field, so a wildcard there never crosses a `:`,
//! and the sixth field (the resource, which may itself contain `:`) is matched as a whole. When a
//! pattern has fewer than six fields and its last field ends in `*`, that `*` also matches the rest
//! of the ARN (`arn:aws:ec2:*` matches every EC2 ARN). `ArnEquals`/`ArnLike` use the same matcher.
//!
//! # Conditions
//!
//! Operators in one `Condition` block, and keys under one operator, are ANDed; the values of one
//! key are ORed (a negated operator is true when no value matches). Condition key names are
//! case-insensitive. For a key absent from the request: positive operators are false, negated
//! operators (`StringNotEquals`, `StringNotEqualsIgnoreCase`, `StringNotLike`, `NumericNotEquals`,
//! `DateNotEquals`, `NotIpAddress`, `ArnNotEquals`, `ArnNotLike`) are true, `…IfExists` is true,
//! `ForAllValues:` is true and `ForAnyValue:` is false. A set qualifier applies the whole
//! operator (negation included) to each request value: `ForAllValues:` is true when every request
//! value satisfies it (so also for an empty set), `ForAnyValue:` when at least one does. A
//! multivalued key under an operator without a set qualifier behaves like `ForAnyValue:` for
//! positive operators and is true for a negated operator only when no request value matches any
//! policy value. `Null` is true for `"true"` when the key is absent or empty (an empty list or an
//! empty string) and for `"false"` otherwise.
//!
//! # Evaluation rule (one account)
//!
//! For a [`PolicySet`] ([`evaluate`]):
//!
//! 1. A `Deny` statement that applies, in any policy of the set (identity, session, boundary or
//!    resource), gives [`Effect::ExplicitDeny`].
//! 2. Otherwise, an `Allow` in the resource policy whose `Principal` names the caller directly (its
//!    IAM user, role session, federated identity or service principal) gives [`Effect::Allow`]:
//!    such a grant is not limited by implicit denies in the other policies.
//! 3. Otherwise the request is allowed when it is granted by an identity policy, or by a resource
//!    policy statement naming the caller's role ARN or any principal (`*`, `{"AWS": "*"}`,
//!    `NotPrincipal`), **and** — when session policies are present — by at least one session
//!    policy, **and** — when a permissions boundary is present — by the boundary. A resource policy
//!    that names only the caller's account (`"A"` or `arn:aws:iam::A:root`) delegates to the
//!    identity policies and grants nothing by itself.
//! 4. Anything else is [`Effect::ImplicitDeny`].
//!
//! # Evaluation rule (across accounts)
//!
//! The set says where the resource is, seen from the caller ([`PolicySet::resource_account`],
//! a [`ResourceAccount`]). The rule above is the one for [`ResourceAccount::Same`]. For a resource
//! in another account ([`ResourceAccount::Other`]):
//!
//! 1. A `Deny` statement that applies, in any policy of the set, gives [`Effect::ExplicitDeny`].
//! 2. Otherwise the request is allowed only when **both** sides allow: the caller's side (an
//!    identity policy allows, and — when present — at least one session policy and the boundary
//!    allow) **and** the resource side (a statement of the resource policy whose principal matches
//!    the caller in any form: its own ARN, its role, its account, or a wildcard). A resource policy
//!    naming the caller directly does not lift the caller's own limits, and without a resource
//!    policy nothing is allowed.
//!
//! When the resource's account is not known ([`ResourceAccount::Unknown`]) the same rule applies,
//! except that without a resource policy the caller's side decides alone: a resource policy can
//! narrow, never grant on its own.
//!
//! A role trust policy is the role's resource policy: `AssumeRole` evaluates the caller's policies
//! with the trust policy as the resource policy of the set and the role's account as the resource's.
//!
//! A role trust policy alone ([`evaluate_trust`]) allows when an `Allow` statement applies (its
//! principal, action, resource and conditions all match) and no `Deny` statement applies. Whether
//! a trust policy naming an account also needs that account's identity policies is the caller's
//! decision.

pub mod arn;
mod cache;
mod condition;
mod context;
mod eval;
mod explain;
mod grammar;
mod json;
mod lint;
mod variables;
mod wildcard;

use std::fmt;

use serde::Serialize;

pub use arn::Arn;
pub use cache::{PolicyCache, POLICY_CACHE_ENTRIES};
pub use context::{ContextValue, Principal, RequestContext};
pub use eval::{
    arn_account, evaluate, evaluate_trust, Decision, Effect, MatchedStatement, PolicyScope,
    PolicySet, ResourceAccount, StatementEffect,
};
pub use explain::{explain, explain_trust, Check, Explanation, PolicyReport, StatementReport};
pub use grammar::{is_account_id, is_action_name, Policy, PolicyVersion, PolicyWarning};

/// Errors from parsing a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is longer than its kind allows.
    #[error(
        "policy document is {actual} characters long; {} may have at most {limit}",
        .kind.describe()
    )]
    TooLarge {
        /// Which kind of policy was being parsed.
        kind: PolicyKind,
        /// The limit for that kind.
        limit: usize,
        /// The counted length (see [`PolicyKind::max_chars`]).
        actual: usize,
    },
    /// The document contains a character a session policy may not contain.
    #[error(
        "character {character:?} at position {position} is not allowed in {}",
        .kind.describe()
    )]
    InvalidCharacter {
        /// Which kind of policy was being parsed.
        kind: PolicyKind,
        /// The offending character.
        character: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
    /// The document is not valid JSON (or repeats a key within one object).
    #[error("malformed policy document at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser found.
        message: String,
    },
    /// The document is JSON but not a valid policy.
    #[error("{}", describe_invalid(.statement, .sid, .path, .message))]
    Invalid {
        /// Index of the statement concerned, if any.
        statement: Option<usize>,
        /// That statement's `Sid`, if it has one.
        sid: Option<String>,
        /// JSON path of the offending element, e.g. `Statement[1].Condition.StringLike["s3:prefix"]`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn describe_invalid(
    statement: &Option<usize>,
    sid: &Option<String>,
    path: &str,
    message: &str,
) -> String {
    match (statement, sid) {
        (Some(i), Some(sid)) => format!("statement {i} (Sid {sid:?}) at {path}: {message}"),
        (Some(i), None) => format!("statement {i} at {path}: {message}"),
        _ => format!("{path}: {message}"),
    }
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, PolicyError>;

/// What a policy document is used as; decides the size limit and which elements are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PolicyKind {
    /// A managed identity-based policy: at most 6,144 characters, whitespace not counted.
    Identity,
    /// An inline role (or user) policy: at most 10,240 characters, whitespace not counted.
    Inline,
    /// A role trust policy: at most 2,048 characters, whitespace not counted; every statement
    /// needs `Principal` or `NotPrincipal`, `Resource` is optional.
    Trust,
    /// Another resource-based policy: at most 20,480 characters, whitespace not counted; every
    /// statement needs `Principal` or `NotPrincipal` and `Resource` or `NotResource`.
    Resource,
    /// A session policy passed to `AssumeRole*`: at most 2,048 characters counting everything,
    /// only tab, line feed, carriage return and U+0020–U+00FF allowed.
    Session,
}

impl PolicyKind {
    /// The size limit in characters.
    pub fn max_chars(self) -> usize {
        match self {
            PolicyKind::Identity => 6_144,
            PolicyKind::Inline => 10_240,
            PolicyKind::Trust => 2_048,
            PolicyKind::Resource => 20_480,
            PolicyKind::Session => 2_048,
        }
    }

    /// Whether whitespace between JSON tokens counts towards [`PolicyKind::max_chars`].
    pub fn counts_whitespace(self) -> bool {
        matches!(self, PolicyKind::Session)
    }

    /// The kind with its article, for messages: "an identity policy", "a trust policy"…
    pub fn describe(self) -> &'static str {
        match self {
            PolicyKind::Identity => "an identity policy",
            PolicyKind::Inline => "an inline policy",
            PolicyKind::Trust => "a trust policy",
            PolicyKind::Resource => "a resource policy",
            PolicyKind::Session => "a session policy",
        }
    }

    /// Whether statements are resource-based (must name a principal).
    pub fn is_resource_based(self) -> bool {
        matches!(self, PolicyKind::Trust | PolicyKind::Resource)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Identity => "identity",
            PolicyKind::Inline => "inline",
            PolicyKind::Trust => "trust",
            PolicyKind::Resource => "resource",
            PolicyKind::Session => "session",
        })
    }
}

#[cfg(test)]
mod tests;
