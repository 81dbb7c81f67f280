//! `[[accounts]]`: the AWS-style accounts that roles, providers and rules belong to.

use super::raw::RawAccount;
use super::Validator;
use std::collections::HashSet;
use toml::Spanned;

/// A configured AWS-style account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Twelve digits.
    pub id: String,
    /// A human name.
    pub name: String,
}

impl Validator<'_> {
    /// The accounts, and the set of their ids (twelve digits, each once) that other sections may
    /// name.
    pub(super) fn validate_accounts(
        &mut self,
        raw: &[Spanned<RawAccount>],
    ) -> (Vec<Account>, HashSet<String>) {
        let mut accounts = Vec::new();
        let mut seen_accounts = HashSet::new();
        for a in raw {
            let at = Some(a.span().start);
            let acc = a.get_ref();
            if acc.id.len() != 12 || !acc.id.chars().all(|c| c.is_ascii_digit()) {
                self.err(
                    at,
                    format!("account '{}': id must be exactly 12 digits", acc.id),
                );
            } else if !seen_accounts.insert(acc.id.clone()) {
                self.err(at, format!("account {} is defined twice", acc.id));
            }
            if acc.name.trim().is_empty() {
                self.err(at, format!("account {}: name must not be empty", acc.id));
            }
            accounts.push(Account {
                id: acc.id.clone(),
                name: acc.name.clone(),
            });
        }
        (accounts, seen_accounts)
    }
}
