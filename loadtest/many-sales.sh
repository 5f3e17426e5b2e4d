#!/usr/bin/env bash
# Many products, many masters: SALES sales at once on the local Redis Cluster (started if
# needed), their products chosen so each of the three masters owns the slots of a third
# of them. Two API instances and two workers; a steady stream per product, each with
# less stock than demand; then one audit line per sale. Exits non-zero if any fails.
#
#   loadtest/many-sales.sh        (SALES=6 RATE=60 per product DURATION=12 STOCK=500)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" --redis-cluster >/dev/null
. "$STATE_DIR/env"
SALES=${SALES:-6}
RATE=${RATE:-60}
DURATION=${DURATION:-12}
STOCK=${STOCK:-500}
[ $((SALES % 3)) = 0 ] || die "SALES must be a multiple of 3 (one share per master)"

run=many-$(date +%s)
OUT=$STATE_DIR/many-sales/$run
mkdir -p "$OUT"
bin=$CARGO_TARGET_DIR/debug
cargo build -q -p ingest-api -p inventory-worker -p flashctl -p loadtest
export REDIS_CLUSTER_NODES REDIS_NAMESPACE=$run KAFKA_TOPIC=$run-orders
REDIS_CLUSTER_NODES=$(redis_cluster_nodes)
export KAFKA_DLQ_TOPIC=$run-orders.dlq KAFKA_GROUP=$run-worker RUST_LOG=${RUST_LOG:-warn}
export SIGNING_KEYS="many:many-secret-0123456789" SIGNING_KEY="many:many-secret-0123456789"
trap 'stop_spawned; kafka_delete_topics "$KAFKA_BROKERS" "$run-.*"' EXIT

# Products, SALES / 3 per master.
declare -A share
products=()
for i in $(seq 1000); do
  product=$run-p$i
  master=$(redis_cluster_master_of "$run:{p:$product}:sale")
  [ "${share[$master]:-0}" -lt $((SALES / 3)) ] || continue
  share[$master]=$((${share[$master]:-0} + 1))
  products+=("$product")
  [ ${#products[@]} -lt "$SALES" ] || break
done
for master in "${!share[@]}"; do say "master :$master owns ${share[$master]} of the products"; done

"$bin/flashctl" topics create --partitions 6 >/dev/null
for n in 1 2; do
  spawn api$n "$OUT/api$n.log" env LISTEN_ADDR=127.0.0.1:1838$n ADMIN_ADDR=127.0.0.1:1938$n \
    FALLBACK_IP_LIMIT=1000/s:2000 "$bin/ingest-api"
  spawn worker$n "$OUT/worker$n.log" env ADMIN_ADDR=127.0.0.1:1939$n "$bin/inventory-worker"
done
wait_ready http://127.0.0.1:19381/readyz http://127.0.0.1:19382/readyz \
  http://127.0.0.1:19391/readyz http://127.0.0.1:19392/readyz

say "$SALES sales at once: $STOCK units each, $RATE orders/s each for ${DURATION}s (logs: $OUT)"
pids=()
for product in "${products[@]}"; do
  "$bin/flashctl" sale open --product "$product" --stock "$STOCK" --per-user 1 >/dev/null
  "$bin/loadtest" stream --url http://127.0.0.1:18381 --url http://127.0.0.1:18382 \
    --product "$product" --rate "$RATE" --duration "${DURATION}s" --users 100000 \
    --answers "$OUT/$product.jsonl" 2>"$OUT/$product.stream.log" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a stream failed; see $OUT/*.stream.log"; done

failed=0
for product in "${products[@]}"; do
  "$bin/loadtest" audit --url http://127.0.0.1:18381 --product "$product" \
    --answers "$OUT/$product.jsonl" --label "${product#"$run"-}" 2>/dev/null || failed=1
done
[ "$failed" = 0 ] && say "many sales on the cluster: PASS" || die "many sales on the cluster: FAIL (logs in $OUT)"
