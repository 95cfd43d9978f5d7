#!/usr/bin/env bash
# Local development stack for Mooring: PostgreSQL, Redis and a moto server
# (local AWS endpoint), all on loopback only. No Docker.
#
# Usage: deploy/local/stack.sh up|down [--all]|status|env|help
#
#   up          reuse running services, start installed ones, install missing
#               ones (Debian/Ubuntu apt, moto in a virtualenv; chromium and
#               chromium-driver for the browser tests), wait until each
#               answers, then print the export lines on stdout:
#                 eval "$(deploy/local/stack.sh up)"
#   down        stop the moto server this script started (by pidfile)
#   down --all  also stop PostgreSQL (pg_ctlcluster) and Redis (shutdown nosave)
#   status      one line per service, up/down and its URL; non-zero if any is down
#   env         print only the export lines:  eval "$(deploy/local/stack.sh env)"
#
# Environment overrides:
#   MOORING_PG_PORT (5432)  MOORING_REDIS_PORT (6379)  MOORING_MOTO_PORT (4566)
#   MOORING_CACHE_DIR ($HOME/.cache/mooring)  MOORING_SKIP_MOTO=1 (no moto)
#   MOORING_SKIP_BROWSER=1 (do not install chromium + chromium-driver, which the
#   status page's browser tests need)
#   MOORING_STACK_TIMEOUT (30, seconds to wait for each service)
set -euo pipefail

MOTO_SPEC='moto[server]==5.2.5'
MOTO_VERSION="${MOTO_SPEC##*==}"

PG_PORT="${MOORING_PG_PORT:-5432}"
REDIS_PORT="${MOORING_REDIS_PORT:-6379}"
MOTO_PORT="${MOORING_MOTO_PORT:-4566}"
CACHE_DIR="${MOORING_CACHE_DIR:-$HOME/.cache/mooring}"
SKIP_MOTO="${MOORING_SKIP_MOTO:-0}"
TIMEOUT="${MOORING_STACK_TIMEOUT:-30}"

HOST=127.0.0.1
PG_DB=mooring
PG_USER=postgres
STACK_DIR="$CACHE_DIR/stack"
MOTO_VENV="$CACHE_DIR/moto-venv"
# schemathesis (the API fuzzing test of the suite) in a virtualenv of its own.
SCHEMATHESIS_SPEC='schemathesis==4.32.5'
SCHEMATHESIS_VENV="$CACHE_DIR/schemathesis-venv"
MOTO_PIDFILE="$STACK_DIR/moto-$MOTO_PORT.pid"
MOTO_LOG="$STACK_DIR/moto-$MOTO_PORT.log"

DATABASE_URL="postgres://$PG_USER@$HOST:$PG_PORT/$PG_DB"
REDIS_URL="redis://$HOST:$REDIS_PORT"
MOTO_URL="http://$HOST:$MOTO_PORT"

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

for p in "$PG_PORT" "$REDIS_PORT" "$MOTO_PORT" "$TIMEOUT"; do
    [[ "$p" =~ ^[0-9]+$ ]] || die "not a number: '$p' (check MOORING_*_PORT / MOORING_STACK_TIMEOUT)"
done

moto_skipped() { [[ "$SKIP_MOTO" == 1 || "$SKIP_MOTO" == true || "$SKIP_MOTO" == yes ]]; }

# Run a command as root: directly if we are root, else through sudo.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# ---------------------------------------------------------------- checks

