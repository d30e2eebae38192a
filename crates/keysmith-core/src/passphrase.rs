//! Member passphrases, hashed with Argon2id (RFC 9106) at the argon2 crate's defaults
//! (m = 19 MiB, t = 2, p = 1: the OWASP Password Storage Cheat Sheet's first option).
//!
//! A passphrase is hashed in Unicode Normalization Form C (RFC 8265 §4.2, the PRECIS
//! OpaqueString profile): keyboards and input methods may send "é" as one code point or as
//! "e" + a combining accent, and the person typed the same thing either way.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Hashes a passphrase into a PHC string (`$argon2id$v=19$…`).
///
/// # Errors
/// [`Error::Internal`] if hashing fails (it does not for valid parameters).
pub fn hash(passphrase: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let normalized = Zeroizing::new(passphrase.nfc().collect::<String>());
    Argon2::default()
        .hash_password(normalized.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("passphrase hashing failed: {e}")))
}

/// Whether `passphrase` matches the stored PHC string. A malformed stored hash never matches.
///
/// Compared in NFC; a passphrase set before Keysmith normalised (hashed as typed) still
/// matches when typed the same way.
pub fn verify(passphrase: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let normalized = Zeroizing::new(passphrase.nfc().collect::<String>());
    let matches = |text: &str| {
        Argon2::default()
            .verify_password(text.as_bytes(), &parsed)
            .is_ok()
    };
    matches(&normalized) || (normalized.as_str() != passphrase && matches(passphrase))
}

/// [`hash`] on a blocking thread: Argon2 takes tens of milliseconds of CPU, which must not
/// stall the async executor.
///
/// # Errors
/// As [`hash`].
pub async fn hash_off_executor(passphrase: &str) -> Result<String> {
    let passphrase = Zeroizing::new(passphrase.to_owned());
    tokio::task::spawn_blocking(move || hash(&passphrase))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

/// Whether two passphrases are the same text (canonically equivalent: equal in NFC).
pub fn same_text(a: &str, b: &str) -> bool {
    a.nfc().eq(b.nfc())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = super::hash("correct horse battery").unwrap();
        let b = super::hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(super::verify("correct horse battery", &a));
        assert!(!super::verify("correct horse batterY", &a));
        assert!(!super::verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn canonically_equivalent_passphrases_are_one() {
        // "café crème" with precomposed letters (NFC) and with combining accents (NFD).
        let nfc = "caf\u{e9} cr\u{e8}me!";
        let nfd = "cafe\u{301} cre\u{300}me!";
        assert_ne!(nfc, nfd);
        let phc = super::hash(nfc).unwrap();
        assert!(super::verify(nfd, &phc));
        let phc = super::hash(nfd).unwrap();
        assert!(super::verify(nfc, &phc));
        // Compatibility forms stay distinct (NFC, not NFKC): "ﬁ" is not "fi".
        let phc = super::hash("\u{fb01}rst passphrase").unwrap();
        assert!(!super::verify("first passphrase", &phc));
    }
}
