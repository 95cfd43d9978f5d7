//! `mooring serve` as a child process.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::CliOutput;
use crate::stack::{Stack, mooring_command, tail};

/// How long a server may take to answer `/healthz` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many log lines a failure report shows per server (on drop during a panic).
const LOG_TAIL: usize = 80;

/// How many log lines a panic message quotes (the full tail follows from `Drop`).
const SHORT_TAIL: usize = 15;

/// A free TCP port on 127.0.0.1 (bound, read and released; a later bind can
/// still lose a race, which [`Server::wait_healthy`] handles by picking another).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port()
}

/// Settings of a server to start; see [`Stack::server`].
///
/// Defaults: the stack's environment ([`Stack::env`]), the stack's bootstrap token,
/// a free port on 127.0.0.1, `MOORING_LEASE_SECONDS=5`, `MOORING_SHARDS=8`,
/// `MOORING_SHUTDOWN_GRACE_SECONDS=5`, and `MOORING_REPLICA_ID` = the server's name.
/// [`ServerBuilder::env`] overrides any of them.
pub struct ServerBuilder<'a> {
    stack: &'a Stack,
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
}

impl<'a> ServerBuilder<'a> {
    pub(crate) fn new(stack: &'a Stack, name: String) -> ServerBuilder<'a> {
        ServerBuilder { stack, name, args: Vec::new(), env: Vec::new(), unset: Vec::new() }
    }

    /// Names the server (log file `<name>.log`, replica id, messages). Unique per stack.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// An argument after `mooring serve` (`--api-only`, `--controller-only`, ...).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An environment variable (overrides the defaults).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Acts on moto through the AWS SDK (not the simulated cloud), looking
    /// again every second while something is in flight.
    pub fn on_moto(self, moto: &crate::Moto) -> Self {
        self.env("MOORING_CLOUD", "aws").env("MOORING_AWS_ENDPOINT", &moto.endpoint).env("MOORING_POLL_SECONDS", "1")
    }

    /// Removes a variable the test process has from the server's environment
    /// (`AWS_REGION` in a test about where the region comes from); a value
    /// given with [`ServerBuilder::env`] wins.
    pub fn env_remove(mut self, key: impl Into<String>) -> Self {
        self.unset.push(key.into());
        self
    }

    /// Starts the process and returns at once; call [`Server::wait_healthy`] before use.
    pub fn spawn(self) -> Server {
        let stack = self.stack;
        let mut vars = stack.env();
        // A variable set with `env` is kept even if `env_remove` named it.
        let unset: Vec<String> = self.unset.into_iter().filter(|k| !self.env.iter().any(|(e, _)| e == k)).collect();
        vars.extend([
            ("MOORING_BOOTSTRAP_TOKEN".to_string(), stack.token.clone()),
            ("MOORING_LEASE_SECONDS".to_string(), "5".to_string()),
            ("MOORING_SHARDS".to_string(), "8".to_string()),
            ("MOORING_SHUTDOWN_GRACE_SECONDS".to_string(), "5".to_string()),
            ("MOORING_REPLICA_ID".to_string(), self.name.clone()),
        ]);
        let fixed_listen = self.env.iter().rev().find(|(k, _)| k == "MOORING_LISTEN").map(|(_, v)| v.clone());
        vars.extend(self.env);
        vars.retain(|(k, _)| k != "MOORING_LISTEN");
        let addr = match &fixed_listen {
            Some(a) => a.parse().unwrap_or_else(|e| panic!("MOORING_LISTEN={a}: {e}")),
            None => SocketAddr::from(([127, 0, 0, 1], free_port())),
        };
        let http =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("an HTTP client");
        let mut server = Server {
            log: stack.dir.join(format!("{}.log", self.name)),
            name: self.name,
            addr,
            fixed_addr: fixed_listen.is_some(),
            token: stack.token.clone(),
            client_env: stack.env(),
            vars,
            unset,
            args: self.args,
            child: None,
            exit: None,
            http,
        };
        server.spawn_child();
        server
    }

    /// Starts the process and waits until it answers `/healthz`.
    pub async fn start(self) -> Server {
        let mut server = self.spawn();
        server.wait_healthy().await;
        server
    }
}

/// A running `mooring serve`. Killed (SIGKILL) on drop; when the test is failing,
/// the tail of its log is printed.
pub struct Server {
    /// The name given to the builder.
    pub name: String,
    addr: SocketAddr,
    fixed_addr: bool,
    token: String,
    client_env: Vec<(String, String)>,
    vars: Vec<(String, String)>,
    unset: Vec<String>,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    exit: Option<ExitStatus>,
    http: reqwest::Client,
}

impl Server {
    fn spawn_child(&mut self) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let _ = writeln!(log, "=== e2e: mooring serve {} (MOORING_LISTEN={}) ===", self.args.join(" "), self.addr);
        let err = log.try_clone().expect("a second handle on the log file");
        let mut cmd = mooring_command(&self.vars);
        for key in &self.unset {
            cmd.env_remove(key);
        }
        cmd.env("MOORING_LISTEN", self.addr.to_string())
            .arg("serve")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start mooring serve for {}: {e}", self.name));
        self.child = Some(child);
        self.exit = None;
    }

