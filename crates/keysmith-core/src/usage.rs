//! Per-key usage counts: how often the verifier accepted each key, and refused it for which
//! reason, per UTC day (issue 11, "Seeing how keys are used").
//!
//! The verifier counts in memory and writes its counts in one transaction per flush, with the
//! last-used times ([`crate::verifier::Verifier::flush_last_used`], or the PostgreSQL replica's
//! flush), as one upsert per key and day into `key_usage`: a row per key per day, never a row
//! per request. Rows older than the retention period are deleted at the first flush of each
//! day. The rows are statistics, not decisions: they carry no seal, and nothing reads them to
//! allow or refuse a key.

use std::net::IpAddr;

use keysmith_types::UsageCounts;

use crate::verifier::Denial;

/// One day in milliseconds.
pub const DAY_MS: i64 = keysmith_types::DAY_MS;

/// How many days of usage the verifier keeps unless told otherwise (`--keep-usage-days`):
/// a year and a month, so a month can be compared with the same month a year before.
pub const RETENTION_DAYS_DEFAULT: u32 = 400;

/// The fewest days a verifier may keep: the app's 30-day chart must stay whole.
pub const RETENTION_DAYS_MIN: u32 = keysmith_types::USAGE_DAYS_DEFAULT;

/// The UTC day number (days since 1970-01-01) of a Unix time in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// The UTC calendar date (`2026-12-02`, RFC 3339 full-date) of a day number; `None` outside
/// the years -9999 to 9999.
pub fn date_of(day: i64) -> Option<String> {
    let ts = jiff::Timestamp::from_second(day.checked_mul(86_400)?).ok()?;
    Some(jiff::tz::Offset::UTC.to_datetime(ts).date().to_string())
}

/// What a check's answer counts as. Refusals with no key to count against (no key, a
/// malformed or unknown one, an unreadable request, a database the verifier cannot read) and
/// keys whose row was changed outside Keysmith are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Revoked,
    Expired,
    Paused,
    Role,
    Scope,
    Address,
    RateLimited,
}

impl Outcome {
    /// The outcome a refusal counts as, if it counts.
    pub fn of_denial(denial: &Denial) -> Option<Outcome> {
        Some(match denial {
            Denial::Revoked { .. } => Outcome::Revoked,
            Denial::Expired { .. } => Outcome::Expired,
            Denial::Paused { .. } => Outcome::Paused,
            Denial::RoleRefused { .. } => Outcome::Role,
            Denial::ScopeRefused { .. } => Outcome::Scope,
            Denial::SourceRefused { .. } => Outcome::Address,
            Denial::RateLimited { .. } => Outcome::RateLimited,
            Denial::MissingKey
            | Denial::MalformedKey(_)
            | Denial::UnknownKey
            | Denial::BadRequest(_)
            | Denial::Unavailable
            | Denial::Tampered { .. }
            | Denial::RolledBack => return None,
        })
    }

    fn slot(self, counts: &mut UsageCounts) -> &mut u64 {
        match self {
            Outcome::Allowed => &mut counts.allowed,
            Outcome::Revoked => &mut counts.revoked,
            Outcome::Expired => &mut counts.expired,
            Outcome::Paused => &mut counts.paused,
            Outcome::Role => &mut counts.role,
            Outcome::Scope => &mut counts.scope,
            Outcome::Address => &mut counts.address,
            Outcome::RateLimited => &mut counts.rate_limited,
        }
    }
}

/// One key's counts for one day, not yet written, with the day's last accepted use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayTally {
    pub counts: UsageCounts,
    /// The latest accepted use this day (Unix ms) and its client address, when known.
    pub last: Option<(i64, Option<IpAddr>)>,
}

impl DayTally {
    /// Counts one check's outcome at `at` (Unix ms) from `client`.
    pub fn count(&mut self, outcome: Outcome, at: i64, client: Option<IpAddr>) {
        let slot = outcome.slot(&mut self.counts);
        *slot = slot.saturating_add(1);
        if outcome == Outcome::Allowed && self.last.is_none_or(|(t, _)| at >= t) {
            self.last = Some((at, client));
        }
    }

    /// The day's last accepted use as stored: `last_at` (Unix ms) and `last_from` (the
    /// client address as text), each NULL when unknown.
    pub fn stored_last(&self) -> (Option<i64>, Option<String>) {
        match self.last {
            Some((at, from)) => (Some(at), from.map(|a| a.to_string())),
            None => (None, None),
        }
    }

    /// Adds a tally that could not be written back to this one (a failed flush).
    pub fn merge(&mut self, other: DayTally) {
        self.counts.add(&other.counts);
        if let Some((at, from)) = other.last {
            if self.last.is_none_or(|(t, _)| at >= t) {
                self.last = Some((at, from));
            }
        }
    }
}

