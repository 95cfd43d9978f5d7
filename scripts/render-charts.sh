#!/usr/bin/env bash
# Renders every chart in charts/ into a directory that `mooring sync` can take:
# `scripts/render-charts.sh OUT_DIR [VALUES_DIR] [--set key=value ...]` writes
# OUT_DIR/<chart>.yaml with `mooring chart render`, over VALUES_DIR/<chart>.yaml
# when that file exists, and with every `--set` given (for every chart).
# MOORING names the binary (default: $CARGO_TARGET_DIR/debug/mooring).
# OUT_DIR is emptied first, so a chart removed from charts/ is pruned by the
# next `mooring sync --prune`. Prints OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
OUT="${1:?usage: scripts/render-charts.sh OUT_DIR [VALUES_DIR] [--set key=value ...]}"
shift
VALUES=""
if [ $# -gt 0 ] && [ "$1" != --set ]; then
  VALUES="$1"
  shift
fi
MOORING="${MOORING:-$CARGO_TARGET_DIR/debug/mooring}"
mkdir -p "$OUT"
find "$OUT" -maxdepth 1 -name '*.yaml' -delete
for chart in charts/*/; do
  name="$(basename "$chart")"
  args=(chart render "$chart")
  if [ -n "$VALUES" ] && [ -f "$VALUES/$name.yaml" ]; then
    args+=(-f "$VALUES/$name.yaml")
  fi
  "$MOORING" "${args[@]}" "$@" > "$OUT/$name.yaml"
done
echo "$OUT"
