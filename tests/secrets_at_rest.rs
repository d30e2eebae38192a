//! No full key and no passphrase at rest: 1,000 keys go through the CLI (several at a time)
//! and the real desktop app (revealed, copied, Done), the forward-auth verifier checks them
//! over HTTP, and then the data directory (database, WAL, SHM, anything else), every log (the
//! CLI runs', the app's, the verifier's), the keyring entries and core files of the still
//! running verifier and app are searched for every key (with and without its `ksk_` prefix,
//! as UTF-8 and as UTF-16) and every passphrase used. None may be found.
//!
//! A core of the app's web process (WebKitWebProcess, the page itself) is searched too, and
//! reported, not asserted: the page shows the key once, as text, by design. Of the app's own
//! core, everything is asserted but anonymous memory outside glibc's heaps (WebKit's own
//! allocator, which keeps freed IPC buffers as they were): that is reported. Every process
//! must run with a core limit of 0, and the verifier and the app, crashed with the limit
//! raised from outside, must write no core file (they are not dumpable).
//!
//! Cores come from gdb's `gcore`. WebKit reserves gigabytes it never touches, so a core of the
//! app is ~7 GB and one of its page ~11 GB; of each memory segment only the pages the process
//! held (per /proc/PID/pagemap, read just before the core) are searched, plus the notes
//! (registers). Each core is deleted once searched.
//!
//! Every hit is reported with its place (file offset; for a core, the address and region:
//! a thread's stack, the heap, other anonymous memory, or a register note), a guess at the kind
//! of buffer from its neighbours, and ~80 bytes of context with every secret masked.
//! `KEYSMITH_AT_REST_KEYS` lowers the number of keys while debugging.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use keysmith_tests::ui::{by_id, click, clipboard, gone, launch, type_into, unlock};
use keysmith_tests::{
    cli_with, descendant_named, gcore, keyring_dump, require_secret_service, start_verifier,
    try_http,
};

/// Every passphrase starts with this marker, so one search finds them all, in any buffer.
const MARK: &str = "Qx7-";
const P_OWNER: &str = "Qx7-olive-owner-at-rest-passphrase";
const P_ADA_INIT: &str = "Qx7-ada-initial-at-rest-passphrase";
const P_ADA: &str = "Qx7-ada-changed-in-the-window";
const P_MAX_INIT: &str = "Qx7-max-initial-at-rest-passphrase";
const P_MAX: &str = "Qx7-max-changed-on-the-terminal";
const PASSPHRASES: [(&str, &str); 5] = [
    ("Olive's passphrase", P_OWNER),
    ("Ada's initial passphrase", P_ADA_INIT),
    ("Ada's changed passphrase", P_ADA),
    ("Max's initial passphrase", P_MAX_INIT),
    ("Max's changed passphrase", P_MAX),
];

/// Keys generated in all; `KEYSMITH_AT_REST_KEYS` lowers it while debugging.
const TOTAL_KEYS: usize = 1000;
const APP_KEYS: usize = 8;
const ROLLS: usize = 10;
const REVOKES: usize = 10;
/// CLI processes at a time (each signs in with Argon2 first).
const WORKERS: usize = 3;

const POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "admin"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "manager"
methods = ["*"]
paths = ["/**"]
"#;

// ---------------------------------------------------------------------------------------
// The search.

struct Secrets {
    keys: Vec<String>,
    /// Key body (the 49 characters after `ksk_`) → index in `keys`.
    bodies: HashMap<Vec<u8>, usize>,
    /// The HTTP Basic credentials sent for a key, base64("u:KEY") → index in `keys`.
    basic: HashMap<Vec<u8>, usize>,
}

const BODY: usize = 49;
/// base64 of "u:ksk_": every Basic credential this test sends starts so.
const BASIC_MARK: &[u8] = b"dTprc2tf";

impl Secrets {
    fn new(keys: Vec<String>) -> Secrets {
        let mut bodies = HashMap::new();
        let mut basic = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            assert!(k.len() == 53 && k.starts_with("ksk_"), "not a key: {k:?}");
            bodies.insert(k.as_bytes()[4..].to_vec(), i);
            basic.insert(basic_credentials(k).into_bytes(), i);
        }
        assert_eq!(bodies.len(), keys.len(), "two keys are the same");
        Secrets {
            keys,
            bodies,
            basic,
        }
    }
}

fn basic_credentials(key: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("u:{key}"))
}

#[derive(Debug, Clone)]
struct Hit {
    offset: usize,
    len: usize,
    /// "key #12" or a passphrase's label.
    secret: String,
    /// "full key", "key body", "passphrase", "Basic credentials"; and UTF-8 or UTF-16.
    form: String,
    wide: bool,
}

