//! End-to-end tests over real processes: the `mooring` binary against the local
//! Postgres and Redis. One test binary with a module per area, so the tests run in
//! parallel (each with its own database, Redis prefix and ports; see `tests/src`).

mod audit;
mod autoscaling;
mod aws;
mod aws_identity;
mod browser;
mod chaos;
mod cli;
mod commands;
mod deploy;
mod first_hour;
mod fleet;
mod fuzz;
mod hardening;
mod logs;
mod metrics;
mod nodes;
mod ownership;
mod policies;
mod redis_tls;
mod release;
mod replicas;
mod rollouts;
mod shutdown;
mod status_page;
mod status_page_bench;
mod sync;
mod tokens;
mod upgrade;
