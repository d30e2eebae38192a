//! Keyed digests of API keys: HMAC-SHA-256 (RFC 2104, FIPS 180-4) with a per-account pepper.
//!
//! The database stores only `HMAC-SHA-256(pepper, key)`. The pepper lives in the OS keyring,
//! never on disk, so a copied database alone cannot confirm any key (OWASP Password Storage
//! Cheat Sheet, "Peppering"). A plain hash is enough because keys carry 256 bits of entropy:
//! there is nothing for a slow hash to protect against.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::key::{ApiKeySecret, RandomnessError, WellFormedKey};

/// Bytes in a pepper.
pub const PEPPER_LEN: usize = 32;

/// HMAC-SHA-256 keyed with a pepper (see [`Pepper::digester`]). Its state is derived from
/// the pepper, so it is as secret; Debug is redacted.
#[derive(Clone)]
pub struct Digester(Hmac<Sha256>);

impl Digester {
    /// `HMAC-SHA-256(pepper, key)`, equal to [`Pepper::digest`]; takes an [`ApiKeySecret`]
    /// or a borrowed [`WellFormedKey`].
    pub fn digest<'k>(&self, key: impl Into<WellFormedKey<'k>>) -> KeyDigest {
        let mut mac = self.0.clone();
        mac.update(key.into().as_bytes());
        KeyDigest(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digester(<redacted>)")
    }
}

/// Why a pepper file cannot be used. Never carries the file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PepperFileError {
    #[error("the pepper file {0} cannot be used: {1}")]
    Io(String, String),
    #[error("the pepper file {0} is not a regular file")]
    NotAFile(String),
    #[error("the pepper file {0} has mode {1:04o}: others may read it; run `chmod 600` on it")]
    Mode(String, u32),
    #[error(
        "the pepper file {0} does not hold 64 hex digits (write it with `keysmith export-pepper`)"
    )]
    Content(String),
}

/// The HMAC secret (32 random bytes). Redacted Debug, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pepper([u8; PEPPER_LEN]);

impl Pepper {
    /// Draws a new pepper from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] if the OS random source fails.
    pub fn generate() -> Result<Pepper, RandomnessError> {
        let mut bytes = [0u8; PEPPER_LEN];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| RandomnessError)?;
        Ok(Pepper(bytes))
    }

    /// Rebuilds a pepper read back from the keyring; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Pepper> {
        <[u8; PEPPER_LEN]>::try_from(bytes).ok().map(Pepper)
    }

    /// The raw bytes, for writing to the keyring.
    pub fn as_bytes(&self) -> &[u8; PEPPER_LEN] {
        &self.0
    }

    /// Reads a pepper file written by [`Pepper::write_file`]: 64 hex digits (whitespace
    /// around them ignored). Refused unless it is a regular file that only its owner may
    /// read or write (mode 0600 or stricter), as for SSH private keys.
    ///
    /// # Errors
    /// [`PepperFileError`] saying what is wrong (never the file's content).
    pub fn read_file(path: &std::path::Path) -> Result<Pepper, PepperFileError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| PepperFileError::Io(shown.clone(), e.to_string()))?;
        if !meta.is_file() {
            return Err(PepperFileError::NotAFile(shown));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(PepperFileError::Mode(shown, mode));
            }
        }
        let mut text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| PepperFileError::Io(shown.clone(), e.to_string()))?,
        );
        let mut bytes = zeroize::Zeroizing::new([0u8; PEPPER_LEN]);
        hex::decode_to_slice(text.trim(), &mut bytes[..])
            .map_err(|_| PepperFileError::Content(shown))?;
        text.zeroize();
        Ok(Pepper(*bytes))
    }

    /// Writes the pepper as 64 hex digits to a new file created with mode 0600. Refuses to
    /// overwrite an existing file.
    ///
    /// # Errors
    /// [`PepperFileError::Io`].
    pub fn write_file(&self, path: &std::path::Path) -> Result<(), PepperFileError> {
        use std::io::Write;
        let shown = path.display().to_string();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| PepperFileError::Io(shown.clone(), e.to_string()))?;
        let mut text = zeroize::Zeroizing::new(hex::encode(self.0));
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| PepperFileError::Io(shown, e.to_string()))
    }

    /// `HMAC-SHA-256(pepper, "keysmith pepper check v1")`, kept in the database so a pepper
    /// read from a file can be matched to its account without revealing it.
    pub fn check_value(&self) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(b"keysmith pepper check v1");
        mac.finalize().into_bytes().into()
    }

    /// An HMAC already keyed with this pepper, for many digests in a row (the verifier):
    /// each [`Digester::digest`] then skips the key schedule.
    pub fn digester(&self) -> Digester {
        Digester(match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        })
    }

    /// `HMAC-SHA-256(pepper, key)`.
    pub fn digest(&self, key: &ApiKeySecret) -> KeyDigest {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(key.expose().as_bytes());
        KeyDigest(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// The stored form of a key: 32 bytes of HMAC-SHA-256. Compared in constant time.
#[derive(Clone, Copy, Eq)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a digest read from the database; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<KeyDigest> {
        <[u8; 32]>::try_from(bytes).ok().map(KeyDigest)
    }
}

impl PartialEq for KeyDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_prepared_digester_gives_the_same_digest() {
        let pepper = Pepper::generate().unwrap();
        let key = ApiKeySecret::generate().unwrap();
        let digester = pepper.digester();
        assert_eq!(digester.digest(&key), pepper.digest(&key));
        assert_eq!(
            digester.digest(&key),
            pepper.digest(&key),
            "state is not consumed"
        );
        assert!(!format!("{digester:?}").contains(&format!("{:?}", pepper.as_bytes())));
        // The verifier's borrowed form of the same key, as presented with padding.
        let padded = format!("  {}\t", key.expose());
        let borrowed = WellFormedKey::check(&padded).unwrap();
        assert_eq!(digester.digest(borrowed), pepper.digest(&key));
        assert_eq!(format!("{borrowed:?}"), "WellFormedKey(<redacted>)");
    }
    use super::*;

    #[test]
    fn digest_matches_rfc_4231_style_hmac_sha256() {
        // Independent check: HMAC-SHA-256 with key = 32 × 0x0b over a fixed valid key string,
        // recomputed here from the RFC 2104 definition with plain SHA-256.
        use sha2::Digest;
        let pepper = Pepper([0x0b; 32]);
        let key = ApiKeySecret::generate().unwrap();
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= 0x0b;
            opad[i] ^= 0x0b;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(key.expose().as_bytes())
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize();
        assert_eq!(pepper.digest(&key).as_bytes()[..], outer[..]);
    }

    #[test]
    fn different_peppers_give_different_digests() {
        let key = ApiKeySecret::generate().unwrap();
        let a = Pepper::generate().unwrap();
        let b = Pepper::generate().unwrap();
        assert_ne!(a.digest(&key), b.digest(&key));
        assert_eq!(a.digest(&key), a.clone().digest(&key));
    }

    #[test]
    fn pepper_round_trips_and_rejects_wrong_lengths() {
        let p = Pepper::generate().unwrap();
        let q = Pepper::from_bytes(p.as_bytes()).unwrap();
        assert_eq!(p.as_bytes(), q.as_bytes());
        assert!(Pepper::from_bytes(&[0u8; 31]).is_none());
        assert!(Pepper::from_bytes(&[0u8; 33]).is_none());
        assert_eq!(format!("{p:?}"), "Pepper(<redacted>)");
    }
}
