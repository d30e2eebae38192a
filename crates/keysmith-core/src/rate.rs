//! How often a key may be used: an optional per-key rate limit.
//!
//! A key generated with `--rate-limit "10/s burst 20"` is allowed 10 requests per second on
//! average, and up to 20 at once after a quiet spell; a request past that is refused by the
//! verifier (429, `Denial::RateLimited`) with the time until the next one would be allowed
//! (`Retry-After`, RFC 9110 §10.2.3). The verifier enforces it with the `governor` crate
//! (GCRA, the generic cell rate algorithm: a token bucket that holds no timer), one limiter
//! per key, in the verifier's memory: each verifier process counts on its own.
//!
//! The limit is fixed for the key's life (a roll keeps it) and covered by the row's MAC, so a
//! limit raised or removed in the database outside Keysmith is refused as a changed row.
//!
//! Written `N/s` or `N/min` (also `N per second`, `N/sec`, `N/minute`), optionally followed
//! by `burst B`; without a burst the bucket holds one period's worth (`N`). Both numbers are
//! 1 to [`MAX_RATE`]: a limit of zero would refuse every request, which is what revoke and
//! pause are for.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::error::{Error, Result};

/// Largest number of requests per period, and largest burst.
pub const MAX_RATE: u32 = 1_000_000;
/// Longest text accepted before parsing, in bytes.
const MAX_TEXT_LEN: usize = 64;

/// The period a rate is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
}

impl Per {
    fn duration(self) -> Duration {
        match self {
            Per::Second => Duration::from_secs(1),
            Per::Minute => Duration::from_secs(60),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Per::Second => "s",
            Per::Minute => "min",
        }
    }
}

/// A key's rate limit: `requests` per `per` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    requests: NonZeroU32,
    per: Per,
    burst: NonZeroU32,
}

impl RateLimit {
    /// Parses what a person typed (`10/s`, `600/min burst 50`, `5 per second`). Empty text
    /// means no limit.
    ///
    /// # Errors
    /// [`Error::InvalidRateLimit`] quoting the text (at most 32 characters, escaped) and
    /// saying what is wrong: a number that is zero, too large or not a number, a period
    /// other than second or minute, or text after the burst.
    pub fn parse(text: &str) -> Result<Option<RateLimit>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bad = |why: &str| Error::InvalidRateLimit(format!("{}: {why}", quote(text)));
        if text.chars().any(char::is_control) {
            return Err(bad("a rate limit holds no control characters"));
        }
        if text.len() > MAX_TEXT_LEN {
            return Err(bad(
                "too long for a rate limit such as 10/s or 600/min burst 50",
            ));
        }
        let lower = text.to_ascii_lowercase();
        let (rate, burst) = match lower.split_once("burst") {
            Some((rate, burst)) => (rate.trim_end_matches([' ', ',']), Some(burst.trim())),
            None => (lower.as_str(), None),
        };
        let (count, unit) = rate
            .split_once('/')
            .or_else(|| rate.split_once(" per "))
            .ok_or_else(|| {
                bad("write it as requests per second or minute, such as 10/s or 600/min")
            })?;
        let requests =
            number(count.trim()).map_err(|why| bad(&format!("the number of requests {why}")))?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Per::Second,
            "m" | "min" | "minute" => Per::Minute,
            _ => return Err(bad("the period must be a second (/s) or a minute (/min)")),
        };
        let burst = match burst {
            None => requests,
            Some(b) => number(b).map_err(|why| bad(&format!("the burst {why}")))?,
        };
        Ok(Some(RateLimit {
            requests,
            per,
            burst,
        }))
    }

    /// A limit from its parts.
    ///
    /// # Errors
    /// [`Error::InvalidRateLimit`] when `requests` or `burst` is 0 or above [`MAX_RATE`].
    pub fn new(requests: u32, per: Per, burst: u32) -> Result<RateLimit> {
        let limit = format!("{requests}/{} burst {burst}", per.unit());
        RateLimit::parse(&limit)?.ok_or_else(|| Error::InvalidRateLimit(limit))
    }

    /// Reads the stored form ([`RateLimit::stored`]): `None` is no limit.
    ///
    /// # Errors
    /// [`Error::InvalidRateLimit`] for a stored value Keysmith did not write.
    pub fn from_stored(stored: Option<&str>) -> Result<Option<RateLimit>> {
        match stored {
            None => Ok(None),
            Some(text) => match RateLimit::parse(text)? {
                Some(limit) if limit.to_string() == text => Ok(Some(limit)),
                _ => Err(Error::InvalidRateLimit(format!(
                    "{}: not a stored rate limit",
                    quote(text)
                ))),
            },
        }
    }

    /// The column's value: the canonical text (`10/s burst 20`).
    pub fn stored(&self) -> String {
        self.to_string()
    }

    /// Requests per period, on average.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// The period.
    pub fn per(&self) -> Per {
        self.per
    }

    /// Requests allowed at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// The quota `governor` enforces: one request replenished every period / requests.
    pub fn quota(&self) -> governor::Quota {
        let every = self.per.duration() / self.requests.get();
        // `every` is at least 1 µs (1 s / MAX_RATE), never zero.
        governor::Quota::with_period(every)
            .unwrap_or_else(|| governor::Quota::per_second(self.requests))
            .allow_burst(self.burst)
    }
}

