//! The browser portal's configuration: session lifetimes and which sign-in methods the start page
//! offers.

use super::raw::RawPortal;
use super::{Account, DirectorySettings, Validator, WebAuthnSettings};
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

impl Validator<'_> {
    pub(super) fn validate_portal(
        &mut self,
        raw: Option<&Spanned<RawPortal>>,
        directory: Option<&DirectorySettings>,
        accounts: &[Account],
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
        if !local_login {
            self.err(
                at,
                "portal: no sign-in method is enabled (local_login is the only one so far)",
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
}
