//! Attribute projection (RFC 7644 §3.9) and list responses (RFC 7644 §3.4.2).
//!
//! `attributes` and `excludedAttributes` are comma-separated attribute paths, case-insensitive,
//! optionally URN-prefixed (`urn:…:enterprise:2.0:User:department`, or the extension URN alone for
//! the whole extension) or naming a sub-attribute (`name.givenName`, `emails.value`). `id` and
//! `schemas` are always returned, `password` (returned=never) never. A path naming no attribute
//! of the resource is ignored; a malformed one is 400 `invalidValue`. Given both, `attributes`
//! selects first and `excludedAttributes` then removes.

use super::definitions::{Attribute, Returned, COMMON};
use super::path::{get_ci, resolve, schema_attrs, AttrPath};
use super::{ResourceKind, ScimError, ScimType, LIST_RESPONSE};
use serde_json::{json, Map, Value};

/// One selected path: the extension (`None` for core), the attribute (`None` for a whole
/// extension) and the sub-attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sel {
    ext: Option<&'static str>,
    attr: Option<&'static str>,
    sub: Option<&'static str>,
}

fn parse_list(kind: ResourceKind, param: &str, list: &str) -> Result<Vec<Sel>, ScimError> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p = AttrPath::parse(item)
            .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, format!("{param}: {e}")))?;
        if p.name.is_empty() {
            if let Some(u) = p.urn.filter(|u| kind.extensions().contains(u)) {
                out.push(Sel {
                    ext: Some(u),
                    attr: None,
                    sub: None,
                });
            }
            continue;
        }
        if let Ok(t) = resolve(kind, &p) {
            out.push(Sel {
                ext: t.ext,
                attr: Some(t.attr.name),
                sub: t.sub.map(|s| s.name),
            });
        }
    }
    Ok(out)
}

/// The definition of a top-level member of a stored resource, if it is an attribute.
fn def(kind: ResourceKind, ext: Option<&str>, key: &str) -> Option<&'static Attribute> {
    let attrs: Box<dyn Iterator<Item = &'static Attribute>> = match ext {
        Some(u) => Box::new(schema_attrs(u).iter()),
        None => Box::new(COMMON.iter().chain(schema_attrs(kind.schema()))),
    };
    attrs.into_iter().find(|a| a.name.eq_ignore_ascii_case(key))
}

/// Keeps only the sub-attributes `subs` of a complex value (each element, if multi-valued).
fn only_subs(v: &Value, subs: &[&str]) -> Option<Value> {
    let pick = |o: &Map<String, Value>| -> Map<String, Value> {
        o.iter()
            .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match v {
        Value::Object(o) => {
            Some(Value::Object(pick(o))).filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        }
        Value::Array(a) => {
            let items: Vec<Value> = a
                .iter()
                .filter_map(|x| x.as_object().map(pick))
                .filter(|o| !o.is_empty())
                .map(Value::Object)
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        _ => None,
    }
}

/// Removes the sub-attributes `subs` of a complex value (each element, if multi-valued).
fn without_subs(v: &Value, subs: &[&str]) -> Option<Value> {
    let drop = |o: &Map<String, Value>| -> Map<String, Value> {
        o.iter()
            .filter(|(k, _)| !subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match v {
        Value::Object(o) => {
            Some(Value::Object(drop(o))).filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        }
        Value::Array(a) => {
            let items: Vec<Value> = a
                .iter()
                .map(|x| {
                    x.as_object()
                        .map_or_else(|| x.clone(), |o| Value::Object(drop(o)))
                })
                .filter(|x| x.as_object().is_none_or(|o| !o.is_empty()))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => Some(other.clone()),
    }
}

/// Projects the members of one holder (the resource, or an extension object).
fn project_holder(
    kind: ResourceKind,
    ext: Option<&'static str>,
    obj: &Map<String, Value>,
    include: Option<&[Sel]>,
    exclude: &[Sel],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        let Some(a) = def(kind, ext, k) else {
            // Not an attribute (e.g. `schemas`, an extension object): handled by the caller.
            if include.is_none() {
                out.insert(k.clone(), v.clone());
            }
            continue;
        };
        if a.returned == Returned::Never {
            continue;
        }
        let always = a.returned == Returned::Always;
        let mine = |s: &&Sel| s.ext == ext && s.attr == Some(a.name);
        let mut v = Some(v.clone());
        if let (Some(inc), false) = (include, always) {
            let sel: Vec<&Sel> = inc.iter().filter(mine).collect();
            let whole = sel.iter().any(|s| s.sub.is_none())
                || inc
                    .iter()
                    .any(|s| s.ext == ext && ext.is_some() && s.attr.is_none());
            let requested = !sel.is_empty() || whole;
            if !requested {
                continue;
            }
            if !whole {
                let subs: Vec<&str> = sel.iter().filter_map(|s| s.sub).collect();
                v = v.as_ref().and_then(|v| only_subs(v, &subs));
            }
        } else if a.returned == Returned::Request {
            continue;
        }
        if !always {
            let sel: Vec<&Sel> = exclude.iter().filter(mine).collect();
            if sel.iter().any(|s| s.sub.is_none()) {
                continue;
            }
            let subs: Vec<&str> = sel.iter().filter_map(|s| s.sub).collect();
            if !subs.is_empty() {
                v = v.as_ref().and_then(|v| without_subs(v, &subs));
            }
        }
        if let Some(v) = v {
            out.insert(a.name.into(), v);
        }
    }
    out
}

/// Applies `attributes` / `excludedAttributes` (see the module documentation) to a resource.
/// `schemas` in the result lists the extension only when extension attributes remain.
pub fn project(
    kind: ResourceKind,
    resource: &Value,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Value, ScimError> {
    let include = attributes
        .map(|a| parse_list(kind, "attributes", a))
        .transpose()?;
    let exclude = excluded
        .map(|e| parse_list(kind, "excludedAttributes", e))
        .transpose()?
        .unwrap_or_default();
    let Some(obj) = resource.as_object() else {
        return Ok(resource.clone());
    };
    let core: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !kind.extensions().iter().any(|u| u.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = project_holder(kind, None, &core, include.as_deref(), &exclude);
    let mut schemas = vec![Value::String(kind.schema().into())];
    for ext in kind.extensions() {
        let Some(Value::Object(eo)) = get_ci(obj, ext) else {
            continue;
        };
        if exclude
            .iter()
            .any(|s| s.ext == Some(ext) && s.attr.is_none())
        {
            continue;
        }
        let p = project_holder(kind, Some(ext), eo, include.as_deref(), &exclude);
        if !p.is_empty() {
            schemas.push(Value::String((*ext).into()));
            out.insert((*ext).into(), Value::Object(p));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    if let Some(id) = obj.get("id") {
        out.insert("id".into(), id.clone());
    }
    Ok(Value::Object(out))
}

/// A ListResponse:
/// `{"schemas":[LIST_RESPONSE],"totalResults":n,"startIndex":s,"itemsPerPage":len,"Resources":[…]}`.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
