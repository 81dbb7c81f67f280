//! The policy grammar: turning a JSON document into a compiled [`Policy`], with errors that name
//! the statement and the JSON path at fault.

use serde::Serialize;

use super::condition::{self, Condition, SetQualifier};
use super::eval::StatementEffect;
use super::json::{self, Json};
use super::variables::{self, Variable};
use super::wildcard::{ArnPattern, Glob};
use super::{PolicyError, PolicyKind, Result};

/// The policy language version named by `Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PolicyVersion {
    /// `2008-10-17` (also what a missing `Version` means): no policy variables.
    #[serde(rename = "2008-10-17")]
    V2008,
    /// `2012-10-17`: policy variables enabled.
    #[serde(rename = "2012-10-17")]
    V2012,
}

impl PolicyVersion {
    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyVersion::V2008 => "2008-10-17",
            PolicyVersion::V2012 => "2012-10-17",
        }
    }
}

/// A parsed and compiled policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    version: PolicyVersion,
    id: Option<String>,
    kind: PolicyKind,
    pub(crate) statements: Vec<Statement>,
}

/// One compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) index: usize,
    pub(crate) sid: Option<String>,
    pub(crate) effect: StatementEffect,
    pub(crate) principal: Option<PrincipalClause>,
    pub(crate) action: ActionClause,
    /// `None` when the statement has neither `Resource` nor `NotResource` (trust policies).
    pub(crate) resource: Option<ResourceClause>,
    pub(crate) conditions: Vec<Condition>,
    /// Policy variables without a default used by this statement: (lower-cased key, name).
    pub(crate) required_variables: Vec<(String, String)>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalClause {
    pub(crate) negated: bool,
    pub(crate) spec: PrincipalSpec,
    /// The entries as written, as `Type:value` (or `*`).
    pub(crate) raw: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalSpec {
    /// `"Principal": "*"`.
    Anyone,
    Entries(Vec<PrincipalEntry>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalEntry {
    /// `{"AWS": "*"}`.
    AnyAws,
    /// An account, written as its ID or as `arn:…:iam::ID:root`.
    Account(String),
    /// Any other AWS ARN.
    Aws(String),
    AnyFederated,
    Federated(String),
    AnyService,
    Service(String),
    /// Accepted for compatibility; never matches a rolegate principal.
    CanonicalUser(String),
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionClause {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<Glob>,
    pub(crate) raw: Vec<String>,
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceClause {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<ArnPattern>,
    pub(crate) raw: Vec<String>,
}

/// Something legal but probably not what the author meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyWarning {
    /// Index of the statement concerned.
    pub statement: usize,
    /// Its `Sid`, if any.
    pub sid: Option<String>,
    /// What to look at.
    pub message: String,
}

/// Where in the document an error is.
#[derive(Clone, Copy)]
struct Loc<'a> {
    statement: Option<usize>,
    sid: Option<&'a str>,
}

impl Loc<'_> {
    fn err(self, path: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            statement: self.statement,
            sid: self.sid.map(str::to_owned),
            path: path.into(),
            message: message.into(),
        }
    }
}

const TOP: Loc<'static> = Loc {
    statement: None,
    sid: None,
};

const STATEMENT_ELEMENTS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn unknown_element(name: &str, known: &[&str], expected: &str) -> String {
    match known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        Some(k) => format!(
            "unknown element {name:?}: element names are case-sensitive, did you mean {k:?}?"
        ),
        None => format!("unknown element {name:?}; expected {expected}"),
    }
}