/// Adds one key's counts for one day to its row: `$1` key id, `$2` day number, `$3`..`$10`
/// the counts (allowed, revoked, expired, paused, role, scope, address, rate limited), `$11`
/// the day's last accepted use (Unix ms) or NULL, `$12` its client address or NULL. The same
/// text runs on SQLite (`rusqlite` and sqlx) and PostgreSQL; each parameter appears once, in
/// order.
pub const UPSERT_SQL: &str = "INSERT INTO key_usage (key_id, day, allowed, revoked, expired, \
     paused, role_refused, scope_refused, address_refused, rate_limited, last_at, last_from) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (key_id, day) DO UPDATE SET \
     allowed = key_usage.allowed + excluded.allowed, \
     revoked = key_usage.revoked + excluded.revoked, \
     expired = key_usage.expired + excluded.expired, \
     paused = key_usage.paused + excluded.paused, \
     role_refused = key_usage.role_refused + excluded.role_refused, \
     scope_refused = key_usage.scope_refused + excluded.scope_refused, \
     address_refused = key_usage.address_refused + excluded.address_refused, \
     rate_limited = key_usage.rate_limited + excluded.rate_limited, \
     last_from = CASE WHEN excluded.last_at IS NOT NULL \
         AND (key_usage.last_at IS NULL OR excluded.last_at >= key_usage.last_at) \
         THEN excluded.last_from ELSE key_usage.last_from END, \
     last_at = CASE WHEN key_usage.last_at IS NULL OR excluded.last_at > key_usage.last_at \
         THEN coalesce(excluded.last_at, key_usage.last_at) ELSE key_usage.last_at END";

/// Deletes the rows of days before `$1` (a day number).
pub const PRUNE_SQL: &str = "DELETE FROM key_usage WHERE day < $1";

/// A count as the databases store it (a signed 64-bit integer).
pub fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The first day a verifier keeping `retention_days` keeps, on `today`.
pub fn oldest_kept(today: i64, retention_days: u32) -> i64 {
    today - i64::from(retention_days.max(RETENTION_DAYS_MIN)) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        assert_eq!(day_of(-1), -1, "before 1970 rounds down, not toward zero");
        assert_eq!(date_of(0).as_deref(), Some("1970-01-01"));
        assert_eq!(date_of(-1).as_deref(), Some("1969-12-31"));
        // 2025-12-02T00:00:00Z = 1_764_633_600 s.
        assert_eq!(
            date_of(day_of(1_764_633_600_000)).as_deref(),
            Some("2025-12-02")
        );
        assert_eq!(date_of(20_454).as_deref(), Some("2026-01-01"));
        assert_eq!(
            date_of(20_513).as_deref(),
            Some("2026-03-01"),
            "2026 is no leap year"
        );
        assert_eq!(date_of(19_782).as_deref(), Some("2024-02-29"));
        assert_eq!(date_of(i64::MAX), None);
        assert_eq!(date_of(i64::MIN), None);
    }

    #[test]
    fn a_tally_keeps_the_latest_accepted_use() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let mut t = DayTally::default();
        t.count(Outcome::Allowed, 20, Some(a));
        t.count(Outcome::Allowed, 10, Some(b));
        t.count(Outcome::Scope, 30, Some(b));
        t.count(Outcome::RateLimited, 31, None);
        assert_eq!(t.last, Some((20, Some(a))), "a refusal is not a use");
        assert_eq!(t.counts.allowed, 2);
        assert_eq!(t.counts.scope, 1);
        assert_eq!(t.counts.rate_limited, 1);
        assert_eq!(t.counts.refused(), 2);
        let mut later = DayTally::default();
        later.count(Outcome::Allowed, 25, Some(b));
        later.count(Outcome::Revoked, 26, None);
        t.merge(later);
        assert_eq!(t.last, Some((25, Some(b))));
        assert_eq!(t.counts.allowed, 3);
        assert_eq!(t.counts.revoked, 1);
    }

    #[test]
    fn every_counted_denial_has_its_own_column() {
        use crate::verifier::Denial as D;
        let id = || "k".to_owned();
        let cases = [
            (D::Revoked { key_id: id() }, Outcome::Revoked),
            (D::Expired { key_id: id() }, Outcome::Expired),
            (D::Paused { key_id: id() }, Outcome::Paused),
            (
                D::RoleRefused {
                    key_id: id(),
                    role: keysmith_types::Role::Viewer,
                },
                Outcome::Role,
            ),
            (
                D::SourceRefused {
                    key_id: id(),
                    client: None,
                },
                Outcome::Address,
            ),
        ];
        let mut seen = UsageCounts::default();
        for (denial, outcome) in cases {
            assert_eq!(Outcome::of_denial(&denial), Some(outcome), "{denial}");
            *outcome.slot(&mut seen) += 1;
        }
        assert_eq!(seen.refused(), 5);
        assert_eq!(Outcome::of_denial(&D::UnknownKey), None);
        assert_eq!(Outcome::of_denial(&D::MissingKey), None);
        assert_eq!(Outcome::of_denial(&D::Tampered { key_id: id() }), None);
    }

    #[test]
    fn retention_keeps_at_least_the_chart() {
        assert_eq!(oldest_kept(100, 400), -299);
        assert_eq!(oldest_kept(100, 30), 71);
        assert_eq!(
            oldest_kept(100, 1),
            71,
            "never fewer days than the chart shows"
        );
        assert_eq!(stored(u64::MAX), i64::MAX);
    }
}
