//! The raw JSON layer under the policy grammar: a value tree that keeps keys in order and rejects a
//! key repeated within one object (where `serde_json` would silently keep the last), and the
//! character counting used by the size limits.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{PolicyError, PolicyKind, Result};

/// A parsed JSON value with object keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value::<Json>()?;
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

/// Parses `text` as one JSON value, reporting syntax errors and repeated keys with their line and
/// column.
pub(crate) fn parse(text: &str) -> Result<Json> {
    serde_json::from_str::<Json>(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        PolicyError::Syntax {
            line,
            column,
            message,
        }
    })
}

/// Checks the size limit (and, for session policies, the allowed characters) of `text`.
pub(crate) fn check_size(text: &str, kind: PolicyKind) -> Result<()> {
    let actual = if kind.counts_whitespace() {
        let mut n = 0usize;
        for (position, character) in text.chars().enumerate() {
            let allowed = matches!(character, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}');
            if !allowed {
                return Err(PolicyError::InvalidCharacter {
                    kind,
                    character,
                    position,
                });
            }
            n += 1;
        }
        n
    } else {
        count_without_whitespace(text)
    };
    let limit = kind.max_chars();
    if actual > limit {
        return Err(PolicyError::TooLarge {
            kind,
            limit,
            actual,
        });
    }
    Ok(())
}

/// Counts characters, leaving out whitespace between JSON tokens (whitespace inside strings counts).
fn count_without_whitespace(text: &str) -> usize {
    let mut n = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            n += 1;
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            n += 1;
            if c == '"' {
                in_string = true;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_types() {
        let j = parse(r#"{"b": [1, -2, 1.5, true, null, "x"], "a": {}}"#).unwrap();
        let Json::Object(entries) = j else {
            panic!("not an object")
        };
        assert_eq!(entries[0].0, "b");
        assert_eq!(entries[1], ("a".to_owned(), Json::Object(vec![])));
        let Json::Array(items) = &entries[0].1 else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 6);
        assert_eq!(items[3], Json::Bool(true));
        assert_eq!(items[4], Json::Null);
    }

    #[test]
    fn duplicate_key_is_a_syntax_error_with_position() {
        let err = parse("{\n  \"Effect\": \"Allow\",\n  \"Effect\": \"Deny\"\n}").unwrap_err();
        match err {
            PolicyError::Syntax { line, message, .. } => {
                assert_eq!(line, 3);
                assert_eq!(message, "duplicate key \"Effect\"");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn nested_duplicate_key_is_found() {
        let err = parse(r#"{"a": {"k": 1, "k": 2}}"#).unwrap_err();
        assert!(
            matches!(err, PolicyError::Syntax { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn syntax_error_reports_line_and_column() {
        let err = parse("{\n\"a\": [1,\n}").unwrap_err();
        match err {
            PolicyError::Syntax { line, column, .. } => {
                assert_eq!((line, column), (3, 1));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse(""), Err(PolicyError::Syntax { .. })));
        assert!(matches!(parse("{} x"), Err(PolicyError::Syntax { .. })));
    }

    #[test]
    fn whitespace_is_not_counted_outside_strings() {
        assert_eq!(count_without_whitespace("{ \"a b\" : \n 1 }"), 9);
        assert_eq!(count_without_whitespace(r#"{"a\" ":1}"#), 10);
    }

    #[test]
    fn size_limits_per_kind() {
        let padded = format!("{{\"a\":\"{}\"}}", "x".repeat(2_048 - 8));
        assert_eq!(count_without_whitespace(&padded), 2_048);
        assert!(check_size(&padded, PolicyKind::Trust).is_ok());
        let over = format!("{{\"a\":\"{}\"}}", "x".repeat(2_048 - 7));
        assert_eq!(
            check_size(&over, PolicyKind::Trust),
            Err(PolicyError::TooLarge {
                kind: PolicyKind::Trust,
                limit: 2_048,
                actual: 2_049
            })
        );
        // Whitespace counts for session policies only.
        let spaced = format!("{}{}", " ".repeat(100), padded);
        assert!(check_size(&spaced, PolicyKind::Trust).is_ok());
        assert!(matches!(
            check_size(&spaced, PolicyKind::Session),
            Err(PolicyError::TooLarge { actual: 2_148, .. })
        ));
        assert!(check_size(&over, PolicyKind::Identity).is_ok());
    }

    #[test]
    fn session_policies_reject_characters_outside_the_allowed_range() {
        assert!(check_size("{\"a\":\"\u{e9}\t\r\n\"}", PolicyKind::Session).is_ok());
        assert_eq!(
            check_size("{\"a\":\"\u{2603}\"}", PolicyKind::Session),
            Err(PolicyError::InvalidCharacter {
                kind: PolicyKind::Session,
                character: '\u{2603}',
                position: 6
            })
        );
        assert!(check_size("{\"a\":\"\u{2603}\"}", PolicyKind::Identity).is_ok());
    }
}
