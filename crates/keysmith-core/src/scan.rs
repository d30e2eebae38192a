//! Finding leaked Keysmith keys in text (`keysmith scan`): files, directory trees, and the
//! lines a git repository's history or index added.
//!
//! A candidate is what the scanner pattern in [`crate::key::SCANNER_REGEX`] matches:
//! `ksk_` and 49 characters of `[0-9A-Za-z]`, between ASCII word boundaries. Only candidates
//! whose checksum holds are reported (the format's CRC-32 tells a key from look-alike text
//! before any look-up), each as an [`ApiKeySecret`], whose `Debug` and `Display` redact it.
//! What a found key is (name, creator, status) is for the registry to say
//! ([`crate::Registry::identify`]).
//!
//! Text is read in chunks of [`CHUNK`] bytes, so a file of any size is scanned in bounded
//! memory. Like `grep` and ripgrep, a file with a NUL byte in its first [`BINARY_PROBE`] bytes
//! is binary and is not scanned ([`ScanError::Binary`]).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use memchr::memmem;

use crate::key::{ApiKeySecret, KEY_LEN, KEY_PREFIX};

/// Bytes read at a time.
pub const CHUNK: usize = 1 << 20;
/// How much of a file's start is looked at for a NUL byte (as GNU grep does).
pub const BINARY_PROBE: usize = 8 << 10;

/// A key found at a place.
#[derive(Debug)]
pub struct Found {
    /// Where: a file path, or `COMMIT:PATH` in a repository's history, or `(staged) PATH`.
    pub place: String,
    /// 1-based line number.
    pub line: u64,
    pub key: ApiKeySecret,
}

/// Why a file or a repository was not scanned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    #[error("{path}: cannot read it: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: binary data (a NUL byte in its first 8 KiB), not scanned")]
    Binary { path: PathBuf },
    #[error("{path}: cannot read the git history: {reason}")]
    Git { path: PathBuf, reason: String },
}

/// An ASCII word character, as `\b` counts them (`[0-9A-Za-z_]`).
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Finds keys in `text`, calling `each(line, key)` for each checksum-valid one in order.
/// `text` is taken as a whole (its start and end are word boundaries).
pub fn find_keys(text: &[u8], mut each: impl FnMut(u64, ApiKeySecret)) {
    let mut lines = LineCounter::default();
    find_in(text, 0, text.len(), true, &mut lines, &mut each);
}

/// Counts newlines up to a position, incrementally.
#[derive(Default)]
struct LineCounter {
    /// Position (in the current buffer) counted up to.
    at: usize,
    /// Newlines before `at`, plus one.
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, buf: &[u8], pos: usize) -> u64 {
        if self.line == 0 {
            self.line = 1;
        }
        self.line += memchr::memchr_iter(b'\n', &buf[self.at..pos]).count() as u64;
        self.at = pos;
        self.line
    }
}

/// Reports keys that start at a position in `from..until` of `buf`; `buf[..from]` is context
/// (a byte before a start) and `buf[until..]` holds at least one byte past a key unless `end`
/// (the text ends with `buf`).
fn find_in(
    buf: &[u8],
    from: usize,
    until: usize,
    end: bool,
    lines: &mut LineCounter,
    each: &mut impl FnMut(u64, ApiKeySecret),
) {
    let finder = memmem::Finder::new(KEY_PREFIX.as_bytes());
    for rel in finder.find_iter(&buf[from..]) {
        let p = from + rel;
        if p >= until {
            break;
        }
        if p > 0 && word(buf[p - 1]) {
            continue;
        }
        let stop = p + KEY_LEN;
        if stop > buf.len() || (stop == buf.len() && !end) {
            continue;
        }
        if !buf[p + KEY_PREFIX.len()..stop]
            .iter()
            .all(u8::is_ascii_alphanumeric)
        {
            continue;
        }
        if stop < buf.len() && word(buf[stop]) {
            continue;
        }
        // ASCII by the checks above.
        let Ok(text) = std::str::from_utf8(&buf[p..stop]) else {
            continue;
        };
        if let Ok(key) = ApiKeySecret::parse(text) {
            each(lines.line_at(buf, p), key);
        }
    }
}

