//! Checks on what people type: key names, member names and passphrases.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{Error, Result};

/// Longest key or member name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 64;
/// Shortest passphrase, in characters (OWASP Authentication Cheat Sheet: at least 8;
/// Keysmith asks for more because it guards every key of the account).
pub const MIN_PASSPHRASE_CHARS: usize = 10;
/// Longest passphrase, in characters (argon2 takes any length; this bounds the work).
pub const MAX_PASSPHRASE_CHARS: usize = 1024;

/// Trims `raw`, puts it in Unicode Normalization Form C (so "é" typed as one code point or
/// as "e" + combining accent is one name), and checks it as a name: 1 to 64 characters, no
/// control characters.
///
/// `what` names the field in the error ("key name", "member name").
///
/// # Errors
/// [`Error::InvalidName`] saying what is wrong.
pub fn name(raw: &str, what: &'static str) -> Result<String> {
    let normalized: String = raw.trim().nfc().collect();
    let trimmed = normalized.as_str();
    if trimmed.is_empty() {
        return Err(Error::InvalidName(format!("The {what} cannot be empty.")));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(Error::InvalidName(format!(
            "The {what} can be at most {MAX_NAME_CHARS} characters long (it has {chars})."
        )));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidName(format!(
            "The {what} cannot contain control characters such as tabs or line breaks."
        )));
    }
    if let Some(c) = trimmed.chars().find(|&c| invisible(c)) {
        return Err(Error::InvalidName(format!(
            "The {what} cannot contain invisible characters such as U+{:04X}: they make a name \
             show differently from what it is.",
            u32::from(c)
        )));
    }
    if trimmed.contains(char::REPLACEMENT_CHARACTER) {
        return Err(Error::InvalidName(format!(
            "The {what} contains U+FFFD (\u{FFFD}), the mark of text that could not be read: type it again."
        )));
    }
    Ok(trimmed.to_owned())
}

/// A character that changes how the text around it shows but shows nothing itself, or breaks
/// a line: format characters (Unicode general category Cf: bidirectional overrides and
/// isolates such as U+202E, which reorder a name on screen (CVE-2021-42574, "Trojan
/// Source"), zero-width spaces, the byte-order mark), line and paragraph separators (Zl, Zp)
/// and private-use characters (Co). Zero-width joiner and non-joiner (U+200D, U+200C) stay
/// allowed: emoji sequences and scripts such as Persian need them (Unicode UAX #31 §2.3).
fn invisible(c: char) -> bool {
    match c.general_category() {
        GeneralCategory::Format => !matches!(c, '\u{200C}' | '\u{200D}'),
        GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator
        | GeneralCategory::PrivateUse => true,
        _ => false,
    }
}

/// The form in which member names are compared and kept unique: trimmed, NFC, lowercase.
pub fn name_key(name: &str) -> String {
    name.trim().nfc().collect::<String>().to_lowercase()
}

/// Checks a new passphrase: 10 to 1024 characters (counted in NFC, the form it is hashed
/// in), no control characters, and no U+FFFD (the replacement character a lossy conversion
/// leaves where bytes were not UTF-8: two different unreadable passphrases would otherwise
/// become the same one).
///
/// # Errors
/// [`Error::InvalidPassphrase`] saying what is wrong.
pub fn new_passphrase(p: &str) -> Result<()> {
    let chars = p.nfc().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(Error::InvalidPassphrase(format!(
            "The passphrase must have at least {MIN_PASSPHRASE_CHARS} characters."
        )));
    }
    if chars > MAX_PASSPHRASE_CHARS {
        return Err(Error::InvalidPassphrase(format!(
            "The passphrase can have at most {MAX_PASSPHRASE_CHARS} characters."
        )));
    }
    if p.chars().any(char::is_control) {
        return Err(Error::InvalidPassphrase(
            "The passphrase cannot contain control characters such as tabs or line breaks.".into(),
        ));
    }
    if p.contains(char::REPLACEMENT_CHARACTER) {
        return Err(Error::InvalidPassphrase(
            "The passphrase contains U+FFFD (\u{FFFD}), the mark of bytes that were not valid text (UTF-8): it cannot be told apart from other unreadable text. Type it again.".into(),
        ));
    }
    Ok(())
}

/// Shortest key lifetime: one minute, in ms.
pub const MIN_LIFETIME_MS: i64 = 60_000;
/// Longest key lifetime: 10 years (3,650 days), in ms.
pub const MAX_LIFETIME_MS: i64 = 3_650 * 86_400_000;
/// Longest grace period after a roll: 90 days, in ms.
pub const MAX_GRACE_MS: i64 = 90 * 86_400_000;

