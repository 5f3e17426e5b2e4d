# Apache Kafka, run from its Maven Central jars (deploy/local/kafka/pom.xml pins the
# version), fetched once per machine into $KAFKA_HOME, in KRaft mode: each node is broker
# and controller at once. Here: finding a Java runtime, fetching the jars, Kafka's tools,
# starting, finding, stopping and hard-restarting a node, and the stack's single node on
# $KAFKA_PORT, which serves the demo and the tests (the fault suite's three-node cluster is
# in kafka-cluster.sh). Every node's java command line carries -Dflashsale.kafka.port=PORT,
# which is how kafka_pid finds it. Sourced by deploy/local/lib.sh.
# shellcheck shell=bash

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_ROOT/deploy/local/kafka/pom.xml")
KAFKA_PORT=${KAFKA_PORT:-$(port_of kafka)}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$(port_of kafka-controller)}
# Apache Kafka's jars, once per machine (outside the checkout).
KAFKA_HOME=${KAFKA_HOME:-$HOME/.cache/flash-sale/kafka-$KAFKA_VERSION}
# A Java 17 (or newer) runtime, found when first needed (up.sh installs one when there is
# none); JAVA overrides.
JAVA=${JAVA:-}

# java_major JAVA: the major version of a java binary, 0 if it does not run.
java_major() {
  local v
  v=$("$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1) || true
  echo "${v:-0}"
}
# find_java: `java` if it is 17 or newer, else the newest such runtime under /usr/lib/jvm.
find_java() {
  local j
  if [ "$(java_major java)" -ge 17 ]; then echo java; return 0; fi
  for j in $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV); do
    if [ "$(java_major "$j")" -ge 17 ]; then echo "$j"; return 0; fi
  done
  return 1
}

# kafka_fetch: the jars of the pinned versions into $KAFKA_HOME/libs, unless the jars
# fetched for this very pom.xml are already there.
kafka_fetch() {
  local pom=$REPO_ROOT/deploy/local/kafka/pom.xml sum
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  [ "$(cat "$KAFKA_HOME/libs/.complete" 2>/dev/null)" = "$sum" ] && return 0
  say "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME (once per machine)"
  rm -rf "$KAFKA_HOME/libs.part"
  mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs.part" \
    >"$STATE_DIR/logs/kafka-fetch.log" 2>&1 ||
    die "fetching Kafka with Maven failed; see $STATE_DIR/logs/kafka-fetch.log"
  echo "$sum" >"$KAFKA_HOME/libs.part/.complete"
  rm -rf "$KAFKA_HOME/libs"
  mv "$KAFKA_HOME/libs.part" "$KAFKA_HOME/libs"
}

# kafka_command ARRAY HEAP LOG_CONFIG CLASS ARGS…: fills ARRAY with the java command line
# that runs a Kafka main class from the fetched jars.
kafka_command() {
  local -n _cmd=$1
  local heap=$2 log=$3
  shift 3
  [ -n "${JAVA:-}" ] || JAVA=$(find_java) || die "no Java 17 or newer (deploy/local/up.sh installs one)"
  _cmd=("$JAVA" "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$log" -cp "$KAFKA_HOME/libs/*" "$@")
}
# kafka_tool CLASS ARGS…: runs one of Kafka's command-line tools (warnings only, on stderr).
kafka_tool() {
  local -a cmd
  kafka_command cmd 256m "$REPO_ROOT/deploy/local/kafka/tools-log4j2.properties" "$@"
  "${cmd[@]}"
}