/// Scans `reader` to its end in chunks, calling `each(line, key)`.
///
/// # Errors
/// The reader's error; `Ok(false)` (nothing scanned) for binary data.
pub fn scan_reader(
    reader: impl Read,
    each: impl FnMut(u64, ApiKeySecret),
) -> std::io::Result<bool> {
    scan_chunks(reader, CHUNK, each)
}

/// [`scan_reader`] with chunks of `chunk` bytes (at least 1).
fn scan_chunks(
    mut reader: impl Read,
    chunk: usize,
    mut each: impl FnMut(u64, ApiKeySecret),
) -> std::io::Result<bool> {
    // One byte of context before, a whole key and one byte after must fit past a chunk.
    const KEEP: usize = KEY_LEN + 2;
    let mut buf = vec![0u8; chunk.max(1) + KEEP];
    let mut kept = 0;
    let mut lines = LineCounter::default();
    let mut first = true;
    loop {
        let mut len = kept;
        while len < buf.len() {
            match reader.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if first && memchr::memchr(0, &buf[..len.min(BINARY_PROBE)]).is_some() {
            return Ok(false);
        }
        let end = len < buf.len();
        // Positions at and after `until` are looked at again with the next chunk.
        let until = if end { len } else { len - KEEP + 1 };
        let from = usize::from(!first);
        find_in(&buf[..len], from, until, end, &mut lines, &mut each);
        if end {
            return Ok(true);
        }
        // Carry the byte before `until` (context) and everything after it.
        let carry = until - 1;
        lines.line_at(&buf[..len], carry);
        lines.at = 0;
        buf.copy_within(carry..len, 0);
        kept = len - carry;
        first = false;
    }
}

/// Scans the file at `path` (its own name as the place).
///
/// # Errors
/// [`ScanError::Unreadable`], [`ScanError::Binary`].
pub fn scan_file(path: &Path, each: &mut impl FnMut(Found)) -> Result<(), ScanError> {
    let unreadable = |e: std::io::Error| ScanError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let place = path.display().to_string();
    let text = scan_reader(file, |line, key| {
        each(Found {
            place: place.clone(),
            line,
            key,
        });
    })
    .map_err(unreadable)?;
    if text {
        Ok(())
    } else {
        Err(ScanError::Binary {
            path: path.to_owned(),
        })
    }
}

/// What a scan of paths met besides keys.
#[derive(Debug, Default)]
pub struct Walked {
    /// Files scanned.
    pub files: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Binary files met inside directories (skipped, as ripgrep does).
    pub binary_skipped: u64,
    /// Lines added in git history (or the index) that were read.
    pub git_lines: u64,
    /// Paths named by the caller that were binary, and anything unreadable.
    pub problems: Vec<ScanError>,
}

/// What to scan.
#[derive(Debug, Clone)]
pub enum ScanTarget {
    /// Files and directories; with `history`, also the history of each directory that is
    /// a git repository's top.
    Paths { paths: Vec<PathBuf>, history: bool },
    /// What is staged in the repository at `repo` (a pre-commit hook).
    Staged { repo: PathBuf },
}

/// Scans `target`, handing each key found to `each`.
pub fn scan_target(target: &ScanTarget, each: &mut impl FnMut(Found)) -> Walked {
    match target {
        ScanTarget::Staged { repo } => {
            let mut walked = Walked::default();
            match scan_git(repo, GitScope::Staged, &mut *each) {
                Ok(n) => walked.git_lines = n,
                Err(e) => walked.problems.push(e),
            }
            walked
        }
        ScanTarget::Paths { paths, history } => {
            let mut walked = scan_paths(paths, &mut *each);
            for repo in paths.iter().filter(|p| *history && p.join(".git").exists()) {
                match scan_git(repo, GitScope::History, &mut *each) {
                    Ok(n) => walked.git_lines += n,
                    Err(e) => walked.problems.push(e),
                }
            }
            walked
        }
    }
}

/// Scans each of `paths`: a file, or a directory walked to its depth (symbolic links are not
/// followed; `.git` directories are left to [`scan_git`]). A binary file met while walking
/// is counted and skipped; one named in `paths` is a problem, as is anything unreadable.
pub fn scan_paths(paths: &[PathBuf], each: &mut impl FnMut(Found)) -> Walked {
    let mut walked = Walked::default();
    for root in paths {
        let named_file = root.is_file();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !(e.file_type().is_dir() && e.file_name() == ".git"));
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    walked.problems.push(ScanError::Unreadable {
                        path: e.path().unwrap_or(root.as_path()).to_owned(),
                        reason: e
                            .io_error()
                            .map_or_else(|| e.to_string(), ToString::to_string),
                    });
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let size = entry.metadata().map_or(0, |m| m.len());
            match scan_file(entry.path(), each) {
                Ok(()) => {
                    walked.files += 1;
                    walked.bytes += size;
                }
                Err(ScanError::Binary { .. }) if !named_file => walked.binary_skipped += 1,
                Err(e) => walked.problems.push(e),
            }
        }
    }
    walked
}

