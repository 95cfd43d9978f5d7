//! `mooring history`: the revision history of a resource (one revision per
//! generation), newest first, with where each change came from; with
//! `--revision N`, the spec of that revision, to look at before `rollback --to N`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::Value;

use super::Target;
use crate::cli::client::ApiClient;
use crate::cli::output;
use crate::cli::resource::{str_at, text_at};

/// How many characters of a hash or commit SHA are shown.
const SHORT: usize = 12;

/// Arguments of `history`.
#[derive(Args, Debug, Clone)]
pub struct HistoryArgs {
    /// The resource.
    #[command(flatten)]
    pub target: Target,
    /// Show the spec of this revision (as YAML) instead of the list.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
}

/// Runs `history`.
pub async fn run(client: &ApiClient, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let revisions = client.revisions(target.kind, target.ns(), &target.name).await?;
    if let Some(number) = args.revision {
        let spec = revision_spec(&revisions, number).map_err(|known| {
            anyhow::anyhow!("{} has no revision {number}; its revisions are {known}", target.display())
        })?;
        output::print(&output::to_yaml(spec)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if revisions.is_empty() {
        eprintln!("No revisions found for {}.", target.display());
        return Ok(ExitCode::SUCCESS);
    }
    output::print(&render(&revisions, Utc::now()))?;
    Ok(ExitCode::SUCCESS)
}

/// The spec of revision `number`, or (as the error) the revisions there are.
fn revision_spec(revisions: &[Value], number: i64) -> Result<&Value, String> {
    match revisions.iter().find(|r| r.get("generation").and_then(Value::as_i64) == Some(number)) {
        Some(r) => Ok(r.get("spec").unwrap_or(&Value::Null)),
        None => {
            let known: Vec<String> = revisions.iter().map(|r| text_at(r, "/generation")).collect();
            Err(if known.is_empty() { "none".to_string() } else { known.join(", ") })
        }
    }
}

/// The table: REVISION HASH SOURCE ACTOR COMMIT AGE.
pub fn render(revisions: &[Value], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            vec![
                text_at(r, "/generation"),
                short(str_at(r, "/specHash").map(|h| h.strip_prefix("sha256:").unwrap_or(h))),
                text_at(r, "/source"),
                text_at(r, "/actor"),
                short(str_at(r, "/commit")),
                output::age_of(str_at(r, "/createdAt"), now),
            ]
        })
        .collect();
    output::table(&["REVISION", "HASH", "SOURCE", "ACTOR", "COMMIT", "AGE"], &rows)
}

fn short(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.chars().take(SHORT).collect(),
        _ => output::NONE.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_the_spec_of_a_revision() {
        let revs = vec![json!({"generation": 2, "spec": {"cpu": 512}}), json!({"generation": 1, "spec": {"cpu": 256}})];
        assert_eq!(revision_spec(&revs, 1).unwrap(), &json!({"cpu": 256}));
        assert_eq!(revision_spec(&revs, 3).unwrap_err(), "2, 1");
        assert_eq!(revision_spec(&[], 1).unwrap_err(), "none");
    }

    #[test]
    fn renders_revisions() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let revs = vec![
            json!({"generation": 2, "specHash": "sha256:0123456789abcdef0123", "source": "gitops", "actor": "ci",
                   "commit": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "createdAt": "2023-11-14T22:13:00Z"}),
            json!({"generation": 1, "specHash": "fedcba9876543210", "source": "api", "actor": "bootstrap",
                   "commit": null, "createdAt": "2023-11-13T22:13:20Z"}),
        ];
        assert_eq!(
            render(&revs, now),
            "REVISION   HASH           SOURCE   ACTOR       COMMIT         AGE\n\
             2          0123456789ab   gitops   ci          a1b2c3d4e5f6   20s\n\
             1          fedcba987654   api      bootstrap   <none>         1d\n"
        );
    }
}
