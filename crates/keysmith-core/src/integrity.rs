//! Protection against edits made outside Keysmith (a sync or backup tool, another account
//! with write access to the file, a restored copy, a verifier host's copy of the database).
//!
//! Three secrets-backed checks, none of them stored in the database file:
//!
//! - **Row MACs.** Every `members` and `api_keys` row carries
//!   `mac = HMAC-SHA-256(row key, the fields that decide access)`; the row key is derived from
//!   the pepper (`HMAC(pepper, "keysmith row protection v1")`), so the app, the CLI and every
//!   verifier (which hold the pepper) can check a row, and nobody without it can write one
//!   that passes: a role raised, a removal or revocation undone, an expiry pushed back, a
//!   passphrase hash swapped or a key row inserted is refused, not trusted.
//! - **A keyed audit chain.** Each audit entry's hash is an HMAC under the audit key, a second
//!   secret in the OS keyring apart from the pepper (verifiers never get it), so the chain
//!   cannot be recomputed after an edit.
//! - **An anchor.** The chain's head (sequence number and hash) is kept in the OS keyring too,
//!   written before every commit that extends the chain ("pending") and after it ("head").
//!   An entry removed from the end, or a whole database rolled back to an earlier copy, no
//!   longer reaches the anchored head.
//!
//! And the log names each row's state after every change it records (the row's MAC), so
//! an old row put back with the MAC it had then (a replay from a backup) no longer matches
//! the latest entry about it (`Registry::audit_chain` reconciles them).
//!
//! What stays trusted is stated in ARCHITECTURE.md ("What remains trusted").

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::digest::Pepper;
use crate::store::{KeyRow, MemberRow, SealedKeyRow};

type HmacSha256 = Hmac<Sha256>;

fn keyed(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// Appends `field` as an 8-byte big-endian length and its bytes, so no two different
/// sequences of fields encode alike.
pub(crate) fn put(mac: &mut HmacSha256, field: &[u8]) {
    mac.update(&(field.len() as u64).to_be_bytes());
    mac.update(field);
}

fn opt(v: Option<i64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The key of row MACs, derived from the pepper. Redacted Debug, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RowKey([u8; 32]);

impl fmt::Debug for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RowKey(<redacted>)")
    }
}

/// The fields of an API key row that its MAC covers.
#[derive(Debug, Clone, Copy)]
pub struct KeyFields<'a> {
    pub id: &'a str,
    pub digest: &'a [u8],
    pub created_by: &'a str,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub replaced_by: Option<&'a str>,
    /// When the key was paused; `None` when it is not.
    pub paused_at: Option<i64>,
    /// The stored allowed-source list; `None` for anywhere.
    pub allowed_sources: Option<&'a str>,
    /// The stored rate limit; `None` for none.
    pub rate_limit: Option<&'a str>,
    /// The stored scope list; `None` for the creator's whole role.
    pub scopes: Option<&'a str>,
}

impl<'a> From<&'a SealedKeyRow> for KeyFields<'a> {
    fn from(k: &'a SealedKeyRow) -> Self {
        KeyFields {
            id: &k.id,
            digest: &k.digest,
            created_by: &k.created_by,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
            replaced_by: k.replaced_by.as_deref(),
            paused_at: k.paused_at,
            allowed_sources: k.allowed_sources.as_deref(),
            rate_limit: k.rate_limit.as_deref(),
            scopes: k.scopes.as_deref(),
        }
    }
}

impl<'a> From<&'a KeyRow> for KeyFields<'a> {
    fn from(k: &'a KeyRow) -> Self {
        KeyFields {
            id: &k.id,
            digest: &k.digest,
            created_by: &k.created_by,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
            replaced_by: k.replaced_by.as_deref(),
            paused_at: k.paused_at,
            allowed_sources: k.allowed_sources.as_deref(),
            rate_limit: k.rate_limit.as_deref(),
            scopes: k.scopes.as_deref(),
        }
    }
}

/// The fields of a member row that its MAC covers.
#[derive(Debug, Clone, Copy)]
pub struct MemberFields<'a> {
    pub id: &'a str,
    pub name_key: &'a str,
    pub role: &'a str,
    pub passphrase_hash: &'a str,
    pub must_change_passphrase: bool,
    pub disabled_at: Option<i64>,
}

impl<'a> From<&'a MemberRow> for MemberFields<'a> {
    fn from(m: &'a MemberRow) -> Self {
        MemberFields {
            id: &m.id,
            name_key: &m.name_key,
            role: &m.role,
            passphrase_hash: &m.passphrase_hash,
            must_change_passphrase: m.must_change_passphrase,
            disabled_at: m.disabled_at,
        }
    }
}

impl RowKey {
    /// `HMAC-SHA-256(pepper, "keysmith row protection v1")`.
    pub fn derive(pepper: &Pepper) -> RowKey {
        let mut mac = keyed(pepper.as_bytes());
        mac.update(b"keysmith row protection v1");
        RowKey(mac.finalize().into_bytes().into())
    }

