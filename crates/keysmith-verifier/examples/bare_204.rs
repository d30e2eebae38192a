//! The benchmark's baseline: a bare axum handler that answers 204 to everything, on the same
//! runtime set-up as `keysmith serve-verifier` (multi-threaded tokio, one worker per core).
//!
//! With `WORK_NS`, each answer first spins for that many nanoseconds: `scripts/bench-verifier.sh`
//! uses it to show how much work per request a server can add on this machine and still keep
//! a given share of the bare throughput (the budget the verifier's check must fit in).
//!
//! `cargo run --release -p keysmith-verifier --example bare_204 -- 127.0.0.1:9190 [WORKERS [WORK_NS]]`

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9190".to_owned());
    let workers: Option<usize> = args.next().and_then(|n| n.parse().ok());
    let work = Duration::from_nanos(args.next().and_then(|n| n.parse().ok()).unwrap_or(0));
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let app = if work.is_zero() {
            Router::new().fallback(|| async { StatusCode::NO_CONTENT })
        } else {
            Router::new().fallback(move || async move {
                let until = Instant::now() + work;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                StatusCode::NO_CONTENT
            })
        };
        axum::serve(listener, app).await
    })
}
