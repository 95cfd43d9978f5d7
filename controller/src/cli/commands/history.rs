//! `mooring history`: the revision history of a resource (one revision per
//! generation), newest first, with where each change came from; with
//! `--revision N`, the spec of that revision, to look at before `rollback --to N`;
//! with `--revision A..B`, what changed in the spec from revision A to B.

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
    /// `N`: show the spec of revision N (as YAML) instead of the list;
    /// `A..B`: show what changed in the spec from revision A to revision B.
    #[arg(long, value_name = "N|A..B")]
    pub revision: Option<Revisions>,
}

/// What `--revision` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revisions {
    /// One revision's spec.
    One(i64),
    /// The changes from the first revision to the second.
    Range(i64, i64),
}

impl std::str::FromStr for Revisions {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |n: &str| match n.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{s:?}: a revision is a number from 1 (N, or A..B)")),
        };
        match s.split_once("..") {
            Some((a, b)) => Ok(Revisions::Range(number(a)?, number(b)?)),
            None => number(s).map(Revisions::One),
        }
    }
}

/// Runs `history`.
pub async fn run(client: &ApiClient, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let revisions = client.revisions(target.kind, target.ns(), &target.name).await?;
    let spec_of = |number: i64| {
        revision_spec(&revisions, number).map_err(|known| {
            anyhow::anyhow!("{} has no revision {number}; its revisions are {known}", target.display())
        })
    };
    match args.revision {
        Some(Revisions::One(number)) => {
            output::print(&output::to_yaml(spec_of(number)?)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Revisions::Range(a, b)) => {
            let text = render_spec_diff(spec_of(a)?, spec_of(b)?)?;
            output::print(&format!("{} from revision {a} to {b}:\n{text}", target.display()))?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
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

/// The field changes from spec `a` to spec `b`, one a line (`~ spec.cpu: 256 → 512`),
/// in the notation of `diff`.
fn render_spec_diff(a: &Value, b: &Value) -> anyhow::Result<String> {
    let changes = desired_state::plan::diff_documents(&serde_json::json!({"spec": a}), &serde_json::json!({"spec": b}));
    if changes.is_empty() {
        return Ok("    (no change)\n".to_string());
    }
    let mut out = String::new();
    for change in changes {
        let change: crate::cli::plan::FieldChange = serde_json::from_value(serde_json::to_value(change)?)?;
        out.push_str(&format!("    {}\n", crate::cli::plan::render_change(&change)));
    }
    Ok(out)
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
    fn selects_one_revision_or_a_range() {
        assert_eq!("3".parse::<Revisions>(), Ok(Revisions::One(3)));
        assert_eq!("1..4".parse::<Revisions>(), Ok(Revisions::Range(1, 4)));
        assert!("0".parse::<Revisions>().is_err());
        assert!("1..".parse::<Revisions>().is_err());
        assert!("a..2".parse::<Revisions>().is_err());
        let text = render_spec_diff(&json!({"cpu": 256, "env": {"A": "1"}}), &json!({"cpu": 512})).unwrap();
        assert_eq!(text, "    ~ spec.cpu: 256 → 512\n    - spec.env: {\"A\":\"1\"}\n");
        assert_eq!(render_spec_diff(&json!({}), &json!({})).unwrap(), "    (no change)\n");
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