/// Every place in `bytes` that holds a key body, a full key, a passphrase or the Basic
/// credentials of a key, as UTF-8 and as UTF-16LE.
fn scan(bytes: &[u8], s: &Secrets) -> Vec<Hit> {
    let mut hits = Vec::new();
    // Key bodies: runs of 49+ letters and digits, looked up window by window. Such runs are
    // rare in memory, so this is one fast pass however many keys there are.
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        if !bytes[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i - start >= BODY {
            for at in start..=i - BODY {
                if let Some(&k) = s.bodies.get(&bytes[at..at + BODY]) {
                    let full = at >= 4 && &bytes[at - 4..at] == b"ksk_";
                    hits.push(Hit {
                        offset: if full { at - 4 } else { at },
                        len: if full { BODY + 4 } else { BODY },
                        secret: format!("key #{k}"),
                        form: if full { "full key" } else { "key body" }.into(),
                        wide: false,
                    });
                }
            }
        }
    }
    // The same in UTF-16LE (WebKit keeps strings so), at both alignments.
    for parity in 0..2 {
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = parity;
        let mut i = parity;
        let flush = |run: &mut Vec<u8>, run_start: usize, hits: &mut Vec<Hit>| {
            if run.len() >= BODY {
                for j in 0..=run.len() - BODY {
                    if let Some(&k) = s.bodies.get(&run[j..j + BODY]) {
                        let at = run_start + 2 * j;
                        let full = at >= 8 && &bytes[at - 8..at] == b"k\0s\0k\0_\0";
                        hits.push(Hit {
                            offset: if full { at - 8 } else { at },
                            len: 2 * if full { BODY + 4 } else { BODY },
                            secret: format!("key #{k}"),
                            form: if full { "full key" } else { "key body" }.into(),
                            wide: true,
                        });
                    }
                }
            }
            run.clear();
        };
        while i + 1 < n {
            if bytes[i + 1] == 0 && bytes[i].is_ascii_alphanumeric() {
                if run.is_empty() {
                    run_start = i;
                }
                run.push(bytes[i]);
            } else if !run.is_empty() {
                flush(&mut run, run_start, &mut hits);
            }
            i += 2;
        }
        flush(&mut run, run_start, &mut hits);
    }
    // Passphrases, found by their common marker.
    for wide in [false, true] {
        let enc = |t: &str| -> Vec<u8> {
            if wide {
                t.encode_utf16().flat_map(u16::to_le_bytes).collect()
            } else {
                t.as_bytes().to_vec()
            }
        };
        let mark = enc(MARK);
        for at in find_all(bytes, &mark) {
            for (label, p) in PASSPHRASES {
                let p = enc(p);
                if bytes[at..].starts_with(&p) {
                    hits.push(Hit {
                        offset: at,
                        len: p.len(),
                        secret: label.into(),
                        form: "passphrase".into(),
                        wide,
                    });
                }
            }
        }
    }
    // The Basic credentials as sent (a full key, only encoded).
    for at in find_all(bytes, BASIC_MARK) {
        let end = (at + 76).min(n);
        if let Some(&k) = s.basic.get(&bytes[at..end]) {
            hits.push(Hit {
                offset: at,
                len: 76,
                secret: format!("key #{k}"),
                form: "HTTP Basic credentials (base64 of the key)".into(),
                wide: false,
            });
        }
    }
    hits.sort_by_key(|h| h.offset);
    hits
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(p) = hay[from..].iter().position(|&b| b == needle[0]) {
        let at = from + p;
        if hay[at..].starts_with(needle) {
            found.push(at);
        }
        from = at + 1;
    }
    found
}

/// Printable text of `bytes[from..to]`: for UTF-16 the high bytes dropped; anything not
/// printable as '.'; any other run of 16+ letters and digits (another key, or part of one)
/// masked, so the report shows no secret.
fn render(bytes: &[u8], from: usize, to: usize, wide: bool) -> String {
    let slice = &bytes[from.min(bytes.len())..to.min(bytes.len())];
    let narrow: Vec<u8> = if wide {
        slice
            .chunks(2)
            .map(|c| {
                if c.len() == 2 && c[1] == 0 {
                    c[0]
                } else {
                    b'.'
                }
            })
            .collect()
    } else {
        slice.to_vec()
    };
    let mut out = String::new();
    let mut i = 0;
    while i < narrow.len() {
        let start = i;
        while i < narrow.len() && narrow[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i - start >= 16 {
            out.push_str(&format!("<{} alnum>", i - start));
        } else {
            out.extend(narrow[start..i].iter().map(|&b| b as char));
        }
        if i < narrow.len() && !narrow[i].is_ascii_alphanumeric() {
            let b = narrow[i];
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
            i += 1;
        }
    }
    out
}

/// ~40 bytes (characters, for UTF-16) either side of the hit, the secret itself masked.
fn context(bytes: &[u8], h: &Hit) -> String {
    let unit = if h.wide { 2 } else { 1 };
    let before = h.offset.saturating_sub(40 * unit);
    let after = h.offset + h.len;
    format!(
        "{}<{}>{}",
        render(bytes, before, h.offset, h.wide),
        h.secret,
        render(bytes, after, after + 40 * unit, h.wide)
    )
}

/// A guess at the kind of buffer, from words within 300 bytes of the hit.
fn kind(bytes: &[u8], h: &Hit) -> &'static str {
    let unit = if h.wide { 2 } else { 1 };
    let near = render(
        bytes,
        h.offset.saturating_sub(300 * unit),
        h.offset + h.len + 300 * unit,
        h.wide,
    )
    .to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| near.contains(w));
    // SHA-256's initial state (H0 = 0x6a09e667, little-endian) next to the key: a hasher that
    // has taken the key into its block buffer and processed no block yet, i.e. a plain SHA-256
    // of the key (an HMAC's inner hasher would have processed its key block first).
    let around = &bytes[h.offset.saturating_sub(48)..(h.offset + h.len + 48).min(bytes.len())];
    if !h.wide && around.windows(4).any(|w| w == [0x67, 0xe6, 0x09, 0x6a]) {
        return "SHA-256 hasher state, the key in its block buffer (a plain SHA-256 of the key)";
    }
    // The key inside a JSON string inside JSON (`"\"ksk_…\""`): a WebDriver reply carrying
    // the text this test read from the page, relayed by WebKit in the app's process.
    let escaped = |at: usize| at >= 2 && &bytes[at - 2..at] == b"\\\"";
    if !h.wide && (escaped(h.offset) || (h.offset >= 3 && escaped(h.offset - 3))) {
        return "WebDriver reply (this test reading the key from the page)";
    }
    if has(&[
        "bearer ",
        "x-api-key",
        "authorization",
        "basic ",
        "x-forwarded",
        "http/1.1",
    ]) {
        "HTTP request (headers as received)"
    } else if has(&["\"secret\"", "revealedkey", "\"summary\"", "\"key\":{"]) {
        "IPC JSON (the KeyReveal response)"
    } else if has(&["passphrase\"", "\"current", "\"new"]) {
        "IPC JSON (a sign-in or passphrase request)"
    } else if has(&["__tauri", "invoke", "ipc://", "tauri://"]) {
        "Tauri IPC / page script"
    } else if has(&["keysmith_passphrase=", "keysmith_new_passphrase="]) {
        "environment block"
    } else {
        "no recognisable neighbours"
    }
}

