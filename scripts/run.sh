#!/usr/bin/env bash
# Brings the local stack up (Postgres, Redis, moto), starts `mooring serve`
# (API + controller) on it, applies the example documents, and prints the API
# address and an admin token. Ctrl-C stops the server; the stack keeps running
# (`deploy/local/stack.sh down` stops moto).
#
# MOORING_CLOUD=sim (the default here) runs the examples against the in-process
# simulated cloud, where they converge to Ready; MOORING_CLOUD=aws runs them
# against moto (clusters `prod` and `batch` are created there; nodes build
# locally with `mooring-provisioner`; moto never starts ECS tasks, so relays and
# workers reach Synced but not Ready).
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
  # The clusters the examples name; Mooring never creates clusters itself.
  "$MOORING_CACHE_DIR/moto-venv/bin/python" - <<PY
import boto3
ecs = boto3.client("ecs", endpoint_url="$MOORING_AWS_ENDPOINT", region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
for name in ("prod", "batch"):
    ecs.create_cluster(clusterName=name)
PY
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
"$MOORING" apply -f examples/ || true
cat >&2 <<MSG

Mooring is running (cloud: $MOORING_CLOUD).
  API:    http://$LISTEN   (OpenAPI document: http://$LISTEN/openapi.json)
  Token:  $MOORING_BOOTSTRAP_TOKEN
In another shell:
  export MOORING_SERVER=http://$LISTEN MOORING_TOKEN=$MOORING_BOOTSTRAP_TOKEN
  $MOORING get relays -A
Ctrl-C stops the server.
MSG
wait $SERVER
