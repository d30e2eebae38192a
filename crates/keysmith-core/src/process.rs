//! Keeping a process's memory to itself.
//!
//! A Keysmith process holds secrets in memory while it works: the pepper, passphrases while
//! they are checked, a full key from generation to its one-time display. Some copies are
//! beyond our reach (WebKit's own allocator in the app keeps freed IPC buffers as they were).
//! A core file would put all of that on disk, and a debugger attached by another process of
//! the same OS account could read it. So every Keysmith process, first thing, asks the kernel
//! for neither:
//!
//! - a `RLIMIT_CORE` soft limit of 0 (setrlimit(2), core(5)): no core file on a crash, and
//!   the processes it starts (WebKit's page process) inherit the limit;
//! - on Linux, not dumpable (prctl(2) `PR_SET_DUMPABLE` 0): no core even if the limit is
//!   raised from outside, and no `ptrace` attach or `/proc/PID/mem` read by other processes
//!   of the same account (root keeps `CAP_SYS_PTRACE`). ssh-agent, gpg-agent and KeePassXC do
//!   the same (OWASP MASVS-RESILIENCE: debugging is refused).
//!
//! What stays trusted: root, and the kernel.

/// What [`deny_core_dumps`] could not do, and why (an OS error, never a secret).
#[derive(Debug, thiserror::Error)]
pub enum CoreDumpError {
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("could not set the core file size limit to 0: {0}")]
    Limit(std::io::Error),
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("could not make the process non-dumpable: {0}")]
    Dumpable(std::io::Error),
}

/// Sets this process's core file size limit (soft) to 0 and, on Linux, makes it
/// non-dumpable. Call it first thing in `main`, before any secret is read.
///
/// # Errors
/// [`CoreDumpError`] when the kernel refuses either step; the other step is still tried.
pub fn deny_core_dumps() -> Result<(), CoreDumpError> {
    let limit = limit_core_to_zero();
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| CoreDumpError::Dumpable(e.into()))?;
    limit
}

#[cfg(unix)]
fn limit_core_to_zero() -> Result<(), CoreDumpError> {
    // The hard limit stays: not dumpable already stops a core of this process, whatever
    // limit someone sets from outside.
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: rustix::process::getrlimit(rustix::process::Resource::Core).maximum,
    };
    rustix::process::setrlimit(rustix::process::Resource::Core, zero)
        .map_err(|e| CoreDumpError::Limit(e.into()))
}

#[cfg(not(unix))]
fn limit_core_to_zero() -> Result<(), CoreDumpError> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Runs in a child process (this test binary again) so the test process keeps its own
    /// limits: the child denies core dumps and reports what the kernel then says.
    #[test]
    fn a_process_that_denies_core_dumps_has_core_limit_zero_and_is_not_dumpable() {
        if std::env::var_os("KEYSMITH_DENY_CORE_CHILD").is_some() {
            deny_core_dumps().unwrap();
            let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
            let dumpable = rustix::process::dumpable_behavior().unwrap();
            println!("CHILD limit={:?} dumpable={:?}", limit.current, dumpable);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process::tests::a_process_that_denies_core_dumps_has_core_limit_zero_and_is_not_dumpable",
                "--nocapture",
            ])
            .env("KEYSMITH_DENY_CORE_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(
            stdout.contains("CHILD limit=Some(0) dumpable=NotDumpable"),
            "{stdout}"
        );
        // This process is untouched.
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::Dumpable
        );
    }
}
