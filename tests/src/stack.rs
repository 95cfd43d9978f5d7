//! The per-test world: a database, a Redis prefix, keys, a token, a directory.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::bin::mooring_bin;
use crate::cli::CliOutput;
use crate::db::TestDb;
use crate::server::ServerBuilder;

/// Everything one test owns. Servers started from it share its database, Redis
/// prefix, signing key and bootstrap token, so several can form one installation
/// (an API replica and controller replicas).
pub struct Stack {
    /// A short name for messages and file names (the test's name).
    pub name: String,
    /// The test's own database.
    pub db: TestDb,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `MOORING_REDIS_PREFIX`: `e2e-<uuid>`, so no two tests share leases or buckets.
    pub redis_prefix: String,
    /// `MOORING_SIGNING_KEY`: a 32-byte Ed25519 seed in hex, the same for every
    /// process of the stack (servers and `audit verify`).
    pub signing_key: String,
    /// `MOORING_BOOTSTRAP_TOKEN`: an `admin:*` token on every server of the stack.
    pub token: String,
    /// Scratch directory: logs, documents; removed on drop unless the test failed
    /// or `E2E_KEEP_LOGS` is set.
    pub dir: PathBuf,
    servers: AtomicUsize,
}

impl Stack {
    /// Creates the database and the directory; makes sure the binary is built.
    pub async fn new(name: &str) -> Stack {
        let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        Stack::build(name, None, redis_url).await
    }

    /// A stack on a Postgres and a Redis of the test's own (see
    /// [`crate::PrivatePostgres`], [`crate::PrivateRedis`]) instead of the
    /// shared ones: its database is created on `postgres_url`'s server (whose
    /// `postgres` database is used to create and drop it), and every process
    /// of the stack gets `redis_url`.
    pub async fn on(name: &str, postgres_url: &str, redis_url: &str) -> Stack {
        Stack::build(name, Some(postgres_url), redis_url.to_string()).await
    }

    async fn build(name: &str, postgres_url: Option<&str>, redis_url: String) -> Stack {
        // Build (or find) the binary first, off the async runtime.
        if let Err(e) = tokio::task::spawn_blocking(mooring_bin).await {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("building mooring: {e}"),
            }
        }
        let db = match postgres_url {
            Some(url) => TestDb::create_on(url, &crate::db::with_database(url, "postgres")).await,
            None => TestDb::create().await,
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("mooring-e2e-{name}-{}", &id[..12]));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let signing_key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Stack {
            name: name.to_string(),
            db,
            redis_url,
            redis_prefix: format!("e2e-{id}"),
            signing_key,
            token: format!("e2e-bootstrap-{}", uuid::Uuid::new_v4().simple()),
            dir,
            servers: AtomicUsize::new(0),
        }
    }

    /// A `mooring serve` process to configure and start.
    pub fn server(&self) -> ServerBuilder<'_> {
        let n = self.servers.fetch_add(1, Ordering::Relaxed);
        ServerBuilder::new(self, format!("server-{n}"))
    }

    /// The environment every process of this stack gets: the database, Redis, the
    /// prefix, the signing key, cache and configuration directories inside
    /// [`Stack::dir`], and no proxy for loopback addresses.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.db.url.clone()),
            ("REDIS_URL".into(), self.redis_url.clone()),
            ("MOORING_REDIS_PREFIX".into(), self.redis_prefix.clone()),
            ("MOORING_SIGNING_KEY".into(), self.signing_key.clone()),
            ("MOORING_CACHE_DIR".into(), self.dir.join("cache").display().to_string()),
            // The CLI's configuration file is looked up here, so a developer's own
            // ~/.config/mooring/config.toml never steers a test.
            ("XDG_CONFIG_HOME".into(), self.dir.join("config").display().to_string()),
            // The in-process simulated cloud, so tests that are not about AWS do
            // not share moto's account; AWS tests set `MOORING_CLOUD=aws`.
            ("MOORING_CLOUD".into(), "sim".into()),
            ("NO_PROXY".into(), "127.0.0.1,localhost,::1".into()),
            ("no_proxy".into(), "127.0.0.1,localhost,::1".into()),
        ]
    }

    /// Runs `mooring ARGS` with the stack's environment and no server (`migrate`,
    /// `audit verify`, `schema`).
    pub async fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with(&[], args).await
    }

    /// [`Stack::run`] with extra environment variables (later ones win).
    pub async fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> CliOutput {
        let mut vars = self.env();
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        CliOutput::run(mooring_command(&vars).into(), args).await
    }

    /// Writes `contents` to `file` in the scratch directory and returns its path.
    pub fn write(&self, file: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// The public key (hex) of [`Stack::signing_key`].
    pub fn public_key(&self) -> String {
        let seed: [u8; 32] = hex::decode(&self.signing_key).expect("hex seed").try_into().expect("a 32-byte seed");
        hex::encode(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes())
    }

    /// A connection to Redis (to look at leases and the like).
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .unwrap_or_else(|e| panic!("invalid REDIS_URL {}: {e}", self.redis_url))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {}: {e}", self.redis_url))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let url = self.redis_url.clone();
        let prefix = self.redis_prefix.clone();
        if let Err(e) = block_on_thread(delete_redis_prefix(url, prefix)) {
            eprintln!("warning: cannot delete the Redis keys of {}: {e}", self.redis_prefix);
        }
        if std::thread::panicking() || std::env::var_os("E2E_KEEP_LOGS").is_some_and(|v| !v.is_empty()) {
            eprintln!("[{}] kept {} (logs, documents)", self.name, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        // `db` is dropped after this, which drops the database.
    }
}

/// `mooring` with `vars` set and every inherited `MOORING_*` variable removed, so a
/// developer's shell settings cannot leak into a test.
pub(crate) fn mooring_command(vars: &[(String, String)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(mooring_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOORING_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

/// Deletes every key under `prefix:`.
async fn delete_redis_prefix(url: String, prefix: String) -> Result<(), String> {
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.map_err(|e| e.to_string())?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Runs `f` to completion on a fresh runtime in a new thread, bounded to 30 s: for
/// async clean-up in `Drop`, which may run inside or outside a runtime.
pub(crate) fn block_on_thread<F>(f: F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), f).await.map_err(|_| "timed out after 30s".to_string())?
        })
    })
    .join()
    .map_err(|_| "the clean-up thread panicked".to_string())?
}

/// The last `lines` lines of a file (for failure reports).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
