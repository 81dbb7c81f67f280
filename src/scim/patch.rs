//! PATCH (RFC 7644 §3.5.2) and the dialects Okta and Entra ID send:
//! - `op` in any case (`Replace`, `Add`, `Remove` from Entra ID);
//! - `add`/`replace` without a path, whose object value names attributes, dotted sub-attributes
//!   (`name.givenName`) and extension-URN-prefixed attributes
//!   (`urn:…:enterprise:2.0:User:department`), value-filtered paths
//!   (`emails[type eq "work"].value`), or holds the extension object under its URN; readOnly
//!   attributes in such a value (Okta sends the group's `id` with a rename) are ignored, and a null
//!   unassigns;
//! - booleans as the strings "True"/"False" (Entra ID);
//! - `remove` of a multi-valued attribute with a value list removes only the values each listed
//!   one names by the sub-attributes it gives (Entra ID's older form for `members`), and removing a
//!   member that is not in the group is no error;
//! - `add` or `replace` with a value filter that selects nothing, when the filter is `eq`
//!   comparisons joined by `and` (`emails[type eq "work"].value`), adds a value built from them.
//!   For `replace` this departs from RFC 7644 §3.5.2.3 (`noTarget`): Entra ID sends
//!   `Replace emails[type eq "work"].value` to a user who has no work address yet and counts
//!   `noTarget` as a failed update;
//! - a complex attribute given a bare string (`manager: "id"`) takes it as its `value`, and a
//!   single-valued attribute given a list of one value takes that value (Entra ID's
//!   `"path": "manager", "value": [{"$ref": null, "value": "id"}]`).
//!
//! Errors: a malformed message → 400 `invalidSyntax`; a malformed path or one naming no attribute →
//! 400 `invalidPath`; `remove` without a path, or `add`/`replace` whose value filter selects
//! nothing and does not describe a value (`emails[value co "@x"]`) → 400 `noTarget`; a readOnly target (`id`, `meta`, `groups`) or a change to an immutable one
//! (a member's `value`) → 400 `mutability`; a wrong value → 400 `invalidValue`. Each detail starts
//! with the operation's number. The function is pure: on error the caller keeps the old resource.

use super::definitions::{AttrType, Attribute, Mutability};
use super::eval::{check_element, element_matches};
use super::filter::{parse_patch_path, Expr, Literal, Op, PatchPath};
use super::path::{key_ci, resolve, Target};
use super::schema::{convert, validate};
use super::{ResourceKind, ScimError, ScimType, PATCH_OP};
use serde_json::{Map, Value};
use std::collections::HashMap;

fn err(t: ScimType, msg: impl Into<String>) -> ScimError {
    ScimError::bad_request(t, msg)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Replace,
    Remove,
}

/// Applies a PatchOp message to a stored resource and returns the new resource, validated as by
/// [`validate`] (so a PATCH can never store what a PUT could not), with the stored `id`, `meta`
/// and `groups` carried over unchanged. Atomic: any failing operation → `Err`, nothing applied.
pub fn apply(kind: ResourceKind, resource: &Value, message: &Value) -> Result<Value, ScimError> {
    let Some(msg) = message.as_object() else {
        return Err(err(
            ScimType::InvalidSyntax,
            "the PATCH body is not a JSON object",
        ));
    };
    let listed = super::path::get_ci(msg, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP)))
        });
    if !listed {
        return Err(err(
            ScimType::InvalidSyntax,
            format!("'schemas' of a PATCH body lists {PATCH_OP}"),
        ));
    }
    let ops = match super::path::get_ci(msg, "Operations") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(err(
                ScimType::InvalidSyntax,
                "'Operations' is missing or empty; a PATCH body holds at least one operation",
            ))
        }
    };
    let Some(original) = resource.as_object() else {
        return Err(ScimError::internal(
            "the stored resource is not a JSON object",
        ));
    };
    let mut doc = original.clone();
    for (i, op) in ops.iter().enumerate() {
        one(kind, &mut doc, op).map_err(|mut e| {
            e.detail = format!("operation {}: {}", i + 1, e.detail);
            e
        })?;
    }
    let mut out = validate(kind, &Value::Object(doc))?;
    if let Some(o) = out.as_object_mut() {
        for keep in ["id", "meta", "groups"] {
            if let Some(v) = original.get(keep) {
                o.insert(keep.into(), v.clone());
            }
        }
    }
    Ok(out)
}