    /// The MAC of a member row: id, name key, role, passphrase hash, must-change flag and
    /// removal time.
    pub fn member_mac(&self, m: MemberFields<'_>) -> [u8; 32] {
        let mut mac = keyed(&self.0);
        put(&mut mac, b"member v1");
        put(&mut mac, m.id.as_bytes());
        put(&mut mac, m.name_key.as_bytes());
        put(&mut mac, m.role.as_bytes());
        put(&mut mac, m.passphrase_hash.as_bytes());
        put(&mut mac, if m.must_change_passphrase { b"1" } else { b"0" });
        put(&mut mac, opt(m.disabled_at).as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The MAC of a key row: id, digest, creator, creation, revocation and expiry times,
    /// its replacement, and, only while the key is paused, the time it was paused (so the
    /// seals of keys that were never paused are those of schema version 5, and a pause
    /// lifted outside Keysmith no longer matches); then, only for a key with an allowlist,
    /// the tag `sources` and the list (a tagged pair, so the field count still tells the
    /// optional fields apart: 9 is paused, 10 is a list, 11 both); then, only for a key with
    /// a rate limit, the tag `rate` and the limit (the tags differ, and a pause time is
    /// digits, so every combination encodes differently).
    pub fn key_mac(&self, k: KeyFields<'_>) -> [u8; 32] {
        let mut mac = keyed(&self.0);
        put(&mut mac, b"key v1");
        put(&mut mac, k.id.as_bytes());
        put(&mut mac, k.digest);
        put(&mut mac, k.created_by.as_bytes());
        put(&mut mac, k.created_at.to_string().as_bytes());
        put(&mut mac, opt(k.revoked_at).as_bytes());
        put(&mut mac, opt(k.expires_at).as_bytes());
        put(&mut mac, k.replaced_by.unwrap_or("").as_bytes());
        if let Some(at) = k.paused_at {
            // Length-prefixed fields decode one way only, so nine fields never encode
            // like eight.
            put(&mut mac, at.to_string().as_bytes());
        }
        if let Some(sources) = k.allowed_sources {
            put(&mut mac, b"sources");
            put(&mut mac, sources.as_bytes());
        }
        if let Some(rate) = k.rate_limit {
            put(&mut mac, b"rate");
            put(&mut mac, rate.as_bytes());
        }
        if let Some(scopes) = k.scopes {
            put(&mut mac, b"scopes");
            put(&mut mac, scopes.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The MAC of a session row: token digest, member, creation and expiry times. A row
    /// written outside Keysmith (to sign in as someone) does not carry it.
    pub fn session_mac(
        &self,
        digest: &[u8],
        member_id: &str,
        created_at: i64,
        expires_at: i64,
    ) -> [u8; 32] {
        let mut mac = keyed(&self.0);
        put(&mut mac, b"session v1");
        put(&mut mac, digest);
        put(&mut mac, member_id.as_bytes());
        put(&mut mac, created_at.to_string().as_bytes());
        put(&mut mac, expires_at.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `stored` is the member row's MAC (constant time). A missing MAC never matches.
    pub fn member_ok(&self, m: MemberFields<'_>, stored: Option<&[u8]>) -> bool {
        stored.is_some_and(|s| bool::from(s.ct_eq(&self.member_mac(m))))
    }

    /// Whether `stored` is the key row's MAC (constant time). A missing MAC never matches.
    pub fn key_ok(&self, k: KeyFields<'_>, stored: Option<&[u8]>) -> bool {
        stored.is_some_and(|s| bool::from(s.ct_eq(&self.key_mac(k))))
    }
}

/// The audit chain's key: 32 random bytes in the OS keyring, apart from the pepper.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AuditKey([u8; 32]);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// Draws a new audit key from the OS CSPRNG.
    ///
    /// # Errors
    /// [`crate::key::RandomnessError`].
    pub fn generate() -> Result<AuditKey, crate::key::RandomnessError> {
        use rand::TryRngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| crate::key::RandomnessError)?;
        Ok(AuditKey(bytes))
    }

    /// Rebuilds a key read back from the keyring; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<AuditKey> {
        <[u8; 32]>::try_from(bytes).ok().map(AuditKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn hmac(&self) -> HmacSha256 {
        keyed(&self.0)
    }
}

/// A position in the audit chain: an entry's sequence number and hash (seq 0 and 32 zero
/// bytes before the first entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl Head {
    /// Before the first entry.
    pub const GENESIS: Head = Head {
        seq: 0,
        hash: [0; 32],
    };
}

/// The chain's anchor, kept in the OS keyring: where keyed entries start, the head as of the
/// last commit known to have completed, and the head a commit in progress will leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The first keyed entry's sequence number; earlier ones predate keyed chains.
    pub keyed_from: i64,
    pub head: Head,
    pub pending: Option<Head>,
}

impl Anchor {
    /// The text kept in the keyring: `v1 KEYED_FROM SEQ HASH [SEQ HASH]`.
    pub fn encode(&self) -> String {
        let mut s = format!(
            "v1 {} {} {}",
            self.keyed_from,
            self.head.seq,
            hex::encode(self.head.hash)
        );
        if let Some(p) = self.pending {
            s.push_str(&format!(" {} {}", p.seq, hex::encode(p.hash)));
        }
        s
    }

    /// Reads [`Anchor::encode`]'s text; `None` for anything else.
    pub fn decode(text: &[u8]) -> Option<Anchor> {
        let text = std::str::from_utf8(text).ok()?;
        let mut parts = text.split(' ');
        if parts.next()? != "v1" {
            return None;
        }
        let keyed_from = parts.next()?.parse().ok()?;
        let head = head_from(parts.next()?, parts.next()?)?;
        let pending = match (parts.next(), parts.next()) {
            (Some(s), Some(h)) => Some(head_from(s, h)?),
            (None, None) => None,
            _ => return None,
        };
        parts.next().is_none().then_some(Anchor {
            keyed_from,
            head,
            pending,
        })
    }

    /// The furthest position the anchor knows of: the pending head when one is ahead of the
    /// settled head, else the settled head.
    pub fn reach(&self) -> Head {
        match self.pending {
            Some(p) if p.seq > self.head.seq => p,
            _ => self.head,
        }
    }

    /// Whether the database's chain, whose last entry is `db_head`, is one this anchor
    /// vouches for. `hash_at_reach` is the hash of the database's entry at
    /// [`Anchor::reach`]'s sequence number, if there is one.
    ///
    /// Accepted: the head is the anchored head or the pending one (a commit that completed,
    /// or one that never did, after a crash); or the chain goes on past the anchor's reach,
    /// whose entry is still there unchanged (the chain is keyed, so only Keysmith wrote the
    /// rest). Anything else is a chain cut short, rolled back or rewritten.
    ///
    /// # Errors
    /// A sentence saying what does not match.
    pub fn vouches_for(
        &self,
        db_head: Head,
        hash_at_reach: Option<[u8; 32]>,
    ) -> Result<(), String> {
        if db_head == self.head || Some(db_head) == self.pending {
            return Ok(());
        }
        let reach = self.reach();
        if db_head.seq > reach.seq && (reach.seq == 0 || hash_at_reach == Some(reach.hash)) {
            return Ok(());
        }
        if db_head.seq >= reach.seq {
            Err(format!(
                "audit entry {} is not the one the keyring's anchor recorded: the log was rewritten",
                reach.seq
            ))
        } else {
            Err(format!(
                "the audit log ends at entry {}, but the keyring's anchor says it reached entry {}: entries were removed or the database was rolled back to an earlier copy",
                db_head.seq, reach.seq
            ))
        }
    }
}

fn head_from(seq: &str, hash: &str) -> Option<Head> {
    let seq = seq.parse().ok()?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hash, &mut bytes).ok()?;
    Some(Head { seq, hash: bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(seq: i64, b: u8) -> Head {
        Head { seq, hash: [b; 32] }
    }

    #[test]
    fn anchors_round_trip() {
        for a in [
            Anchor {
                keyed_from: 1,
                head: Head::GENESIS,
                pending: None,
            },
            Anchor {
                keyed_from: 7,
                head: h(9, 3),
                pending: Some(h(11, 4)),
            },
        ] {
            assert_eq!(Anchor::decode(a.encode().as_bytes()), Some(a));
        }
        for bad in ["", "v2 1 0 00", "v1 1 0", "v1 1 x 00", "v1 1 1 0101 2"] {
            assert_eq!(Anchor::decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn the_anchor_vouches_for_completed_and_crashed_commits_only() {
        let anchor = Anchor {
            keyed_from: 1,
            head: h(5, 5),
            pending: Some(h(7, 7)),
        };
        let at = |seq: i64| Some([u8::try_from(seq).unwrap(); 32]);
        let reach = anchor.reach().seq;
        assert_eq!(reach, 7);
        // The pending commit completed; or it never did (crash): both fine.
        assert!(anchor.vouches_for(h(7, 7), at(reach)).is_ok());
        assert!(anchor.vouches_for(h(5, 5), at(reach)).is_ok());
        // The chain went on past the anchor, which is still there.
        assert!(anchor.vouches_for(h(9, 9), at(reach)).is_ok());
        // Cut short, rolled back, or a different entry at the anchored position.
        assert!(anchor.vouches_for(h(6, 6), None).is_err());
        assert!(anchor.vouches_for(h(4, 4), None).is_err());
        assert!(anchor.vouches_for(h(7, 8), at(reach)).is_err());
        assert!(anchor.vouches_for(h(9, 9), Some([0; 32])).is_err());
        let settled = Anchor {
            pending: None,
            ..anchor
        };
        assert!(settled.vouches_for(h(4, 4), None).is_err());
    }
}
