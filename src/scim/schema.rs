//! The schemas rolegate serves (RFC 7643): validation of POST/PUT bodies into the stored form, and
//! (re-exported from `discovery.rs`) the discovery documents.
//!
//! What validation does with each kind of attribute:
//! - unknown attribute or sub-attribute → 400 `invalidSyntax` naming it;
//! - wrong type → 400 `invalidValue` naming the attribute and the type expected; booleans are also
//!   accepted as the strings "True"/"False" (any case), which Entra ID sends, and stored as booleans;
//! - readOnly (`id`, `meta`, a User's `groups`, `manager.displayName`) → ignored, the server sets them;
//! - writeOnly `password` → its type checked, then dropped: rolegate keeps no passwords of
//!   provisioned people (they sign in at their identity provider);
//! - null, empty arrays and empty objects → unassigned (left out);
//! - required (`userName`, a Group's `displayName`, a member's `value`) missing → 400 `invalidValue`;
//! - more than one `primary: true` in a multi-valued attribute → 400 `invalidValue`;
//! - a complex attribute with a `value` sub-attribute given as a bare string (Entra ID's
//!   `manager: "id"`) → `{"value": "id"}`;
//! - attribute names in any case → the canonical casing (`USERNAME` → `userName`).

use super::definitions::{AttrType, Attribute, Mutability, COMMON};
use super::eval::instant;
use super::path::{get_ci, resolve, schema_attrs, AttrPath};
use super::{ResourceKind, ScimError, ScimType};
use serde_json::{Map, Value};

pub use super::discovery::{
    resource_type, resource_types, schema, schemas, service_provider_config, MAX_RESULTS,
};

fn syntax(msg: String) -> ScimError {
    ScimError::bad_request(ScimType::InvalidSyntax, msg)
}

fn invalid(msg: String) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, msg)
}

/// Validates and normalises a POST/PUT body into the stored form (see the module documentation
/// for each rule). Returns the resource without `id`/`meta` (and without a User's `groups`): the
/// provisioning side adds those. `schemas` in the result lists the core schema and the
/// extension when the resource has extension attributes.
pub fn validate(kind: ResourceKind, body: &Value) -> Result<Value, ScimError> {
    let Some(obj) = body.as_object() else {
        return Err(syntax(format!(
            "the body of a {} is not a JSON object",
            kind.name()
        )));
    };
    check_schemas(kind, obj)?;
    let mut core = Map::new();
    let mut exts: Vec<(&'static str, Map<String, Value>)> = Vec::new();
    for (key, v) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = kind
            .extensions()
            .iter()
            .find(|u| u.eq_ignore_ascii_case(key))
        {
            if v.is_null() {
                continue;
            }
            let Some(eo) = v.as_object() else {
                return Err(invalid(format!(
                    "'{ext}' is an extension; expected a JSON object"
                )));
            };
            for (k, v) in eo {
                if k.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let Some(a) = schema_attrs(ext)
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(k))
                else {
                    return Err(syntax(format!("the schema {ext} has no attribute '{k}'")));
                };
                put(ext_map(&mut exts, ext), a, v)?;
            }
            continue;
        }
        let a = if key.len() >= 4 && key[..4].eq_ignore_ascii_case("urn:") {
            let p = AttrPath::parse(key).map_err(syntax)?;
            if p.name.is_empty() || p.sub.is_some() {
                return Err(syntax(format!(
                    "'{key}' is not an attribute of a {}",
                    kind.name()
                )));
            }
            let t = resolve(kind, &p).map_err(syntax)?;
            if let Some(ext) = t.ext {
                put(ext_map(&mut exts, ext), t.attr, v)?;
                continue;
            }
            t.attr
        } else {
            COMMON
                .iter()
                .chain(schema_attrs(kind.schema()))
                .find(|a| a.name.eq_ignore_ascii_case(key))
                .ok_or_else(|| syntax(format!("a {} has no attribute '{key}'", kind.name())))?
        };
        put(&mut core, a, v)?;
    }
    for a in schema_attrs(kind.schema()).iter().filter(|a| a.required) {
        if !core.contains_key(a.name) {
            return Err(invalid(format!("a {} needs '{}'", kind.name(), a.name)));
        }
    }
    let mut schemas = vec![Value::String(kind.schema().into())];
    for (ext, m) in exts {
        if !m.is_empty() {
            schemas.push(Value::String(ext.into()));
            core.insert(ext.into(), Value::Object(m));
        }
    }
    core.insert("schemas".into(), Value::Array(schemas));
    Ok(Value::Object(core))
}

fn ext_map<'a>(
    exts: &'a mut Vec<(&'static str, Map<String, Value>)>,
    ext: &'static str,
) -> &'a mut Map<String, Value> {
    let i = match exts.iter().position(|(u, _)| *u == ext) {
        Some(i) => i,
        None => {
            exts.push((ext, Map::new()));
            exts.len() - 1
        }
    };
    &mut exts[i].1
}