/// A hit as reported: where, what, the guessed buffer and the masked neighbours.
struct Finding {
    /// Offset in the source.
    offset: u64,
    place: String,
    secret: String,
    form: String,
    kind: &'static str,
    context: String,
}

/// The hits in `bytes`, which start at offset `base` of their source; `place` names where an
/// offset lies.
fn findings(bytes: &[u8], base: u64, s: &Secrets, place: &dyn Fn(u64) -> String) -> Vec<Finding> {
    scan(bytes, s)
        .into_iter()
        .map(|h| Finding {
            offset: base + h.offset as u64,
            place: place(base + h.offset as u64),
            secret: h.secret.clone(),
            form: format!("{} ({})", h.form, if h.wide { "UTF-16" } else { "UTF-8" }),
            kind: kind(bytes, &h),
            context: context(bytes, &h),
        })
        .collect()
}

/// The memory regions of a process (start, end, name) from /proc/PID/maps.
fn maps(pid: u32) -> Vec<(u64, u64, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let name = f.nth(4).map_or("[anonymous]", |n| n);
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
                name.to_owned(),
            ))
        })
        .collect()
}

/// Where a hit in anonymous memory that is not one of glibc's heaps is said to lie: WebKit's
/// own allocator (bmalloc/libpas) in the app, or a large mapping. Freed blocks of glibc's
/// heaps are overwritten in the app (`glibc.malloc.perturb`) and Rust's are zeroized; these
/// are not.
const OUTSIDE_GLIBC: &str = "anonymous memory outside glibc's heaps";

/// glibc's heaps in the process `pid`: `[heap]` (the main arena) and every other arena's
/// heaps. Those are mappings aligned to 64 MiB (`HEAP_MAX_SIZE`) that begin with a
/// `heap_info` whose first field points at the arena's `malloc_state`, which lies just after
/// the `heap_info` of the arena's first heap (glibc malloc/arena.c). Read from /proc/PID/mem.
fn glibc_heaps(pid: u32, maps: &[(u64, u64, String)]) -> Vec<(u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    const ALIGN: u64 = 64 << 20;
    let Ok(mut mem) = std::fs::File::open(format!("/proc/{pid}/mem")) else {
        return Vec::new();
    };
    let aligned: Vec<(u64, u64, u64)> = maps
        .iter()
        .filter(|(a, _, name)| name == "[anonymous]" && a % ALIGN == 0)
        .filter_map(|&(a, b, _)| {
            let mut word = [0u8; 8];
            mem.seek(SeekFrom::Start(a)).ok()?;
            mem.read_exact(&mut word).ok()?;
            Some((a, b, u64::from_le_bytes(word)))
        })
        .collect();
    let mut heaps: Vec<(u64, u64)> = aligned
        .iter()
        .filter(|&&(_, _, arena)| {
            aligned
                .iter()
                .any(|&(first, _, _)| arena > first && arena - first < 0x100)
        })
        .map(|&(a, b, _)| (a, b))
        .collect();
    heaps.extend(
        maps.iter()
            .filter(|(_, _, name)| name == "[heap]")
            .map(|&(a, b, _)| (a, b)),
    );
    heaps
}

const PAGE: u64 = 4096;
/// Longer than any secret searched, in any encoding: chunks of a core overlap by this much.
const OVERLAP: u64 = 256;
const CHUNK: u64 = 64 << 20;

