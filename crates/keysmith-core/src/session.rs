//! Sessions of the team server (`keysmith serve`): a member who signs in over HTTP gets an
//! opaque bearer token (`kss_` + 64 hex digits, 256 bits from the OS CSPRNG) that names the
//! session on every later call. Only the token's SHA-256 digest is stored (a high-entropy
//! token needs no slow hash: OWASP Session Management Cheat Sheet), with a row MAC, so a
//! session row written outside Keysmith signs nobody in. Sessions expire
//! [`SESSION_LIFETIME_MS`] after sign-in, end on sign-out and when the member changes their
//! passphrase; a removed member's sessions stop at once (the member is read on every call).

use std::fmt;

use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::registry::{Member, Registry};
use crate::store::{self, SessionRow};

/// How long a session lasts after sign-in: 12 hours (a working day; the desktop also drops
/// its token when it locks).
pub const SESSION_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// The token's prefix, so a leaked token is recognisable (and never taken for an API key).
pub const SESSION_PREFIX: &str = "kss_";

/// A session's bearer token. Redacted in Debug, zeroized on drop; shown to nobody but the
/// member's client.
#[derive(Clone)]
pub struct SessionToken(Zeroizing<String>);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl SessionToken {
    fn generate() -> Result<SessionToken> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes[..])
            .map_err(|_| crate::key::RandomnessError)?;
        Ok(SessionToken(Zeroizing::new(format!(
            "{SESSION_PREFIX}{}",
            hex::encode(&bytes[..])
        ))))
    }

    /// Reads a token as presented (`kss_` + 64 lowercase hex digits).
    ///
    /// # Errors
    /// [`Error::SessionExpired`] for anything else (it names no session).
    pub fn parse(presented: &str) -> Result<SessionToken> {
        let hex_part = presented
            .strip_prefix(SESSION_PREFIX)
            .ok_or(Error::SessionExpired)?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Error::SessionExpired);
        }
        Ok(SessionToken(Zeroizing::new(presented.to_owned())))
    }

    /// The token's text, for the `Authorization: Bearer` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// A new session: its token (given to the client once) and when it expires (Unix ms).
#[derive(Debug)]
pub struct Session {
    pub member: Member,
    pub token: SessionToken,
    pub expires_at: i64,
}

impl Registry {
    /// Signs `name` in ([`Registry::sign_in`]: throttled and audited) and opens a session.
    ///
    /// # Errors
    /// As [`Registry::sign_in`].
    pub async fn start_session(&self, name: &str, pass: &str) -> Result<Session> {
        let member = self.sign_in(name, pass).await?;
        let token = SessionToken::generate()?;
        let now = self.clock.now_ms();
        let digest = token.digest();
        let expires_at = now + SESSION_LIFETIME_MS;
        let keys = self.keys().await?;
        let mac = keys
            .rows
            .session_mac(&digest, &member.id, now, expires_at)
            .to_vec();
        store::prune_sessions(&self.pool, now - SESSION_LIFETIME_MS).await?;
        store::insert_session(
            &self.pool,
            &SessionRow {
                digest: digest.to_vec(),
                member_id: member.id.clone(),
                created_at: now,
                expires_at,
                ended_at: None,
                mac,
            },
        )
        .await?;
        Ok(Session {
            member,
            token,
            expires_at,
        })
    }

    /// The member a session belongs to, as they are now.
    ///
    /// # Errors
    /// [`Error::SessionExpired`] for an unknown, ended, expired or forged session;
    /// [`Error::NotSignedIn`] when the member was removed.
    pub async fn session_member(&self, token: &SessionToken) -> Result<Member> {
        let digest = token.digest();
        let row = store::session_by_digest(&self.pool, &digest)
            .await?
            .ok_or(Error::SessionExpired)?;
        let keys = self.keys().await?;
        let mac =
            keys.rows
                .session_mac(&row.digest, &row.member_id, row.created_at, row.expires_at);
        let sealed: bool = row.mac.ct_eq(&mac[..]).into();
        if !sealed {
            tracing::warn!(member = %row.member_id, "a session row without Keysmith's seal was presented");
            return Err(Error::SessionExpired);
        }
        if row.ended_at.is_some() || self.clock.now_ms() >= row.expires_at {
            return Err(Error::SessionExpired);
        }
        self.actor(&row.member_id).await
    }

    /// Ends a session (sign-out). Ending an ended or unknown session is not an error.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub async fn end_session(&self, token: &SessionToken) -> Result<()> {
        store::end_session(&self.pool, &token.digest(), self.clock.now_ms()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape_and_redact() {
        let t = SessionToken::generate().unwrap();
        assert!(t.expose().starts_with(SESSION_PREFIX));
        assert_eq!(t.expose().len(), 4 + 64);
        assert!(SessionToken::parse(t.expose()).is_ok());
        assert!(!format!("{t:?}").contains(&t.expose()[4..]));
        assert_ne!(t.expose(), SessionToken::generate().unwrap().expose());
    }

    #[test]
    fn malformed_tokens_name_no_session() {
        let good = "a".repeat(64);
        for bad in [
            String::new(),
            "kss_".into(),
            good.clone(),
            format!("ksk_{good}"),
            format!("kss_{}", &good[1..]),
            format!("kss_{good}0"),
            format!("kss_{}", "A".repeat(64)),
            format!("kss_{}", "g".repeat(64)),
            format!(" kss_{good}"),
        ] {
            assert!(
                matches!(SessionToken::parse(&bad), Err(Error::SessionExpired)),
                "{bad:?}"
            );
        }
    }
}
