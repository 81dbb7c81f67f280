//! The browser sign-in part of an `[[oidc_providers]]` entry (`[oidc_providers.login]`): the OAuth
//! client rolegate is at that provider (client id, secret from a file or an environment variable),
//! the scopes it asks for, whether userinfo is read, which `acr` values count as MFA and what a
//! step-up asks for. Knows the settings, not the protocol.

use super::{Secret, Validator};
use toml::Spanned;

/// Scopes asked for when none are configured.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "email", "profile"];

/// The `[oidc_providers.login]` table as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcLogin {
    pub client_id: String,
    pub client_secret_file: Option<String>,
    pub client_secret_env: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub userinfo: Option<bool>,
    pub display_name: Option<String>,
    pub mfa_acr: Option<Vec<String>>,
    pub step_up_acr_values: Option<Vec<String>>,
}

/// Browser sign-in through one OpenID Connect provider (authorization code flow with PKCE).
#[derive(Debug, Clone)]
pub struct OidcLogin {
    /// rolegate's client id at the provider.
    pub client_id: String,
    /// The client secret (`client_secret_basic`); `None`: a public client (PKCE only).
    pub client_secret: Option<Secret>,
    /// Scopes asked for; always holds `openid`.
    pub scopes: Vec<String>,
    /// Whether the userinfo endpoint is read after the code exchange (its `sub` must match).
    pub userinfo: bool,
    /// The name shown on the sign-in page.
    pub display_name: String,
    /// `acr` values that count as MFA performed at the provider (with the provider's `mfa_amr`).
    pub mfa_acr: Vec<String>,
    /// `acr_values` asked for when a permission set demands fresh MFA.
    pub step_up_acr_values: Vec<String>,
}

/// Whether `s` is a scope token (RFC 6749 §3.3) or an `acr` value usable in a space-separated list.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

impl Validator<'_> {
    /// The browser sign-in settings of provider `name`, or `None` after recording what is wrong.
    pub(super) fn validate_oidc_login(
        &mut self,
        raw: &Spanned<RawOidcLogin>,
        name: &str,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<OidcLogin> {
        let at = Some(raw.span().start);
        let l = raw.get_ref();
        let what = format!("oidc provider '{name}': login");
        let mut ok = true;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            self.err(
                at,
                format!("{what}: a provider used for browser sign-in needs a name of [A-Za-z0-9_.-] (it is part of the sign-in and redirect URLs)"),
            );
            ok = false;
        }
        if l.client_id.is_empty() || l.client_id.len() > 256 {
            self.err(at, format!("{what}.client_id must be 1-256 characters"));
            ok = false;
        }
        let client_secret = self
            .secret_setting(
                &what,
                "client_secret",
                l.client_secret_file.as_deref().map(|f| (f, at)),
                l.client_secret_env.as_deref().map(|e| (e, at)),
                1,
                env_get,
            )
            .unwrap_or_else(|()| {
                ok = false;
                None
            });
        let scopes = l
            .scopes
            .clone()
            .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
        if !scopes.iter().any(|s| s == "openid") {
            self.err(at, format!("{what}.scopes must include \"openid\""));
            ok = false;
        }
        for list in [
            ("scopes", &scopes),
            ("mfa_acr", l.mfa_acr.as_ref().unwrap_or(&Vec::new())),
            (
                "step_up_acr_values",
                l.step_up_acr_values.as_ref().unwrap_or(&Vec::new()),
            ),
        ] {
            if let Some(bad) = list.1.iter().find(|s| !is_token(s)) {
                self.err(
                    at,
                    format!(
                        "{what}.{}: '{bad}' must be 1-256 printable ASCII characters without spaces, quotes or backslashes",
                        list.0
                    ),
                );
                ok = false;
            }
        }
        let display_name = l.display_name.clone().unwrap_or_else(|| name.to_string());
        if display_name.trim().is_empty() || display_name.len() > 64 {
            self.err(at, format!("{what}.display_name must be 1-64 characters"));
            ok = false;
        }
        ok.then(|| OidcLogin {
            client_id: l.client_id.clone(),
            client_secret,
            scopes,
            userinfo: l.userinfo.unwrap_or(false),
            display_name,
            mfa_acr: l.mfa_acr.clone().unwrap_or_default(),
            step_up_acr_values: l.step_up_acr_values.clone().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_test_text as load;

    fn with_login(name: &str, login: &str) -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
[store]
kind = "memory"
[[oidc_providers]]
issuer = "https://idp.example.com"
audiences = ["sts.amazonaws.com"]
name = "{name}"
[oidc_providers.login]
{login}
"#
        )
    }

    #[test]
    fn a_login_table_loads_with_its_defaults_and_the_secret_from_the_environment() {
        let c = load(
            &with_login(
                "corp",
                "client_id = \"rolegate\"\nclient_secret_env = \"OIDC_SECRET\"",
            ),
            &[("OIDC_SECRET", " s3cret\n")],
        )
        .unwrap();
        let l = c.oidc_providers[0].login.as_ref().unwrap();
        assert_eq!(l.client_id, "rolegate");
        assert_eq!(l.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(format!("{:?}", l.client_secret), "Some(***)");
        assert_eq!(l.scopes, ["openid", "email", "profile"]);
        assert!(!l.userinfo);
        assert_eq!(l.display_name, "corp");
        assert!(l.mfa_acr.is_empty() && l.step_up_acr_values.is_empty());
    }

    /// Provider name, login table, environment, expected problem.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn bad_login_tables_are_refused_with_the_reason() {
        let cases: &[Case] = &[
            (
                "corp",
                "client_id = \"\"",
                &[],
                "login.client_id must be 1-256 characters",
            ),
            (
                "corp",
                "client_id = \"x\"\nscopes = [\"email\"]",
                &[],
                "login.scopes must include \"openid\"",
            ),
            (
                "corp",
                "client_id = \"x\"\nscopes = [\"openid\", \"two words\"]",
                &[],
                "login.scopes: 'two words' must be",
            ),
            (
                "corp",
                "client_id = \"x\"\nstep_up_acr_values = [\"\"]",
                &[],
                "login.step_up_acr_values: '' must be",
            ),
            (
                "corp",
                "client_id = \"x\"\nclient_secret_env = \"A\"\nclient_secret_file = \"f\"",
                &[("A", "s")],
                "set client_secret_file or client_secret_env, not both",
            ),
            (
                "corp",
                "client_id = \"x\"\nclient_secret_env = \"MISSING\"",
                &[],
                "login.client_secret_env: $MISSING is not set",
            ),
            (
                "corp",
                "client_id = \"x\"\nclient_secret_file = \"/nonexistent/secret\"",
                &[],
                "login.client_secret_file: cannot read /nonexistent/secret",
            ),
            (
                "idp.example.com/tenant",
                "client_id = \"x\"",
                &[],
                "a provider used for browser sign-in needs a name of [A-Za-z0-9_.-]",
            ),
            (
                "corp",
                "client_id = \"x\"\nredirect_uri = \"https://evil.example\"",
                &[],
                "unknown field `redirect_uri`",
            ),
        ];
        for (name, login, env, expected) in cases {
            let err = load(&with_login(name, login), env).unwrap_err().to_string();
            assert!(err.contains(expected), "{login}: {err}");
        }
    }
}
