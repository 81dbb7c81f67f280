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

    /// A bearer token from `token_file` or `token_env` (at least 32 characters).
    pub(super) fn bearer_token(
        &mut self,
        file: Option<&Spanned<String>>,
        env: Option<&Spanned<String>>,
        what: &str,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Secret> {
        fn place(s: &Spanned<String>) -> (&str, Option<usize>) {
            (s.get_ref().as_str(), Some(s.span().start))
        }
        self.secret_setting(what, "token", file.map(place), env.map(place), 32, env_get)
            .ok()
            .flatten()
    }

    /// A secret named by a `{field}_file` or a `{field}_env` setting of `what` (each with where it
    /// stands), trimmed, at least `min_len` characters. `Ok(None)` when neither is set; `Err` when
    /// the setting is wrong, with the problem recorded.
    pub(super) fn secret_setting(
        &mut self,
        what: &str,
        field: &str,
        file: Option<(&str, Option<usize>)>,
        env: Option<(&str, Option<usize>)>,
        min_len: usize,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ()> {
        let short = |min_len: usize| {
            if min_len <= 1 {
                "is empty".to_string()
            } else {
                format!("holds fewer than {min_len} characters")
            }
        };
        match (file, env) {
            (Some(_), Some((_, at))) => {
                self.err(
                    at,
                    format!("{what}: set {field}_file or {field}_env, not both"),
                );
                Err(())
            }
            (Some((f, at)), None) => {
                let p = self.resolve(f);
                match std::fs::read_to_string(&p) {
                    Ok(t) if t.trim().len() >= min_len.max(1) => Ok(Some(Secret::new(t.trim()))),
                    Ok(_) => {
                        self.err(
                            at,
                            format!("{what}.{field}_file: {} {}", p.display(), short(min_len)),
                        );
                        Err(())
                    }
                    Err(e) => {
                        self.err(
                            at,
                            format!("{what}.{field}_file: cannot read {}: {e}", p.display()),
                        );
                        Err(())
                    }
                }
            }
            (None, Some((e, at))) => match env_get(e) {
                Some(t) if t.trim().len() >= min_len.max(1) => Ok(Some(Secret::new(t.trim()))),
                Some(_) => {
                    self.err(at, format!("{what}.{field}_env: ${e} {}", short(min_len)));
                    Err(())
                }
                None => {
                    self.err(at, format!("{what}.{field}_env: ${e} is not set"));
                    Err(())
                }
            },
            (None, None) => Ok(None),
        }
    }
}
