// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// Freed heap blocks are wiped (1Password's zeroizing-alloc), so the key on display and the
/// passphrases typed leave no copies behind in freed memory (IPC and JSON buffers).
#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() {
    keysmith_app::run();
}
