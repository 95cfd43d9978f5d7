//! CodeBuild: the project that runs `mooring-provisioner`, and its builds.
//!
//! Contract: `start_build` with an `idempotency_token` used within the last
//! five minutes returns the build it started (AWS; moto ignores it); build ids
//! are `project:uuid`; `builds` takes at most [`MAX_BATCH_GET_BUILDS`] ids. The
//! local implementation (`--node-builds local`) keeps the same contract with a
//! subprocess per build.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{CloudResult, Tags};

/// AWS accepts at most this many ids in one BatchGetBuilds.
pub const MAX_BATCH_GET_BUILDS: usize = 100;

/// What CreateProject / UpdateProject get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInput {
    pub name: String,
    pub description: String,
    /// The buildspec, inline (YAML).
    pub buildspec: String,
    /// The build image (`aws/codebuild/amazonlinux-x86_64-standard:5.0`).
    pub image: String,
    /// `BUILD_GENERAL1_SMALL`, ...
    pub compute_type: String,
    pub service_role: String,
    /// Where the source comes from (`s3://bucket/key`); CodeBuild needs one even
    /// when the buildspec is inline.
    pub source_location: String,
    pub timeout_minutes: u32,
    pub tags: Tags,
}

/// A project as BatchGetProjects reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub arn: String,
    pub buildspec: Option<String>,
    pub tags: Tags,
}

/// What StartBuild gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub project: String,
    /// Environment variable overrides (plain text).
    pub env: BTreeMap<String, String>,
    /// At most 64 characters; valid for five minutes in AWS.
    pub idempotency_token: String,
}

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildState {
    InProgress,
    Succeeded,
    Failed,
    Fault,
    Stopped,
    TimedOut,
}

impl BuildState {
    /// Finished, one way or another.
    pub fn finished(self) -> bool {
        self != BuildState::InProgress
    }

    /// The name CodeBuild uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::InProgress => "IN_PROGRESS",
            BuildState::Succeeded => "SUCCEEDED",
            BuildState::Failed => "FAILED",
            BuildState::Fault => "FAULT",
            BuildState::Stopped => "STOPPED",
            BuildState::TimedOut => "TIMED_OUT",
        }
    }
}

/// A build as BatchGetBuilds reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub id: String,
    pub state: BuildState,
    /// The current phase (`PROVISIONING`, `BUILD`, `COMPLETED`, ...).
    pub phase: Option<String>,
    /// Where the log is (a CloudWatch Logs deep link, or a local file).
    pub logs: Option<String>,
    /// Why it failed, when the build says.
    pub message: Option<String>,
}

/// CodeBuild (or the local stand-in), as Mooring uses it.
#[async_trait]
pub trait Builds: Send + Sync {
    /// The project, or `None`.
    async fn project(&self, name: &str) -> CloudResult<Option<Project>>;
    async fn create_project(&self, input: &ProjectInput) -> CloudResult<Project>;
    /// Rewrites the project (tags included: the list replaces the old one).
    async fn update_project(&self, input: &ProjectInput) -> CloudResult<Project>;
    /// Starts a build (or returns the one started with the same token).
    async fn start_build(&self, request: &BuildRequest) -> CloudResult<Build>;
    /// Builds by id (unknown ids are left out).
    async fn builds(&self, ids: &[String]) -> CloudResult<Vec<Build>>;
}

/// What a build does, for the stand-ins that run builds themselves (the
/// simulated cloud in-process, `--node-builds local` as a subprocess): given
/// the build's environment, do the work and say how it ended.
#[async_trait]
pub trait BuildExecutor: Send + Sync {
    /// Runs one build to the end; `Err` carries the failure message.
    async fn execute(&self, env: &BTreeMap<String, String>) -> Result<(), String>;
}
