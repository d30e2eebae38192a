//! `keysmith scan`'s speed on text, on one core, against ripgrep with the same pattern on the
//! same file in the same run (issue 11's anchor: at least 200 MB/s).
//!
//! `cargo bench -p keysmith-core --bench scan` (ripgrep from Debian: `apt install ripgrep`).
//! `KEYSMITH_BENCH_SCAN_MB` sets the corpus size (default 512).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::time::Instant;

use keysmith_core::key::SCANNER_REGEX;
use keysmith_core::scan;
use keysmith_core::ApiKeySecret;

/// Source-code-like lines, with a key (or a look-alike) now and then.
fn corpus(path: &std::path::Path, megabytes: usize) -> (u64, usize) {
    let lines = [
        "    let total = items.iter().map(|i| i.price * i.quantity).sum::<u64>();\n",
        "// Keep the connection pool small: the database allows 100 clients in all.\n",
        "export DATABASE_URL=postgres://app@db.internal:5432/app_production\n",
        "  - name: upload artifacts to the release bucket (ksk_ prefixed keys only)\n",
        "{\"id\": 48213, \"status\": \"shipped\", \"carrier\": \"ups\", \"tracking\": \"1Z999AA10123456784\"}\n",
        "SELECT id, name, created_at FROM customers WHERE deleted_at IS NULL ORDER BY id;\n",
    ];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0u64;
    let mut keys = 0;
    let mut n = 0usize;
    while written < (megabytes as u64) << 20 {
        let line = if n.is_multiple_of(20_000) {
            keys += 1;
            format!("API_KEY={}\n", ApiKeySecret::generate().unwrap().expose())
        } else {
            lines[n % lines.len()].to_owned()
        };
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        n += 1;
    }
    out.flush().unwrap();
    (written, keys)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mb: usize = std::env::var("KEYSMITH_BENCH_SCAN_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.txt");
    let (bytes, keys) = corpus(&file, mb);
    // Warm the page cache for both readers.
    let _ = std::fs::read(&file).unwrap();
    let rate = |secs: f64| bytes as f64 / 1e6 / secs;

    let mut ours = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut found = 0;
        scan::scan_file(&file, &mut |_| found += 1).unwrap();
        ours = ours.min(t.elapsed().as_secs_f64());
        assert_eq!(found, keys);
    }
    println!(
        "keysmith scan: {:.0} MB in {:.3} s = {:.0} MB/s (one core, {keys} keys found)",
        bytes as f64 / 1e6,
        ours,
        rate(ours)
    );

    let mut rg = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let out = std::process::Command::new("rg")
            .args(["-j1", "--count", "--no-config", SCANNER_REGEX])
            .arg(&file)
            .output();
        let Ok(out) = out else {
            println!("ripgrep: not installed (apt install ripgrep), no same-run anchor");
            return;
        };
        rg = rg.min(t.elapsed().as_secs_f64());
        let counted: usize = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert_eq!(counted, keys, "ripgrep found another number of lines");
    }
    println!(
        "ripgrep -j1 '{SCANNER_REGEX}': {:.3} s = {:.0} MB/s; keysmith scan / ripgrep = {:.2}",
        rg,
        rate(rg),
        rg / ours
    );
}