fn one(kind: ResourceKind, doc: &mut Map<String, Value>, op: &Value) -> Result<(), ScimError> {
    let Some(op) = op.as_object() else {
        return Err(err(
            ScimType::InvalidSyntax,
            "an operation is not a JSON object",
        ));
    };
    let get = |n: &str| super::path::get_ci(op, n);
    let verb = match get("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Kind::Add,
        Some("replace") => Kind::Replace,
        Some("remove") => Kind::Remove,
        Some(other) => {
            return Err(err(
                ScimType::InvalidSyntax,
                format!("'op' is '{other}'; expected add, replace or remove"),
            ))
        }
        None => return Err(err(ScimType::InvalidSyntax, "'op' is missing")),
    };
    let value = get("value").filter(|v| !v.is_null());
    let path = match get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(err(ScimType::InvalidPath, "'path' is not a string")),
    };
    let Some(path) = path else {
        if verb == Kind::Remove {
            return Err(err(ScimType::NoTarget, "a remove operation needs a 'path'"));
        }
        let Some(Value::Object(fields)) = value else {
            return Err(err(
                ScimType::InvalidValue,
                "an add or replace without 'path' needs an object 'value' of attributes",
            ));
        };
        return fields_of(kind, doc, verb, None, fields);
    };
    let pp = parse_patch_path(path)?;
    if pp.attr.name.is_empty() {
        let ext = pp.attr.urn.unwrap_or_default();
        if !kind.extensions().contains(&ext) || pp.filter.is_some() {
            return Err(err(
                ScimType::InvalidPath,
                format!("a {} has no extension '{path}'", kind.name()),
            ));
        }
        return match (verb, value) {
            (Kind::Remove, _) => {
                if let Some(k) = key_ci(doc, ext) {
                    doc.remove(&k);
                }
                Ok(())
            }
            (_, Some(Value::Object(fields))) => fields_of(kind, doc, verb, Some(ext), fields),
            _ => Err(err(
                ScimType::InvalidValue,
                format!("'{ext}' takes an object 'value'"),
            )),
        };
    }
    let t = resolve(kind, &pp.attr).map_err(|e| err(ScimType::InvalidPath, e))?;
    on_path(kind, doc, verb, t, &pp, value)
}

/// `add`/`replace` without a path (or with a path naming an extension): each field of the value
/// is a path of its own.
fn fields_of(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    verb: Kind,
    ext: Option<&'static str>,
    fields: &Map<String, Value>,
) -> Result<(), ScimError> {
    for (k, v) in fields {
        // `schemas` names the message's schemas, also inside an extension object (as
        // scim2-client writes it): not an attribute to change.
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let (None, Some(e)) = (
            ext,
            kind.extensions().iter().find(|u| u.eq_ignore_ascii_case(k)),
        ) {
            let Value::Object(inner) = v else {
                return Err(err(
                    ScimType::InvalidValue,
                    format!("'{e}' takes an object"),
                ));
            };
            fields_of(kind, doc, verb, Some(e), inner)?;
            continue;
        }
        // A key is a path of its own: a name, a dotted sub-attribute, a URN-prefixed attribute,
        // or (as Microsoft's SCIM validator sends) a value filter with a sub-attribute.
        let mut pp = parse_patch_path(k)?;
        if let Some(e) = ext {
            if pp.attr.urn.is_some() {
                return Err(err(ScimType::InvalidPath, format!("'{k}' inside '{e}'")));
            }
            pp.attr.urn = Some(e);
        }
        if pp.attr.name.is_empty() {
            return Err(err(
                ScimType::InvalidPath,
                format!("'{k}' names no attribute"),
            ));
        }
        let t = resolve(kind, &pp.attr).map_err(|e| err(ScimType::InvalidPath, e))?;
        let read_only =
            |s: Option<&Attribute>| s.is_some_and(|s| s.mutability == Mutability::ReadOnly);
        if t.attr.mutability == Mutability::ReadOnly
            || read_only(t.sub)
            || read_only(pp.sub.as_deref().and_then(|s| t.attr.sub(s)))
        {
            continue;
        }
        // null unassigns (RFC 7643 §2.5).
        let (verb, v) = if v.is_null() {
            (Kind::Remove, None)
        } else {
            (verb, Some(v))
        };
        on_path(kind, doc, verb, t, &pp, v)?;
    }
    Ok(())
}

