//! A throwaway PostgreSQL for tests: one cluster per test process, started lazily on first use
//! and stopped when the process ends, and a fresh database per test.
//!
//! Shared by the integration tests (`common::pg`) and the library's unit tests (included with
//! `#[path]` as `crate::store::test_pg`), so it depends on nothing but std, libc, sqlx, tokio and
//! tempfile. Include it once per test binary: each copy would start its own server.
//!
//! - `PASSERELLE_TEST_DATABASE_URL` set (a role allowed to `CREATE DATABASE`): the databases are
//!   created on that server and nothing is started.
//! - Otherwise the Debian `postgresql` binaries (`/usr/lib/postgresql/*/bin/`) start a cluster
//!   in a temp dir on a free loopback port, `fsync=off`, as the `postgres` user when the tests
//!   run as root (the server refuses root), as the current user otherwise.
//! - No PostgreSQL at all: [`database`] returns `None` and the test skips, except with
//!   `CI=true`, where it panics: CI must run these tests, not skip them.
//!
//! Nothing is left running: a watchdog process holds the read end of a pipe whose write end
//! only this process has; when the process ends, however it ends (panic, `exit`, SIGKILL), the
//! kernel closes the pipe and the watchdog stops the server and removes its directory. At a
//! normal exit an `atexit` hook waits for that to finish.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use sqlx::{Connection, Executor};

/// The role of the throwaway cluster; its password is only good on loopback for this run.
const ROLE: &str = "passerelle_test";
pub const PASSWORD: &str = "throwaway-test-password";
/// The `[keys] encryption_key` test nodes on one database share (base64 of 32 bytes, made
/// for the tests only).
pub const ENCRYPTION_KEY: &str = "6ndlgHBNgWxKcYpAHS/XeU0QU9UFJe8X5iDjpLywokw=";

/// The server the tests use: an admin URL (database `postgres`) on it.
struct Server {
    admin_url: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
/// The watchdog's stdin (dropping it stops the server) and the watchdog itself.
static WATCHDOG: Mutex<Option<(ChildStdin, Child)>> = Mutex::new(None);
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// A URL of a fresh, empty database on the test server, or `None` (after saying so on stderr)
/// when no PostgreSQL is available outside CI.
pub async fn database() -> Option<String> {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but no PostgreSQL for the tests: {why}");
            }
            eprintln!("skipped: no PostgreSQL for the tests ({why})");
            return None;
        }
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&server.admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL: {e}"));
    admin
        .execute(format!("CREATE DATABASE {name} TEMPLATE template0").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    admin.close().await.ok();
    Some(with_database(&server.admin_url, &name))
}

/// Like [`database`], but the test fails rather than skips when there is no PostgreSQL.
pub async fn required_database() -> String {
    match database().await {
        Some(url) => url,
        None => panic!("this test needs PostgreSQL (install the `postgresql` package)"),
    }
}

/// `url` with its path (the database name) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("PASSERELLE_TEST_DATABASE_URL") {
        return Ok(Server {
            admin_url: with_database(&url, "postgres"),
        });
    }
    let bin = binaries().ok_or("no /usr/lib/postgresql/*/bin/initdb")?;
    let started = Instant::now();
    let as_postgres = unsafe { libc::geteuid() } == 0;
    let top = tempfile::Builder::new()
        .prefix("passerelle-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    let data = top.join("data");
    // The watchdog first, so that whatever happens next leaves nothing behind. It runs as
    // this user (it removes the whole temp dir) in its own process group (a Ctrl-C aimed at
    // `cargo test` must not kill it before it has stopped the server, which pg_ctl detaches).
    let ctl = format!(
        "'{}' -D '{}' stop -m immediate",
        bin.join("pg_ctl").display(),
        data.display()
    );
    let ctl = if as_postgres {
        format!("runuser -u postgres -- {ctl}")
    } else {
        ctl
    };
    let stop = format!(
        "trap '' HUP INT TERM; cat >/dev/null; {ctl} >/dev/null 2>&1; rm -rf '{}'",
        top.display()
    );
    let mut watchdog = Command::new("sh")
        .args(["-c", &stop])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    let stdin = watchdog.stdin.take().ok_or("watchdog stdin")?;
    *WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()) = Some((stdin, watchdog));
    unsafe { libc::atexit(stop_at_exit) };
    let pwfile = top.join("pwfile");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| format!("{}: {e}", pwfile.display()))?;
    if as_postgres {
        // The server runs as `postgres`: it owns the cluster's directory (kept 0700), and the
        // rest of the path must be traversable for it.
        let (uid, gid) = user_ids("postgres").ok_or("no `postgres` user")?;
        set_mode(&top, 0o755)?;
        std::fs::create_dir(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        for path in [&data, &pwfile] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
    }
    let run = |program: &Path| {
        let mut cmd = if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.current_dir(&top);
        cmd
    };
    let out = run(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", ROLE, "--auth=scram-sha-256", "--pwfile"])
        .arg(&pwfile)
        .args(["--encoding=UTF8", "--locale=C", "--no-sync"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='{}' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200 -c shared_buffers=32MB",
            data.display()
        );
        let out = run(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-w", "-t", "30", "-l"])
            .arg(data.join("server.log"))
            .args(["-o", &options, "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            eprintln!(
                "test PostgreSQL on 127.0.0.1:{port} ({}), started in {:?}",
                data.display(),
                started.elapsed()
            );
            return Ok(Server {
                admin_url: format!("postgres://{ROLE}:{PASSWORD}@127.0.0.1:{port}/postgres"),
            });
        }
        // Most likely the port was taken between our probe and the server's bind: try another.
        let mut log = String::new();
        if let Ok(mut f) = std::fs::File::open(data.join("server.log")) {
            f.read_to_string(&mut log).ok();
        }
        last = format!(
            "pg_ctl start failed: {}{log}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Err(last)
}

extern "C" fn stop_at_exit() {
    let taken = WATCHDOG.lock().ok().and_then(|mut w| w.take());
    if let Some((stdin, mut child)) = taken {
        drop(stdin);
        child.wait().ok();
    }
}

/// The newest installed major version's `bin/`.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // getpwnam is not thread-safe, but this runs once, inside a OnceLock.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5/t1?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h", "t2"),
            "postgres://h/t2"
        );
    }
}
