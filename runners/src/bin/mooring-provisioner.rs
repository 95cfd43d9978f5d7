//! `mooring-provisioner`: what a node's CodeBuild build runs (and what
//! `--node-builds local` runs as a subprocess). Reads the request from its
//! environment (`MOORING_NODE_*`, see `runners::provision::env`), does the EC2
//! work idempotently, prints the result as JSON, and exits 0; on failure it
//! prints the reason and exits 1 (2 for a malformed request).
//!
//! AWS settings come from the standard chain; `MOORING_AWS_ENDPOINT` points it
//! at a local AWS such as moto. `MOORING_PROVISION_POLL_MS` and
//! `MOORING_PROVISION_TIMEOUT_SECONDS` tune its waits.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use runners::aws::AwsSettings;
use runners::provision::local::{BuildResult, RESULT_FILE_ENV};
use runners::provision::{ProvisionError, ProvisionRequest, Provisioner, ProvisionerConfig};

fn config() -> ProvisionerConfig {
    let mut c = ProvisionerConfig::default();
    if let Some(ms) = std::env::var("MOORING_PROVISION_POLL_MS").ok().and_then(|v| v.parse().ok()) {
        c.poll = Duration::from_millis(ms);
    }
    if let Some(s) = std::env::var("MOORING_PROVISION_TIMEOUT_SECONDS").ok().and_then(|v| v.parse().ok()) {
        c.timeout = Duration::from_secs(s);
    }
    c
}

fn finish(result: &BuildResult) {
    if let Ok(path) = std::env::var(RESULT_FILE_ENV) {
        let tmp = format!("{path}.tmp");
        let json = serde_json::to_string(result).unwrap_or_default();
        if std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)).is_err() {
            eprintln!("error: cannot write the build result to {path}");
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // The build log is a file (CodeBuild's, or a local build's): colour codes only on a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).with_ansi(ansi).init();
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let req = match ProvisionRequest::from_env(&vars) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("malformed provisioning request: {e}");
            eprintln!("error: {message}");
            finish(&BuildResult { succeeded: false, message });
            return ExitCode::from(2);
        }
    };
    let settings = AwsSettings { endpoint: vars.get("MOORING_AWS_ENDPOINT").cloned(), region: None };
    let cloud = runners::aws::node_cloud(&settings).await;
    match Provisioner::new(cloud.ec2.as_ref(), cloud.targets.as_ref(), config()).run(&req).await {
        Ok(done) => {
            println!("{}", serde_json::to_string(&done).unwrap_or_default());
            finish(&BuildResult { succeeded: true, message: String::new() });
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = match &e {
                ProvisionError::Cloud(c) => format!("AWS refused: {c}"),
                other => other.to_string(),
            };
            eprintln!("error: {} {}/{}: {message}", req.action.as_str(), req.namespace, req.name);
            finish(&BuildResult { succeeded: false, message });
            ExitCode::FAILURE
        }
    }
}