/// The object holding the target's attribute (the resource or its extension object), created on
/// demand.
fn holder<'a>(
    doc: &'a mut Map<String, Value>,
    ext: Option<&str>,
) -> Result<&'a mut Map<String, Value>, ScimError> {
    let Some(ext) = ext else {
        return Ok(doc);
    };
    let key = key_ci(doc, ext).unwrap_or_else(|| ext.to_string());
    let slot = doc.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| ScimError::internal("the extension object is not an object"))
}

/// Takes an attribute's current value out of its holder (under any casing of its name).
fn take(h: &mut Map<String, Value>, name: &str) -> Option<Value> {
    key_ci(h, name)
        .and_then(|k| h.remove(&k))
        .filter(|v| !v.is_null())
}

fn put(h: &mut Map<String, Value>, a: &Attribute, v: Option<Value>) {
    if let Some(v) = v {
        h.insert(a.name.into(), v);
    }
}

fn on_path(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    verb: Kind,
    t: Target,
    pp: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let a = t.attr;
    let sub = match (&t.sub, &pp.sub) {
        (Some(s), _) => Some(*s),
        (None, Some(s)) => Some(a.sub(s).ok_or_else(|| {
            err(
                ScimType::InvalidPath,
                format!("'{}' has no sub-attribute '{s}'", a.name),
            )
        })?),
        (None, None) => None,
    };
    if a.mutability == Mutability::ReadOnly
        || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    {
        let name = sub.map_or(a.name.to_string(), |s| format!("{}.{}", a.name, s.name));
        return Err(err(ScimType::Mutability, format!("'{name}' is readOnly")));
    }
    if let Some(s) = sub {
        if s.mutability == Mutability::Immutable && verb != Kind::Add {
            return Err(err(
                ScimType::Mutability,
                format!("'{}.{}' is immutable", a.name, s.name),
            ));
        }
    }
    if let Some(f) = &pp.filter {
        if a.ty != AttrType::Complex || !a.multi_valued {
            return Err(err(
                ScimType::InvalidPath,
                format!(
                    "'{}' is not a multi-valued complex attribute; a value filter does not apply",
                    a.name
                ),
            ));
        }
        check_element(kind, f, a).map_err(|e| err(ScimType::InvalidPath, e.detail))?;
    }
    if verb != Kind::Remove && value.is_none() {
        return Err(err(
            ScimType::InvalidValue,
            format!("'{}' needs a 'value'", a.name),
        ));
    }
    let h = holder(doc, t.ext)?;
    let current = take(h, a.name);
    let new = match (&pp.filter, sub) {
        (Some(f), _) => filtered(kind, verb, a, sub, f, current, value)?,
        (None, Some(s)) => sub_of(verb, a, s, current, value)?,
        (None, None) => whole(verb, a, current, value)?,
    };
    put(h, a, new);
    Ok(())
}

