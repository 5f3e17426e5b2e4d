#!/usr/bin/env bash
# Many products, many masters: SALES sales at once on the local Redis Cluster (started if
# needed), their products chosen so each of the three masters owns the slots of a third
# of them. Two API instances and two workers; a steady stream per product, each with
# less stock than demand; then one audit line per sale. Exits non-zero if any fails.
# SHARDS=3 opens each sale with `--shards 3` (its stock over all three masters), and its
# stream samples the sale's census every second.
#
#   loadtest/many-sales.sh        (SALES=6 RATE=60 per product DURATION=12 STOCK=500 SHARDS=1)
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" --redis-cluster >/dev/null
. "$STATE_DIR/env"
SALES=${SALES:-6}
RATE=${RATE:-60}
DURATION=${DURATION:-12}
STOCK=${STOCK:-500}
SHARDS=${SHARDS:-1}
[ $((SALES % 3)) = 0 ] || die "SALES must be a multiple of 3 (one share per master)"

read -r -a api_ports <<<"$(port_of many-sales-api)"
read -r -a admin_ports <<<"$(port_of many-sales-admin)"
read -r -a worker_ports <<<"$(port_of many-sales-worker-admin)"

isolated_run --out many-sales many ingest-api inventory-worker loadtest
export REDIS_CLUSTER_NODES
REDIS_CLUSTER_NODES=$(redis_cluster_nodes)

# Products, SALES / 3 per master.
declare -A share
products=()
for i in $(seq 1000); do
  product=$RUN-p$i
  master=$(redis_cluster_master_of "$RUN:{p:$product}:sale")
  [ "${share[$master]:-0}" -lt $((SALES / 3)) ] || continue
  share[$master]=$((${share[$master]:-0} + 1))
  products+=("$product")
  [ ${#products[@]} -lt "$SALES" ] || break
done
for master in "${!share[@]}"; do say "master :$master owns ${share[$master]} of the products"; done

for n in 1 2; do
  spawn api$n "$LOGS/api$n.log" env "LISTEN_ADDR=127.0.0.1:${api_ports[n - 1]}" \
    "ADMIN_ADDR=127.0.0.1:${admin_ports[n - 1]}" FALLBACK_IP_LIMIT=1000/s:2000 "$BIN/ingest-api"
  spawn worker$n "$LOGS/worker$n.log" env "ADMIN_ADDR=127.0.0.1:${worker_ports[n - 1]}" "$BIN/inventory-worker"
done
ready=() urls=()
for port in "${admin_ports[@]}" "${worker_ports[@]}"; do ready+=("http://127.0.0.1:$port/readyz"); done
for port in "${api_ports[@]}"; do urls+=(--url "http://127.0.0.1:$port"); done
wait_ready "${ready[@]}"

say "$SALES sales at once: $STOCK units each over $SHARDS shard(s), $RATE orders/s each for ${DURATION}s (logs: $LOGS)"
# A sharded sale's census, every second of its stream: the invariant at every sample, and
# sold out within 1 s of its last unit (the stream fails otherwise).
census=()
[ "$SHARDS" = 1 ] || census=(--census)
pids=()
for product in "${products[@]}"; do
  "$BIN/flashctl" sale open --product "$product" --stock "$STOCK" --per-user 1 --shards "$SHARDS" >/dev/null
  "$BIN/loadtest" stream "${urls[@]}" "${census[@]}" \
    --product "$product" --rate "$RATE" --duration "${DURATION}s" --users 100000 \
    --answers "$LOGS/$product.jsonl" 2>"$LOGS/$product.stream.log" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a stream failed; see $LOGS/*.stream.log"; done
[ "$SHARDS" = 1 ] || grep -h "^census" "$LOGS"/*.stream.log | sed 's/^/  /'

failed=0
for product in "${products[@]}"; do
  "$BIN/loadtest" audit --url "http://127.0.0.1:${api_ports[0]}" --product "$product" \
    --answers "$LOGS/$product.jsonl" --label "${product#"$RUN"-}" 2>/dev/null || failed=1
done
[ "$failed" = 0 ] && say "many sales on the cluster: PASS" || die "many sales on the cluster: FAIL (logs in $LOGS)"
