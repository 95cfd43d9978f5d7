//! The IAM policies against the code: every AWS operation the `aws` facades
//! can call — collected from their source, not from a list — is in the
//! operation table, has a scoping entry, and is allowed by the role that makes
//! it; no table entry is left without a caller; no action is `*`.
//!
//! Which role makes a call is read from the call sites too: facade methods
//! called from `provision/` (the `mooring-provisioner` program that runs in
//! CodeBuild, without the controller-side build executors) need the
//! provisioner role, those called from the reconcilers
//! need the task role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use runners::cloud::ops;
use runners::iam::{self, Principal, Render};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    out.sort();
    out
}

/// The source without whitespace (calls are split over lines by rustfmt).
fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Identifiers that follow each occurrence of `prefix` and precede `(`.
fn calls_after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let ident: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !ident.is_empty() && rest[ident.len()..].starts_with('(') {
            out.push(ident);
        }
    }
    out
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The IAM service prefix of an SDK crate.
fn prefix_of(sdk: &str) -> &'static str {
    match sdk {
        "ecs" => "ecs",
        "sqs" => "sqs",
        "ec2" => "ec2",
        "elasticache" => "elasticache",
        "codebuild" => "codebuild",
        "elasticloadbalancingv2" => "elasticloadbalancing",
        "secretsmanager" => "secretsmanager",
        "sts" => "sts",
        "cloudwatch" => "cloudwatch",
        "cloudwatchlogs" => "logs",
        "applicationautoscaling" => "application-autoscaling",
        "route53" => "route53",
        other => panic!("no IAM prefix known for aws-sdk-{other}: add it to this test"),
    }
}

/// Every SDK operation the files under `src/aws/` call, as `service:Operation`.
fn sdk_operations() -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    for file in rust_files(&src().join("aws")) {
        let text = squeezed(&read(&file));
        let sdks: BTreeSet<&str> = text
            .match_indices("aws_sdk_")
            .map(|(i, _)| {
                let rest = &text[i + "aws_sdk_".len()..];
                &rest[..rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len())]
            })
            .collect();
        let mut methods = calls_after(&text, "client.");
        methods.extend(calls_after(&text, "Client::new(config)."));
        methods.retain(|m| !matches!(m.as_str(), "clone" | "config" | "as_ref"));
        if methods.is_empty() {
            continue;
        }
        assert_eq!(sdks.len(), 1, "{}: calls SDK clients of {sdks:?}; the test expects one per file", file.display());
        let prefix = prefix_of(sdks.iter().next().expect("one SDK"));
        for m in methods {
            found.entry(format!("{prefix}:{}", camel(&m))).or_insert_with(|| file.clone());
        }
    }
    found
}

/// `CONST` → operation name, from `cloud/ops.rs`.
fn op_constants() -> BTreeMap<String, String> {
    let text = read(&src().join("cloud/ops.rs"));
    let mut out = BTreeMap::new();
    // One definition per `pub const … ;`, which rustfmt may wrap over lines.
    for def in text.split("\npub const ").skip(1).filter_map(|d| d.split(';').next()).filter(|d| d.contains(": Op =")) {
        let name = def.split(':').next().expect("a name").trim().to_string();
        let op = def.split('"').nth(1).expect("a quoted operation name").to_string();
        out.insert(name, op);
    }
    out
}

