//! The API key format, generation and parsing.
//!
//! A Keysmith key looks like `ksk_` + 43-character body + 6-character checksum, all base62:
//!
//! ```text
//! ksk_3nJ0yq…(43 chars)…Tb1X2z
//! └┬─┘└──────── body ──────┘└ crc ┘
//! ```
//!
//! - The **prefix** `ksk_` makes a leaked key recognisable by a secret scanner
//!   (regex: `\bksk_[0-9A-Za-z]{49}\b`).
//! - The **body** is 43 characters drawn uniformly from the 62-character alphabet with
//!   the OS CSPRNG: 43 × log2(62) ≈ 256.03 bits (PRODUCT.md asks for at least 256).
//! - The **checksum** is CRC-32 (IEEE) of `prefix + body`, written as 6 base62 digits,
//!   most significant first (62^6 > 2^32). It lets a mistyped key be rejected before any
//!   lookup, as GitHub's token format does; it is not a security measure.
//!
//! The full key lives only in [`ApiKeySecret`], whose Debug and Display are redacted and
//! which is zeroized on drop.

use std::fmt;

use rand::rngs::OsRng;
use rand::TryRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The fixed prefix every Keysmith API key starts with.
pub const KEY_PREFIX: &str = "ksk_";
/// Characters in the random body.
pub const BODY_LEN: usize = 43;
/// Characters in the checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Characters in a whole key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
/// Characters of the body that stay visible after the one-time display (the article's "first 4").
pub const START_LEN: usize = 4;
/// A regular expression a secret scanner can use to find Keysmith keys.
pub const SCANNER_REGEX: &str = r"\bksk_[0-9A-Za-z]{49}\b";

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed Keysmith key. Never carries the string itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("an API key starts with \"{KEY_PREFIX}\"")]
    WrongPrefix,
    #[error("an API key is {KEY_LEN} characters long, this one has {found}")]
    WrongLength { found: usize },
    #[error("an API key holds only letters and digits after \"{KEY_PREFIX}\" (character {position} is not one)")]
    BadCharacter { position: usize },
    #[error("the API key's checksum does not match: it was probably mistyped or cut short")]
    ChecksumMismatch,
}

/// A full API key, held in memory only between generation and the one-time display, or
/// while a presented key is being verified.
///
/// Debug and Display print `<redacted>`; there is no Serialize; the bytes are zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Draws a new key: 43 base62 characters (≈256 bits) from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] if the OS random source fails.
    pub fn generate() -> Result<ApiKeySecret, RandomnessError> {
        let mut body = Zeroizing::new(String::with_capacity(BODY_LEN));
        let mut buf = Zeroizing::new([0u8; 64]);
        while body.len() < BODY_LEN {
            OsRng
                .try_fill_bytes(buf.as_mut())
                .map_err(|_| RandomnessError)?;
            for &b in buf.iter() {
                // Rejection sampling: 248 = 4 × 62, so `b % 62` is uniform over the accepted bytes.
                if b < 248 && body.len() < BODY_LEN {
                    body.push(char::from(ALPHABET[usize::from(b % 62)]));
                }
            }
        }
        let mut key = String::with_capacity(KEY_LEN);
        key.push_str(KEY_PREFIX);
        key.push_str(&body);
        let sum = checksum(&key);
        key.extend(sum.iter().map(|&b| char::from(b)));
        Ok(ApiKeySecret(key))
    }

    /// Parses a presented key, checking prefix, length, alphabet and checksum, in that order,
    /// before any lookup. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`KeyFormatError`] naming the first thing wrong; the key itself is never in the error.
    pub fn parse(presented: &str) -> Result<ApiKeySecret, KeyFormatError> {
        Ok(ApiKeySecret(WellFormedKey::check(presented)?.0.to_owned()))
    }

    /// The whole key, for hashing, the one-time display and the clipboard. Nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first 4 characters of the body: what lists show after the one-time display.
    pub fn start(&self) -> String {
        self.0[KEY_PREFIX.len()..KEY_PREFIX.len() + START_LEN].to_owned()
    }
}

/// A presented key that passed [`ApiKeySecret::parse`]'s checks, borrowed from where it was
/// presented (an HTTP header) instead of copied: the verifier's per-request path digests it
/// without an allocation. Debug is redacted; there is no Display.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WellFormedKey<'a>(&'a str);

