#!/usr/bin/env bash
# The fault suite: under a steady stream of orders for a product with less stock than
# demand, inject one fault per sale, then let the pipeline drain and audit every answer
# against PostgreSQL and Redis. Two API instances and two workers run as real processes.
#
#   loadtest/faults.sh [FAULT…]        (default: all six)
#
# On the single Kafka node of the local stack:
#   api            kill -9 of an API instance, restarted after DOWN_FOR seconds
#   worker         kill -9 of a worker while it writes, restarted after DOWN_FOR seconds
#   broker         kill -9 of the Kafka node, restarted on the same storage after twice
#                  DOWN_FOR seconds (longer than the API's publish timeout)
#   postgres       immediate-mode stop of PostgreSQL (a crash), started after DOWN_FOR
# On a three-node Kafka cluster this script starts beside it (replication factor 3,
# min.insync.replicas 2) and stops afterwards:
#   broker-leader  kill -9 of the node leading partition 0 of the order topic (it leads
#                  a third of the partitions being written), restarted after DOWN_FOR
#   broker-isr     one follower of partition 0 down (kill -9) for the whole stream:
#                  writes go on with two replicas in sync; restarted after the stream,
#                  and the next fault waits until every partition is in sync again
#
# Prints one line per fault (202s, 503s that resolved to accepted, persisted, Redis
# remaining, pending hand-off, duplicates, oversold, lost, leaked) and exits non-zero if
# any audit fails.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"

FAULTS=("$@")
[ ${#FAULTS[@]} -gt 0 ] || FAULTS=(api worker broker postgres broker-leader broker-isr)
RATE=${RATE:-150}
DURATION=${DURATION:-16}
STOCK=${STOCK:-1800}  # sells out at ~12 s: every fault hits the accept path, demand still exceeds stock
FAULT_AT=${FAULT_AT:-5}
DOWN_FOR=${DOWN_FOR:-3}

single=() cluster=()
for fault in "${FAULTS[@]}"; do
  case $fault in
    api | worker | broker | postgres) single+=("$fault") ;;
    broker-leader | broker-isr) cluster+=("$fault") ;;
    *) die "unknown fault $fault (api, worker, broker, postgres, broker-leader, broker-isr)" ;;
  esac
done

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