/// A core file's segments: (type, file offset, virtual address, size in the file).
fn core_segments(core: &mut std::fs::File) -> std::io::Result<Vec<(u32, u64, u64, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = [0u8; 64];
    core.seek(SeekFrom::Start(0))?;
    core.read_exact(&mut head)?;
    if &head[..4] != b"\x7fELF" || head[4] != 2 {
        return Err(std::io::Error::other("not a 64-bit ELF core"));
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let phoff = u64_at(&head, 0x20);
    let (size, count) = (
        usize::from(u16_at(&head, 0x36)),
        usize::from(u16_at(&head, 0x38)),
    );
    let mut table = vec![0u8; size * count];
    core.seek(SeekFrom::Start(phoff))?;
    core.read_exact(&mut table)?;
    Ok((0..count)
        .map(|i| &table[i * size..])
        .map(|p| (u32_at(p, 0), u64_at(p, 8), u64_at(p, 16), u64_at(p, 32)))
        .filter(|&(_, _, _, filesz)| filesz > 0)
        .collect())
}

/// The address ranges the process `pid` holds in memory (or swap) now, from
/// /proc/PID/pagemap. Read before the core is taken: gcore reads every page, which maps the
/// shared zero page into each one never touched. The rest of a core's memory is such pages
/// (zeros) and file contents never read: nothing the process put there.
fn resident_ranges(pid: u32, maps: &[(u64, u64, String)]) -> Option<Vec<(u64, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).ok()?;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut entries = Vec::new();
    for &(start, end, _) in maps {
        // In slices of 1 GiB of address space (2 MiB of entries) at a time; a mapping whose
        // entries cannot be read ([vsyscall]) counts as resident.
        let mut at = start;
        while at < end {
            let upto = at.saturating_add(1 << 30).min(end);
            entries.resize(usize::try_from((upto - at) / PAGE * 8).ok()?, 0);
            let read = pagemap
                .seek(SeekFrom::Start(at / PAGE * 8))
                .and_then(|_| pagemap.read_exact(&mut entries));
            for (i, e) in entries.chunks(8).enumerate() {
                let e = u64::from_le_bytes(e.try_into().unwrap());
                // Bit 63: present in RAM; bit 62: swapped out.
                if read.is_err() || e & (3 << 62) != 0 {
                    let page = at + i as u64 * PAGE;
                    match ranges.last_mut() {
                        Some((_, last_end)) if *last_end == page => *last_end += PAGE,
                        _ => ranges.push((page, page + PAGE)),
                    }
                }
            }
            at = upto;
        }
    }
    Some(ranges)
}

/// The notes of a core (what each holds, for which thread): (start, end offset, description);
/// and each thread's stack pointer, with the thread's name.
type Notes = (Vec<(u64, u64, String)>, Vec<(u64, String)>);

fn core_notes(
    core: &mut std::fs::File,
    segments: &[(u32, u64, u64, u64)],
    threads: &HashMap<u32, String>,
) -> std::io::Result<Notes> {
    use std::io::{Read, Seek, SeekFrom};
    let mut notes = Vec::new();
    let mut stacks = Vec::new();
    for &(_, offset, _, size) in segments.iter().filter(|s| s.0 == 4) {
        let mut raw = vec![0u8; usize::try_from(size).unwrap()];
        core.seek(SeekFrom::Start(offset))?;
        core.read_exact(&mut raw)?;
        let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
        let (mut at, mut thread) = (0, String::from("?"));
        while at + 12 <= raw.len() {
            let (name, desc, kind) = (u32_at(at) as usize, u32_at(at + 4) as usize, u32_at(at + 8));
            let start = at + 12 + name.div_ceil(4) * 4;
            let end = (start + desc).min(raw.len());
            // NT_PRSTATUS opens each thread's notes; pr_pid is at byte 32 of it.
            if kind == 1 && desc >= 36 {
                let lwp = u32_at(start + 32);
                thread = format!("{lwp} ({})", threads.get(&lwp).map_or("?", String::as_str));
                // x86-64: pr_reg starts at byte 112; rsp is its 20th register.
                if desc >= 112 + 20 * 8 {
                    let rsp = u64::from(u32_at(start + 264)) | u64::from(u32_at(start + 268)) << 32;
                    stacks.push((rsp, thread.clone()));
                }
            }
            let what = match kind {
                1 => "general registers",
                2 => "SSE registers (NT_PRFPREG)",
                0x202 => "SSE/AVX registers (NT_X86_XSTATE)",
                3 => "process info",
                6 => "auxiliary vector",
                0x4649_4c45 => "mapped file names",
                0x5349_4749 => "signal info",
                _ => "another note",
            };
            notes.push((
                offset + start as u64,
                offset + end as u64,
                format!("notes, {what} of thread {thread}"),
            ));
            at = start + desc.div_ceil(4) * 4;
        }
    }
    Ok((notes, stacks))
}

/// The names of the threads of `pid`, by thread id.
fn thread_names(pid: u32) -> HashMap<u32, String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let lwp = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            Some((lwp, comm.trim().to_owned()))
        })
        .collect()
}

