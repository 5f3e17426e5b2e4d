#!/usr/bin/env bash
# "The contract generates typed clients", tried as an outside integrator would
# (loadtest/generated-client/README.md):
#
#   1. openapi-python-client (pinned in loadtest/generated-client/requirements.txt, in a venv
#      under $HOME/.cache/flash-sale/generated-client-venv) generates a Python client from
#      ingest-api/openapi.yaml; any warning it prints fails the run.
#   2. oapi-codegen (Go, pinned below, installed under $HOME/.cache/flash-sale/go) generates
#      a Go client; any output fails the run; the client must compile (its runtime pinned
#      by loadtest/generated-client/go/go.mod and go.sum).
#   3. check_generated.py checks both clients against the document: every documented answer
#      of every operation is kept, and every problem answer is a typed model whose `code`
#      is an enum of that answer's codes (Python: a body per (status, code) is parsed).
#   4. One API on the local stack (as loadtest/contract.sh starts it); use_client.py uses
#      the generated Python client on it, every signed request signed by an httpx hook
#      (signing_hook.py): place, replay, read, cancel an order; a typed 401, a typed
#      PURCHASE_LIMIT_REACHED and a typed SOLD_OUT.
#
#   loadtest/generated-client.sh
#
# The generated code and the generators' output land in $STATE_DIR/generated-client/
# (replaced every run). GENERATED_CLIENT_PORT / GENERATED_CLIENT_ADMIN_PORT move the API.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
cd "$REPO_ROOT" # up.sh and cargo build from the workspace
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
# shellcheck source=loadtest/contract/lib.sh
. "$REPO_ROOT/loadtest/contract/lib.sh"
here=$REPO_ROOT/loadtest/generated-client
spec=$REPO_ROOT/ingest-api/openapi.yaml
venv=$HOME/.cache/flash-sale/generated-client-venv
OAPI_CODEGEN_VERSION=v2.8.2
port=${GENERATED_CLIENT_PORT:-$(port_of generated-client-api)}
admin_port=${GENERATED_CLIENT_ADMIN_PORT:-$(port_of generated-client-admin)}
out=$STATE_DIR/generated-client
started=$(date +%s)
rm -rf "$out"
mkdir -p "$out/python" "$out/go"

# fail_on_output NAME LOG ALLOWED: fails, showing LOG, if the generator printed any line
# that does not match the regular expression ALLOWED (its normal progress lines).
fail_on_output() {
  local extra
  extra=$(grep -Ev "$3" "$2" | grep -v '^[[:space:]]*$' || true)
  [ -z "$extra" ] && return 0
  grep -E 'Warning|WARNING|Cannot parse|omitted' "$2" | sort | uniq -c | sort -rn | head -n 20 >&2 || true
  printf '\n--- %s printed (%s):\n' "$1" "$2" >&2
  head -n 60 "$2" >&2
  die "$1 printed warnings or other output: ingest-api/openapi.yaml does not generate cleanly"
}

# --- 1. openapi-python-client ---------------------------------------------------------------
pinned_venv "$venv" "$here/requirements.txt"
say "openapi-python-client $("$venv/bin/pip" show openapi-python-client | sed -n 's/^Version: //p'): ingest-api/openapi.yaml"
# Its post-generation hooks run ruff (a dependency, in the venv): on PATH, or it says so.
PATH=$venv/bin:$PATH "$venv/bin/openapi-python-client" generate --path "$spec" \
  --config "$here/openapi-python-client.yaml" --meta none --fail-on-warning \
  --output-path "$out/python/ingest_api_client" >"$out/python-generate.log" 2>&1 ||
  { tail -n 60 "$out/python-generate.log" >&2; die "openapi-python-client failed (log: $out/python-generate.log)"; }
fail_on_output openapi-python-client "$out/python-generate.log" '^Generating '