/// Which git changes to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitScope {
    /// Every commit reachable from any ref (`git log --all`).
    History,
    /// What is staged for the next commit (`git diff --cached`), for a pre-commit hook.
    Staged,
}

/// Scans the lines that the commits (or the index) of the repository at `repo` added, through
/// the `git` command. A key is reported at the commit that added it (`COMMIT:PATH`, the
/// commit's first 12 hex digits) and its line in that version of the file.
///
/// # Errors
/// [`ScanError::Git`] when `git` is missing, `repo` is not a repository, or git fails.
pub fn scan_git(
    repo: &Path,
    scope: GitScope,
    each: &mut impl FnMut(Found),
) -> Result<u64, ScanError> {
    let fail = |reason: String| ScanError::Git {
        path: repo.to_owned(),
        reason,
    };
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(repo).args(["-c", "core.quotePath=false"]);
    match scope {
        GitScope::History => cmd.args([
            "log",
            "--all",
            "-p",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--format=commit %H",
        ]),
        GitScope::Staged => cmd.args([
            "diff",
            "--cached",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
        ]),
    };
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot run git: {e}")))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(fail("git gave no output".into()));
    };
    let mut diff = DiffReader::new(match scope {
        GitScope::History => None,
        GitScope::Staged => Some("(staged)".to_owned()),
    });
    let read = diff.read(std::io::BufReader::new(stdout), each);
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("git did not finish: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fail(stderr.trim().to_owned()));
    }
    read.map_err(|e| fail(format!("cannot read git's output: {e}")))?;
    Ok(diff.added_lines)
}

/// Reads `git log -p` / `git diff` output (unified, no context) and scans each added line.
struct DiffReader {
    /// The commit (history) or `(staged)`.
    revision: Option<String>,
    path: Option<String>,
    /// Inside a hunk (after `@@`), where a line `+++ x` is an added line `++ x`, not a
    /// file header.
    in_hunk: bool,
    /// The line number in the new file of the next added line.
    next_line: u64,
    added_lines: u64,
}

impl DiffReader {
    fn new(revision: Option<String>) -> DiffReader {
        DiffReader {
            revision,
            path: None,
            in_hunk: false,
            next_line: 0,
            added_lines: 0,
        }
    }

