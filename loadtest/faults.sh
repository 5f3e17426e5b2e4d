#!/usr/bin/env bash
# The fault suite: under a steady stream of orders for a product with less stock than
# demand, inject one fault per sale, then let the pipeline drain and audit every answer
# against PostgreSQL and Redis. Two API instances and two workers run as real processes.
#
#   loadtest/faults.sh [FAULT…]        (default: the twelve below but the shorthand
#                                     redis-failover-sharded and two unguarded ones)
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
# On a Redis Cluster of its own (3 masters, 3 replicas, ports REDIS_FAULT_PORTS) that
# this script starts for each fault and stops afterwards, with the single Kafka node:
#   redis-failover kill -9 of the master owning the product's slot; its replica is
#                  promoted; the killed node is restarted once the promotion is seen (as
#                  a supervisor would) and comes back as the new master's replica
#   redis-failover-lagging
#                  the same, but the replica is paused (CLIENT PAUSE WRITE) for DOWN_FOR
#                  seconds before the kill, so it misses the master's last writes: no
#                  202 may rest on them (REDIS_MIN_REPLICAS, 1 here)
#   redis-failover-unguarded
#                  redis-failover-lagging with REDIS_MIN_REPLICAS=0, the defence off:
#                  the audit MUST fail (oversold, lost or leaked units); the line
#                  passes when it does
#   room-failover  redis-failover-lagging while a waiting room drains
#                  (loadtest/scenarios/waiting-room-failover.toml: 1,500 waiters, 500
#                  units, 40 admissions/s; the fault 3 s after the opening): no
#                  admission told or given is lost, no place in line is given twice,
#                  `room verify` holds, and the audit of the waiters' orders is exact
#   room-failover-unguarded
#                  room-failover with REDIS_MIN_REPLICAS=0, the defence off: the room's
#                  checks or the audit MUST fail; the line passes when they do (not in
#                  the default list: run it by name)
#   redis-failover-sharded
#                  both of the next two, on a sale spread over three shards (one per
#                  master, `sale open --shards 3`), with refills from the pool going on:
#   redis-failover-shard
#                  redis-failover-lagging of the master of shard 0 (its admissions and
#                  the refills it applies)
#   redis-failover-pool
#                  redis-failover-lagging of the master of the product's slot, which
#                  holds the pool and its ledger of refills
#   redis-failover-pool-unguarded
#                  redis-failover-pool with REDIS_MIN_REPLICAS=0, the defence off: the
#                  audit MUST fail; the line passes when it does (not in the default
#                  list: run it by name)
#
# The sales of api, redis-failover and redis-failover-lagging (WINDOW_FAULTS) have a
# payment window (WINDOW, 3 s): shoppers pay, cancel, pay late or never, and expired
# units are resold.
#
# Prints one line per fault (202s, 503s that resolved to accepted, persisted, Redis
# remaining, pending hand-off, duplicates, oversold, over cap, lost, leaked, 5xx, and
# paid and returned units where there is a window) and exits non-zero if
# any audit fails.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"

FAULTS=("$@")
ALL=(api worker broker postgres broker-leader broker-isr redis-failover redis-failover-lagging
  redis-failover-unguarded room-failover redis-failover-shard redis-failover-pool)
[ ${#FAULTS[@]} -gt 0 ] || FAULTS=("${ALL[@]}")
for i in "${!FAULTS[@]}"; do
  [ "${FAULTS[i]}" != redis-failover-sharded ] || FAULTS[i]="redis-failover-shard redis-failover-pool"
done
read -r -a FAULTS <<<"${FAULTS[*]}"
RATE=${RATE:-150}
DURATION=${DURATION:-16}
STOCK=${STOCK:-1800}  # sells out at ~12 s: every fault hits the accept path, demand still exceeds stock
FAULT_AT=${FAULT_AT:-5}
DOWN_FOR=${DOWN_FOR:-3}

single=() cluster=() redis=()
for fault in "${FAULTS[@]}"; do
  case $fault in
    api | worker | broker | postgres) single+=("$fault") ;;
    broker-leader | broker-isr) cluster+=("$fault") ;;
    redis-failover | redis-failover-lagging | redis-failover-unguarded | room-failover* | \
      redis-failover-shard | redis-failover-pool*) redis+=("$fault") ;;
    *) die "unknown fault $fault (${ALL[*]})" ;;
  esac