# kafka_node_start DIR NODE_ID PORT CONTROLLER_PORT VOTERS CLUSTER_ID [PROPERTIES]: writes
# DIR/server.properties, formats DIR/data on first use, starts the node in the background
# in a session of its own (pid in DIR/pid, log in DIR/kafka.log) and waits until it is the
# one accepting connections on PORT.
kafka_node_start() {
  local dir=$1 id=$2 port=$3 cport=$4 voters=$5 cluster=$6 extra=${7:-}
  local -a cmd
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
# Written by deploy/local/lib/kafka.sh (kafka_node_start) at every start.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
$extra
PROPS
  if [ ! -f "$dir/data/meta.properties" ]; then
    kafka_command cmd 256m "$REPO_ROOT/deploy/local/kafka/tools-log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster" -c "$dir/server.properties"
    "${cmd[@]}" >>"$dir/kafka.log" 2>&1 || die "formatting Kafka storage in $dir failed; see $dir/kafka.log"
  fi
  kafka_command cmd "${KAFKA_HEAP:-512m}" "$REPO_ROOT/deploy/local/kafka/log4j2.properties" \
    "-Dflashsale.kafka.port=$port" kafka.Kafka "$dir/server.properties"
  kafka_launch "$port" "${cmd[@]}"
}

# kafka_launch PORT COMMAND…: starts a node's command line (the last argument is its
# properties file, in the node's directory) detached from this script's session, and
# waits until that process accepts connections on PORT.
kafka_launch() {
  local port=$1 props dir pid
  shift
  props=${*: -1}
  dir=$(dirname "$props")
  (cd "$dir" || exit; setsid nohup "$@" >>"$dir/kafka.log" 2>&1 </dev/null & echo $! >"$dir/pid")
  pid=$(cat "$dir/pid")
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || die "kafka on port $port exited at start; see $dir/kafka.log"
    port_open "$port" && [ "$(kafka_pid "$port")" = "$pid" ] && return 0
    sleep 0.1
  done
  die "kafka on port $port did not accept connections within 60 s; see $dir/kafka.log"
}

# kafka_single_start: the one-node broker of the demo and the tests, on $KAFKA_PORT.
kafka_single_start() {
  local dir=$STATE_DIR/kafka
  mkdir -p "$dir"
  [ -s "$dir/cluster-id" ] || new_cluster_id >"$dir/cluster-id"
  kafka_node_start "$dir" 1 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" \
    "1@127.0.0.1:$KAFKA_CONTROLLER_PORT" "$(cat "$dir/cluster-id")" \
    "$(printf '%s\n' num.partitions=1 offsets.topic.replication.factor=1 \
      transaction.state.log.replication.factor=1 transaction.state.log.min.isr=1)"
}

# new_cluster_id: a random KRaft cluster id (16 random bytes, URL-safe base64).
new_cluster_id() { head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# kafka_pid PORT: the pid of the Kafka node started for PORT, whoever started it.
kafka_pid() {
  pgrep -f -- "-Dflashsale\.kafka\.port=$1 kafka\.Kafka " | head -n 1 | grep . || return 1
}
# kafka_props PID: the properties file a node runs with (the last word of its command).
kafka_props() { tr '\0' '\n' <"/proc/$1/cmdline" | tail -n 1; }

# kafka_stop PORT: stops the node on PORT (SIGTERM: a controlled shutdown; kill -9 after
# 30 s).
kafka_stop() {
  local pid
  pid=$(kafka_pid "$1") || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  warn "kafka on port $1 (pid $pid) did not stop within 30 s: kill -9"
  kill -9 "$pid" 2>/dev/null || true
}

# restart_broker_hard PORT DOWN_SECONDS: kill -9 the node on PORT, wait, start it again
# with the same command line (so on the same storage).
restart_broker_hard() {
  local port=$1 down=$2 pid
  local -a cmd
  pid=$(kafka_pid "$port") || die "no Kafka node found on port $port"
  mapfile -d '' -t cmd <"/proc/$pid/cmdline"
  say "kill -9 the Kafka node on port $port (pid $pid); restart it in ${down}s on the same storage"
  kill -9 "$pid"
  for _ in $(seq 50); do port_open "$port" || break; sleep 0.1; done
  sleep "$down"
  kafka_launch "$port" "${cmd[@]}"
}

# kafka_delete_topics BROKERS REGEX: deletes the topics whose names match (best effort).
kafka_delete_topics() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --delete \
    --if-exists --topic "$2" >/dev/null 2>&1 || warn "could not delete the topics $2"
}
