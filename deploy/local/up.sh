#!/usr/bin/env bash
# Brings up the local stack without Docker: Redis, PostgreSQL (Debian packages) and
# Apache Kafka in KRaft mode (its jars fetched from Maven Central with Maven, pinned in
# deploy/local/kafka/pom.xml), each on loopback and each only if it is not already
# running; then the database, the topics and the migrations.
# Idempotent: run it as often as you like. `down.sh` stops only what this started.
#
#   deploy/local/up.sh [--redis-cluster] [--secure]
#
# --redis-cluster also starts a Redis Cluster of 3 masters and 3 replicas on 127.0.0.1:
# 7001–7006 (REDIS_CLUSTER_PORTS); point a service at it with
# REDIS_CLUSTER_NODES=$(source deploy/local/lib.sh; redis_cluster_nodes). Every port here
# is a row of docs/ports.md.
#
# --secure also makes a throw-away CA and certificates (openssl, in .local/tls) and starts
# a second PostgreSQL cluster that takes TLS connections only (127.0.0.1:5433,
# PG_SECURE_PORT); SECURE_DATABASE_URL in .local/env reaches it with sslmode=verify-full.
# It starts a Redis taking TLS only too (127.0.0.1:6380, REDIS_SECURE_PORT, the plain port
# off): SECURE_REDIS_URL, with REDIS_TLS_CA=$TLS_DIR/ca.pem.
# The stack above stays plain text.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
with_cluster=0 secure=0
for arg in "$@"; do
  case $arg in
    --redis-cluster) with_cluster=1 ;;
    --secure) secure=1 ;;
    *) die "unknown argument $arg (usage: up.sh [--redis-cluster] [--secure])" ;;
  esac
done
mkdir -p "$STATE_DIR/logs" "$STATE_DIR/kafka" "$STATE_DIR/started"

# --- toolchain -------------------------------------------------------------------
command -v cc >/dev/null && command -v make >/dev/null && command -v pkg-config >/dev/null ||
  apt_install build-essential pkg-config
if ! command -v cargo >/dev/null; then
  command -v curl >/dev/null || apt_install curl ca-certificates
  say "installing the Rust toolchain (rustup)"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt >/dev/null
fi

# --- chart font (loadtest draws its PNG charts with DejaVu Sans) ------------------
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_install fonts-dejavu-core

# --- Redis -----------------------------------------------------------------------
command -v redis-server >/dev/null || apt_install redis-server
if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  say "redis already running on 127.0.0.1:$REDIS_PORT"
else
  say "starting redis on 127.0.0.1:$REDIS_PORT (no persistence)"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  touch "$STATE_DIR/started/redis"
  wait_for_port "$REDIS_PORT" redis 10
fi

# --- PostgreSQL ------------------------------------------------------------------
command -v pg_ctlcluster >/dev/null || apt_install postgresql
if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
  say "postgresql already running on 127.0.0.1:$PG_PORT"
else
  version=$(pg_version)
  say "starting postgresql $version on 127.0.0.1:$PG_PORT"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  touch "$STATE_DIR/started/postgresql"
  wait_for_postgres
fi
# The application role and database; created over the socket as the postgres user so
# it works whatever the TCP authentication method is. CREATEDB lets tests make
# throwaway databases.
psql_admin() {
  if psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"
  else
    as_postgres psql -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 -Atq "$@"
  fi
}
if [ "$(psql_admin -c "select 1 from pg_roles where rolname = 'flashsale'")" != 1 ]; then
  say "creating role flashsale"
  psql_admin -c "create role flashsale login password 'flashsale' createdb"
fi
# The least-privilege service roles of deploy/docker, so tests can check the grants
# (the application role may SET ROLE to them; they cannot log in here).
for role in flashsale_worker flashsale_ops; do
  if [ "$(psql_admin -c "select 1 from pg_roles where rolname = '$role'")" != 1 ]; then
    psql_admin -c "create role $role nologin" -c "grant $role to flashsale"
  fi
done
if [ "$(psql_admin -c "select 1 from pg_database where datname = 'flashsale'")" != 1 ]; then
  say "creating database flashsale"
  psql_admin -c "create database flashsale owner flashsale"
fi

# --- Apache Kafka (KRaft, from Maven Central) --------------------------------------
if ! JAVA=$(find_java); then
  apt_install default-jre-headless
  JAVA=$(find_java) || { apt_install openjdk-17-jre-headless; JAVA=$(find_java); } ||
    die "no Java 17 or newer after installing one"
fi
command -v mvn >/dev/null || apt_install maven
kafka_fetch
# A node left running by a checkout that has since been deleted writes to unlinked
# files: nothing it holds survives a restart, so replace it with one on our storage.
if orphan=$(kafka_pid "$KAFKA_PORT") && [ ! -f "$(kafka_props "$orphan")" ]; then
  warn "replacing the Kafka node on port $KAFKA_PORT (pid $orphan): its storage was deleted"
  kill -9 "$orphan"
  for _ in $(seq 50); do port_open "$KAFKA_PORT" || break; sleep 0.1; done
fi
if port_open "$KAFKA_PORT"; then
  say "kafka already listening on 127.0.0.1:$KAFKA_PORT"
else
  say "starting Apache Kafka $KAFKA_VERSION (KRaft, one node) on 127.0.0.1:$KAFKA_PORT (storage: $STATE_DIR/kafka)"
  kafka_single_start
  touch "$STATE_DIR/started/kafka"
fi

# --- Redis Cluster (on request) ---------------------------------------------------------
if [ "$with_cluster" = 1 ]; then
  redis_cluster_up
  touch "$STATE_DIR/started/redis-cluster"
fi

# --- the secured stores (on request) ------------------------------------------------
if [ "$secure" = 1 ]; then
  tls_material
  pg_secure_up
  redis_secure_up
fi

# --- schema and topics ---------------------------------------------------------------
stack_env >"$STATE_DIR/env"
# The secured stores' settings too whenever they run (a later plain `up.sh` keeps them).
if [ "$secure" = 1 ] || { [ -f "$TLS_DIR/ca.pem" ] && pg_isready -q -h 127.0.0.1 -p "$PG_SECURE_PORT"; }; then
  secure_env >>"$STATE_DIR/env"
fi
. "$STATE_DIR/env"
say "building flashctl"
cargo build -q -p flashctl
flashctl="$CARGO_TARGET_DIR/debug/flashctl"
"$flashctl" migrate
"$flashctl" topics create --partitions "${ORDER_PARTITIONS:-6}"

cat >&2 <<SUMMARY

  redis       127.0.0.1:$REDIS_PORT
  postgresql  127.0.0.1:$PG_PORT  database flashsale (role flashsale)
  kafka       127.0.0.1:$KAFKA_PORT  (Apache Kafka $KAFKA_VERSION, KRaft; topics orders, orders.dlq)
  secure      $(if [ -n "${SECURE_DATABASE_URL:-}" ]; then echo "postgresql 127.0.0.1:$PG_SECURE_PORT, TLS only (SECURE_DATABASE_URL, CA $TLS_DIR/ca.pem)"; else echo "off (up.sh --secure)"; fi)
  logs        $STATE_DIR/logs
  env         source $STATE_DIR/env

SUMMARY