/// Searches a core file: its notes, and of each memory segment the `resident` pages (all of
/// it without them). Returns the hits and the bytes searched.
fn scan_core(
    path: &Path,
    resident: Option<&[(u64, u64)]>,
    maps: &[(u64, u64, String)],
    heaps: &[(u64, u64)],
    threads: &HashMap<u32, String>,
    s: &Secrets,
) -> std::io::Result<(Vec<Finding>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut core = std::fs::File::open(path)?;
    let segments = core_segments(&mut core)?;
    let (notes, stacks) = core_notes(&mut core, &segments, threads)?;
    let place = |offset: u64| -> String {
        if let Some((_, _, what)) = notes.iter().find(|(a, b, _)| offset >= *a && offset < *b) {
            return format!("core offset {offset:#x}: {what}");
        }
        match segments
            .iter()
            .find(|&&(t, o, _, size)| t == 1 && offset >= o && offset < o + size)
        {
            Some(&(_, o, vaddr, _)) => {
                let addr = vaddr + (offset - o);
                let region = maps.iter().find(|(a, b, _)| addr >= *a && addr < *b);
                let name = match region {
                    None => "?".to_owned(),
                    // The mapping that holds a thread's stack pointer is that thread's stack.
                    Some((a, b, _)) => match stacks.iter().find(|(sp, _)| sp >= a && sp < b) {
                        Some((_, thread)) => format!("the stack of thread {thread}"),
                        None if heaps.iter().any(|(a, b)| addr >= *a && addr < *b) => {
                            "a glibc malloc heap".to_owned()
                        }
                        None => match region.map(|r| r.2.as_str()) {
                            Some("[anonymous]") => OUTSIDE_GLIBC.to_owned(),
                            other => other.unwrap_or("?").to_owned(),
                        },
                    },
                };
                format!("core offset {offset:#x} = address {addr:#x} in {name}")
            }
            None => {
                let kind = segments
                    .iter()
                    .find(|&&(_, o, _, size)| offset >= o && offset < o + size)
                    .map_or("no segment".to_owned(), |&(t, ..)| match t {
                        4 => "notes: registers, auxv, file names".to_owned(),
                        t => format!("segment type {t:#x}"),
                    });
                format!("core offset {offset:#x} ({kind})")
            }
        }
    };
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &(kind, offset, vaddr, size) in &segments {
        match (kind, resident) {
            // PT_LOAD: the pages that were resident.
            (1, Some(resident)) => {
                for &(a, b) in resident {
                    let (from, to) = (a.max(vaddr), b.min(vaddr + size));
                    if from < to {
                        ranges.push((offset + (from - vaddr), to - from));
                    }
                }
            }
            // Notes, or no page map: all of it.
            _ => ranges.push((offset, size)),
        }
    }
    let mut found = Vec::new();
    let mut searched = 0;
    let mut buf = Vec::new();
    for (start, len) in ranges {
        let mut at = start;
        while at < start + len {
            let end = (at + CHUNK + OVERLAP).min(start + len);
            buf.resize(usize::try_from(end - at).unwrap(), 0);
            core.seek(SeekFrom::Start(at))?;
            core.read_exact(&mut buf)?;
            // A hit starting in the overlap belongs to the next chunk.
            let last = end == start + len;
            found.extend(
                findings(&buf, at, s, &place)
                    .into_iter()
                    .filter(|f| last || f.offset < at + CHUNK),
            );
            searched += end - at;
            at += CHUNK;
        }
    }
    Ok((found, searched))
}

/// Prints the findings of one source and returns a one-line summary if there were any.
fn report(label: &str, asserted: bool, searched: usize, found: &[Finding]) -> Option<String> {
    if found.is_empty() {
        println!("clean: {label} ({searched} bytes searched)");
        return None;
    }
    let mut secrets = BTreeMap::new();
    let mut forms: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in found {
        *secrets.entry(f.secret.as_str()).or_insert(0) += 1;
        *forms.entry(f.form.as_str()).or_insert(0) += 1;
        *kinds.entry(f.kind).or_insert(0) += 1;
    }
    let keys = secrets.keys().filter(|k| k.starts_with("key #")).count();
    let passphrases: Vec<&&str> = secrets.keys().filter(|k| !k.starts_with("key #")).collect();
    let summary = format!(
        "{label}: {} hits — {keys} distinct keys, passphrases {passphrases:?}; forms {forms:?}; \
         buffers {kinds:?}",
        found.len()
    );
    println!(
        "\n{} {summary} ({searched} bytes searched)",
        if asserted {
            "FOUND"
        } else {
            "found (report only)"
        }
    );
    // A few examples of each form and buffer, with their neighbours.
    let mut shown: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for f in found {
        let n = shown.entry((f.form.as_str(), f.kind)).or_insert(0);
        *n += 1;
        if *n <= 3 {
            println!("  {}: {} — {}\n    {}", f.place, f.form, f.kind, f.context);
        }
    }
    asserted.then_some(summary)
}

// ---------------------------------------------------------------------------------------
// Producing the keys.

/// Runs the CLI with `passphrase`, debug logs on; keeps its stderr in `logs`.
fn run(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    logs: &Mutex<Vec<(String, Vec<u8>)>>,
) -> std::process::Output {
    let mut all = vec![("KEYSMITH_LOG", "debug")];
    all.extend_from_slice(env);
    let o = cli_with(dir, args, None, &all);
    logs.lock()
        .unwrap()
        .push((format!("keysmith {}", args.join(" ")), o.stderr.clone()));
    o
}

