//! The authorization API's callers (`[[services]]`: downstream services that ask whether SigV4-signed
//! requests they received are allowed) and the bearer tokens they and the admin API present, each
//! read from a file or an environment variable.

use super::raw::RawService;
use super::{is_iam_name_char, Secret, Validator};
use toml::Spanned;

/// A downstream service that asks rolegate whether SigV4-signed requests it received are allowed.
#[derive(Debug, Clone)]
pub struct Service {
    /// Name, for the audit log.
    pub name: String,
    /// The bearer token it presents.
    pub token: Secret,
    /// The SigV4 signing names (credential scope services) it may verify requests for, e.g. `s3`.
    pub signing_names: Vec<String>,
}

impl Validator<'_> {
    /// The services; names unique, and no token shared with another service or the admin API.
    pub(super) fn validate_services(
        &mut self,
        raw: &[Spanned<RawService>],
        admin_token: Option<&Secret>,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Service> {
        let mut services: Vec<Service> = Vec::new();
        for sv in raw {
            let at = Some(sv.span().start);
            let r = sv.get_ref();
            let what = format!("service '{}'", r.name);
            if r.name.is_empty() || r.name.len() > 64 || !r.name.chars().all(is_iam_name_char) {
                self.err(
                    at,
                    format!("{what}: name must be 1-64 characters of [A-Za-z0-9_+=,.@-]"),
                );
            }
            if services.iter().any(|x| x.name == r.name) {
                self.err(at, format!("{what} is defined twice"));
            }
            if r.signing_names.is_empty()
                || r.signing_names.iter().any(|n| {
                    n.is_empty()
                        || !n
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
            {
                self.err(
                    at,
                    format!("{what}: signing_names must list SigV4 service names such as \"s3\""),
                );
            }
            let token = self.bearer_token(
                r.token_file.as_ref(),
                r.token_env.as_ref(),
                &format!("services.{}", r.name),
                env_get,
            );
            match token {
                Some(token) => services.push(Service {
                    name: r.name.clone(),
                    token,
                    signing_names: r.signing_names.clone(),
                }),
                None if r.token_file.is_none() && r.token_env.is_none() => {
                    self.err(at, format!("{what}: a token_file or token_env is required"));
                }
                None => {}
            }
        }
        for (i, sv) in services.iter().enumerate() {
            if services[..i].iter().any(|o| o.token == sv.token) || admin_token == Some(&sv.token) {
                self.err(None, format!("service '{}': its token is also used elsewhere; give every service its own", sv.name));
            }
        }
        services
    }

    /// A bearer token of at least 32 characters from a file or an environment variable.
    pub(super) fn bearer_token(
        &mut self,
        file: Option<&Spanned<String>>,
        env: Option<&Spanned<String>>,
        what: &str,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Secret> {
        match (file, env) {
            (Some(_), Some(e)) => {
                self.err(
                    Some(e.span().start),
                    format!("{what}: set token_file or token_env, not both"),
                );
                None
            }
            (Some(f), None) => {
                let p = self.resolve(f.get_ref());
                match std::fs::read_to_string(&p) {
                    Ok(t) if t.trim().len() >= 32 => Some(Secret::new(t.trim())),
                    Ok(_) => {
                        self.err(
                            Some(f.span().start),
                            format!(
                                "{what}.token_file: {} holds fewer than 32 characters",
                                p.display()
                            ),
                        );
                        None
                    }
                    Err(e) => {
                        self.err(
                            Some(f.span().start),
                            format!("{what}.token_file: cannot read {}: {e}", p.display()),
                        );
                        None
                    }
                }
            }
            (None, Some(e)) => match env_get(e.get_ref()) {
                Some(t) if t.trim().len() >= 32 => Some(Secret::new(t.trim())),
                Some(_) => {
                    self.err(
                        Some(e.span().start),
                        format!(
                            "{what}.token_env: ${} holds fewer than 32 characters",
                            e.get_ref()
                        ),
                    );
                    None
                }
                None => {
                    self.err(
                        Some(e.span().start),
                        format!("{what}.token_env: ${} is not set", e.get_ref()),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }
}
