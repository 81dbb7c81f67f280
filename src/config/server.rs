//! Where rolegate listens and how it is reached (`[server]`: listen address, public URL, the
//! proxies whose forwarding headers are believed) and what the STS edge accepts (`[sts]`: regions of
//! credential scopes, clock skew of signed requests).

use super::raw::{RawServer, RawSts};
use super::Validator;
use std::net::SocketAddr;
use url::Url;

impl Validator<'_> {
    /// `server.listen`, or `ROLEGATE_LISTEN`.
    pub(super) fn listen(
        &mut self,
        raw: &RawServer,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<SocketAddr> {
        let listen_text =
            env_get("ROLEGATE_LISTEN").unwrap_or_else(|| raw.listen.get_ref().clone());
        match listen_text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    Some(raw.listen.span().start),
                    format!("server.listen: '{listen_text}' is not an address:port (e.g. 127.0.0.1:8080)"),
                );
                None
            }
        }
    }

    /// `server.public_url`, or `ROLEGATE_PUBLIC_URL`: https, or plain http on a loopback host.
    pub(super) fn public_url(
        &mut self,
        raw: &RawServer,
        env_get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Url> {
        let public_text =
            env_get("ROLEGATE_PUBLIC_URL").unwrap_or_else(|| raw.public_url.get_ref().clone());
        match Url::parse(&public_text) {
            Ok(u) if u.scheme() == "https" => Some(u),
            Ok(u) if u.scheme() == "http" && host_is_loopback(&u) => Some(u),
            Ok(u) if u.scheme() == "http" => {
                self.err(
                    Some(raw.public_url.span().start),
                    format!(
                        "server.public_url: '{public_text}' is plain http on a non-loopback host; use https (credentials and sign-in tokens cross this URL)"
                    ),
                );
                let _ = u;
                None
            }
            _ => {
                self.err(
                    Some(raw.public_url.span().start),
                    format!("server.public_url: '{public_text}' is not an http(s) URL"),
                );
                None
            }
        }
    }

    /// `server.trusted_proxies`: addresses and CIDR blocks, never one that covers every address.
    pub(super) fn trusted_proxies(&mut self, raw: &RawServer) -> Vec<ipnet::IpNet> {
        let mut trusted_proxies = Vec::new();
        for p in &raw.trusted_proxies {
            let text = p.get_ref();
            match text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(n) if n.prefix_len() == 0 => self.err(
                    Some(p.span().start),
                    format!("server.trusted_proxies: '{text}' trusts every address; name the proxies"),
                ),
                Ok(n) => trusted_proxies.push(n.trunc()),
                Err(_) => self.err(
                    Some(p.span().start),
                    format!(
                        "server.trusted_proxies: '{text}' is not an address or CIDR block such as 10.0.0.0/8"
                    ),
                ),
            }
        }
        trusted_proxies
    }

    /// `sts.regions` (default `us-east-1`).
    pub(super) fn sts_regions(&mut self, raw: &RawSts) -> Vec<String> {
        match &raw.regions {
            Some(r) => {
                for region in r.get_ref() {
                    if region.is_empty()
                        || !region
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    {
                        self.err(
                            Some(r.span().start),
                            format!("sts.regions: '{region}' is not a region name"),
                        );
                    }
                }
                if r.get_ref().is_empty() {
                    self.err(
                        Some(r.span().start),
                        "sts.regions: at least one region is required",
                    );
                }
                r.get_ref().clone()
            }
            None => vec!["us-east-1".to_string()],
        }
    }

    /// `sts.max_clock_skew_seconds`, 1 to 900 (the default).
    pub(super) fn max_clock_skew(&mut self, raw: &RawSts) -> i64 {
        match &raw.max_clock_skew_seconds {
            Some(s) if !(1..=900).contains(s.get_ref()) => {
                self.err(
                    Some(s.span().start),
                    "sts.max_clock_skew_seconds: must be between 1 and 900 (AWS uses 900)",
                );
                900
            }
            Some(s) => *s.get_ref(),
            None => 900,
        }
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
pub(super) fn host_is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}