impl Policy {
    /// Parses, validates and compiles a policy document of the given kind.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy> {
        json::check_size(text, kind)?;
        let root = json::parse(text)?;
        let Json::Object(entries) = root else {
            return Err(TOP.err(
                "$",
                format!("a policy must be a JSON object, not {}", root.type_name()),
            ));
        };
        let mut version = None;
        let mut id = None;
        let mut statement = None;
        for (key, value) in entries {
            match key.as_str() {
                "Version" => {
                    version = Some(match value {
                        Json::String(s) if s == "2012-10-17" => PolicyVersion::V2012,
                        Json::String(s) if s == "2008-10-17" => PolicyVersion::V2008,
                        Json::String(s) => {
                            return Err(TOP.err(
                                "Version",
                                format!(
                                    "unsupported policy language version {s:?}; use \"2012-10-17\""
                                ),
                            ))
                        }
                        other => return Err(not_a_string(TOP, "Version", &other)),
                    })
                }
                "Id" => match value {
                    Json::String(s) => id = Some(s),
                    other => return Err(not_a_string(TOP, "Id", &other)),
                },
                "Statement" => statement = Some(value),
                other => {
                    return Err(TOP.err(
                        other,
                        unknown_element(
                            other,
                            &["Version", "Id", "Statement"],
                            "Version, Id or Statement",
                        ),
                    ))
                }
            }
        }
        let version = version.unwrap_or(PolicyVersion::V2008);
        let Some(statement) = statement else {
            return Err(TOP.err("$", "the policy has no Statement"));
        };
        let items: Vec<(String, Json)> = match statement {
            Json::Object(_) => vec![("Statement".to_owned(), statement)],
            Json::Array(items) if items.is_empty() => {
                return Err(TOP.err("Statement", "Statement must not be an empty array"))
            }
            Json::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("Statement[{i}]"), s))
                .collect(),
            other => {
                return Err(TOP.err(
                    "Statement",
                    format!(
                        "Statement must be an object or an array of objects, not {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let mut statements: Vec<Statement> = Vec::with_capacity(items.len());
        for (index, (path, item)) in items.into_iter().enumerate() {
            let stmt = parse_statement(item, index, &path, version, kind)?;
            if let Some(sid) = &stmt.sid {
                if statements.iter().any(|s| s.sid.as_ref() == Some(sid)) {
                    let loc = Loc {
                        statement: Some(index),
                        sid: Some(sid),
                    };
                    return Err(loc.err(
                        format!("{path}.Sid"),
                        format!("Sid {sid:?} is used by more than one statement"),
                    ));
                }
            }
            statements.push(stmt);
        }
        Ok(Policy {
            version,
            id,
            kind,
            statements,
        })
    }

    /// The policy's `Id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The policy language version.
    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    /// The kind the policy was parsed as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// How many statements the policy has.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// The `Sid` of each statement, in order.
    pub fn sids(&self) -> impl Iterator<Item = Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref())
    }

    /// Legal constructs that are likely mistakes, for the operator to review.
    pub fn warnings(&self) -> Vec<PolicyWarning> {
        let mut out = Vec::new();
        for s in &self.statements {
            let mut warn = |message: String| {
                out.push(PolicyWarning {
                    statement: s.index,
                    sid: s.sid.clone(),
                    message,
                })
            };
            let allow = s.effect == StatementEffect::Allow;
            if allow {
                for c in &s.conditions {
                    let guarded = s.conditions.iter().any(|n| {
                        n.op.base == condition::Base::Null
                            && n.key == c.key
                            && n.raw_values.iter().all(|v| v.eq_ignore_ascii_case("false"))
                    });
                    if c.op.qualifier == SetQualifier::ForAllValues && !guarded {
                        warn(format!(
                            "{} on {:?} is true when the key is missing or empty; add \
                             \"Null\": {{{:?}: \"false\"}} to require it",
                            c.operator, c.key_name, c.key_name
                        ));
                    }
                }
                if s.principal.as_ref().is_some_and(|p| p.negated) {
                    warn(
                        "Allow with NotPrincipal grants every principal not listed, anonymous \
                         callers included"
                            .to_owned(),
                    );
                }
                let open = s.principal.as_ref().is_some_and(|p| {
                    !p.negated
                        && match &p.spec {
                            PrincipalSpec::Anyone => true,
                            PrincipalSpec::Entries(es) => es.iter().any(|e| {
                                matches!(
                                    e,
                                    PrincipalEntry::AnyAws
                                        | PrincipalEntry::AnyFederated
                                        | PrincipalEntry::AnyService
                                )
                            }),
                        }
                });
                if open && s.conditions.is_empty() {
                    warn("allows any principal without conditions".to_owned());
                }
            }
            if self.version == PolicyVersion::V2008 {
                let uses_variables = s
                    .resource
                    .iter()
                    .flat_map(|r| r.raw.iter())
                    .chain(s.conditions.iter().flat_map(|c| c.raw_values.iter()))
                    .any(|v| v.contains("${"));
                if uses_variables {
                    warn(
                        "policy variables need \"Version\": \"2012-10-17\"; here ${…} is literal \
                         text"
                            .to_owned(),
                    );
                }
            }
        }
        for (st, message) in super::lint::lint(self) {
            out.push(PolicyWarning {
                statement: st.index,
                sid: st.sid.clone(),
                message,
            });
        }
        out.sort_by_key(|w| w.statement);
        out
    }
}

