#!/usr/bin/env bash
# Stops what up.sh started (and only that): Kafka, Redis and PostgreSQL, each if up.sh had
# to start it, the Redis Cluster of `up.sh --redis-cluster`, and the fault suite's Kafka
# cluster if one is left. Kafka's data stays in
# .local/kafka for the next up.sh.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
started=$STATE_DIR/started
if [ -f "$started/kafka" ]; then
  say "stopping kafka"; kafka_stop "$KAFKA_PORT"
  rm -f "$started/kafka"
fi
kafka_cluster_down
if [ -f "$started/redis-cluster" ]; then
  say "stopping the redis cluster"; redis_cluster_down
  rm -f "$started/redis-cluster"
fi
if [ -f "$started/redis" ]; then
  say "stopping redis"; redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$started/redis"
fi
if [ -f "$started/postgresql" ]; then
  version=$(pg_version)
  say "stopping postgresql $version"; as_root pg_ctlcluster --skip-systemctl-redirect "$version" main stop || true
  rm -f "$started/postgresql"
fi
pg_secure_down
redis_secure_down
say "stack down (what this checkout started)"