pg_is_up() {
    have pg_isready && pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

redis_is_up() {
    have redis-cli && [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

# moto's server answers GET /moto-api/config with a small JSON object (201,
# e.g. {"batch": {"use_docker": true}, ...}); another HTTP server would not.
# (/moto-api/ is a 10 kB HTML dashboard, /moto-api/data.json dumps every
# backend and grows with the state, so neither is used as the probe.)
moto_is_up() {
    local body
    body="$(curl -sf --max-time 3 "$MOTO_URL/moto-api/config" 2>/dev/null)" || return 1
    [[ "$body" == "{"*"}" ]]
}

# wait_for NAME CHECK_FUNCTION [HINT]
wait_for() {
    local name="$1" check="$2" hint="${3:-}" deadline=$((SECONDS + TIMEOUT))
    until "$check"; do
        if ((SECONDS >= deadline)); then
            die "$name did not answer within ${TIMEOUT}s${hint:+; $hint}"
        fi
        sleep 0.5
    done
}

# ---------------------------------------------------------------- install

APT_UPDATED=0
apt_install() {
    have apt-get || die "cannot install $* automatically (no apt-get); install it and re-run"
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_packages() {
    local pkgs=()
    local b
    for b in pg_isready psql createdb pg_ctlcluster pg_createcluster pg_lsclusters; do
        if ! have "$b"; then pkgs+=(postgresql postgresql-client); break; fi
    done
    if ! have redis-server || ! have redis-cli; then pkgs+=(redis-server); fi
    if ! moto_skipped; then
        have curl || pkgs+=(curl)
        have python3 || pkgs+=(python3 python3-venv)
    fi
    # The status page's browser tests drive Debian's Chromium through its WebDriver.
    if [[ "${MOORING_SKIP_BROWSER:-0}" != 1 ]]; then
        have chromium || pkgs+=(chromium)
        have chromedriver || pkgs+=(chromium-driver)
    fi
    if ((${#pkgs[@]} > 0)); then apt_install "${pkgs[@]}"; fi
}

# ---------------------------------------------------------------- postgres

pg_version() {
    local v=""
    if [[ -d /etc/postgresql ]]; then
        v="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -1)"
    fi
    if [[ -z "$v" && -d /usr/lib/postgresql ]]; then
        v="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -1)"
    fi
    [[ -n "$v" ]] || die "no PostgreSQL version found under /etc/postgresql or /usr/lib/postgresql"
    printf '%s\n' "$v"
}

# Make a freshly created cluster trust TCP connections from loopback. pg_hba
# is first-match, so the trust lines go on top.
pg_trust_loopback() {
    local hba="$1"
    if as_root grep -Eq "^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust" "$hba"; then
        return 0
    fi
    log "adding loopback trust lines to $hba"
    local tmp
    tmp="$(mktemp)"
    {
        printf '# added by deploy/local/stack.sh: local development only\n'
        printf 'host    all    all    127.0.0.1/32    trust\n'
        printf 'host    all    all    ::1/128         trust\n'
        as_root cat "$hba"
    } >"$tmp"
    # tee rewrites the file in place, keeping its owner and mode
    as_root tee "$hba" <"$tmp" >/dev/null
    rm -f "$tmp"
}

pg_start() {
    local ver cluster_port
    ver="$(pg_version)"
    if [[ ! -f "/etc/postgresql/$ver/main/postgresql.conf" ]]; then
        log "creating PostgreSQL $ver cluster 'main' on port $PG_PORT"
        as_root pg_createcluster "$ver" main -p "$PG_PORT" -- --auth-local=peer --auth-host=trust >&2
        pg_trust_loopback "/etc/postgresql/$ver/main/pg_hba.conf"
    fi
    cluster_port="$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { print $3 }')"
    if [[ -n "$cluster_port" && "$cluster_port" != "$PG_PORT" ]]; then
        die "PostgreSQL cluster $ver/main is configured for port $cluster_port, not $PG_PORT; set MOORING_PG_PORT=$cluster_port or change 'port' in /etc/postgresql/$ver/main/postgresql.conf"
    fi
    log "starting PostgreSQL $ver/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 ||
        die "pg_ctlcluster $ver main start failed; see /var/log/postgresql/postgresql-$ver-main.log"
    wait_for "PostgreSQL on $HOST:$PG_PORT" pg_is_up "see /var/log/postgresql/postgresql-$ver-main.log"
}

pg_psql() {
    psql -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -w -X -Atq "$@"
}

pg_ensure_db() {
    if ! pg_psql -d postgres -c 'select 1' >/dev/null 2>&1; then
        die "cannot connect to PostgreSQL as '$PG_USER' from $HOST:$PG_PORT without a password; add 'host all all 127.0.0.1/32 trust' at the top of pg_hba.conf and reload"
    fi
    if [[ "$(pg_psql -d postgres -c "select 1 from pg_database where datname = '$PG_DB'")" == 1 ]]; then
        log "postgres: database '$PG_DB' exists"
    else
        log "postgres: creating database '$PG_DB'"
        pg_psql -d postgres -c "create database $PG_DB" >/dev/null
    fi
}

pg_up() {
    if pg_is_up; then
        log "postgres: already running on $HOST:$PG_PORT"
    else
        pg_start
        log "postgres: started on $HOST:$PG_PORT"
    fi
    pg_ensure_db
}

pg_stop() {
    if ! pg_is_up; then
        log "postgres: not running"
        return 0
    fi
    local ver
    ver="$(pg_version)"
    log "postgres: stopping $ver/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main stop >&2
}

# ---------------------------------------------------------------- redis

redis_up() {
    if redis_is_up; then
        log "redis: already running on $HOST:$REDIS_PORT"
        return 0
    fi
    local dir=/var/lib/redis logdir=/var/log/redis
    mkdir -p "$dir" 2>/dev/null || true
    if [[ ! -d "$dir" || ! -w "$dir" ]]; then
        dir="$STACK_DIR/redis"
        mkdir -p "$dir"
    fi
    mkdir -p "$logdir" 2>/dev/null || true
    if [[ ! -d "$logdir" || ! -w "$logdir" ]]; then
        logdir="$STACK_DIR"
        mkdir -p "$logdir"
    fi
    log "redis: starting on $HOST:$REDIS_PORT (dir $dir, log $logdir/ci.log)"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$dir" --logfile "$logdir/ci.log" >&2 ||
        die "redis-server failed to start; see $logdir/ci.log"
    wait_for "Redis on $HOST:$REDIS_PORT" redis_is_up "see $logdir/ci.log"
    log "redis: started on $HOST:$REDIS_PORT"
}

redis_stop() {
    if ! redis_is_up; then
        log "redis: not running"
        return 0
    fi
    log "redis: shutdown nosave"
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    local deadline=$((SECONDS + TIMEOUT))
    while redis_is_up; do
        ((SECONDS < deadline)) || die "redis on $HOST:$REDIS_PORT did not stop"
        sleep 0.2
    done
}

# ---------------------------------------------------------------- moto

moto_installed_version() {
    [[ -x "$MOTO_VENV/bin/moto_server" ]] || return 1
    "$MOTO_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null
}

moto_install() {
    if [[ "$(moto_installed_version || true)" == "$MOTO_VERSION" ]]; then
        return 0
    fi
    if [[ ! -x "$MOTO_VENV/bin/python" ]]; then
        log "moto: creating virtualenv $MOTO_VENV"
        mkdir -p "$CACHE_DIR"
        if ! python3 -m venv "$MOTO_VENV" >&2; then
            rm -rf "$MOTO_VENV"
            apt_install python3-venv
            python3 -m venv "$MOTO_VENV" >&2
        fi
    fi
    log "moto: pip install '$MOTO_SPEC' (first time takes a while)"
    "$MOTO_VENV/bin/python" -m pip install -q --disable-pip-version-check "$MOTO_SPEC" >&2 ||
        die "pip install '$MOTO_SPEC' failed"
}

schemathesis_install() {
    local want="${SCHEMATHESIS_SPEC##*==}" have
    have="$("$SCHEMATHESIS_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
    [[ "$have" == "$want" ]] && return 0
    if [[ ! -x "$SCHEMATHESIS_VENV/bin/python" ]]; then
        log "schemathesis: creating virtualenv $SCHEMATHESIS_VENV"
        mkdir -p "$CACHE_DIR"
        python3 -m venv "$SCHEMATHESIS_VENV" >&2 || { apt_install python3-venv; python3 -m venv "$SCHEMATHESIS_VENV" >&2; }
    fi
    log "schemathesis: pip install '$SCHEMATHESIS_SPEC'"
    "$SCHEMATHESIS_VENV/bin/python" -m pip install -q --disable-pip-version-check "$SCHEMATHESIS_SPEC" >&2 ||
        die "pip install '$SCHEMATHESIS_SPEC' failed"
}

# true if PID is a live process (a zombie waiting to be reaped counts as gone)
pid_alive() {
    local pid="$1" stat
    kill -0 "$pid" 2>/dev/null || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 0
    [[ "${stat##*) }" != Z* ]]
}

# pid of the moto server this script started, if it is still running.
moto_pid() {
    [[ -f "$MOTO_PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$MOTO_PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    pid_alive "$pid" || return 1
    # guard against a recycled pid
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server || return 1
    printf '%s\n' "$pid"
}

# moto answers, or fail at once if the process we started has exited.
moto_started() {
    moto_is_up && return 0
    if ! pid_alive "$(cat "$MOTO_PIDFILE")"; then
        rm -f "$MOTO_PIDFILE"
        log "moto: server exited; last lines of $MOTO_LOG:"
        tail -n 5 "$MOTO_LOG" >&2 || true
        die "moto did not start on $MOTO_URL"
    fi
    return 1
}

moto_up() {
    if moto_is_up; then
        log "moto: already running on $MOTO_URL"
        return 0
    fi
    moto_install
    mkdir -p "$STACK_DIR"
    if [[ -f "$MOTO_PIDFILE" ]] && ! moto_pid >/dev/null; then
        rm -f "$MOTO_PIDFILE"
    fi
    log "moto: starting $MOTO_VERSION on $MOTO_URL (log $MOTO_LOG)"
    # Its own session, so it outlives the shell (and process group) that started it.
    setsid nohup "$MOTO_VENV/bin/moto_server" -H "$HOST" -p "$MOTO_PORT" </dev/null >>"$MOTO_LOG" 2>&1 &
    echo $! >"$MOTO_PIDFILE"
    wait_for "moto on $MOTO_URL" moto_started "see $MOTO_LOG"
    log "moto: started on $MOTO_URL (pid $(cat "$MOTO_PIDFILE"))"
}

moto_stop() {
    local pid
    if ! pid="$(moto_pid)"; then
        rm -f "$MOTO_PIDFILE"
        if moto_is_up; then
            log "moto: $MOTO_URL was not started by this script (no live pidfile); leaving it running"
        else
            log "moto: not running"
        fi
        return 0
    fi
    log "moto: stopping pid $pid"
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            log "moto: pid $pid ignored SIGTERM; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$MOTO_PIDFILE"
}

# ---------------------------------------------------------------- commands

print_env() {
    printf 'export DATABASE_URL=%s\n' "$DATABASE_URL"
    printf 'export REDIS_URL=%s\n' "$REDIS_URL"
    if ! moto_skipped; then
        printf 'export MOORING_AWS_ENDPOINT=%s\n' "$MOTO_URL"
    fi
    printf 'export AWS_ACCESS_KEY_ID=testing\n'
    printf 'export AWS_SECRET_ACCESS_KEY=testing\n'
    printf 'export AWS_REGION=us-east-1\n'
    printf 'export AWS_DEFAULT_REGION=us-east-1\n'
    printf 'export MOORING_SCHEMATHESIS=%s\n' "$SCHEMATHESIS_VENV/bin/schemathesis"
}

cmd_up() {
    ensure_packages
    pg_up
    redis_up
    if moto_skipped; then
        log "moto: skipped (MOORING_SKIP_MOTO=$SKIP_MOTO)"
    else
        moto_up
    fi
    schemathesis_install
    if [ -t 1 ]; then
        log "stack is up; exports:"
    else
        log "stack is up; its exports are on stdout (for eval)"
    fi
    print_env
}

cmd_status() {
    local rc=0
    if pg_is_up; then
        printf '%-9s up    %s\n' postgres "$DATABASE_URL"
    else
        printf '%-9s down  %s\n' postgres "$DATABASE_URL"
        rc=1
    fi
    if redis_is_up; then
        printf '%-9s up    %s\n' redis "$REDIS_URL"
    else
        printf '%-9s down  %s\n' redis "$REDIS_URL"
        rc=1
    fi
    if moto_skipped; then
        printf '%-9s skip  %s (MOORING_SKIP_MOTO)\n' moto "$MOTO_URL"
    elif moto_is_up; then
        printf '%-9s up    %s\n' moto "$MOTO_URL"
    else
        printf '%-9s down  %s\n' moto "$MOTO_URL"
        rc=1
    fi
    return "$rc"
}

cmd_down() {
    local all=0
    case "${1:-}" in
        "") ;;
        --all) all=1 ;;
        *) die "down: unknown option '$1' (only --all)" ;;
    esac
    moto_stop
    if ((all)); then
        redis_stop
        pg_stop
    else
        log "postgres and redis left running (use 'down --all' to stop them too)"
    fi
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

main() {
    local cmd="${1:-}"
    if [[ $# -gt 0 ]]; then shift; fi
    case "$cmd" in
        up) [[ $# -eq 0 ]] || die "up takes no arguments"; cmd_up ;;
        down) [[ $# -le 1 ]] || die "down takes at most one option (--all)"; cmd_down "$@" ;;
        status) cmd_status ;;
        env) print_env ;;
        help | -h | --help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
