//! Operational settings: logging, metrics, request body limits, rate limits, shutdown, TLS and the
//! audit log's file sink. Parsed from `[log]`, `[metrics]`, `[limits]`, `[rate_limits]`,
//! `[shutdown]`, `[tls]` and the sink keys of `[audit]`, validated with file and line like the rest.

use super::Validator;
use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<Spanned<String>>,
    pub level: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    pub otlp_endpoint: Option<Spanned<String>>,
    pub service_name: Option<Spanned<String>>,
    pub sample_ratio: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub enabled: Option<bool>,
    pub listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub sts_body_bytes: Option<Spanned<i64>>,
    pub saml_body_bytes: Option<Spanned<i64>>,
    pub admin_body_bytes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub per_minute: i64,
    pub burst: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    pub login_per_ip: Option<Spanned<RawRate>>,
    pub login_per_user: Option<Spanned<RawRate>>,
    pub mfa_per_user: Option<Spanned<RawRate>>,
    pub sts_per_principal: Option<Spanned<RawRate>>,
    pub sts_per_ip: Option<Spanned<RawRate>>,
    pub sso_start_per_ip: Option<Spanned<RawRate>>,
    pub user_code_per_ip: Option<Spanned<RawRate>>,
    pub max_tracked_keys: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    pub drain_seconds: Option<Spanned<i64>>,
    pub ready_delay_seconds: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Spanned<String>,
    pub key_file: Spanned<String>,
    pub reload_seconds: Option<Spanned<i64>>,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the request id of the request being handled.
    Json,
}

/// `[tracing]`: OpenTelemetry trace export over OTLP/HTTP (JSON encoding).
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans go to `/v1/traces` under it.
    pub otlp_endpoint: url::Url,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of traces started here that are exported (0.0–1.0); a request whose `traceparent`
    /// says sampled is always exported, one that says not sampled never is.
    pub sample_ratio: f64,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// A tracing filter directive (`info`, `rolegate=debug,info`); `ROLEGATE_LOG` overrides it.
    pub level: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: None,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether `/metrics` is served.
    pub enabled: bool,
    /// A separate listener for `/metrics` (then it is not served on the main one).
    pub listen: Option<SocketAddr>,
}

/// `[limits]`: largest request bodies, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// STS and IAM Query API requests other than `AssumeRoleWithSAML`.
    pub sts: usize,
    /// `AssumeRoleWithSAML`, and every route without its own limit (SAML responses posted by
    /// browsers are the largest legitimate bodies).
    pub saml: usize,
    /// The admin and directory APIs, password sign-in and bootstrap (JSON).
    pub admin: usize,
}

/// A token bucket: `per_minute` requests a minute on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// `[rate_limits]`: `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Password sign-in, the start of an OIDC portal sign-in and root bootstrap, per client address
    /// (IPv6 per /64).
    pub login_per_ip: Option<Rate>,
    /// Password sign-in per user name.
    pub login_per_user: Option<Rate>,
    /// STS calls carrying an MFA code (`TokenCode`), per MFA device serial.
    pub mfa_per_user: Option<Rate>,
    /// STS and IAM calls per caller, once it is proven: the web identity (issuer and subject) or
    /// the signing principal. (A SAML assertion is single-use: throttling it after verification
    /// would burn it, so AssumeRoleWithSAML is limited per address only.)
    pub sts_per_principal: Option<Rate>,
    /// Every STS and IAM Query API call, per client address (IPv6 per /64).
    pub sts_per_ip: Option<Rate>,
    /// SSO-OIDC `RegisterClient` and `StartDeviceAuthorization` (each stores records before anyone
    /// has signed in), per client address (IPv6 per /64).
    pub sso_start_per_ip: Option<Rate>,
    /// User codes entered on the portal's device page, per client address and, separately, per
    /// portal session (user codes are short enough to guess otherwise).
    pub user_code_per_ip: Option<Rate>,
    /// Most keys each limit tracks at once; beyond that, requests of new keys are refused.
    pub max_tracked_keys: usize,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files are checked for changes (they are also reloaded on SIGHUP).
    pub reload_every: Duration,
}

/// Where audit events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSinks {
    /// Into the store (queryable with `rolegate audit` and `/admin/audit`).
    pub store: bool,
    /// Appended to this JSON-lines file, reopened on SIGHUP and when its size passes
    /// `file_max_bytes` (renamed to `<file>.1` first).
    pub file: Option<PathBuf>,
    /// Size at which the file is rotated; 0: never by size.
    pub file_max_bytes: u64,
}

