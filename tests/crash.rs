//! Crash safety: `kill -9` of the CLI, the forward-auth verifier and the desktop app at random
//! points of mixed operations (create, revoke, roll, member changes), 50 rounds on one data
//! directory. After every round the store opens and passes SQLite's integrity check,
//! `keysmith audit verify` passes, every operation that was acknowledged (exit 0, or a key
//! shown in the window) is there, and every operation killed midway either happened entirely
//! or not at all, its audit entry with it. Acknowledged keys verify (`keysmith verify -` and
//! the running verifier) unless revoked since; revoked ones do not.
//!
//! The seed is printed first; `KEYSMITH_CRASH_SEED=N` replays the same choices (the timing of
//! the processes still varies). `KEYSMITH_CRASH_ROUNDS` shortens the run while debugging.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keysmith_tests::ui::{by_id, click, launch, type_into, unlock};
use keysmith_tests::{
    built_binary, cli, cli_with, descendant_named, descendants, exe_name, free_port,
    require_secret_service, sigkill, try_http, PASSPHRASE,
};
use sqlx::Connection;
use thirtyfour::By;

const ROUNDS: usize = 50;
/// Members who act in every round and are never the target of a member change.
const STABLE: [&str; 4] = ["Olive", "Ada", "Max", "Vic"];
/// The initial passphrase of every member added by the test.
const INITIAL: &str = "initial passphrase";
/// Every role may call everything: the verifier then answers 204 for every active key and 401
/// for every revoked one, whatever role changes the rounds make.
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

[[allow]]
role = "author"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "viewer"
methods = ["*"]
paths = ["/**"]
"#;

/// The rounds that also launch the desktop app and kill it at a random step: 6 of the 50.
fn is_app_round(round: usize) -> bool {
    round % 8 == 4
}

/// SplitMix64: small, seedable, and good enough to choose operations and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

// ---------------------------------------------------------------------------------------
// What the store holds, as the CLI lists it.

#[derive(Clone, Debug, PartialEq)]
struct KeyState {
    name: String,
    /// The creator's member name.
    creator: String,
    start: String,
    /// "active", "revoked" or "expired" (nothing here expires: rolls keep 1 h of grace).
    status: String,
    replaced_by: Option<String>,
}

impl KeyState {
    fn revoked(&self) -> bool {
        self.status == "revoked"
    }
}

#[derive(Clone, Debug, PartialEq)]
struct MemberState {
    role: String,
    removed: bool,
    must_change: bool,
}

#[derive(Clone, Debug, Default)]
struct Snapshot {
    /// By key id.
    keys: BTreeMap<String, KeyState>,
    /// By member name.
    members: BTreeMap<String, MemberState>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a read-only command as the Owner for the checks. A sign-in killed mid-way counts as a
/// failed attempt (every attempt is counted before Argon2: the gate's part 3), so after a few
/// kills in a row the Owner's sign-ins are slowed down; the checks, like a person, wait that
/// out (the CLI itself waits out up to 5 s) instead of taking it for a store that won't open.
fn as_owner(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--as", "Olive"];
    all.extend_from_slice(args);
    let mut o = cli(dir, &all, None);
    for _ in 0..4 {
        let err = text(&o.stderr);
        let Some(secs) = err
            .split("try again in ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            break;
        };
        std::thread::sleep(Duration::from_secs(secs));
        o = cli(dir, &all, None);
    }
    o
}

/// The JSON array a `… list --json` command prints as the Owner ([`as_owner`]).
fn owner_list(dir: &Path, what: &str) -> Result<Vec<serde_json::Value>, String> {
    let o = as_owner(dir, &[what, "list", "--json"]);
    if !o.status.success() {
        return Err(format!(
            "`{what} list --json` failed ({}): {}",
            o.status,
            text(&o.stderr)
        ));
    }
    match serde_json::from_slice(&o.stdout) {
        Ok(serde_json::Value::Array(items)) => Ok(items),
        Ok(_) => Err(format!("`{what} list --json` is not an array")),
        Err(e) => Err(format!(
            "`{what} list --json` printed no JSON ({e}): {}",
            text(&o.stdout)
        )),
    }
}

/// Reads every key and member through the CLI (as the Owner, who sees them all).
fn observe(dir: &Path) -> Result<Snapshot, String> {
    let mut snap = Snapshot::default();
    for k in owner_list(dir, "keys")? {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        snap.keys.insert(
            s(&k["id"]),
            KeyState {
                name: s(&k["name"]),
                creator: s(&k["created_by"]["name"]),
                start: s(&k["start"]),
                status: s(&k["status"]),
                replaced_by: k["replaced_by"].as_str().map(str::to_owned),
            },
        );
    }
    for m in owner_list(dir, "members")? {
        snap.members.insert(
            m["member"]["name"].as_str().unwrap_or_default().to_owned(),
            MemberState {
                role: m["member"]["role"].as_str().unwrap_or_default().to_owned(),
                removed: !m["removed_at"].is_null(),
                must_change: m["must_change_passphrase"].as_bool().unwrap_or(false),
            },
        );
    }
    Ok(snap)
}

// ---------------------------------------------------------------------------------------
// Operations and what became of them.

#[derive(Clone, Debug)]
enum Op {
    Create {
        actor: String,
        name: String,
    },
    /// "Generate Key" in the desktop app, signed in as `actor`.
    AppCreate {
        actor: String,
        name: String,
    },
    Revoke {
        actor: String,
        id: String,
    },
    Roll {
        actor: String,
        id: String,
    },
    Add {
        name: String,
        role: &'static str,
    },
    Role {
        actor: String,
        name: String,
        role: &'static str,
    },
    Remove {
        actor: String,
        name: String,
    },
    Passphrase {
        name: String,
    },
}

impl Op {
    /// The CLI arguments and passphrase variables of this operation.
    fn command(&self) -> (Vec<String>, Vec<(&'static str, &'static str)>) {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let as_member = [("KEYSMITH_PASSPHRASE", PASSPHRASE)];
        match self {
            Op::Create { actor, name } => (
                v(&["--as", actor, "keys", "create", "--name", name]),
                as_member.to_vec(),
            ),
            Op::AppCreate { .. } => unreachable!("the app is driven over WebDriver"),
            Op::Revoke { actor, id } => (
                v(&["--as", actor, "keys", "revoke", id, "--confirm", "REVOKE"]),
                as_member.to_vec(),
            ),
            Op::Roll { actor, id } => (
                v(&["--as", actor, "keys", "roll", id, "--grace", "1h"]),
                as_member.to_vec(),
            ),
            Op::Add { name, role } => (
                v(&["--as", "Olive", "members", "add", name, "--role", role]),
                vec![
                    ("KEYSMITH_PASSPHRASE", PASSPHRASE),
                    ("KEYSMITH_NEW_PASSPHRASE", INITIAL),
                ],
            ),
            Op::Role { actor, name, role } => (
                v(&["--as", actor, "members", "role", name, role]),
                as_member.to_vec(),
            ),
            Op::Remove { actor, name } => (
                v(&[
                    "--as",
                    actor,
                    "members",
                    "remove",
                    name,
                    "--confirm",
                    "REMOVE",
                ]),
                as_member.to_vec(),
            ),
            Op::Passphrase { name } => (
                v(&["--as", name, "passphrase"]),
                vec![
                    ("KEYSMITH_PASSPHRASE", INITIAL),
                    ("KEYSMITH_NEW_PASSPHRASE", PASSPHRASE),
                ],
            ),
        }
    }

