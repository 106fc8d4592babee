//! Quotas on what a plugin hands the host ([`super::Quotas`]): the error a
//! host function raises to stop a call that reached one, and the per-plugin
//! log rate limiter.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

/// A call reached a quota: raised by a host function (which traps the
/// guest) or found after the call. The text names the quota, its value and
/// the port key that raises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded(pub String);

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuotaExceeded {}

impl QuotaExceeded {
    /// "`what` (quota `key` = `value` on port `port`; raise it there if
    /// that much is right)".
    pub fn new(what: impl fmt::Display, key: &str, value: impl fmt::Display, port: &str) -> Self {
        QuotaExceeded(format!(
            "{what} (quota `{key}` = {value} on port {port}; raise it on the port if that much \
             is right)"
        ))
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), with how
/// much was cut said at the end.
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

/// A token bucket: `rate` records a second, bursts up to `BURST_SECONDS`
/// worth; what it refuses is counted until it is reported, at most once
/// every [`REPORT_EVERY`].
#[derive(Debug)]
pub struct LogBucket {
    tokens: f64,
    last: Instant,
    dropped: u64,
    /// When dropped records were last reported.
    reported: Option<Instant>,
}

/// How often at most the count of dropped records is reported.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How many seconds of records a burst may hold.
pub const BURST_SECONDS: u32 = 2;

impl LogBucket {
    fn new(rate: u32) -> LogBucket {
        LogBucket {
            tokens: f64::from(rate) * f64::from(BURST_SECONDS),
            last: Instant::now(),
            dropped: 0,
            reported: None,
        }
    }

    fn refill(&mut self, rate: u32, now: Instant) {
        let cap = f64::from(rate) * f64::from(BURST_SECONDS);
        let secs = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + secs * f64::from(rate)).min(cap);
        self.last = now;
    }

    /// Take a token for one record: `Ok(dropped)` when it may be written
    /// (with how many records were dropped before it, to report first —
    /// 0 while the last report is less than [`REPORT_EVERY`] old; the count
    /// is reset when given), `Err(())` when it is dropped.
    pub fn admit(&mut self, rate: u32, now: Instant) -> Result<u64, ()> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(self.take_report(now))
        } else {
            self.dropped += 1;
            Err(())
        }
    }

    /// The dropped count to report now, if any and if it is time.
    fn take_report(&mut self, now: Instant) -> u64 {
        let due = self
            .reported
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_EVERY);
        if self.dropped == 0 || !due {
            return 0;
        }
        self.reported = Some(now);
        std::mem::take(&mut self.dropped)
    }

    /// Records dropped and not reported yet, now that the bucket has
    /// refilled enough to write the report (which takes a token); 0 when
    /// there are none or it has not.
    pub fn report_due(&mut self, rate: u32, now: Instant) -> u64 {
        if self.dropped == 0 {
            return 0;
        }
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            let n = self.take_report(now);
            if n > 0 {
                self.tokens -= 1.0;
            }
            n
        } else {
            0
        }
    }
}

type Buckets = Mutex<HashMap<(String, String), Arc<Mutex<LogBucket>>>>;

static BUCKETS: LazyLock<Buckets> = LazyLock::new(Buckets::default);

/// The log bucket of `plugin` on `port`, shared by all its sandboxes (every
/// worker, every version), full when first asked for.
pub fn log_bucket(port: &str, plugin: &str, rate: u32) -> Arc<Mutex<LogBucket>> {
    let mut map = BUCKETS.lock().unwrap_or_else(|e| e.into_inner());
    map.entry((port.to_string(), plugin.to_string()))
        .or_insert_with(|| Arc::new(Mutex::new(LogBucket::new(rate))))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_long_text_is_cut_on_a_character_boundary_and_says_so() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdef", 3), "abc… (3 bytes cut)");
        // "é" is two bytes: the cut falls before it, not inside it.
        assert_eq!(cut("aé", 2), "a… (2 bytes cut)");
    }

    #[test]
    fn the_bucket_admits_a_burst_then_the_rate_and_counts_what_it_drops() {
        let t0 = Instant::now();
        let mut b = LogBucket::new(2);
        b.last = t0;
        // A burst of 2 × BURST_SECONDS.
        for _ in 0..2 * BURST_SECONDS {
            assert_eq!(b.admit(2, t0), Ok(0));
        }
        assert_eq!(b.admit(2, t0), Err(()));
        assert_eq!(b.admit(2, t0), Err(()));
        assert_eq!(b.report_due(2, t0), 0, "nothing refilled yet");
        // One second later: two tokens. The report takes one, and the
        // next record gets the other.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.report_due(2, t1), 2);
        assert_eq!(b.admit(2, t1), Ok(0));
        assert_eq!(b.admit(2, t1), Err(()));
        // Reports come at most once a second: half a second later the drop
        // is not reported yet, though the record is written.
        let t2 = t1 + Duration::from_millis(500);
        assert_eq!(b.admit(2, t2), Ok(0));
        assert_eq!(b.report_due(2, t2), 0);
        assert_eq!(b.admit(2, t2), Err(()));
        // A record admitted after drops, a second after the last report,
        // reports them itself.
        let t3 = t1 + Duration::from_secs(2);
        assert_eq!(b.admit(2, t3), Ok(2));
    }

    #[test]
    fn a_quota_error_names_its_key_value_and_port() {
        let e = QuotaExceeded::new("sent more than 3 documents", "max_sent_documents", 3, "in");
        let text = e.to_string();
        assert!(
            text.contains("`max_sent_documents` = 3 on port in"),
            "{text}"
        );
    }
}
