//! `mooring history`: the revision history of a resource (one revision per
//! generation), newest first, with where each change came from.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Target;
use crate::cli::client::ApiClient;
use crate::cli::output;
use crate::cli::resource::{str_at, text_at};

/// How many characters of a hash or commit SHA are shown.
const SHORT: usize = 12;

/// Runs `history`.
pub async fn run(client: &ApiClient, target: Target) -> anyhow::Result<ExitCode> {
    let revisions = client.revisions(target.kind, target.ns(), &target.name).await?;
    if revisions.is_empty() {
        eprintln!("No revisions found for {}.", target.display());
        return Ok(ExitCode::SUCCESS);
    }
    output::print(&render(&revisions, Utc::now()))?;
    Ok(ExitCode::SUCCESS)
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
