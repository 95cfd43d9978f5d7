#!/usr/bin/env bash
# Measures `mooring sync` of N documents (default 1000) against a real server:
# wall time of each sync and the API requests it made (from the server's
# http_requests_total, /v1 routes only).
#
# Starts its own `mooring serve --api-only` (so reconciling the new workers does
# not share the two cores with the sync being measured) on a fresh database
# mooring_bench_sync, on the local stack (deploy/local/stack.sh up first).
#
#   scripts/bench-sync.sh [N]        MOORING=path/to/mooring (default: the debug build)
#
# Phases: create N; the same commit again (no-op); a commit changing 1% and
# removing 1% with --prune.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
N="${1:-1000}"
MOORING="${MOORING:-$CARGO_TARGET_DIR/debug/mooring}"
PGURL="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB=mooring_bench_sync
PORT="${BENCH_PORT:-18093}"
WORK="$(mktemp -d)"
export MOORING_SERVER="http://127.0.0.1:$PORT" MOORING_TOKEN="bench-$(date +%s)-token"

psql "$PGURL/postgres" -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="$PGURL/$DB" REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}" \
  MOORING_REDIS_PREFIX="bench-sync-$$" MOORING_BOOTSTRAP_TOKEN="$MOORING_TOKEN" MOORING_CLOUD=sim \
  MOORING_RATE_LIMIT=0 \
  "$MOORING" serve --api-only --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -fs "$MOORING_SERVER/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

# N workers in 10 files (a YAML stream each), namespace bench.
generate() { # $1: image tag; $2: how many from the start get tag2; $3: how many from the end are left out
  rm -rf "$WORK/repo" && mkdir -p "$WORK/repo"
  local last=$((N - 1 - $3))
  for i in $(seq 0 "$last"); do
    local tag=$1
    [ "$i" -lt "$2" ] && tag=2.0.0
    cat >>"$WORK/repo/workers-$((i % 10)).yaml" <<EOF
---
apiVersion: mooring/v1
kind: Worker
metadata:
  name: bench-$i
  namespace: bench
  labels: {app: bench}
spec:
  cluster: batch
  container: {name: work, image: "public.ecr.aws/acme/bench:$tag"}
  queue: {visibilityTimeoutSeconds: 60}
  scaling: {min: 0, max: 5}
EOF
  done
}

requests() {
  curl -fs -H "Authorization: Bearer $MOORING_TOKEN" "$MOORING_SERVER/metrics" | awk '/http_requests_total\{/ && /route="\/v1/ {s += $NF} END {print s + 0}'
}

measure() { # $1: label; $2: revision; rest: extra sync flags
  local label=$1 rev=$2
  shift 2
  local before after start end code=0
  before=$(requests)
  start=$(date +%s.%N)
  "$MOORING" sync --dir "$WORK/repo" --revision "$rev" --source bench "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || code=$?
  if [ "$code" = 1 ] || grep -q "^error:" "$WORK/err.txt"; then cat "$WORK/err.txt" >&2; fi
  end=$(date +%s.%N)
  after=$(requests)
  printf '| %s | %s | %.2f | %d | %s |\n' "$label" "$code" "$(echo "$end - $start" | bc)" "$((after - before))" \
    "$(grep -E '^(Plan|Apply complete|No changes)' "$WORK/out.txt" | tail -1)"
}

generate 1.0.0 0 0
echo "$N documents, $(cat "$WORK"/repo/*.yaml | wc -c) bytes of YAML in 10 files"
echo
echo "| sync | exit | wall s | API requests | last line |"
echo "| --- | --- | --- | --- | --- |"
measure "create $N" aaaaaaa0000000000000000000000000000000a1
measure "same commit again" aaaaaaa0000000000000000000000000000000a1
measure "dry run of the same commit" aaaaaaa0000000000000000000000000000000a1 --dry-run
CHANGE=$((N / 100))
generate 1.0.0 "$CHANGE" "$CHANGE"
measure "change $CHANGE, prune $CHANGE" bbbbbbb0000000000000000000000000000000b2 --prune
