#!/usr/bin/env bash
# The CI-sized load scenario (loadtest/scenarios/ci.toml, about 25 s): one API and one
# worker on the local stack, a spike of shoppers and one bot of each kind; then the audit.
# Exits non-zero if the audit or any bot's allowance fails. The report lands in
# loadtest/results/ (or $RESULTS). A scenario whose shoppers pay needs the API's webhook
# secret in PAYMENT_WEBHOOK_SECRETS and PAYMENT_WEBHOOK_SECRET (loadtest/reservations.sh).
# CI_NAME (default ci) names the run and picks its ports: the rows CI_NAME-api,
# CI_NAME-admin and CI_NAME-worker-admin of docs/ports.md.
#
#   loadtest/ci.sh [scenario.toml]
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
SCENARIO=${1:-$REPO_ROOT/loadtest/scenarios/ci.toml}
name=${CI_NAME:-ci}
api_port=$(port_of "$name-api")
admin_port=$(port_of "$name-admin")
worker_port=$(port_of "$name-worker-admin")

isolated_run "$name" ingest-api inventory-worker loadtest
spawn api "$LOGS/api.log" env "LISTEN_ADDR=127.0.0.1:$api_port" "ADMIN_ADDR=127.0.0.1:$admin_port" "$BIN/ingest-api"
spawn worker "$LOGS/worker.log" env "ADMIN_ADDR=127.0.0.1:$worker_port" "$BIN/inventory-worker"
wait_ready "http://127.0.0.1:$admin_port/readyz" "http://127.0.0.1:$worker_port/readyz"
say "load scenario $(basename "$SCENARIO") (logs: $LOGS)"
"$BIN/loadtest" run --scenario "$SCENARIO" --url "http://127.0.0.1:$api_port" \
  --results "${RESULTS:-$REPO_ROOT/loadtest/results}" 2> >(grep -v ' scheduled ' >&2)
