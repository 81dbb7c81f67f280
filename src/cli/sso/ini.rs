//! Just enough of the AWS config file format to edit it in place: sections of `key = value` lines,
//! indented continuation lines for nested values (`[services]` sections), comments and blank lines
//! kept as they are. Keys rolegate writes are replaced where they stand; everything else stays.

/// One `[header]` and the lines under it (the first section has no header: what precedes the
/// first header).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    header: Option<String>,
    lines: Vec<String>,
}

/// A config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    sections: Vec<Section>,
}

/// The key of a `key = value` line that is not indented (a continuation line has none).
fn key_of(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t']) || line.trim_start().starts_with(['#', ';']) {
        return None;
    }
    line.split_once('=').map(|(k, _)| k.trim())
}

impl Document {
    /// Parses `text` (never fails: a line that is no header belongs to the section above).
    pub fn parse(text: &str) -> Self {
        let mut sections = vec![Section {
            header: None,
            lines: Vec::new(),
        }];
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') && t.ends_with(']') && !line.starts_with([' ', '\t']) {
                sections.push(Section {
                    header: Some(t[1..t.len() - 1].trim().to_string()),
                    lines: Vec::new(),
                });
            } else if let Some(last) = sections.last_mut() {
                last.lines.push(line.to_string());
            }
        }
        Self { sections }
    }

    fn section_mut(&mut self, header: &str) -> &mut Section {
        let at = self
            .sections
            .iter()
            .position(|s| s.header.as_deref() == Some(header));
        let i = match at {
            Some(i) => i,
            None => {
                if let Some(last) = self.sections.last_mut() {
                    if last.lines.last().is_some_and(|l| !l.trim().is_empty()) {
                        last.lines.push(String::new());
                    }
                }
                self.sections.push(Section {
                    header: Some(header.to_string()),
                    lines: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[i]
    }

    /// Removes `key` (and its continuation lines) from a section's lines; returns where it was.
    fn take(lines: &mut Vec<String>, key: &str) -> Option<usize> {
        let start = lines.iter().position(|l| key_of(l) == Some(key))?;
        let mut end = start + 1;
        while end < lines.len()
            && lines[end].starts_with([' ', '\t'])
            && !lines[end].trim().is_empty()
        {
            end += 1;
        }
        lines.drain(start..end);
        Some(start)
    }

    /// Where new keys go in a section: after its last non-blank line.
    fn end_of(lines: &[String]) -> usize {
        lines
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .map_or(0, |i| i + 1)
    }

    /// Sets `keys` in section `header` (created at the end when missing): each replaces the line
    /// of that key where it stands, or is added at the section's end.
    pub fn set(&mut self, header: &str, keys: &[(&str, String)]) {
        let s = self.section_mut(header);
        for (k, v) in keys {
            let line = format!("{k} = {v}");
            match Self::take(&mut s.lines, k) {
                Some(at) => s.lines.insert(at, line),
                None => {
                    let at = Self::end_of(&s.lines);
                    s.lines.insert(at, line);
                }
            }
        }
    }

    /// Sets nested `endpoint_url`s in a `[services …]` section: `service =` then an indented
    /// `endpoint_url = …` line for each.
    pub fn set_nested(&mut self, header: &str, services: &[(&str, String)]) {
        let s = self.section_mut(header);
        for (service, url) in services {
            let lines = [format!("{service} ="), format!("  endpoint_url = {url}")];
            let at = Self::take(&mut s.lines, service).unwrap_or_else(|| Self::end_of(&s.lines));
            for (i, l) in lines.into_iter().enumerate() {
                s.lines.insert(at + i, l);
            }
        }
    }

    /// Removes `keys` from section `header`, if both exist.
    pub fn remove_keys(&mut self, header: &str, keys: &[&str]) {
        if let Some(s) = self
            .sections
            .iter_mut()
            .find(|s| s.header.as_deref() == Some(header))
        {
            for k in keys {
                Self::take(&mut s.lines, k);
            }
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            if let Some(h) = &s.header {
                out.push_str(&format!("[{h}]\n"));
            }
            for l in &s.lines {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Document;

    const EXISTING: &str = "# my settings\n[default]\nregion = eu-west-1\noutput = json\n\n[profile work]\n; hand-written\nsso_session = old\nsso_account_id = 999999999999\ns3 =\n  max_concurrent_requests = 20\nregion = us-west-2\n";

    #[test]
    fn edits_keep_everything_else_and_a_second_run_changes_nothing() {
        let mut d = Document::parse(EXISTING);
        assert_eq!(d.render(), EXISTING, "parse and render round-trip");
        let edit = |d: &mut Document| {
            d.set(
                "profile work",
                &[
                    ("sso_session", "rolegate".to_string()),
                    ("sso_role_name", "Dev".to_string()),
                ],
            );
            d.set(
                "sso-session rolegate",
                &[("sso_start_url", "https://sso.example.com/start".to_string())],
            );
            d.set_nested(
                "services rolegate-rolegate",
                &[
                    ("sso", "http://127.0.0.1:8080".to_string()),
                    ("sts", "http://127.0.0.1:8080".to_string()),
                ],
            );
            d.remove_keys("profile work", &["credential_process"]);
        };
        edit(&mut d);
        let once = d.render();
        assert!(once.starts_with("# my settings\n[default]\nregion = eu-west-1\noutput = json\n\n"));
        assert!(once.contains(
            "[profile work]\n; hand-written\nsso_session = rolegate\nsso_account_id = 999999999999\ns3 =\n  max_concurrent_requests = 20\nregion = us-west-2\nsso_role_name = Dev\n"
        ), "{once}");
        assert!(once.contains("[services rolegate-rolegate]\nsso =\n  endpoint_url = http://127.0.0.1:8080\nsts =\n  endpoint_url = http://127.0.0.1:8080\n"), "{once}");
        let mut again = Document::parse(&once);
        edit(&mut again);
        assert_eq!(again.render(), once, "idempotent");
        // A nested value is replaced whole.
        again.set_nested(
            "services rolegate-rolegate",
            &[("sso", "http://other:1".to_string())],
        );
        let r = again.render();
        assert!(
            r.contains("sso =\n  endpoint_url = http://other:1\nsts ="),
            "{r}"
        );
        assert_eq!(r.matches("endpoint_url").count(), 2);
    }
}
