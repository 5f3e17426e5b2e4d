# Shared helpers for the local stack scripts: the one file they source (do not run it).
# It sets the paths every script shares and sources the helpers of each concern from lib/:
#
#   lib/common.sh         messages, root, ports open, apt, spawned processes, build cache
#   lib/ports.sh          port_of NAME: every port, read from docs/ports.md
#   lib/postgres.sh       the local PostgreSQL cluster
#   lib/redis.sh          one Redis server, and the Redis Cluster of 3 masters, 3 replicas
#   lib/kafka.sh          Apache Kafka from its jars: a node, the stack's single node
#   lib/kafka-cluster.sh  the fault suite's three-node Kafka cluster
#   lib/run.sh            isolated_run NAME: a run of its own on the shared stack
#   lib/secure.sh         up.sh --secure: a throw-away CA, a TLS-only PostgreSQL
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR=${FLASH_STATE_DIR:-$REPO_ROOT/.local}
# One target directory for every checkout and CI run on this machine, so a clean clone
# does not rebuild the world.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/flash-sale/target}
export PATH="$HOME/.cargo/bin:$PATH"

# shellcheck source=deploy/local/lib/common.sh
. "$REPO_ROOT/deploy/local/lib/common.sh"
# shellcheck source=deploy/local/lib/ports.sh
. "$REPO_ROOT/deploy/local/lib/ports.sh" # before the others: they take their ports from it
# shellcheck source=deploy/local/lib/postgres.sh
. "$REPO_ROOT/deploy/local/lib/postgres.sh"
# shellcheck source=deploy/local/lib/redis.sh
. "$REPO_ROOT/deploy/local/lib/redis.sh"
# shellcheck source=deploy/local/lib/kafka.sh
. "$REPO_ROOT/deploy/local/lib/kafka.sh"
# shellcheck source=deploy/local/lib/kafka-cluster.sh
. "$REPO_ROOT/deploy/local/lib/kafka-cluster.sh"
# shellcheck source=deploy/local/lib/run.sh
. "$REPO_ROOT/deploy/local/lib/run.sh"
# shellcheck source=deploy/local/lib/secure.sh
. "$REPO_ROOT/deploy/local/lib/secure.sh"

# The URLs every binary and test reads; written by up.sh to $STATE_DIR/env.
stack_env() {
  cat <<ENV
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export DATABASE_URL="postgres://flashsale:flashsale@127.0.0.1:$PG_PORT/flashsale?sslmode=disable"
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export CARGO_TARGET_DIR=$CARGO_TARGET_DIR
ENV
}
