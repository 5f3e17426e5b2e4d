# Shared helpers for the local stack scripts. Source it; do not run it.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR=${FLASH_STATE_DIR:-$REPO_ROOT/.local}
TANSU_VERSION=0.6.0
KAFKA_PORT=${KAFKA_PORT:-9092}
REDIS_PORT=${REDIS_PORT:-6379}
PG_PORT=${PG_PORT:-5432}
# One target directory for every checkout and CI run on this machine, so a clean clone
# does not rebuild the world.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/flash-sale/target}
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

# Starts tansu from this checkout's state directory (durable SQLite storage).
start_tansu() {
  mkdir -p "$STATE_DIR/tansu" "$STATE_DIR/logs" "$STATE_DIR/started"
  (
    cd "$STATE_DIR/tansu"
    nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine "sqlite://tansu.db" \
      >>"$STATE_DIR/logs/tansu.log" 2>&1 &
    echo $! >"$STATE_DIR/started/tansu.pid"
  )
  wait_for_port "$KAFKA_PORT" tansu 30
}

# broker_pid: the pid of the tansu broker listening on $KAFKA_PORT, whoever started it
# (this checkout's pid file first, else the process whose command line names the port).
broker_pid() {
  local f=$STATE_DIR/started/tansu.pid p
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then cat "$f"; return; fi
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = tansu ] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "--listener-url tcp://127.0.0.1:$KAFKA_PORT\b"; then
      echo "${p#/proc/}"; return
    fi
  done
  return 1
}

# restart_broker_hard DOWN_SECONDS: kill -9 the broker, wait, start it again with the same
# command line in the same directory (so on the same storage).
restart_broker_hard() {
  local down=$1 pid dir
  local -a cmd
  pid=$(broker_pid) || die "no tansu broker found on port $KAFKA_PORT"
  dir=$(readlink "/proc/$pid/cwd")
  [ -d "$dir" ] || die "the broker's storage directory ($dir) is gone; it cannot be restarted on it"
  mapfile -d '' -t cmd <"/proc/$pid/cmdline"
  say "kill -9 the broker (pid $pid), restart it on the same storage ($dir)"
  kill -9 "$pid"
  for _ in $(seq 50); do port_open "$KAFKA_PORT" || break; sleep 0.1; done
  sleep "$down"
  mkdir -p "$STATE_DIR/logs" "$STATE_DIR/started"
  (cd "$dir" && nohup "${cmd[@]}" >>"$STATE_DIR/logs/tansu.log" 2>&1 & echo $! >"$STATE_DIR/started/tansu.pid")
  wait_for_port "$KAFKA_PORT" tansu 30
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
}
# wait_ready URL…: until each answers 2xx (30 s at most).
wait_ready() {
  local url
  for url in "$@"; do
    for _ in $(seq 150); do curl -sf "$url" >/dev/null && break; sleep 0.2; done
    curl -sf "$url" >/dev/null || die "$url is not ready"
  done
}
