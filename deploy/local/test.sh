#!/usr/bin/env bash
# Runs every check and test against real services: brings the local stack up (installing
# what is missing), then formatting, clippy, and the whole workspace's tests.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/deploy/local/up.sh"
. "$STATE_DIR/env"
cd "$REPO_ROOT"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (warnings are errors)"
cargo clippy -q --workspace --all-targets -- -D warnings
say "cargo test --workspace"
cargo test -q --workspace
say "all tests passed"
