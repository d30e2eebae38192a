//! The Secret Service going away under a running Keysmith: gnome-keyring-daemon aborts when a
//! client vanishes while it opens a session (gnome-keyring issues 190 and 194), and desktops
//! restart it. A process keeps one session (`secret_service.rs`), so after a restart that
//! session is gone; the next keyring call must reconnect and succeed, not fail. And when the
//! daemon dies in the middle of a call, again and again, every call must still succeed.
//!
//! Its own test binary: it kills the session's daemon, which no other test should meet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use keysmith_core::{OsKeyring, SecretStore};
use keysmith_tests::require_secret_service;

/// The pid of the daemon with-session.sh's bus started last, and how many it has started.
fn daemon() -> (u32, usize) {
    let home = std::env::var("KEYSMITH_SESSION_HOME").expect("run inside scripts/with-session.sh");
    let log = std::fs::read_to_string(format!("{home}/keyring-starts.log")).unwrap();
    let pid = log
        .lines()
        .last()
        .and_then(|l| l.split("(pid ").nth(1))
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .expect("a daemon start in keyring-starts.log");
    (pid, log.lines().count())
}

#[test]
fn a_restarted_keyring_daemon_is_reconnected_to() {
    require_secret_service();
    let store = OsKeyring;
    let entry = format!("restart-test/{}", std::process::id());
    let secret = [9u8, 8, 7, 6, 5, 4, 3, 2, 1, 0];
    store.set(&entry, &secret).unwrap();
    assert_eq!(store.get(&entry).unwrap().unwrap().as_slice(), &secret);

    // The daemon dies while this process holds a session with it.
    let (pid, starts) = daemon();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}/status")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| !s.contains("State:\tZ"))
    {
        assert!(Instant::now() < deadline, "the daemon did not die");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The next calls reconnect (the bus starts the daemon again) and find what was stored.
    assert_eq!(store.get(&entry).unwrap().unwrap().as_slice(), &secret);
    let replaced = [1u8; 32];
    store.set(&entry, &replaced).unwrap();
    assert_eq!(store.get(&entry).unwrap().unwrap().as_slice(), &replaced);
    store.delete(&entry).unwrap();
    assert_eq!(store.get(&entry).unwrap(), None);
    assert_eq!(daemon().1, starts + 1, "the daemon was started again once");

    // The daemon dies again and again, at any point of the calls (while connecting, in the
    // middle of a read or a write): every call still succeeds and reads what was written.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let starts_before = daemon().1;
    let mut done = 0u32;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // 40 to 200 ms apart, varied so the kills land at different points; often
                // enough that a second try meets a dead daemon too.
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                std::thread::sleep(Duration::from_millis(40 + (n >> 33) % 160));
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &daemon().0.to_string()])
                    .status();
            }
        });
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            let value = done.to_le_bytes();
            let result = store
                .set(&entry, &value)
                .and_then(|()| store.get(&entry))
                .map(|read| read.is_some_and(|r| r.as_slice() == value));
            if !matches!(result, Ok(true)) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                // Start the daemon again before failing: the tests after this one need it.
                std::thread::sleep(Duration::from_millis(300));
                let _ = store.get(&entry);
                panic!("round {done}: {result:?}");
            }
            done += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    store.delete(&entry).unwrap();
    let restarts = daemon().1 - starts_before;
    println!("{done} set+get rounds while the daemon was killed {restarts} times");
    assert!(restarts >= 5, "the daemon was killed only {restarts} times");
}
