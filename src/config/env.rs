//! Every configuration key from the environment: `ROLEGATE__<SECTION>__<KEY>` sets `key` of
//! `[section]` (case-insensitive; `__` separates levels, so `ROLEGATE__RATE_LIMITS__LOGIN_PER_IP__BURST`
//! is `[rate_limits] login_per_ip.burst`; a number selects an entry of an array of tables:
//! `ROLEGATE__OIDC_PROVIDERS__0__ISSUER`). The value replaces the file's: a key the file has as a
//! string takes the value verbatim; otherwise it is read as a TOML value (`true`, `42`,
//! `["a", "b"]`, `{ per_minute = 5 }`) and, if it is not one, as a string.
//!
//! Overrides are applied to the document before it is read, so that they are validated exactly like
//! the file, unknown keys included. Each line they write carries a comment naming the variable;
//! problems found on such lines are reported against `<environment>` and the variable, and line
//! numbers elsewhere are those of the file as written.
//!
//! Other `ROLEGATE_…` variables that rolegate does not read are warned about, not refused.

use super::raw::RawConfig;
use super::{Problem, Validator, ENV_KNOWN, ENV_OVERRIDES};
use std::path::PathBuf;
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

/// The prefix of the variables this module reads.
pub const PREFIX: &str = "ROLEGATE__";

/// The file's text with overrides applied, and how to map its lines back.
pub(super) struct Overridden {
    /// The document to read.
    pub text: String,
    /// (rendered line, variable, lines the override added (+) or removed (−) there).
    marks: Vec<(usize, String, isize)>,
    original_lines: usize,
}

impl Overridden {
    /// Where a problem at rendered `line` really is: `Err(variable)` for a line an override
    /// wrote, else the line of the file as written.
    pub fn origin(&self, line: usize) -> Result<usize, String> {
        let mut shift: isize = 0;
        for (at, var, delta) in &self.marks {
            if *at == line {
                return Err(var.clone());
            }
            if *at < line {
                shift += delta;
            }
        }
        let orig = line as isize - shift;
        if orig < 1 || orig as usize > self.original_lines {
            // Past the end of the file: a table an override created.
            if let Some((_, var, _)) = self.marks.iter().rfind(|(at, _, _)| *at <= line) {
                return Err(var.clone());
            }
        }
        Ok(orig.max(1) as usize)
    }

    /// Rewrites problems in `file` from rendered lines to lines of the file or the environment.
    pub fn fix(&self, file: &std::path::Path, problems: &mut [Problem]) {
        for p in problems.iter_mut() {
            if p.file != file {
                continue;
            }
            if let Some(l) = p.line {
                match self.origin(l) {
                    Ok(orig) => p.line = Some(orig),
                    Err(var) => {
                        p.file = PathBuf::from("<environment>");
                        p.line = None;
                        p.message = format!("{var}: {}", p.message);
                    }
                }
            }
        }
    }
}

