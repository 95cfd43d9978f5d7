# Shared settings for the scripts: one cargo target directory outside the clone, so
# the AWS SDK and friends are not rebuilt for every clone or CI run. Falls back to
# ./target when the cache directory cannot be created.
export MOORING_CACHE_DIR="${MOORING_CACHE_DIR:-$HOME/.cache/mooring}"
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if mkdir -p "$MOORING_CACHE_DIR/target" 2>/dev/null && [ -w "$MOORING_CACHE_DIR/target" ]; then
    export CARGO_TARGET_DIR="$MOORING_CACHE_DIR/target"
  else
    export CARGO_TARGET_DIR="$PWD/target"
  fi
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Debug info for dependencies makes a clean build slower and much larger; our own
# crates keep line tables for backtraces.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
