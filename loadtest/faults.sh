#!/usr/bin/env bash
# The fault suite: under a steady stream of orders for a product with less stock than
# demand, kill -9 an API instance, kill -9 a worker, restart the broker, restart
# PostgreSQL — one fault per sale — then let the pipeline drain and audit every answer
# against PostgreSQL and Redis. Two API instances and two workers run as real processes.
#
#   loadtest/faults.sh [api] [worker] [broker] [postgres]     (default: all four)
#
# Prints one line per fault (202s, 503s that resolved to accepted, persisted, Redis
# remaining, pending hand-off, duplicates, oversold, lost, leaked) and exits non-zero if
# any audit fails.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"

FAULTS=("$@")
[ ${#FAULTS[@]} -gt 0 ] || FAULTS=(api worker broker postgres)
RATE=${RATE:-150}
DURATION=${DURATION:-16}
STOCK=${STOCK:-1800}  # sells out at ~12 s: every fault hits the accept path, demand still exceeds stock
FAULT_AT=${FAULT_AT:-5}
DOWN_FOR=${DOWN_FOR:-3}

RUN=faults-$(date +%s)
OUT=$STATE_DIR/faults/$RUN
mkdir -p "$OUT"
bin=$CARGO_TARGET_DIR/debug
say "building"
cargo build -q -p ingest-api -p inventory-worker -p flashctl -p loadtest

export REDIS_NAMESPACE=$RUN KAFKA_TOPIC=$RUN-orders KAFKA_DLQ_TOPIC=$RUN-orders.dlq
export KAFKA_GROUP=$RUN-worker
export SIGNING_KEYS="faults:faults-secret-0123456789" SIGNING_KEY="faults:faults-secret-0123456789"
export RUST_LOG=${RUST_LOG:-warn} LOG_FORMAT=text
"$bin/flashctl" topics create --partitions 6 >/dev/null

start_api() { # n
  spawn api$1 "$OUT/api$1.log" env LISTEN_ADDR=127.0.0.1:1808$1 ADMIN_ADDR=127.0.0.1:1908$1 \
    RELAY_IDLE_MS=2000 KAFKA_PUBLISH_TIMEOUT_MS=3000 FALLBACK_IP_LIMIT=1000/s:2000 "$bin/ingest-api"
}
start_worker() { # n
  spawn worker$1 "$OUT/worker$1.log" env ADMIN_ADDR=127.0.0.1:1909$1 BATCH_MAX=200 "$bin/inventory-worker"
}
trap stop_spawned EXIT
for n in 1 2; do start_api $n; start_worker $n; done
wait_ready http://127.0.0.1:19081/readyz http://127.0.0.1:19082/readyz \
  http://127.0.0.1:19091/readyz http://127.0.0.1:19092/readyz

inject() { # fault
  case $1 in
    api)
      say "kill -9 ingest-api #1 (pid ${SPAWNED[api1]})"
      kill -9 "${SPAWNED[api1]}"; sleep "$DOWN_FOR"; start_api 1; wait_ready http://127.0.0.1:19081/readyz ;;
    worker)
      say "kill -9 inventory-worker #1 (pid ${SPAWNED[worker1]}) while it writes"
      kill -9 "${SPAWNED[worker1]}"; sleep "$DOWN_FOR"; start_worker 1; wait_ready http://127.0.0.1:19091/readyz ;;
    broker)
      # Down longer than the API's publish timeout (3 s): some shoppers get 503 and
      # must learn the outcome by retrying with their key.
      restart_broker_hard $((DOWN_FOR * 2)) ;;
    postgres)
      say "restart PostgreSQL (immediate: a crash, then WAL recovery)"
      as_root pg_ctlcluster --skip-systemctl-redirect -m immediate "$(pg_version)" main stop
      sleep "$DOWN_FOR"
      as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
      for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.2; done ;;
    *) die "unknown fault $1 (api, worker, broker, postgres)" ;;
  esac
}

failed=0
lines=()
for fault in "${FAULTS[@]}"; do
  product=$RUN-$fault
  product=${product:0:50}
  say "[$fault] sale $product: $STOCK units, $RATE orders/s for ${DURATION}s, fault at ${FAULT_AT}s for ${DOWN_FOR}s"
  "$bin/flashctl" sale open --product "$product" --stock "$STOCK" --per-user 1 >/dev/null
  "$bin/loadtest" stream --url http://127.0.0.1:18081 --url http://127.0.0.1:18082 \
    --product "$product" --rate "$RATE" --duration "${DURATION}s" --users 100000 \
    --answers "$OUT/$fault.jsonl" 2>"$OUT/$fault.stream.log" &
  stream=$!
  sleep "$FAULT_AT"
  inject "$fault"
  wait "$stream" || die "[$fault] the stream failed; see $OUT/$fault.stream.log"
  tail -n 1 "$OUT/$fault.stream.log" >&2
  line=$("$bin/loadtest" audit --url http://127.0.0.1:18081 --product "$product" \
    --answers "$OUT/$fault.jsonl" --label "$fault" --json-out "$OUT/$fault.audit.json" 2>/dev/null) || failed=1
  echo "$line"
  lines+=("$line")
done

echo
say "fault suite ($RUN): per fault, after the pipeline drained"
printf '%s\n' "${lines[@]}"
[ "$failed" = 0 ] && say "fault suite PASS" || { warn "fault suite FAIL (logs in $OUT)"; exit 1; }
