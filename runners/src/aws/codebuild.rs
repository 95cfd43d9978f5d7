//! The CodeBuild facade over the AWS SDK: the project that runs
//! `mooring-provisioner`, and its builds.
//!
//! Every call is one AWS request (no retries or budgets here beyond the SDK's
//! own retry mode: [`Gated`](crate::cloud::gated::Gated) does that).

use async_trait::async_trait;
use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::types as cb;

use super::error::cloud_error;
use crate::cloud::codebuild::{Build, BuildRequest, BuildState, Builds, MAX_BATCH_GET_BUILDS, Project, ProjectInput};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, ops};

/// CodeBuild through the SDK; the implementation of [`Builds`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkBuilds {
    client: Client,
}

impl SdkBuilds {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkBuilds {
        SdkBuilds { client: Client::new(config) }
    }

    /// A facade over an existing client (tests, custom configuration).
    pub fn from_client(client: Client) -> SdkBuilds {
        SdkBuilds { client }
    }
}

fn invalid(op: &Op, e: impl std::fmt::Display) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, e.to_string())
}

/// The parts CreateProject and UpdateProject share.
struct ProjectParts {
    source: cb::ProjectSource,
    artifacts: cb::ProjectArtifacts,
    environment: cb::ProjectEnvironment,
    timeout: i32,
    tags: Option<Vec<cb::Tag>>,
}

/// CodeBuild's S3 source location (`bucket/key`) of the contract's
/// `s3://bucket/key` (an ARN or a bare `bucket/key` is kept as it is).
fn s3_location(location: &str) -> &str {
    location.strip_prefix("s3://").unwrap_or(location)
}

fn project_parts(op: &Op, input: &ProjectInput) -> CloudResult<ProjectParts> {
    // An S3 source even though the buildspec is inline: CodeBuild (and moto)
    // want a source location; the provisioner needs nothing from it.
    let source = cb::ProjectSource::builder()
        .r#type(cb::SourceType::S3)
        .location(s3_location(&input.source_location))
        .buildspec(&input.buildspec)
        .build()
        .map_err(|e| invalid(op, e))?;
    let artifacts =
        cb::ProjectArtifacts::builder().r#type(cb::ArtifactsType::NoArtifacts).build().map_err(|e| invalid(op, e))?;
    let environment = cb::ProjectEnvironment::builder()
        .r#type(cb::EnvironmentType::LinuxContainer)
        .image(&input.image)
        .compute_type(cb::ComputeType::from(input.compute_type.as_str()))
        .build()
        .map_err(|e| invalid(op, e))?;
    let timeout = i32::try_from(input.timeout_minutes)
        .map_err(|_| invalid(op, format!("timeout {} minutes is too large", input.timeout_minutes)))?;
    let tags: Vec<_> = input.tags.iter().map(|(k, v)| cb::Tag::builder().key(k).value(v).build()).collect();
    Ok(ProjectParts { source, artifacts, environment, timeout, tags: (!tags.is_empty()).then_some(tags) })
}

fn project_of(p: &cb::Project) -> Project {
    Project {
        name: p.name.clone().unwrap_or_default(),
        arn: p.arn.clone().unwrap_or_default(),
        buildspec: p.source.as_ref().and_then(|s| s.buildspec.clone()),
        tags: p.tags().iter().filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default()))).collect(),
    }
}

fn state_of(status: Option<&cb::StatusType>) -> BuildState {
    match status {
        Some(cb::StatusType::Succeeded) => BuildState::Succeeded,
        Some(cb::StatusType::Failed) => BuildState::Failed,
        Some(cb::StatusType::Fault) => BuildState::Fault,
        Some(cb::StatusType::Stopped) => BuildState::Stopped,
        Some(cb::StatusType::TimedOut) => BuildState::TimedOut,
        // IN_PROGRESS, absent, or newer than this SDK: not finished.
        _ => BuildState::InProgress,
    }
}

/// Where the log is: the console deep link, else `group/stream`.
fn logs_of(logs: Option<&cb::LogsLocation>) -> Option<String> {
    let logs = logs?;
    if let Some(link) = logs.deep_link.as_ref().filter(|l| !l.is_empty()) {
        return Some(link.clone());
    }
    Some(format!("{}/{}", logs.group_name.as_deref()?, logs.stream_name.as_deref()?))
}

/// Why the build failed: the first phase that did not succeed and says why
/// (`BUILD: COMMAND_EXECUTION_ERROR: Error while executing command: ...`).
fn message_of(phases: &[cb::BuildPhase]) -> Option<String> {
    phases.iter().filter(|p| p.phase_status.as_ref().is_some_and(|s| *s != cb::StatusType::Succeeded)).find_map(|p| {
        let context = p.contexts().iter().find(|c| c.message.as_deref().is_some_and(|m| !m.is_empty()))?;
        let mut message = String::new();
        if let Some(phase) = &p.phase_type {
            message.push_str(&format!("{}: ", phase.as_str()));
        }
        if let Some(code) = context.status_code.as_deref().filter(|c| !c.is_empty()) {
            message.push_str(&format!("{code}: "));
        }
        message.push_str(context.message.as_deref().unwrap_or_default());
        Some(message)
    })
}

fn build_of(b: &cb::Build) -> Build {
    Build {
        id: b.id.clone().unwrap_or_default(),
        state: state_of(b.build_status.as_ref()),
        phase: b.current_phase.clone(),
        logs: logs_of(b.logs.as_ref()),
        message: message_of(b.phases()),
    }
}

fn no_project(op: &Op) -> CloudError {
    CloudError::new(op, ErrorKind::Other, "the answer has no project")
}

