//! Simulated CodeBuild: projects by name, and builds that run a
//! [`BuildExecutor`] in a spawned task (QUEUED → PROVISIONING → BUILD →
//! COMPLETED), with StartBuild's idempotency token (five minutes), the
//! account's concurrent build quota and BatchGetBuilds's batch limit.
//!
//! A build runs "in AWS": a controller crash ([`super::SimCloud::crash_at`])
//! does not stop it, and the calls its executor makes are not the
//! controller's (see [`in_build`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{ACCOUNT, Ctx, Inner, REGION, Slot, check_tags, faults};
use crate::cloud::codebuild::{
    Build, BuildExecutor, BuildRequest, BuildState, Builds, MAX_BATCH_GET_BUILDS, Project, ProjectInput,
};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, ops};

/// How long StartBuild remembers an idempotency token.
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// AWS's limit of an idempotency token.
const MAX_TOKEN: usize = 64;

/// AWS's range of a project's build timeout, in minutes.
const TIMEOUT_MINUTES: (u32, u32) = (5, 2160);

tokio::task_local! {
    /// Set inside a build's task: calls made there are the build's, not the controller's.
    static IN_BUILD: ();
}

/// Whether the current task is a simulated build (its calls are made "in
/// AWS": counted and faulted, but neither crash targets nor counted towards one).
pub(super) fn in_build() -> bool {
    IN_BUILD.try_with(|_| ()).is_ok()
}

/// The ARN of a project.
fn project_arn(name: &str) -> String {
    format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}")
}

/// The CodeBuild facade of a [`super::SimCloud`], with what its builds do.
pub(super) struct SimBuilds {
    pub(super) inner: Arc<Inner>,
    pub(super) executor: Arc<dyn BuildExecutor>,
}

/// One project.
#[derive(Debug, Clone)]
struct ProjectRec {
    input: ProjectInput,
}

impl ProjectRec {
    fn to_project(&self) -> Project {
        Project {
            name: self.input.name.clone(),
            arn: project_arn(&self.input.name),
            buildspec: Some(self.input.buildspec.clone()),
            tags: self.input.tags.clone(),
        }
    }
}

/// One build.
#[derive(Debug, Clone)]
struct BuildRec {
    id: String,
    env: BTreeMap<String, String>,
    state: BuildState,
    /// Set by the build task once the executor runs (`BUILD`) and when it
    /// ends (`COMPLETED`); before that the phase follows the clock.
    phase: Option<&'static str>,
    message: Option<String>,
    started: Instant,
}

impl BuildRec {
    fn phase(&self, ctx: &Ctx<'_>) -> &'static str {
        self.phase.unwrap_or(if ctx.now < self.started + ctx.cfg.build_queue_delay / 2 {
            "QUEUED"
        } else {
            "PROVISIONING"
        })
    }

    fn to_build(&self, ctx: &Ctx<'_>) -> Build {
        Build {
            id: self.id.clone(),
            state: self.state,
            phase: Some(self.phase(ctx).to_owned()),
            logs: Some(format!("sim://codebuild/{}", self.id)),
            message: self.message.clone(),
        }
    }
}

/// A build StartBuild just started, for the caller to run.
pub(super) struct NewBuild {
    id: String,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

/// Everything CodeBuild holds.
#[derive(Default)]
pub(super) struct CodeBuildState {
    projects: BTreeMap<String, Slot<ProjectRec>>,
    builds: HashMap<String, Slot<BuildRec>>,
    /// (project, idempotency token) → (build id, when it was started).
    tokens: HashMap<(String, String), (String, Instant)>,
    /// Ids drawn per (project, token), so ids replay per object.
    draws: HashMap<(String, String), u64>,
    /// Build ids in start order.
    order: Vec<String>,
}

fn invalid(op: &Op, msg: impl Into<String>) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, msg)
}

fn no_project(op: &Op, name: &str) -> CloudError {
    CloudError::new(op, ErrorKind::NotFound, format!("ResourceNotFoundException: Failed to find project: {name}"))
}

/// CodeBuild's project rules: a name of 2–255 letters, digits, hyphens and
/// underscores starting with a letter or digit; a timeout of 5–2160 minutes.
fn check_project(op: &Op, input: &ProjectInput) -> CloudResult<()> {
    let name_ok = (2..=255).contains(&input.name.len())
        && input.name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && input.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(invalid(op, format!("InvalidInputException: Invalid project name {:?}.", input.name)));
    }
    let (lo, hi) = TIMEOUT_MINUTES;
    if !(lo..=hi).contains(&input.timeout_minutes) {
        return Err(invalid(
            op,
            format!(
                "InvalidInputException: timeoutInMinutes must be between {lo} and {hi}, got {}.",
                input.timeout_minutes
            ),
        ));
    }
    if input.buildspec.trim().is_empty() {
        return Err(invalid(op, "InvalidInputException: A buildspec is required."));
    }
    check_tags(op, &input.tags)
}

