//! The benchmark's baseline: a bare axum handler that answers 204 to everything, on the same
//! runtime set-up as `keysmith serve-verifier` (multi-threaded tokio, one worker per core).
//!
//! `cargo run --release -p keysmith-verifier --example bare_204 -- 127.0.0.1:9190 [WORKERS]`

use axum::http::StatusCode;
use axum::Router;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9190".to_owned());
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::args().nth(2).and_then(|n| n.parse().ok()) {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let app = Router::new().fallback(|| async { StatusCode::NO_CONTENT });
        axum::serve(listener, app).await
    })
}
