//! `mooring apply` and `mooring diff`: send documents to `POST /v1/apply`, for real
//! or as a dry run, and show the plan.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::cli::client::{ApiClient, ApplyParams, ClientError};
use crate::cli::documents::{Documents, read_inputs};
use crate::cli::output;
use crate::cli::plan::{diff_exit_code, render_apply, render_diff};

/// Arguments of `apply`.
#[derive(Args, Debug, Clone)]
pub struct ApplyArgs {
    /// Files, directories (their *.yaml, *.yml and *.json files, not recursing) or `-` for stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Show what would change, with field diffs, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the change comes from, recorded on every revision written.
    #[arg(long, value_enum)]
    pub source: Option<Source>,
    /// The git commit the documents come from (recorded with `--source gitops`).
    #[arg(long, value_name = "SHA")]
    pub revision: Option<String>,
    /// The namespace of every document that names none (a document naming
    /// another one is an error). Policies without a namespace stay cluster-scoped.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// Arguments of `diff`.
#[derive(Args, Debug, Clone)]
pub struct DiffArgs {
    /// Files, directories (their *.yaml, *.yml and *.json files, not recursing) or `-` for stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// The namespace of every document that names none, as for `apply`.
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// The `source` of a write, as the API records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// A person or a script using the API.
    Api,
    /// A GitOps pipeline syncing a commit.
    Gitops,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Gitops => "gitops",
        }
    }
}