/// Every operational setting.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsSettings {
    /// Logging.
    pub log: LogSettings,
    /// OpenTelemetry trace export (`None`: off).
    pub tracing: Option<TracingSettings>,
    /// Prometheus metrics.
    pub metrics: MetricsSettings,
    /// Request body limits.
    pub limits: BodyLimits,
    /// Rate limits.
    pub rate_limits: RateLimitSettings,
    /// Longest wait for in-flight requests on SIGTERM/SIGINT.
    pub drain: Duration,
    /// After SIGTERM/SIGINT, how long rolegate keeps serving with `/readyz` answering 503 before it
    /// stops accepting connections (time for a load balancer to take it out of rotation).
    pub ready_delay: Duration,
    /// Native TLS termination.
    pub tls: Option<TlsSettings>,
    /// Audit sinks.
    pub audit: AuditSinks,
}

/// The defaults of `[limits]`.
pub const DEFAULT_BODY_LIMITS: BodyLimits = BodyLimits {
    sts: 64 * 1024,
    saml: 256 * 1024,
    admin: 64 * 1024,
};

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            log: LogSettings::default(),
            tracing: None,
            metrics: MetricsSettings {
                enabled: true,
                listen: None,
            },
            limits: DEFAULT_BODY_LIMITS,
            rate_limits: RateLimitSettings {
                login_per_ip: Some(Rate {
                    per_minute: 60,
                    burst: 20,
                }),
                login_per_user: Some(Rate {
                    per_minute: 10,
                    burst: 10,
                }),
                mfa_per_user: Some(Rate {
                    per_minute: 20,
                    burst: 10,
                }),
                sts_per_principal: None,
                sts_per_ip: None,
                sso_start_per_ip: Some(Rate {
                    per_minute: 20,
                    burst: 20,
                }),
                user_code_per_ip: Some(Rate {
                    per_minute: 20,
                    burst: 10,
                }),
                max_tracked_keys: 100_000,
            },
            drain: Duration::from_secs(20),
            ready_delay: Duration::ZERO,
            tls: None,
            audit: AuditSinks {
                store: true,
                file: None,
                file_max_bytes: 0,
            },
        }
    }
}

/// What `[audit]` says about sinks (the rest of `[audit]` is read elsewhere).
pub struct RawAuditSinks<'a> {
    pub sinks: Option<&'a Spanned<Vec<String>>>,
    pub file: Option<&'a Spanned<String>>,
    pub file_max_bytes: Option<&'a Spanned<i64>>,
}

pub struct RawOps<'a> {
    pub log: &'a RawLog,
    pub tracing: &'a RawTracing,
    pub metrics: &'a RawMetrics,
    pub limits: &'a RawLimits,
    pub rate_limits: &'a RawRateLimits,
    pub shutdown: &'a RawShutdown,
    pub tls: Option<&'a Spanned<RawTls>>,
    pub audit: RawAuditSinks<'a>,
}