    /// Waits (bounded) until the process answers `/healthz` and its log says it is
    /// listening on its address (so a different process that won a race for the
    /// port cannot be mistaken for it). If the port was taken meanwhile, starts
    /// again on another one.
    pub async fn wait_healthy(&mut self) {
        let mut attempts = 1;
        let mut deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit() {
                let log = tail(&self.log, LOG_TAIL);
                if !self.fixed_addr && attempts < 3 && log.contains("Address already in use") {
                    attempts += 1;
                    self.addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
                    self.spawn_child();
                    deadline = Instant::now() + START_TIMEOUT;
                    continue;
                }
                panic!(
                    "{} exited ({status}) before answering /healthz; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, SHORT_TAIL)
                );
            }
            let healthy = matches!(self.http.get(self.url("/healthz")).send().await, Ok(r) if r.status().is_success());
            if healthy && self.log_says_listening() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not become healthy within {START_TIMEOUT:?} (healthz answered: {healthy}); log {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, SHORT_TAIL)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_says_listening(&self) -> bool {
        let addr = self.addr.to_string();
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // Only the current run (after the last header).
        let current = text.rsplit("=== e2e: mooring serve").next().unwrap_or_default();
        current.lines().any(|l| l.contains("listening") && l.contains(&addr))
    }

    /// The base URL plus `path` (`/healthz`, `/v1/...`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap (`admin:*`) token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a spawned process").id()
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client command against this server with the bootstrap token.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let token = self.token.clone();
        self.cli_as(&token, args).await
    }

    /// A client command against this server with `token`.
    pub async fn cli_as(&self, token: &str, args: &[&str]) -> CliOutput {
        let mut vars = self.client_env.clone();
        vars.push(("MOORING_SERVER".into(), self.url("")));
        vars.push(("MOORING_TOKEN".into(), token.to_string()));
        CliOutput::run(mooring_command(&vars).into(), args).await
    }

    /// A long-running client command (`get -w`, `logs -f`) against this server
    /// with the bootstrap token: its stdout is read line by line as it comes;
    /// it is killed when dropped.
    pub fn cli_lines(
        &self,
        args: &[&str],
    ) -> (tokio::process::Child, tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>) {
        use tokio::io::AsyncBufReadExt;
        let mut vars = self.client_env.clone();
        vars.push(("MOORING_SERVER".into(), self.url("")));
        vars.push(("MOORING_TOKEN".into(), self.token.clone()));
        let mut command: tokio::process::Command = mooring_command(&vars).into();
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("mooring {args:?}: {e}"));
        let stdout = child.stdout.take().expect("a piped stdout");
        (child, tokio::io::BufReader::new(stdout).lines())
    }

    /// An HTTP request to this server with the bootstrap token.
    pub fn api(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(&self.token)
    }

    /// An HTTP request with no token.
    pub fn http(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `GET path` with the bootstrap token, as JSON; `Err` says what went wrong
    /// (for use inside [`crate::eventually`]).
    pub async fn get_json(&self, path: &str) -> Result<Value, String> {
        let resp = self.api(Method::GET, path).send().await.map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("GET {path}: reading the body: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: not JSON ({e}): {body}"))
    }

    /// The Prometheus text of `/metrics` (with the bootstrap token).
    pub async fn metrics(&self) -> Result<String, String> {
        let resp =
            self.api(Method::GET, "/metrics").send().await.map_err(|e| format!("{}: /metrics: {e}", self.name))?;
        if !resp.status().is_success() {
            return Err(format!("{}: /metrics: {}", self.name, resp.status()));
        }
        resp.text().await.map_err(|e| format!("{}: /metrics: {e}", self.name))
    }

    /// Sends SIGTERM (graceful shutdown); see [`Server::wait_exit`].
    pub fn terminate(&self) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -TERM {pid}: {e}"));
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            self.exit = child.wait().ok();
        }
    }

    /// Kills the process if it still runs (SIGKILL, a crash) and starts it again
    /// with the same settings, waiting until it is healthy. The address stays the
    /// same unless the port was taken meanwhile.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn_child();
        self.wait_healthy().await;
    }

    /// The exit status if the process has ended.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        }
        self.exit
    }

    /// Waits (bounded) for the process to end and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not exit within {timeout:?}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, SHORT_TAIL)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- last {LOG_TAIL} lines of {} ({}, exit: {:?}) -----\n{}\n----- end of {} -----",
                self.name,
                self.log.display(),
                self.exit,
                tail(&self.log, LOG_TAIL),
                self.name
            );
        }
    }
}
