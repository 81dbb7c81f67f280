//! Rate limits: a generic cell-rate limiter (GCRA, the token bucket kept as one "theoretical
//! arrival time" per key) and the limits rolegate applies — sign-in and bootstrap per client
//! address and per user name, STS calls with an MFA code per device, optionally every STS call
//! per client address, SSO-OIDC client registrations and device authorizations per address, and
//! user codes entered in the portal per address and per session.
//!
//! Keys live in sharded maps bounded by `max_tracked_keys`: idle keys (whose bucket is full again)
//! are dropped when a shard fills, and if a shard is still full the request of a new key is
//! refused rather than tracked without bound (fail closed). IPv6 clients are keyed by their /64,
//! the smallest block one end site is usually given, so that one host cannot dodge the limit by
//! rotating addresses.
//!
//! Knows nothing of HTTP: callers turn a refusal into `Throttling` or HTTP 429.

use crate::config::{Rate, RateLimitSettings};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// A refusal: which limit, and how long until a request of this key would pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit {limit} exceeded; retry in {retry_after:?}")]
pub struct Limited {
    /// The limit's name (`login_per_ip`, `sts_per_principal`, …).
    pub limit: &'static str,
    /// Until the next request of this key would pass (zero when refused because the table is full).
    pub retry_after: Duration,
}

/// One limit over keys of type `K`.
pub struct Limiter<K> {
    name: &'static str,
    /// Nanoseconds between requests at the sustained rate.
    interval: u64,
    /// How far ahead of now a key's arrival time may run: `interval × (burst − 1)`.
    tolerance: u64,
    shards: Vec<Mutex<HashMap<K, u64>>>,
    per_shard: usize,
    hasher: foldhash::fast::RandomState,
    epoch: Instant,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter allowing `rate`, tracking at most about `max_keys` keys.
    pub fn new(name: &'static str, rate: Rate, max_keys: usize) -> Self {
        let interval = 60_000_000_000u64 / u64::from(rate.per_minute.max(1));
        Self {
            name,
            interval,
            tolerance: interval.saturating_mul(u64::from(rate.burst.max(1)) - 1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: foldhash::fast::RandomState::default(),
            epoch: Instant::now(),
        }
    }

    /// Counts one request of `key` now.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        self.check_at(key, self.epoch.elapsed())
    }

    /// Counts one request of `key` at `now` (time since the limiter was made).
    pub fn check_at(&self, key: &K, now: Duration) -> Result<(), Limited> {
        // Offset by one interval so that "never seen" (0) is always in the past.
        let now = u64::try_from(now.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(self.interval);
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = shard.lock();
        let tat = match map.get(key) {
            Some(t) => (*t).max(now),
            None => {
                if map.len() >= self.per_shard {
                    map.retain(|_, t| *t > now);
                    if map.len() >= self.per_shard {
                        return Err(Limited {
                            limit: self.name,
                            retry_after: Duration::ZERO,
                        });
                    }
                }
                now
            }
        };
        if tat - now > self.tolerance {
            return Err(Limited {
                limit: self.name,
                retry_after: Duration::from_nanos(tat - now - self.tolerance),
            });
        }
        map.insert(key.clone(), tat + self.interval);
        Ok(())
    }

    /// Keys tracked now (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// A client address as a rate-limit key: IPv4 whole, IPv6 by /64.
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(a) >> 64 << 64) | (1 << 32),
        },
    }
}

/// The limits rolegate applies; each is `None` when turned off.
pub struct RateLimits {
    login_per_ip: Option<Limiter<u128>>,
    login_per_user: Option<Limiter<String>>,
    mfa_per_user: Option<Limiter<String>>,
    sts_per_principal: Option<Limiter<String>>,
    sts_per_ip: Option<Limiter<u128>>,
    sso_start_per_ip: Option<Limiter<u128>>,
    user_code_per_ip: Option<Limiter<u128>>,
    user_code_per_session: Option<Limiter<String>>,
}

