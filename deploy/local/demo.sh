#!/usr/bin/env bash
# The demo sale, end to end: stack up, build, start ingest-api and inventory-worker,
# open a sale of 100 units (1 per user), send 2,000 orders from 500 users, wait for the
# pipeline to drain, audit, and compare `flashctl sale status` with PostgreSQL. It runs on
# the services' default ports (docs/ports.md; LISTEN_ADDR moves the public one) with a
# Redis namespace and topics of its own, and its logs in $STATE_DIR/logs/demo-<time>/.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/deploy/local/up.sh"
. "$STATE_DIR/env"

STOCK=${STOCK:-100}
ORDERS=${ORDERS:-2000}
USERS=${USERS:-500}
PRODUCT=${PRODUCT:-demo-$(date +%s)}
keys=${SIGNING_KEYS:-}
admin_port=$(port_of demo-admin)
worker_port=$(port_of demo-worker-admin)
api_port=$(port_of demo-api)
LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:$api_port}

for port in "${LISTEN_ADDR##*:}" "$admin_port" "$worker_port"; do
  port_open "$port" && die "port $port is in use (another ingest-api or worker running?)"
done
say "building ingest-api, inventory-worker, flashctl, loadtest"
isolated_run demo ingest-api inventory-worker loadtest
[ -z "$keys" ] || export SIGNING_KEYS=$keys SIGNING_KEY=${keys%%,*}
export LISTEN_ADDR "ADMIN_ADDR=127.0.0.1:$admin_port"
say "starting ingest-api on $LISTEN_ADDR (log: $LOGS/ingest-api.log)"
spawn api "$LOGS/ingest-api.log" "$BIN/ingest-api"
say "starting inventory-worker (log: $LOGS/inventory-worker.log)"
spawn worker "$LOGS/inventory-worker.log" env "ADMIN_ADDR=127.0.0.1:$worker_port" "$BIN/inventory-worker"
wait_ready "http://127.0.0.1:$admin_port/readyz" "http://127.0.0.1:$worker_port/readyz"

say "opening sale $PRODUCT: $STOCK units, 1 per user"
"$BIN/flashctl" sale open --product "$PRODUCT" --stock "$STOCK" --per-user 1
say "sending $ORDERS orders from $USERS users"
audit=0
"$BIN/loadtest" burst --url "http://$LISTEN_ADDR" --product "$PRODUCT" \
  --orders "$ORDERS" --users "$USERS" --concurrency 100 || audit=$?

say "flashctl sale status --product $PRODUCT"
"$BIN/flashctl" sale status --product "$PRODUCT"
status=$("$BIN/flashctl" --json sale status --product "$PRODUCT")
db=$(psql "$DATABASE_URL" -Atc "select s.sold || ' ' || (select count(*) from orders o where o.product_id = s.product_id) from sales s where s.product_id = '$PRODUCT'")
field() { printf '%s' "$status" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
flash="$(field persisted) $(field orders)"
if [ "$flash" = "$db" ]; then
  say "flashctl sale status agrees with PostgreSQL (sold, rows: $db)"
else
  warn "flashctl says '$flash' but PostgreSQL says '$db'"; audit=1
fi
exit "$audit"
