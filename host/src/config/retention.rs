//! `[retention]`: how long the queue keeps its logs, and how often `ferry
//! run` prunes them (see `queue/retention.rs`).
//!
//! ```toml
//! [retention]
//! message_log = "30d"     # duplicate detection's window
//! message_log_max = 0     # 0: no limit by count
//! history = "30d"
//! history_max = 0
//! exceptions = "30d"
//! exceptions_max = 100000
//! audit = "365d"
//! audit_max = 0           # 0: no limit by count
//! every = "10m"           # a pruning pass this often
//! ```
//!
//! An age is a duration (`12h`, `30d`) or `"forever"`.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::queue::retention::Retention;

/// How often a pruning pass starts, unless `every` says.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(600);

/// `[retention]` as the host uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// What is kept.
    pub policy: Retention,
    /// How often a pass starts.
    pub every: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            policy: Retention::default(),
            every: DEFAULT_EVERY,
        }
    }
}

/// `[retention]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    message_log: Option<Spanned<String>>,
    message_log_max: Option<u64>,
    history: Option<Spanned<String>>,
    history_max: Option<u64>,
    exceptions: Option<Spanned<String>>,
    exceptions_max: Option<u64>,
    audit: Option<Spanned<String>>,
    audit_max: Option<u64>,
    every: Option<Spanned<String>>,
}

/// Reads an age: a duration, or `forever` (`None`).
fn age(
    key: &str,
    v: Option<Spanned<String>>,
    default: Option<u64>,
    problem: &mut dyn FnMut(Range<usize>, &str, String),
) -> Option<u64> {
    let Some(v) = v else { return default };
    let text = v.get_ref().trim();
    if text.eq_ignore_ascii_case("forever") {
        return None;
    }
    match super::parse_duration(text) {
        Ok(d) if d.is_zero() => {
            problem(
                v.span(),
                &format!("retention.{key}"),
                "must be longer than 0; write \"forever\" to keep everything".into(),
            );
            default
        }
        Ok(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(e) => {
            problem(
                v.span(),
                &format!("retention.{key}"),
                format!("{e}, or \"forever\""),
            );
            default
        }
    }
}

/// A count limit: 0 is none.
fn count(v: Option<u64>, default: Option<u64>) -> Option<u64> {
    match v {
        None => default,
        Some(0) => None,
        Some(n) => Some(n),
    }
}

/// Reads `[retention]`; each problem goes to `problem(span, key, message)`.
pub(crate) fn parse(
    raw: Option<Spanned<RawRetention>>,
    problem: &mut dyn FnMut(Range<usize>, &str, String),
) -> RetentionConfig {
    let mut out = RetentionConfig::default();
    let Some(raw) = raw else {
        return out;
    };
    let raw = raw.into_inner();
    let d = Retention::default();
    out.policy = Retention {
        message_log: age("message_log", raw.message_log, d.message_log, problem),
        message_log_max: count(raw.message_log_max, d.message_log_max),
        history: age("history", raw.history, d.history, problem),
        history_max: count(raw.history_max, d.history_max),
        exceptions: age("exceptions", raw.exceptions, d.exceptions, problem),
        exceptions_max: count(raw.exceptions_max, d.exceptions_max),
        audit: age("audit", raw.audit, d.audit, problem),
        audit_max: count(raw.audit_max, d.audit_max),
    };
    if let Some(every) = raw.every {
        match super::parse_duration(every.get_ref()) {
            Ok(e) if e >= Duration::from_secs(1) => out.every = e,
            Ok(_) => problem(
                every.span(),
                "retention.every",
                "must be at least 1s".into(),
            ),
            Err(e) => problem(every.span(), "retention.every", e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (RetentionConfig, Vec<String>) {
        #[derive(Deserialize)]
        struct File {
            retention: Option<Spanned<RawRetention>>,
        }
        let f: File = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let c = parse(f.retention, &mut |_, k, m| {
            problems.push(format!("{k}: {m}"))
        });
        (c, problems)
    }

    #[test]
    fn defaults_ages_counts_and_mistakes() {
        assert_eq!(read("").0, RetentionConfig::default());
        let (c, p) = read(
            "[retention]\nmessage_log = \"7d\"\nhistory = \"forever\"\nexceptions_max = 0\n\
             audit_max = 50\nmessage_log_max = 1000000\nhistory_max = 0\nevery = \"30s\"",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.policy.message_log, Some(7 * 86_400_000));
        assert_eq!(c.policy.history, None);
        assert_eq!(c.policy.exceptions, Retention::default().exceptions);
        assert_eq!(c.policy.exceptions_max, None);
        assert_eq!(c.policy.audit_max, Some(50));
        assert_eq!(c.policy.message_log_max, Some(1_000_000));
        assert_eq!(c.policy.history_max, None);
        assert_eq!(c.every, Duration::from_secs(30));
        let (_, p) = read("[retention]\naudit = \"soon\"\nhistory = \"0s\"\nevery = \"1ms\"");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("retention.history"), "{p:?}");
    }
}