impl Validator<'_> {
    fn tracing(&mut self, raw: &RawTracing) -> Option<TracingSettings> {
        let Some(e) = &raw.otlp_endpoint else {
            for (set, at) in [
                (
                    raw.service_name.as_ref().map(|s| s.span().start),
                    "service_name",
                ),
                (
                    raw.sample_ratio.as_ref().map(|s| s.span().start),
                    "sample_ratio",
                ),
            ] {
                if let Some(span) = set {
                    self.err(
                        Some(span),
                        format!("tracing.{at}: set without tracing.otlp_endpoint"),
                    );
                }
            }
            return None;
        };
        let at = Some(e.span().start);
        let endpoint = match url::Url::parse(e.get_ref()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                self.err(
                    at,
                    format!(
                        "tracing.otlp_endpoint: '{}' is not an http(s) URL such as http://collector:4318",
                        e.get_ref()
                    ),
                );
                None
            }
        };
        let service_name = match &raw.service_name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.err(Some(n.span().start), "tracing.service_name: empty");
                String::new()
            }
            Some(n) => n.get_ref().clone(),
            None => "rolegate".to_string(),
        };
        let sample_ratio = match &raw.sample_ratio {
            Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                self.err(
                    Some(r.span().start),
                    format!(
                        "tracing.sample_ratio: {} is not between 0.0 and 1.0",
                        r.get_ref()
                    ),
                );
                1.0
            }
            Some(r) => *r.get_ref(),
            None => 1.0,
        };
        Some(TracingSettings {
            otlp_endpoint: endpoint?,
            service_name,
            sample_ratio,
        })
    }

    pub(super) fn ops(&mut self, raw: RawOps<'_>, listen: Option<SocketAddr>) -> OpsSettings {
        let mut out = OpsSettings::default();

        if let Some(f) = &raw.log.format {
            out.log.format = match f.get_ref().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    self.err(
                        Some(f.span().start),
                        format!("log.format: '{other}' (expected text or json)"),
                    );
                    LogFormat::Text
                }
            };
        }
        if let Some(l) = &raw.log.level {
            if tracing_subscriber::EnvFilter::try_new(l.get_ref()).is_err()
                || l.get_ref().is_empty()
            {
                self.err(
                    Some(l.span().start),
                    format!(
                        "log.level: '{}' is not a filter such as info or rolegate=debug,warn",
                        l.get_ref()
                    ),
                );
            }
            out.log.level = Some(l.get_ref().clone());
        }

        out.tracing = self.tracing(raw.tracing);

        if let Some(e) = raw.metrics.enabled {
            out.metrics.enabled = e;
        }
        if let Some(l) = &raw.metrics.listen {
            match l.get_ref().parse::<SocketAddr>() {
                Ok(a) if Some(a) == listen => self.err(
                    Some(l.span().start),
                    "metrics.listen: must differ from server.listen (leave it out to serve /metrics there)",
                ),
                Ok(a) => out.metrics.listen = Some(a),
                Err(_) => self.err(
                    Some(l.span().start),
                    format!("metrics.listen: '{}' is not an address:port", l.get_ref()),
                ),
            }
        }

        let limits = &raw.limits;
        for (slot, value, key, range) in [
            // The STS must take its largest legitimate request: a 20,000-character web identity
            // token with a 2,048-character policy, ten policy ARNs and fifty tags, form-encoded.
            (
                &mut out.limits.sts,
                &limits.sts_body_bytes,
                "limits.sts_body_bytes",
                32 * 1024..=1024 * 1024,
            ),
            // A SAML assertion may be 100,000 characters of base64, more once form-encoded.
            (
                &mut out.limits.saml,
                &limits.saml_body_bytes,
                "limits.saml_body_bytes",
                160 * 1024..=4 * 1024 * 1024,
            ),
            (
                &mut out.limits.admin,
                &limits.admin_body_bytes,
                "limits.admin_body_bytes",
                4 * 1024..=4 * 1024 * 1024,
            ),
        ] {
            let bytes = self.between(value.as_ref(), key, range, " bytes");
            *slot = bytes.map_or(*slot, |b| b as usize);
        }

        let (rl, rates) = (raw.rate_limits, &mut out.rate_limits);
        for (slot, value, key) in [
            (&mut rates.login_per_ip, &rl.login_per_ip, "login_per_ip"),
            (
                &mut rates.login_per_user,
                &rl.login_per_user,
                "login_per_user",
            ),
            (&mut rates.mfa_per_user, &rl.mfa_per_user, "mfa_per_user"),
            (
                &mut rates.sts_per_principal,
                &rl.sts_per_principal,
                "sts_per_principal",
            ),
            (&mut rates.sts_per_ip, &rl.sts_per_ip, "sts_per_ip"),
            (
                &mut rates.sso_start_per_ip,
                &rl.sso_start_per_ip,
                "sso_start_per_ip",
            ),
            (
                &mut rates.user_code_per_ip,
                &rl.user_code_per_ip,
                "user_code_per_ip",
            ),
        ] {
            *slot = self.rate(value.as_ref(), &format!("rate_limits.{key}"), *slot);
        }
        let keys = rl.max_tracked_keys.as_ref();
        let keys = self.between(keys, "rate_limits.max_tracked_keys", 1_000..=10_000_000, "");
        rates.max_tracked_keys = keys.map_or(rates.max_tracked_keys, |m| m as usize);

        let seconds = |s: i64| Duration::from_secs(s as u64);
        let drain = raw.shutdown.drain_seconds.as_ref();
        out.drain = self
            .between(drain, "shutdown.drain_seconds", 0..=600, "")
            .map_or(out.drain, seconds);
        let ready_delay = raw.shutdown.ready_delay_seconds.as_ref();
        out.ready_delay = self
            .between(ready_delay, "shutdown.ready_delay_seconds", 0..=300, "")
            .map_or(out.ready_delay, seconds);

        if let Some(t) = raw.tls {
            let r = t.get_ref();
            let cert_file = self.resolve(r.cert_file.get_ref());
            let key_file = self.resolve(r.key_file.get_ref());
            for (key, span, p) in [
                ("cert_file", r.cert_file.span().start, &cert_file),
                ("key_file", r.key_file.span().start, &key_file),
            ] {
                if let Err(e) = std::fs::metadata(p) {
                    self.err(
                        Some(span),
                        format!("tls.{key}: cannot read {}: {e}", p.display()),
                    );
                }
            }
            let reload = r.reload_seconds.as_ref();
            let reload_every = self
                .between(reload, "tls.reload_seconds", 1..=86_400, "")
                .map_or(Duration::from_secs(10), seconds);
            out.tls = Some(TlsSettings {
                cert_file,
                key_file,
                reload_every,
            });
        }

        if let Some(s) = raw.audit.sinks {
            out.audit.store = false;
            let mut file = false;
            for sink in s.get_ref() {
                match sink.as_str() {
                    "store" => out.audit.store = true,
                    "file" => file = true,
                    other => self.err(
                        Some(s.span().start),
                        format!("audit.sinks: unknown sink '{other}' (expected store and/or file)"),
                    ),
                }
            }
            if s.get_ref().is_empty() {
                self.err(
                    Some(s.span().start),
                    "audit.sinks: at least one sink is required (an audit log is not optional)",
                );
            }
            match (file, raw.audit.file) {
                (true, Some(f)) => out.audit.file = Some(self.resolve(f.get_ref())),
                (true, None) => self.err(
                    Some(s.span().start),
                    "audit.sinks: 'file' needs audit.file (the JSON-lines file to append to)",
                ),
                (false, Some(f)) => self.err(
                    Some(f.span().start),
                    "audit.file: set, but audit.sinks does not name 'file'",
                ),
                (false, None) => {}
            }
        } else if let Some(f) = raw.audit.file {
            self.err(
                Some(f.span().start),
                "audit.file: set, but audit.sinks does not name 'file' (e.g. sinks = [\"store\", \"file\"])",
            );
        }
        if let Some(m) = raw.audit.file_max_bytes {
            if *m.get_ref() == 0 || (1024 * 1024..=1 << 40).contains(m.get_ref()) {
                out.audit.file_max_bytes = *m.get_ref() as u64;
            } else {
                self.err(
                    Some(m.span().start),
                    "audit.file_max_bytes: 0 (rotate only on SIGHUP) or at least 1048576",
                );
            }
        }
        out
    }

    /// The value of `key` when it is set and within `range`; when it is set and outside, a problem
    /// at it (`must be between` the bounds, then `unit`) and `None`.
    fn between(
        &mut self,
        value: Option<&Spanned<i64>>,
        key: &str,
        range: RangeInclusive<i64>,
        unit: &str,
    ) -> Option<i64> {
        let v = value?;
        if range.contains(v.get_ref()) {
            return Some(*v.get_ref());
        }
        self.err(
            Some(v.span().start),
            format!(
                "{key}: must be between {} and {}{unit}",
                range.start(),
                range.end()
            ),
        );
        None
    }

    /// A `{ per_minute, burst }` rate named `key` in messages (e.g. `rate_limits.login_per_ip`); `None` is off
    /// (`per_minute = 0`) or, when not written, `dflt`.
    pub(super) fn rate(
        &mut self,
        raw: Option<&Spanned<RawRate>>,
        key: &str,
        dflt: Option<Rate>,
    ) -> Option<Rate> {
        let Some(r) = raw else { return dflt };
        let at = Some(r.span().start);
        let v = *r.get_ref();
        if v.per_minute == 0 {
            if v.burst.is_some_and(|b| b != 0) {
                self.err(
                    at,
                    format!("{key}: per_minute = 0 turns the limit off; drop burst"),
                );
            }
            return None;
        }
        if !(1..=1_000_000).contains(&v.per_minute) {
            self.err(
                at,
                format!("{key}.per_minute: must be between 0 (off) and 1000000"),
            );
            return dflt;
        }
        let burst = v.burst.unwrap_or(v.per_minute);
        if !(1..=1_000_000).contains(&burst) {
            self.err(at, format!("{key}.burst: must be between 1 and 1000000"));
            return dflt;
        }
        Some(Rate {
            per_minute: v.per_minute as u32,
            burst: burst as u32,
        })
    }
}
