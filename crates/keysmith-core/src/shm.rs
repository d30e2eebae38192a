//! A read-only shared mapping of the header of SQLite's WAL index (`<db>-shm`), so that the
//! verifier can see on every check, with no system call, whether anything was committed.
//!
//! This is the workspace's one `unsafe` module (`unsafe_code` is denied everywhere else).
//! Two operations need it, each with its argument below:
//! - mapping the file (`memmap2::MmapOptions::map`): sound only while nobody shrinks the file
//!   below the mapped length, or the next read of the page faults with `SIGBUS`;
//! - viewing the mapped bytes as atomics: other processes (SQLite's writers) change them
//!   while they are mapped, which a `&[u8]` would promise cannot happen.
//!
//! The WAL-index format is sqlite.org/walformat.html §2.1: two copies of a 48-byte header at
//! offset 0, which a writer's commit rewrites (second copy, memory barrier, first copy)
//! before its `COMMIT` returns.

#![allow(unsafe_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Both copies of the WAL-index header, in 8-byte words (96 bytes).
pub(crate) const HEADER_WORDS: usize = 12;

/// The WAL-index header, as the verifier last read it.
pub(crate) type Header = [u64; HEADER_WORDS];

/// A read-only `MAP_SHARED` mapping of the first 96 bytes of a `-shm` file.
pub(crate) struct WalIndexMap {
    map: memmap2::Mmap,
    /// Kept open for as long as the mapping: closing any descriptor of a file releases every
    /// POSIX record lock this process holds on it (fcntl(2)), SQLite's own included, and
    /// without its lock another process's connection would truncate the file under the
    /// mapping. (Dropping it right after mapping did exactly that in
    /// `zero_staleness_for_every_writer`: the next read died of `SIGBUS`.)
    _file: std::fs::File,
}

impl WalIndexMap {
    /// Maps the WAL index of the database at `db` (`<db>-shm`); `None` when there is no such
    /// file or it is shorter than the header (the database is not in WAL mode).
    ///
    /// The caller must hold a SQLite connection to `db` that has read from it in WAL mode,
    /// and keep it open for as long as this value lives: see the safety argument below.
    pub(crate) fn open(db: &Path) -> Option<WalIndexMap> {
        let mut name = db.as_os_str().to_owned();
        name.push("-shm");
        let file = std::fs::File::open(std::path::PathBuf::from(name)).ok()?;
        let len = HEADER_WORDS * 8;
        if file.metadata().ok()?.len() < len as u64 {
            return None;
        }
        // SAFETY: the mapping stays valid while the file keeps at least `len` bytes. SQLite
        // shrinks a `-shm` file only when a connection opens it while no other connection
        // has it open (it then holds the "DMS" lock exclusively and truncates the file to
        // start afresh: `unixOpenSharedMemory` in os_unix.c). The caller's connection has
        // it open (a connection in WAL mode keeps its shared DMS lock until it closes, and
        // `_file` stays open so as not to release that lock), so that cannot happen while
        // the connection and this mapping live. Deleting the file (the last
        // connection closing) leaves the mapping valid. The file was opened read-only, and
        // the mapping is read-only.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&file) }.ok()?;
        Some(WalIndexMap { map, _file: file })
    }

    /// The header's 96 bytes as they are now, read with acquire loads: a commit that
    /// returned before this call began is in what it returns.
    pub(crate) fn read(&self) -> Header {
        let base = self.map.as_ptr().cast::<AtomicU64>();
        std::array::from_fn(|i| {
            // SAFETY: the mapping is page-aligned and at least `HEADER_WORDS * 8` bytes long
            // (checked in `open`), so word `i` is in bounds and 8-byte aligned, and it lives
            // as long as `self`. `AtomicU64` has `u64`'s size and layout, and atomic loads
            // are the accesses that stay defined while other processes write the memory.
            let word = unsafe { &*base.add(i) };
            word.load(Ordering::Acquire)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_sees_a_write_to_the_file_at_once() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        let mut shm = std::fs::File::create(dir.path().join("k.db-shm")).unwrap();
        shm.write_all(&[0u8; 4096]).unwrap();
        let map = WalIndexMap::open(&db).unwrap();
        assert_eq!(map.read(), [0; HEADER_WORDS]);
        shm.seek(SeekFrom::Start(88)).unwrap();
        shm.write_all(&7u64.to_ne_bytes()).unwrap();
        let mut want = [0; HEADER_WORDS];
        want[11] = 7;
        assert_eq!(
            map.read(),
            want,
            "a write through the file shows in the mapping"
        );
    }

    #[test]
    fn no_file_or_a_short_one_maps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        assert!(WalIndexMap::open(&db).is_none());
        std::fs::write(dir.path().join("k.db-shm"), [0u8; 95]).unwrap();
        assert!(WalIndexMap::open(&db).is_none());
    }
}
