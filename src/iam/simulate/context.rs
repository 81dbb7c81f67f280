//! `ContextEntries`: the context keys a request gives the simulated requests, with values checked
//! against their `ContextKeyType`.

use super::params::check_length;
use crate::iam::invalid_input;
use crate::policy::ContextValue;
use crate::query::params::Params;
use crate::query::QueryError;

/// The type of a `ContextEntries` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyType {
    String,
    Numeric,
    Boolean,
    Ip,
    Binary,
    Date,
}

const KEY_TYPES: &str =
    "[string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, binary, binaryList, date, dateList]";

fn key_type(s: &str) -> Option<(KeyType, bool)> {
    Some(match s {
        "string" => (KeyType::String, false),
        "stringList" => (KeyType::String, true),
        "numeric" => (KeyType::Numeric, false),
        "numericList" => (KeyType::Numeric, true),
        "boolean" => (KeyType::Boolean, false),
        "booleanList" => (KeyType::Boolean, true),
        "ip" => (KeyType::Ip, false),
        "ipList" => (KeyType::Ip, true),
        "binary" => (KeyType::Binary, false),
        "binaryList" => (KeyType::Binary, true),
        "date" => (KeyType::Date, false),
        "dateList" => (KeyType::Date, true),
        _ => return None,
    })
}

fn is_epoch(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn is_date(s: &str) -> bool {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if is_epoch(s) || DateTime::parse_from_rfc3339(s).is_ok() {
        return true;
    }
    if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        || (s.len() == 7 && NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").is_ok())
    {
        return true;
    }
    let local = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix('z'))
        .unwrap_or(s);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(local, f).is_ok())
        || DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%:z").is_ok()
}

/// The value as the policy engine sees it, or why it is not one of `t`.
pub(super) fn typed_value(t: KeyType, v: &str) -> Result<String, &'static str> {
    use base64::Engine;
    let ok = match t {
        KeyType::String => true,
        KeyType::Numeric => v.parse::<i128>().is_ok() || v.parse::<f64>().is_ok_and(f64::is_finite),
        KeyType::Boolean => {
            return if v.eq_ignore_ascii_case("true") {
                Ok("true".into())
            } else if v.eq_ignore_ascii_case("false") {
                Ok("false".into())
            } else {
                Err("a boolean (true or false)")
            }
        }
        KeyType::Ip => v.parse::<std::net::IpAddr>().is_ok() || v.parse::<ipnet::IpNet>().is_ok(),
        KeyType::Binary => base64::engine::general_purpose::STANDARD.decode(v).is_ok(),
        KeyType::Date => is_date(v),
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(match t {
            KeyType::Numeric => "a number",
            KeyType::Ip => "an IP address or CIDR block",
            KeyType::Binary => "base64",
            KeyType::Date => "a date (ISO 8601 or epoch seconds)",
            KeyType::String | KeyType::Boolean => "valid",
        })
    }
}

/// `ContextEntries`: each member's `ContextKeyName`, `ContextKeyType` and `ContextKeyValues`, as
/// context keys with typed values (list types give multivalued keys).
pub(super) fn context_entries(params: &Params) -> Result<Vec<(String, ContextValue)>, QueryError> {
    let names = params.list("ContextEntries", ".ContextKeyName")?;
    let types = params.list("ContextEntries", ".ContextKeyType")?;
    if names.len() != types.len() {
        return Err(invalid_input(
            "Each member of ContextEntries needs a ContextKeyName and a ContextKeyType",
        ));
    }
    let mut out: Vec<(String, ContextValue)> = Vec::with_capacity(names.len());
    for (i, (name, ty)) in names.iter().zip(types.iter()).enumerate() {
        let n = i + 1;
        check_length(
            name,
            &format!("contextEntries.{n}.member.contextKeyName"),
            5,
            256,
        )?;
        let Some((t, is_list)) = key_type(ty) else {
            return Err(QueryError::validation(
                ty,
                &format!("contextEntries.{n}.member.contextKeyType"),
                &format!("Member must satisfy enum value set: {KEY_TYPES}"),
            ));
        };
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Err(invalid_input(format!(
                "Context key {name} is given more than once in ContextEntries"
            )));
        }
        let raw = params.list(&format!("ContextEntries.member.{n}.ContextKeyValues"), "")?;
        let mut values = Vec::with_capacity(raw.len());
        for v in raw {
            values.push(typed_value(t, v).map_err(|what| {
                let shown: String = v.chars().take(64).collect();
                invalid_input(format!(
                    "Value '{shown}' of context key {name} is not {what} (ContextKeyType {ty})"
                ))
            })?);
        }
        let value = if is_list {
            ContextValue::Multi(values)
        } else {
            match <[String; 1]>::try_from(values) {
                Ok([one]) => ContextValue::Single(one),
                Err(v) => {
                    return Err(invalid_input(format!(
                        "Context key {name} of type {ty} needs exactly one value, not {}",
                        v.len()
                    )))
                }
            }
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}