/// Checks a key's lifetime (ms from generation to expiry): 1 minute to 10 years.
///
/// # Errors
/// [`Error::InvalidDuration`].
pub fn lifetime_ms(ms: i64) -> Result<()> {
    if (MIN_LIFETIME_MS..=MAX_LIFETIME_MS).contains(&ms) {
        Ok(())
    } else {
        Err(Error::InvalidDuration(
            "A key's lifetime must be between 1 minute and 3650 days.".into(),
        ))
    }
}

/// Checks a roll's grace period (ms the old key keeps working): 0 to 90 days.
///
/// # Errors
/// [`Error::InvalidDuration`].
pub fn grace_ms(ms: i64) -> Result<()> {
    if (0..=MAX_GRACE_MS).contains(&ms) {
        Ok(())
    } else {
        Err(Error::InvalidDuration(
            "The grace period must be between 0 (end the old key now) and 90 days.".into(),
        ))
    }
}

/// Seconds (as requests give durations) to milliseconds (as the registry takes them).
///
/// # Errors
/// [`Error::InvalidDuration`] when the product overflows.
pub fn secs_to_ms(secs: i64) -> Result<i64, Error> {
    secs.checked_mul(1000)
        .ok_or_else(|| Error::InvalidDuration("That duration is far too long.".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: std::result::Result<&str, &str>) {
        match (name(input, "key name"), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "input {input:?}"),
            (Err(Error::InvalidName(msg)), Err(fragment)) => {
                assert!(
                    msg.contains(fragment),
                    "{input:?}: {msg:?} lacks {fragment:?}"
                )
            }
            (got, want) => panic!("input {input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        check("  Zapier sync  ", Ok("Zapier sync"));
        check("é", Ok("é"));
        check(&"x".repeat(64), Ok(&"x".repeat(64)));
        check(&"é".repeat(64), Ok(&"é".repeat(64)));
        check("", Err("cannot be empty"));
        check(" \t\n ", Err("cannot be empty"));
        check(&"x".repeat(65), Err("at most 64"));
        check("line\nbreak", Err("control characters"));
        check("nul\0byte", Err("control characters"));
        check("bell\u{7}", Err("control characters"));
        check("del\u{7f}x", Err("control characters"));
    }

    /// Every character that shows nothing yet changes what is shown is refused (the input the
    /// newcomer pass found: U+202E reversed "Zapier sync" into "Zapier cnys" on screen); the
    /// joiners that writing systems and emoji need are not.
    #[test]
    fn names_refuse_invisible_characters() {
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}', // embeddings, overrides
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}', // isolates
            '\u{200E}',
            '\u{200F}',
            '\u{061C}', // marks
            '\u{200B}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{180E}', // zero width, soft hyphen
            '\u{2028}',
            '\u{2029}', // line and paragraph separators
            '\u{E000}',
            '\u{F8FF}',
            '\u{F0000}', // private use
            '\u{E0041}', // tag characters
        ] {
            let input = format!("Zapier {c}sync");
            match name(&input, "key name") {
                Err(Error::InvalidName(msg)) => assert!(
                    msg.contains(&format!("U+{:04X}", u32::from(c))),
                    "{input:?}: {msg}"
                ),
                other => panic!("{:04X}: {other:?}", u32::from(c)),
            }
        }
        check(
            "Zapier \u{202E}sync\u{202C}",
            Err("invisible characters such as U+202E"),
        );
        // Joiners that text needs.
        check("فایل\u{200C}ها", Ok("فایل\u{200C}ها"));
        check("ops 👩\u{200D}💻", Ok("ops 👩\u{200D}💻"));
        // Every Cf character of the Basic Multilingual Plane, but the joiners.
        for u in 0u32..0x1_0000 {
            let Some(c) = char::from_u32(u) else { continue };
            if c.general_category() == GeneralCategory::Format && !matches!(u, 0x200C | 0x200D) {
                assert!(name(&format!("a{c}b"), "key name").is_err(), "U+{u:04X}");
            }
        }
    }

    #[test]
    fn passphrases_are_bounded() {
        assert!(new_passphrase("correct horse").is_ok());
        assert!(matches!(
            new_passphrase("short"),
            Err(Error::InvalidPassphrase(_))
        ));
        assert!(matches!(
            new_passphrase(""),
            Err(Error::InvalidPassphrase(_))
        ));
        assert!(matches!(
            new_passphrase(&"x".repeat(1025)),
            Err(Error::InvalidPassphrase(_))
        ));
    }
}