/// An operation on a whole attribute.
fn whole(
    verb: Kind,
    a: &Attribute,
    current: Option<Value>,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    let v = match (verb, value) {
        (Kind::Remove, None) => return Ok(None),
        (Kind::Remove, Some(v)) if a.multi_valued => {
            // Entra ID's older form: remove these values only.
            let gone = convert(a, &as_array(v), a.name)?.unwrap_or(Value::Array(Vec::new()));
            let gone = gone.as_array().cloned().unwrap_or_default();
            let mut items = into_items(current);
            // Values given with a string `value` cover only items of that `value`: look those
            // up by it (a batch of members removed from a large group is not members × batch
            // comparisons); the others are compared with every item.
            let mut by_value: HashMap<&str, Vec<&Value>> = HashMap::new();
            let mut others = Vec::new();
            for g in &gone {
                match g.get("value").and_then(Value::as_str) {
                    Some(v) => by_value.entry(v).or_default().push(g),
                    None => others.push(g),
                }
            }
            items.retain(|x| {
                let keyed = x
                    .get("value")
                    .and_then(Value::as_str)
                    .and_then(|v| by_value.get(v))
                    .is_some_and(|gs| gs.iter().any(|g| covers(g, x)));
                !(keyed || others.iter().any(|g| covers(g, x)))
            });
            return Ok((!items.is_empty()).then_some(Value::Array(items)));
        }
        (Kind::Remove, Some(_)) => return Ok(None),
        // Entra ID's older form: a single-valued attribute given as a one-value list
        // (`"path": "manager", "value": [{"$ref": null, "value": "id"}]`).
        (_, Some(Value::Array(one))) if !a.multi_valued && one.len() == 1 => &one[0],
        (_, Some(v)) => v,
        (_, None) => return Ok(current),
    };
    if a.multi_valued {
        let new = convert(a, &as_array(v), a.name)?;
        let new = new.and_then(|v| v.as_array().cloned()).unwrap_or_default();
        let mut items = if verb == Kind::Add {
            into_items(current)
        } else {
            Vec::new()
        };
        for n in new {
            if n.get("primary") == Some(&Value::Bool(true)) {
                clear_primary(&mut items);
            }
            if let Some(i) = items.iter().position(|x| same(a, x, &n)) {
                items[i] = n;
            } else {
                items.push(n);
            }
        }
        return Ok((!items.is_empty()).then_some(Value::Array(items)));
    }
    let new = convert(a, v, a.name)?;
    if a.ty == AttrType::Complex {
        let mut merged = current
            .and_then(|c| c.as_object().cloned())
            .unwrap_or_default();
        if let Some(Value::Object(n)) = new {
            merged.extend(n);
        }
        return Ok((!merged.is_empty()).then_some(Value::Object(merged)));
    }
    Ok(new)
}

/// An operation on a sub-attribute of a complex attribute without a value filter
/// (`name.givenName`; `emails.display` for remove only).
fn sub_of(
    verb: Kind,
    a: &Attribute,
    s: &'static Attribute,
    current: Option<Value>,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    if a.multi_valued {
        if verb != Kind::Remove {
            return Err(err(
                ScimType::InvalidPath,
                format!("'{}' is multi-valued: select values with a filter, e.g. {}[type eq \"work\"].{}", a.name, a.name, s.name),
            ));
        }
        let mut items = into_items(current);
        for x in items.iter_mut() {
            if let Some(o) = x.as_object_mut() {
                o.remove(s.name);
            }
        }
        items.retain(|x| x.as_object().is_some_and(|o| !o.is_empty()));
        return Ok((!items.is_empty()).then_some(Value::Array(items)));
    }
    let mut obj = current
        .and_then(|c| c.as_object().cloned())
        .unwrap_or_default();
    set_sub(verb, a, s, &mut obj, value)?;
    Ok((!obj.is_empty()).then_some(Value::Object(obj)))
}

fn set_sub(
    verb: Kind,
    a: &Attribute,
    s: &'static Attribute,
    obj: &mut Map<String, Value>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let old = take(obj, s.name);
    if verb == Kind::Remove {
        return Ok(());
    }
    if s.mutability == Mutability::Immutable && old.is_some() {
        return Err(err(
            ScimType::Mutability,
            format!("'{}.{}' is immutable", a.name, s.name),
        ));
    }
    let what = format!("{}.{}", a.name, s.name);
    if let Some(v) = value {
        if let Some(n) = convert(s, v, &what)? {
            obj.insert(s.name.into(), n);
        }
    }
    Ok(())
}