/// The limit `name` at `rate` when its setting turns it on.
fn on<K: Hash + Eq + Clone>(
    name: &'static str,
    rate: Option<Rate>,
    max_keys: usize,
) -> Option<Limiter<K>> {
    rate.map(|r| Limiter::new(name, r, max_keys))
}

/// Counts a request of the key `key()` against `limit` when that limit is on (the key made only then).
fn count<K: Hash + Eq + Clone>(
    limit: &Option<Limiter<K>>,
    key: impl FnOnce() -> K,
) -> Result<(), Limited> {
    match limit {
        Some(l) => l.check(&key()),
        None => Ok(()),
    }
}

impl RateLimits {
    /// The limits `settings` turn on.
    pub fn new(settings: &RateLimitSettings) -> Self {
        let max = settings.max_tracked_keys;
        Self {
            login_per_ip: on("login_per_ip", settings.login_per_ip, max),
            login_per_user: on("login_per_user", settings.login_per_user, max),
            mfa_per_user: on("mfa_per_user", settings.mfa_per_user, max),
            sts_per_principal: on("sts_per_principal", settings.sts_per_principal, max),
            sts_per_ip: on("sts_per_ip", settings.sts_per_ip, max),
            sso_start_per_ip: on("sso_start_per_ip", settings.sso_start_per_ip, max),
            user_code_per_ip: on("user_code_per_ip", settings.user_code_per_ip, max),
            // One setting for both keys of the device page.
            user_code_per_session: on("user_code_per_session", settings.user_code_per_ip, max),
        }
    }

    /// A sign-in attempt (or root bootstrap step) from `ip`, for `user` when one is named. The
    /// address is counted first, so that guessing many user names from one address is stopped by
    /// the address limit before it fills the user table.
    pub fn login(&self, ip: IpAddr, user: Option<&str>) -> Result<(), Limited> {
        count(&self.login_per_ip, || ip_key(ip))?;
        match user {
            Some(u) => count(&self.login_per_user, || u.to_lowercase()),
            None => Ok(()),
        }
    }

    /// An STS call from `ip`, carrying an MFA code for the device `mfa_serial` if any.
    pub fn sts(&self, ip: IpAddr, mfa_serial: Option<&str>) -> Result<(), Limited> {
        count(&self.sts_per_ip, || ip_key(ip))?;
        match mfa_serial {
            Some(serial) => self.mfa(serial),
            None => Ok(()),
        }
    }

    /// An STS call by `principal` (a web or SAML identity, or the signer's ARN), checked once the
    /// caller is proven, so that nobody can spend another caller's allowance.
    pub fn sts_principal(&self, principal: &str) -> Result<(), Limited> {
        count(&self.sts_per_principal, || principal.to_string())
    }

    /// An SSO-OIDC `RegisterClient` or `StartDeviceAuthorization` from `ip`.
    pub fn sso_start(&self, ip: IpAddr) -> Result<(), Limited> {
        count(&self.sso_start_per_ip, || ip_key(ip))
    }

    /// A user code entered on the device page from `ip` in the portal session `session` (its
    /// store key). Every entry counts, right or wrong: counting only wrong ones would not slow
    /// down guessing, since a right guess is what must not be found.
    pub fn user_code(&self, ip: IpAddr, session: &str) -> Result<(), Limited> {
        count(&self.user_code_per_ip, || ip_key(ip))?;
        count(&self.user_code_per_session, || session.to_string())
    }

