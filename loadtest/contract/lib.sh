# Helpers shared by loadtest/contract.sh and loadtest/generated-client.sh. Source it after
# deploy/local/lib.sh and $STATE_DIR/env; do not run it.
# shellcheck shell=bash

# pinned_venv VENV REQUIREMENTS: a venv at VENV holding the pins of REQUIREMENTS, made
# again only when that file changes (a copy of it in the venv, written last, marks a
# complete install).
pinned_venv() {
  local venv=$1 requirements=$2
  cmp -s "$requirements" "$venv/requirements.txt" && return 0
  say "installing $(grep -v '^#' "$requirements" | xargs) into $venv"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "these tools need Python 3.10 or newer"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" ||
    die "pip install -r ${requirements#"$REPO_ROOT/"} failed"
  # Written last: a venv without it (an interrupted install) is made again.
  cp "$requirements" "$venv/requirements.txt"
}