fn ok(o: &std::process::Output, what: &str) -> String {
    // The debug log is long: its last lines hold the error.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    assert!(
        o.status.success(),
        "{what} exited with {}: …{}",
        o.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The id in "… (id ID) …" on stderr of `keys create` and `keys roll`.
fn id_in(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let start = s.find("(id ").expect("an id on stderr") + 4;
    let end = s[start..].find(')').unwrap() + start;
    s[start..end].to_owned()
}

/// One CLI run to do, returning what it produced.
type Job<'a, T> = Box<dyn Fn() -> T + Send + Sync + 'a>;

/// Runs `jobs` on `WORKERS` threads, and returns what each produced, in order.
fn in_parallel<T: Send>(jobs: Vec<Job<'_, T>>) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let r = job();
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, v)| v).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_and_no_passphrase_at_rest() {
    require_secret_service();
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "no DISPLAY: run through scripts/with-session.sh --display"
    );
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let cores = work.path().join("cores");
    std::fs::create_dir_all(&cores).unwrap();
    let logs: Mutex<Vec<(String, Vec<u8>)>> = Mutex::new(Vec::new());
    let as_ = |p: &'static str| [("KEYSMITH_PASSPHRASE", p)];

    // The team: Olive (Owner), Ada (Admin, changes her passphrase in the window), Max
    // (Manager, changes his on the command line).
    ok(
        &run(&dir, &["init", "--owner", "Olive"], &as_(P_OWNER), &logs),
        "init",
    );
    for (name, role, initial) in [("Ada", "admin", P_ADA_INIT), ("Max", "manager", P_MAX_INIT)] {
        ok(
            &run(
                &dir,
                &["--as", "Olive", "members", "add", name, "--role", role],
                &[
                    ("KEYSMITH_PASSPHRASE", P_OWNER),
                    ("KEYSMITH_NEW_PASSPHRASE", initial),
                ],
                &logs,
            ),
            "members add",
        );
    }
    ok(
        &run(
            &dir,
            &["--as", "Max", "passphrase"],
            &[
                ("KEYSMITH_PASSPHRASE", P_MAX_INIT),
                ("KEYSMITH_NEW_PASSPHRASE", P_MAX),
            ],
            &logs,
        ),
        "passphrase",
    );

    // The window: Ada's first sign-in replaces her initial passphrase; she generates keys
    // (each revealed, copied, Done), locks and signs in again. The app stays open.
    let app_log = work.path().join("app.log");
    let (tauri_driver, d) = launch(
        &[
            ("KEYSMITH_DATA_DIR", dir.as_os_str()),
            ("KEYSMITH_LOG", OsStr::new("debug")),
            ("KEYSMITH_CLIPBOARD_CLEAR_SECS", OsStr::new("3")),
        ],
        &app_log,
    )
    .await;
    unlock(&d, "Ada", P_ADA_INIT).await;
    type_into(&d, "change-current", P_ADA_INIT).await;
    type_into(&d, "change-new", P_ADA).await;
    type_into(&d, "change-new2", P_ADA).await;
    click(&d, "change-submit").await;
    by_id(&d, "signed-in-as").await;
    let mut keys: Vec<String> = Vec::new();
    for i in 0..APP_KEYS {
        click(&d, "create-key").await;
        type_into(&d, "key-name", &format!("window key {i}")).await;
        click(&d, "generate-key").await;
        // The key is read as a person takes it, from the clipboard: reading the page's text
        // over WebDriver would leave copies of our own making in the app's memory.
        by_id(&d, "revealed-key").await;
        click(&d, "copy-key").await;
        by_id(&d, "copy-note").await;
        let key = clipboard().expect("the copied key is on the clipboard");
        assert!(key.starts_with("ksk_"), "the clipboard holds no key");
        keys.push(key);
        click(&d, "reveal-done").await;
        gone(&d, "reveal-dialog").await;
    }
    click(&d, "lock-button").await;
    unlock(&d, "Ada", P_ADA).await;
    by_id(&d, "keys-table").await;
    let app_done = started.elapsed();

    // The command line: the rest of the keys, WORKERS at a time, by the three members.
    let total = std::env::var("KEYSMITH_AT_REST_KEYS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(TOTAL_KEYS)
        .max(APP_KEYS + ROLLS + 40);
    let creates = total - APP_KEYS - ROLLS;
    let dir_ref = &dir;
    let logs_ref = &logs;
    let jobs: Vec<Job<(String, String, &str)>> = (0..creates)
        .map(|i| {
            let (who, pass) = match i % 10 {
                0..=5 => ("Olive", P_OWNER),
                6..=8 => ("Max", P_MAX),
                _ => ("Ada", P_ADA),
            };
            Box::new(move || {
                let name = format!("cli key {i}");
                let o = run(
                    dir_ref,
                    &["--as", who, "keys", "create", "--name", &name],
                    &[("KEYSMITH_PASSPHRASE", pass)],
                    logs_ref,
                );
                (ok(&o, &name), id_in(&o.stderr), who)
            }) as Job<_>
        })
        .collect();
    let created = in_parallel(jobs);
    keys.extend(created.iter().map(|(k, _, _)| k.clone()));
    // Rolls (a replacement shown once) and revokes, on the Owner's keys.
    let olive: Vec<&(String, String, &str)> = created.iter().filter(|c| c.2 == "Olive").collect();
    let mut revoked = Vec::new();
    let mut jobs: Vec<Job<Option<String>>> = Vec::new();
    for (i, (_, id, _)) in olive.iter().take(ROLLS + REVOKES).enumerate() {
        let id = id.clone();
        if i < ROLLS {
            jobs.push(Box::new(move || {
                let o = run(
                    dir_ref,
                    &["--as", "Olive", "keys", "roll", &id, "--grace", "1h"],
                    &[("KEYSMITH_PASSPHRASE", P_OWNER)],
                    logs_ref,
                );
                Some(ok(&o, "keys roll"))
            }));
        } else {
            revoked.push(olive[i].0.clone());
            jobs.push(Box::new(move || {
                let o = run(
                    dir_ref,
                    &[
                        "--as",
                        "Olive",
                        "keys",
                        "revoke",
                        &id,
                        "--confirm",
                        "REVOKE",
                    ],
                    &[("KEYSMITH_PASSPHRASE", P_OWNER)],
                    logs_ref,
                );
                ok(&o, "keys revoke");
                None
            }));
        }
    }
    keys.extend(in_parallel(jobs).into_iter().flatten());
    assert_eq!(keys.len(), total);
    let cli_done = started.elapsed();

    // The verifier checks every key over HTTP, the key sent in each of the three ways.
    let policy = work.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let verifier_log = work.path().join("verifier.log");
    let (verifier, port) = start_verifier(
        &dir,
        &policy,
        &["--flush-secs", "1"],
        &[("KEYSMITH_LOG", "debug")],
        Stdio::from(std::fs::File::create(&verifier_log).unwrap()),
    );
    let mut wrong = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let bearer = format!("Bearer {key}");
        let basic = format!("Basic {}", basic_credentials(key));
        let auth = match i % 3 {
            0 => ("Authorization", bearer.as_str()),
            1 => ("Authorization", basic.as_str()),
            _ => ("X-Api-Key", key.as_str()),
        };
        let uri = format!("/v1/reports/{i}");
        let r = try_http(
            port,
            "GET",
            "/auth",
            &[
                auth,
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", &uri),
            ],
        );
        let want = if revoked.contains(key) { 401 } else { 204 };
        match r {
            Ok(r) if r.status == want => {}
            other => wrong.push(format!(
                "key #{i}: {:?}, expected {want}",
                other.map(|r| r.status)
            )),
        }
    }
    assert!(wrong.is_empty(), "the verifier answered wrongly: {wrong:?}");
    // Let a last-used flush run (every second) before the cores are taken.
    std::thread::sleep(Duration::from_millis(2500));
    let http_done = started.elapsed();

    // Core files of the running processes, each searched (and deleted) while the process
    // still runs: /proc/PID/pagemap tells which pages it holds in memory.
    let secrets = Secrets::new(keys);
    let mut found = Vec::new();
    let mut core_problems = Vec::new();
    let app_pid = descendant_named(tauri_driver.pid(), "keysmith-app");
    let web_pid = app_pid.and_then(|p| descendant_named(p, "WebKitWebProcess"));
    // What is asserted of each core: the verifier, all of it; the app, everything but the
    // anonymous memory outside glibc's heaps (WebKit's allocator keeps freed IPC buffers of
    // the one-time display and the sign-in as they were), which is reported; the page (it
    // shows the key as text, by design), reported.
    for (label, pid, asserted) in [
        (
            "keysmith serve-verifier",
            Some(verifier.0.id()),
            Asserted::All,
        ),
        ("keysmith-app", app_pid, Asserted::InsideGlibc),
        (
            "WebKitWebProcess (the app's page)",
            web_pid,
            Asserted::Nothing,
        ),
    ] {
        let Some(pid) = pid else {
            core_problems.push(format!("{label}: process not found"));
            continue;
        };
        // Every process that may hold a secret, the page included, runs with no core file.
        let limit = core_limit(pid);
        if limit.as_ref().map(|l| l.0.as_str()) != Some("0") {
            core_problems.push(format!(
                "{label}: core file size limit (soft, hard) {limit:?}, expected soft 0"
            ));
        }
        let layout = maps(pid);
        let heaps = glibc_heaps(pid, &layout);
        println!(
            "{label}: {} glibc heaps, {} MB mapped",
            heaps.len(),
            heaps.iter().map(|(a, b)| b - a).sum::<u64>() >> 20
        );
        let resident = resident_ranges(pid, &layout);
        let threads = thread_names(pid);
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("RssAnon:"))
            .map_or(String::new(), |l| {
                l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
            });
        if resident.is_none() {
            println!("{label}: /proc/{pid}/pagemap unreadable: its whole core is searched");
        }
        let t = Instant::now();
        let path = match gcore(pid, &cores, &label.replace(' ', "_")) {
            Ok(path) => path,
            Err(e) => {
                core_problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let taken = t.elapsed();
        match scan_core(
            &path,
            resident.as_deref(),
            &layout,
            &heaps,
            &threads,
            &secrets,
        ) {
            Ok((hits, searched)) => {
                println!(
                    "core of {label} (pid {pid}, RssAnon {rss}): {} MB written in {:.1} s; the \
                     {} MB it held in memory searched in {:.1} s",
                    size >> 20,
                    taken.as_secs_f64(),
                    searched >> 20,
                    (t.elapsed() - taken).as_secs_f64()
                );
                let searched = usize::try_from(searched).unwrap();
                if asserted == Asserted::InsideGlibc {
                    let (outside, inside): (Vec<Finding>, Vec<Finding>) = hits
                        .into_iter()
                        .partition(|f| f.place.contains(OUTSIDE_GLIBC));
                    found.extend(report(
                        &format!("core of {label}, all but {OUTSIDE_GLIBC}"),
                        true,
                        searched,
                        &inside,
                    ));
                    found.extend(report(
                        &format!("core of {label}, {OUTSIDE_GLIBC}"),
                        false,
                        searched,
                        &outside,
                    ));
                } else {
                    found.extend(report(
                        &format!("core of {label}"),
                        asserted == Asserted::All,
                        searched,
                        &hits,
                    ));
                }
            }
            Err(e) => core_problems.push(format!("{label}: cannot read its core: {e}")),
        }
        std::fs::remove_file(&path).unwrap();
    }
    // A crash writes no core, even with the limit raised from outside (as root may, or the
    // same account): the verifier and the app are not dumpable.
    for (label, pid) in [
        ("keysmith serve-verifier", Some(verifier.0.id())),
        ("keysmith-app", app_pid),
    ] {
        let Some(pid) = pid else { continue };
        match crash_with_cores_allowed(pid) {
            Ok(cores) if cores.is_empty() => {
                println!("{label} crashed (SIGABRT, core limit raised): no core file written");
            }
            Ok(cores) => {
                for c in &cores {
                    let _ = std::fs::remove_file(c);
                }
                core_problems.push(format!("{label} crashed and left core files: {cores:?}"));
            }
            Err(e) => core_problems.push(format!("{label}: crash check not possible: {e}")),
        }
    }
    let cores_done = started.elapsed();
    drop(d);
    drop(tauri_driver);
    drop(verifier);

    // Everything at rest: the data directory, the logs, the keyring.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in walk(&dir) {
        files.push((
            format!("data directory: {}", entry.display()),
            std::fs::read(&entry).unwrap(),
        ));
    }
    for (label, path) in [("app log", &app_log), ("verifier log", &verifier_log)] {
        files.push((
            format!("{label} ({})", path.display()),
            std::fs::read(path).unwrap(),
        ));
    }
    let cli_logs = logs.into_inner().unwrap();
    let mut all_cli = Vec::new();
    for (cmd, stderr) in &cli_logs {
        all_cli.extend_from_slice(format!("\n==> {cmd}\n").as_bytes());
        all_cli.extend_from_slice(stderr);
    }
    files.push((
        format!("stderr of the {} CLI runs", cli_logs.len()),
        all_cli,
    ));
    let dump = keyring_dump();
    assert!(
        dump.contains("pepper/"),
        "the keyring holds no pepper: {dump}"
    );
    files.push((
        "keyring entries (secret-tool search --all)".into(),
        dump.into_bytes(),
    ));
    for (label, bytes) in &files {
        let hits = findings(bytes, 0, &secrets, &|o| format!("offset {o:#x}"));
        found.extend(report(label, true, bytes.len(), &hits));
    }
    println!(
        "\nsecrets at rest: {} keys ({} in the app), {} passphrases; app done at {:.0} s, CLI at \
         {:.0} s, HTTP at {:.0} s, cores at {:.0} s, scan done at {:.0} s",
        secrets.keys.len(),
        APP_KEYS,
        PASSPHRASES.len(),
        app_done.as_secs_f64(),
        cli_done.as_secs_f64(),
        http_done.as_secs_f64(),
        cores_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for p in &core_problems {
        println!("no core: {p}");
    }
    assert!(
        found.is_empty() && core_problems.is_empty(),
        "secrets found at rest:\n  {}\ncores not taken: {core_problems:?}",
        found.join("\n  ")
    );
}