done
_redis_fault_ports=$(port_of faults-redis-cluster)
read -r -a REDIS_FAULT_PORTS <<<"${REDIS_FAULT_PORTS:-$_redis_fault_ports}"
# This script's Redis Cluster, never the one the tests use.
REDIS_CLUSTER_PORTS=("${REDIS_FAULT_PORTS[@]}")
read -r -a api_ports <<<"$(port_of faults-api)"
read -r -a admin_ports <<<"$(port_of faults-admin)"
read -r -a worker_ports <<<"$(port_of faults-worker-admin)"

say "building"
isolated_run --out faults faults ingest-api inventory-worker loadtest
OUT=$LOGS
export LOG_FORMAT=text
export PAYMENT_WEBHOOK_SECRETS=whsec_ZmF1bHRzLXdlYmhvb2stc2VjcmV0LTAxMjM=
# Faults whose sale has a payment window: shoppers pay (60 %), cancel (5 %), pay late
# (5 %) or never (30 %), and the expired units are resold (loadtest stream --pay …).
WINDOW=${WINDOW:-3s}
WINDOW_FAULTS=${WINDOW_FAULTS:-api redis-failover redis-failover-lagging}
with_window() { [[ " $WINDOW_FAULTS " == *" $1 "* ]]; }

API_ENV=() # extra settings of the API instances (per fault group)
start_api() { # n
  spawn "api$1" "$OUT/api$1.log" env "LISTEN_ADDR=127.0.0.1:${api_ports[$1 - 1]}" \
    "ADMIN_ADDR=127.0.0.1:${admin_ports[$1 - 1]}" \
    RELAY_IDLE_MS=2000 KAFKA_PUBLISH_TIMEOUT_MS=3000 FALLBACK_IP_LIMIT=1000/s:2000 \
    "${API_ENV[@]}" "$BIN/ingest-api"
}
start_worker() { # n
  spawn "worker$1" "$OUT/worker$1.log" env "ADMIN_ADDR=127.0.0.1:${worker_ports[$1 - 1]}" BATCH_MAX=200 "$BIN/inventory-worker"
}
api_ready() { wait_ready "http://127.0.0.1:${admin_ports[$1 - 1]}/readyz"; } # n
worker_ready() { wait_ready "http://127.0.0.1:${worker_ports[$1 - 1]}/readyz"; } # n
# start_services REPLICATION: the topics, then two API instances and two workers on
# $KAFKA_BROKERS.
start_services() {
  "$BIN/flashctl" topics create --partitions 6 --replication "$1" >/dev/null
  for n in 1 2; do start_api $n; start_worker $n; done
  api_ready 1; api_ready 2; worker_ready 1; worker_ready 2
}
# After the spawned processes (isolated_run's trap), before this run's topics go from the
# single node (the cluster's storage is wiped at its next start).
# shellcheck disable=SC2016 # expanded when the trap runs
on_exit '[ ${#cluster[@]} -eq 0 ] || kafka_cluster_down'
# shellcheck disable=SC2016
on_exit '[ ${#redis[@]} -eq 0 ] || redis_cluster_down'

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
    redis-failover* | room-failover*)
      local key="$REDIS_NAMESPACE:{p:$product}:sale"
      if [ "$1" = redis-failover-shard ]; then
        key=$("$BIN/flashctl" --json sale status --product "$product" |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["sharded"]["shards"][0]["key"])')
      fi
      MASTER=$(redis_cluster_master_of "$key") || die "no master owns the slot of $key"
      REPLICA=$(redis_cluster_replica_of "$MASTER")
      [ -n "$REPLICA" ] || die "the master on :$MASTER has no replica"
      say "the slot of $key is on the master :$MASTER, replicated to :$REPLICA" ;;
  esac
}
# promote_and_restart: waits for the replica's promotion, then restarts the killed
# master as a supervisor would; it rejoins as the new master's replica.
promote_and_restart() {
  local started=$SECONDS
  redis_cluster_wait_role "$REPLICA" master 30 || die "the replica :$REPLICA was not promoted within 30 s"
  say "replica :$REPLICA promoted $((SECONDS - started)) s after the kill; restarting :$MASTER"
  redis_cluster_node_start "$MASTER"
}
# During the stream, FAULT_AT seconds in.
inject() {
  case $1 in
    api)
      say "kill -9 ingest-api #1 (pid ${SPAWNED[api1]})"
      kill -9 "${SPAWNED[api1]}"; sleep "$DOWN_FOR"; start_api 1; api_ready 1 ;;
    worker)
      say "kill -9 inventory-worker #1 (pid ${SPAWNED[worker1]}) while it writes"
      kill -9 "${SPAWNED[worker1]}"; sleep "$DOWN_FOR"; start_worker 1; worker_ready 1 ;;
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
    redis-failover)
      say "kill -9 the redis master :$MASTER (pid $(redis_cluster_pid "$MASTER"))"
      kill -9 "$(redis_cluster_pid "$MASTER")"
      promote_and_restart ;;
    redis-failover-lagging | redis-failover-unguarded | room-failover* | redis-failover-shard | redis-failover-pool*)
      # CLIENT PAUSE WRITE on a replica holds the replication stream unapplied in its
      # buffer, which it discards when the master's link drops. (SIGSTOP would not do:
      # the kernel keeps receiving, and the replica applies it all when it resumes.)
      say "pause the replica :$REPLICA for ${DOWN_FOR}s (it misses the writes), then kill -9 the master :$MASTER"
      redis-cli -p "$REPLICA" client pause 60000 write >/dev/null
      sleep "$DOWN_FOR"
      kill -9 "$(redis_cluster_pid "$MASTER")"
      promote_and_restart
      redis-cli -p "$REPLICA" client unpause >/dev/null ;;
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
    redis-failover* | room-failover*)
      redis_cluster_wait_role "$MASTER" slave 30 || warn "the restarted node :$MASTER is not an in-sync replica" ;;
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
    local window=() settle=()
    if with_window "$fault"; then
      window=(--payment-window "$WINDOW")
      settle=(--webhook-secret "$PAYMENT_WEBHOOK_SECRETS" --late-after 5s)
      say "[$fault] payment window $WINDOW: 60 % pay, 5 % cancel, 5 % pay late, 30 % never"
    fi
    local shards=1
    case $fault in redis-failover-shard | redis-failover-pool*) shards=3 ;; esac
    "$BIN/flashctl" sale open --product "$product" --stock "$STOCK" --per-user 1 --shards "$shards" \
      "${window[@]}" >/dev/null
    before "$fault"
    "$BIN/loadtest" stream --url "http://127.0.0.1:${api_ports[0]}" --url "http://127.0.0.1:${api_ports[1]}" \
      --product "$product" --rate "$RATE" --duration "${DURATION}s" --users 100000 \
      "${settle[@]}" --answers "$OUT/$fault.jsonl" 2>"$OUT/$fault.stream.log" &
    stream=$!
    sleep "$FAULT_AT"
    inject "$fault"
    wait "$stream" || die "[$fault] the stream failed; see $OUT/$fault.stream.log"
    after "$fault"
    grep -E '^[0-9]+ orders|^after their 202' "$OUT/$fault.stream.log" >&2 || true
    # Unpaid reservations expire WINDOW after their 202: let the last ones go.
    ! with_window "$fault" || sleep 4
    if [[ $fault == redis-failover*-unguarded ]]; then
      # The defence is off: the audit must fail, and it cannot drain (Redis lost units).
      if line=$("$BIN/loadtest" audit --url "http://127.0.0.1:${api_ports[0]}" --product "$product" \
        --answers "$OUT/$fault.jsonl" --label unguarded --drain-timeout 30s \
        --json-out "$OUT/$fault.audit.json" 2>/dev/null); then
        failed=1
        line="$line <- the audit MISSED the unguarded failover"
      elif grep -qE 'oversold by|have no row|leaked units|above the per-user cap' <<<"$line"; then
        line="$line <- caught, as it must be"
      else
        failed=1
        line="$line <- failed for another reason"
      fi
    else
      line=$("$BIN/loadtest" audit --url "http://127.0.0.1:${api_ports[0]}" --product "$product" \
        --answers "$OUT/$fault.jsonl" --label "$fault" --json-out "$OUT/$fault.audit.json" 2>/dev/null) || failed=1
    fi
    echo "$line"
    lines+=("$line")
  done
}

