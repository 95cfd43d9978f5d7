//! Redis as ElastiCache runs it in the AWS install: TLS in transit and an
//! auth token. A private `redis-server` with TLS and `requirepass` on a spare
//! port, a CA of the test's own (trusted through `SSL_CERT_FILE`), and
//! `mooring serve` with `REDIS_URL=rediss://…` and the token in
//! `MOORING_REDIS_PASSWORD`: it becomes ready and takes its shard leases; with
//! a wrong token Redis is reported unavailable.
//!
//! Skipped, saying why, when `openssl` or a TLS-capable `redis-server` is
//! missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tests::{Stack, WAIT, eventually, free_port};

/// A `redis-server` child process, killed on drop.
struct PrivateRedis(Child);

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).current_dir(dir).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A CA and a server certificate for 127.0.0.1 in `dir`.
fn certificates(dir: &Path) -> Result<(), String> {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=mooring-e2e-ca",
        ],
    )?;
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    )?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    )
}

fn start_redis(dir: &Path, port: u16, password: &str) -> Result<PrivateRedis, String> {
    let child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem"])
        .args(["--tls-auth-clients", "no", "--requirepass", password, "--save", "", "--appendonly", "no"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    Ok(PrivateRedis(child))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reaches_redis_over_tls_with_an_auth_token() {
    let stack = Stack::new("redis_tls").await;
    let dir = stack.dir.join("tls");
    std::fs::create_dir_all(&dir).expect("a directory");
    if let Err(e) = certificates(&dir) {
        eprintln!("skipped: cannot make certificates: {e}");
        return;
    }
    let port = free_port();
    let mut redis = match start_redis(&dir, port, "s3cret-token") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(status)) = redis.0.try_wait() {
        eprintln!("skipped: redis-server without TLS support here (exited {status})");
        return;
    }
    let ca = dir.join("ca.pem").display().to_string();
    let url = format!("rediss://127.0.0.1:{port}");

    let server = stack
        .server()
        .env("REDIS_URL", &url)
        .env("MOORING_REDIS_PASSWORD", "s3cret-token")
        .env("SSL_CERT_FILE", &ca)
        .start()
        .await;
    eventually("ready over TLS, leases taken", WAIT, async || {
        let ready = server.http(reqwest::Method::GET, "/readyz").send().await.map_err(|e| e.to_string())?;
        let body: serde_json::Value = ready.json().await.map_err(|e| e.to_string())?;
        let leases = server.log().contains("shard leases changed");
        if body["redis"] == "ok" && leases { Ok(()) } else { Err(format!("{body}, leases taken: {leases}")) }
    })
    .await;

    // The wrong token: Redis refuses, and /readyz says so.
    let wrong = stack
        .server()
        .env("REDIS_URL", &url)
        .env("MOORING_REDIS_PASSWORD", "not-the-token")
        .env("SSL_CERT_FILE", &ca)
        .start()
        .await;
    eventually("Redis reported unavailable", WAIT, async || {
        let ready = wrong.http(reqwest::Method::GET, "/readyz").send().await.map_err(|e| e.to_string())?;
        let status = ready.status();
        let body: serde_json::Value = ready.json().await.map_err(|e| e.to_string())?;
        let redis = body["redis"].as_str().unwrap_or_default().to_string();
        if status == 503 && redis.starts_with("unavailable") { Ok(()) } else { Err(format!("{status} {body}")) }
    })
    .await;
}