start_api() { # n
  spawn api$1 "$OUT/api$1.log" env LISTEN_ADDR=127.0.0.1:1808$1 ADMIN_ADDR=127.0.0.1:1908$1 \
    RELAY_IDLE_MS=2000 KAFKA_PUBLISH_TIMEOUT_MS=3000 FALLBACK_IP_LIMIT=1000/s:2000 "$bin/ingest-api"
}
start_worker() { # n
  spawn worker$1 "$OUT/worker$1.log" env ADMIN_ADDR=127.0.0.1:1909$1 BATCH_MAX=200 "$bin/inventory-worker"
}
# start_services REPLICATION: the topics, then two API instances and two workers on
# $KAFKA_BROKERS.
start_services() {
  "$bin/flashctl" topics create --partitions 6 --replication "$1" >/dev/null
  for n in 1 2; do start_api $n; start_worker $n; done
  wait_ready http://127.0.0.1:19081/readyz http://127.0.0.1:19082/readyz \
    http://127.0.0.1:19091/readyz http://127.0.0.1:19092/readyz
}
cleanup() {
  stop_spawned
  [ ${#cluster[@]} -eq 0 ] || kafka_cluster_down
  # This run's topics on the single node (the cluster's storage is wiped at its next start).
  kafka_delete_topics "127.0.0.1:$KAFKA_PORT" "$RUN-.*"
}
trap cleanup EXIT

# cluster_port NODE_ID: the client port of a node of the cluster.
cluster_port() { echo "${KAFKA_CLUSTER_PORTS[$1 - 1]}"; }
# follower NODE_ID: a replica of partition 0 of the order topic other than its leader.
follower() {
  local leader
  leader=$(kafka_leader "$KAFKA_BROKERS" "$KAFKA_TOPIC" 0)
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
    --describe --topic "$KAFKA_TOPIC" |
    awk -v l="$leader" '$0 ~ "Partition: 0\t" { for (i = 1; i <= NF; i++) if ($i == "Replicas:") { n = split($(i + 1), r, ","); for (j = 1; j <= n; j++) if (r[j] != l) { print r[j]; exit } } }'
}

# Before the stream: faults that last the whole stream, and what a fault needs to know
# ahead (a JVM tool takes seconds, which must not shift the fault's moment).
before() {
  case $1 in
    broker-leader)
      LEADER=$(kafka_leader "$KAFKA_BROKERS" "$KAFKA_TOPIC" 0)
      say "partition 0 of $KAFKA_TOPIC is led by Kafka node $LEADER" ;;
    broker-isr)
      ISR_NODE=$(follower)
      ISR_CMD=$OUT/isr-node.cmd
      local pid
      pid=$(kafka_pid "$(cluster_port "$ISR_NODE")")
      cp "/proc/$pid/cmdline" "$ISR_CMD"
      say "kill -9 Kafka node $ISR_NODE (a follower of partition 0, pid $pid) for the whole stream"
      kill -9 "$pid" ;;
  esac
}
# During the stream, FAULT_AT seconds in.
inject() {
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
      restart_broker_hard "$KAFKA_PORT" $((DOWN_FOR * 2)) ;;
    postgres)
      say "restart PostgreSQL (immediate: a crash, then WAL recovery)"
      as_root pg_ctlcluster --skip-systemctl-redirect -m immediate "$(pg_version)" main stop
      sleep "$DOWN_FOR"
      as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
      wait_for_postgres ;;
    broker-leader)
      restart_broker_hard "$(cluster_port "$LEADER")" "$DOWN_FOR" ;;
    broker-isr)
      say "in sync while node $ISR_NODE is down:"
      kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
        --describe --topic "$KAFKA_TOPIC" | grep -o 'Partition: .*Isr: [0-9,]*' | sed 's/^/    /' >&2 ;;
  esac
}
# After the stream, before the audit: the cluster whole and in sync again.
after() {
  case $1 in
    broker-isr)
      local -a cmd
      mapfile -d '' -t cmd <"$ISR_CMD"
      say "restarting Kafka node $ISR_NODE"
      kafka_launch "$(cluster_port "$ISR_NODE")" "${cmd[@]}" ;;
  esac
  case $1 in
    broker-leader | broker-isr) kafka_wait_in_sync "$KAFKA_BROKERS" "$KAFKA_TOPIC" 60 ;;
  esac
}

failed=0
lines=()
# run_faults FAULT…: one sale per fault against the services already running.
run_faults() {
  local fault product stream line
  for fault in "$@"; do
    product=$RUN-$fault
    product=${product:0:50}
    say "[$fault] sale $product: $STOCK units, $RATE orders/s for ${DURATION}s, fault at ${FAULT_AT}s for ${DOWN_FOR}s"
    "$bin/flashctl" sale open --product "$product" --stock "$STOCK" --per-user 1 >/dev/null
    before "$fault"
    "$bin/loadtest" stream --url http://127.0.0.1:18081 --url http://127.0.0.1:18082 \
      --product "$product" --rate "$RATE" --duration "${DURATION}s" --users 100000 \
      --answers "$OUT/$fault.jsonl" 2>"$OUT/$fault.stream.log" &
    stream=$!
    sleep "$FAULT_AT"
    inject "$fault"
    wait "$stream" || die "[$fault] the stream failed; see $OUT/$fault.stream.log"
    after "$fault"
    tail -n 1 "$OUT/$fault.stream.log" >&2
    line=$("$bin/loadtest" audit --url http://127.0.0.1:18081 --product "$product" \
      --answers "$OUT/$fault.jsonl" --label "$fault" --json-out "$OUT/$fault.audit.json" 2>/dev/null) || failed=1
    echo "$line"
    lines+=("$line")
  done
}

if [ ${#single[@]} -gt 0 ]; then
  say "on the single Kafka node ($KAFKA_BROKERS)"
  start_services 1
  run_faults "${single[@]}"
  stop_spawned
fi
if [ ${#cluster[@]} -gt 0 ]; then
  say "starting a three-node Kafka cluster ($(kafka_cluster_brokers))"
  kafka_cluster_up
  export KAFKA_BROKERS
  KAFKA_BROKERS=$(kafka_cluster_brokers)
  start_services 3
  run_faults "${cluster[@]}"
  stop_spawned
  kafka_cluster_down
fi

echo
say "fault suite ($RUN): per fault, after the pipeline drained"
printf '%s\n' "${lines[@]}"
[ "$failed" = 0 ] && say "fault suite PASS" || { warn "fault suite FAIL (logs in $OUT)"; exit 1; }
