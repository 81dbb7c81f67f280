//! Policy documents in the configuration: the customer managed policies (`[[managed_policies]]`),
//! and how every policy (inline, managed or trust) is read: inline in the file or from a file
//! beside it, parsed with its position in the file, and its lint warnings kept.

use super::raw;
use super::{line_of, Problem, Validator};
use crate::policy::{Policy, PolicyKind};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// A customer managed policy: defined once, attached to roles by ARN and usable as a session
/// policy (`PolicyArns`).
#[derive(Debug, Clone)]
pub struct ManagedPolicy {
    /// Account id that owns it.
    pub account: String,
    /// Name.
    pub name: String,
    /// Path, starting and ending with `/`.
    pub path: String,
    /// `arn:aws:iam::ACCOUNT:policy{path}{name}`.
    pub arn: String,
    /// Free text.
    pub description: Option<String>,
    /// The document.
    pub policy: Arc<Policy>,
}

impl Validator<'_> {
    /// The managed policies; their ARNs must be unique.
    pub(super) fn validate_managed_policies(
        &mut self,
        raw: &[Spanned<raw::RawManagedPolicy>],
        accounts: &HashSet<String>,
    ) -> Vec<ManagedPolicy> {
        let mut managed: Vec<ManagedPolicy> = Vec::new();
        for m in raw {
            if let Some(mp) = self.validate_managed_policy(m, accounts) {
                if managed.iter().any(|x| x.arn == mp.arn) {
                    self.err(
                        Some(m.span().start),
                        format!("managed policy {} is defined twice", mp.arn),
                    );
                }
                managed.push(mp);
            }
        }
        managed
    }

    /// A policy document given inline or as a file: its text, the file it is in and the line it
    /// starts on; `None` (reported) when neither, both, or the file cannot be read.
    pub(super) fn policy_text(
        &mut self,
        inline: Option<&Spanned<String>>,
        file: Option<&String>,
        what: &str,
        at: Option<usize>,
    ) -> Option<(String, PathBuf, usize)> {
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.err(
                    at,
                    format!("{what}: give the document inline or as a file, not both"),
                );
                None
            }
            (Some(doc), None) => {
                // The document starts on the line after an opening ''' when the string is multi-line.
                let start = line_of(self.text, doc.span().start);
                let first = if self.text[doc.span().start..].starts_with("'''\n")
                    || self.text[doc.span().start..].starts_with("\"\"\"\n")
                {
                    start + 1
                } else {
                    start
                };
                Some((doc.get_ref().clone(), self.path.to_path_buf(), first))
            }
            (None, Some(f)) => {
                let p = self.resolve(f);
                match std::fs::read_to_string(&p) {
                    Ok(t) => Some((t, p, 1)),
                    Err(e) => {
                        self.err(at, format!("{what}: cannot read {}: {e}", p.display()));
                        None
                    }
                }
            }
            (None, None) => {
                self.err(at, format!("{what}: a policy document is required"));
                None
            }
        }
    }

    /// `text` parsed as a policy of `kind`, syntax errors located in `file` from `first_line` on.
    pub(super) fn parse_policy(
        &mut self,
        text: &str,
        kind: PolicyKind,
        file: &Path,
        first_line: usize,
        what: &str,
    ) -> Option<Policy> {
        match Policy::parse(text, kind) {
            Ok(p) => Some(p),
            Err(e) => {
                let line = match &e {
                    crate::policy::PolicyError::Syntax { line, .. } => line + first_line - 1,
                    _ => first_line,
                };
                self.problems.push(Problem {
                    file: file.to_path_buf(),
                    line: Some(line),
                    message: format!("{what}: {e}"),
                });
                None
            }
        }
    }

    fn validate_managed_policy(
        &mut self,
        m: &Spanned<raw::RawManagedPolicy>,
        accounts: &HashSet<String>,
    ) -> Option<ManagedPolicy> {
        let at = Some(m.span().start);
        let raw = m.get_ref();
        let what = format!("managed policy '{}'", raw.name);
        let (path, ok) = self.iam_entity(
            at,
            &what,
            accounts,
            (&raw.account, &raw.name, raw.path.as_ref()),
            128,
        );
        let policy = self
            .policy_text(raw.document.as_ref(), raw.file.as_ref(), &what, at)
            .and_then(|(text, file, line)| {
                let p = self.parse_policy(&text, PolicyKind::Identity, &file, line, &what)?;
                self.policy_warnings(&p, &file, line, &what);
                Some(p)
            });
        let policy = policy?;
        ok.then(|| ManagedPolicy {
            arn: crate::policy::arn::managed_policy(&raw.account, &path, &raw.name),
            account: raw.account.clone(),
            name: raw.name.clone(),
            path,
            description: raw.description.clone(),
            policy: Arc::new(policy),
        })
    }

    /// Inline policies (unique names, each parsed); `None` when any of them is wrong (each problem
    /// reported).
    pub(super) fn inline_policies(
        &mut self,
        list: &[Spanned<raw::RawInlinePolicy>],
        what: &str,
    ) -> Option<Vec<(String, Arc<Policy>)>> {
        let mut ok = true;
        let mut policies = Vec::new();
        let mut names = HashSet::new();
        for p in list {
            let pat = Some(p.span().start);
            let pr = p.get_ref();
            if !names.insert(pr.name.clone()) {
                self.err(
                    pat,
                    format!("{what}: policy '{}' is defined twice", pr.name),
                );
                ok = false;
            }
            let pw = format!("{what} policy '{}'", pr.name);
            match self
                .policy_text(pr.document.as_ref(), pr.file.as_ref(), &pw, pat)
                .and_then(|(text, file, line)| {
                    let p = self.parse_policy(&text, PolicyKind::Inline, &file, line, &pw)?;
                    self.policy_warnings(&p, &file, line, &pw);
                    Some(p)
                }) {
                Some(pol) => policies.push((pr.name.clone(), Arc::new(pol))),
                None => ok = false,
            }
        }
        ok.then_some(policies)
    }

    /// The policy's own lint warnings, located at the document.
    pub(super) fn policy_warnings(&mut self, p: &Policy, file: &Path, line: usize, what: &str) {
        for w in p.warnings() {
            let sid = w.sid.map(|s| format!(" ({s})")).unwrap_or_default();
            self.warnings.push(Problem {
                file: file.to_path_buf(),
                line: Some(line),
                message: format!("{what}: statement {}{sid}: {}", w.statement, w.message),
            });
        }
    }
}