#[async_trait]
impl Builds for SdkBuilds {
    async fn project(&self, name: &str) -> CloudResult<Option<Project>> {
        let op = ops::BATCH_GET_PROJECTS;
        let out = self.client.batch_get_projects().names(name).send().await.map_err(|e| cloud_error(&op, e))?;
        // A missing project is in `projectsNotFound`, not an error.
        Ok(out
            .projects()
            .iter()
            .find(|p| p.name.as_deref() == Some(name) || p.arn.as_deref() == Some(name))
            .map(project_of))
    }

    async fn create_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        let op = ops::CREATE_PROJECT;
        let parts = project_parts(&op, input)?;
        let out = self
            .client
            .create_project()
            .name(&input.name)
            .set_description((!input.description.is_empty()).then(|| input.description.clone()))
            .source(parts.source)
            .artifacts(parts.artifacts)
            .environment(parts.environment)
            .service_role(&input.service_role)
            .timeout_in_minutes(parts.timeout)
            .set_tags(parts.tags)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        out.project().map(project_of).ok_or_else(|| no_project(&op))
    }

    async fn update_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        let op = ops::UPDATE_PROJECT;
        let parts = project_parts(&op, input)?;
        // Tags replace the project's tags, as in AWS.
        let out = self
            .client
            .update_project()
            .name(&input.name)
            .description(&input.description)
            .source(parts.source)
            .artifacts(parts.artifacts)
            .environment(parts.environment)
            .service_role(&input.service_role)
            .timeout_in_minutes(parts.timeout)
            .set_tags(parts.tags)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        out.project().map(project_of).ok_or_else(|| no_project(&op))
    }

    async fn start_build(&self, request: &BuildRequest) -> CloudResult<Build> {
        let op = ops::START_BUILD;
        let env = request
            .env
            .iter()
            .map(|(k, v)| {
                cb::EnvironmentVariable::builder()
                    .name(k)
                    .value(v)
                    .r#type(cb::EnvironmentVariableType::Plaintext)
                    .build()
                    .map_err(|e| invalid(&op, e))
            })
            .collect::<CloudResult<Vec<_>>>()?;
        let out = self
            .client
            .start_build()
            .project_name(&request.project)
            .set_environment_variables_override((!env.is_empty()).then_some(env))
            .idempotency_token(&request.idempotency_token)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        out.build_value
            .as_ref()
            .map(build_of)
            .ok_or_else(|| CloudError::new(&op, ErrorKind::Other, "the answer has no build"))
    }

    async fn builds(&self, ids: &[String]) -> CloudResult<Vec<Build>> {
        let op = ops::BATCH_GET_BUILDS;
        if ids.len() > MAX_BATCH_GET_BUILDS {
            return Err(CloudError::new(
                &op,
                ErrorKind::Invalid,
                format!("BatchGetBuilds takes at most {MAX_BATCH_GET_BUILDS} builds, not {}", ids.len()),
            ));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out =
            self.client.batch_get_builds().set_ids(Some(ids.to_vec())).send().await.map_err(|e| cloud_error(&op, e))?;
        // Unknown ids are in `buildsNotFound`: left out, as the contract says.
        Ok(out.builds().iter().map(build_of).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(phase: cb::BuildPhaseType, status: cb::StatusType, context: Option<(&str, &str)>) -> cb::BuildPhase {
        let mut p = cb::BuildPhase::builder().phase_type(phase).phase_status(status);
        if let Some((code, message)) = context {
            p = p.contexts(cb::PhaseContext::builder().status_code(code).message(message).build());
        }
        p.build()
    }

    #[test]
    fn the_message_is_the_first_failed_phase_that_says_why() {
        let phases = [
            phase(cb::BuildPhaseType::Install, cb::StatusType::Succeeded, Some(("", "fine"))),
            phase(cb::BuildPhaseType::Build, cb::StatusType::Failed, Some(("COMMAND_EXECUTION_ERROR", "exit 1"))),
            phase(cb::BuildPhaseType::PostBuild, cb::StatusType::Failed, Some(("X", "later"))),
        ];
        assert_eq!(message_of(&phases).as_deref(), Some("BUILD: COMMAND_EXECUTION_ERROR: exit 1"));
        let silent = [phase(cb::BuildPhaseType::Build, cb::StatusType::Failed, None)];
        assert_eq!(message_of(&silent), None);
        assert_eq!(message_of(&[]), None);
    }

    #[test]
    fn logs_are_the_deep_link_else_group_and_stream() {
        let link = cb::LogsLocation::builder().deep_link("https://console/x").group_name("g").stream_name("s").build();
        assert_eq!(logs_of(Some(&link)).as_deref(), Some("https://console/x"));
        let names = cb::LogsLocation::builder().group_name("/aws/codebuild/p").stream_name("abc").build();
        assert_eq!(logs_of(Some(&names)).as_deref(), Some("/aws/codebuild/p/abc"));
        assert_eq!(logs_of(Some(&cb::LogsLocation::builder().build())), None);
    }

    #[test]
    fn build_states() {
        assert_eq!(state_of(Some(&cb::StatusType::Succeeded)), BuildState::Succeeded);
        assert_eq!(state_of(Some(&cb::StatusType::TimedOut)), BuildState::TimedOut);
        assert_eq!(state_of(None), BuildState::InProgress);
    }

    #[test]
    fn an_s3_url_becomes_bucket_and_key() {
        assert_eq!(s3_location("s3://bucket/key.zip"), "bucket/key.zip");
        assert_eq!(s3_location("bucket/key.zip"), "bucket/key.zip");
        assert_eq!(s3_location("arn:aws:s3:::bucket/key.zip"), "arn:aws:s3:::bucket/key.zip");
    }
}
