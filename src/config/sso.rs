//! `[sso]`: the IAM Identity Center–compatible command line sign-in (SSO-OIDC device and PKCE flows,
//! the portal API). It needs `[portal]`: a person approves a device or a PKCE sign-in in the portal.

use super::raw::RawSso;
use super::Validator;
use toml::Spanned;

/// Settings of command line sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    /// Lifetime of an access token (seconds); the client refreshes it with its refresh token.
    pub access_token_seconds: i64,
    /// Lifetime of a sign-in (seconds): refresh tokens stop working this long after the approval,
    /// and the person signs in again.
    pub session_seconds: i64,
    /// Lifetime of a device code and its user code (seconds).
    pub device_code_seconds: i64,
    /// Least time between two polls of one device code (seconds), as `interval` tells the client.
    pub poll_interval_seconds: i64,
    /// Lifetime of a registered client's secret (seconds).
    pub client_secret_seconds: i64,
    /// Whether `Logout` also revokes the role credentials obtained with the ended token (AWS
    /// leaves them valid until they expire; so does rolegate unless this is on). The credentials
    /// are remembered either way, so that an operator can list and end them one by one.
    pub logout_revokes_credentials: bool,
}

impl Default for SsoSettings {
    fn default() -> Self {
        Self {
            access_token_seconds: 3600,
            session_seconds: 8 * 3600,
            device_code_seconds: 600,
            poll_interval_seconds: 5,
            client_secret_seconds: 90 * 86400,
            logout_revokes_credentials: false,
        }
    }
}

impl Validator<'_> {
    pub(super) fn validate_sso(
        &mut self,
        raw: Option<&Spanned<RawSso>>,
        portal: bool,
    ) -> Option<SsoSettings> {
        let raw = raw?;
        let at = Some(raw.span().start);
        let r = raw.get_ref();
        if !portal {
            self.err(
                at,
                "sso: command line sign-in needs [portal] (people approve sign-ins there)",
            );
        }
        let d = SsoSettings::default();
        let mut range = |v: Option<i64>, default: i64, lo: i64, hi: i64, name: &str| {
            let v = v.unwrap_or(default);
            if !(lo..=hi).contains(&v) {
                self.err(at, format!("sso.{name}: must be between {lo} and {hi}"));
            }
            v.clamp(lo, hi)
        };
        let access_minutes = range(
            r.access_token_minutes,
            d.access_token_seconds / 60,
            5,
            1440,
            "access_token_minutes",
        );
        let session_hours = range(
            r.session_hours,
            d.session_seconds / 3600,
            1,
            2160,
            "session_hours",
        );
        let device_minutes = range(
            r.device_code_minutes,
            d.device_code_seconds / 60,
            1,
            30,
            "device_code_minutes",
        );
        let interval = range(
            r.poll_interval_seconds,
            d.poll_interval_seconds,
            1,
            60,
            "poll_interval_seconds",
        );
        let secret_days = range(
            r.client_secret_days,
            d.client_secret_seconds / 86400,
            1,
            365,
            "client_secret_days",
        );
        if access_minutes * 60 > session_hours * 3600 {
            self.err(
                at,
                "sso.access_token_minutes: longer than sso.session_hours",
            );
        }
        Some(SsoSettings {
            access_token_seconds: access_minutes * 60,
            session_seconds: session_hours * 3600,
            device_code_seconds: device_minutes * 60,
            poll_interval_seconds: interval,
            client_secret_seconds: secret_days * 86400,
            logout_revokes_credentials: r.logout_revokes_credentials.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{load_test_debug, Config};
    use crate::testing;

    /// The shared test configuration with `extra` added.
    fn load(extra: &str) -> Result<Config, String> {
        load_test_debug(&testing::config().with(extra).text())
    }

    #[test]
    fn sso_settings_are_validated() {
        let ok = load("[portal]\n[sso]\n").unwrap();
        assert_eq!(ok.sso, Some(super::SsoSettings::default()));
        assert!(load("[portal]\n").unwrap().sso.is_none());
        let set = load(
            "[portal]\n[sso]\naccess_token_minutes = 30\nsession_hours = 12\n\
             device_code_minutes = 5\npoll_interval_seconds = 2\nclient_secret_days = 30\n\
             logout_revokes_credentials = true\n",
        )
        .unwrap()
        .sso
        .unwrap();
        assert_eq!(
            (
                set.access_token_seconds,
                set.session_seconds,
                set.device_code_seconds,
                set.poll_interval_seconds,
                set.client_secret_seconds,
                set.logout_revokes_credentials
            ),
            (1800, 43200, 300, 2, 30 * 86400, true)
        );
        for (extra, needle) in [
            ("[sso]\n", "needs [portal]"),
            (
                "[portal]\n[sso]\naccess_token_minutes = 1\n",
                "access_token_minutes",
            ),
            ("[portal]\n[sso]\nsession_hours = 0\n", "session_hours"),
            (
                "[portal]\n[sso]\ndevice_code_minutes = 60\n",
                "device_code_minutes",
            ),
            (
                "[portal]\n[sso]\npoll_interval_seconds = 0\n",
                "poll_interval_seconds",
            ),
            (
                "[portal]\n[sso]\nclient_secret_days = 400\n",
                "client_secret_days",
            ),
            (
                "[portal]\n[sso]\naccess_token_minutes = 120\nsession_hours = 1\n",
                "longer than",
            ),
            ("[portal]\n[sso]\nflavour = 1\n", "unknown field"),
        ] {
            let e = load(extra).unwrap_err();
            assert!(e.contains(needle), "{extra}: {e}");
        }
    }
}
