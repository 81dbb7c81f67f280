//! Attribute paths (`userName`, `name.givenName`, `urn:…:enterprise:2.0:User:manager.value`) and
//! their resolution against the schema table, shared by filters, PATCH and projection.

use super::definitions::{Attribute, ENTERPRISE_USER, GROUP, USER};
use super::{definitions, ResourceKind, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{Map, Value};

/// The schema URNs an attribute path may start with.
const KNOWN_URNS: &[&str] = &[ENTERPRISE_USER_SCHEMA, USER_SCHEMA, GROUP_SCHEMA];

/// An attribute path as written: an optional schema URN, an attribute name (empty when the path
/// names a whole extension) and an optional sub-attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttrPath {
    pub urn: Option<&'static str>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses `[urn ":"] name ["." sub]`; `Err` says what is wrong.
    pub fn parse(s: &str) -> Result<AttrPath, String> {
        let mut rest = s;
        let mut urn = None;
        if s.len() >= 4 && s[..4].eq_ignore_ascii_case("urn:") {
            let known = KNOWN_URNS.iter().find(|u| {
                s.len() >= u.len()
                    && s.is_char_boundary(u.len())
                    && s[..u.len()].eq_ignore_ascii_case(u)
                    && (s.len() == u.len() || s.as_bytes()[u.len()] == b':')
            });
            let Some(u) = known else {
                return Err(format!("'{s}' names an unknown schema"));
            };
            urn = Some(*u);
            rest = s.get(u.len() + 1..).unwrap_or("");
            if rest.is_empty() {
                return Ok(AttrPath {
                    urn,
                    name: String::new(),
                    sub: None,
                });
            }
        }
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or("");
        let sub = parts.next();
        if parts.next().is_some() {
            return Err(format!(
                "'{s}' goes deeper than an attribute and its sub-attribute"
            ));
        }
        if !is_attr_name(name) {
            return Err(format!("'{s}' is not an attribute name"));
        }
        if let Some(sub) = sub {
            if !is_attr_name(sub) {
                return Err(format!("'{s}' is not an attribute name"));
            }
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// `name` or `name.sub`, lower-cased, without the schema URN.
    pub fn lower(&self) -> String {
        match &self.sub {
            Some(s) => format!("{}.{}", self.name, s).to_lowercase(),
            None => self.name.to_lowercase(),
        }
    }
}

/// ATTRNAME of RFC 7644 §3.10 (`ALPHA *(nameChar)`), and `$ref`.
fn is_attr_name(s: &str) -> bool {
    if s == "$ref" || s.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a path resolves to: the extension it lives in (`None` for core and common attributes),
/// the attribute, and the sub-attribute if the path names one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub ext: Option<&'static str>,
    pub attr: &'static Attribute,
    pub sub: Option<&'static Attribute>,
}

impl Target {
    /// The attribute the path ends at.
    pub fn leaf(&self) -> &'static Attribute {
        self.sub.unwrap_or(self.attr)
    }
}

/// The attributes of a schema by its URN.
pub(crate) fn schema_attrs(urn: &str) -> &'static [Attribute] {
    [&USER, &ENTERPRISE_USER, &GROUP]
        .into_iter()
        .find(|s| s.id == urn)
        .map_or(&[], |s| s.attributes)
}

fn find(attrs: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Resolves a path for a resource kind. A name without a URN is looked up among the common
/// attributes, then the core schema, then the kind's extensions (a leniency: Entra ID sends
/// `manager` and `employeeNumber` without their URN in some messages).
pub(crate) fn resolve(kind: ResourceKind, path: &AttrPath) -> Result<Target, String> {
    let (ext, attr) = match path.urn {
        Some(u) if u == kind.schema() => (
            None,
            find(definitions::COMMON, &path.name).or_else(|| find(schema_attrs(u), &path.name)),
        ),
        Some(u) if kind.extensions().contains(&u) => (Some(u), find(schema_attrs(u), &path.name)),
        Some(u) => return Err(format!("a {} has no schema {u}", kind.name())),
        None => match find(definitions::COMMON, &path.name)
            .or_else(|| find(schema_attrs(kind.schema()), &path.name))
        {
            Some(a) => (None, Some(a)),
            None => kind
                .extensions()
                .iter()
                .find_map(|u| find(schema_attrs(u), &path.name).map(|a| (Some(*u), Some(a))))
                .unwrap_or((None, None)),
        },
    };
    let Some(attr) = attr else {
        return Err(format!(
            "a {} has no attribute '{}'",
            kind.name(),
            path.name
        ));
    };
    let sub = match &path.sub {
        None => None,
        Some(s) => Some(
            attr.sub(s)
                .ok_or_else(|| format!("'{}' has no sub-attribute '{s}'", attr.name))?,
        ),
    };
    Ok(Target { ext, attr, sub })
}

/// The value of an object member by a case-insensitive name (an exact match first).
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The key under which an object holds a member, by a case-insensitive name.
pub(crate) fn key_ci(obj: &Map<String, Value>, name: &str) -> Option<String> {
    if obj.contains_key(name) {
        return Some(name.to_string());
    }
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The object that holds a target's attribute in a resource: the resource itself, or the
/// extension object under its URN.
pub(crate) fn container<'a>(
    resource: &'a Value,
    ext: Option<&str>,
) -> Option<&'a Map<String, Value>> {
    let obj = resource.as_object()?;
    match ext {
        None => Some(obj),
        Some(u) => get_ci(obj, u)?.as_object(),
    }
}
