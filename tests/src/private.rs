//! A Postgres and a Redis of one test's own, as child processes on spare ports,
//! so the test can crash and restart them without touching the machine's shared
//! services (or any other test). Both are killed on drop.
//!
//! - [`PrivatePostgres`]: `initdb` into a scratch directory, then `postgres`
//!   listening on 127.0.0.1 only (trust authentication, user `postgres`,
//!   `fsync=off`: a crash here is a process crash, not a power cut). Postgres
//!   refuses to run as root, so when the tests run as root the cluster belongs
//!   to the `postgres` user and the processes run as it. The server runs in a
//!   process group of its own, so [`PrivatePostgres::crash`] SIGKILLs the
//!   postmaster and every backend at once (a crash; the next start recovers
//!   from the WAL), while [`PrivatePostgres::stop`] is a fast shutdown.
//! - [`PrivateRedis`]: `redis-server` without persistence (`--save ''
//!   --appendonly no`), so a restart loses every key, as a failover to an
//!   empty node or a restarted cache without persistence does.
//!
//! The binaries: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`
//! (where Debian's `postgresql` package puts them; `deploy/local/stack.sh`
//! installs it), and `redis-server` from `PATH`.

use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::server::free_port;

/// How long a private server may take to accept connections after a start
/// (a Postgres start after a crash replays the WAL first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A Postgres server of the test's own; see the module documentation.
pub struct PrivatePostgres {
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    /// The `postgres` user's uid and gid when the tests run as root.
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

impl PrivatePostgres {
    /// Creates a cluster in `dir/postgres` and starts it on a free port; waits
    /// until it accepts connections.
    pub async fn start(dir: &Path) -> PrivatePostgres {
        let bin = postgres_bin_dir();
        let owner = if running_as_root() { Some(postgres_user()) } else { None };
        let root = dir.join("postgres");
        let data = root.join("data");
        let socket_dir = root.join("socket");
        for d in [&root, &data, &socket_dir] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
        }
        if let Some((uid, gid)) = owner {
            for d in [&data, &socket_dir] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("cannot give {} to the postgres user: {e}", d.display()));
            }
        }
        let log = root.join("postgres.log");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .current_dir(&root)
            .stdin(Stdio::null());
        if let Some((uid, gid)) = owner {
            initdb.uid(uid).gid(gid);
        }
        let out = initdb.output().unwrap_or_else(|e| panic!("cannot run {}/initdb: {e}", bin.display()));
        assert!(
            out.status.success(),
            "initdb -D {} failed ({}):\n{}{}",
            data.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = PrivatePostgres { port: free_port(), bin, data, socket_dir, log, owner, child: None };
        pg.spawn();
        pg.wait_ready().await;
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log (every start appends to it).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let err = log.try_clone().expect("a second handle on the log file");
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"])
            // Three replicas' pools (API, change feed, controller) fit with room.
            .args(["-c", "max_connections=300", "-c", "shared_buffers=32MB"])
            .current_dir(self.data.parent().unwrap_or(&self.data))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            // A group of its own: `crash` kills the backends with the postmaster.
            .process_group(0);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}/postgres: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Waits (bounded) until the server accepts connections and answers a query.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = self.url("postgres");
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "postgres exited ({status}) before accepting connections; log {}:\n{}",
                    self.log.display(),
                    crate::stack::tail(&self.log, 20)
                );
            }
            let last = match sqlx_ping(&url).await {
                Ok(()) => return,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!(
                    "postgres on port {} not ready within {READY_TIMEOUT:?} ({last}); log {}:\n{}",
                    self.port,
                    self.log.display(),
                    crate::stack::tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs the postmaster and every backend (its process group): a crash.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// A fast shutdown (SIGINT: sessions are ended, a checkpoint is written);
    /// waits until the server has exited.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        signal(child.id(), "INT");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if child.try_wait().ok().flatten().is_some() {
                // Backends leave with the postmaster; make sure of it.
                kill_group(child.id(), "KILL");
                return;
            }
            if Instant::now() >= deadline {
                kill_group(child.id(), "KILL");
                let _ = child.wait();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the server again (same port, same data) after [`PrivatePostgres::crash`]
    /// or [`PrivatePostgres::stop`], and waits until it accepts connections.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "postgres is still running");
        self.spawn();
        self.wait_ready().await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A Redis server of the test's own; see the module documentation.
pub struct PrivateRedis {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free port (log in `dir/redis.log`) and waits
    /// until it answers PING.
    pub async fn start(dir: &Path) -> PrivateRedis {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut redis = PrivateRedis { port: free_port(), log: dir.join("redis.log"), child: None };
        redis.spawn();
        redis.wait_ready().await;
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--logfile"])
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server (deploy/local/stack.sh installs it): {e}"));
        self.child = Some(child);
    }

    /// Waits (bounded) until it answers PING.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "redis-server exited ({status}); log {}:\n{}",
                    self.log.display(),
                    crate::stack::tail(&self.log, 20)
                );
            }
            let last = match redis_ping(&self.url()).await {
                Ok(()) => return,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!("redis-server on port {} not ready within {READY_TIMEOUT:?}: {last}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: every key is gone.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty), and waits until it answers.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        self.spawn();
        self.wait_ready().await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.crash();
    }
}

async fn sqlx_ping(url: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.map_err(|e| e.to_string())?;
    sqlx::query("SELECT 1").execute(&mut conn).await.map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    Ok(())
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| e.to_string())?;
    if pong == "PONG" { Ok(()) } else { Err(format!("PING answered {pong:?}")) }
}

/// `kill -SIGNAL PID`.
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).stderr(Stdio::null()).status();
}

/// `kill -SIGNAL -- -PGID`: the whole process group.
fn kill_group(pgid: u32, sig: &str) {
    let _ =
        Command::new("kill").arg(format!("-{sig}")).arg("--").arg(format!("-{pgid}")).stderr(Stdio::null()).status();
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The uid and gid of the `postgres` user (who owns a private cluster when the
/// tests run as root: Postgres refuses to run as root).
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run id {flag} postgres: {e}"));
        assert!(
            out.status.success(),
            "running as root needs a `postgres` user to own a private Postgres (the postgresql package creates it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|e| panic!("id {flag} postgres: {e}"))
    };
    (id("-u"), id("-g"))
}

/// Where `initdb` and `postgres` are.
fn postgres_bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no initdb: neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin has one (deploy/local/stack.sh installs postgresql)"
        )
    })
}
