//! `mooring token`: create, list and revoke API tokens (needs an `admin` token).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use crate::cli::client::{ApiClient, ClientError};
use crate::cli::output;
use crate::cli::resource::{str_at, text_at};

/// `token` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum TokenCommand {
    /// Create a token and print it (only this once; the server keeps its hash).
    Create {
        /// A name for the token, shown in history as the actor.
        #[arg(long)]
        name: String,
        /// ROLE:NAMESPACE, ROLE one of read, write, admin; NAMESPACE a namespace or `*`; or `metrics`
        /// (a scraper's token: `/metrics` only). Repeatable.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
    },
    /// List tokens (names and scopes, never the secrets).
    List,
    /// Revoke a token.
    Delete {
        /// The token's name.
        name: String,
    },
}

/// Runs a `token` subcommand.
pub async fn run(client: &ApiClient, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let text = match cmd {
        TokenCommand::Create { name, scopes } => {
            let answer = client.create_token(&name, &scopes).await?;
            format!("{}\n", secret(&answer, client)?)
        }
        TokenCommand::List => {
            let tokens = client.list_tokens().await?;
            if tokens.is_empty() {
                eprintln!("No tokens found.");
                return Ok(ExitCode::SUCCESS);
            }
            render_list(&tokens)
        }
        TokenCommand::Delete { name } => {
            client.delete_token(&name).await?;
            format!("token {name:?} deleted\n")
        }
    };
    output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The secret in a create answer: `{"token": "..."}` (or a bare string).
fn secret<'a>(answer: &'a Value, client: &ApiClient) -> Result<&'a str, ClientError> {
    answer.as_str().or_else(|| str_at(answer, "/token")).ok_or_else(|| ClientError::Decode {
        url: format!("{}/v1/tokens", client.server()),
        reason: "the answer carries no `token`".into(),
    })
}

/// The table: NAME SCOPES CREATED.
pub fn render_list(tokens: &[Value]) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let scopes: Vec<&str> =
                t.get("scopes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let created = match str_at(t, "/createdAt").and_then(output::parse_time) {
                Some(ts) => ts.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                None => text_at(t, "/createdAt"),
            };
            vec![text_at(t, "/name"), if scopes.is_empty() { output::NONE.into() } else { scopes.join(",") }, created]
        })
        .collect();
    output::table(&["NAME", "SCOPES", "CREATED"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_tokens() {
        let tokens = vec![
            json!({"name": "bootstrap", "scopes": ["admin:*"], "createdAt": "2023-11-14T22:13:20.123456Z"}),
            json!({"name": "ci", "scopes": ["write:payments", "read:*"], "createdAt": "2023-11-15T08:00:00+00:00"}),
        ];
        assert_eq!(
            render_list(&tokens),
            "NAME        SCOPES                  CREATED\n\
             bootstrap   admin:*                 2023-11-14T22:13:20Z\n\
             ci          write:payments,read:*   2023-11-15T08:00:00Z\n"
        );
    }

    #[test]
    fn finds_the_secret() {
        let c = ApiClient::new("http://h:1", None).unwrap();
        assert_eq!(secret(&json!({"name": "ci", "token": "mrg_abc"}), &c).unwrap(), "mrg_abc");
        assert!(secret(&json!({"name": "ci"}), &c).is_err());
    }
}
