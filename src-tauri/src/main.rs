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

/// The allocator above covers Rust's heap only. WebKitGTK and GLib copy the IPC response
/// that carries the one-time key into buffers of the C heap, and glibc leaves freed blocks
/// as they were. Set before the process starts, `MALLOC_PERTURB_` makes glibc overwrite
/// every block it frees (`M_PERTURB`, mallopt(3)); the app sets it for itself by starting
/// again once with it, and the web processes WebKit starts inherit it. A value already set
/// (even `0`, which turns it off) is kept.
#[cfg(target_os = "linux")]
fn wipe_freed_c_heap() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_PERTURB_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let (Some(arg0), Ok(exe)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    let error = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(VAR, "90")
        .exec();
    eprintln!("keysmith: could not restart with freed memory wiped ({error}); going on without");
}
