# Shared helpers for the local stack scripts. Source it; do not run it.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR=${FLASH_STATE_DIR:-$REPO_ROOT/.local}
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_ROOT/deploy/local/kafka/pom.xml")
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
REDIS_PORT=${REDIS_PORT:-6379}
PG_PORT=${PG_PORT:-5432}
# One target directory for every checkout and CI run on this machine, so a clean clone
# does not rebuild the world.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/flash-sale/target}
# Apache Kafka's jars, once per machine (outside the checkout).
KAFKA_HOME=${KAFKA_HOME:-$HOME/.cache/flash-sale/kafka-$KAFKA_VERSION}
# A Java 17 (or newer) runtime, found when first needed (up.sh installs one when there is
# none); JAVA overrides.
JAVA=${JAVA:-}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Run as root, or through sudo when we are not root.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Run as the postgres OS user (peer authentication on the Unix socket).
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  die "$2 did not open port $1 within $3 s"
}

apt_install() {
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } ||
    die "apt-get install $* failed"
}

# The URLs every binary and test reads; written by up.sh to $STATE_DIR/env.
stack_env() {
  cat <<ENV
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export DATABASE_URL=postgres://flashsale:flashsale@127.0.0.1:$PG_PORT/flashsale
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export CARGO_TARGET_DIR=$CARGO_TARGET_DIR
ENV
}

# The version directory of the local PostgreSQL cluster.
pg_version() { ls /etc/postgresql | sort -V | tail -n 1; }
# wait_for_postgres: until PostgreSQL accepts connections on loopback (10 s at most).
wait_for_postgres() {
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && return 0; sleep 0.2; done
  die "postgresql did not come up on 127.0.0.1:$PG_PORT"
}

# --- Apache Kafka ------------------------------------------------------------------------
# The broker runs from its Maven Central jars (deploy/local/kafka/pom.xml pins the version),
# fetched once per machine into $KAFKA_HOME, in KRaft mode: each node is broker and
# controller at once. One node on $KAFKA_PORT serves the demo and the tests; the fault
# suite starts a three-node cluster beside it (kafka_cluster_up). Every node's java command
# line carries -Dflashsale.kafka.port=PORT, which is how kafka_pid finds it.

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
# Written by deploy/local/lib.sh (kafka_node_start) at every start.
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
  (cd "$dir"; setsid nohup "$@" >>"$dir/kafka.log" 2>&1 </dev/null & echo $! >"$dir/pid")
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

