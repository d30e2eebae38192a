// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// Freed heap blocks are wiped (1Password's zeroizing-alloc), so the key on display and the
/// passphrases typed leave no copies behind in freed memory (IPC and JSON buffers).
#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() {
    #[cfg(target_os = "linux")]
    wipe_freed_c_heap();
    keysmith_app::run();
}

/// The allocator above covers Rust's heap only. WebKitGTK and GLib copy the IPC messages
/// that carry the one-time key and the passphrases into C buffers, and neither WebKit's own
/// allocator nor glibc's clears what is freed. Before the process starts (so once more, by
/// exec, with the variables set; WebKit's processes inherit them), the app asks:
/// - glibc to overwrite every block it frees (`glibc.malloc.perturb`, mallopt(3) `M_PERTURB`)
///   and to keep no per-thread cache of freed blocks (`glibc.malloc.tcache_count=0`), whose
///   blocks skip that overwrite;
/// - WebKit to allocate from glibc instead of its own heap (`Malloc=1`, bmalloc's switch to
///   the system allocator).
///
/// A `GLIBC_TUNABLES` that already names a perturb value is left as it is.
#[cfg(target_os = "linux")]
fn wipe_freed_c_heap() {
    use std::os::unix::process::CommandExt;
    const OURS: &str = "glibc.malloc.perturb=90:glibc.malloc.tcache_count=0";
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains("glibc.malloc.perturb") {
        return;
    }
    let tunables = if tunables.is_empty() {
        OURS.to_owned()
    } else {
        format!("{tunables}:{OURS}")
    };
    let mut args = std::env::args_os();
    let (Some(arg0), Ok(exe)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables);
    if std::env::var_os("Malloc").is_none() {
        command.env("Malloc", "1");
    }
    let error = command.exec();
    eprintln!("keysmith: could not restart with freed memory wiped ({error}); going on without");
}