/// Which hits in a process's core fail the test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asserted {
    All,
    /// All but those in anonymous memory outside glibc's heaps (reported).
    InsideGlibc,
    Nothing,
}

/// The core file size limit of `pid`, (soft, hard), as /proc/PID/limits shows it.
fn core_limit(pid: u32) -> Option<(String, String)> {
    const ROW: &str = "Max core file size";
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with(ROW))?;
    let mut fields = line[ROW.len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Raises `pid`'s core limit from outside (as a person debugging it might), crashes it
/// (SIGABRT: Rust handles SIGSEGV itself, to report stack overflows), waits until it has
/// died, and returns the core files that appeared where the kernel's core_pattern puts them
/// (a path, absolute or relative to the process's working directory). Cores handed to a
/// program (`|…`) cannot be seen here: an error says so.
fn crash_with_cores_allowed(pid: u32) -> Result<Vec<PathBuf>, String> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .map_err(|e| format!("cannot read core_pattern: {e}"))?;
    let pattern = pattern.trim();
    if pattern.starts_with('|') {
        return Err(format!("core_pattern hands cores to a program ({pattern})"));
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
        .map_err(|e| format!("cannot read the working directory of {pid}: {e}"))?;
    let full = cwd.join(pattern);
    let dir = full.parent().unwrap_or(&cwd).to_path_buf();
    let name = full.file_name().map_or(String::new(), |n| {
        n.to_string_lossy()
            .split('%')
            .next()
            .unwrap_or("")
            .to_owned()
    });
    // (path, modification time): a core may replace an old one of the same name.
    let listing = || -> Vec<(PathBuf, Option<std::time::SystemTime>)> {
        std::fs::read_dir(&dir)
            .map(|it| {
                it.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
                    .map(|e| (e.path(), e.metadata().and_then(|m| m.modified()).ok()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = listing();
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--core=unlimited:unlimited"])
        .status()
        .map_err(|e| format!("cannot run prlimit: {e}"))?;
    if !raised.success() {
        return Err(format!("prlimit could not raise the core limit of {pid}"));
    }
    let limit = core_limit(pid);
    if limit != Some(("unlimited".into(), "unlimited".into())) {
        return Err(format!("the core limit of {pid} stayed {limit:?}"));
    }
    let _ = std::process::Command::new("kill")
        .args(["-ABRT", &pid.to_string()])
        .status();
    // The kernel writes a core before the process becomes a zombie.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let dead = state
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'));
        if dead {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{pid} did not die of SIGABRT within 120 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(listing()
        .into_iter()
        .filter(|p| !before.contains(p))
        .map(|(p, _)| p)
        .collect())
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