    fn describe(&self) -> String {
        match self {
            Op::Create { actor, name } => format!("{actor}: keys create {name:?}"),
            Op::AppCreate { actor, name } => format!("{actor} in the app: generate {name:?}"),
            Op::Revoke { actor, id } => format!("{actor}: keys revoke {id}"),
            Op::Roll { actor, id } => format!("{actor}: keys roll {id} --grace 1h"),
            Op::Add { name, role } => format!("Olive: members add {name} --role {role}"),
            Op::Role { actor, name, role } => format!("{actor}: members role {name} {role}"),
            Op::Remove { actor, name } => format!("{actor}: members remove {name}"),
            Op::Passphrase { name } => format!("{name}: passphrase"),
        }
    }
}

#[derive(Clone, Debug)]
enum Outcome {
    /// Exit 0 (or, in the app, the key was shown): the operation was acknowledged.
    Acked {
        stdout: String,
        stderr: String,
        /// How long it took, from spawn to exit.
        ms: u64,
    },
    /// SIGKILL landed while it ran: it may or may not have happened, but not in part.
    Killed { after_ms: u64 },
    /// It ended by itself with an error: it must have changed nothing.
    Failed { status: String, stderr: String },
}

#[derive(Clone, Debug)]
struct Done {
    op: Op,
    outcome: Outcome,
}

impl Done {
    /// Acknowledged, or killed (so it may have happened).
    fn may_have_happened(&self) -> bool {
        matches!(self.outcome, Outcome::Acked { .. } | Outcome::Killed { .. })
    }
    fn acked(&self) -> bool {
        matches!(self.outcome, Outcome::Acked { .. })
    }
    fn describe(&self) -> String {
        let what = match &self.outcome {
            Outcome::Acked { stdout, ms, .. } => {
                let first = stdout.lines().next().unwrap_or_default();
                if first.starts_with("ksk_") {
                    format!("ok in {ms} ms ({}…)", &first[..8.min(first.len())])
                } else {
                    let first: String = first.chars().take(40).collect();
                    format!("ok in {ms} ms ({first}…)")
                }
            }
            Outcome::Killed { after_ms } => format!("KILLED after {after_ms} ms"),
            Outcome::Failed { status, stderr } => format!("failed {status}: {}", stderr.trim()),
        };
        format!("{} → {what}", self.op.describe())
    }
}

/// The id in "… (id ID) …", as `keys create` and `keys roll` print it on stderr.
fn id_in(stderr: &str) -> Option<String> {
    let start = stderr.find("(id ")? + 4;
    let end = stderr[start..].find(')')? + start;
    Some(stderr[start..end].to_owned())
}

// ---------------------------------------------------------------------------------------
// The forward-auth verifier, killed and restarted.

struct Verifier {
    child: Child,
    port: u16,
}

impl Verifier {
    fn start(dir: &Path, policy: &Path, log: &Path) -> Result<Verifier, String> {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(built_binary("keysmith"))
            .arg("--data-dir")
            .arg(dir)
            .args(["serve-verifier", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--policy")
            .arg(policy)
            .args(["--flush-secs", "1", "--workers", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "serve-verifier exited with {status} before listening"
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("serve-verifier did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Verifier { child, port })
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        // std never signals a child it has already reaped, so this cannot hit a reused pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP check of `key` through the verifier: the status, or why there was none.
fn check_http(port: u16, key: &str, header: usize) -> Result<u16, String> {
    let bearer = format!("Bearer {key}");
    let auth = match header % 2 {
        0 => ("Authorization", bearer.as_str()),
        _ => ("X-Api-Key", key),
    };
    try_http(
        port,
        "GET",
        "/auth",
        &[
            auth,
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/v1/reports"),
        ],
    )
    .map(|r| r.status)
    .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// One round of concurrent CLI operations, some of them (and perhaps the verifier) killed.

struct Planned {
    op: Op,
    kill_after: Option<Duration>,
}

struct CliRound {
    done: Vec<Done>,
    /// What became of the verifier: killed, or a failure if it died by itself.
    verifier_note: Option<String>,
    verifier_failure: Option<String>,
}

fn spawn_cli(dir: &Path, op: &Op) -> Child {
    let (args, env) = op.command();
    Command::new(built_binary("keysmith"))
        .arg("--data-dir")
        .arg(dir)
        .args(&args)
        .env_remove("KEYSMITH_PASSPHRASE")
        .env_remove("KEYSMITH_NEW_PASSPHRASE")
        .env_remove("KEYSMITH_DATA_DIR")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keysmith")
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        text(&buf)
    })
}

fn run_cli_round(
    dir: &Path,
    plan: Vec<Planned>,
    verifier: &mut Option<Verifier>,
    verifier_kill: Option<Duration>,
    load_keys: Vec<String>,
) -> CliRound {
    // Requests keep the verifier busy (and its last-used flush writing) while it may be killed.
    let stop = Arc::new(AtomicBool::new(false));
    let load = verifier.as_ref().map(|v| {
        let (port, stop) = (v.port, Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && !load_keys.is_empty() {
                let _ = check_http(port, &load_keys[i % load_keys.len()], i);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    });

    let start = Instant::now();
    let mut running = Vec::new();
    for p in &plan {
        let mut child = spawn_cli(dir, &p.op);
        let out = read_all(child.stdout.take().unwrap());
        let err = read_all(child.stderr.take().unwrap());
        running.push((child, out, err));
    }
    // Kills in time order; `None` stands for the verifier.
    let mut kills: Vec<(Duration, Option<usize>)> = plan
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.kill_after.map(|d| (d, Some(i))))
        .collect();
    if let Some(d) = verifier_kill {
        kills.push((d, None));
    }
    kills.sort_by_key(|k| std::cmp::Reverse(k.0));
    let mut verifier_note = None;
    let mut verifier_failure = None;
    // Polled every millisecond or two, so each exit time is known (it calibrates later
    // kills) and each kill lands on time.
    let mut ended: Vec<Option<(std::process::ExitStatus, Duration)>> = vec![None; plan.len()];
    loop {
        let now = start.elapsed();
        while kills.last().is_some_and(|k| k.0 <= now) {
            match kills.pop().unwrap().1 {
                // Child::kill sends SIGKILL, and never to a child already reaped.
                Some(i) => {
                    let _ = running[i].0.kill();
                }
                None => {
                    if let Some(mut v) = verifier.take() {
                        if let Some(status) = v.child.try_wait().unwrap() {
                            verifier_failure = Some(format!(
                                "serve-verifier had exited by itself ({status}) before it was killed"
                            ));
                        } else {
                            let _ = v.child.kill();
                            let status = v.child.wait().unwrap();
                            verifier_note = Some(format!(
                                "verifier KILLED after {} ms ({status})",
                                now.as_millis()
                            ));
                        }
                    }
                }
            }
        }
        for (i, (child, _, _)) in running.iter_mut().enumerate() {
            if ended[i].is_none() {
                if let Some(status) = child.try_wait().unwrap() {
                    ended[i] = Some((status, now));
                }
            }
        }
        if kills.is_empty() && ended.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut done = Vec::new();
    for (((_, out, err), p), end) in running.into_iter().zip(plan).zip(ended) {
        let (status, at) = end.unwrap();
        let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
        let ms = at.as_millis() as u64;
        let outcome = if status.signal() == Some(9) {
            Outcome::Killed { after_ms: ms }
        } else if status.success() {
            Outcome::Acked { stdout, stderr, ms }
        } else {
            Outcome::Failed {
                status: status.to_string(),
                stderr,
            }
        };
        done.push(Done { op: p.op, outcome });
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(load) = load {
        load.join().unwrap();
    }
    if let Some(v) = verifier.as_mut() {
        if let Some(status) = v.child.try_wait().unwrap() {
            verifier_failure = Some(format!("serve-verifier exited by itself ({status})"));
            *verifier = None;
        }
    }
    CliRound {
        done,
        verifier_note,
        verifier_failure,
    }
}

/// Chooses this round's CLI operations from what the store holds: 3 to 7 of them, each
/// entity the target of at most one (a member may still act while being changed or removed).
fn plan_round(rng: &mut Rng, snap: &Snapshot, round: usize, typical_ms: u64) -> Vec<Planned> {
    let key_actors: Vec<&String> = snap
        .members
        .iter()
        .filter(|(_, m)| {
            !m.removed && !m.must_change && ["owner", "admin", "manager"].contains(&m.role.as_str())
        })
        .map(|(n, _)| n)
        .collect();
    let mut busy = BTreeSet::new();
    let mut plan = Vec::new();
    let n = 3 + rng.below(5);
    for i in 0..n {
        let churn = |busy: &BTreeSet<String>| -> Vec<(String, MemberState)> {
            snap.members
                .iter()
                .filter(|(n, m)| !STABLE.contains(&n.as_str()) && !m.removed && !busy.contains(*n))
                .map(|(n, m)| (n.clone(), m.clone()))
                .collect()
        };
        let active: Vec<(&String, &KeyState)> = snap
            .keys
            .iter()
            .filter(|(id, k)| k.status == "active" && !busy.contains(*id))
            .collect();
        let admin_or_owner = |rng: &mut Rng| rng.pick(&["Olive", "Ada"]).to_string();
        let roll = rng.below(100);
        let op = if roll < 14 && !active.is_empty() {
            let (id, _) = rng.pick(&active);
            busy.insert((*id).clone());
            Some(Op::Revoke {
                actor: admin_or_owner(rng),
                id: (*id).clone(),
            })
        } else if roll < 28 {
            let rollable: Vec<_> = active
                .iter()
                .filter(|(_, k)| k.replaced_by.is_none())
                .collect();
            (!rollable.is_empty()).then(|| {
                let (id, _) = rng.pick(&rollable);
                busy.insert((*id).clone());
                Op::Roll {
                    actor: admin_or_owner(rng),
                    id: (*id).clone(),
                }
            })
        } else if roll < 42 {
            let role = *rng.pick(&["admin", "manager", "manager", "author", "viewer"]);
            Some(Op::Add {
                name: format!("m{round}x{i}"),
                role,
            })
        } else if roll < 52 {
            let targets = churn(&busy);
            (!targets.is_empty()).then(|| {
                let (name, m) = rng.pick(&targets).clone();
                let roles: Vec<&'static str> = ["admin", "manager", "author", "viewer"]
                    .into_iter()
                    .filter(|r| *r != m.role)
                    .collect();
                let role = *rng.pick(&roles);
                // An Admin may manage members who are not (and do not become) Admins.
                let actor = if m.role != "admin" && role != "admin" && rng.chance(40) {
                    "Ada"
                } else {
                    "Olive"
                };
                busy.insert(name.clone());
                Op::Role {
                    actor: actor.into(),
                    name,
                    role,
                }
            })
        } else if roll < 62 {
            let targets = churn(&busy);
            (!targets.is_empty()).then(|| {
                let (name, m) = rng.pick(&targets).clone();
                let actor = if m.role != "admin" && rng.chance(40) {
                    "Ada"
                } else {
                    "Olive"
                };
                busy.insert(name.clone());
                Op::Remove {
                    actor: actor.into(),
                    name,
                }
            })
        } else if roll < 70 {
            let targets: Vec<_> = churn(&busy)
                .into_iter()
                .filter(|(_, m)| m.must_change)
                .collect();
            (!targets.is_empty()).then(|| {
                let (name, _) = rng.pick(&targets).clone();
                busy.insert(name.clone());
                Op::Passphrase { name }
            })
        } else {
            None
        };
        let op = op.unwrap_or_else(|| Op::Create {
            actor: (*rng.pick(&key_actors)).clone(),
            name: format!("r{round}-{i}"),
        });
        // Killed ones: a few at start-up, the rest from a third of a typical run (signed in,
        // about to write) to a little past its end (writing, committing, printing).
        let kill_after = rng.chance(45).then(|| {
            Duration::from_millis(if rng.chance(15) {
                rng.below(40)
            } else {
                typical_ms * 3 / 10 + rng.below(typical_ms * 8 / 10 + 1)
            })
        });
        plan.push(Planned { op, kill_after });
    }
    plan
}

// ---------------------------------------------------------------------------------------
// The checks after each round.

/// Compares the store after a round with the store before it and what each operation did:
/// every acknowledged operation is there, nothing changed without an operation that could
/// have done it, and nothing was lost.
fn check_round(before: &Snapshot, done: &[Done], after: &Snapshot) -> Vec<String> {
    let mut fails = Vec::new();
    let maybe = |f: &dyn Fn(&Op) -> bool| done.iter().any(|d| d.may_have_happened() && f(&d.op));
    let member_removed_after = |name: &str| after.members.get(name).is_some_and(|m| m.removed);

    for (id, k0) in &before.keys {
        let Some(k1) = after.keys.get(id) else {
            fails.push(format!("key {id} ({:?}) vanished from the store", k0.name));
            continue;
        };
        if (&k1.name, &k1.creator, &k1.start) != (&k0.name, &k0.creator, &k0.start) {
            fails.push(format!("key {id} changed identity: {k0:?} → {k1:?}"));
        }
        if k1.status == "expired" {
            fails.push(format!(
                "key {id} ({:?}) expired: nothing here expires",
                k1.name
            ));
        }
        if k0.revoked() && !k1.revoked() {
            fails.push(format!(
                "key {id} ({:?}) was revoked and is {} again",
                k1.name, k1.status
            ));
        }
        if !k0.revoked() && k1.revoked() {
            let by_revoke = maybe(&|op| matches!(op, Op::Revoke { id: t, .. } if t == id));
            let by_removal = member_removed_after(&k1.creator)
                && (before.members.get(&k1.creator).is_some_and(|m| m.removed)
                    || maybe(&|op| matches!(op, Op::Remove { name, .. } if *name == k1.creator)));
            if !by_revoke && !by_removal {
                fails.push(format!(
                    "key {id} ({:?}) became revoked though no revoke or removal of {} was attempted",
                    k1.name, k1.creator
                ));
            }
        }
        match (&k0.replaced_by, &k1.replaced_by) {
            (Some(a), b) if b.as_ref() != Some(a) => fails.push(format!(
                "key {id} ({:?}) was replaced by {a} and now by {b:?}",
                k1.name
            )),
            (None, Some(new)) => {
                if !maybe(&|op| matches!(op, Op::Roll { id: t, .. } if t == id)) {
                    fails.push(format!(
                        "key {id} ({:?}) was rolled though no roll of it ran",
                        k1.name
                    ));
                }
                match after.keys.get(new) {
                    Some(n) if n.name == k1.name => {}
                    other => fails.push(format!(
                        "key {id} ({:?}) names its replacement {new}, which the store holds as {other:?}",
                        k1.name
                    )),
                }
            }
            _ => {}
        }
    }

    for (id, k) in &after.keys {
        if before.keys.contains_key(id) {
            continue;
        }
        let by_create = maybe(&|op| {
            matches!(op, Op::Create { actor, name } | Op::AppCreate { actor, name }
                if *name == k.name && *actor == k.creator)
        });
        let by_roll = maybe(&|op| {
            matches!(op, Op::Roll { id: old, .. } if after.keys.get(old).is_some_and(|o| {
                o.replaced_by.as_deref() == Some(id.as_str()) && o.name == k.name && o.creator == k.creator
            }))
        });
        if !by_create && !by_roll {
            fails.push(format!(
                "key {id} ({:?} by {}) appeared without any create or roll that could make it",
                k.name, k.creator
            ));
        }
        if k.replaced_by.is_some() {
            fails.push(format!("new key {id} ({:?}) is already rolled", k.name));
        }
        if k.revoked() && !member_removed_after(&k.creator) {
            fails.push(format!(
                "new key {id} ({:?}) is revoked though its creator {} was not removed",
                k.name, k.creator
            ));
        }
    }
    // A create makes one key at most.
    for d in done {
        if let Op::Create { name, .. } | Op::AppCreate { name, .. } = &d.op {
            let made = after
                .keys
                .iter()
                .filter(|(id, k)| !before.keys.contains_key(*id) && k.name == *name)
                .count();
            if made > 1 {
                fails.push(format!("{} made {made} keys", d.op.describe()));
            }
        }
    }

    for (name, m0) in &before.members {
        let Some(m1) = after.members.get(name) else {
            fails.push(format!("member {name} vanished from the store"));
            continue;
        };
        if m1.role != m0.role
            && !maybe(
                &|op| matches!(op, Op::Role { name: t, role, .. } if t == name && *role == m1.role),
            )
        {
            fails.push(format!(
                "member {name} went from {} to {} without a role change to it",
                m0.role, m1.role
            ));
        }
        if m0.removed && !m1.removed {
            fails.push(format!("member {name} was removed and is back"));
        }
        if !m0.removed
            && m1.removed
            && !maybe(&|op| matches!(op, Op::Remove { name: t, .. } if t == name))
        {
            fails.push(format!("member {name} was removed without a removal"));
        }
        if m0.must_change
            && !m1.must_change
            && !maybe(&|op| matches!(op, Op::Passphrase { name: t } if t == name))
        {
            fails.push(format!(
                "member {name} lost must-change-passphrase without a change"
            ));
        }
        if !m0.must_change && m1.must_change {
            fails.push(format!("member {name} must change the passphrase again"));
        }
    }
    for (name, m) in &after.members {
        if before.members.contains_key(name) {
            continue;
        }
        if !maybe(&|op| matches!(op, Op::Add { name: t, role } if t == name && *role == m.role)) {
            fails.push(format!(
                "member {name} ({}) appeared without a matching add",
                m.role
            ));
        }
        if !m.must_change || m.removed {
            fails.push(format!("new member {name} is {m:?}"));
        }
    }

    // Every acknowledged operation is there.
    for d in done.iter().filter(|d| d.acked()) {
        let Outcome::Acked { stdout, stderr, .. } = &d.outcome else {
            unreachable!()
        };
        let lost = |what: String| format!("ACKNOWLEDGED BUT LOST: {} — {what}", d.op.describe());
        match &d.op {
            Op::Create { actor, name } | Op::Roll { actor, id: name } => {
                let key = stdout.trim();
                if key.len() != 53 || !key.starts_with("ksk_") {
                    fails.push(format!(
                        "{}: stdout is not a key: {stdout:?}",
                        d.op.describe()
                    ));
                    continue;
                }
                let Some(id) = id_in(stderr) else {
                    fails.push(format!("{}: no id on stderr: {stderr:?}", d.op.describe()));
                    continue;
                };
                // A roll's replacement keeps the old key's name and creator (whoever rolls it).
                let (want_name, want_creator) = match &d.op {
                    Op::Roll { id: old, .. } => before
                        .keys
                        .get(old)
                        .map(|k| (k.name.clone(), k.creator.clone()))
                        .unzip(),
                    _ => (Some(name.clone()), Some(actor.clone())),
                };
                match after.keys.get(&id) {
                    None => fails.push(lost(format!("key {id} is not in the store"))),
                    Some(k) => {
                        if Some(&k.name) != want_name.as_ref()
                            || Some(&k.creator) != want_creator.as_ref()
                            || k.start != key[4..8]
                        {
                            fails.push(lost(format!("key {id} is stored as {k:?}")));
                        }
                        if k.revoked() && !member_removed_after(&k.creator) {
                            fails.push(lost(format!("key {id} is revoked")));
                        }
                    }
                }
                if let Op::Roll { id: old, .. } = &d.op {
                    let replaced = after.keys.get(old).and_then(|k| k.replaced_by.clone());
                    if replaced.as_deref() != Some(id.as_str()) {
                        fails.push(lost(format!(
                            "the old key {old} is replaced by {replaced:?}, not {id}"
                        )));
                    }
                }
            }
            Op::AppCreate { actor, name } => {
                let key = stdout.trim();
                let found = after.keys.values().find(|k| k.name == *name);
                match found {
                    Some(k) if k.creator == *actor && k.start == key[4..8] && !k.revoked() => {}
                    other => fails.push(lost(format!("the store holds {other:?}"))),
                }
            }
            Op::Revoke { id, .. } => {
                if !stdout.starts_with("Revoked") {
                    fails.push(format!("{}: stdout {stdout:?}", d.op.describe()));
                }
                if !after.keys.get(id).is_some_and(KeyState::revoked) {
                    fails.push(lost(format!("the key is {:?}", after.keys.get(id))));
                }
            }
            Op::Add { name, role } => match after.members.get(name) {
                Some(m) if m.role == *role && m.must_change && !m.removed => {}
                other => fails.push(lost(format!("the member is {other:?}"))),
            },
            Op::Role { name, role, .. } => {
                if after.members.get(name).map(|m| m.role.as_str()) != Some(*role) {
                    fails.push(lost(format!("the member is {:?}", after.members.get(name))));
                }
            }
            Op::Remove { name, .. } => {
                if !member_removed_after(name) {
                    fails.push(lost(format!("the member is {:?}", after.members.get(name))));
                }
                for (id, k) in after.keys.iter().filter(|(_, k)| k.creator == *name) {
                    if !k.revoked() {
                        fails.push(lost(format!(
                            "their key {id} ({:?}) is {}",
                            k.name, k.status
                        )));
                    }
                }
            }
            Op::Passphrase { name } => {
                if after.members.get(name).is_none_or(|m| m.must_change) {
                    fails.push(lost(format!("the member is {:?}", after.members.get(name))));
                }
            }
        }
    }

    // An operation that failed by itself (not killed) must not have failed for a storage
    // reason: kill -9 of a neighbour must not leave the database locked or damaged.
    for d in done {
        if let Outcome::Failed { stderr, .. } = &d.outcome {
            let s = stderr.to_ascii_lowercase();
            if [
                "database",
                "schema",
                "internal error",
                "panicked",
                "locked",
                "corrupt",
                "malformed",
            ]
            .iter()
            .any(|w| s.contains(w))
            {
                fails.push(format!(
                    "an operation nobody killed failed for a storage reason: {}",
                    d.describe()
                ));
            }
        }
    }
    fails
}

/// An audit log entry, as `audit list --json` shows it.
#[derive(Clone, Debug)]
struct AuditRow {
    seq: i64,
    action: String,
    target: String,
    detail: String,
}

/// The audit log entries after `after_seq`, oldest first.
fn audit_since(dir: &Path, after_seq: i64) -> Result<Vec<AuditRow>, String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut rows: Vec<AuditRow> = owner_list(dir, "audit")?
        .iter()
        .map(|e| AuditRow {
            seq: e["seq"].as_i64().unwrap_or(-1),
            action: s(&e["action"]),
            target: s(&e["target"]),
            detail: s(&e["detail"]),
        })
        .filter(|e| e.seq > after_seq)
        .collect();
    rows.sort_by_key(|e| e.seq);
    Ok(rows)
}

/// The key id in an audit target `key "NAME" (STRT…, ID)`.
fn audit_key_id(target: &str) -> Option<&str> {
    target
        .strip_suffix(')')?
        .rsplit_once(", ")
        .map(|(_, id)| id)
}

/// Each change between the snapshots has its audit entry among `entries` (written since),
/// and each such entry its change: an action and its entry commit together or not at all.
fn check_audit(before: &Snapshot, after: &Snapshot, entries: &[AuditRow]) -> Vec<String> {
    let mut fails = Vec::new();
    let has = |action: &str, f: &dyn Fn(&AuditRow) -> bool| {
        entries.iter().any(|e| e.action == action && f(e))
    };
    for (id, k) in &after.keys {
        let k0 = before.keys.get(id);
        if k0.is_none()
            && !has("key_generated", &|e| audit_key_id(&e.target) == Some(id))
            && !has("key_rolled", &|e| e.detail.contains(id.as_str()))
        {
            fails.push(format!("new key {id} ({:?}) has no audit entry", k.name));
        }
        if k.revoked()
            && !k0.is_some_and(KeyState::revoked)
            && !has("key_revoked", &|e| audit_key_id(&e.target) == Some(id))
        {
            fails.push(format!(
                "key {id} ({:?}) was revoked without an audit entry",
                k.name
            ));
        }
        if k.replaced_by.is_some()
            && k0.is_some_and(|k0| k0.replaced_by.is_none())
            && !has("key_rolled", &|e| audit_key_id(&e.target) == Some(id))
        {
            fails.push(format!(
                "key {id} ({:?}) was rolled without an audit entry",
                k.name
            ));
        }
    }
    for (name, m) in &after.members {
        let m0 = before.members.get(name);
        let entry = |action: &str| has(action, &|e| e.target == *name);
        let missing = match m0 {
            None => (!entry("member_added")).then_some("added"),
            Some(m0) if m0.role != m.role && !entry("role_changed") => Some("given another role"),
            Some(m0) if !m0.removed && m.removed && !entry("member_removed") => Some("removed"),
            Some(m0) if m0.must_change && !m.must_change && !entry("passphrase_changed") => {
                Some("given a new passphrase")
            }
            _ => None,
        };
        if let Some(what) = missing {
            fails.push(format!("member {name} was {what} without an audit entry"));
        }
    }
    for e in entries {
        let key = |id: Option<&str>| id.and_then(|id| after.keys.get(id));
        let before_key = |id: Option<&str>| id.and_then(|id| before.keys.get(id));
        let ok = match e.action.as_str() {
            "key_generated" => {
                key(audit_key_id(&e.target)).is_some()
                    && before_key(audit_key_id(&e.target)).is_none()
            }
            "key_rolled" => {
                key(audit_key_id(&e.target)).is_some_and(|k| k.replaced_by.is_some())
                    && before_key(audit_key_id(&e.target)).is_some_and(|k| k.replaced_by.is_none())
            }
            "key_revoked" => {
                key(audit_key_id(&e.target)).is_some_and(KeyState::revoked)
                    && !before_key(audit_key_id(&e.target)).is_some_and(KeyState::revoked)
            }
            "member_added" => {
                after.members.contains_key(&e.target) && !before.members.contains_key(&e.target)
            }
            "role_changed" => after
                .members
                .get(&e.target)
                .is_some_and(|m| e.detail.ends_with(&m.role)),
            "member_removed" => {
                after.members.get(&e.target).is_some_and(|m| m.removed)
                    && before.members.get(&e.target).is_some_and(|m| !m.removed)
            }
            "passphrase_changed" => after.members.get(&e.target).is_some_and(|m| !m.must_change),
            _ => true,
        };
        if !ok {
            fails.push(format!(
                "audit entry {} ({} {:?}: {:?}) records a change the store does not hold",
                e.seq, e.action, e.target, e.detail
            ));
        }
    }
    fails
}

/// SQLite's own integrity and foreign-key checks, from a separate connection.
async fn integrity(db: &Path) -> Result<(), String> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = sqlx::SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("integrity_check: {e}"))?;
    let fk: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| format!("foreign_key_check: {e}"))?;
    conn.close().await.ok();
    if ok != "ok" {
        return Err(format!("PRAGMA integrity_check: {ok}"));
    }
    if !fk.is_empty() {
        return Err(format!("PRAGMA foreign_key_check: {fk:?}"));
    }
    Ok(())
}

fn verify_exit(dir: &Path, key: &str) -> Option<i32> {
    cli(dir, &["verify", "-"], Some(key)).status.code()
}

// ---------------------------------------------------------------------------------------
// The desktop app, killed at a random step of generating a key.

/// The steps of the app's flow; the app is killed right after the chosen one (plus a random
/// pause), so the kill lands in start-up, sign-in, generating, showing, copying or closing.
const APP_STEPS: [&str; 8] = [
    "launched",
    "sign-in submitted",
    "signed in",
    "name typed",
    "Generate clicked",
    "key shown",
    "Copy clicked",
    "Done clicked",
];

struct AppResult {
    /// The app's "Generate Key", when it was clicked.
    done: Option<Done>,
    note: String,
    /// The app was gone before the kill: it crashed by itself.
    failure: Option<String>,
}

/// Launches the app on `dir`, signs in as Ada, and generates a key named `name`, starting the
/// round's CLI operations (`cli_ops`) once signed in; kills the app after `kill_step`.
async fn app_round<T: Send + 'static>(
    dir: &Path,
    log: &Path,
    name: &str,
    kill_step: usize,
    pause: Duration,
    cli_ops: impl FnOnce() -> tokio::task::JoinHandle<T>,
) -> (AppResult, T) {
    let (tauri_driver, d) = launch(
        &[
            ("KEYSMITH_DATA_DIR", dir.as_os_str()),
            ("KEYSMITH_LOG", OsStr::new("info")),
        ],
        log,
    )
    .await;
    let app_pid = descendant_named(tauri_driver.pid(), "keysmith-app")
        .expect("the keysmith-app process under tauri-driver");
    let mut cli_ops = Some(cli_ops);
    let mut handle = None;
    let mut shown = None;
    let mut clicked_at = None;
    'flow: {
        if kill_step == 0 {
            break 'flow;
        }
        unlock(&d, "Ada", PASSPHRASE).await;
        if kill_step == 1 {
            break 'flow;
        }
        // A CLI sign-in as Ada killed in an earlier round counts as a failed attempt (counted
        // before Argon2, cleared on success), so Ada may be told to wait a moment: wait it
        // out and sign in again, as a person would.
        for _ in 0..30 {
            if !d.find_all(By::Id("create-key")).await.unwrap().is_empty() {
                break;
            }
            let waiting = match d.find_all(By::Id("unlock-error")).await.unwrap().first() {
                Some(e) => e.text().await.unwrap_or_default().contains("try again"),
                None => false,
            };
            tokio::time::sleep(Duration::from_millis(if waiting { 1000 } else { 200 })).await;
            if waiting {
                click(&d, "unlock-submit").await;
            }
        }
        by_id(&d, "create-key").await;
        handle = cli_ops.take().map(|f| f());
        if kill_step == 2 {
            break 'flow;
        }
        click(&d, "create-key").await;
        type_into(&d, "key-name", name).await;
        if kill_step == 3 {
            break 'flow;
        }
        click(&d, "generate-key").await;
        clicked_at = Some(Instant::now());
        if kill_step == 4 {
            break 'flow;
        }
        let key = by_id(&d, "revealed-key").await.text().await.unwrap();
        shown = clicked_at.map(|t| (key, t.elapsed().as_millis() as u64));
        if kill_step == 5 {
            break 'flow;
        }
        click(&d, "copy-key").await;
        if kill_step == 6 {
            break 'flow;
        }
        by_id(&d, "copy-note").await;
        click(&d, "reveal-done").await;
    }
    tokio::time::sleep(pause).await;
    let helpers: Vec<(u32, Option<String>)> = descendants(tauri_driver.pid())
        .into_iter()
        .filter(|&p| p != app_pid)
        .map(|p| (p, exe_name(p)))
        .collect();
    let alive = exe_name(app_pid).as_deref() == Some("keysmith-app");
    sigkill(app_pid);
    let note = format!(
        "app KILLED after \"{}\" + {} ms",
        APP_STEPS[kill_step],
        pause.as_millis()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), d.quit()).await;
    drop(tauri_driver);
    // WebKit's helpers outlive a killed app for a moment; they are ours to end.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (pid, name) in helpers {
        if name.is_some() && exe_name(pid) == name {
            sigkill(pid);
        }
    }
    let cli_round = match handle {
        Some(h) => h.await.unwrap(),
        None => (cli_ops.take().unwrap())().await.unwrap(),
    };
    let op = Op::AppCreate {
        actor: "Ada".into(),
        name: name.to_owned(),
    };
    let done = match (shown, clicked_at) {
        (Some((key, ms)), _) => Some(Done {
            op,
            outcome: Outcome::Acked {
                stdout: key,
                stderr: String::new(),
                ms,
            },
        }),
        (None, Some(at)) => Some(Done {
            op,
            outcome: Outcome::Killed {
                after_ms: at.elapsed().as_millis() as u64,
            },
        }),
        (None, None) => None,
    };
    let failure = (!alive).then(|| {
        format!(
            "the app had exited by itself before it was to be killed after \"{}\" (see {})",
            APP_STEPS[kill_step],
            log.display()
        )
    });
    (
        AppResult {
            done,
            note,
            failure,
        },
        cli_round,
    )
}

// ---------------------------------------------------------------------------------------

fn setup(dir: &Path) {
    let ok = |o: std::process::Output, what: &str| {
        assert!(o.status.success(), "{what}: {}", text(&o.stderr));
    };
    ok(cli(dir, &["init", "--owner", "Olive"], None), "init");
    for (name, role) in [("Ada", "admin"), ("Max", "manager"), ("Vic", "viewer")] {
        ok(
            cli_with(
                dir,
                &["--as", "Olive", "members", "add", name, "--role", role],
                None,
                &[("KEYSMITH_NEW_PASSPHRASE", INITIAL)],
            ),
            "members add",
        );
        ok(
            cli_with(
                dir,
                &["--as", name, "passphrase"],
                None,
                &[
                    ("KEYSMITH_PASSPHRASE", INITIAL),
                    ("KEYSMITH_NEW_PASSPHRASE", PASSPHRASE),
                ],
            ),
            "passphrase",
        );
    }
}

/// Keeps the data directory of a failed run in tests/artifacts for a post-mortem (the pepper
/// went with the session's keyring, but the database and its audit log are readable).
fn keep_artifacts(dir: &Path, seed: u64) -> PathBuf {
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("artifacts/crash-{seed}"));
    let _ = std::fs::create_dir_all(&dest);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::copy(entry.path(), dest.join(entry.file_name()));
    }
    dest
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_points_loses_nothing_acknowledged() {
    require_secret_service();
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "no DISPLAY: run through scripts/with-session.sh --display"
    );
    let seed = std::env::var("KEYSMITH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds = std::env::var("KEYSMITH_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ROUNDS);
    println!("crash seed: {seed} (replay: KEYSMITH_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = work.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let verifier_log = work.path().join("verifier.log");
    setup(&dir);

    let mut model = observe(&dir).unwrap();
    let mut audit_seq = audit_since(&dir, 0).unwrap().last().map_or(0, |e| e.seq);
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    let mut verifier: Option<Verifier> = None;
    let mut history: Vec<String> = Vec::new();
    let (mut acked, mut killed, mut failed, mut verifier_kills, mut app_kills) = (0, 0, 0, 0, 0);
    // How long a CLI operation takes here (moving average of acknowledged ones): kills are
    // timed against it so most land while the operation works on the database.
    let mut typical_ms: u64 = 400;
    // Why operations nobody killed failed (a role changed meanwhile, a key already revoked, …).
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();

    for round in 0..rounds {
        let round_start = Instant::now();
        let mut fails = Vec::new();
        if verifier.is_none() {
            match Verifier::start(&dir, &policy, &verifier_log) {
                Ok(v) => verifier = Some(v),
                Err(e) => fails.push(format!("the verifier did not start: {e}")),
            }
        }
        let plan = plan_round(&mut rng, &model, round, typical_ms);
        let verifier_kill = rng
            .chance(30)
            .then(|| Duration::from_millis(rng.below(500)));
        let load_keys: Vec<String> = secrets
            .iter()
            .filter(|(id, _)| model.keys.get(*id).is_some_and(|k| k.status == "active"))
            .map(|(_, s)| s.clone())
            .collect();

        let (mut done, mut notes, cli_round) = if is_app_round(round) {
            let kill_step = usize::try_from(rng.below(APP_STEPS.len() as u64)).unwrap();
            let pause = Duration::from_millis(rng.below(250));
            let log = work.path().join(format!("app-round-{round}.log"));
            let dir2 = dir.clone();
            let mut v = verifier.take();
            let (app, cli_round) = app_round(
                &dir,
                &log,
                &format!("app-r{round}"),
                kill_step,
                pause,
                move || {
                    tokio::task::spawn_blocking(move || {
                        let r = run_cli_round(&dir2, plan, &mut v, verifier_kill, load_keys);
                        (r, v)
                    })
                },
            )
            .await;
            app_kills += 1;
            let (round_result, v) = cli_round;
            verifier = v;
            fails.extend(app.failure);
            let mut done = round_result.done.clone();
            done.extend(app.done);
            (done, vec![app.note], round_result)
        } else {
            let dir2 = dir.clone();
            let mut v = verifier.take();
            let (r, v) = tokio::task::spawn_blocking(move || {
                let r = run_cli_round(&dir2, plan, &mut v, verifier_kill, load_keys);
                (r, v)
            })
            .await
            .unwrap();
            verifier = v;
            (r.done.clone(), Vec::new(), r)
        };
        if let Some(n) = cli_round.verifier_note.clone() {
            verifier_kills += 1;
            notes.push(n);
        }
        if let Some(f) = cli_round.verifier_failure.clone() {
            fails.push(f);
        }
        done.sort_by_key(|d| matches!(d.op, Op::AppCreate { .. }));
        for d in &done {
            if let (Outcome::Acked { ms, .. }, false) =
                (&d.outcome, matches!(d.op, Op::AppCreate { .. }))
            {
                typical_ms = (typical_ms * 4 + ms) / 5;
            }
            if let Outcome::Failed { stderr, .. } = &d.outcome {
                let why: String = stderr.trim().chars().take(90).collect();
                *refusals.entry(why).or_insert(0) += 1;
            }
            match d.outcome {
                Outcome::Acked { .. } => acked += 1,
                Outcome::Killed { .. } => killed += 1,
                Outcome::Failed { .. } => failed += 1,
            }
        }

        // The verifier is back (if it was killed) before the checks, which use it too.
        if verifier.is_none() {
            match Verifier::start(&dir, &policy, &verifier_log) {
                Ok(v) => verifier = Some(v),
                Err(e) => fails.push(format!("the verifier did not restart: {e}")),
            }
        }

        // The store opens and is intact; the audit chain holds.
        if let Err(e) = integrity(&dir.join("keysmith.sqlite3")).await {
            fails.push(e);
        }
        let o = cli(&dir, &["audit", "verify"], None);
        if !o.status.success() || !text(&o.stdout).starts_with("intact:") {
            fails.push(format!(
                "`audit verify` exited {}: {}{}",
                o.status,
                text(&o.stdout),
                text(&o.stderr)
            ));
        }
        let after = match observe(&dir) {
            Ok(s) => s,
            Err(e) => {
                fails.push(format!("the store does not open: {e}"));
                model.clone()
            }
        };
        fails.extend(check_round(&model, &done, &after));
        match audit_since(&dir, audit_seq) {
            Ok(entries) => {
                fails.extend(check_audit(&model, &after, &entries));
                audit_seq = entries.last().map_or(audit_seq, |e| e.seq);
            }
            Err(e) => fails.push(e),
        }

        // Keys this round showed, and keys whose status changed, verify (or not) as they
        // should; so does every known key through the running verifier.
        let mut to_verify: BTreeSet<String> = BTreeSet::new();
        for d in done.iter().filter(|d| d.acked()) {
            let Outcome::Acked { stdout, stderr, .. } = &d.outcome else {
                unreachable!()
            };
            let id = match &d.op {
                Op::Create { .. } | Op::Roll { .. } => id_in(stderr),
                Op::AppCreate { name, .. } => after
                    .keys
                    .iter()
                    .find(|(_, k)| k.name == *name)
                    .map(|(id, _)| id.clone()),
                _ => None,
            };
            if let Some(id) = id {
                secrets.insert(id.clone(), stdout.trim().to_owned());
                to_verify.insert(id);
            }
        }
        for (id, k) in &after.keys {
            if model.keys.get(id).is_some_and(|k0| k0.status != k.status) {
                to_verify.insert(id.clone());
            }
        }
        let known: Vec<&String> = secrets.keys().collect();
        for _ in 0..2.min(known.len()) {
            to_verify.insert((*rng.pick(&known)).clone());
        }
        for id in &to_verify {
            let (Some(secret), Some(k)) = (secrets.get(id), after.keys.get(id)) else {
                continue;
            };
            let want = if k.status == "active" { 0 } else { 1 };
            let got = verify_exit(&dir, secret);
            if got != Some(want) {
                fails.push(format!(
                    "`keysmith verify -` of key {id} ({:?}, {}) exited {got:?}, expected {want}",
                    k.name, k.status
                ));
            }
        }
        if let Some(v) = &verifier {
            for (i, (id, secret)) in secrets.iter().enumerate() {
                let Some(k) = after.keys.get(id) else {
                    continue;
                };
                let want = if k.status == "active" { 204 } else { 401 };
                match check_http(v.port, secret, i) {
                    Ok(got) if got == want => {}
                    got => fails.push(format!(
                        "the verifier answered {got:?} for key {id} ({:?}, {}), expected {want}",
                        k.name, k.status
                    )),
                }
            }
        }

        let mut line = format!(
            "round {round:>2} ({} ms): ",
            round_start.elapsed().as_millis()
        );
        line.push_str(
            &done
                .iter()
                .map(Done::describe)
                .chain(notes)
                .collect::<Vec<_>>()
                .join("; "),
        );
        println!("{line}");
        history.push(line);
        if !fails.is_empty() {
            let kept = keep_artifacts(&dir, seed);
            panic!(
                "crash round {round} failed (seed {seed}; replay: KEYSMITH_CRASH_SEED={seed}; \
                 data directory kept in {}):\n  {}\n\nThe rounds so far:\n{}",
                kept.display(),
                fails.join("\n  "),
                history.join("\n")
            );
        }
        model = after;
    }

    // At the end, every key shown at any point verifies as its status says.
    let mut fails = Vec::new();
    for (id, secret) in &secrets {
        let Some(k) = model.keys.get(id) else {
            continue;
        };
        let want = if k.status == "active" { 0 } else { 1 };
        let got = verify_exit(&dir, secret);
        if got != Some(want) {
            fails.push(format!(
                "`keysmith verify -` of key {id} ({:?}, {}) exited {got:?}, expected {want}",
                k.name, k.status
            ));
        }
    }
    drop(verifier);
    assert!(
        fails.is_empty(),
        "final check (seed {seed}):\n  {}",
        fails.join("\n  ")
    );
    for (why, n) in &refusals {
        println!("refused {n}×: {why}");
    }
    println!(
        "crash test: {rounds} rounds in {:.1} s; operations acknowledged {acked}, killed {killed}, \
         failed by themselves {failed}; verifier killed {verifier_kills} times, app {app_kills} \
         times; {} keys and {} members in the store, {} keys checked at the end (seed {seed})",
        started.elapsed().as_secs_f64(),
        model.keys.len(),
        model.members.len(),
        secrets.len()
    );
}

/// The checks themselves catch a lost acknowledgement, an unexplained change, half an
/// operation and a change without its audit entry (and pass a consistent round).
#[test]
fn the_checks_catch_what_they_must() {
    let key = |name: &str, status: &str, replaced_by: Option<&str>| KeyState {
        name: name.into(),
        creator: "Olive".into(),
        start: "abcd".into(),
        status: status.into(),
        replaced_by: replaced_by.map(str::to_owned),
    };
    let member = |role: &str, removed: bool| MemberState {
        role: role.into(),
        removed,
        must_change: false,
    };
    let mut before = Snapshot::default();
    before.keys.insert("k1".into(), key("a", "active", None));
    before
        .members
        .insert("Olive".into(), member("owner", false));
    before.members.insert("m1".into(), member("manager", false));
    let create = |outcome: Outcome| Done {
        op: Op::Create {
            actor: "Olive".into(),
            name: "b".into(),
        },
        outcome,
    };
    let acked = || {
        create(Outcome::Acked {
            stdout: format!("ksk_abcd{}\n", "x".repeat(45)),
            stderr: "Generated \"b\" (id k2).".into(),
            ms: 1,
        })
    };
    let entry = |seq, action: &str, target: &str| AuditRow {
        seq,
        action: action.into(),
        target: target.into(),
        detail: String::new(),
    };
    let contains = |fails: &[String], what: &str| fails.iter().any(|f| f.contains(what));

    // A consistent round: the acknowledged key is there, with its audit entry.
    let mut after = before.clone();
    after.keys.insert("k2".into(), key("b", "active", None));
    let entries = [entry(9, "key_generated", "key \"b\" (abcd…, k2)")];
    assert!(check_round(&before, &[acked()], &after).is_empty());
    assert!(check_audit(&before, &after, &entries).is_empty());

    // The acknowledged key is missing.
    let fails = check_round(&before, &[acked()], &before);
    assert!(contains(&fails, "ACKNOWLEDGED BUT LOST"), "{fails:?}");
    // A killed create may have happened, but not without its audit entry.
    let killed = create(Outcome::Killed { after_ms: 5 });
    assert!(check_round(&before, std::slice::from_ref(&killed), &after).is_empty());
    let fails = check_audit(&before, &after, &[]);
    assert!(contains(&fails, "has no audit entry"), "{fails:?}");
    // An audit entry for a key the store does not hold.
    let fails = check_audit(&before, &before, &entries);
    assert!(contains(&fails, "does not hold"), "{fails:?}");
    // A create that failed by itself must have changed nothing.
    let failed = create(Outcome::Failed {
        status: "exit status: 1".into(),
        stderr: "keysmith: Not permitted.".into(),
    });
    let fails = check_round(&before, &[failed], &after);
    assert!(contains(&fails, "appeared without"), "{fails:?}");

    // A revocation nobody asked for.
    let mut revoked = before.clone();
    revoked.keys.get_mut("k1").unwrap().status = "revoked".into();
    let fails = check_round(&before, &[], &revoked);
    assert!(contains(&fails, "became revoked"), "{fails:?}");
    // Half a roll: the old key names a replacement the store does not hold.
    let mut half = before.clone();
    half.keys.get_mut("k1").unwrap().replaced_by = Some("k3".into());
    let roll = Done {
        op: Op::Roll {
            actor: "Olive".into(),
            id: "k1".into(),
        },
        outcome: Outcome::Killed { after_ms: 50 },
    };
    let fails = check_round(&before, &[roll], &half);
    assert!(contains(&fails, "names its replacement k3"), "{fails:?}");
    // An acknowledged removal that did not stick.
    let remove = Done {
        op: Op::Remove {
            actor: "Olive".into(),
            name: "m1".into(),
        },
        outcome: Outcome::Acked {
            stdout: "Removed m1; they had no active keys.".into(),
            stderr: String::new(),
            ms: 1,
        },
    };
    let fails = check_round(&before, &[remove], &before);
    assert!(contains(&fails, "ACKNOWLEDGED BUT LOST"), "{fails:?}");
    // A storage error of an operation nobody killed.
    let locked = create(Outcome::Failed {
        status: "exit status: 1".into(),
        stderr: "keysmith: The database could not be read or written.".into(),
    });
    let fails = check_round(&before, &[locked], &before);
    assert!(contains(&fails, "storage reason"), "{fails:?}");
}
