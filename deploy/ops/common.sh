# Shared by the incident scripts: finds flashctl and prints usage. Source it.
# shellcheck shell=bash
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${FLASHCTL:-}" ]; then
  if command -v flashctl >/dev/null; then
    FLASHCTL=flashctl
  else
    FLASHCTL=${CARGO_TARGET_DIR:-$HOME/.cache/flash-sale/target}/debug/flashctl
  fi
fi
[ -x "$FLASHCTL" ] || command -v "$FLASHCTL" >/dev/null ||
  { echo "flashctl not found: put it on PATH or set FLASHCTL (cargo build -p flashctl)" >&2; exit 127; }
flashctl() { "$FLASHCTL" "$@"; }
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