impl CodeBuildState {
    pub(super) fn project(&self, name: &str, ctx: &Ctx<'_>) -> Option<Project> {
        self.projects.get(name)?.view(ctx).map(ProjectRec::to_project)
    }

    fn exists(&self, name: &str) -> bool {
        self.projects.get(name).is_some_and(|s| s.cur.is_some())
    }

    pub(super) fn create_project(&mut self, input: &ProjectInput, ctx: &Ctx<'_>) -> CloudResult<Project> {
        let op = ops::CREATE_PROJECT;
        check_project(&op, input)?;
        if self.exists(&input.name) {
            return Err(CloudError::new(
                &op,
                ErrorKind::AlreadyExists,
                format!("ResourceAlreadyExistsException: Project already exists: {}", input.name),
            ));
        }
        let rec = ProjectRec { input: input.clone() };
        let out = rec.to_project();
        *self.projects.entry(input.name.clone()).or_default().write(ctx.now) = Some(rec);
        Ok(out)
    }

    pub(super) fn update_project(&mut self, input: &ProjectInput, ctx: &Ctx<'_>) -> CloudResult<Project> {
        let op = ops::UPDATE_PROJECT;
        if !self.exists(&input.name) {
            return Err(no_project(&op, &input.name));
        }
        check_project(&op, input)?;
        let rec = ProjectRec { input: input.clone() };
        let out = rec.to_project();
        *self.projects.entry(input.name.clone()).or_default().write(ctx.now) = Some(rec);
        Ok(out)
    }

    /// Builds that have not finished (what the concurrency quota counts).
    pub(super) fn in_progress(&self) -> usize {
        self.builds.values().filter_map(|s| s.cur.as_ref()).filter(|b| b.state == BuildState::InProgress).count()
    }

    /// A fresh build id `project:uuid`, a hash of the seed, the project, the
    /// token and how many ids that pair drew before.
    fn new_id(&mut self, project: &str, token: &str, ctx: &Ctx<'_>) -> String {
        loop {
            let n = {
                let d = self.draws.entry((project.to_owned(), token.to_owned())).or_default();
                *d += 1;
                *d
            };
            let r = faults::hash(ctx.cfg.seed, &[b"build", project.as_bytes(), token.as_bytes(), &n.to_le_bytes()]);
            let id = format!(
                "{project}:{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                r[0] & 0xffff_ffff,
                (r[0] >> 32) & 0xffff,
                (r[0] >> 48) & 0xfff,
                (r[1] & 0x3fff) | 0x8000,
                r[2] & 0xffff_ffff_ffff
            );
            if !self.builds.contains_key(&id) {
                return id;
            }
        }
    }

    /// StartBuild: the build started with the same token in the last five
    /// minutes, or a new one (returned as [`NewBuild`] for the caller to run).
    pub(super) fn start_build(
        &mut self,
        request: &BuildRequest,
        ctx: &Ctx<'_>,
    ) -> CloudResult<(Build, Option<NewBuild>)> {
        let op = ops::START_BUILD;
        if request.idempotency_token.len() > MAX_TOKEN {
            return Err(invalid(
                &op,
                format!("InvalidInputException: idempotencyToken must be at most {MAX_TOKEN} characters."),
            ));
        }
        let Some(project) = self.projects.get(&request.project).and_then(|s| s.cur.as_ref()) else {
            return Err(no_project(&op, &request.project));
        };
        let timeout = Duration::from_secs(u64::from(project.input.timeout_minutes) * 60);
        let key = (request.project.clone(), request.idempotency_token.clone());
        if !request.idempotency_token.is_empty()
            && let Some((id, at)) = self.tokens.get(&key)
            && ctx.now < *at + IDEMPOTENCY_WINDOW
            && let Some(rec) = self.builds.get(id).and_then(|s| s.cur.as_ref())
        {
            if rec.env != request.env {
                return Err(invalid(
                    &op,
                    format!(
                        "IdempotentParameterMismatchException: The idempotency token {:?} was used with different \
                         parameters.",
                        request.idempotency_token
                    ),
                ));
            }
            return Ok((rec.to_build(ctx), None));
        }
        let running = self.in_progress();
        if running >= ctx.cfg.codebuild_concurrency {
            return Err(CloudError::new(
                &op,
                ErrorKind::QuotaExceeded,
                format!(
                    "AccountLimitExceededException: Cannot have more than {} active builds for the account \
                     ({running} running).",
                    ctx.cfg.codebuild_concurrency
                ),
            ));
        }
        let id = self.new_id(&request.project, &request.idempotency_token, ctx);
        let rec = BuildRec {
            id: id.clone(),
            env: request.env.clone(),
            state: BuildState::InProgress,
            phase: None,
            message: None,
            started: ctx.now,
        };
        let out = rec.to_build(ctx);
        *self.builds.entry(id.clone()).or_default().write(ctx.now) = Some(rec);
        self.order.push(id.clone());
        if !request.idempotency_token.is_empty() {
            self.tokens.insert(key, (id.clone(), ctx.now));
        }
        Ok((out, Some(NewBuild { id, env: request.env.clone(), timeout })))
    }