# --- 2. oapi-codegen -------------------------------------------------------------------------
command -v go >/dev/null || die "go is needed for oapi-codegen (the generated client's runtime needs Go 1.26)"
export GOPATH=$HOME/.cache/flash-sale/go GOFLAGS=-modcacherw
export GOMODCACHE=$GOPATH/mod GOCACHE=$GOPATH/build-cache GOBIN=$GOPATH/bin
if [ "$("$GOBIN/oapi-codegen" -version 2>/dev/null | tail -n 1)" != "$OAPI_CODEGEN_VERSION" ]; then
  say "installing oapi-codegen $OAPI_CODEGEN_VERSION into $GOBIN (once per machine)"
  go install "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$OAPI_CODEGEN_VERSION" ||
    die "go install oapi-codegen $OAPI_CODEGEN_VERSION failed"
fi
say "oapi-codegen $OAPI_CODEGEN_VERSION: ingest-api/openapi.yaml"
"$GOBIN/oapi-codegen" -config "$here/oapi-codegen.yaml" -o "$out/go/client.gen.go" "$spec" \
  >"$out/go-generate.log" 2>&1 ||
  { tail -n 60 "$out/go-generate.log" >&2; die "oapi-codegen failed (log: $out/go-generate.log)"; }
fail_on_output oapi-codegen "$out/go-generate.log" '^$'
cp "$here/go/go.mod" "$here/go/go.sum" "$out/go/"
(cd "$out/go" && go build ./... >"$out/go-build.log" 2>&1) ||
  { tail -n 40 "$out/go-build.log" >&2; die "the generated Go client does not compile (log: $out/go-build.log)"; }

# --- 3. what the clients kept ----------------------------------------------------------------
say "generated clients against the document (check_generated.py)"
"$venv/bin/python" "$here/check_generated.py" python "$spec" "$out/python/ingest_api_client"
"$venv/bin/python" "$here/check_generated.py" go "$spec" "$out/go/client.gen.go"

# --- 4. the Python client on a real API ------------------------------------------------------
for p in "$port" "$admin_port"; do
  port_open "$p" && die "port $p is in use (set GENERATED_CLIENT_PORT / GENERATED_CLIENT_ADMIN_PORT)"
done
isolated_run generated-client ingest-api
# One client on one address: the per-instance limit out of its way. No worker consumes this
# run's topic: its Redis keys go with it.
export FALLBACK_IP_LIMIT=100000/s:100000 HTTP_WORKERS=${HTTP_WORKERS:-2}
# shellcheck disable=SC2016 # expanded when the trap runs
on_exit 'redis-cli -u "$REDIS_URL" --scan --pattern "$RUN:*" 2>/dev/null |
  xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1'
spawn api "$LOGS/api.log" env "LISTEN_ADDR=127.0.0.1:$port" "ADMIN_ADDR=127.0.0.1:$admin_port" "$BIN/ingest-api"
wait_ready "http://127.0.0.1:$admin_port/readyz"
# Fixed products with the same stock every run, so re-opening them in PostgreSQL is a no-op;
# Redis holds them in this run's namespace (no worker runs: nothing comes back on sale).
high=100000/s:100000
limits=(--ip "$high" --fingerprint "$high" --user "$high" --global "$high")
"$BIN/flashctl" sale open --product generated-client-sale --stock 1000000 --per-user 0 \
  --payment-window 15m "${limits[@]}" >/dev/null
"$BIN/flashctl" sale open --product generated-client-scarce --stock 2 --per-user 1 "${limits[@]}" >/dev/null
say "the generated Python client against ingest-api (signed through signing_hook.py)"
API_URL=http://127.0.0.1:$port GC_PRODUCT=generated-client-sale GC_SCARCE=generated-client-scarce \
  GC_RUN=${RUN#generated-client-} "$venv/bin/python" "$here/use_client.py" "$out/python/ingest_api_client" ||
  die "the generated client did not get the documented answers (API log: $LOGS/api.log)"
say "generated clients: PASS ($(($(date +%s) - started)) s)"
