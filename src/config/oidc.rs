//! `[[oidc_providers]]`: the OpenID Connect providers trusted for web identity tokens (issuer,
//! audiences, where signing keys come from, accepted algorithms and leeway, the claims that carry
//! groups and e-mail, the accounts they serve). Their browser sign-in is `oidc_login`.

use super::raw::RawOidcProvider;
use super::server::host_is_loopback;
use super::{OidcLogin, Validator, LOCAL_PROVIDER};
use std::collections::HashSet;
use toml::Spanned;
use url::Url;

/// Algorithms accepted for web identity tokens. Symmetric algorithms and `none` are never accepted.
pub const SUPPORTED_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];
/// Longest clock leeway a provider may be given, in seconds.
pub const MAX_LEEWAY_SECONDS: i64 = 60;

/// Where a provider's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_uri` from `{issuer}/.well-known/openid-configuration`.
    Discovery,
    /// An explicit JWKS URL.
    Url(String),
}

/// An OpenID Connect provider trusted for web identity tokens.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// The exact `iss` value.
    pub issuer: String,
    /// The issuer without its scheme: the provider's name in ARNs and the prefix of its condition keys.
    pub key_prefix: String,
    /// Accepted `aud` values (client ids).
    pub audiences: Vec<String>,
    /// Where keys come from.
    pub jwks: JwksSource,
    /// Allowed JWS algorithms.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Clock leeway for `exp`, `nbf`, `iat`, in seconds.
    pub leeway_seconds: u64,
    /// Whether plain http (loopback only) was allowed.
    pub allow_http: bool,
    /// Accounts whose roles may trust this provider; `None` = all.
    pub accounts: Option<Vec<String>>,
    /// Its name in assignment rules and the audit log (default: the issuer without scheme).
    pub name: String,
    /// The claim holding group memberships (default `groups`).
    pub groups_claim: String,
    /// Splits a string-valued group claim into several groups (e.g. `","`); `None`: one group.
    pub groups_delimiter: Option<String>,
    /// The claim holding the e-mail address (default `email`).
    pub email_claim: String,
    /// Whether the provider hands out verified addresses only, so that `email_domain` rules trust
    /// the e-mail claim without an `email_verified` of boolean true. Default false.
    pub email_always_verified: bool,
    /// `amr` values that count as MFA performed at the provider (default none: upstream MFA is
    /// not trusted).
    pub mfa_amr: Vec<String>,
    /// Browser sign-in through this provider (`None`: web identity tokens only).
    pub login: Option<OidcLogin>,
}

impl OidcProvider {
    /// `arn:aws:iam::ACCOUNT:oidc-provider/<issuer host/path>`.
    pub fn arn(&self, account: &str) -> String {
        crate::policy::arn::oidc_provider(account, &self.key_prefix)
    }
    /// Whether roles in `account` may trust this provider.
    pub fn serves_account(&self, account: &str) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|a| a.iter().any(|x| x == account))
    }
}