    fn read(
        &mut self,
        mut input: impl BufRead,
        each: &mut impl FnMut(Found),
    ) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            self.line(&line, each);
        }
    }

    fn line(&mut self, line: &[u8], each: &mut impl FnMut(Found)) {
        if let Some(hash) = line.strip_prefix(b"commit ") {
            let hash = String::from_utf8_lossy(hash.trim_ascii());
            self.revision = Some(hash.chars().take(12).collect());
            self.path = None;
            self.in_hunk = false;
        } else if line.starts_with(b"diff --git ") {
            self.path = None;
            self.in_hunk = false;
        } else if let Some(path) = line.strip_prefix(b"+++ ").filter(|_| !self.in_hunk) {
            let path = path.trim_ascii_end();
            // `+++ /dev/null` for a deleted file; `+++ b/PATH` otherwise.
            self.path = path
                .strip_prefix(b"b/")
                .map(|p| String::from_utf8_lossy(p).into_owned());
        } else if let Some(hunk) = line.strip_prefix(b"@@ ") {
            self.next_line = new_start(hunk).unwrap_or(0);
            self.in_hunk = true;
        } else if let (Some(added), Some(path)) = (line.strip_prefix(b"+"), self.path.as_ref()) {
            self.added_lines += 1;
            let at = self.next_line;
            self.next_line += 1;
            let place = match &self.revision {
                Some(rev) if rev.starts_with('(') => format!("{rev} {path}"),
                Some(rev) => format!("{rev}:{path}"),
                None => path.clone(),
            };
            find_keys(added, |_, key| {
                each(Found {
                    place: place.clone(),
                    line: at,
                    key,
                });
            });
        }
    }
}

