//! Prometheus metrics: the registry, every series rolegate exports, and their text rendering.
//!
//! The STS path is the hot one, so its series cost no allocation and no lock per request: action
//! and error code are mapped to fixed indexes (AWS's names, compared as strings without copying),
//! and each (action, code) counter and each action's latency histogram is created once, on first
//! use, into a `OnceLock` slot; afterwards a request pays two clock reads, one atomic add and one
//! histogram observation. Routes other than the STS go through the registry's label lookup (a
//! read lock and a hash), which is cheap enough for the admin and browser paths.
//!
//! Active sessions are an approximation, said so in their help text: sessions this process minted
//! whose expiry is still ahead, counted in one-minute expiry buckets (so a session may be counted
//! up to a minute after it expired). Sessions minted by other replicas or before a restart are not
//! counted, and revocation does not subtract (a revoked session still expires on schedule).
//!
//! Knows nothing of HTTP types, of the store's implementations or of domain rules.

mod store;

pub use store::MeteredStore;

use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Everything that can go wrong building the metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The registry refused a series (a duplicate name: a programming error).
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
    /// The text encoding failed.
    #[error("metrics encoding: {0}")]
    Encoding(String),
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, MetricsError>;

/// Latency buckets in seconds: the STS answers in about a millisecond, sign-ins hash passwords
/// for tens of milliseconds, a store outage shows as seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// STS and IAM Query API actions with their own label; anything else is `Other`.
pub const STS_ACTIONS: &[&str] = &[
    "AssumeRoleWithWebIdentity",
    "GetCallerIdentity",
    "AssumeRole",
    "DecodeAuthorizationMessage",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoleWithSAML",
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
    "Other",
];
const OTHER_ACTION: usize = STS_ACTIONS.len() - 1;

/// Outcome labels with a pre-allocated slot: `OK` for success, then AWS's error codes.
/// A code not listed still gets its own series, through the registry's lookup.
const STS_CODES: &[&str] = &[
    "OK",
    "AccessDenied",
    "ExpiredToken",
    "ExpiredTokenException",
    "IDPCommunicationError",
    "IDPRejectedClaim",
    "InternalFailure",
    "InvalidAction",
    "InvalidAuthorizationMessageException",
    "InvalidClientTokenId",
    "InvalidIdentityToken",
    "InvalidParameterValue",
    "MalformedPolicyDocument",
    "MissingAuthenticationToken",
    "PackedPolicyTooLarge",
    "RegionDisabledException",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "Throttling",
    "ValidationError",
    "NoSuchEntity",
];

/// Index of an action name in [`STS_ACTIONS`].
fn action_index(action: &str) -> usize {
    STS_ACTIONS[..OTHER_ACTION]
        .iter()
        .position(|a| *a == action)
        .unwrap_or(OTHER_ACTION)
}

fn code_index(code: &str) -> Option<usize> {
    STS_CODES.iter().position(|c| *c == code)
}

/// Store operations timed by [`MeteredStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `sealing_keys`
    SealingKeys,
    /// `insert_sealing_key`
    InsertSealingKey,
    /// `retire_sealing_key`
    RetireSealingKey,
    /// `delete_sealing_key`
    DeleteSealingKey,
    /// `first_use`
    FirstUse,
    /// `purge_expired_replays`
    PurgeExpiredReplays,
    /// `revoke`
    Revoke,
    /// `revocations`
    Revocations,
    /// `purge_expired_revocations`
    PurgeExpiredRevocations,
    /// `dir_get`
    DirGet,
    /// `dir_list`
    DirList,
    /// `dir_write`
    DirWrite,
    /// `append_audit`
    AppendAudit,
    /// `query_audit`
    QueryAudit,
    /// `health`
    Health,
}

