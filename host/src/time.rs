//! Time, injected: the scheduler asks a [`Clock`] for "now", so tests drive
//! it with a [`ManualClock`] instantly and deterministically. Times are
//! milliseconds since the Unix epoch (UTC), written as RFC 3339.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the scheduler gets the current time.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that only moves when told to (tests). Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Set the time.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Move the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parse an RFC 3339 date-time with an offset (`2026-05-01T06:00:00Z`,
/// `2026-05-01T08:00:00.250+02:00`; `t`, `z` and a space instead of `T` are
/// accepted) into milliseconds since the Unix epoch. Fractions beyond
/// milliseconds are cut off.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "{text:?} is not a date-time like \"2026-05-01T06:00:00Z\" or \
             \"2026-05-01T08:00:00+02:00\" ({why})"
        )
    };
    let t = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = t.get(range).ok_or_else(|| bad("too short"))?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad("digits expected"));
        }
        Ok(part.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let expect = |i: usize, chars: &[u8], what: &str| -> Result<(), String> {
        match t.get(i) {
            Some(c) if chars.contains(c) => Ok(()),
            _ => Err(bad(what)),
        }
    };
    if t.len() == 10 {
        return Err(bad("a time and a UTC offset are needed, e.g. T00:00:00Z"));
    }
    let year = num(0..4)?;
    expect(4, b"-", "'-' after the year")?;
    let month = num(5..7)? as u32;
    expect(7, b"-", "'-' after the month")?;
    let day = num(8..10)? as u32;
    expect(10, b"Tt ", "'T' between date and time")?;
    let hour = num(11..13)?;
    expect(13, b":", "':' after the hour")?;
    let minute = num(14..16)?;
    expect(16, b":", "':' after the minutes")?;
    let second = num(17..19)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("no such time"));
    }
    let mut i = 19;
    let mut millis = 0i64;
    if t.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while t.get(i).is_some_and(u8::is_ascii_digit) {
            if i - from < 3 {
                millis = millis * 10 + i64::from(t[i] - b'0');
            }
            i += 1;
        }
        if i == from {
            return Err(bad("digits expected after '.'"));
        }
        for _ in (i - from)..3 {
            millis *= 10;
        }
    }
    let offset_min = match t.get(i) {
        Some(b'Z' | b'z') if i + 1 == t.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == t.len() => {
            let h = num(i + 1..i + 3)?;
            expect(i + 3, b":", "offset like +02:00")?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return Err(bad("no such offset"));
            }
            let off = h * 60 + m;
            if sign == b'-' { -off } else { off }
        }
        None => {
            return Err(bad(
                "a UTC offset is needed: add Z for UTC or an offset like +02:00",
            ));
        }
        _ => return Err(bad("unexpected text after the time")),
    };
    let ms = days_from_civil(year, month, day) * MS_PER_DAY
        + ((hour * 60 + minute - offset_min) * 60 + second) * 1000
        + millis;
    u64::try_from(ms).map_err(|_| bad("before 1970"))
}

/// Write `ms` since the Unix epoch as RFC 3339 in UTC, with milliseconds
/// only when they are not zero: `2026-05-01T06:00:00Z`,
/// `2026-05-01T06:00:00.250Z`.
pub fn format_rfc3339(ms: u64) -> String {
    let ms = ms as i64;
    let (days, rest) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (y, m, d) = civil_from_days(days);
    let (secs, millis) = (rest / 1000, rest % 1000);
    let (h, min, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if millis == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{millis:03}Z")
    }
}

/// A duration in milliseconds as text: `250ms`, `1.5s`, `2m05s`, `3h02m`,
/// `2d04h`.
pub fn format_duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => {
            let tenths = ms % 1000 / 100;
            if tenths == 0 {
                format!("{s}s")
            } else {
                format!("{s}.{tenths}s")
            }
        }
        60_000..3_600_000 => format!("{}m{:02}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// An interval in milliseconds in the largest unit that divides it exactly,
/// as written in the configuration: `1d`, `6h`, `90m`, `10s`, `250ms`.
pub fn format_interval(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