/// Facade method → the operations it makes, from `cloud/gated.rs` (the one
/// place a facade call meets its operation).
fn facade_methods() -> BTreeMap<String, BTreeSet<String>> {
    let consts = op_constants();
    let text = read(&src().join("cloud/gated.rs"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for chunk in text.split("async fn ").skip(1) {
        let name: String = chunk.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let body = chunk.split("async fn ").next().unwrap_or_default();
        for (i, _) in body.match_indices("ops::") {
            let c: String = body[i + 5..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if let Some(op) = consts.get(&c) {
                out.entry(name.clone()).or_default().insert(op.clone());
            }
        }
    }
    out
}

/// The operations facade calls under `files` make.
fn operations_called_from(files: &[PathBuf]) -> BTreeSet<String> {
    let methods = facade_methods();
    let mut out = BTreeSet::new();
    for file in files {
        // What a file's tests call is not what the role calls.
        let source = read(file);
        let text = squeezed(source.split("#[cfg(test)]").next().unwrap_or_default());
        for (method, ops) in &methods {
            if text.contains(&format!(".{method}(")) {
                out.extend(ops.iter().cloned());
            }
        }
    }
    out
}

fn allows(principal: Principal, op: &str) -> bool {
    let scoping = iam::scoping(op).unwrap_or_else(|| panic!("{op}: no scoping entry"));
    let allowed = iam::allowed_actions(&iam::policy(principal, Render::CloudFormation).document);
    scoping.grants.iter().flat_map(|g| g.actions.iter()).all(|a| allowed.iter().any(|x| x == a))
}

#[test]
fn every_call_the_facades_can_make_is_in_the_table_and_allowed() {
    let found = sdk_operations();
    assert!(found.len() >= ops::ALL.len(), "the scan found too little: {found:?}");
    let table: BTreeSet<&str> = ops::ALL.iter().map(|o| o.name).collect();
    let process: BTreeSet<&str> = iam::table::PROCESS_CALLS.iter().map(|s| s.op).collect();
    for (op, file) in &found {
        assert!(
            table.contains(op.as_str()) || process.contains(op.as_str()),
            "{} calls {op}, which is not in the operation table (runners/src/cloud/ops.rs)",
            file.display()
        );
        let scoping = iam::scoping(op).unwrap_or_else(|| panic!("{op} has no IAM scoping entry"));
        for p in scoping.principals {
            assert!(allows(*p, op), "the {} role does not allow {op}", p.as_str());
        }
    }
    // And nothing is granted that no code calls.
    for op in &table {
        assert!(found.contains_key(*op), "{op} is in the operation table but no SDK facade calls it");
    }
}

#[test]
fn the_roles_match_who_calls() {
    // The program CodeBuild runs; `provision/local.rs` and `executor.rs` are
    // build executors on the controller's side (local and simulated builds).
    let provisioner_files: Vec<PathBuf> = rust_files(&src().join("provision"))
        .into_iter()
        .filter(|p| !p.ends_with("local.rs") && !p.ends_with("executor.rs") && !p.ends_with("tests.rs"))
        .chain([src().join("bin/mooring-provisioner.rs")])
        .collect();
    let provisioner = operations_called_from(&provisioner_files);
    let controller_files: Vec<PathBuf> =
        rust_files(&src().join("workload")).into_iter().chain(rust_files(&src().join("observe"))).collect();
    let controller = operations_called_from(&controller_files);
    assert!(provisioner.contains("ec2:RunInstances"), "{provisioner:?}");
    assert!(controller.contains("ecs:CreateService"), "{controller:?}");
    for op in &provisioner {
        assert!(allows(Principal::Provisioner, op), "the provisioner calls {op} but its role does not allow it");
    }
    for op in &controller {
        assert!(allows(Principal::Controller, op), "the controller calls {op} but the task role does not allow it");
    }
}

#[test]
fn no_action_is_a_wildcard_and_the_task_role_cannot_launch_instances() {
    for p in Principal::ALL {
        let doc = iam::policy(p, Render::CloudFormation).document;
        for action in iam::allowed_actions(&doc) {
            assert!(!action.contains('*'), "{}: {action}", p.as_str());
        }
    }
    let task = iam::allowed_actions(&iam::policy(Principal::Controller, Render::CloudFormation).document);
    assert!(!task.iter().any(|a| a == "ec2:RunInstances" || a == "ec2:TerminateInstances"), "{task:?}");
    let provisioner_doc = iam::policy(Principal::Provisioner, Render::CloudFormation).document;
    let provisioner = iam::allowed_actions(&provisioner_doc);
    assert!(!provisioner.iter().any(|a| a.starts_with("ecs:")), "{provisioner:?}");
    // The provisioner passes a node's instance profile role to EC2, and no
    // role to anything else.
    let text = provisioner_doc.to_string();
    assert!(text.contains(r#""iam:PassedToService":"ec2.amazonaws.com""#), "{text}");
    assert!(!text.contains("ecs-tasks.amazonaws.com") && !text.contains("codebuild.amazonaws.com"), "{text}");
}
