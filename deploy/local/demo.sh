#!/usr/bin/env bash
# The demo sale, end to end: stack up, build, start ingest-api and inventory-worker,
# open a sale of 100 units (1 per user), send 2,000 orders from 500 users, wait for the
# pipeline to drain, audit, and compare `flashctl sale status` with PostgreSQL.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$REPO_ROOT/deploy/local/up.sh"
. "$STATE_DIR/env"

STOCK=${STOCK:-100}
ORDERS=${ORDERS:-2000}
USERS=${USERS:-500}
PRODUCT=${PRODUCT:-demo-$(date +%s)}
export SIGNING_KEYS=${SIGNING_KEYS:-demo:demo-secret-change-me}
export SIGNING_KEY=${SIGNING_KEYS%%,*}
export LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8080} ADMIN_ADDR=127.0.0.1:9090
bin=$CARGO_TARGET_DIR/debug

say "building ingest-api, inventory-worker, flashctl, loadtest"
cargo build -q -p ingest-api -p inventory-worker -p flashctl -p loadtest

for port in "${LISTEN_ADDR##*:}" 9090 9091; do
  port_open "$port" && die "port $port is in use (another ingest-api or worker running?)"
done
trap stop_spawned EXIT
say "starting ingest-api on $LISTEN_ADDR (log: $STATE_DIR/logs/ingest-api.log)"
spawn api "$STATE_DIR/logs/ingest-api.log" "$bin/ingest-api"
say "starting inventory-worker (log: $STATE_DIR/logs/inventory-worker.log)"
spawn worker "$STATE_DIR/logs/inventory-worker.log" env ADMIN_ADDR=127.0.0.1:9091 "$bin/inventory-worker"
wait_ready http://127.0.0.1:9090/readyz http://127.0.0.1:9091/readyz

say "opening sale $PRODUCT: $STOCK units, 1 per user"
"$bin/flashctl" sale open --product "$PRODUCT" --stock "$STOCK" --per-user 1
say "sending $ORDERS orders from $USERS users"
audit=0
"$bin/loadtest" burst --url "http://$LISTEN_ADDR" --product "$PRODUCT" \
  --orders "$ORDERS" --users "$USERS" --concurrency 100 || audit=$?

say "flashctl sale status --product $PRODUCT"
"$bin/flashctl" sale status --product "$PRODUCT"
status=$("$bin/flashctl" --json sale status --product "$PRODUCT")
db=$(psql "$DATABASE_URL" -Atc "select s.sold || ' ' || (select count(*) from orders o where o.product_id = s.product_id) from sales s where s.product_id = '$PRODUCT'")
field() { printf '%s' "$status" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
flash="$(field persisted) $(field orders)"
if [ "$flash" = "$db" ]; then
  say "flashctl sale status agrees with PostgreSQL (sold, rows: $db)"
else
  warn "flashctl says '$flash' but PostgreSQL says '$db'"; audit=1
fi
exit "$audit"
