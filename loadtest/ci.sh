#!/usr/bin/env bash
# The CI-sized load scenario (loadtest/scenarios/ci.toml, about 25 s): one API and one
# worker on the local stack, a spike of shoppers and one bot of each kind; then the audit.
# Exits non-zero if the audit or any bot's allowance fails. The report lands in
# loadtest/results/ (or $RESULTS). A scenario whose shoppers pay needs the API's webhook
# secret in PAYMENT_WEBHOOK_SECRETS and PAYMENT_WEBHOOK_SECRET (loadtest/reservations.sh).
#
#   loadtest/ci.sh [scenario.toml]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
SCENARIO=${1:-$REPO_ROOT/loadtest/scenarios/ci.toml}
bin=$CARGO_TARGET_DIR/debug
cargo build -q -p ingest-api -p inventory-worker -p loadtest

run=ci-$(date +%s)
export REDIS_NAMESPACE=$run KAFKA_TOPIC=$run-orders KAFKA_DLQ_TOPIC=$run-orders.dlq KAFKA_GROUP=$run-worker
export SIGNING_KEYS="ci:ci-secret-0123456789" SIGNING_KEY="ci:ci-secret-0123456789"
export RUST_LOG=${RUST_LOG:-warn}
logs=$STATE_DIR/logs/$run
mkdir -p "$logs"
"$bin/flashctl" topics create >/dev/null
trap 'stop_spawned; kafka_delete_topics "$KAFKA_BROKERS" "$run-.*"' EXIT
spawn api "$logs/api.log" env LISTEN_ADDR=127.0.0.1:18180 ADMIN_ADDR=127.0.0.1:19180 "$bin/ingest-api"
spawn worker "$logs/worker.log" env ADMIN_ADDR=127.0.0.1:19190 "$bin/inventory-worker"
wait_ready http://127.0.0.1:19180/readyz http://127.0.0.1:19190/readyz
say "load scenario $(basename "$SCENARIO") (logs: $logs)"
"$bin/loadtest" run --scenario "$SCENARIO" --url http://127.0.0.1:18180 \
  --results "${RESULTS:-$REPO_ROOT/loadtest/results}" 2> >(grep -v ' scheduled ' >&2)