impl<'a> WellFormedKey<'a> {
    /// Checks prefix, length, alphabet and checksum, in that order (surrounding whitespace
    /// is ignored), as [`ApiKeySecret::parse`] does.
    ///
    /// # Errors
    /// [`KeyFormatError`] naming the first thing wrong; the key itself is never in the error.
    pub fn check(presented: &'a str) -> Result<WellFormedKey<'a>, KeyFormatError> {
        let s = presented.trim();
        if !s.starts_with(KEY_PREFIX) {
            return Err(KeyFormatError::WrongPrefix);
        }
        if s.len() != KEY_LEN {
            return Err(KeyFormatError::WrongLength {
                found: s.chars().count(),
            });
        }
        if let Some(i) = s
            .bytes()
            .skip(KEY_PREFIX.len())
            .position(|b| !b.is_ascii_alphanumeric())
        {
            // A multi-byte character of the right byte length: report the length in
            // characters, as for any other wrong length.
            if !s.is_ascii() {
                return Err(KeyFormatError::WrongLength {
                    found: s.chars().count(),
                });
            }
            return Err(KeyFormatError::BadCharacter {
                position: KEY_PREFIX.len() + i + 1,
            });
        }
        let (payload, given) = s.split_at(KEY_LEN - CHECKSUM_LEN);
        let expected = checksum(payload);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..],
            given.as_bytes(),
        )) {
            return Err(KeyFormatError::ChecksumMismatch);
        }
        Ok(WellFormedKey(s))
    }

    /// The key's bytes, for the digest.
    pub(crate) fn as_bytes(&self) -> &'a [u8] {
        self.0.as_bytes()
    }
}

impl<'a> From<&'a ApiKeySecret> for WellFormedKey<'a> {
    fn from(key: &'a ApiKeySecret) -> WellFormedKey<'a> {
        WellFormedKey(&key.0)
    }
}

impl fmt::Debug for WellFormedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WellFormedKey(<redacted>)")
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

impl fmt::Display for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}<redacted>")
    }
}

/// The OS random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessError;

/// CRC-32 of `payload`, as 6 base62 digits, most significant first.
fn checksum(payload: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = u64::from(crc32fast::hash(payload.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> ApiKeySecret {
        match ApiKeySecret::generate() {
            Ok(k) => k,
            Err(e) => panic!("generate failed: {e}"),
        }
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = good();
        let s = k.expose();
        assert_eq!(s.len(), KEY_LEN);
        assert!(s.starts_with("ksk_"));
        assert!(s[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(k.start(), s[4..8]);
        assert_eq!(ApiKeySecret::parse(s), Ok(k.clone()));
    }

    #[test]
    fn generated_keys_are_distinct_and_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        let mut chars = std::collections::HashSet::new();
        for _ in 0..500 {
            let k = good();
            chars.extend(k.expose()[4..4 + BODY_LEN].bytes());
            assert!(seen.insert(k.expose().to_owned()));
        }
        assert_eq!(
            chars.len(),
            62,
            "every base62 character should appear in 500 bodies"
        );
    }

    #[test]
    fn parse_rejects_each_kind_of_bad_key() {
        let k = good();
        let s = k.expose();
        let cases: Vec<(String, KeyFormatError)> = vec![
            (format!("ghp_{}", &s[4..]), KeyFormatError::WrongPrefix),
            (String::new(), KeyFormatError::WrongPrefix),
            (
                s[..KEY_LEN - 1].to_owned(),
                KeyFormatError::WrongLength { found: KEY_LEN - 1 },
            ),
            (
                format!("{s}0"),
                KeyFormatError::WrongLength { found: KEY_LEN + 1 },
            ),
            (
                format!("ksk_-{}", &s[5..]),
                KeyFormatError::BadCharacter { position: 5 },
            ),
            (
                format!("ksk_é{}", &s[6..]),
                KeyFormatError::WrongLength { found: KEY_LEN - 1 },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                ApiKeySecret::parse(&input),
                Err(want),
                "input of length {}",
                input.len()
            );
        }
    }

    #[test]
    fn a_single_mistyped_character_fails_the_checksum() {
        let k = good();
        let s = k.expose();
        for pos in [4, 20, KEY_LEN - 7, KEY_LEN - 1] {
            let mut bytes = s.as_bytes().to_vec();
            bytes[pos] = if bytes[pos] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap_or_default();
            assert_eq!(
                ApiKeySecret::parse(&typo),
                Err(KeyFormatError::ChecksumMismatch),
                "typo at {pos}"
            );
        }
    }

    #[test]
    fn parse_trims_surrounding_whitespace() {
        let k = good();
        let padded = format!("  {}\n", k.expose());
        assert_eq!(ApiKeySecret::parse(&padded), Ok(k));
    }

    #[test]
    fn debug_and_display_never_show_the_key() {
        let k = good();
        let body = &k.expose()[4..];
        assert!(!format!("{k:?}").contains(body));
        assert!(!format!("{k}").contains(body));
        assert!(!format!("{:?}", Some(&k)).contains(body));
    }

    #[test]
    fn format_errors_never_echo_the_input() {
        let k = good();
        let mut bad = k.expose().to_owned();
        bad.push('x');
        let err = ApiKeySecret::parse(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.is_empty());
        assert!(!err.contains(&bad[4..20]));
    }

    #[test]
    fn checksum_is_six_base62_digits() {
        assert_eq!(checksum("ksk_").len(), CHECKSUM_LEN);
        // CRC-32 of the empty string is 0: all zero digits.
        assert_eq!(&checksum(""), b"000000");
    }
}
