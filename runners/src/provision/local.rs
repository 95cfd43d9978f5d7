//! `--node-builds local`: the [`Builds`] facade with a local subprocess of
//! `mooring-provisioner` per build instead of a CodeBuild build (no build runs
//! outside AWS). Same contract: a build per idempotency token (starting it again
//! returns it), states IN_PROGRESS → SUCCEEDED | FAILED, a log location.
//!
//! Each build has a directory named after its token holding `pid`, `log` and,
//! once the provisioner has finished, `result` (written by the provisioner
//! itself, so a build that outlives a controller crash still reports). A build
//! whose process is gone without a result was killed: FAILED.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::cloud::codebuild::{Build, BuildRequest, BuildState, Project, ProjectInput};
use crate::cloud::{Builds, CloudError, CloudResult, ErrorKind, ops};

/// The environment variable that tells the provisioner where to write its result.
pub const RESULT_FILE_ENV: &str = "MOORING_BUILD_RESULT_FILE";

/// What the provisioner writes when it finishes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildResult {
    pub succeeded: bool,
    pub message: String,
}

/// Local builds: subprocesses of `program` with state under `dir`.
pub struct LocalBuilds {
    program: PathBuf,
    dir: PathBuf,
    /// Extra environment for every build (the AWS endpoint, region, ...).
    env: BTreeMap<String, String>,
}

fn safe(token: &str) -> String {
    token.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn io_error(op: &crate::cloud::Op, what: &str, e: std::io::Error) -> CloudError {
    CloudError::new(op, ErrorKind::Other, format!("{what}: {e}"))
}

impl LocalBuilds {
    pub fn new(program: PathBuf, dir: PathBuf, env: BTreeMap<String, String>) -> LocalBuilds {
        LocalBuilds { program, dir, env }
    }

    /// `mooring-provisioner` next to the running executable.
    pub fn default_program() -> PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("mooring-provisioner")))
            .unwrap_or_else(|| PathBuf::from("mooring-provisioner"))
    }

    fn build_dir(&self, id: &str) -> PathBuf {
        let token = id.split_once(':').map_or(id, |(_, t)| t);
        self.dir.join(safe(token))
    }

    fn read(&self, id: &str) -> Option<Build> {
        let dir = self.build_dir(id);
        if !dir.join("pid").exists() {
            return None;
        }
        let logs = Some(dir.join("log").display().to_string());
        let finished =
            std::fs::read_to_string(dir.join("result")).ok().and_then(|s| serde_json::from_str::<BuildResult>(&s).ok());
        let (state, message) = match finished {
            Some(r) if r.succeeded => (BuildState::Succeeded, None),
            Some(r) => (BuildState::Failed, Some(r.message)),
            None if alive(&dir) => (BuildState::InProgress, None),
            None => (BuildState::Failed, Some("the provisioner exited without a result (killed?)".to_string())),
        };
        let phase = Some(if state.finished() { "COMPLETED" } else { "BUILD" }.to_string());
        Some(Build { id: id.to_string(), state, phase, logs, message })
    }
}

/// True while the build's process runs (a zombie counts as gone).
fn alive(dir: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(dir.join("pid")).ok().and_then(|p| p.trim().parse::<u32>().ok()) else {
        return false;
    };
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[async_trait]
impl Builds for LocalBuilds {
    /// Local builds have no projects: every project is "created" (a no-op)
    /// as the install's own.
    async fn project(&self, _name: &str) -> CloudResult<Option<Project>> {
        Ok(None)
    }

    async fn create_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        Ok(Project {
            name: input.name.clone(),
            arn: format!("local:{}", input.name),
            buildspec: None,
            tags: input.tags.clone(),
        })
    }

    async fn update_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        self.create_project(input).await
    }

    async fn start_build(&self, request: &BuildRequest) -> CloudResult<Build> {
        let op = &ops::START_BUILD;
        let id = format!("{}:{}", request.project, safe(&request.idempotency_token));
        if let Some(build) = self.read(&id) {
            return Ok(build);
        }
        let dir = self.build_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(op, "creating the build directory", e))?;
        let log = std::fs::File::create(dir.join("log")).map_err(|e| io_error(op, "creating the build log", e))?;
        let err_log = log.try_clone().map_err(|e| io_error(op, "opening the build log", e))?;
        let mut child = tokio::process::Command::new(&self.program)
            .envs(&self.env)
            .envs(&request.env)
            .env(RESULT_FILE_ENV, dir.join("result"))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| io_error(op, &format!("starting {}", self.program.display()), e))?;
        let pid = child.id().unwrap_or_default();
        std::fs::write(dir.join("pid"), pid.to_string()).map_err(|e| io_error(op, "recording the build", e))?;
        // Reap it when it exits; if this process dies first, init does.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        tracing::info!(build = %id, pid, "started a local provisioner build");
        self.read(&id).ok_or_else(|| CloudError::new(op, ErrorKind::Other, "the build vanished"))
    }

    async fn builds(&self, ids: &[String]) -> CloudResult<Vec<Build>> {
        Ok(ids.iter().filter_map(|id| self.read(id)).collect())
    }
}
