//! The portal's security-key (WebAuthn) relying party: `[portal] webauthn`, `webauthn_rp_id` and
//! `webauthn_rp_name`, checked against `server.public_url` (the origin browsers report). Owns the
//! rules a browser applies to an RP id; knows nothing of ceremonies or storage.

use super::raw::RawPortal;
use super::Validator;
use toml::Spanned;
use url::Url;
use webauthn_rs::prelude::WebauthnBuilder;

/// RP name shown by browsers when none is configured.
pub const DEFAULT_RP_NAME: &str = "rolegate";

/// Relying-party configuration.
#[derive(Clone, Debug)]
pub struct WebAuthnSettings {
    /// RP id: the origin's host or a registrable suffix of it
    /// (e.g. `example.com` for `https://login.example.com`). Changing it later
    /// invalidates every registered key.
    pub rp_id: String,
    /// The exact origin the browser reports (scheme, host and port).
    /// Must be `https`, except for `localhost` during development.
    pub rp_origin: url::Url,
    /// Human-readable name shown by the browser during registration.
    pub rp_name: String,
}

impl WebAuthnSettings {
    /// The `webauthn-rs` builder of this relying party, its name set; why not when the settings
    /// are unusable: an origin that is not `https` (plain `http` only for `localhost`), a blank
    /// `rp_name`, or an `rp_id` that is not the origin's host or a parent domain of it.
    pub fn builder(&self) -> Result<WebauthnBuilder<'_>, String> {
        let origin = &self.rp_origin;
        let secure = origin.scheme() == "https"
            || (origin.scheme() == "http" && origin.host_str() == Some("localhost"));
        if !secure {
            return Err(format!(
                "rp_origin {origin} must use https (http only for localhost)"
            ));
        }
        if self.rp_name.trim().is_empty() {
            return Err("rp_name is empty".to_owned());
        }
        Ok(WebauthnBuilder::new(&self.rp_id, origin)
            .map_err(|e| {
                format!(
                    "rp_id {:?} is not the host or a parent domain of {origin}: {e}",
                    self.rp_id
                )
            })?
            .rp_name(&self.rp_name))
    }
}

/// Whether browsers offer WebAuthn on `url`: a secure context with a domain name (https, or
/// http on `localhost`); never on an IP address.
fn webauthn_capable(url: &Url) -> bool {
    matches!(url.host(), Some(url::Host::Domain(_)))
        && (url.scheme() == "https" || url.host_str() == Some("localhost"))
}

/// Why browsers will not offer WebAuthn on `url`, in words for the person who wants a security
/// key; `None` when they will. The default of `portal.webauthn` is off for such a `public_url`.
pub fn webauthn_unusable_on(url: &Url) -> Option<String> {
    if webauthn_capable(url) {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    let rule =
        "browsers offer security keys only at a domain name over https (or at http://localhost)";
    Some(match url.host() {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            format!("rolegate is reached at an IP address ({origin}), and {rule}.")
        }
        _ => format!("rolegate is reached over plain http ({origin}), and {rule}."),
    })
}

/// A lower-case DNS name: labels of `a-z0-9-`, 1–63 characters, not starting or ending with `-`.
fn dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Why `rp_id` cannot be the RP id of pages served from `host`, if it cannot: it must be the host
/// itself or a parent domain of it with at least two labels (a single label such as `com` is a
/// public suffix, which browsers refuse).
pub fn rp_id_problem(rp_id: &str, host: &str) -> Option<String> {
    if !dns_name(rp_id) {
        return Some(format!(
            "'{rp_id}' is not a lower-case DNS name (no scheme, port, path or IP address)"
        ));
    }
    if rp_id == host {
        return None;
    }
    if !host.ends_with(&format!(".{rp_id}")) {
        return Some(format!(
            "'{rp_id}' is neither the host of server.public_url ({host}) nor a parent domain of it"
        ));
    }
    if !rp_id.contains('.') {
        return Some(format!(
            "'{rp_id}' is a top-level domain (a public suffix): use {host} or a registrable parent domain"
        ));
    }
    None
}