/// Runs `apply`: prints one line per resource and the plan line.
pub async fn apply(client: &ApiClient, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let mut docs = read_inputs(&args.files, std::io::stdin())?;
    if let Some(ns) = &args.namespace {
        in_namespace(&mut docs, ns)?;
    }
    let params = ApplyParams {
        dry_run: args.dry_run,
        source: args.source.map(|s| s.as_str().to_string()),
        revision: args.revision,
        ..ApplyParams::default()
    };
    let mut outcome = client.apply(docs.to_yaml_stream()?, &params).await.map_err(|e| with_sources(e, &docs))?;
    outcome.dry_run |= args.dry_run;
    output::print(&render_apply(&outcome))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `diff`: prints what would change; exit code 0 for nothing, 2 for something.
pub async fn diff(client: &ApiClient, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let mut docs = read_inputs(&args.files, std::io::stdin())?;
    if let Some(ns) = &args.namespace {
        in_namespace(&mut docs, ns)?;
    }
    let params = ApplyParams { dry_run: true, ..ApplyParams::default() };
    let outcome = client.apply(docs.to_yaml_stream()?, &params).await.map_err(|e| with_sources(e, &docs))?;
    output::print(&render_diff(&outcome))?;
    Ok(ExitCode::from(diff_exit_code(&outcome.summary())))
}

/// `-n NS`: puts every document that names no namespace in `ns` (a Policy
/// without one stays cluster-scoped); a document naming another namespace is
/// refused, naming its file, rather than moved.
fn in_namespace(docs: &mut Documents, ns: &str) -> anyhow::Result<()> {
    for (i, doc) in docs.docs.iter_mut().enumerate() {
        let kind = doc.get("kind").and_then(|k| k.as_str()).and_then(api_types::Kind::from_any_name);
        let Some(meta) = doc.get_mut("metadata").and_then(|m| m.as_object_mut()) else { continue };
        match meta.get("namespace").and_then(|n| n.as_str()) {
            Some(declared) if declared != ns => anyhow::bail!(
                "{} is in namespace {declared:?}, not {ns:?} (-n): remove -n or the document's namespace",
                docs.sources.get(i).map_or("a document", String::as_str)
            ),
            Some(_) => {}
            None if kind.is_some_and(|k| k.may_be_cluster_scoped()) => {}
            None => {
                meta.insert("namespace".into(), ns.into());
            }
        }
    }
    Ok(())
}

/// Adds the file each `items[N]…` detail of a validation error came from, so
/// `items[3].spec.scaling.max` points at `relays/gw.yaml`. With one document,
/// the `items[0].` prefix says nothing and is dropped (`spec.scaling.max`).
pub(crate) fn with_sources(err: ClientError, docs: &Documents) -> ClientError {
    let ClientError::Api(mut api) = err else { return err };
    let single = docs.docs.len() == 1;
    for detail in &mut api.details {
        if let Some(source) = item_index(&detail.field).and_then(|i| docs.source_of(i)) {
            detail.message = format!("{} (in {source})", detail.message);
        }
        if single && let Some(rest) = detail.field.strip_prefix("items[0]") {
            detail.field = rest.strip_prefix('.').unwrap_or(rest).to_string();
        }
    }
    ClientError::Api(api)
}

/// `N` of a field path starting with `items[N]`.
fn item_index(field: &str) -> Option<usize> {
    field.strip_prefix("items[")?.split_once(']')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::error::ApiError;

    #[test]
    fn validation_details_name_their_file() {
        let docs = Documents {
            docs: vec![serde_json::json!({}), serde_json::json!({})],
            sources: vec!["a.yaml".into(), "dir/b.yaml#2".into()],
            ..Documents::default()
        };
        let body = br#"{"error":{"code":"Invalid","message":"1 validation error","details":[
            {"field":"items[1].spec.scaling.max","message":"must be >= 1"},
            {"field":"items[7].spec","message":"out of range"},
            {"field":"","message":"whole request"}]}}"#;
        let err = with_sources(ClientError::Api(ApiError::from_body(422, body)), &docs);
        assert_eq!(
            err.to_string(),
            "1 validation error\n  items[1].spec.scaling.max: must be >= 1 (in dir/b.yaml#2)\n  items[7].spec: out of range\n  whole request"
        );
    }

    #[test]
    fn a_single_document_is_not_named_by_index() {
        let docs =
            Documents { docs: vec![serde_json::json!({})], sources: vec!["gw.yaml".into()], ..Documents::default() };
        let body = br#"{"error":{"code":"Invalid","message":"2 validation errors","details":[
            {"field":"items[0].spec.scaling.max","message":"must be >= 1"},
            {"field":"items[0]","message":"whole document"}]}}"#;
        let err = with_sources(ClientError::Api(ApiError::from_body(422, body)), &docs);
        assert_eq!(
            err.to_string(),
            "2 validation errors\n  spec.scaling.max: must be >= 1 (in gw.yaml)\n  whole document (in gw.yaml)"
        );
    }

    #[test]
    fn namespace_flag_fills_in_and_refuses_others() {
        let doc = |kind: &str, ns: Option<&str>| {
            let mut meta = serde_json::json!({"name": "x"});
            if let Some(ns) = ns {
                meta["namespace"] = ns.into();
            }
            serde_json::json!({"kind": kind, "metadata": meta})
        };
        let mut docs = Documents {
            docs: vec![doc("Relay", None), doc("worker", Some("team-a")), doc("Policy", None)],
            sources: vec!["a.yaml".into(), "b.yaml".into(), "c.yaml".into()],
            ..Documents::default()
        };
        in_namespace(&mut docs, "team-a").unwrap();
        assert_eq!(docs.docs[0]["metadata"]["namespace"], "team-a");
        assert_eq!(docs.docs[1]["metadata"]["namespace"], "team-a");
        assert!(docs.docs[2]["metadata"].get("namespace").is_none(), "a policy stays cluster-scoped");
        let err = in_namespace(&mut docs, "team-b").unwrap_err().to_string();
        assert_eq!(
            err,
            "a.yaml is in namespace \"team-a\", not \"team-b\" (-n): remove -n or the document's namespace"
        );
    }

    #[test]
    fn item_indices() {
        assert_eq!(item_index("items[12].spec"), Some(12));
        assert_eq!(item_index("items[x]"), None);
        assert_eq!(item_index("spec.items[1]"), None);
    }
}
