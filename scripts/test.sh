#!/usr/bin/env bash
# Runs every check and test of the repository: formatting, clippy, and the
# unit, integration and end-to-end tests against real Postgres, Redis and moto.
# Brings the local stack up first (deploy/local/stack.sh), so a fresh Debian
# machine with a Rust toolchain needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

echo "==> local stack" >&2
eval "$(deploy/local/stack.sh up)"

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check

echo "==> cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test" >&2
cargo test --workspace --locked "$@"
