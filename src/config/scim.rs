//! `[[scim_clients]]`: the company directories (Okta, Entra ID, …) that provision the people and
//! groups of one identity provider over SCIM 2.0 (`/scim/v2`), each with its own bearer token, the
//! SCIM attribute that equals the provider's subject, where assignment rules take groups from, and
//! its rate limit.

use super::ops::RawRate;
use super::{is_iam_name_char, OidcProvider, Rate, SamlProvider, Secret, Service, Validator};
use serde::Deserialize;
use toml::Spanned;

/// The rate a SCIM client gets when it sets none: a full directory push of thousands of people
/// passes in minutes, a runaway client does not starve the server.
pub const DEFAULT_SCIM_RATE: Rate = Rate {
    per_minute: 1200,
    burst: 200,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScimClient {
    pub name: String,
    pub provider: String,
    #[serde(rename = "match")]
    pub match_attribute: Option<String>,
    pub token_file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    pub groups: Option<String>,
    #[serde(default)]
    pub require_provisioned: bool,
    pub rate: Option<Spanned<RawRate>>,
}

/// Which SCIM attribute of a provisioned user equals the provider's subject (the token's `sub`,
/// the SAML NameID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchAttribute {
    /// `userName` (compared exactly as the provider signs the subject).
    UserName,
    /// `externalId`.
    ExternalId,
}

impl MatchAttribute {
    /// The SCIM attribute's name.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::UserName => "userName",
            Self::ExternalId => "externalId",
        }
    }
}

/// Where the `group` assignment rules of the provider take a person's groups from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    /// The provider's group claim (attribute) only, as without provisioning.
    Claim,
    /// The provisioned groups (by `displayName`) the person is a member of only.
    Provisioned,
    /// Both: a rule matches a group of either.
    Both,
}

impl GroupSource {
    /// Whether the provider's group claim counts.
    pub fn claim(self) -> bool {
        matches!(self, Self::Claim | Self::Both)
    }
    /// Whether provisioned groups count.
    pub fn provisioned(self) -> bool {
        matches!(self, Self::Provisioned | Self::Both)
    }
}

/// A directory that provisions the people and groups of one provider over SCIM.
#[derive(Debug, Clone)]
pub struct ScimClient {
    /// Its name: the audit principal of its changes.
    pub name: String,
    /// The bearer token it presents.
    pub token: Secret,
    /// The identity provider whose people it provisions (an `[[oidc_providers]]` or
    /// `[[saml_providers]]` name).
    pub provider: String,
    /// The SCIM attribute that equals the provider's subject.
    pub match_attribute: MatchAttribute,
    /// Where `group` assignment rules of the provider take groups from.
    pub groups: GroupSource,
    /// Whether people the provider vouches for who were never provisioned are refused.
    pub require_provisioned: bool,
    /// Its requests per minute (`None`: unlimited).
    pub rate: Option<Rate>,
}

impl Validator<'_> {
    /// The SCIM clients: names unique, the provider configured and provisioned by one client only,
    /// `match` explicit, a token of its own.
    pub(super) fn validate_scim_clients(
        &mut self,
        raw: &[Spanned<RawScimClient>],
        (oidc, saml): (&[OidcProvider], &[SamlProvider]),
        (admin_token, services): (Option<&Secret>, &[Service]),
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<ScimClient> {
        let mut out: Vec<ScimClient> = Vec::new();
        for c in raw {
            let at = Some(c.span().start);
            let r = c.get_ref();
            let what = format!("scim client '{}'", r.name);
            let mut ok = true;
            if r.name.is_empty() || r.name.len() > 64 || !r.name.chars().all(is_iam_name_char) {
                self.err(
                    at,
                    format!("{what}: name must be 1-64 characters of [A-Za-z0-9_+=,.@-]"),
                );
                ok = false;
            }
            if raw[..]
                .iter()
                .take_while(|o| !std::ptr::eq(*o, c))
                .any(|o| o.get_ref().name == r.name)
            {
                self.err(at, format!("{what} is defined twice"));
                ok = false;
            }
            let known = oidc.iter().any(|p| p.name == r.provider)
                || saml.iter().any(|p| p.name == r.provider);
            if !known {
                let names: Vec<&str> = oidc
                    .iter()
                    .map(|p| p.name.as_str())
                    .chain(saml.iter().map(|p| p.name.as_str()))
                    .collect();
                self.err(
                    at,
                    format!(
                        "{what}: provider '{}' is not an [[oidc_providers]] or [[saml_providers]] name (known: {})",
                        r.provider,
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ),
                );
                ok = false;
            } else if raw[..]
                .iter()
                .take_while(|o| !std::ptr::eq(*o, c))
                .any(|o| o.get_ref().provider == r.provider)
            {
                self.err(
                    at,
                    format!(
                        "{what}: provider '{}' is already provisioned by another scim client; one directory per provider",
                        r.provider
                    ),
                );
                ok = false;
            }
            let match_attribute = match r.match_attribute.as_deref() {
                Some("userName") => Some(MatchAttribute::UserName),
                Some("externalId") => Some(MatchAttribute::ExternalId),
                Some(other) => {
                    self.err(
                        at,
                        format!("{what}: match = \"{other}\" must be \"userName\" or \"externalId\" (the SCIM attribute that equals the provider's subject)"),
                    );
                    None
                }
                None => {
                    self.err(
                        at,
                        format!("{what}: match is required: \"userName\" or \"externalId\", the SCIM attribute that equals the provider's subject"),
                    );
                    None
                }
            };
            let groups = match r.groups.as_deref() {
                None | Some("claim") => Some(GroupSource::Claim),
                Some("provisioned") => Some(GroupSource::Provisioned),
                Some("both") => Some(GroupSource::Both),
                Some(other) => {
                    self.err(
                        at,
                        format!("{what}: groups = \"{other}\" must be \"claim\", \"provisioned\" or \"both\""),
                    );
                    None
                }
            };
            let rate = match &r.rate {
                Some(_) => self.rate(
                    r.rate.as_ref(),
                    &format!("scim_clients.{}.rate", r.name),
                    Some(DEFAULT_SCIM_RATE),
                ),
                None => Some(DEFAULT_SCIM_RATE),
            };
            let token = self.bearer_token(
                r.token_file.as_ref(),
                r.token_env.as_ref(),
                &format!("scim_clients.{}", r.name),
                env_get,
            );
            if token.is_none() && r.token_file.is_none() && r.token_env.is_none() {
                self.err(at, format!("{what}: a token_file or token_env is required"));
            }
            if let Some(t) = &token {
                if admin_token == Some(t)
                    || services.iter().any(|s| s.token == *t)
                    || out.iter().any(|o| o.token == *t)
                {
                    self.err(
                        at,
                        format!(
                            "{what}: its token is also used elsewhere; give every client its own"
                        ),
                    );
                    ok = false;
                }
            }
            if let (true, Some(token), Some(match_attribute), Some(groups)) =
                (ok, token, match_attribute, groups)
            {
                out.push(ScimClient {
                    name: r.name.clone(),
                    token,
                    provider: r.provider.clone(),
                    match_attribute,
                    groups,
                    require_provisioned: r.require_provisioned,
                    rate,
                });
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "scim_tests.rs"]
mod tests;
