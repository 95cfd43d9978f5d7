//! `mooring policy test` and `mooring policy audit`: admission policies
//! evaluated on this machine, with the same interpreter and the same input the
//! server uses (`desired_state::admission`).
//!
//! * `test -f DOC` judges documents before they are sent (in CI, say), against
//!   policy files (`-p`) or, without `-p`, the policies stored on the server.
//! * `audit` judges the resources already stored — written before a policy
//!   existed or was tightened — against policy files (`-p`, the policy about to
//!   be applied) or the stored policies, and lists every one that would be
//!   refused; a stored document that no longer passes validation is listed too.
//!
//! Exit codes: 0 when nothing is refused, 2 when something is, 1 on an error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use api_types::policy::Policy;
use api_types::{AnyResource, Kind, validate_document};
use clap::{Args, Subcommand};
use desired_state::admission::{PolicySet, Violation};
use desired_state::store::ChangeSource;
use serde_json::Value;

use crate::cli::client::ApiClient;
use crate::cli::documents::read_inputs;
use crate::cli::output;
use crate::cli::plan::resource_ref;

/// The exit code that says "something would be refused".
const REFUSED: u8 = 2;

/// `mooring policy ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum PolicyCommand {
    /// Judge documents against admission policies, locally (exit 0: all pass, 2: one is refused).
    Test(TestArgs),
    /// List stored resources that policies would refuse (exit 0: none, 2: some).
    Audit(AuditArgs),
}

/// Arguments of `policy test`.
#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// Documents to judge: files, directories or `-` for stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Policy documents to judge them by; without it, the policies stored on the server.
    #[arg(short = 'p', long = "policy", value_name = "PATH", num_args = 1..)]
    pub policies: Vec<PathBuf>,
}

/// Arguments of `policy audit`.
#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Policy documents to audit with (say, one about to be applied); without
    /// it, the policies stored on the server.
    #[arg(short = 'p', long = "policy", value_name = "PATH", num_args = 1..)]
    pub policies: Vec<PathBuf>,
    /// Audit one namespace; every namespace the token may read when omitted.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// Runs a `policy` subcommand.
pub async fn run(client: &ApiClient, cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Test(args) => test(client, args).await,
        PolicyCommand::Audit(args) => audit(client, args).await,
    }
}

async fn test(client: &ApiClient, args: TestArgs) -> anyhow::Result<ExitCode> {
    let inputs = read_inputs(&args.files, std::io::stdin())?;
    let policies = policy_set(client, &args.policies).await?;
    let source = ChangeSource::api("mooring policy test");
    let mut out = String::new();
    let mut refused = false;
    for (doc, from) in inputs.docs.into_iter().zip(&inputs.sources) {
        let res = validate_document(doc).map_err(|e| anyhow::anyhow!("{from}: {e}"))?;
        let reference = reference_of(&res);
        if let AnyResource::Policy(p) = &res {
            desired_state::admission::CompiledPolicy::compile(p).with_context(|| format!("{from}: {reference}"))?;
            out.push_str(&format!("{reference}: compiles\n"));
            continue;
        }
        let violations = policies.review(&res, &source);
        if violations.is_empty() {
            out.push_str(&format!("{reference}: allowed\n"));
        } else {
            refused = true;
            out.push_str(&format!("{reference}: refused\n"));
            for v in &violations {
                out.push_str(&format!("  {}\n", describe(v)));
            }
        }
    }
    output::print(out.trim_end())?;
    Ok(if refused { ExitCode::from(REFUSED) } else { ExitCode::SUCCESS })
}

async fn audit(client: &ApiClient, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let policies = policy_set(client, &args.policies).await?;
    let source = ChangeSource::api("mooring policy audit");
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut checked = 0usize;
    for kind in Kind::RECONCILED {
        for mut doc in client.list(kind, args.namespace.as_deref(), None).await? {
            checked += 1;
            // Admission never looks at status, and a newer server's status
            // fields must not make an audit fail.
            if let Some(obj) = doc.as_object_mut() {
                obj.remove("status");
            }
            let who = [kind.as_str().to_string(), text(&doc, "/metadata/namespace"), text(&doc, "/metadata/name")];
            match validate_document(doc) {
                Ok(res) => {
                    for v in policies.review(&res, &source) {
                        rows.push([who.to_vec(), vec![v.policy, v.field, v.message]].concat());
                    }
                }
                Err(errors) => {
                    for e in errors.0 {
                        rows.push([who.to_vec(), vec!["(validation)".into(), e.field, e.message]].concat());
                    }
                }
            }
        }
    }
    if rows.is_empty() {
        eprintln!("No resource would be refused ({checked} checked).");
        return Ok(ExitCode::SUCCESS);
    }
    let table = output::table(&["KIND", "NAMESPACE", "NAME", "POLICY", "FIELD", "MESSAGE"], &rows);
    output::print(&table)?;
    eprintln!("{} violation(s) in {checked} resources checked.", rows.len());
    Ok(ExitCode::from(REFUSED))
}

/// The policies to judge by: the documents in `files`, or the server's.
async fn policy_set(client: &ApiClient, files: &[PathBuf]) -> anyhow::Result<PolicySet> {
    let docs: Vec<(String, Value)> = if files.is_empty() {
        let stored = client.list(Kind::Policy, None, None).await.context("reading the server's policies")?;
        stored
            .into_iter()
            .map(|mut d| (format!("{} (stored)", text(&d, "/metadata/name")), strip_status(&mut d)))
            .collect()
    } else {
        let inputs = read_inputs(files, std::io::stdin())?;
        inputs.sources.into_iter().zip(inputs.docs).collect()
    };
    let mut policies: Vec<Policy> = Vec::new();
    for (from, doc) in docs {
        match validate_document(doc).map_err(|e| anyhow::anyhow!("{from}: {e}"))? {
            AnyResource::Policy(p) => policies.push(p),
            other => bail!("{from}: {} is not a Policy", reference_of(&other)),
        }
    }
    PolicySet::compile(&policies).map_err(|(name, e)| anyhow::anyhow!("policy {name:?}: {e}"))
}

fn strip_status(doc: &mut Value) -> Value {
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("status");
    }
    doc.take()
}

/// `relay.mooring/team-a/gw`; a cluster-scoped policy is `policy.mooring/NAME`.
fn reference_of(res: &AnyResource) -> String {
    let meta = res.metadata();
    resource_ref(res.kind().as_str(), &meta.namespace, &meta.name)
}

/// `[policy guardrails] spec.executionRoleArn: ...`.
fn describe(v: &Violation) -> String {
    if v.field.is_empty() {
        format!("[policy {}] {}", v.policy, v.message)
    } else {
        format!("[policy {}] {}: {}", v.policy, v.field, v.message)
    }
}

fn text(doc: &Value, pointer: &str) -> String {
    doc.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string()
}