/// `schemas` must list the kind's core schema and nothing unknown.
fn check_schemas(kind: ResourceKind, obj: &Map<String, Value>) -> Result<(), ScimError> {
    let Some(s) = get_ci(obj, "schemas") else {
        return Err(syntax(format!(
            "'schemas' is missing; a {} lists {}",
            kind.name(),
            kind.schema()
        )));
    };
    let Some(list) = s.as_array() else {
        return Err(syntax("'schemas' is not an array of schema URNs".into()));
    };
    let mut core = false;
    for u in list {
        let Some(u) = u.as_str() else {
            return Err(syntax("'schemas' is not an array of schema URNs".into()));
        };
        if u.eq_ignore_ascii_case(kind.schema()) {
            core = true;
        } else if !kind.extensions().iter().any(|e| e.eq_ignore_ascii_case(u)) {
            return Err(syntax(format!("a {} has no schema {u}", kind.name())));
        }
    }
    if !core {
        return Err(syntax(format!("'schemas' does not list {}", kind.schema())));
    }
    Ok(())
}

/// Converts one attribute's value and stores it under its canonical name (unless readOnly,
/// writeOnly or unassigned).
fn put(out: &mut Map<String, Value>, a: &'static Attribute, v: &Value) -> Result<(), ScimError> {
    if out.contains_key(a.name) {
        return Err(syntax(format!("'{}' is given more than once", a.name)));
    }
    if a.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    let v = convert(a, v, a.name)?;
    if a.mutability == Mutability::WriteOnly {
        return Ok(());
    }
    if let Some(v) = v {
        out.insert(a.name.into(), v);
    }
    Ok(())
}

/// An attribute's value in stored form; `None` when unassigned. `what` names it in errors.
pub(crate) fn convert(a: &Attribute, v: &Value, what: &str) -> Result<Option<Value>, ScimError> {
    if v.is_null() {
        return Ok(None);
    }
    if !a.multi_valued {
        return single(a, v, what);
    }
    let Some(items) = v.as_array() else {
        return Err(invalid(format!(
            "'{what}' is multi-valued; expected an array"
        )));
    };
    let mut out = Vec::new();
    for item in items {
        if item.is_array() {
            return Err(invalid(format!("'{what}' holds an array in an array")));
        }
        if let Some(x) = single(a, item, what)? {
            out.push(x);
        }
    }
    let primaries = out
        .iter()
        .filter(|x| x.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(invalid(format!("'{what}' has more than one primary value")));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// One value of an attribute (an element, for a multi-valued one).
fn single(a: &Attribute, v: &Value, what: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |expected: &str| {
        invalid(format!(
            "'{what}' is {expected}; got {}",
            match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        ))
    };
    let out = match a.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let Some(s) = v.as_str() else {
                return Err(wrong(&format!("a {}", a.ty.as_str())));
            };
            if a.ty == AttrType::Binary && !is_base64(s) {
                return Err(invalid(format!("'{what}' is binary; expected base64")));
            }
            Value::String(s.into())
        }
        AttrType::Boolean => match v {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("a boolean")),
        },
        AttrType::Integer => match v.as_i64() {
            Some(n) => Value::from(n),
            None => return Err(wrong("an integer")),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => v.clone(),
            _ => return Err(wrong("a decimal")),
        },
        AttrType::DateTime => match v.as_str() {
            Some(s) if instant(s).is_some() => Value::String(s.into()),
            _ => {
                return Err(wrong(
                    "a dateTime (xsd:dateTime, e.g. 2011-05-13T04:42:34Z)",
                ))
            }
        },
        AttrType::Complex => return complex(a, v, what),
    };
    Ok(Some(out))
}

fn complex(a: &Attribute, v: &Value, what: &str) -> Result<Option<Value>, ScimError> {
    let obj = match v {
        Value::Object(o) => o.clone(),
        Value::String(s) if a.sub("value").is_some() => {
            let mut m = Map::new();
            m.insert("value".into(), Value::String(s.clone()));
            m
        }
        _ => {
            return Err(invalid(format!(
                "'{what}' is complex; expected a JSON object"
            )))
        }
    };
    let mut out = Map::new();
    for (k, x) in &obj {
        let Some(s) = a.sub(k) else {
            return Err(syntax(format!("'{what}' has no sub-attribute '{k}'")));
        };
        if out.contains_key(s.name) {
            return Err(syntax(format!(
                "'{what}.{}' is given more than once",
                s.name
            )));
        }
        if s.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(x) = convert(s, x, &format!("{what}.{}", s.name))? {
            out.insert(s.name.into(), x);
        }
    }
    for s in a.sub_attributes.iter().filter(|s| s.required) {
        if !out.contains_key(s.name) {
            return Err(invalid(format!("'{what}' needs '{}'", s.name)));
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn is_base64(s: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}