    /// An MFA code presented at sign-in for the device `serial`.
    pub fn mfa(&self, serial: &str) -> Result<(), Limited> {
        count(&self.mfa_per_user, || serial.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn rate(per_minute: u32, burst: u32) -> Rate {
        Rate { per_minute, burst }
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let l = Limiter::new("login_per_ip", rate(60, 3), 1000);
        let k = 7u128;
        for _ in 0..3 {
            assert!(l.check_at(&k, Duration::ZERO).is_ok());
        }
        let e = l.check_at(&k, Duration::ZERO).unwrap_err();
        assert_eq!(e.limit, "login_per_ip");
        assert_eq!(e.retry_after, S);
        assert!(l.check_at(&k, S / 2).is_err());
        assert!(l.check_at(&k, S).is_ok(), "one more a second later");
        assert!(l.check_at(&k, S).is_err());
        // Other keys are not affected.
        assert!(l.check_at(&8u128, S).is_ok());
        // After a pause the whole burst is back, no more.
        for _ in 0..3 {
            assert!(l.check_at(&k, 10 * S).is_ok());
        }
        assert!(l.check_at(&k, 10 * S).is_err());
    }

    #[test]
    fn refused_requests_do_not_push_the_key_further_back() {
        let l = Limiter::new("x", rate(60, 1), 1000);
        assert!(l.check_at(&1u128, Duration::ZERO).is_ok());
        for _ in 0..100 {
            assert!(l.check_at(&1u128, S / 2).is_err());
        }
        assert!(l.check_at(&1u128, S).is_ok());
    }

    #[test]
    fn a_full_table_drops_idle_keys_and_refuses_new_ones_while_all_are_busy() {
        let l = Limiter::new("x", rate(1, 1), SHARDS * 2);
        let mut refused = 0;
        for k in 0..(SHARDS as u128 * 8) {
            if l.check_at(&k, Duration::ZERO).is_err() {
                refused += 1;
            }
        }
        assert!(
            refused > 0,
            "new keys are refused while every tracked key is busy"
        );
        assert!(l.tracked() <= SHARDS * 2);
        // A minute later every bucket is full again: idle keys make room.
        for k in 1000..1000 + SHARDS as u128 {
            let _ = l.check_at(&k, Duration::from_secs(61));
        }
        assert!(l.tracked() <= SHARDS * 2);
        assert!(l.check_at(&5000u128, Duration::from_secs(200)).is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_key(v4), ip_key(mapped));
        assert_ne!(ip_key(v4), ip_key("::c000:201".parse().unwrap()));
    }

    #[test]
    fn login_counts_the_address_first_and_user_names_case_insensitively() {
        let limits = RateLimits::new(&RateLimitSettings {
            login_per_ip: Some(rate(60, 3)),
            login_per_user: Some(rate(60, 2)),
            sts_per_principal: None,
            mfa_per_user: None,
            sts_per_ip: None,
            sso_start_per_ip: None,
            user_code_per_ip: None,
            max_tracked_keys: 1000,
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limits.login(ip, Some("Alice")).is_ok());
        assert!(limits.login(other, Some("alice")).is_ok());
        assert_eq!(
            limits.login(other, Some("ALICE")).unwrap_err().limit,
            "login_per_user"
        );
        assert!(limits.login(ip, Some("bob")).is_ok());
        assert!(limits.login(ip, Some("carol")).is_ok());
        assert_eq!(
            limits.login(ip, Some("dave")).unwrap_err().limit,
            "login_per_ip"
        );
        // Off limits never refuse.
        for _ in 0..100 {
            assert!(limits.sts(ip, Some("arn:aws:iam::1:mfa/x")).is_ok());
        }
    }

    #[test]
    fn user_codes_count_per_address_and_per_session() {
        let limits = RateLimits::new(&RateLimitSettings {
            login_per_ip: None,
            login_per_user: None,
            mfa_per_user: None,
            sts_per_ip: None,
            sts_per_principal: None,
            sso_start_per_ip: Some(rate(60, 1)),
            user_code_per_ip: Some(rate(60, 2)),
            max_tracked_keys: 1000,
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limits.sso_start(ip).is_ok());
        assert_eq!(limits.sso_start(ip).unwrap_err().limit, "sso_start_per_ip");
        assert!(limits.sso_start(other).is_ok());
        assert!(limits.user_code(ip, "s1").is_ok());
        assert!(limits.user_code(other, "s1").is_ok());
        assert_eq!(
            limits.user_code(ip, "s1").unwrap_err().limit,
            "user_code_per_session"
        );
        // The address is counted first: its two entries are spent.
        assert_eq!(
            limits.user_code(ip, "s2").unwrap_err().limit,
            "user_code_per_ip"
        );
        assert!(limits.user_code(other, "s2").is_ok());
    }
}
