//! The browser portal's configuration: session lifetimes and which sign-in methods the start page
//! offers.

use super::raw::RawPortal;
use super::{Account, DirectorySettings, OidcProvider, SamlProvider, Validator, WebAuthnSettings};
use toml::Spanned;

/// Default idle timeout of a portal session (minutes).
pub const DEFAULT_IDLE_MINUTES: i64 = 30;
/// Default absolute lifetime of a portal session (hours).
pub const DEFAULT_MAX_HOURS: i64 = 12;

/// Settings of the browser portal.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// A session unused this long (seconds) ends.
    pub idle_seconds: i64,
    /// A session ends this long (seconds) after sign-in, used or not.
    pub max_seconds: i64,
    /// Whether directory users sign in with their password on the start page.
    pub local_login: bool,
    /// Security keys (WebAuthn) for directory users: the relying party, `None` when off.
    pub webauthn: Option<WebAuthnSettings>,
}

/// Whether people can sign in to the portal through this SAML provider in a browser: its metadata
/// names an HTTP-Redirect sign-on service (the start page links to it), or its own sign-in page
/// may post to us unasked (`allow_idp_initiated`). Metadata fetched from a URL is not known yet
/// and counts.
fn saml_browser_sign_in(p: &SamlProvider) -> bool {
    p.allow_idp_initiated || p.metadata.as_ref().is_none_or(|m| m.sso_redirect.is_some())
}

impl Validator<'_> {
    /// The `[portal]` table; at least one sign-in method must be on: local passwords, an OpenID
    /// provider with a `login` table, or a SAML provider browsers can sign in through.
    pub(super) fn validate_portal(
        &mut self,
        raw: Option<&Spanned<RawPortal>>,
        directory: Option<&DirectorySettings>,
        accounts: &[Account],
        (oidc, saml): (&[OidcProvider], &[SamlProvider]),
    ) -> Option<PortalSettings> {
        let raw = raw?;
        let at = Some(raw.span().start);
        let p = raw.get_ref();
        let idle_minutes = p.session_idle_minutes.unwrap_or(DEFAULT_IDLE_MINUTES);
        if !(5..=1440).contains(&idle_minutes) {
            self.err(
                at,
                "portal.session_idle_minutes: must be between 5 and 1440",
            );
        }
        let max_hours = p.session_max_hours.unwrap_or(DEFAULT_MAX_HOURS);
        if !(1..=24).contains(&max_hours) {
            self.err(at, "portal.session_max_hours: must be between 1 and 24");
        }
        if idle_minutes > max_hours * 60 {
            self.err(
                at,
                "portal.session_idle_minutes: longer than portal.session_max_hours",
            );
        }
        let local_login = p.local_login.unwrap_or(directory.is_some());
        if local_login && directory.is_none() {
            self.err(
                at,
                if accounts.is_empty() {
                    "portal.local_login: there is no local directory (no account is configured)"
                } else {
                    "portal.local_login: there is no local directory"
                },
            );
        }
        let provider_sign_in =
            oidc.iter().any(|p| p.login.is_some()) || saml.iter().any(saml_browser_sign_in);
        if !local_login && !provider_sign_in {
            self.err(
                at,
                "portal: no sign-in method is enabled: turn on local_login (with a local \
                 directory), give an [[oidc_providers]] entry a [oidc_providers.login] table, or \
                 add a [[saml_providers]] entry browsers can sign in through (metadata with an \
                 HTTP-Redirect SingleSignOnService, or allow_idp_initiated = true)",
            );
        }
        Some(PortalSettings {
            idle_seconds: idle_minutes.clamp(5, 1440) * 60,
            max_seconds: max_hours.clamp(1, 24) * 3600,
            local_login,
            webauthn: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{load_test_debug, Config};
    use crate::testing;

    /// The shared test configuration, with its account or with none, and `extra` added.
    fn load(with_account: bool, extra: &str) -> Result<Config, String> {
        let mut c = testing::config();
        if !with_account {
            c = c.accounts(&[]);
        }
        load_test_debug(&c.with(extra).text())
    }

    #[test]
    fn portal_settings_are_validated() {
        let ok = load(true, "[portal]\n").unwrap();
        let p = ok.portal.unwrap();
        assert_eq!(
            (p.idle_seconds, p.max_seconds, p.local_login),
            (1800, 43200, true)
        );
        assert!(load(false, "").unwrap().portal.is_none());
        for (with_account, extra, needle) in [
            (false, "[portal]\n", "no sign-in method"),
            (
                false,
                "[portal]\nlocal_login = true\n",
                "no local directory",
            ),
            (
                true,
                "[portal]\nsession_idle_minutes = 2\n",
                "session_idle_minutes",
            ),
            (
                true,
                "[portal]\nsession_max_hours = 48\n",
                "session_max_hours",
            ),
            (
                true,
                "[portal]\nsession_idle_minutes = 120\nsession_max_hours = 1\n",
                "longer than",
            ),
            (true, "[portal]\nlocal_login = false\n", "no sign-in method"),
            (true, "[portal]\ncolour = \"blue\"\n", "unknown field"),
        ] {
            let e = load(with_account, extra).expect_err(extra);
            assert!(e.contains(needle), "{extra}: {e}");
        }
    }

    #[test]
    fn sign_in_through_a_provider_is_a_sign_in_method() {
        use crate::idp::saml::test_idp;
        use std::io::Write;
        let with_redirect = test_idp::metadata_xml(&test_idp::rsa_key());
        let start = with_redirect.find("<md:SingleSignOnService").unwrap();
        let end = with_redirect.find("</md:IDPSSODescriptor>").unwrap();
        let without_redirect = format!("{}{}", &with_redirect[..start], &with_redirect[end..]);
        let file = |xml: &str| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(xml.as_bytes()).unwrap();
            f
        };
        let (redirect, no_redirect) = (file(&with_redirect), file(&without_redirect));
        let saml = |f: &tempfile::NamedTempFile, extra: &str| {
            format!(
                "[[saml_providers]]\nname = \"corp\"\nmetadata_file = \"{}\"\n{extra}",
                f.path().display()
            )
        };
        let oidc = |login: bool| {
            format!(
                "[[oidc_providers]]\nissuer = \"https://idp.example.com\"\naudiences = [\"web\"]\n{}",
                if login {
                    "[oidc_providers.login]\nclient_id = \"rolegate\"\n"
                } else {
                    ""
                }
            )
        };
        let portal = "[portal]\nlocal_login = false\n";
        for (what, providers) in [
            ("an OpenID provider with a login table", oidc(true)),
            ("SAML metadata with a sign-on service", saml(&redirect, "")),
            (
                "SAML sign-in started at the provider",
                saml(&no_redirect, "allow_idp_initiated = true\n"),
            ),
        ] {
            // With and without a local directory (no account: none).
            for with_account in [true, false] {
                let c = load(with_account, &format!("{providers}{portal}"))
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(!c.portal.unwrap().local_login, "{what}");
            }
        }
        // Providers nobody signs in through in a browser are no sign-in method; the problem names
        // every method there is.
        let none = format!("{}{}{portal}", oidc(false), saml(&no_redirect, ""));
        let e = load(true, &none).unwrap_err();
        for needle in [
            "portal: no sign-in method is enabled",
            "local_login",
            "[oidc_providers.login]",
            "[[saml_providers]]",
            "allow_idp_initiated",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert_eq!(e.matches("no sign-in method").count(), 1, "{e}");
    }
}