/// Applies every `ROLEGATE__…` variable of `env` to `text`. `Ok(None)` when there are none (or the
/// text is not TOML: the normal parse reports that); `Err` lists variables that name no place a
/// value can go.
pub(super) fn apply(
    text: &str,
    env: &[(String, String)],
) -> Result<Option<Overridden>, Vec<Problem>> {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.len() > PREFIX.len() && k.starts_with(PREFIX))
        .collect();
    if vars.is_empty() {
        return Ok(None);
    }
    vars.sort();
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    let mut deltas: Vec<(String, isize)> = Vec::new();
    for (name, value) in vars {
        match set(&mut doc, name, value) {
            Ok(delta) => deltas.push((name.clone(), delta)),
            Err(why) => problems.push(Problem {
                file: PathBuf::from("<environment>"),
                line: None,
                message: format!("{name}: {why}"),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let rendered = doc.to_string();
    let mut marks = Vec::new();
    for (i, line) in rendered.lines().enumerate() {
        for (var, delta) in &deltas {
            if line.ends_with(&marker(var)) {
                marks.push((i + 1, var.clone(), *delta));
            }
        }
    }
    Ok(Some(Overridden {
        text: rendered,
        marks,
        original_lines: text.lines().count(),
    }))
}

impl Validator<'_> {
    /// A warning for each `ROLEGATE_…` variable rolegate does not read: not an override, not one
    /// it reads otherwise, and not named by the file (`token_env`, `url_env`).
    pub(super) fn unknown_variables(&mut self, raw: &RawConfig, env: &[(String, String)]) {
        let named_envs: Vec<&str> = raw
            .admin
            .token_env
            .iter()
            .chain(
                raw.services
                    .iter()
                    .filter_map(|s| s.get_ref().token_env.as_ref()),
            )
            .chain(raw.store.url_env.iter())
            .map(|s| s.get_ref().as_str())
            .collect();
        for (name, _) in env {
            if name.starts_with("ROLEGATE_")
                && !name.starts_with(PREFIX)
                && !ENV_OVERRIDES.contains(&name.as_str())
                && !ENV_KNOWN.contains(&name.as_str())
                && !name.starts_with("ROLEGATE_TEST_")
                && !named_envs.contains(&name.as_str())
            {
                self.warnings.push(Problem {
                    file: PathBuf::from("<environment>"),
                    line: None,
                    message: format!(
                        "unknown variable {name} is ignored (known: {}, and ROLEGATE__<SECTION>__<KEY> for any key of the file)",
                        ENV_OVERRIDES.join(", ")
                    ),
                });
            }
        }
    }
}

fn marker(var: &str) -> String {
    format!("# from {var}")
}

/// Sets one variable's value; returns how many lines the document grew by at that place.
fn set(doc: &mut DocumentMut, name: &str, raw: &str) -> Result<isize, String> {
    let path: Vec<String> = name[PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err("empty segment in the variable name (use __ only between keys)".into());
    }
    let (last, parents) = path.split_last().ok_or("no key named")?;
    if last.parse::<usize>().is_ok() {
        return Err("the last segment must be a key, not an index".into());
    }
    let mut cur: &mut dyn TableLike = doc.as_table_mut();
    // Inline tables render on one line: no marker comment can go inside them.
    let mut inline = false;
    let mut added: isize = 0;
    let mut created_table = false;
    let mut i = 0;
    while i < parents.len() {
        let seg = parents[i].as_str();
        if cur.get(seg).is_none() {
            if inline {
                cur.insert(seg, Item::Value(Value::InlineTable(Default::default())));
            } else {
                let mut t = Table::new();
                t.decor_mut().set_suffix(format!(" {}", marker(name)));
                cur.insert(seg, Item::Table(t));
                created_table = true;
            }
        }
        let Some(item) = cur.get_mut(seg) else {
            return Err(format!("cannot create [{seg}]"));
        };
        let (next, next_inline): (&mut dyn TableLike, bool) = match item {
            Item::Table(t) => (t, false),
            Item::Value(Value::InlineTable(t)) => (t, true),
            Item::ArrayOfTables(a) => {
                let Some(index) = parents.get(i + 1).and_then(|n| n.parse::<usize>().ok()) else {
                    return Err(format!(
                        "{seg} is a list: name an entry by number, e.g. {seg}__0"
                    ));
                };
                i += 1;
                let len = a.len();
                let t = a
                    .get_mut(index)
                    .ok_or_else(|| format!("{seg} has {len} entries; there is no entry {index}"))?;
                (t, false)
            }
            Item::Value(Value::Array(a)) => {
                let Some(index) = parents.get(i + 1).and_then(|n| n.parse::<usize>().ok()) else {
                    return Err(format!(
                        "{seg} is a list: name an entry by number, e.g. {seg}__0"
                    ));
                };
                i += 1;
                let len = a.len();
                match a.get_mut(index) {
                    Some(Value::InlineTable(t)) => (t, true),
                    Some(_) => return Err(format!("{seg}[{index}] is not a table")),
                    None => {
                        return Err(format!(
                            "{seg} has {len} entries; there is no entry {index}"
                        ))
                    }
                }
            }
            _ => return Err(format!("{seg} is a value, not a table")),
        };
        cur = next;
        inline = next_inline;
        i += 1;
    }
    let existing = cur.get(last);
    let keep_string = matches!(existing, Some(Item::Value(Value::String(_))));
    let removed_lines = existing
        .and_then(Item::as_value)
        .map(|v| v.to_string().matches('\n').count() as isize)
        .unwrap_or(0);
    let existed = existing.is_some();
    let mut value = if keep_string {
        Value::from(raw)
    } else {
        raw.parse::<Value>().unwrap_or_else(|_| Value::from(raw))
    };
    if !inline {
        value.decor_mut().set_prefix(" ");
        value.decor_mut().set_suffix(format!(" {}", marker(name)));
    }
    cur.insert(last, Item::Value(value));
    if !existed && !inline && !created_table {
        added = 1;
    }
    Ok(added - removed_lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const DOC: &str = "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"http://127.0.0.1:8080\"\n\n[[roles]]\nname = \"a\"\n\n[[roles]]\nname = \"b\"\n";

    #[test]
    fn sets_existing_and_new_keys_tables_and_list_entries() {
        let o = apply(
            DOC,
            &env(&[
                ("ROLEGATE__SERVER__LISTEN", "0.0.0.0:9000"),
                ("ROLEGATE__ROLES__1__NAME", "c"),
                ("ROLEGATE__METRICS__ENABLED", "false"),
                ("ROLEGATE__RATE_LIMITS__LOGIN_PER_IP", "{ per_minute = 5 }"),
                ("ROLEGATE__STS__REGIONS", "[\"eu-west-1\"]"),
                ("ROLEGATE_LISTEN", "ignored here"),
            ]),
        )
        .unwrap()
        .unwrap();
        let v: toml::Value = toml::from_str(&o.text).unwrap();
        assert_eq!(v["server"]["listen"].as_str(), Some("0.0.0.0:9000"));
        assert_eq!(v["roles"][1]["name"].as_str(), Some("c"));
        assert_eq!(v["roles"][0]["name"].as_str(), Some("a"));
        assert_eq!(v["metrics"]["enabled"].as_bool(), Some(false));
        assert_eq!(
            v["rate_limits"]["login_per_ip"]["per_minute"].as_integer(),
            Some(5)
        );
        assert_eq!(v["sts"]["regions"][0].as_str(), Some("eu-west-1"));
    }

    #[test]
    fn a_key_the_file_has_as_a_string_stays_a_string() {
        let o = apply(
            "[[accounts]]\nid = \"111122223333\"\n",
            &env(&[("ROLEGATE__ACCOUNTS__0__ID", "444455556666")]),
        )
        .unwrap()
        .unwrap();
        let v: toml::Value = toml::from_str(&o.text).unwrap();
        assert_eq!(v["accounts"][0]["id"].as_str(), Some("444455556666"));
    }

    #[test]
    fn lines_map_back_to_the_file_and_overridden_lines_to_the_variable() {
        let o = apply(
            DOC,
            &env(&[
                ("ROLEGATE__SERVER__EXTRA", "1"),
                ("ROLEGATE__SERVER__LISTEN", "x"),
            ]),
        )
        .unwrap()
        .unwrap();
        let line_of = |needle: &str| {
            o.text
                .lines()
                .position(|l| l.contains(needle))
                .map(|i| i + 1)
                .unwrap()
        };
        assert_eq!(
            o.origin(line_of("extra")),
            Err("ROLEGATE__SERVER__EXTRA".to_string())
        );
        assert_eq!(
            o.origin(line_of("listen")),
            Err("ROLEGATE__SERVER__LISTEN".to_string())
        );
        // `name = "b"` is line 9 of the file, whatever was inserted above it.
        let b = o.text.lines().position(|l| l == "name = \"b\"").unwrap() + 1;
        assert_eq!(o.origin(b), Ok(9));
    }

    #[test]
    fn impossible_places_are_problems_naming_the_variable() {
        for (var, why) in [
            ("ROLEGATE__ROLES__5__NAME", "there is no entry 5"),
            ("ROLEGATE__ROLES__NAME", "name an entry by number"),
            ("ROLEGATE__SERVER__LISTEN__PORT", "is a value, not a table"),
            ("ROLEGATE__SERVER____LISTEN", "empty segment"),
        ] {
            let e = apply(DOC, &env(&[(var, "1")])).err().unwrap();
            assert_eq!(e[0].file, PathBuf::from("<environment>"));
            assert!(e[0].message.starts_with(var), "{}", e[0].message);
            assert!(e[0].message.contains(why), "{var}: {}", e[0].message);
        }
        assert!(apply(DOC, &env(&[("ROLEGATE_LISTEN", "x")]))
            .unwrap()
            .is_none());
    }
}