impl Validator<'_> {
    /// The relying party of security keys, or `None` when they are off. Default: on when the
    /// portal signs in directory users and `public_url` is one browsers allow WebAuthn on.
    pub(super) fn validate_webauthn(
        &mut self,
        raw: &Spanned<RawPortal>,
        public_url: Option<&Url>,
        local_login: bool,
    ) -> Option<WebAuthnSettings> {
        let at = Some(raw.span().start);
        let p = raw.get_ref();
        let public_url = public_url?;
        let capable = webauthn_capable(public_url);
        let enabled = match p.webauthn {
            Some(true) if !local_login => {
                self.err(
                    at,
                    "portal.webauthn: security keys are for directory users, and local_login is off",
                );
                false
            }
            Some(true) if !capable => {
                self.err(
                    at,
                    format!(
                        "portal.webauthn: browsers allow WebAuthn only on https (or http://localhost) with a domain name, not on {public_url}"
                    ),
                );
                false
            }
            Some(on) => on,
            None => local_login && capable,
        };
        if !enabled {
            for (key, set) in [
                ("webauthn_rp_id", p.webauthn_rp_id.is_some()),
                ("webauthn_rp_name", p.webauthn_rp_name.is_some()),
            ] {
                if set {
                    self.err(
                        at,
                        format!("portal.{key}: set, but security keys (portal.webauthn) are off"),
                    );
                }
            }
            return None;
        }
        let host = public_url.host_str().unwrap_or_default().to_string();
        let rp_id = p.webauthn_rp_id.clone().unwrap_or_else(|| host.clone());
        if let Some(why) = rp_id_problem(&rp_id, &host) {
            self.err(at, format!("portal.webauthn_rp_id: {why}"));
            return None;
        }
        let rp_name = p
            .webauthn_rp_name
            .clone()
            .unwrap_or_else(|| DEFAULT_RP_NAME.to_string());
        if rp_name.trim().is_empty()
            || rp_name.chars().count() > 64
            || rp_name.chars().any(char::is_control)
        {
            self.err(
                at,
                "portal.webauthn_rp_name: must be 1-64 characters without control characters",
            );
            return None;
        }
        let mut rp_origin = public_url.clone();
        rp_origin.set_path("");
        rp_origin.set_query(None);
        rp_origin.set_fragment(None);
        let settings = WebAuthnSettings {
            rp_id,
            rp_origin,
            rp_name,
        };
        // What the security-key verifier is built from: refused here rather than at start-up.
        if let Err(e) = settings.builder() {
            self.err(at, format!("portal.webauthn: webauthn configuration: {e}"));
            return None;
        }
        Some(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::rp_id_problem;
    use crate::config::{load_test_debug, Config};
    use crate::testing;

    /// The shared test configuration reached at `public_url`, with `[portal]` and `portal` added.
    fn load(public_url: &str, portal: &str) -> Result<Config, String> {
        let c = testing::config().server("127.0.0.1:0", public_url);
        load_test_debug(&c.with("[portal]\n").with(portal).text())
    }

    fn webauthn(public_url: &str, portal: &str) -> Option<(String, String, String)> {
        let c = load(public_url, portal).unwrap();
        c.portal.unwrap().webauthn.map(|w| {
            (
                w.rp_id,
                w.rp_origin.origin().ascii_serialization(),
                w.rp_name,
            )
        })
    }

    #[test]
    fn the_reason_browsers_refuse_webauthn_names_the_origin() {
        let why = |u: &str| super::webauthn_unusable_on(&url::Url::parse(u).unwrap());
        assert_eq!(why("https://sso.example.com/"), None);
        assert_eq!(why("http://localhost:8080"), None);
        assert!(why("http://127.0.0.1:8080")
            .is_some_and(|w| w.contains("IP address (http://127.0.0.1:8080)")));
        assert!(why("https://[::1]:8443").is_some_and(|w| w.contains("IP address")));
        assert!(why("http://sso.example.com").is_some_and(|w| w.contains("plain http")));
    }

    #[test]
    fn relying_party_defaults_follow_the_public_url() {
        assert_eq!(
            webauthn("https://sso.example.com/", ""),
            Some((
                "sso.example.com".into(),
                "https://sso.example.com".into(),
                "rolegate".into()
            ))
        );
        assert_eq!(
            webauthn(
                "http://localhost:8080",
                "webauthn_rp_name = \"Example SSO\"\n"
            ),
            Some((
                "localhost".into(),
                "http://localhost:8080".into(),
                "Example SSO".into()
            ))
        );
        assert_eq!(
            webauthn(
                "https://login.sso.example.com:8443",
                "webauthn_rp_id = \"example.com\"\n"
            ),
            Some((
                "example.com".into(),
                "https://login.sso.example.com:8443".into(),
                "rolegate".into()
            ))
        );
        // Browsers refuse WebAuthn on an IP address: off by default there, nothing refused.
        assert_eq!(webauthn("http://127.0.0.1:8080", ""), None);
        assert_eq!(
            webauthn("https://sso.example.com", "webauthn = false\n"),
            None
        );
    }

    #[test]
    fn unusable_relying_parties_are_refused() {
        for (url, portal, needle) in [
            (
                "http://127.0.0.1:8080",
                "webauthn = true\n",
                "only on https (or http://localhost) with a domain name",
            ),
            (
                "https://sso.example.com",
                "webauthn_rp_id = \"other.example\"\n",
                "neither the host of server.public_url (sso.example.com) nor a parent domain",
            ),
            (
                "https://sso.example.com",
                "webauthn_rp_id = \"com\"\n",
                "a top-level domain",
            ),
            (
                "https://sso.example.com",
                "webauthn_rp_id = \"https://sso.example.com\"\n",
                "not a lower-case DNS name",
            ),
            (
                "https://sso.example.com",
                "webauthn_rp_id = \"SSO.example.com\"\n",
                "not a lower-case DNS name",
            ),
            (
                "https://xsso.example.com",
                "webauthn_rp_id = \"sso.example.com\"\n",
                "nor a parent domain",
            ),
            (
                "https://sso.example.com",
                "webauthn_rp_name = \" \"\n",
                "webauthn_rp_name: must be 1-64 characters",
            ),
            (
                "https://sso.example.com",
                "webauthn = false\nwebauthn_rp_id = \"example.com\"\n",
                "portal.webauthn_rp_id: set, but security keys (portal.webauthn) are off",
            ),
            (
                "http://127.0.0.1:8080",
                "webauthn_rp_name = \"x\"\n",
                "portal.webauthn_rp_name: set, but security keys",
            ),
            (
                "https://sso.example.com",
                "webauthn = \"yes\"\n",
                "invalid type",
            ),
        ] {
            let e = load(url, portal).expect_err(portal);
            assert!(e.contains(needle), "{url} {portal}: {e}");
        }
    }

    #[test]
    fn rp_id_is_the_host_or_a_registrable_parent() {
        assert_eq!(rp_id_problem("example.com", "a.b.example.com"), None);
        assert_eq!(rp_id_problem("localhost", "localhost"), None);
        assert!(rp_id_problem("ample.com", "example.com").is_some());
        assert!(rp_id_problem("127.0.0.1", "127.0.0.1").is_some());
        assert!(rp_id_problem("example.com.", "a.example.com").is_some());
        assert!(rp_id_problem("-x.example.com", "a.-x.example.com").is_some());
    }
}
