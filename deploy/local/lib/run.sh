# An isolated run on the shared local stack: isolated_run NAME gives a script a Redis
# namespace, Kafka topics and a consumer group of its own, its signing keys, a logs
# directory, the binaries it needs built, and an EXIT trap that stops what it started and
# deletes its topics; on_exit adds to that trap. Sourced by deploy/local/lib.sh.
# shellcheck shell=bash

# isolated_run [--release] [--out KIND] NAME PACKAGE…
# Needs the stack's URLs (source "$STATE_DIR/env" first). Sets, for the script:
#   RUN      NAME-<unix time>, this run's name: the prefix of everything below
#   exports  REDIS_NAMESPACE=$RUN, KAFKA_TOPIC=$RUN-orders, KAFKA_DLQ_TOPIC=$RUN-orders.dlq,
#            KAFKA_GROUP=$RUN-worker, SIGNING_KEYS and SIGNING_KEY (one key, id NAME),
#            RUST_LOG (warn unless set)
#   BIN      the directory of the binaries: flashctl and the PACKAGEs built first (cargo
#            build -q; --release: the release profile)
#   LOGS     $STATE_DIR/logs/$RUN, or $STATE_DIR/KIND/$RUN with --out KIND (created)
#   topics   $KAFKA_TOPIC and $KAFKA_DLQ_TOPIC created on $KAFKA_BROKERS (flashctl topics
#            create: 6 partitions, one replica)
#   trap     on EXIT: stop_spawned, each on_exit command in order, then this run's topics
#            deleted from the brokers they were created on
isolated_run() {
  local profile=debug out=logs
  while [ $# -gt 0 ]; do
    case $1 in
      --release) profile=release ;;
      --out) out=$2; shift ;;
      *) break ;;
    esac
    shift
  done
  [ $# -ge 1 ] || die "isolated_run: a run needs a name"
  local name=$1
  shift
  RUN=$name-$(date +%s)
  BIN=$CARGO_TARGET_DIR/$profile
  LOGS=$STATE_DIR/$out/$RUN
  RUN_BROKERS=$KAFKA_BROKERS
  local -a build=(cargo build -q -p flashctl)
  [ "$profile" = debug ] || build+=(--release)
  local pkg
  for pkg in "$@"; do build+=(-p "$pkg"); done
  (cd "$REPO_ROOT" && "${build[@]}") || die "$name: cargo build failed"
  export REDIS_NAMESPACE=$RUN KAFKA_TOPIC=$RUN-orders KAFKA_DLQ_TOPIC=$RUN-orders.dlq
  export KAFKA_GROUP=$RUN-worker RUST_LOG=${RUST_LOG:-warn}
  export SIGNING_KEYS="$name:$name-secret-0123456789" SIGNING_KEY="$name:$name-secret-0123456789"
  mkdir -p "$LOGS"
  trap run_cleanup EXIT
  "$BIN/flashctl" topics create >/dev/null
}

RUN_ON_EXIT=()
# on_exit COMMAND: one more step of the EXIT trap of isolated_run (a string, run by eval
# after the spawned processes stopped; its failure does not stop the others).
on_exit() { RUN_ON_EXIT+=("$1"); }

# run_cleanup: the EXIT trap of isolated_run.
run_cleanup() {
  local step
  stop_spawned
  for step in "${RUN_ON_EXIT[@]}"; do eval "$step" || true; done
  kafka_delete_topics "$RUN_BROKERS" "$RUN-.*"
}