# run_room_fault FAULT: the waiting room's scenario against the services already
# running, the fault ROOM_FAULT_AT seconds into it, then the room's checks and the
# audit of its waiters' orders. An unguarded run passes when something fails.
ROOM_FAULT_AT=${ROOM_FAULT_AT:-8}
run_room_fault() {
  local fault=$1 product=$RUN-$1 room line checks=0 audit=0
  product=${product:0:50}
  say "[$fault] room $product: loadtest/scenarios/waiting-room-failover.toml, fault at ${ROOM_FAULT_AT}s"
  # The sale is opened by `loadtest room` at once; the slot's master is known from the
  # product alone.
  before "$fault"
  "$BIN/loadtest" room --scenario "$REPO_ROOT/loadtest/scenarios/waiting-room-failover.toml" \
    --url "http://127.0.0.1:${api_ports[0]}" --url "http://127.0.0.1:${api_ports[1]}" \
    --product "$product" --failover --answers "$OUT/$fault.jsonl" \
    >"$OUT/$fault.room.txt" 2>"$OUT/$fault.room.log" &
  room=$!
  sleep "$ROOM_FAULT_AT"
  inject "$fault"
  wait "$room" || checks=1
  after "$fault"
  sed 's/^/    /' "$OUT/$fault.room.txt" >&2
  grep -E '^  [a-z]' "$OUT/$fault.room.log" | head -5 | sed 's/^/    /' >&2 || true
  line=$("$BIN/loadtest" audit --url "http://127.0.0.1:${api_ports[0]}" --product "$product" \
    --answers "$OUT/$fault.jsonl" --label "$fault" --drain-timeout 60s \
    --json-out "$OUT/$fault.audit.json" 2>/dev/null) || audit=1
  local room_verdict=passed
  [ "$checks" = 0 ] || room_verdict=FAILED
  line="$line; room checks $room_verdict"
  if [ "$fault" = room-failover-unguarded ]; then
    if [ "$checks$audit" = 00 ]; then
      failed=1
      line="$line <- the checks MISSED the unguarded failover"
    else
      line="$line <- caught, as it must be"
    fi
  elif [ "$checks$audit" != 00 ]; then
    failed=1
  fi
  echo "$line"
  lines+=("$line")
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
  single_node=$KAFKA_BROKERS
  export KAFKA_BROKERS
  KAFKA_BROKERS=$(kafka_cluster_brokers)
  start_services 3
  run_faults "${cluster[@]}"
  stop_spawned
  kafka_cluster_down
  KAFKA_BROKERS=$single_node # the Redis faults below run on the single node again
fi

if [ ${#redis[@]} -gt 0 ]; then
  export REDIS_CLUSTER_NODES
  REDIS_CLUSTER_NODES=$(redis_cluster_nodes)
  for fault in "${redis[@]}"; do
    say "[$fault] a fresh redis cluster of its own ($REDIS_CLUSTER_NODES)"
    redis_cluster_down
    redis_cluster_up
    API_ENV=()
    case $fault in *-unguarded) API_ENV=(REDIS_MIN_REPLICAS=0) ;; esac
    # The waiters all come from this machine's one address: the room, not the
    # per-network fallback limit, paces them.
    case $fault in room-failover*) API_ENV+=(FALLBACK_IP_LIMIT=1000000/s:1000000) ;; esac
    start_services 1
    case $fault in
      room-failover*) run_room_fault "$fault" ;;
      *) run_faults "$fault" ;;
    esac
    stop_spawned
    redis_cluster_down
  done
  unset REDIS_CLUSTER_NODES
fi

echo
say "fault suite ($RUN): per fault, after the pipeline drained"
printf '%s\n' "${lines[@]}"
[ "$failed" = 0 ] && say "fault suite PASS" || { warn "fault suite FAIL (logs in $OUT)"; exit 1; }
