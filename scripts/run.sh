#!/usr/bin/env bash
# Brings the local stack up (Postgres, Redis, moto), starts `mooring serve`
# (API + controller) on it, syncs the charts in charts/ through `mooring sync`
# (source `demo`, the checkout's commit as the revision), and prints the API
# address and an admin token. Ctrl-C stops the server; the stack keeps running
# (`deploy/local/stack.sh down` stops moto).
#
# MOORING_CLOUD=sim (the default here) runs the charts, with their default
# values, against the in-process simulated cloud, where they converge to Ready.
# MOORING_CLOUD=aws runs them against moto: scripts/moto-demo.sh creates what
# they name there (clusters, roles, secrets, target groups; the default VPC's
# subnet and security group) and writes values files with moto's identifiers,
# and every document reaches Synced. Nodes build locally with
# `mooring-provisioner`, and a stand-in on this machine answers their health
# checks (moto's instances run nothing), so they become Ready; moto never starts
# ECS tasks, so relays and workers that want tasks are not Ready. Each cloud has its own
# database (`<db>` for sim, `<db>_moto` for aws), so their state never mixes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
eval "$(deploy/local/stack.sh up)"
# The binaries with exactly the units `make test` and the end-to-end tests build
# (tests/src/bin.rs): `cargo build --workspace --bins` resolves features without the
# dev-dependencies (tokio's `test-util` among them), which compiles tokio and the AWS SDK
# a second time in the same target directory.
cargo test --workspace --no-run --locked
export MOORING="$CARGO_TARGET_DIR/debug/mooring"
export MOORING_CLOUD="${MOORING_CLOUD:-sim}"
SPECS="$MOORING_CACHE_DIR/demo-$MOORING_CLOUD"
# The port the nodes' stand-in answers health checks on (moto only).
NODE_PORT="${MOORING_DEMO_NODE_PORT:-18080}"
if [ "$MOORING_CLOUD" = aws ]; then
  export MOORING_NODE_BUILDS="${MOORING_NODE_BUILDS:-local}"
  # moto's instances are not reachable: check node health on this machine.
  export MOORING_NODE_HEALTH_HOST="${MOORING_NODE_HEALTH_HOST:-127.0.0.1}"
  # What the charts name (Mooring never creates clusters itself), and values
  # files with moto's identifiers.
  MOORING_DEMO_NODE_PORT="$NODE_PORT" scripts/moto-demo.sh "$SPECS/values" > /dev/null
  scripts/render-charts.sh "$SPECS/charts" "$SPECS/values" > /dev/null
  # moto's state must not mix with the simulated cloud's: a database of its own.
  MOTO_DB="${DATABASE_URL##*/}_moto"
  psql "$DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$MOTO_DB'" | grep -q 1 \
    || psql "$DATABASE_URL" -qc "CREATE DATABASE \"$MOTO_DB\""
  export DATABASE_URL="${DATABASE_URL%/*}/$MOTO_DB"
else
  # The integration platform's cluster exists in the simulated account too.
  export MOORING_SIM_CLUSTERS="${MOORING_SIM_CLUSTERS:-default,prod,batch,integrations}"
  scripts/render-charts.sh "$SPECS/charts" > /dev/null
fi
# The commit the charts come from (sync records it on every revision it writes).
REVISION="$(git rev-parse HEAD 2>/dev/null || echo 0000000000000000000000000000000000000000)"

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
STANDIN=""
trap 'kill -TERM $SERVER $STANDIN 2>/dev/null; wait $SERVER 2>/dev/null' INT TERM EXIT
if [ "$MOORING_CLOUD" = aws ]; then
  # Stands in for the nodes' software, which moto's instances never run: answers
  # every health check on 127.0.0.1:$NODE_PORT with 200.
  "$MOORING_CACHE_DIR/moto-venv/bin/python" - "$NODE_PORT" <<'PY' &
import http.server, sys

class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Healthy).serve_forever()
PY
  STANDIN=$!
fi
for _ in $(seq 1 100); do
  curl -sf "http://$LISTEN/healthz" > /dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "mooring serve exited; see the log above" >&2; exit 1; }
  sleep 0.2
done
"$MOORING" sync --dir "$SPECS/charts" --revision "$REVISION" --source demo --prune || true
if [ "$MOORING_CLOUD" = aws ]; then
  cat >&2 <<MSG

On moto every document reaches Synced=True, and the nodes (built locally by
mooring-provisioner, their health answered by a stand-in on 127.0.0.1:$NODE_PORT) become Ready.
moto starts no ECS tasks (its services keep runningCount 0), so the relays and the workers
that want tasks running do not become Ready there (the converter, which scales to zero, does):
that is moto, not Mooring; on the simulated cloud (MOORING_CLOUD=sim make run) or on AWS they
do. Watch them with
  $MOORING get all -A; $MOORING get relays -A -w
MSG
fi
cat >&2 <<MSG

Mooring is running (cloud: $MOORING_CLOUD, database: ${DATABASE_URL##*/}).
The charts in charts/ were rendered into $SPECS/charts and synced
as source "demo" at ${REVISION:0:12}.
  API:    http://$LISTEN   (OpenAPI document: http://$LISTEN/openapi.json)
  Token:  $MOORING_BOOTSTRAP_TOKEN
In another shell:
  export MOORING_SERVER=http://$LISTEN MOORING_TOKEN=$MOORING_BOOTSTRAP_TOKEN
  $MOORING get all -A
Ctrl-C stops the server.
MSG
wait $SERVER
