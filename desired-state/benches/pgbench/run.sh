#!/usr/bin/env bash
# The Postgres ceiling of the API's create statement, beside pgbench's
# single-row insert, each on a fresh database made from the migrations:
#   1. a single-row INSERT of a small JSON row (the API bench's baseline);
#   2. the resources row alone;
#   3. the whole create statement (row, revision, change, name claim);
#   4. the same with the sequencer numbering the changes beside it.
# 16 clients, BENCH_SECONDS (default 10) each. Needs pgbench and the local
# stack's Postgres (PGHOST/PGUSER, default 127.0.0.1/postgres).
set -euo pipefail
cd "$(dirname "$0")"
export LC_ALL=C
secs=${BENCH_SECONDS:-10}
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
db=mooring_statement_bench
migrations=../../migrations
tmp=$(mktemp -d)
sequencer=
cleanup() {
    if [ -n "$sequencer" ]; then kill "$sequencer" 2>/dev/null || true; wait "$sequencer" 2>/dev/null || true; fi
    rm -rf "$tmp"
    dropdb --if-exists --force "$db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fresh() {
    dropdb --if-exists --force "$db" >/dev/null 2>&1
    createdb "$db"
    for f in "$migrations"/*.sql; do psql -q -v ON_ERROR_STOP=1 -d "$db" -f "$f" >/dev/null; done
    psql -q -v ON_ERROR_STOP=1 -d "$db" -f create.sql >/dev/null
    psql -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE TABLE pgb (id bigserial PRIMARY KEY, doc jsonb)"
}
echo "INSERT INTO pgb (doc) VALUES ('{\"a\":1,\"b\":\"two\"}');" > "$tmp/insert.sql"
for f in create_one create_row; do
    printf '\\set n random(1, 2000000000)\nSELECT %s(%s);\n' "$f" \
        "'r' || :client_id || '-' || :n || '-' || floor(random()*1e9)::text" > "$tmp/$f.sql"
done
# One line: what, and pgbench's transactions per second (fails loudly).
bench() {
    local tps
    pgbench -n -M prepared -c 16 -j 2 -T "$secs" -f "$2" "$db" > "$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
    tps=$(awk '/^tps = / { print $3; exit }' "$tmp/out")
    [ -n "$tps" ] || { cat "$tmp/out" >&2; exit 1; }
    printf '%-40s %10.0f/s\n' "$1" "$tps"
}
fresh; bench "single-row insert (pgbench)" "$tmp/insert.sql"
fresh; bench "resources row alone" "$tmp/create_row.sql"
fresh; bench "create statement" "$tmp/create_one.sql"
fresh
pgbench -n -M prepared -c 1 -T "$((secs + 2))" -f sequencer.sql "$db" >/dev/null 2>&1 &
sequencer=$!
bench "create statement + sequencer" "$tmp/create_one.sql"
