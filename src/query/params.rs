//! Query API parameters: the form (or query string) as a multimap, and the constraints AWS puts on each
//! member, checked before anything else happens.

use super::error::QueryError;
use crate::config::is_iam_name_char;

/// The parameters of one request, in the order given (a request carries a handful: a list scan is
/// cheaper than hashing them).
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The parameters of one form or query string.
    pub fn from_form(raw: &[u8]) -> Params {
        let mut p = Params::default();
        p.add_form(raw);
        p
    }

    /// Parses an `application/x-www-form-urlencoded` body or query string and adds its pairs.
    pub fn add_form(&mut self, raw: &[u8]) {
        self.pairs
            .extend(form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// A single-valued parameter; a parameter given twice is an error.
    pub fn get(&self, name: &str) -> Result<Option<&str>, QueryError> {
        let mut found = self.pairs.iter().filter(|(k, _)| k == name);
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some((_, one)), None) => Ok(Some(one.as_str())),
            (Some(_), Some(_)) => Err(QueryError::invalid_parameter(format!(
                "The parameter {name} was given more than once"
            ))),
        }
    }

    /// The request's `Action`, read by `parse` (`None`: not an action of this API, which answers
    /// version `version`). A missing or unknown action is `InvalidAction`.
    pub fn action<A>(
        &self,
        version: &str,
        parse: impl FnOnce(&str) -> Option<A>,
    ) -> Result<A, QueryError> {
        let action = self.get("Action")?.ok_or_else(|| {
            QueryError::invalid_action("The request must contain the parameter Action")
                .because("no Action parameter")
        })?;
        parse(action).ok_or_else(|| {
            let shown: String = action.chars().take(64).collect();
            QueryError::invalid_action(format!(
                "Could not find operation {shown} for version {version}"
            ))
        })
    }

    /// A required single-valued parameter (`member` is its name in validation messages).
    pub fn required(&self, name: &str, member: &str) -> Result<&str, QueryError> {
        self.get(name)?.ok_or_else(|| QueryError::missing(member))
    }

    /// `Prefix.member.N[suffix]` list values in order of N (1-based, no gaps allowed).
    pub fn list(&self, prefix: &str, suffix: &str) -> Result<Vec<&str>, QueryError> {
        let mut items: Vec<(usize, &str, &str)> = Vec::new();
        let head = format!("{prefix}.member.");
        for (k, v) in &self.pairs {
            if let Some(rest) = k.strip_prefix(&head) {
                let (n, tail) = match rest.split_once('.') {
                    Some((n, t)) => (n, format!(".{t}")),
                    None => (rest, String::new()),
                };
                if tail != suffix {
                    continue;
                }
                let n: usize = n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    QueryError::invalid_parameter(format!("Bad list index in {k}"))
                })?;
                items.push((n, k.as_str(), v.as_str()));
            }
        }
        items.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        if let Some(w) = items.windows(2).find(|w| w[0].1 == w[1].1) {
            return Err(QueryError::invalid_parameter(format!(
                "The parameter {} was given more than once",
                w[0].1
            )));
        }
        for (i, (n, _, _)) in items.iter().enumerate() {
            if *n != i + 1 {
                return Err(QueryError::invalid_parameter(format!(
                    "{prefix} list members must be numbered from 1 without gaps"
                )));
            }
        }
        Ok(items.into_iter().map(|(_, _, v)| v).collect())
    }
}

