//! The floor under perf's discovery and JWKS figures: a bare axum `Router` answering one
//! static JSON body of the discovery document's size, no layer, no state, on the same runtime
//! (multi-threaded, one worker per core the process may run on). Whatever this reaches under
//! the same load is what the HTTP stack and the kernel's TCP cost on the machine; the gap to
//! perf's figure is ours.
//!
//!     cargo build --release --example http_floor
//!     taskset -c 0 target/release/examples/http_floor 127.0.0.1:8099 &
//!     taskset -c 1 wrk -t1 -c32 -d5s http://127.0.0.1:8099/

use axum::http::header;
use axum::routing::get;
use axum::Router;

/// About the size of the discovery document (1.7 kB).
static BODY: &[u8] = &[b' '; 1700];

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async move {
        let app = Router::new().route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
        );
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        println!("listening on {addr}");
        axum::serve(listener, app)
            .await
            .unwrap_or_else(|e| panic!("serve: {e}"));
    });
}