# The three-node cluster of the fault suite (replication factor 3, min.insync.replicas 2),
# beside the single node: brokers on KAFKA_CLUSTER_PORTS (three, space-separated),
# controllers 100 above each.
read -r -a KAFKA_CLUSTER_PORTS <<<"${KAFKA_CLUSTER_PORTS:-39092 39093 39094}"
[ ${#KAFKA_CLUSTER_PORTS[@]} -eq 3 ] || die "KAFKA_CLUSTER_PORTS needs three ports, space-separated"
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
    port=${KAFKA_CLUSTER_PORTS[i - 1]}
    voters+="${voters:+,}$i@127.0.0.1:$((port + 100))"
  done
  for i in 1 2 3; do
    port=${KAFKA_CLUSTER_PORTS[i - 1]}
    # Quick failure detection for the fault suite: a dead broker is fenced (and its
    # partitions get new leaders) within about 3 s instead of 9.
    kafka_node_start "$dir/node$i" "$i" "$port" $((port + 100)) "$voters" "$cluster" \
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

# kafka_delete_topics BROKERS REGEX: deletes the topics whose names match (best effort).
kafka_delete_topics() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --delete \
    --if-exists --topic "$2" >/dev/null 2>&1 || warn "could not delete the topics $2"
}

# --- Redis Cluster -------------------------------------------------------------------
# Three masters and three replicas from the Debian redis-server, on loopback ports
# REDIS_CLUSTER_PORTS (six, space-separated), with a short node timeout (2 s) and
# cluster-replica-validity-factor 0 so a replica always takes over a failed master.
# Storage (nodes.conf; no data persistence) under $STATE_DIR/redis-cluster/<port>.
read -r -a REDIS_CLUSTER_PORTS <<<"${REDIS_CLUSTER_PORTS:-7001 7002 7003 7004 7005 7006}"
[ ${#REDIS_CLUSTER_PORTS[@]} -eq 6 ] || die "REDIS_CLUSTER_PORTS needs six ports, space-separated"
redis_cluster_nodes() { local IFS=,; printf '%s' "${REDIS_CLUSTER_PORTS[*]/#/127.0.0.1:}"; }
# redis_cluster_ok PORT: the node answers, sees the cluster whole and has finished its
# replication hand-shake: a replica's link to its master is up, a master has an online
# replica (admissions WAIT for one, so a cluster still in its first sync would refuse them).
redis_cluster_ok() {
  local info
  redis-cli -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  info=$(redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r') || return 1
  case $(sed -n 's/^role://p' <<<"$info") in
    slave) grep -q '^master_link_status:up$' <<<"$info" ;;
    master) grep -q '^slave[0-9]*:.*state=online' <<<"$info" ;;
    *) return 1 ;;
  esac
}

# redis_cluster_node_start PORT: one node, daemonized, in its directory.
redis_cluster_node_start() {
  local dir=$STATE_DIR/redis-cluster/$1
  mkdir -p "$dir"
  redis-server --port "$1" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
    --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --cluster-replica-validity-factor 0 --save "" --appendonly no
  wait_for_port "$1" "redis cluster node $1" 10
}

# redis_cluster_up: the cluster, started and created unless it already runs whole.
redis_cluster_up() {
  local port all_ok=1
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_ok "$port" || all_ok=0; done
  if [ "$all_ok" = 1 ]; then
    say "redis cluster already running ($(redis_cluster_nodes))"
    return 0
  fi
  redis_cluster_down
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do rm -rf "$STATE_DIR/redis-cluster/$port"; done
  say "starting a redis cluster, 3 masters and 3 replicas ($(redis_cluster_nodes))"
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_node_start "$port"; done
  redis-cli --cluster create ${REDIS_CLUSTER_PORTS[@]/#/127.0.0.1:} --cluster-replicas 1 \
    --cluster-yes >"$STATE_DIR/logs/redis-cluster-create.log" 2>&1 ||
    die "redis-cli --cluster create failed; see $STATE_DIR/logs/redis-cluster-create.log"
  for _ in $(seq 100); do
    all_ok=1
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_ok "$port" || all_ok=0; done
    [ "$all_ok" = 1 ] && return 0
    sleep 0.2
  done
  die "the redis cluster did not become whole within 20 s"
}

# redis_cluster_down: stops the nodes this checkout started.
redis_cluster_down() {
  local port dir
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    dir=$STATE_DIR/redis-cluster/$port
    if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
      redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    fi
  done
}

# redis_cluster_master_of KEY: the port of the master that owns KEY's slot now.
redis_cluster_master_of() {
  local slot port
  slot=$(redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster keyslot "$1")
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -p "$port" role 2>/dev/null | head -n 1 | grep -q '^master$' || continue
    if redis-cli -p "$port" cluster nodes 2>/dev/null | awk -v s="$slot" '
        $3 ~ /myself/ { for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) found = 1 } }
        END { exit !found }'; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# redis_cluster_pid PORT: the process of a node this checkout started.
redis_cluster_pid() { cat "$STATE_DIR/redis-cluster/$1/redis.pid"; }
# redis_cluster_replica_of PORT: the port of a replica of the master on PORT.
redis_cluster_replica_of() {
  redis-cli -p "$1" info replication | sed -n 's/^slave0:.*port=\([0-9]*\).*/\1/p' | head -n 1
}
# redis_cluster_wait_role PORT ROLE SECONDS: until the node on PORT has ROLE (master,
# slave), and as a replica is in sync with its master.
redis_cluster_wait_role() {
  local i info
  for ((i = 0; i < $3 * 5; i++)); do
    info=$(redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r') || true
    if grep -q "^role:$2$" <<<"$info"; then
      [ "$2" != slave ] || grep -q '^master_link_status:up$' <<<"$info" && return 0
    fi
    sleep 0.2
  done
  return 1
}

# --- running the services --------------------------------------------------------------
# spawn NAME LOGFILE COMMAND…: starts a process in the background and remembers it, so
# stop_spawned (installed as an EXIT trap) stops exactly what this script started.
declare -gA SPAWNED
spawn() {
  local name=$1 log=$2
  shift 2
  "$@" >>"$log" 2>&1 &
  SPAWNED[$name]=$!
}
stop_spawned() {
  local p
  for p in "${SPAWNED[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  SPAWNED=()
}
# wait_ready URL…: until each answers 2xx (30 s at most).
wait_ready() {
  local url
  for url in "$@"; do
    for _ in $(seq 150); do curl -sf "$url" >/dev/null && break; sleep 0.2; done
    curl -sf "$url" >/dev/null || die "$url is not ready"
  done
}

# Keeps the shared build cache from filling the disk: every rebuild of a test leaves its
# previous executable behind (hundreds of MB each with debug info), and incremental state
# grows without bound. Removes, in $CARGO_TARGET_DIR/debug, the incremental state and each
# executable built more than an hour before the newest of its name (one build writes all
# of a name's current ones — a crate's binary, its lib tests and its bin tests — together;
# older ones were replaced by a later build).
prune_build_cache() {
  local deps=$CARGO_TARGET_DIR/debug/deps
  [ -d "$deps" ] || return 0
  rm -rf "$CARGO_TARGET_DIR/debug/incremental"
  python3 - "$deps" <<'PY'
import collections, os, re, sys
deps = sys.argv[1]
groups = collections.defaultdict(list)
for f in os.listdir(deps):
    path = os.path.join(deps, f)
    m = re.fullmatch(r"(.+)-([0-9a-f]{16})", f)
    if m and os.path.isfile(path) and os.access(path, os.X_OK):
        groups[m.group(1)].append(path)
freed = 0
for paths in groups.values():
    newest = max(os.path.getmtime(p) for p in paths)
    for old in [p for p in paths if os.path.getmtime(p) < newest - 3600]:
        freed += os.path.getsize(old)
        for p in (old, old + ".d"):
            if os.path.exists(p):
                os.remove(p)
if freed:
    print(f"build cache: removed {freed / 1e9:.1f} GB of replaced test executables", file=sys.stderr)
PY
}