/// The length (in characters, surrounding whitespace ignored) of a credential-bearing member such as
/// a token or an assertion; the value itself never goes into the error.
pub fn check_secret_length(
    value: &str,
    member: &str,
    min: usize,
    max: usize,
) -> Result<(), QueryError> {
    let n = value.trim().chars().count();
    if n < min {
        return Err(QueryError::validation(
            "***",
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(QueryError::validation(
            "***",
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A session or source-identity name: 2..=64 of `[\w+=,.@-]`.
pub fn check_name(value: &str, member: &str) -> Result<(), QueryError> {
    let n = value.chars().count();
    if n < 2 {
        return Err(QueryError::validation(
            value,
            member,
            "Member must have length greater than or equal to 2",
        ));
    }
    if n > 64 {
        return Err(QueryError::validation(
            value,
            member,
            "Member must have length less than or equal to 64",
        ));
    }
    if !value.chars().all(is_iam_name_char) {
        return Err(QueryError::validation(
            value,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}

/// `RoleArn`: 20..=2048 characters and the shape of a role ARN.
pub fn check_role_arn(value: &str) -> Result<(), QueryError> {
    let n = value.chars().count();
    if n < 20 {
        return Err(QueryError::validation(
            value,
            "roleArn",
            "Member must have length greater than or equal to 20",
        ));
    }
    if n > 2048 {
        return Err(QueryError::validation(
            value,
            "roleArn",
            "Member must have length less than or equal to 2048",
        ));
    }
    let ok = crate::policy::Arn::iam_resource(value, "role").is_some();
    if !ok {
        return Err(QueryError::validation_msg(format!("{value} is invalid")));
    }
    Ok(())
}

/// `DurationSeconds` within `min..=max`.
pub fn duration(value: Option<&str>, min: i64, max: i64) -> Result<Option<i64>, QueryError> {
    let Some(v) = value else { return Ok(None) };
    let d: i64 = v
        .parse()
        .map_err(|_| QueryError::validation(v, "durationSeconds", "Member must be a number"))?;
    if d < min {
        return Err(QueryError::validation(
            v,
            "durationSeconds",
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if d > max {
        return Err(QueryError::validation(
            v,
            "durationSeconds",
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(Some(d))
}

/// An inline session `Policy`: 1..=2048 characters from the allowed range.
pub fn check_session_policy_text(value: &str) -> Result<(), QueryError> {
    let n = value.chars().count();
    if n < 1 {
        return Err(QueryError::validation(
            value,
            "policy",
            "Member must have length greater than or equal to 1",
        ));
    }
    if n > 2048 {
        return Err(QueryError::validation(
            value,
            "policy",
            "Member must have length less than or equal to 2048",
        ));
    }
    if !value
        .chars()
        .all(|c| matches!(c, '\u{09}' | '\u{0A}' | '\u{0D}' | '\u{20}'..='\u{FF}'))
    {
        return Err(QueryError::validation(
            value,
            "policy",
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    Ok(())
}

/// `PolicyArns`: at most 10, each 20..=2048 characters.
pub fn check_policy_arns(arns: &[&str]) -> Result<(), QueryError> {
    if arns.len() > 10 {
        return Err(QueryError::validation(
            &arns.len().to_string(),
            "policyArns",
            "Member must have length less than or equal to 10",
        ));
    }
    for a in arns {
        let n = a.chars().count();
        if !(20..=2048).contains(&n) {
            return Err(QueryError::validation(
                a,
                "policyArns.member.arn",
                "Member must have length between 20 and 2048",
            ));
        }
    }
    Ok(())
}

/// `ExternalId`: 2..=1224 of `[\w+=,.@:/-]`.
pub fn check_external_id(value: &str) -> Result<(), QueryError> {
    let n = value.chars().count();
    if !(2..=1224).contains(&n) {
        return Err(QueryError::validation(
            value,
            "externalId",
            "Member must have length between 2 and 1224",
        ));
    }
    if !value
        .chars()
        .all(|c| is_iam_name_char(c) || c == ':' || c == '/')
    {
        return Err(QueryError::validation(
            value,
            "externalId",
            "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
        ));
    }
    Ok(())
}

/// `SourceIdentity`: a name (its character set has no `:`, so the reserved `aws:` prefix cannot occur).
pub fn check_source_identity(value: &str) -> Result<(), QueryError> {
    check_name(value, "sourceIdentity")
}

/// A session tag key: 1..=128 of letters, digits, spaces and `_.:/=+-@`, not starting with `aws:`.
pub fn check_tag(key: &str, value: &str) -> Result<(), QueryError> {
    let kn = key.chars().count();
    let ok_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if !(1..=128).contains(&kn) || !key.chars().all(ok_char) {
        return Err(QueryError::validation(
            key,
            "tags.member.key",
            "Member must have length between 1 and 128 and satisfy [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(QueryError::invalid_parameter(format!(
            "Tag key {key} uses the reserved prefix aws:"
        )));
    }
    if value.chars().count() > 256 || !value.chars().all(ok_char) {
        return Err(QueryError::validation(value, "tags.member.value", "Member must have length less than or equal to 256 and satisfy [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"));
    }
    Ok(())
}

/// `SerialNumber` and `TokenCode` of an MFA-authenticated request, validated; `None` when neither is
/// given.
pub fn mfa(params: &Params) -> Result<Option<(String, String)>, QueryError> {
    let serial = params.get("SerialNumber")?;
    let code = params.get("TokenCode")?;
    match (serial, code) {
        (None, None) => Ok(None),
        (Some(s), Some(c)) => {
            let n = s.chars().count();
            if !(9..=256).contains(&n) {
                return Err(QueryError::validation(
                    s,
                    "serialNumber",
                    "Member must have length between 9 and 256",
                ));
            }
            if !s
                .chars()
                .all(|c| c.is_alphanumeric() || "_+=/:,.@-".contains(c))
            {
                return Err(QueryError::validation(
                    s,
                    "serialNumber",
                    "Member must satisfy regular expression pattern: [\\w+=/:,.@-]*",
                ));
            }
            if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QueryError::validation(
                    c,
                    "tokenCode",
                    "Member must have length 6 and satisfy regular expression pattern: [\\d]*",
                ));
            }
            Ok(Some((s.to_string(), c.to_string())))
        }
        _ => Err(QueryError::validation_msg(
            "SerialNumber and TokenCode must be given together",
        )),
    }
}

/// `Tags.member.N.Key`/`.Value`, validated one by one.
pub fn tags(params: &Params) -> Result<Vec<(String, String)>, QueryError> {
    let keys = params.list("Tags", ".Key")?;
    let values = params.list("Tags", ".Value")?;
    if keys.len() != values.len() {
        return Err(QueryError::invalid_parameter(
            "Each tag needs a Key and a Value",
        ));
    }
    keys.iter()
        .zip(values.iter())
        .map(|(k, v)| {
            check_tag(k, v)?;
            Ok(((*k).to_string(), (*v).to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lengths_are_checked_without_showing_the_secret() {
        assert!(check_secret_length(" abcd\n", "webIdentityToken", 4, 20_000).is_ok());
        for (value, want) in [
            (
                "abc\n",
                "Member must have length greater than or equal to 4",
            ),
            (
                &"x".repeat(20_001)[..],
                "Member must have length less than or equal to 20000",
            ),
        ] {
            let e = check_secret_length(value, "webIdentityToken", 4, 20_000).unwrap_err();
            assert_eq!(e.code, "ValidationError");
            assert!(e.message.contains(want), "{}", e.message);
            assert!(e.message.contains("webIdentityToken"), "{}", e.message);
            assert!(
                !e.message.contains("abc") && !e.message.contains("xxxx"),
                "{}",
                e.message
            );
        }
        // Characters, not bytes: 20,000 two-byte characters are within the limit.
        assert!(check_secret_length(&"é".repeat(20_000), "webIdentityToken", 4, 20_000).is_ok());
    }

    fn params(s: &str) -> Params {
        Params::from_form(s.as_bytes())
    }

    #[test]
    fn lists_are_ordered_by_index_and_need_no_gaps() {
        let p = params("PolicyArns.member.2.arn=b&PolicyArns.member.1.arn=a");
        assert_eq!(p.list("PolicyArns", ".arn").unwrap(), vec!["a", "b"]);
        let gap = params("PolicyArns.member.1.arn=a&PolicyArns.member.3.arn=c");
        assert_eq!(
            gap.list("PolicyArns", ".arn").unwrap_err().code,
            "InvalidParameterValue"
        );
        let tags = params("Tags.member.1.Key=k&Tags.member.1.Value=v");
        assert_eq!(tags.list("Tags", ".Key").unwrap(), vec!["k"]);
        assert_eq!(tags.list("Tags", ".Value").unwrap(), vec!["v"]);
    }

    #[test]
    fn repeated_single_parameter_is_refused() {
        let p = params("RoleArn=a&RoleArn=b");
        assert_eq!(p.get("RoleArn").unwrap_err().code, "InvalidParameterValue");
    }

    #[test]
    fn session_name_limits() {
        for bad in ["a", &"a".repeat(65), "has/slash", "has space"] {
            assert_eq!(
                check_name(bad, "roleSessionName").unwrap_err().code,
                "ValidationError",
                "{bad}"
            );
        }
        for good in ["ab", &"a".repeat(64), "a_b+c=d,e.f@g-h"] {
            check_name(good, "roleSessionName").unwrap();
        }
    }

    #[test]
    fn duration_limits() {
        assert!(duration(Some("899"), 900, 43200).is_err());
        assert!(duration(Some("43201"), 900, 43200).is_err());
        assert!(duration(Some("x"), 900, 43200).is_err());
        assert_eq!(duration(Some("900"), 900, 43200).unwrap(), Some(900));
        assert_eq!(duration(None, 900, 43200).unwrap(), None);
    }

    #[test]
    fn session_policy_text_limits() {
        assert!(check_session_policy_text(&"x".repeat(2049)).is_err());
        assert!(check_session_policy_text("{\u{100}}").is_err());
        assert!(check_session_policy_text("").is_err());
        assert!(check_session_policy_text(&"x".repeat(2048)).is_ok());
    }

    #[test]
    fn role_arn_shape() {
        assert!(check_role_arn("arn:aws:iam::111122223333:role/x").is_ok());
        assert!(check_role_arn("arn:aws:iam::1111:role/xxxxxxxxx").is_err());
        assert!(check_role_arn("arn:aws:iam::111122223333:user/x").is_err());
        assert!(check_role_arn("short").is_err());
    }

    #[test]
    fn tags_and_external_ids() {
        assert!(check_tag("team", "a b").is_ok());
        assert!(check_tag("aws:x", "v").is_err());
        assert!(check_tag(&"k".repeat(129), "v").is_err());
        assert!(check_tag("k", &"v".repeat(257)).is_err());
        assert!(check_external_id("abc:/def").is_ok());
        assert!(check_external_id("a").is_err());
        assert!(check_external_id("a b").is_err());
        assert!(check_source_identity("aws:me").is_err());
    }
}
