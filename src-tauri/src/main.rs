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
    #[cfg(target_os = "linux")]
    composite_only_with_a_gpu();
    // No core file and no debugger of the same account: what the wipes cannot reach (WebKit's
    // heap) stays in memory only.
    if let Err(e) = keysmith_core::process::deny_core_dumps() {
        eprintln!("keysmith: {e}; going on");
    }
    // Expanded here, in the binary only: the library is also built as a unit-test harness, and
    // two expansions at once could embed a UI asset the other is still writing (see the
    // `[[bin]]` section of Cargo.toml).
    keysmith_app::run(tauri::generate_context!());
}

/// The allocator above covers Rust's heap only. GLib and GTK copy the IPC messages that carry
/// the one-time key and the passphrases into C buffers, and glibc leaves freed blocks as they
/// were. glibc reads its settings when a process starts, so the app starts itself once more
/// (exec, same process) asking glibc to overwrite every block it frees
/// (`glibc.malloc.perturb`, mallopt(3) `M_PERTURB`) and to keep no per-thread cache of freed
/// blocks (`glibc.malloc.tcache_count=0`: those skip the overwrite). The processes WebKit
/// starts get the environment as it was.
///
/// The same restart fixes glibc's mmap and trim thresholds at 128 KiB (mallopt(3)
/// `M_MMAP_THRESHOLD`, `M_TRIM_THRESHOLD`; fixing them turns off glibc's growing them): the key
/// list's buffers (about 4 MB of JSON for 10,000 keys, every 5 s while the keys page is open)
/// then go back to the system when freed. With the defaults the app kept about 35 MB more
/// after showing 10,000 keys (`tests/list_bench.rs`, PSS per process).
///
/// Not covered: WebKit's own heap (bmalloc) and its page process. Tried and dropped: WebKit on
/// glibc (`Malloc=1`) with the overwrite made its automation answer garbage in 6 of 7 window
/// test runs and crashed the page in 2 of 2 runs of the secrets-at-rest test: reads after
/// free, which a person's session could meet too. The page process is left as WebKit runs it.
///
/// A `GLIBC_TUNABLES` that already names a perturb value is left as it is.
#[cfg(target_os = "linux")]
fn wipe_freed_c_heap() {
    use std::os::unix::process::CommandExt;
    const OURS: &str = concat!(
        "glibc.malloc.perturb=90:glibc.malloc.tcache_count=0",
        ":glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
    );
    const MARK: &str = "KEYSMITH_HEAP_WIPED";
    if let Some(before) = std::env::var_os(MARK) {
        // This process runs wiped; WebKit's processes get the environment as it was.
        if before.is_empty() {
            std::env::remove_var("GLIBC_TUNABLES");
        } else {
            std::env::set_var("GLIBC_TUNABLES", &before);
        }
        std::env::remove_var(MARK);
        return;
    }
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains("glibc.malloc.perturb") {
        return;
    }
    let before = tunables.clone();
    let tunables = if tunables.is_empty() {
        OURS.to_owned()
    } else {
        format!("{tunables}:{OURS}")
    };
    let mut args = std::env::args_os();
    let (Some(arg0), Ok(exe)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    let error = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(MARK, before)
        .exec();
    eprintln!("keysmith: could not restart with freed memory wiped ({error}); going on without");
}

/// WebKitGTK composites the page with OpenGL. With no GPU (a virtual machine, a remote
/// desktop, this project's CI) that OpenGL is Mesa's software renderer, which costs more than
/// drawing the page without compositing at all: with 10,000 keys, scrolling took 75 ms a
/// frame (95th percentile) with compositing and 17 ms without, a search keystroke at worst
/// 74 ms against 35, and the webview 70 MB more (`tests/list_bench.rs`, same machine).
/// So with no GPU render node (`/dev/dri/renderD*`) the app turns compositing off with
/// WebKitGTK's own switch, `WEBKIT_DISABLE_COMPOSITING_MODE=1`, before GTK starts. A value
/// already set is left as it is (`0` keeps compositing on).
#[cfg(target_os = "linux")]
fn composite_only_with_a_gpu() {
    const SWITCH: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if std::env::var_os(SWITCH).is_some() {
        return;
    }
    let gpu = std::fs::read_dir("/dev/dri").is_ok_and(|nodes| {
        nodes
            .flatten()
            .any(|n| n.file_name().to_string_lossy().starts_with("renderD"))
    });
    if !gpu {
        // Still one thread: nothing reads the environment meanwhile.
        std::env::set_var(SWITCH, "1");
    }
}