    pub(super) fn builds(&self, ids: &[String], ctx: &Ctx<'_>) -> CloudResult<Vec<Build>> {
        let op = ops::BATCH_GET_BUILDS;
        if ids.len() > MAX_BATCH_GET_BUILDS {
            return Err(invalid(
                &op,
                format!("InvalidInputException: ids must contain at most {MAX_BATCH_GET_BUILDS} items."),
            ));
        }
        let mut seen = HashSet::new();
        Ok(ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| self.builds.get(id)?.view(ctx))
            .map(|b| b.to_build(ctx))
            .collect())
    }

    /// The build task's progress: a write, so stale reads may lag behind it.
    fn progress(&mut self, id: &str, now: Instant, phase: &'static str, end: Option<(BuildState, Option<String>)>) {
        if let Some(rec) = self.builds.get_mut(id).and_then(|s| s.write(now).as_mut()) {
            rec.phase = Some(phase);
            if let Some((state, message)) = end {
                rec.state = state;
                rec.message = message;
            }
        }
    }

    pub(super) fn started(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.order
            .iter()
            .filter_map(|id| self.builds.get(id)?.cur.as_ref())
            .map(|b| (b.id.clone(), b.env.clone()))
            .collect()
    }
}

/// Runs a started build in its own task: waits in the queue, runs the
/// executor (within the project's timeout), records how it ended. Never holds
/// the state lock across an await.
fn run_build(inner: Arc<Inner>, executor: Arc<dyn BuildExecutor>, build: NewBuild) {
    let NewBuild { id, env, timeout } = build;
    tokio::spawn(IN_BUILD.scope((), async move {
        tokio::time::sleep(inner.config.build_queue_delay).await;
        inner.lock().codebuild.progress(&id, Instant::now(), "BUILD", None);
        let mut work = tokio::spawn(IN_BUILD.scope((), async move { executor.execute(&env).await }));
        let end = match tokio::time::timeout(timeout, &mut work).await {
            Ok(Ok(Ok(()))) => (BuildState::Succeeded, None),
            Ok(Ok(Err(message))) => (BuildState::Failed, Some(message)),
            Ok(Err(e)) => (BuildState::Fault, Some(format!("The build did not run to its end: {e}"))),
            Err(_) => {
                work.abort();
                (BuildState::TimedOut, Some("Build has timed out.".to_owned()))
            }
        };
        inner.lock().codebuild.progress(&id, Instant::now(), "COMPLETED", Some(end));
    }));
}

#[async_trait]
impl Builds for SimBuilds {
    async fn project(&self, name: &str) -> CloudResult<Option<Project>> {
        self.inner.call(ops::BATCH_GET_PROJECTS, name, |st, ctx| Ok(st.codebuild.project(name, ctx))).await
    }

    async fn create_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        self.inner.call(ops::CREATE_PROJECT, &input.name, |st, ctx| st.codebuild.create_project(input, ctx)).await
    }

    async fn update_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        self.inner.call(ops::UPDATE_PROJECT, &input.name, |st, ctx| st.codebuild.update_project(input, ctx)).await
    }

    async fn start_build(&self, request: &BuildRequest) -> CloudResult<Build> {
        let key = format!("{}/{}", request.project, request.idempotency_token);
        let (inner, executor) = (self.inner.clone(), self.executor.clone());
        self.inner
            .call(ops::START_BUILD, &key, move |st, ctx| {
                let (build, new) = st.codebuild.start_build(request, ctx)?;
                // Started here, inside the call, so it runs even when the
                // caller crashes or times out right after AWS acted.
                if let Some(new) = new {
                    run_build(inner, executor, new);
                }
                Ok(build)
            })
            .await
    }

    async fn builds(&self, ids: &[String]) -> CloudResult<Vec<Build>> {
        let key = ids.join(",");
        self.inner.call(ops::BATCH_GET_BUILDS, &key, |st, ctx| st.codebuild.builds(ids, ctx)).await
    }
}
