//! End-to-end test helpers: real `mooring` processes against real Postgres and Redis.
//!
//! A test builds a [`Stack`]: a fresh Postgres database, a Redis key prefix, an
//! Ed25519 signing key, a bootstrap token and a scratch directory, none of them
//! shared with any other test. From it, the test starts servers
//! ([`Stack::server`] → [`ServerBuilder`] → [`Server`]) and drives them through the
//! CLI ([`Server::cli`]) or over HTTP ([`Server::api`]). Commands that need no
//! server (`migrate`, `audit verify`, `schema`) run through [`Stack::run`].
//!
//! Everything is torn down on drop: servers are killed, the database is dropped and
//! the Redis keys are deleted. When a test panics, the tail of every server's log is
//! printed and the scratch directory (with the full logs) is kept.
//!
//! A test that crashes Postgres or Redis starts its own ([`PrivatePostgres`],
//! [`PrivateRedis`]) and builds its stack on them with [`Stack::on`].
//!
//! Waits are bounded polling loops ([`eventually`]); nothing asserts how fast
//! something happened.
//!
//! Environment:
//! - `DATABASE_URL`: where Postgres is; its database name is replaced by a fresh one
//!   per test, and the `postgres` database is used to create and drop it
//!   (`E2E_ADMIN_DATABASE_URL` overrides that).
//! - `REDIS_URL`: where Redis is.
//! - `MOORING_AWS_ENDPOINT`: the local AWS (moto) that tests about AWS use; other
//!   tests run servers with the in-process simulated cloud (`MOORING_CLOUD=sim`).
//! - `MOORING_E2E_BIN`: a prebuilt `mooring` binary; without it the binary is built
//!   once per test process with `cargo test --workspace --no-run --locked` (the
//!   suite's own build command, so nothing is compiled twice) into the target
//!   directory the tests run from.
//! - `E2E_KEEP_LOGS=1`: keep every test's scratch directory (server logs), not only
//!   those of failed tests.

mod aws;
mod bin;
mod cli;
mod db;
mod docs;
mod metrics;
mod poll;
mod private;
mod server;
mod stack;

pub use aws::Moto;
pub use bin::{mooring_bin, workspace_root};
pub use cli::CliOutput;
pub use db::TestDb;
pub use docs::{condition, relay_json, relay_yaml, worker_json, worker_yaml};
pub use metrics::metric_value;
pub use poll::{POLL_INTERVAL, eventually};
pub use private::{PrivatePostgres, PrivateRedis};
pub use server::{Server, ServerBuilder, free_port};
pub use stack::Stack;

/// Default timeout of a bounded wait for something the system does on its own
/// (a reconcile, a lease moving). Generous: the machine may be busy.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