/// An operation on the values of a multi-valued complex attribute that a filter selects.
fn filtered(
    kind: ResourceKind,
    verb: Kind,
    a: &'static Attribute,
    sub: Option<&'static Attribute>,
    f: &Expr,
    current: Option<Value>,
    value: Option<&Value>,
) -> Result<Option<Value>, ScimError> {
    let mut items = into_items(current);
    let hit: Vec<bool> = items
        .iter()
        .map(|x| {
            x.as_object()
                .is_some_and(|o| element_matches(kind, f, a, o))
        })
        .collect();
    let any = hit.iter().any(|h| *h);
    match verb {
        Kind::Remove => {
            let mut i = 0;
            items.retain_mut(|x| {
                let h = hit[i];
                i += 1;
                match (h, sub, x.as_object_mut()) {
                    (false, _, _) => true,
                    (true, None, _) => false,
                    (true, Some(s), Some(o)) => {
                        o.remove(s.name);
                        !o.is_empty()
                    }
                    (true, Some(_), None) => false,
                }
            });
        }
        _ if !any => {
            let Some(seed) = seed_of(f) else {
                return Err(err(
                    ScimType::NoTarget,
                    format!("the value filter selects no value of '{}'", a.name),
                ));
            };
            let mut el = Map::new();
            for (k, v) in seed {
                let s = a.sub(&k).ok_or_else(|| {
                    err(
                        ScimType::InvalidPath,
                        format!("'{}' has no sub-attribute '{k}'", a.name),
                    )
                })?;
                el.insert(s.name.into(), v);
            }
            apply_to_element(verb, a, sub, &mut el, value)?;
            let el = convert(a, &Value::Array(vec![Value::Object(el)]), a.name)?;
            for n in el.and_then(|v| v.as_array().cloned()).unwrap_or_default() {
                if n.get("primary") == Some(&Value::Bool(true)) {
                    clear_primary(&mut items);
                }
                items.push(n);
            }
        }
        _ => {
            for (x, h) in items.iter_mut().zip(&hit) {
                if !*h {
                    continue;
                }
                let mut o = x.as_object().cloned().unwrap_or_default();
                if sub.is_none() && verb == Kind::Replace {
                    o = Map::new();
                }
                apply_to_element(verb, a, sub, &mut o, value)?;
                *x = Value::Object(o);
            }
            let sets_primary = |x: &Value| x.get("primary") == Some(&Value::Bool(true));
            if hit.iter().zip(&items).any(|(h, x)| *h && sets_primary(x)) {
                for (x, h) in items.iter_mut().zip(&hit) {
                    if !*h {
                        if let Some(o) = x.as_object_mut() {
                            o.insert("primary".into(), Value::Bool(false));
                        }
                    }
                }
            }
        }
    }
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

fn apply_to_element(
    verb: Kind,
    a: &'static Attribute,
    sub: Option<&'static Attribute>,
    o: &mut Map<String, Value>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match sub {
        Some(s) => set_sub(verb, a, s, o, value),
        None => {
            let Some(Value::Object(fields)) = value else {
                return Err(err(
                    ScimType::InvalidValue,
                    format!("a value of '{}' is an object", a.name),
                ));
            };
            for (k, v) in fields {
                let s = a.sub(k).ok_or_else(|| {
                    err(
                        ScimType::InvalidValue,
                        format!("'{}' has no sub-attribute '{k}'", a.name),
                    )
                })?;
                if s.mutability == Mutability::ReadOnly {
                    continue;
                }
                set_sub(verb, a, s, o, Some(v))?;
            }
            Ok(())
        }
    }
}

/// The sub-attribute values a filter of `eq` comparisons joined by `and` pins down.
fn seed_of(f: &Expr) -> Option<Vec<(String, Value)>> {
    let one = |e: &Expr| match e {
        Expr::Compare(p, Op::Eq, lit) if p.sub.is_none() && p.urn.is_none() => {
            let v = match lit {
                Literal::Str(s) => Value::String(s.clone()),
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Num(n) => Value::Number(n.clone()),
                Literal::Null => return None,
            };
            Some((p.name.clone(), v))
        }
        _ => None,
    };
    match f {
        Expr::And(v) => v.iter().map(one).collect(),
        e => one(e).map(|x| vec![x]),
    }
}

fn as_array(v: &Value) -> Value {
    match v {
        Value::Array(_) => v.clone(),
        other => Value::Array(vec![other.clone()]),
    }
}

fn into_items(current: Option<Value>) -> Vec<Value> {
    match current {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

fn clear_primary(items: &mut [Value]) {
    for x in items {
        if let Some(o) = x.as_object_mut() {
            if o.contains_key("primary") {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Whether a value given for removal names a stored value: every sub-attribute it gives is the
/// stored one's (`{"value": "id"}` names the member `{"value": "id", "display": "…"}`).
fn covers(given: &Value, stored: &Value) -> bool {
    match (given, stored) {
        (Value::Object(g), Value::Object(x)) => {
            !g.is_empty() && g.iter().all(|(k, v)| x.get(k) == Some(v))
        }
        _ => given == stored,
    }
}

/// Whether two values of a multi-valued attribute are the same value: group members by their
/// `value` (case-exact), everything else by equality.
fn same(a: &Attribute, x: &Value, y: &Value) -> bool {
    if a.name == "members" {
        return x.get("value").is_some() && x.get("value") == y.get("value");
    }
    x == y
}