impl Validator<'_> {
    /// The providers, each with its browser sign-in; names and issuers must be unique.
    pub(super) fn validate_oidc_providers(
        &mut self,
        raw: &[Spanned<RawOidcProvider>],
        accounts: &HashSet<String>,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<OidcProvider> {
        let mut providers: Vec<OidcProvider> = Vec::new();
        for p in raw {
            if let Some(mut op) = self.validate_provider(p, accounts) {
                if let Some(l) = &p.get_ref().login {
                    op.login = self.validate_oidc_login(l, &op.name, env_get);
                }
                if providers.iter().any(|x| x.name == op.name) {
                    self.err(
                        Some(p.span().start),
                        format!("oidc provider name '{}' is used twice", op.name),
                    );
                }
                if providers.iter().any(|x| x.issuer == op.issuer) {
                    self.err(
                        Some(p.span().start),
                        format!("oidc provider {} is defined twice", op.issuer),
                    );
                }
                providers.push(op);
            }
        }
        providers
    }

    fn validate_provider(
        &mut self,
        p: &Spanned<RawOidcProvider>,
        accounts: &HashSet<String>,
    ) -> Option<OidcProvider> {
        let at = Some(p.span().start);
        let raw = p.get_ref();
        let name = &raw.issuer;
        let issuer = match Url::parse(&raw.issuer) {
            Ok(u) => u,
            Err(e) => {
                self.err(
                    at,
                    format!("oidc provider '{name}': issuer is not a URL: {e}"),
                );
                return None;
            }
        };
        let mut ok = true;
        let url_ok = |u: &Url| {
            u.scheme() == "https" || (u.scheme() == "http" && raw.allow_http && host_is_loopback(u))
        };
        if !url_ok(&issuer) || issuer.query().is_some() || issuer.fragment().is_some() {
            self.err(
                at,
                format!(
                    "oidc provider '{name}': issuer must be an https URL without query or fragment (plain http only with allow_http = true on a loopback address)"
                ),
            );
            ok = false;
        }
        if raw.allow_http && !host_is_loopback(&issuer) {
            self.err(
                at,
                format!(
                    "oidc provider '{name}': allow_http is only permitted for loopback issuers"
                ),
            );
            ok = false;
        }
        let jwks = match &raw.jwks_url {
            Some(j) => match Url::parse(j) {
                Ok(u) if url_ok(&u) => JwksSource::Url(j.clone()),
                _ => {
                    self.err(at, format!("oidc provider '{name}': jwks_url '{j}' must be https (or loopback http with allow_http)"));
                    ok = false;
                    JwksSource::Discovery
                }
            },
            None => JwksSource::Discovery,
        };
        if raw.audiences.is_empty() || raw.audiences.iter().any(|a| a.is_empty()) {
            self.err(
                at,
                format!(
                    "oidc provider '{name}': audiences must list at least one non-empty client id"
                ),
            );
            ok = false;
        }
        let mut algorithms = Vec::new();
        for a in raw
            .algorithms
            .clone()
            .unwrap_or_else(|| vec!["RS256".into()])
        {
            if !SUPPORTED_ALGORITHMS.contains(&a.as_str()) {
                self.err(
                    at,
                    format!(
                        "oidc provider '{name}': algorithm '{a}' is not allowed (allowed: {}; symmetric algorithms and none are never accepted)",
                        SUPPORTED_ALGORITHMS.join(", ")
                    ),
                );
                ok = false;
            } else if let Ok(alg) = a.parse::<jsonwebtoken::Algorithm>() {
                algorithms.push(alg);
            }
        }
        if raw.algorithms.as_ref().is_some_and(|a| a.is_empty()) {
            self.err(
                at,
                format!("oidc provider '{name}': algorithms must not be empty"),
            );
            ok = false;
        }
        let leeway = raw.leeway_seconds.unwrap_or(60);
        if !(0..=MAX_LEEWAY_SECONDS).contains(&leeway) {
            self.err(at, format!("oidc provider '{name}': leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS}"));
            ok = false;
        }
        if let Some(accs) = &raw.accounts {
            for a in accs {
                if !accounts.contains(a) {
                    self.err(
                        at,
                        format!("oidc provider '{name}': account {a} is not defined"),
                    );
                    ok = false;
                }
            }
        }
        let key_prefix = raw
            .issuer
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/').to_string())
            .unwrap_or_default();
        let pname = raw.name.clone().unwrap_or_else(|| key_prefix.clone());
        if pname.is_empty()
            || pname.len() > 128
            || pname == LOCAL_PROVIDER
            || !pname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c))
        {
            self.err(
                at,
                format!(
                    "oidc provider '{name}': name '{pname}' must be 1-128 characters of [A-Za-z0-9_.:/-] and not \"{LOCAL_PROVIDER}\""
                ),
            );
            ok = false;
        }
        if raw.groups_delimiter.as_deref() == Some("") {
            self.err(
                at,
                format!("oidc provider '{name}': groups_delimiter must not be empty"),
            );
            ok = false;
        }
        ok.then(|| OidcProvider {
            issuer: raw.issuer.clone(),
            name: pname,
            groups_claim: raw.groups_claim.clone().unwrap_or_else(|| "groups".into()),
            groups_delimiter: raw.groups_delimiter.clone(),
            email_claim: raw.email_claim.clone().unwrap_or_else(|| "email".into()),
            email_always_verified: raw.email_always_verified,
            mfa_amr: raw.mfa_amr.clone().unwrap_or_default(),
            login: None,
            key_prefix,
            audiences: raw.audiences.clone(),
            jwks,
            algorithms,
            leeway_seconds: leeway as u64,
            allow_http: raw.allow_http,
            accounts: raw.accounts.clone(),
        })
    }
}
