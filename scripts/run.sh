#!/usr/bin/env bash
# Brings the local stack up (Postgres, Redis, moto), starts `mooring serve`
# (API + controller) on it, applies the example documents, and prints the API
# address and an admin token. Ctrl-C stops the server; the stack keeps running
# (`deploy/local/stack.sh down` stops moto).
#
# MOORING_CLOUD=sim (the default here) runs the examples against the in-process
# simulated cloud, where they converge to Ready; MOORING_CLOUD=aws runs them
# against moto: scripts/moto-demo.sh creates what they name there (clusters,
# role, secret, target group; the default VPC's subnet and security group) and
# rewrites them with moto's identifiers, and every example reaches Synced. Nodes
# build locally with `mooring-provisioner`; moto never starts ECS tasks, so
# relays and workers are not Ready. Each cloud has its own database
# (`<db>` for sim, `<db>_moto` for aws), so their state never mixes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
eval "$(deploy/local/stack.sh up)"
cargo build -p controller -p runners --bin mooring --bin mooring-provisioner
MOORING="$CARGO_TARGET_DIR/debug/mooring"
export MOORING_CLOUD="${MOORING_CLOUD:-sim}"
if [ "$MOORING_CLOUD" = aws ]; then
  export MOORING_NODE_BUILDS="${MOORING_NODE_BUILDS:-local}"
  # moto's instances are not reachable: check node health on this machine.
  export MOORING_NODE_HEALTH_HOST="${MOORING_NODE_HEALTH_HOST:-127.0.0.1}"
  # What the examples name (Mooring never creates clusters itself), and the
  # examples rewritten with moto's identifiers.
  EXAMPLES="$(scripts/moto-demo.sh "$MOORING_CACHE_DIR/demo-moto")"
  # moto's state must not mix with the simulated cloud's: a database of its own.
  MOTO_DB="${DATABASE_URL##*/}_moto"
  psql "$DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$MOTO_DB'" | grep -q 1 \
    || psql "$DATABASE_URL" -qc "CREATE DATABASE \"$MOTO_DB\""
  export DATABASE_URL="${DATABASE_URL%/*}/$MOTO_DB"
else
  EXAMPLES=examples/
fi

LISTEN="${MOORING_LISTEN:-127.0.0.1:8080}"
TOKEN_FILE="$MOORING_CACHE_DIR/dev-admin-token"
if [ -z "${MOORING_BOOTSTRAP_TOKEN:-}" ]; then
  if [ ! -s "$TOKEN_FILE" ]; then
    mkdir -p "$MOORING_CACHE_DIR"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TOKEN_FILE")
  fi
  MOORING_BOOTSTRAP_TOKEN="$(cat "$TOKEN_FILE")"
fi
export MOORING_BOOTSTRAP_TOKEN MOORING_LISTEN="$LISTEN"
export MOORING_SERVER="http://$LISTEN" MOORING_TOKEN="$MOORING_BOOTSTRAP_TOKEN"

"$MOORING" serve &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 100); do
  curl -sf "http://$LISTEN/healthz" > /dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "mooring serve exited; see the log above" >&2; exit 1; }
  sleep 0.2
done
"$MOORING" apply -f "$EXAMPLES" || true
if [ "$MOORING_CLOUD" = aws ]; then
  cat >&2 <<MSG

On moto every example reaches Synced=True. moto starts no ECS tasks, so the relay and the
worker do not become Ready; that is moto, not Mooring. Watch them with
  $MOORING get all; $MOORING get relays -w
MSG
fi
cat >&2 <<MSG

Mooring is running (cloud: $MOORING_CLOUD, database: ${DATABASE_URL##*/}, examples: $EXAMPLES).
  API:    http://$LISTEN   (OpenAPI document: http://$LISTEN/openapi.json)
  Token:  $MOORING_BOOTSTRAP_TOKEN
In another shell:
  export MOORING_SERVER=http://$LISTEN MOORING_TOKEN=$MOORING_BOOTSTRAP_TOKEN
  $MOORING get relays -A
Ctrl-C stops the server.
MSG
wait $SERVER
