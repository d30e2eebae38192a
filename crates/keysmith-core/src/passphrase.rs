//! Member passphrases, hashed with Argon2id (RFC 9106) at the argon2 crate's defaults
//! (m = 19 MiB, t = 2, p = 1: the OWASP Password Storage Cheat Sheet's first option).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::error::{Error, Result};

/// Hashes a passphrase into a PHC string (`$argon2id$v=19$…`).
///
/// # Errors
/// [`Error::Internal`] if hashing fails (it does not for valid parameters).
pub fn hash(passphrase: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(passphrase.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("passphrase hashing failed: {e}")))
}

/// Whether `passphrase` matches the stored PHC string. A malformed stored hash never matches.
pub fn verify(passphrase: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(passphrase.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
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
}
