//! Evaluation of a parsed filter against a stored resource, and the check of a filter's
//! attributes against a resource kind's schema.
//!
//! String comparison is case-insensitive unless the attribute is caseExact; `gt`/`ge`/`lt`/`le`
//! compare dateTime attributes as instants, numbers numerically and strings lexically; booleans
//! take `eq`/`ne` only (also against the strings "True"/"False", as Entra ID writes them). A
//! multi-valued attribute matches when any of its values does; a complex attribute without a
//! sub-attribute compares its `value` sub-attribute. `ne` is the negation of `eq`, so an absent
//! attribute is `ne` anything; `eq null` holds for an absent attribute.

use super::definitions::{AttrType, Attribute, Returned};
use super::filter::{Expr, Filter, Literal, Op};
use super::path::{container, get_ci, resolve, AttrPath, Target};
use super::{ResourceKind, ScimError, ScimType};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use std::cmp::Ordering;

impl Filter {
    /// Whether a stored resource (full SCIM JSON as the provisioning side stores it) matches.
    /// A path that names no attribute of `kind` matches nothing ([`Filter::check`] refuses it).
    pub fn matches(&self, kind: ResourceKind, resource: &Value) -> bool {
        eval(kind, &self.expr, Scope::Resource(resource))
    }

    /// Checks the filter against the schema of `kind`: every path names an attribute
    /// (`invalidFilter` naming it if not), none is returned=never (`password`), operators fit the
    /// attribute's type (`gt` on a boolean, `co` on a number or complex attribute without a
    /// `value` → `invalidFilter`).
    pub fn check(&self, kind: ResourceKind) -> Result<(), ScimError> {
        check(kind, &self.expr, None)
    }
}

/// The error of a filter that names something it cannot filter on.
fn invalid(msg: String) -> ScimError {
    ScimError::bad_request(ScimType::InvalidFilter, msg)
}

fn check(
    kind: ResourceKind,
    e: &Expr,
    parent: Option<&'static Attribute>,
) -> Result<(), ScimError> {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().try_for_each(|x| check(kind, x, parent)),
        Expr::Not(x) => check(kind, x, parent),
        Expr::Present(p) => leaf(kind, p, parent).map(|_| ()),
        Expr::ValuePath(p, x) => {
            let t = resolve(kind, p).map_err(invalid)?;
            if t.attr.ty != AttrType::Complex {
                return Err(invalid(format!(
                    "'{}' has no sub-attributes to filter on in brackets",
                    t.attr.name
                )));
            }
            check(kind, x, Some(t.attr))
        }
        Expr::Compare(p, op, lit) => {
            let a = leaf(kind, p, parent)?;
            let ok = match (a.ty, op) {
                (AttrType::Complex, _) => false,
                (AttrType::Boolean, Op::Eq | Op::Ne) => true,
                (AttrType::Boolean | AttrType::Binary, _) => false,
                (AttrType::Integer | AttrType::Decimal, Op::Co | Op::Sw | Op::Ew) => false,
                _ => true,
            };
            if !ok {
                return Err(invalid(format!(
                    "'{}' is {} {}; '{}' does not apply to it",
                    p.lower(),
                    if a.ty == AttrType::Integer { "an" } else { "a" },
                    a.ty.as_str(),
                    op.as_str()
                )));
            }
            if a.ty == AttrType::DateTime {
                if let Literal::Str(s) = lit {
                    if instant(s).is_none() {
                        return Err(invalid(format!(
                            "'{}' is a dateTime; \"{s}\" is not one (xsd:dateTime, e.g. 2011-05-13T04:42:34Z)",
                            p.lower()
                        )));
                    }
                }
            }
            Ok(())
        }
    }
}

/// The attribute a filter path compares, for checking.
fn leaf(
    kind: ResourceKind,
    p: &AttrPath,
    parent: Option<&'static Attribute>,
) -> Result<&'static Attribute, ScimError> {
    let a = match parent {
        Some(parent) => parent.sub(&p.name).ok_or_else(|| {
            invalid(format!(
                "'{}' has no sub-attribute '{}'",
                parent.name, p.name
            ))
        })?,
        None => {
            let t = resolve(kind, p).map_err(invalid)?;
            let a = t.leaf();
            if a.ty == AttrType::Complex {
                a.sub("value").unwrap_or(a)
            } else {
                a
            }
        }
    };
    if a.returned == Returned::Never {
        return Err(invalid(format!("'{}' cannot be filtered on", a.name)));
    }
    Ok(a)
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a Value),
    /// One value of a complex attribute, inside brackets.
    Element(&'static Attribute, &'a Map<String, Value>),
}

