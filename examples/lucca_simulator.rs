//! A stand-alone Lucca tenant simulator (legacy v3 users and departments API), for trying
//! Passerelle's JIT provisioning without a Lucca sandbox:
//!
//! ```text
//! cargo run --example lucca_simulator -- --listen 127.0.0.1:8090 --seed examples/lucca-seed.json
//! ```
//!
//! Then point `[lucca] base_url` at the printed URL and `api_key` at the printed key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use passerelle::lucca::simulator::{self, Seed, SimulatorConfig, DEFAULT_SIMULATOR_API_KEY};

#[derive(Parser)]
#[command(about = "Simulate a Lucca tenant's legacy v3 API (users, departments)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Seed data (default: the built-in copy of examples/lucca-seed.json).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Requests per minute before answering 429 (Lucca: 50); 0 disables the limit.
    #[arg(long, default_value_t = 50)]
    rpm: u32,
    /// The API key to accept in `Authorization: lucca application=KEY`.
    #[arg(long, default_value = DEFAULT_SIMULATOR_API_KEY)]
    api_key: String,
    /// Delay every answer by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let seed = match args.seed.as_deref().map(Seed::from_file).transpose() {
        Ok(seed) => seed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = SimulatorConfig {
        listen: args.listen,
        api_key: args.api_key,
        requests_per_minute: (args.rpm > 0).then_some(args.rpm),
        latency: Duration::from_millis(args.latency_ms),
        seed,
        ..Default::default()
    };
    let handle = match simulator::spawn(config).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Lucca simulator listening on {}", handle.base_url());
    println!("  API key:  {}", handle.api_key());
    println!("  users:    {} seeded", handle.users().len());
    println!(
        "  try:      curl -g -H 'Authorization: lucca application={}' '{}/api/v3/users?fields=id,login,mail,department[id,name]'",
        handle.api_key(),
        handle.base_url()
    );
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("error: cannot wait for Ctrl-C");
    }
    handle.stop();
    ExitCode::SUCCESS
}