fn not_a_string(loc: Loc<'_>, path: &str, v: &Json) -> PolicyError {
    loc.err(
        path,
        format!("{path} must be a string, not {}", v.type_name()),
    )
}

fn parse_statement(
    item: Json,
    index: usize,
    path: &str,
    version: PolicyVersion,
    kind: PolicyKind,
) -> Result<Statement> {
    let bare = Loc {
        statement: Some(index),
        sid: None,
    };
    let Json::Object(entries) = item else {
        return Err(bare.err(
            path,
            format!("a statement must be an object, not {}", item.type_name()),
        ));
    };
    let sid = match entries.iter().find(|(k, _)| k == "Sid") {
        Some((_, Json::String(s))) => Some(s.clone()),
        Some((_, other)) => return Err(not_a_string(bare, &format!("{path}.Sid"), other)),
        None => None,
    };
    let loc = Loc {
        statement: Some(index),
        sid: sid.as_deref(),
    };
    let variables_enabled = version == PolicyVersion::V2012;
    let mut effect = None;
    let mut principal = None;
    let mut action = None;
    let mut resource = None;
    let mut conditions = Vec::new();
    for (key, value) in entries {
        let here = format!("{path}.{key}");
        match key.as_str() {
            "Sid" => {}
            "Effect" => {
                effect = Some(match value {
                    Json::String(s) if s == "Allow" => StatementEffect::Allow,
                    Json::String(s) if s == "Deny" => StatementEffect::Deny,
                    Json::String(s) => {
                        return Err(loc.err(
                            here,
                            format!("Effect must be \"Allow\" or \"Deny\", not {s:?}"),
                        ))
                    }
                    other => return Err(not_a_string(loc, &here, &other)),
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(loc.err(
                        here,
                        "a statement cannot have both Principal and NotPrincipal",
                    ));
                }
                principal = Some(parse_principal(value, key == "NotPrincipal", loc, &here)?);
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(loc.err(here, "a statement cannot have both Action and NotAction"));
                }
                action = Some(parse_action(value, key == "NotAction", loc, &here)?);
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(loc.err(
                        here,
                        "a statement cannot have both Resource and NotResource",
                    ));
                }
                resource = Some(parse_resource(
                    value,
                    key == "NotResource",
                    variables_enabled,
                    loc,
                    &here,
                )?);
            }
            "Condition" => conditions = parse_conditions(value, variables_enabled, loc, &here)?,
            other => {
                return Err(loc.err(
                    here,
                    unknown_element(
                        other,
                        &STATEMENT_ELEMENTS,
                        "Sid, Effect, Principal, NotPrincipal, Action, NotAction, Resource, \
                         NotResource or Condition",
                    ),
                ))
            }
        }
    }
    let Some(effect) = effect else {
        return Err(loc.err(path, "the statement has no Effect"));
    };
    let Some(action) = action else {
        return Err(loc.err(path, "the statement needs Action or NotAction"));
    };
    if kind.is_resource_based() {
        if principal.is_none() {
            return Err(loc.err(
                path,
                format!(
                    "a statement in {} needs Principal or NotPrincipal",
                    kind.describe()
                ),
            ));
        }
    } else if principal.is_some() {
        return Err(loc.err(
            path,
            format!(
                "Principal and NotPrincipal are not allowed in {}",
                kind.describe()
            ),
        ));
    }
    if resource.is_none() && kind != PolicyKind::Trust {
        return Err(loc.err(path, "the statement needs Resource or NotResource"));
    }
    let mut required_variables: Vec<(String, String)> = Vec::new();
    let mut note = |v: &Variable| {
        if !required_variables.iter().any(|(k, _)| *k == v.key) {
            required_variables.push((v.key.clone(), v.name.clone()));
        }
    };
    if let Some(r) = &resource {
        for p in &r.patterns {
            if let ArnPattern::Fields(fields) = p {
                for g in fields {
                    variables::required_variables(g.pieces()).for_each(&mut note);
                }
            }
        }
    }
    for c in &conditions {
        c.required_variables().into_iter().for_each(&mut note);
    }
    Ok(Statement {
        index,
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
        required_variables,
    })
}

