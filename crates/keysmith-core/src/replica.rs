//! Verifier replicas on PostgreSQL (`keysmith serve-verifier --database-url`): the same
//! in-memory index and the same decision as the verifier on one computer
//! ([`crate::verifier`]), fed by the database instead of a watched file.
//!
//! - **Notifications.** Every key or member change fires `NOTIFY keysmith_changes` at commit
//!   (triggers in `migrations/postgres/`); a listener task wakes the feed at once, so a revoke
//!   is applied a few milliseconds after it commits.
//! - **Freshness poll.** Notifications are lost while the listening connection is down, so
//!   the feed also reads the change logs' positions every `max_staleness / 4`. Each refresh
//!   runs in one repeatable-read snapshot started after a noted moment; when it succeeds, the
//!   index holds every change committed before that moment, and the verifier records it.
//! - **The bound.** A check answers only while the last such moment is within
//!   `max_staleness` of now; otherwise 503 ([`crate::verifier::Denial::Unavailable`]), never
//!   a possibly stale 204. So after a revoking call returns, no replica allows the key for
//!   longer than `max_staleness`, whether its database connection is up or not.
//!
//! Change-log order is commit order because every writer holds the store's advisory write
//! lock (`store::Pool::begin_write`). A log that shrinks means the database went back to an
//! earlier copy: the replica then refuses every key (503), as on one computer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::clock::SystemClock;
use crate::digest::Pepper;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::store::{self, ChangeListener, Pool};
use crate::verifier::{FedIndex, Verifier};

/// How often uses are written as last-used times.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// A running replica: the verifier to answer checks with, and the feed keeping it current.
#[derive(Debug)]
pub struct Replica {
    pub verifier: Arc<Verifier>,
    feed: tokio::task::JoinHandle<()>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.feed.abort();
        self.listener.abort();
    }
}

/// Loads every key of the PostgreSQL store `pool` into a new verifier and starts feeding it.
///
/// # Errors
/// [`Error::WrongPepper`] for a pepper of another account; [`Error::NotInitialized`] for a
/// store without an account; [`Error::Storage`]; [`Error::Internal`] for a SQLite pool.
pub async fn start(
    pool: Pool,
    pepper: Pepper,
    policy: Option<Policy>,
    max_staleness: Duration,
) -> Result<Replica> {
    if store::account_id(&pool).await?.is_none() {
        return Err(Error::NotInitialized);
    }
    if let Some(recorded) = store::pepper_check(&pool).await? {
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            recorded.as_slice(),
            &pepper.check_value()[..],
        )) {
            return Err(Error::WrongPepper);
        }
    }
    // Listening first: a change committed while the index loads wakes the feed after.
    let mut changes = ChangeListener::connect(&pool).await?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let positions = store::change_positions(&mut tx).await?;
    let members = store::list_members(&mut tx).await?;
    let bad_row = |e: crate::verifier::VerifierError| Error::Internal(e.to_string());
    let mut loaded = FedIndex::new(pepper, &members).map_err(bad_row)?;
    drop(members);
    store::each_sealed_key(&mut tx, |row| loaded.push_key(&row).map_err(bad_row)).await?;
    tx.rollback().await?;
    let verifier = Verifier::fed(
        loaded,
        policy,
        Arc::new(SystemClock),
        started,
        max_staleness,
    );
    let verifier = Arc::new(verifier);
    let wake = Arc::new(Notify::new());
    let listener = {
        let wake = Arc::clone(&wake);
        tokio::spawn(async move {
            loop {
                match changes.next().await {
                    Ok(()) => wake.notify_one(),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the change notifications; polling until they are back");
                        wake.notify_one();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };
    let feed = tokio::spawn(feed(
        pool,
        Arc::clone(&verifier),
        wake,
        positions,
        (max_staleness / 4).max(Duration::from_millis(10)),
    ));
    Ok(Replica {
        verifier,
        feed,
        listener,
    })
}

async fn feed(
    pool: Pool,
    verifier: Arc<Verifier>,
    wake: Arc<Notify>,
    mut seen: (i64, i64),
    poll_every: Duration,
) {
    let mut last_flush = Instant::now();
    let mut failing = false;
    loop {
        // A notification or the poll interval, whichever comes first.
        let _ = tokio::time::timeout(poll_every, wake.notified()).await;
        match refresh(&pool, &verifier, &mut seen).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("the key database is reachable again; the index is current");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot read the key database; checks answer 503 once the staleness bound passes");
            }
            Err(_) => {}
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            last_flush = Instant::now();
            flush_uses(&pool, &verifier).await;
        }
    }
}

/// Applies every change committed before the moment it starts, then confirms that moment.
async fn refresh(pool: &Pool, verifier: &Verifier, seen: &mut (i64, i64)) -> Result<()> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let now = store::change_positions(&mut tx).await?;
    if now.0 < seen.0 || now.1 < seen.1 {
        verifier.mark_rolled_back();
        tracing::error!(
            ?now,
            ?seen,
            "the key database went back to an earlier state; refusing every key"
        );
    }
    let members = if now.1 != seen.1 {
        Some(store::list_members(&mut tx).await?)
    } else {
        None
    };
    let mut keys = Vec::new();
    if now.0 != seen.0 {
        for id in store::keys_changed_since(&mut tx, seen.0).await? {
            if let Some(row) = store::key_by_id(&mut tx, &id).await? {
                keys.push(row);
            }
        }
    }
    tx.rollback().await?;
    verifier
        .apply(members.as_deref(), &keys)
        .map_err(|e| Error::Internal(e.to_string()))?;
    *seen = now;
    verifier.confirm_fresh(started);
    Ok(())
}

/// Writes what was counted since the last flush in one transaction: last-used times and the
/// per-day usage rows, and on the day's first flush deletes the rows past the verifier's
/// retention period (the same as [`Verifier::flush_last_used`] does on SQLite).
async fn flush_uses(pool: &Pool, verifier: &Verifier) {
    let prune = verifier.prune_due(verifier.now_ms());
    let uses = verifier.take_uses();
    if uses.is_empty() && prune.is_none() {
        return;
    }
    let result = async {
        let mut tx = pool.begin_unlocked().await?;
        for ((id, day), tally) in &uses {
            let id = uuid::Uuid::from_u128(*id).to_string();
            if let Some((at, _)) = tally.last {
                store::touch_last_used(&mut tx, &id, at).await?;
            }
            store::add_usage(&mut tx, &id, *day, tally).await?;
        }
        if let Some(oldest) = prune {
            store::prune_usage(&mut tx, oldest).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, keys = uses.len(), "could not write usage; will retry");
        if prune.is_some() {
            verifier.prune_failed();
        }
        verifier.restore_uses(uses);
    }
}
