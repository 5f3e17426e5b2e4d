# The fault suite's three-node Kafka cluster (replication factor 3, min.insync.replicas 2),
# beside the stack's single node: brokers on KAFKA_CLUSTER_PORTS (three, space-separated;
# docs/ports.md row faults-kafka-cluster), controllers on the row faults-kafka-controllers
# (100 above each broker when KAFKA_CLUSTER_PORTS is set). Starting it fresh, stopping it,
# its bootstrap list, a partition's leader, waiting until replicas are in sync. Uses
# kafka.sh. Sourced by deploy/local/lib.sh.
# shellcheck shell=bash

if [ -n "${KAFKA_CLUSTER_PORTS:-}" ]; then
  read -r -a KAFKA_CLUSTER_PORTS <<<"$KAFKA_CLUSTER_PORTS"
  KAFKA_CLUSTER_CONTROLLER_PORTS=()
  for _port in "${KAFKA_CLUSTER_PORTS[@]}"; do KAFKA_CLUSTER_CONTROLLER_PORTS+=($((_port + 100))); done
  unset _port
else
  _ports=$(port_of faults-kafka-cluster)
  read -r -a KAFKA_CLUSTER_PORTS <<<"$_ports"
  _ports=$(port_of faults-kafka-controllers)
  read -r -a KAFKA_CLUSTER_CONTROLLER_PORTS <<<"$_ports"
  unset _ports
fi
[ ${#KAFKA_CLUSTER_PORTS[@]} -eq 3 ] || die "KAFKA_CLUSTER_PORTS needs three ports, space-separated"
[ ${#KAFKA_CLUSTER_CONTROLLER_PORTS[@]} -eq 3 ] || die "the Kafka cluster needs three controller ports (docs/ports.md)"
kafka_cluster_brokers() { local IFS=,; printf '%s' "${KAFKA_CLUSTER_PORTS[*]/#/127.0.0.1:}"; }

# kafka_cluster_up: a fresh cluster (storage under $STATE_DIR/kafka-cluster, wiped first).
# Refuses if another checkout's nodes hold the ports.
kafka_cluster_up() {
  local dir=$STATE_DIR/kafka-cluster voters="" i port cluster pid
  local -a starting=()
  for port in "${KAFKA_CLUSTER_PORTS[@]}"; do
    if pid=$(kafka_pid "$port") && [[ $(kafka_props "$pid") != "$dir/"* ]]; then
      die "port $port is held by another checkout's Kafka node ($(kafka_props "$pid"))"
    fi
  done
  kafka_cluster_down
  rm -rf "$dir"
  mkdir -p "$dir"
  cluster=$(new_cluster_id)
  for i in 1 2 3; do
    voters+="${voters:+,}$i@127.0.0.1:${KAFKA_CLUSTER_CONTROLLER_PORTS[i - 1]}"
  done
  for i in 1 2 3; do
    # Quick failure detection for the fault suite: a dead broker is fenced (and its
    # partitions get new leaders) within about 3 s instead of 9.
    kafka_node_start "$dir/node$i" "$i" "${KAFKA_CLUSTER_PORTS[i - 1]}" \
      "${KAFKA_CLUSTER_CONTROLLER_PORTS[i - 1]}" "$voters" "$cluster" \
      "$(printf '%s\n' num.partitions=1 default.replication.factor=3 min.insync.replicas=2 \
        offsets.topic.replication.factor=3 transaction.state.log.replication.factor=3 \
        transaction.state.log.min.isr=2 broker.session.timeout.ms=3000 \
        broker.heartbeat.interval.ms=500 replica.lag.time.max.ms=5000)" &
    starting+=($!)
  done
  for pid in "${starting[@]}"; do
    wait "$pid" || { kafka_cluster_down; die "the Kafka cluster did not start; see $dir/node*/kafka.log"; }
  done
}

# kafka_cluster_down: stops the cluster nodes this checkout started (its storage stays
# until the next kafka_cluster_up).
kafka_cluster_down() {
  local port pid
  for port in "${KAFKA_CLUSTER_PORTS[@]}"; do
    if pid=$(kafka_pid "$port") && [[ $(kafka_props "$pid") == "$STATE_DIR/kafka-cluster/"* ]]; then
      kafka_stop "$port" &
    fi
  done
  wait
}

# kafka_leader BROKERS TOPIC PARTITION: the node id leading that partition.
kafka_leader() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --describe --topic "$2" |
    awk -v p="$3" '$0 ~ "Partition: " p "\t" { for (i = 1; i <= NF; i++) if ($i == "Leader:") print $(i + 1) }'
}

# kafka_wait_in_sync BROKERS TOPIC SECONDS: until no partition of TOPIC is under-replicated.
kafka_wait_in_sync() {
  local i
  for ((i = 0; i < $3; i++)); do
    [ -z "$(kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --describe \
      --under-replicated-partitions --topic "$2")" ] && return 0
    sleep 1
  done
  die "partitions of $2 still under-replicated after $3 s"
}