/// A string or a non-empty array of strings.
fn string_list(value: Json, loc: Loc<'_>, path: &str) -> Result<Vec<String>> {
    match value {
        Json::String(s) => Ok(vec![s]),
        Json::Array(items) if items.is_empty() => Err(loc.err(path, "must not be an empty array")),
        Json::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::String(s) => Ok(s),
                other => Err(loc.err(
                    format!("{path}[{i}]"),
                    format!("must be a string, not {}", other.type_name()),
                )),
            })
            .collect(),
        other => Err(loc.err(
            path,
            format!(
                "must be a string or an array of strings, not {}",
                other.type_name()
            ),
        )),
    }
}

fn item_path(path: &str, i: usize, n: usize) -> String {
    if n > 1 {
        format!("{path}[{i}]")
    } else {
        path.to_owned()
    }
}

fn parse_action(value: Json, negated: bool, loc: Loc<'_>, path: &str) -> Result<ActionClause> {
    let raw = string_list(value, loc, path)?;
    let mut patterns = Vec::with_capacity(raw.len());
    for (i, a) in raw.iter().enumerate() {
        let valid = a == "*"
            || a.split_once(':').is_some_and(|(svc, act)| {
                !svc.is_empty()
                    && !act.is_empty()
                    && !a.contains(char::is_whitespace)
                    && !act.contains(':')
            });
        if !valid {
            return Err(loc.err(
                item_path(path, i, raw.len()),
                format!("action {a:?} must be \"*\" or of the form service:action"),
            ));
        }
        let pieces = variables::parse(a, false, true)
            .map_err(|m| loc.err(item_path(path, i, raw.len()), m))?;
        patterns.push(Glob::new(pieces, true));
    }
    Ok(ActionClause {
        negated,
        patterns,
        raw,
    })
}

fn parse_resource(
    value: Json,
    negated: bool,
    variables_enabled: bool,
    loc: Loc<'_>,
    path: &str,
) -> Result<ResourceClause> {
    let raw = string_list(value, loc, path)?;
    let mut patterns = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let here = item_path(path, i, raw.len());
        if r != "*" && !r.starts_with("arn:") {
            return Err(loc.err(
                here,
                format!("resource {r:?} must be \"*\" or an ARN (arn:partition:service:…)"),
            ));
        }
        let pieces = variables::parse(r, variables_enabled, true).map_err(|m| loc.err(&here, m))?;
        patterns.push(ArnPattern::new(pieces));
    }
    Ok(ResourceClause {
        negated,
        patterns,
        raw,
    })
}

