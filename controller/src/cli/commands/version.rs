//! `mooring version`: the client's version and the server's (from the version
//! its OpenAPI document states), so a mismatch is visible before it confuses.

use std::process::ExitCode;

use crate::cli::client::ApiClient;
use crate::cli::output;

/// Runs `version`: prints the client's version first, so it shows even when the
/// server cannot be asked (then the error follows, exit 1).
pub async fn run(client: &ApiClient) -> anyhow::Result<ExitCode> {
    output::print(&format!("Client Version: {}\n", env!("CARGO_PKG_VERSION")))?;
    let server = client.server_version().await?;
    output::print(&format!("Server Version: {server} ({})\n", client.server()))?;
    Ok(ExitCode::SUCCESS)
}