impl fmt::Display for RateLimit {
    /// The canonical form, also the stored one: `10/s burst 20`, `600/min burst 600`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} burst {}",
            self.requests,
            self.per.unit(),
            self.burst
        )
    }
}

/// 1 to [`MAX_RATE`], ASCII digits only; the error completes "the number of requests …".
fn number(text: &str) -> std::result::Result<NonZeroU32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a whole number".into());
    }
    let n: u64 =
        text.trim_start_matches('0')
            .parse()
            .unwrap_or(if text.bytes().all(|b| b == b'0') {
                0
            } else {
                u64::MAX
            });
    if n == 0 {
        return Err(
            "must be at least 1 (a limit of zero would refuse every request: pause or revoke the key instead)".into(),
        );
    }
    if n > u64::from(MAX_RATE) {
        return Err(format!("must be at most {MAX_RATE}"));
    }
    u32::try_from(n)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| "must be a whole number".into())
}

/// The text as shown in an error: quoted, control characters escaped, at most 32 characters.
fn quote(text: &str) -> String {
    let shown: String = text.chars().take(32).flat_map(char::escape_debug).collect();
    let more = if text.chars().count() > 32 { "…" } else { "" };
    format!("\"{shown}{more}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms_and_their_canonical_text() {
        let table = [
            ("10/s", "10/s burst 10"),
            ("10/S", "10/s burst 10"),
            (" 10 / sec ", "10/s burst 10"),
            ("10/second", "10/s burst 10"),
            ("10 per second", "10/s burst 10"),
            ("600/min", "600/min burst 600"),
            ("600/m", "600/min burst 600"),
            ("5 per minute", "5/min burst 5"),
            ("600/min burst 50", "600/min burst 50"),
            ("10/s, burst 20", "10/s burst 20"),
            ("10/s BURST 1", "10/s burst 1"),
            ("007/s", "7/s burst 7"),
            ("1000000/s burst 1000000", "1000000/s burst 1000000"),
            ("1/min burst 1", "1/min burst 1"),
        ];
        for (typed, canonical) in table {
            let limit = RateLimit::parse(typed)
                .unwrap_or_else(|e| panic!("{typed:?}: {e}"))
                .unwrap_or_else(|| panic!("{typed:?} gave no limit"));
            assert_eq!(limit.to_string(), canonical, "{typed:?}");
            assert_eq!(
                RateLimit::from_stored(Some(canonical)).unwrap(),
                Some(limit),
                "{canonical:?} round-trips"
            );
        }
        assert_eq!(RateLimit::parse("").unwrap(), None);
        assert_eq!(RateLimit::parse("   ").unwrap(), None);
        assert_eq!(RateLimit::from_stored(None).unwrap(), None);
    }

    #[test]
    fn refused_forms_name_the_value_and_the_reason() {
        let table = [
            ("0/s", "\"0/s\"", "at least 1"),
            ("000/min", "\"000/min\"", "at least 1"),
            (
                "10/s burst 0",
                "\"10/s burst 0\"",
                "burst must be at least 1",
            ),
            ("1000001/s", "\"1000001/s\"", "at most 1000000"),
            (
                "99999999999999999999/s",
                "\"99999999999999999999/s\"",
                "at most",
            ),
            ("10/s burst 1000001", "burst 1000001", "at most"),
            ("-1/s", "\"-1/s\"", "whole number"),
            ("+5/s", "\"+5/s\"", "whole number"),
            ("1.5/s", "\"1.5/s\"", "whole number"),
            ("1e3/s", "\"1e3/s\"", "whole number"),
            ("ten/s", "\"ten/s\"", "whole number"),
            ("１０/s", "\"１０/s\"", "whole number"),
            ("10/h", "\"10/h\"", "second (/s) or a minute (/min)"),
            ("10/hour", "\"10/hour\"", "second (/s) or a minute (/min)"),
            ("10/day", "\"10/day\"", "second (/s) or a minute (/min)"),
            ("10/", "\"10/\"", "second (/s) or a minute (/min)"),
            ("10", "\"10\"", "such as 10/s"),
            ("fast", "\"fast\"", "such as 10/s"),
            (
                "10/s burst",
                "\"10/s burst\"",
                "burst must be a whole number",
            ),
            (
                "10/s burst 5 please",
                "please",
                "burst must be a whole number",
            ),
            ("10/s/s", "\"10/s/s\"", "second (/s) or a minute (/min)"),
            ("10/s\u{0}", "\\0", "control characters"),
            ("10\n/s", "\\n", "control characters"),
            ("10/s\u{1b}[31m", "\\u{1b}", "control characters"),
        ];
        for (typed, shown, reason) in table {
            let err = RateLimit::parse(typed).expect_err(typed);
            let Error::InvalidRateLimit(message) = &err else {
                panic!("{typed:?}: {err:?}");
            };
            assert!(message.contains(shown), "{typed:?}: {message}");
            assert!(message.contains(reason), "{typed:?}: {message}");
        }
        let long = format!("10/s burst {}", "1".repeat(80));
        let Err(Error::InvalidRateLimit(message)) = RateLimit::parse(&long) else {
            panic!("a long limit was accepted");
        };
        assert!(message.contains("too long") && message.chars().count() < 200);
    }

    #[test]
    fn stored_text_must_be_canonical() {
        for stored in ["10/s", "10/sec burst 10", "", "0/s burst 1", "junk"] {
            assert!(
                RateLimit::from_stored(Some(stored)).is_err(),
                "{stored:?} was read as a stored limit"
            );
        }
    }

    #[test]
    fn quota_replenishes_one_request_per_period_over_requests() {
        let limit = RateLimit::new(10, Per::Second, 20).unwrap();
        let quota = limit.quota();
        assert_eq!(quota.replenish_interval(), Duration::from_millis(100));
        assert_eq!(quota.burst_size().get(), 20);
        let limit = RateLimit::new(600, Per::Minute, 1).unwrap();
        assert_eq!(
            limit.quota().replenish_interval(),
            Duration::from_millis(100)
        );
        assert_eq!(limit.quota().burst_size().get(), 1);
        let fastest = RateLimit::new(MAX_RATE, Per::Second, MAX_RATE).unwrap();
        assert_eq!(
            fastest.quota().replenish_interval(),
            Duration::from_micros(1)
        );
        assert!(RateLimit::new(0, Per::Second, 1).is_err());
        assert!(RateLimit::new(1, Per::Second, 0).is_err());
    }

    /// The limiter allows exactly the burst at once, then refuses until one period/requests
    /// has passed (governor's fake clock: no sleeping).
    #[test]
    fn limiter_allows_the_burst_then_refuses_until_replenished() {
        use governor::clock::FakeRelativeClock;
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::parse("2/s burst 3").unwrap().unwrap();
        let limiter = governor::RateLimiter::direct_with_clock(limit.quota(), clock.clone());
        for i in 0..3 {
            assert!(limiter.check().is_ok(), "request {i} of the burst");
        }
        let refused = limiter.check().expect_err("the fourth at once");
        assert_eq!(
            refused.wait_time_from(governor::clock::Clock::now(&clock)),
            Duration::from_millis(500)
        );
        clock.advance(Duration::from_millis(499));
        assert!(limiter.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }

    proptest! {
        #[test]
        fn any_valid_limit_round_trips(
            requests in 1..=MAX_RATE,
            minute in any::<bool>(),
            burst in 1..=MAX_RATE,
        ) {
            let per = if minute { Per::Minute } else { Per::Second };
            let limit = RateLimit::new(requests, per, burst).unwrap();
            prop_assert_eq!(limit.requests(), requests);
            prop_assert_eq!(limit.burst(), burst);
            prop_assert_eq!(RateLimit::from_stored(Some(&limit.stored())).unwrap(), Some(limit));
            prop_assert!(limit.quota().replenish_interval() > Duration::ZERO);
        }

        #[test]
        fn arbitrary_text_never_panics_and_errors_stay_short(text in "\\PC{0,80}") {
            if let Err(e) = RateLimit::parse(&text) {
                prop_assert!(matches!(e, Error::InvalidRateLimit(_)));
                prop_assert!(e.to_string().chars().count() < 240, "{}", e);
            }
        }
    }
}