/// Whether `s` is an account id: exactly 12 ASCII digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` names one action as a request does: `service:Action` (the service of ASCII letters,
/// digits and `-`, the action of letters and digits, neither empty, no wildcard), at most 128
/// characters.
pub fn is_action_name(s: &str) -> bool {
    s.len() <= 128
        && s.split_once(':').is_some_and(|(svc, name)| {
            !svc.is_empty()
                && !name.is_empty()
                && svc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && name.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// The account of `arn:<partition>:iam::<account>:root`.
pub(crate) fn root_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let account = rest.strip_prefix("iam::")?.strip_suffix(":root")?;
    is_account_id(account).then_some(account)
}

fn parse_principal(
    value: Json,
    negated: bool,
    loc: Loc<'_>,
    path: &str,
) -> Result<PrincipalClause> {
    let entries = match value {
        Json::String(s) if s == "*" => {
            return Ok(PrincipalClause {
                negated,
                spec: PrincipalSpec::Anyone,
                raw: vec!["*".to_owned()],
            })
        }
        Json::Object(entries) if entries.is_empty() => {
            return Err(loc.err(path, "must name at least one principal"))
        }
        Json::Object(entries) => entries,
        Json::String(s) => {
            return Err(loc.err(
                path,
                format!("must be \"*\" or an object such as {{\"AWS\": …}}, not {s:?}"),
            ))
        }
        other => {
            return Err(loc.err(
                path,
                format!("must be \"*\" or an object, not {}", other.type_name()),
            ))
        }
    };
    let mut out = Vec::new();
    let mut raw = Vec::new();
    for (kind, list) in entries {
        let here = format!("{path}.{kind}");
        let values = string_list(list, loc, &here)?;
        let n = values.len();
        for (i, v) in values.into_iter().enumerate() {
            let at = item_path(&here, i, n);
            if v.is_empty() {
                return Err(loc.err(at, "a principal must not be empty"));
            }
            let entry = match kind.as_str() {
                "AWS" => {
                    if v == "*" {
                        PrincipalEntry::AnyAws
                    } else if is_account_id(&v) {
                        PrincipalEntry::Account(v.clone())
                    } else if let Some(acct) = root_account(&v) {
                        PrincipalEntry::Account(acct.to_owned())
                    } else if v.starts_with("arn:") && !v.contains(['*', '?']) {
                        PrincipalEntry::Aws(v.clone())
                    } else {
                        return Err(loc.err(
                            at,
                            format!(
                                "invalid AWS principal {v:?}: expected \"*\", a 12-digit account \
                                 ID or an ARN without wildcards"
                            ),
                        ));
                    }
                }
                "Federated" if v == "*" => PrincipalEntry::AnyFederated,
                "Federated" => PrincipalEntry::Federated(v.clone()),
                "Service" if v == "*" => PrincipalEntry::AnyService,
                "Service" => PrincipalEntry::Service(v.clone()),
                "CanonicalUser" => PrincipalEntry::CanonicalUser(v.clone()),
                other => {
                    return Err(loc.err(
                        &here,
                        format!(
                            "unknown principal type {other:?}; expected AWS, Federated, Service \
                             or CanonicalUser"
                        ),
                    ))
                }
            };
            raw.push(format!("{kind}:{v}"));
            out.push(entry);
        }
    }
    Ok(PrincipalClause {
        negated,
        spec: PrincipalSpec::Entries(out),
        raw,
    })
}

fn parse_conditions(
    value: Json,
    variables_enabled: bool,
    loc: Loc<'_>,
    path: &str,
) -> Result<Vec<Condition>> {
    let Json::Object(operators) = value else {
        return Err(loc.err(
            path,
            format!("Condition must be an object, not {}", value.type_name()),
        ));
    };
    let mut out = Vec::new();
    for (name, block) in operators {
        let here = format!("{path}.{name}");
        let op = condition::parse_operator(&name).map_err(|m| loc.err(&here, m))?;
        let keys = match block {
            Json::Object(keys) if keys.is_empty() => {
                return Err(loc.err(&here, "must name at least one condition key"))
            }
            Json::Object(keys) => keys,
            other => {
                return Err(loc.err(
                    &here,
                    format!(
                        "must be an object of condition keys, not {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, values) in keys {
            let at = format!("{here}[{key:?}]");
            if key.is_empty() {
                return Err(loc.err(at, "a condition key must not be empty"));
            }
            let lower = key.to_lowercase();
            if seen.contains(&lower) {
                return Err(loc.err(
                    at,
                    format!("condition key {key:?} appears twice (key names are case-insensitive)"),
                ));
            }
            seen.push(lower);
            let raw = condition_values(values, loc, &at)?;
            let n = raw.len();
            let compiled =
                Condition::compile(&name, op, &key, raw, variables_enabled).map_err(|(i, m)| {
                    let p = match i {
                        Some(i) if n > 1 => format!("{at}[{i}]"),
                        _ => at.clone(),
                    };
                    loc.err(p, m)
                })?;
            out.push(compiled);
        }
    }
    Ok(out)
}

fn scalar(value: Json) -> std::result::Result<String, &'static str> {
    match value {
        Json::String(s) => Ok(s),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(other.type_name()),
    }
}

fn condition_values(value: Json, loc: Loc<'_>, path: &str) -> Result<Vec<String>> {
    match value {
        Json::Array(items) if items.is_empty() => {
            Err(loc.err(path, "must not be an empty array"))
        }
        Json::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                scalar(item).map_err(|t| {
                    loc.err(
                        format!("{path}[{i}]"),
                        format!("a condition value must be a string, number or boolean, not {t}"),
                    )
                })
            })
            .collect(),
        other => scalar(other).map(|s| vec![s]).map_err(|t| {
            loc.err(
                path,
                format!("a condition value must be a string, number, boolean or an array of them, not {t}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_accounts() {
        assert_eq!(
            root_account("arn:aws:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            root_account("arn:aws-cn:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(root_account("arn:aws:iam::123456789012:role/root"), None);
        assert_eq!(root_account("arn:aws:iam::12345:root"), None);
        assert_eq!(root_account("123456789012"), None);
    }

    #[test]
    fn versions() {
        let p = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        assert_eq!(p.version(), PolicyVersion::V2008);
        assert_eq!(p.version().as_str(), "2008-10-17");
        assert_eq!(p.statement_count(), 1);
        assert_eq!(p.id(), None);
        assert_eq!(p.kind(), PolicyKind::Identity);
    }
}