fn eval(kind: ResourceKind, e: &Expr, scope: Scope<'_>) -> bool {
    match e {
        Expr::And(v) => v.iter().all(|x| eval(kind, x, scope)),
        Expr::Or(v) => v.iter().any(|x| eval(kind, x, scope)),
        Expr::Not(x) => !eval(kind, x, scope),
        Expr::Present(p) => {
            values(kind, p, scope, false).is_some_and(|(_, vs)| vs.iter().any(|v| present(v)))
        }
        Expr::ValuePath(p, x) => {
            let Scope::Resource(r) = scope else {
                return false;
            };
            let Ok(t) = resolve(kind, p) else {
                return false;
            };
            let Some(v) = container(r, t.ext).and_then(|c| get_ci(c, t.attr.name)) else {
                return false;
            };
            let elems: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            elems.into_iter().any(|el| {
                el.as_object()
                    .is_some_and(|o| eval(kind, x, Scope::Element(t.attr, o)))
            })
        }
        Expr::Compare(p, op, lit) => {
            let Some((a, vs)) = values(kind, p, scope, true) else {
                return *op == Op::Ne;
            };
            match op {
                Op::Ne => !vs.iter().any(|v| compare(a, v, Op::Eq, lit)),
                _ if *lit == Literal::Null && *op == Op::Eq => !vs.iter().any(|v| present(v)),
                _ => vs.iter().any(|v| compare(a, v, *op, lit)),
            }
        }
    }
}

/// The attribute a path compares and the values it has in scope (multi-valued flattened); `None`
/// when the path names no attribute.
fn values<'a>(
    kind: ResourceKind,
    p: &AttrPath,
    scope: Scope<'a>,
    to_value: bool,
) -> Option<(&'static Attribute, Vec<&'a Value>)> {
    match scope {
        Scope::Element(parent, obj) => {
            let a = parent.sub(&p.name)?;
            Some((a, flatten(get_ci(obj, a.name))))
        }
        Scope::Resource(r) => {
            let t: Target = resolve(kind, p).ok()?;
            let top = container(r, t.ext).and_then(|c| get_ci(c, t.attr.name));
            let sub = match t.sub {
                Some(s) => Some(s),
                None if to_value && t.attr.ty == AttrType::Complex => t.attr.sub("value"),
                None => None,
            };
            match sub {
                None => Some((t.attr, flatten(top))),
                Some(s) => {
                    let vs = flatten(top)
                        .into_iter()
                        .filter_map(|el| el.as_object().and_then(|o| get_ci(o, s.name)))
                        .flat_map(|v| flatten(Some(v)))
                        .collect();
                    Some((s, vs))
                }
            }
        }
    }
}

fn flatten(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter(|x| !x.is_null()).collect(),
        Some(other) => vec![other],
    }
}

/// "Has a value" for `pr`: not null, not an empty string, array or object.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => o.values().any(present),
        _ => true,
    }
}

/// An `xsd:dateTime` as an instant; one without an offset is taken as UTC.
pub(crate) fn instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn ordered(ord: Ordering, op: Op) -> bool {
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// One stored value against a literal.
fn compare(a: &Attribute, v: &Value, op: Op, lit: &Literal) -> bool {
    match (a.ty, lit) {
        (_, Literal::Null) => false,
        (AttrType::Boolean, _) => {
            let l = match lit {
                Literal::Bool(b) => Some(*b),
                Literal::Str(s) => boolean(&Value::String(s.clone())),
                _ => None,
            };
            match (boolean(v), l, op) {
                (Some(x), Some(y), Op::Eq) => x == y,
                _ => false,
            }
        }
        (AttrType::DateTime, Literal::Str(s)) => match (v.as_str().and_then(instant), instant(s)) {
            (Some(x), Some(y)) => ordered(x.cmp(&y), op),
            _ => false,
        },
        (AttrType::Integer | AttrType::Decimal, Literal::Num(n)) => {
            match (v.as_f64(), n.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).is_some_and(|o| ordered(o, op)),
                _ => false,
            }
        }
        (_, Literal::Str(s)) => {
            let Some(x) = v.as_str() else {
                return false;
            };
            let (x, y) = if a.case_exact {
                (x.to_string(), s.clone())
            } else {
                (x.to_lowercase(), s.to_lowercase())
            };
            match op {
                Op::Co => x.contains(&y),
                Op::Sw => x.starts_with(&y),
                Op::Ew => x.ends_with(&y),
                _ => ordered(x.cmp(&y), op),
            }
        }
        _ => false,
    }
}

/// Whether one value of the complex attribute `parent` matches a value filter (the bracketed part
/// of a PATCH path).
pub(crate) fn element_matches(
    kind: ResourceKind,
    e: &Expr,
    parent: &'static Attribute,
    el: &Map<String, Value>,
) -> bool {
    eval(kind, e, Scope::Element(parent, el))
}

/// Checks a value filter on the sub-attributes of `parent` (as [`Filter::check`] does).
pub(crate) fn check_element(
    kind: ResourceKind,
    e: &Expr,
    parent: &'static Attribute,
) -> Result<(), ScimError> {
    check(kind, e, Some(parent))
}
