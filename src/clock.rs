//! Time as rolegate sees it. Every expiry, skew and one-time-code check reads the time through [`Clock`],
//! so tests can fix it. Knows nothing else.

use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;
use std::sync::Arc;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// [`rfc3339`] in seconds of a Unix time (the epoch for one out of chrono's range).
pub fn rfc3339_secs(t: i64) -> String {
    rfc3339(&DateTime::from_timestamp(t, 0).unwrap_or_default(), false)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (or `…SS.mmmZ` with `millis`): what
/// `to_rfc3339_opts(SecondsFormat::Secs | Millis, true)` writes, without chrono's formatting
/// machinery, which shows in the profile of every STS call (audit time, expiration, condition keys).
pub fn rfc3339(t: &DateTime<Utc>, millis: bool) -> String {
    use chrono::{Datelike, SecondsFormat, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        let f = if millis {
            SecondsFormat::Millis
        } else {
            SecondsFormat::Secs
        };
        return t.to_rfc3339_opts(f, true);
    }
    fn digits(out: &mut String, n: u32, width: u32) {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(p) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(24);
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, t.month(), 2);
    out.push('-');
    digits(&mut out, t.day(), 2);
    out.push('T');
    digits(&mut out, t.hour(), 2);
    out.push(':');
    digits(&mut out, t.minute(), 2);
    out.push(':');
    // A leap second shows as second 59 with 1,000+ ms in chrono; keep chrono's text for it.
    let ms = t.timestamp_subsec_millis();
    if ms >= 1000 {
        let f = if millis {
            SecondsFormat::Millis
        } else {
            SecondsFormat::Secs
        };
        return t.to_rfc3339_opts(f, true);
    }
    digits(&mut out, t.second(), 2);
    if millis {
        out.push('.');
        digits(&mut out, ms, 3);
    }
    out.push('Z');
    out
}

/// A clock that stands still until moved; for tests.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<RwLock<DateTime<Utc>>>);

impl FixedClock {
    /// A clock reading `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(RwLock::new(at)))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.write();
        *t += by;
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.write() = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.read()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_writes_what_chrono_writes() {
        use chrono::{SecondsFormat, TimeZone};
        for (secs, nanos) in [
            (0i64, 0u32),
            (1, 999_999_999),
            (951_782_400, 5_000_000),
            (1_709_251_198, 123_456_789),
            (4_102_444_799, 0),
            (253_402_300_799, 999_000_000),
            (253_402_300_800, 0),
            (-1, 0),
        ] {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            assert_eq!(
                rfc3339(&t, false),
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            assert_eq!(
                rfc3339(&t, true),
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = FixedClock::new(start);
        assert_eq!(c.now(), start);
        c.advance(Duration::seconds(90));
        assert_eq!(c.now(), start + Duration::seconds(90));
        c.set(start);
        assert_eq!(c.now(), start);
    }
}