/// The new file's first line from a hunk header's rest (`-a[,b] +c[,d] @@…`).
fn new_start(hunk: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(hunk).ok()?;
    let plus = text.split(' ').find_map(|w| w.strip_prefix('+'))?;
    plus.split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKeySecret {
        ApiKeySecret::generate().unwrap()
    }

    fn found(text: &[u8]) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        find_keys(text, |line, k| out.push((line, k.expose().to_owned())));
        out
    }

    /// Each row: text around a key, whether the scanner regex (and so the scan) finds it.
    #[test]
    fn boundaries_like_the_scanner_regex() {
        let k = key();
        let k = k.expose();
        let mut wrong_checksum = k.to_owned();
        let last = wrong_checksum.pop().unwrap();
        wrong_checksum.push(if last == 'a' { 'b' } else { 'a' });
        let table: Vec<(String, bool)> = vec![
            (k.to_owned(), true),
            (format!("API_KEY={k}"), true),
            (format!("\"{k}\""), true),
            (format!("Bearer {k}\n"), true),
            (format!("x-{k}-y"), true),
            (format!("é{k}é"), true),
            (format!("a{k}"), false),
            (format!("_{k}"), false),
            (format!("{k}a"), false),
            (format!("{k}_"), false),
            (format!("{k}0"), false),
            (k[..KEY_LEN - 1].to_owned(), false),
            (wrong_checksum, false),
            (k.replace("ksk_", "KSK_"), false),
            (k.replace("ksk_", "ksk-"), false),
            ("ksk_".to_owned(), false),
            (String::new(), false),
        ];
        for (text, expected) in &table {
            let got = found(text.as_bytes());
            assert_eq!(!got.is_empty(), *expected, "{text:?}");
            if *expected {
                assert_eq!(got, vec![(1, k.to_owned())], "{text:?}");
            }
        }
    }

    #[test]
    fn lines_are_counted_from_one() {
        let (a, b) = (key(), key());
        let text = format!(
            "one\n{}\nthree\n\nfive {} {}\n",
            a.expose(),
            b.expose(),
            a.expose()
        );
        let got = found(text.as_bytes());
        assert_eq!(
            got,
            vec![
                (2, a.expose().to_owned()),
                (5, b.expose().to_owned()),
                (5, a.expose().to_owned())
            ]
        );
    }

    /// A key across a chunk boundary, at every offset around it, is found once, on the
    /// right line; the chunked reader agrees with the whole-text scan.
    #[test]
    fn chunk_boundaries_neither_lose_nor_repeat_a_key() {
        let k = key();
        for offset in CHUNK - KEY_LEN - 4..CHUNK + 4 {
            let mut text = vec![b'.'; offset];
            text[offset / 2] = b'\n';
            text.extend_from_slice(k.expose().as_bytes());
            text.extend_from_slice(b"\nafter\n");
            let mut chunked = Vec::new();
            let scanned = scan_reader(&text[..], |line, f| {
                chunked.push((line, f.expose().to_owned()));
            })
            .unwrap();
            assert!(scanned);
            assert_eq!(chunked, vec![(2, k.expose().to_owned())], "offset {offset}");
            assert_eq!(chunked, found(&text), "offset {offset}");
        }
        // Glued to a word character across the boundary: not a key.
        let mut text = vec![b'x'; CHUNK - 2];
        text.extend_from_slice(k.expose().as_bytes());
        assert!(found(&text).is_empty());
        let mut n = 0;
        scan_reader(&text[..], |_, _| n += 1).unwrap();
        assert_eq!(n, 0);
    }

    proptest::proptest! {
        /// Text made of keys, look-alikes and filler, scanned in chunks of any size, gives
        /// what a scan of the whole text gives; a key set off by a separator is always found.
        #[test]
        fn chunked_scans_agree_with_whole_ones(
            parts in proptest::collection::vec((0u8..6, "[a-z_ \n.=-]{0,80}"), 0..24),
            chunk in 1usize..300,
        ) {
            let mut text = String::new();
            let mut set_off = Vec::new();
            for (kind, filler) in &parts {
                let k = key();
                match kind {
                    0 => {
                        text.push(' ');
                        text.push_str(k.expose());
                        text.push('\n');
                        set_off.push(k.expose().to_owned());
                    }
                    1 => text.push_str(k.expose()),
                    2 => text.push_str(&k.expose()[..KEY_LEN - 1]),
                    3 => text.push_str("ksk_"),
                    _ => {}
                }
                text.push_str(filler);
            }
            let whole = found(text.as_bytes());
            let mut chunked = Vec::new();
            let scanned = scan_chunks(text.as_bytes(), chunk, |line, k| {
                chunked.push((line, k.expose().to_owned()));
            })
            .unwrap();
            proptest::prop_assert!(scanned);
            proptest::prop_assert_eq!(&chunked, &whole);
            for k in &set_off {
                proptest::prop_assert!(whole.iter().any(|(_, f)| f == k), "missed a set-off key");
            }
            for (line, k) in &whole {
                let at = text.find(k.as_str()).unwrap();
                proptest::prop_assert_eq!(*line, 1 + text[..at].matches('\n').count() as u64);
            }
        }
    }

    #[test]
    fn binary_data_is_not_scanned() {
        let k = key();
        let mut text = b"\x7fELF\0\0".to_vec();
        text.extend_from_slice(k.expose().as_bytes());
        let mut n = 0;
        assert!(!scan_reader(&text[..], |_, _| n += 1).unwrap());
        assert_eq!(n, 0);
    }

    #[test]
    fn diff_lines_keep_their_commit_path_and_line() {
        let k = key();
        let diff = format!(
            "commit 0123456789abcdef0123456789abcdef01234567\n\
             diff --git a/old.txt b/old.txt\n\
             deleted file mode 100644\n\
             --- a/old.txt\n\
             +++ /dev/null\n\
             @@ -1 +0,0 @@\n\
             -{k}\n\
             diff --git a/src/conf.env b/src/conf.env\n\
             --- a/src/conf.env\n\
             +++ b/src/conf.env\n\
             @@ -3,0 +4,3 @@ context\n\
             +first\n\
             +TOKEN={k}\n\
             +++ {k}\n",
            k = k.expose()
        );
        let mut reader = DiffReader::new(None);
        let mut got = Vec::new();
        reader
            .read(diff.as_bytes(), &mut |f: Found| got.push((f.place, f.line)))
            .unwrap();
        assert_eq!(
            got,
            vec![
                ("0123456789ab:src/conf.env".to_owned(), 5),
                ("0123456789ab:src/conf.env".to_owned(), 6)
            ]
        );
        assert_eq!(reader.added_lines, 3);
    }
}
