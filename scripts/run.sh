#!/usr/bin/env bash
# Brings the local stack up (Postgres, Redis, moto) and runs Mooring on it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
eval "$(deploy/local/stack.sh up)"
cargo build -p controller
echo "stack is up; schemas of the kinds:" >&2
for kind in node relay worker; do
  "$CARGO_TARGET_DIR/debug/mooring" schema "$kind" > /dev/null && echo "  mooring schema $kind" >&2
done
cargo test -p api-types
