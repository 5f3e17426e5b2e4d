# Redis: the port of the stack's one server, and the Redis Cluster (3 masters and 3
# replicas) of `up.sh --redis-cluster`, which the fault suite also starts on ports of its
# own: starting and stopping it, and finding a key's master, a master's replica and a
# node's role. Sourced by deploy/local/lib.sh.
# shellcheck shell=bash

REDIS_PORT=${REDIS_PORT:-$(port_of redis)}

# --- Redis Cluster -------------------------------------------------------------------
# Three masters and three replicas from the Debian redis-server, on loopback ports
# REDIS_CLUSTER_PORTS (six, space-separated), with a short node timeout (2 s) and
# cluster-replica-validity-factor 0 so a replica always takes over a failed master.
# Storage (nodes.conf; no data persistence) under $STATE_DIR/redis-cluster/<port>.
_redis_cluster_ports=$(port_of redis-cluster)
read -r -a REDIS_CLUSTER_PORTS <<<"${REDIS_CLUSTER_PORTS:-$_redis_cluster_ports}"
unset _redis_cluster_ports
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
# redis_cluster_whole: every node of REDIS_CLUSTER_PORTS is redis_cluster_ok.
redis_cluster_whole() {
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_ok "$port" || return 1; done
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
  local port
  if redis_cluster_whole; then
    say "redis cluster already running ($(redis_cluster_nodes))"
    return 0
  fi
  redis_cluster_down
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do rm -rf "$STATE_DIR/redis-cluster/$port"; done
  say "starting a redis cluster, 3 masters and 3 replicas ($(redis_cluster_nodes))"
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_node_start "$port"; done
  redis-cli --cluster create "${REDIS_CLUSTER_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 1 \
    --cluster-yes >"$STATE_DIR/logs/redis-cluster-create.log" 2>&1 ||
    die "redis-cli --cluster create failed; see $STATE_DIR/logs/redis-cluster-create.log"
  for _ in $(seq 100); do
    redis_cluster_whole && return 0
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