impl StoreOp {
    /// Every operation, in label order.
    pub const ALL: [StoreOp; 15] = [
        StoreOp::SealingKeys,
        StoreOp::InsertSealingKey,
        StoreOp::RetireSealingKey,
        StoreOp::DeleteSealingKey,
        StoreOp::FirstUse,
        StoreOp::PurgeExpiredReplays,
        StoreOp::Revoke,
        StoreOp::Revocations,
        StoreOp::PurgeExpiredRevocations,
        StoreOp::DirGet,
        StoreOp::DirList,
        StoreOp::DirWrite,
        StoreOp::AppendAudit,
        StoreOp::QueryAudit,
        StoreOp::Health,
    ];

    /// The trait method's name, the `op` label.
    pub fn name(self) -> &'static str {
        match self {
            StoreOp::SealingKeys => "sealing_keys",
            StoreOp::InsertSealingKey => "insert_sealing_key",
            StoreOp::RetireSealingKey => "retire_sealing_key",
            StoreOp::DeleteSealingKey => "delete_sealing_key",
            StoreOp::FirstUse => "first_use",
            StoreOp::PurgeExpiredReplays => "purge_expired_replays",
            StoreOp::Revoke => "revoke",
            StoreOp::Revocations => "revocations",
            StoreOp::PurgeExpiredRevocations => "purge_expired_revocations",
            StoreOp::DirGet => "dir_get",
            StoreOp::DirList => "dir_list",
            StoreOp::DirWrite => "dir_write",
            StoreOp::AppendAudit => "append_audit",
            StoreOp::QueryAudit => "query_audit",
            StoreOp::Health => "health",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Longest session lifetime rolegate issues (GetSessionToken's 36 hours), in minutes, plus slack:
/// the number of one-minute expiry buckets.
const SESSION_BUCKETS: usize = 36 * 60 + 48;

/// Sessions minted by this process and not yet expired, in one-minute expiry buckets. Each bucket
/// packs (expiry minute << 24 | count) in one atomic, so that a bucket reused for a later minute
/// starts again from zero without a lock.
struct ActiveSessions {
    buckets: Box<[AtomicU64]>,
}

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

impl ActiveSessions {
    fn new() -> Self {
        Self {
            buckets: (0..SESSION_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A session expiring at `expires_at` (Unix seconds) was minted at `now`.
    fn minted(&self, now: i64, expires_at: i64) {
        if expires_at <= now {
            return;
        }
        // The minute the session's expiry falls in, rounded up: counted until that minute is over.
        let minute = (expires_at.max(0) as u64).div_ceil(60);
        let slot = &self.buckets[(minute as usize) % SESSION_BUCKETS];
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let (stamp, count) = (cur >> COUNT_BITS, cur & COUNT_MASK);
            let next = if stamp == minute {
                if count == COUNT_MASK {
                    return;
                }
                cur + 1
            } else if stamp < minute {
                (minute << COUNT_BITS) | 1
            } else {
                // A later minute already owns the slot: the session lives longer than the ring
                // covers, which the bucket count rules out; not counted rather than miscounted.
                return;
            };
            match slot.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Sessions whose expiry minute is not over at `now`.
    fn active(&self, now: i64) -> u64 {
        let now_minute = (now.max(0) as u64) / 60;
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .filter(|v| (v >> COUNT_BITS) > now_minute)
            .map(|v| v & COUNT_MASK)
            .sum()
    }
}

/// Per-request rate-limit refusals, by limit name.
const RATE_LIMITS: &[&str] = &[
    "login_per_ip",
    "login_per_user",
    "mfa_per_user",
    "sts_per_ip",
    "sso_start_per_ip",
    "user_code_per_ip",
    "user_code_per_session",
];

/// Every series rolegate exports.
pub struct Metrics {
    /// `false`: every recording call returns at once (`[metrics] enabled = false`).
    on: bool,
    registry: Registry,
    sts_requests: IntCounterVec,
    sts_duration: HistogramVec,
    sts_counters: Box<[OnceLock<IntCounter>]>,
    sts_histograms: Box<[OnceLock<Histogram>]>,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    store_duration: Vec<Histogram>,
    store_errors: Vec<IntCounter>,
    rate_limited: Vec<IntCounter>,
    jwks_fetches: IntCounter,
    jwks_failures: IntCounter,
    audit_written: IntCounter,
    audit_dropped: IntCounter,
    audit_paced: IntCounter,
    active_sessions: IntGauge,
    sessions: ActiveSessions,
    sessions_minted: IntCounter,
    scrape: parking_lot::Mutex<()>,
}

/// Counters kept elsewhere, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// JWKS fetches attempted since start.
    pub jwks_fetches: u64,
    /// JWKS fetches that failed since start.
    pub jwks_failures: u64,
    /// Audit events written since start.
    pub audit_written: u64,
    /// Audit events dropped since start.
    pub audit_dropped: u64,
    /// Requests that waited for the audit store since start.
    pub audit_paced: u64,
    /// Now, Unix seconds.
    pub now: i64,
}

/// The counters `name` by `labels`.
fn counters(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
    Ok(IntCounterVec::new(Opts::new(name, help), labels)?)
}

/// The latency histograms `name` by `labels`, in [`LATENCY_BUCKETS`].
fn latencies(name: &str, help: &str, labels: &[&str]) -> Result<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    Ok(HistogramVec::new(opts, labels)?)
}

/// The series of `vec` for each of `values` of its one label, made ahead.
fn each<'a, B: MetricVecBuilder>(
    vec: &MetricVec<B>,
    values: impl Iterator<Item = &'a str>,
) -> Result<Vec<B::M>> {
    Ok(values
        .map(|v| vec.get_metric_with_label_values(&[v]))
        .collect::<std::result::Result<Vec<_>, _>>()?)
}

impl Metrics {
    /// Registers every series.
    pub fn new() -> Result<Metrics> {
        Self::with_recording(true)
    }

    /// Registers every series; with `on == false` nothing is ever recorded.
    pub fn with_recording(on: bool) -> Result<Metrics> {
        let registry = Registry::new_custom(Some("rolegate".into()), None)?;
        let sts_requests = counters(
            "sts_requests_total",
            "STS and IAM Query API requests by action and outcome (OK or the AWS error code)",
            &["action", "code"],
        )?;
        let sts_duration = latencies(
            "sts_request_duration_seconds",
            "STS and IAM Query API latency by action, from the body read to the response",
            &["action"],
        )?;
        let http_requests = counters(
            "http_requests_total",
            "Requests to routes other than the STS, by route template and HTTP status",
            &["route", "status"],
        )?;
        let http_duration = latencies(
            "http_request_duration_seconds",
            "Latency of routes other than the STS, by route template",
            &["route"],
        )?;
        let store_duration_vec = latencies(
            "store_operation_duration_seconds",
            "Store latency by operation (the trait method), whatever the result",
            &["op"],
        )?;
        let store_errors_vec = counters(
            "store_errors_total",
            "Store operations that failed, by operation",
            &["op"],
        )?;
        let rate_limited_vec = counters(
            "rate_limited_total",
            "Requests refused by a rate limit, by limit",
            &["limit"],
        )?;
        let jwks_fetches = IntCounter::new(
            "jwks_fetches_total",
            "JWKS (and discovery) fetches attempted from OpenID providers",
        )?;
        let jwks_failures = IntCounter::new(
            "jwks_fetch_failures_total",
            "JWKS fetches that failed (unreachable, bad status, not JSON, unusable keys)",
        )?;
        let audit_written = IntCounter::new("audit_events_written_total", "Audit events stored")?;
        let audit_dropped = IntCounter::new(
            "audit_events_dropped_total",
            "Audit events dropped: the writer's queue was full, or the store refused writes for too long",
        )?;
        let audit_paced = IntCounter::new(
            "audit_paced_requests_total",
            "Requests that waited because the audit store was behind (at most 2 s each)",
        )?;
        let active_sessions = IntGauge::new(
            "active_sessions",
            "Approximate sessions minted by this process whose expiry is ahead (one-minute buckets; other replicas, earlier runs and revocations not counted)",
        )?;
        let sessions_minted = IntCounter::new(
            "sessions_minted_total",
            "Temporary credentials (sealed sessions) minted by this process",
        )?;
        registry.register(Box::new(sts_requests.clone()))?;
        registry.register(Box::new(sts_duration.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(store_duration_vec.clone()))?;
        registry.register(Box::new(store_errors_vec.clone()))?;
        registry.register(Box::new(rate_limited_vec.clone()))?;
        registry.register(Box::new(jwks_fetches.clone()))?;
        registry.register(Box::new(jwks_failures.clone()))?;
        registry.register(Box::new(audit_written.clone()))?;
        registry.register(Box::new(audit_dropped.clone()))?;
        registry.register(Box::new(audit_paced.clone()))?;
        registry.register(Box::new(active_sessions.clone()))?;
        registry.register(Box::new(sessions_minted.clone()))?;
        let ops = || StoreOp::ALL.iter().map(|op| op.name());
        let store_duration = each(&store_duration_vec, ops())?;
        let store_errors = each(&store_errors_vec, ops())?;
        let rate_limited = each(&rate_limited_vec, RATE_LIMITS.iter().copied())?;
        Ok(Metrics {
            on,
            registry,
            sts_requests,
            sts_duration,
            sts_counters: (0..STS_ACTIONS.len() * STS_CODES.len())
                .map(|_| OnceLock::new())
                .collect(),
            sts_histograms: (0..STS_ACTIONS.len()).map(|_| OnceLock::new()).collect(),
            http_requests,
            http_duration,
            store_duration,
            store_errors,
            rate_limited,
            jwks_fetches,
            jwks_failures,
            audit_written,
            audit_dropped,
            audit_paced,
            active_sessions,
            sessions: ActiveSessions::new(),
            sessions_minted,
            scrape: parking_lot::Mutex::new(()),
        })
    }

    /// One STS (or IAM Query API) request: its `Action` parameter as sent, `None` for success or
    /// the AWS error code, and how long it took.
    pub fn sts_request(&self, action: &str, code: Option<&str>, elapsed: Duration) {
        if !self.on {
            return;
        }
        let a = action_index(action);
        let code = code.unwrap_or("OK");
        match code_index(code) {
            Some(c) => {
                let slot = &self.sts_counters[a * STS_CODES.len() + c];
                match slot.get() {
                    Some(counter) => counter.inc(),
                    None => {
                        let counter = slot.get_or_init(|| {
                            self.sts_requests
                                .with_label_values(&[STS_ACTIONS[a], STS_CODES[c]])
                        });
                        counter.inc();
                    }
                }
            }
            None => self
                .sts_requests
                .with_label_values(&[STS_ACTIONS[a], code])
                .inc(),
        }
        let h = self.sts_histograms[a]
            .get_or_init(|| self.sts_duration.with_label_values(&[STS_ACTIONS[a]]));
        h.observe(elapsed.as_secs_f64());
    }

    /// One request to another route (`route` is the route template, e.g. `/admin/users/{name}`).
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        if !self.on {
            return;
        }
        let digits = itoa_status(status);
        let status = std::str::from_utf8(&digits).unwrap_or("000");
        self.http_requests.with_label_values(&[route, status]).inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// One store operation.
    pub fn store_op(&self, op: StoreOp, ok: bool, elapsed: Duration) {
        if !self.on {
            return;
        }
        let i = op.index();
        if let Some(h) = self.store_duration.get(i) {
            h.observe(elapsed.as_secs_f64());
        }
        if !ok {
            if let Some(c) = self.store_errors.get(i) {
                c.inc();
            }
        }
    }

    /// How many store operations `op` were timed so far (the count of `rolegate_store_operation_duration_seconds`).
    pub fn store_op_count(&self, op: StoreOp) -> u64 {
        self.store_duration
            .get(op.index())
            .map_or(0, |h| h.get_sample_count())
    }

    /// A request refused by the rate limit named `limit` (one of `login_per_ip`, `login_per_user`,
    /// `mfa_per_user`, `sts_per_ip`).
    pub fn rate_limited(&self, limit: &str) {
        if !self.on {
            return;
        }
        if let Some(i) = RATE_LIMITS.iter().position(|l| *l == limit) {
            self.rate_limited[i].inc();
        }
    }

    /// Credentials were minted at `now` (Unix seconds), valid until `expires_at`.
    pub fn session_minted(&self, now: i64, expires_at: i64) {
        if !self.on {
            return;
        }
        self.sessions_minted.inc();
        self.sessions.minted(now, expires_at);
    }

    /// The Prometheus text exposition of every series, with the counters kept elsewhere brought up
    /// to date from `snap`.
    pub fn render(&self, snap: Snapshot) -> Result<String> {
        let _one_scrape_at_a_time = self.scrape.lock();
        catch_up(&self.jwks_fetches, snap.jwks_fetches);
        catch_up(&self.jwks_failures, snap.jwks_failures);
        catch_up(&self.audit_written, snap.audit_written);
        catch_up(&self.audit_dropped, snap.audit_dropped);
        catch_up(&self.audit_paced, snap.audit_paced);
        self.active_sessions
            .set(i64::try_from(self.sessions.active(snap.now)).unwrap_or(i64::MAX));
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| MetricsError::Encoding(e.to_string()))?;
        String::from_utf8(out).map_err(|e| MetricsError::Encoding(e.to_string()))
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Raises a counter mirrored from an external monotonic count to that count.
fn catch_up(counter: &IntCounter, total: u64) {
    let have = counter.get();
    if total > have {
        counter.inc_by(total - have);
    }
}

/// Three ASCII digits of an HTTP status (100..=999), without allocating.
fn itoa_status(status: u16) -> [u8; 3] {
    let s = status.clamp(100, 999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn sts_requests_are_counted_by_action_and_code() {
        let m = Metrics::new().unwrap();
        let d = Duration::from_micros(800);
        m.sts_request("AssumeRoleWithWebIdentity", None, d);
        m.sts_request("AssumeRoleWithWebIdentity", None, d);
        m.sts_request("AssumeRoleWithWebIdentity", Some("InvalidIdentityToken"), d);
        m.sts_request("NoSuchAction", Some("InvalidAction"), d);
        m.sts_request("GetCallerIdentity", Some("SomeNewCode"), d);
        let text = m.render(Snapshot::default()).unwrap();
        assert_eq!(
            line(
                &text,
                "rolegate_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",code=\"OK\"}"
            ),
            Some("rolegate_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",code=\"OK\"} 2")
        );
        assert!(text.contains(
            "rolegate_sts_requests_total{action=\"AssumeRoleWithWebIdentity\",code=\"InvalidIdentityToken\"} 1"
        ));
        // An unknown action never becomes a label of its own: the label set stays bounded.
        assert!(
            text.contains("rolegate_sts_requests_total{action=\"Other\",code=\"InvalidAction\"} 1")
        );
        assert!(!text.contains("NoSuchAction"));
        assert!(text.contains(
            "rolegate_sts_requests_total{action=\"GetCallerIdentity\",code=\"SomeNewCode\"} 1"
        ));
        assert!(text.contains(
            "rolegate_sts_request_duration_seconds_bucket{action=\"AssumeRoleWithWebIdentity\",le=\"0.001\"} 3"
        ));
        assert!(text.contains(
            "rolegate_sts_request_duration_seconds_bucket{action=\"AssumeRoleWithWebIdentity\",le=\"0.0005\"} 0"
        ));
        assert!(text.contains(
            "rolegate_sts_request_duration_seconds_count{action=\"AssumeRoleWithWebIdentity\"} 3"
        ));
    }

    #[test]
    fn http_and_store_series_carry_their_labels() {
        let m = Metrics::new().unwrap();
        m.http_request("/admin/users/{name}", 404, Duration::from_millis(3));
        m.store_op(StoreOp::FirstUse, true, Duration::from_micros(50));
        m.store_op(StoreOp::DirWrite, false, Duration::from_millis(2));
        m.rate_limited("login_per_ip");
        m.rate_limited("not_a_limit");
        let text = m.render(Snapshot::default()).unwrap();
        assert!(text.contains(
            "rolegate_http_requests_total{route=\"/admin/users/{name}\",status=\"404\"} 1"
        ));
        assert!(
            text.contains("rolegate_store_operation_duration_seconds_count{op=\"first_use\"} 1")
        );
        assert!(text.contains("rolegate_store_errors_total{op=\"dir_write\"} 1"));
        assert!(text.contains("rolegate_store_errors_total{op=\"first_use\"} 0"));
        assert!(text.contains("rolegate_rate_limited_total{limit=\"login_per_ip\"} 1"));
        assert!(text.contains("rolegate_rate_limited_total{limit=\"sts_per_ip\"} 0"));
    }

    #[test]
    fn external_counters_catch_up_and_never_go_back() {
        let m = Metrics::new().unwrap();
        let snap = Snapshot {
            jwks_fetches: 3,
            jwks_failures: 1,
            audit_written: 10,
            audit_dropped: 0,
            audit_paced: 4,
            now: 0,
        };
        let text = m.render(snap).unwrap();
        assert!(text.contains("rolegate_jwks_fetches_total 3"));
        assert!(text.contains("rolegate_jwks_fetch_failures_total 1"));
        assert!(text.contains("rolegate_audit_events_written_total 10"));
        assert!(text.contains("rolegate_audit_paced_requests_total 4"));
        let text = m
            .render(Snapshot {
                jwks_fetches: 2,
                ..snap
            })
            .unwrap();
        assert!(text.contains("rolegate_jwks_fetches_total 3"));
        let text = m
            .render(Snapshot {
                jwks_fetches: 7,
                ..snap
            })
            .unwrap();
        assert!(text.contains("rolegate_jwks_fetches_total 7"));
    }

    #[test]
    fn active_sessions_count_until_their_expiry_minute_is_over() {
        let s = ActiveSessions::new();
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        s.minted(t0, t0 + 900);
        s.minted(t0, t0 + 900);
        s.minted(t0 + 10, t0 + 3600);
        s.minted(t0, t0 + 36 * 3600);
        s.minted(t0, t0 - 1); // already expired: not counted
        assert_eq!(s.active(t0), 4);
        assert_eq!(s.active(t0 + 899), 4);
        assert_eq!(s.active(t0 + 900), 2, "the 15-minute sessions are over");
        assert_eq!(s.active(t0 + 3600), 1);
        assert_eq!(s.active(t0 + 36 * 3600), 0);
        // A slot reused a whole ring later starts from zero.
        let later = t0 + 900 + (SESSION_BUCKETS as i64) * 60;
        s.minted(later - 600, later);
        assert_eq!(s.active(later - 1), 1);
    }

    #[test]
    fn active_sessions_are_exact_under_concurrent_minting() {
        let s = std::sync::Arc::new(ActiveSessions::new());
        let t0 = 1_800_000_000;
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for n in 0..5_000 {
                        s.minted(t0, t0 + 900 + (n % 7) * 60 + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.active(t0), 20_000);
    }

    #[test]
    fn nothing_is_recorded_when_off() {
        let m = Metrics::with_recording(false).unwrap();
        m.sts_request("GetCallerIdentity", None, Duration::from_millis(1));
        m.http_request("/healthz", 200, Duration::from_millis(1));
        m.store_op(StoreOp::DirGet, false, Duration::from_millis(1));
        m.session_minted(0, 900);
        let text = m.render(Snapshot::default()).unwrap();
        assert!(!text.contains("rolegate_sts_requests_total{"));
        assert!(!text.contains("rolegate_http_requests_total{"));
        assert!(text.contains("rolegate_store_errors_total{op=\"dir_get\"} 0"));
        assert!(text.contains("rolegate_sessions_minted_total 0"));
    }

    #[test]
    fn status_digits() {
        assert_eq!(&itoa_status(200), b"200");
        assert_eq!(&itoa_status(429), b"429");
        assert_eq!(&itoa_status(5), b"100");
    }
}
