//! Running the `mooring` binary as a command and checking what it did.

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

/// No single command may run longer than this (a hung command fails the test
/// instead of hanging it).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What a `mooring` command did.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Runs `cmd` (stdin closed, output captured, bounded by [`COMMAND_TIMEOUT`]).
    pub(crate) async fn run(mut cmd: tokio::process::Command, args: &[&str]) -> CliOutput {
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let out = match tokio::time::timeout(COMMAND_TIMEOUT, cmd.output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => panic!("cannot run mooring {args:?}: {e}"),
            Err(_) => panic!("mooring {args:?} did not finish within {COMMAND_TIMEOUT:?}"),
        };
        CliOutput {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Fails the test unless the command exited 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code_is(0)
    }

    /// Fails the test unless the command exited with `code`.
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit code {code}\n{self}");
        self
    }

    /// Fails the test unless the command exited with a code other than 0.
    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert!(matches!(self.code, Some(c) if c != 0), "expected a failure\n{self}");
        self
    }

    /// Fails the test unless stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "expected {text:?} on stdout\n{self}");
        self
    }

    /// Fails the test unless stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "expected {text:?} on stderr\n{self}");
        self
    }

    /// Fails the test unless stdout or stderr contains `text`.
    #[track_caller]
    pub fn output_has(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text) || self.stderr.contains(text), "expected {text:?} in the output\n{self}");
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{self}"))
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ mooring {}", self.args.join(" "))?;
        match self.code {
            Some(c) => writeln!(f, "exit code: {c}")?,
            None => writeln!(f, "killed by a signal")?,
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}
