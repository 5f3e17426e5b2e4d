#!/usr/bin/env bash
# Runs every ```sh block of deploy/ops/RUNBOOK.md, as written and in order, against the
# local stack with a live API, worker and sale, and fails if any command fails. With
# REDIS_CLUSTER_NODES set, everything runs on that Redis Cluster. A
# `<!-- test-setup: NAME -->` line before a block first creates the situation it is
# about (traffic, a lost Redis sale, a buyer).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
cd "$REPO_ROOT"
api_port=$(port_of runbook-api)
admin_port=$(port_of runbook-admin)
worker_port=$(port_of runbook-worker-admin)

isolated_run rb ingest-api inventory-worker loadtest
export PATH="$BIN:$PATH" FLASHCTL="$BIN/flashctl"
export RUST_LOG=warn USER=runbook-test
spawn api "$LOGS/api.log" env "LISTEN_ADDR=127.0.0.1:$api_port" "ADMIN_ADDR=127.0.0.1:$admin_port" "$BIN/ingest-api"
spawn worker "$LOGS/worker.log" env "ADMIN_ADDR=127.0.0.1:$worker_port" "$BIN/inventory-worker"
wait_ready "http://127.0.0.1:$admin_port/readyz" "http://127.0.0.1:$worker_port/readyz"
export PRODUCT=$RUN
flashctl sale open --product "$PRODUCT" --stock 100 --per-user 1 >/dev/null

# --- situations ---------------------------------------------------------------------
traffic() { # a small crowd: 20 users from 5 addresses, some buying
  loadtest burst --url "http://127.0.0.1:$api_port" --product "$PRODUCT" --orders 60 --users 20 \
    --concurrency 10 --source-ips 5 >"$LOGS/burst.log" 2>&1
  export IP=127.0.0.2 DEVICE=dev-u-0
}
lose-redis() { # everything of this sale disappears from Redis, once the pipeline drained
  flashctl reconcile --product "$PRODUCT" --wait 60s >/dev/null
  local -a cli=(redis-cli -u "$REDIS_URL")
  if [ -n "${REDIS_CLUSTER_NODES:-}" ]; then # the master that holds the product's keys
    cli=(redis-cli -p "$(redis_cluster_master_of "$REDIS_NAMESPACE:{p:$PRODUCT}:sale")")
  fi
  "${cli[@]}" --scan --pattern "$REDIS_NAMESPACE:{p:$PRODUCT}:*" | xargs -r "${cli[@]}" DEL >/dev/null
}
buyer() {
  export USER_ID=u-1
}
failover() { # on a cluster, the product's master hands over to its replica
  [ -n "${REDIS_CLUSTER_NODES:-}" ] || return 0
  local master replica
  master=$(redis_cluster_master_of "$REDIS_NAMESPACE:{p:$PRODUCT}:sale")
  replica=$(redis_cluster_replica_of "$master")
  redis-cli -p "$replica" cluster failover >/dev/null
  redis_cluster_wait_role "$replica" master 30 || die "no failover to :$replica"
  redis_cluster_wait_role "$master" slave 30 || die ":$master did not rejoin as a replica"
  say "failed over :$master to :$replica"
}
room() { # a sale of its own with a room that opens a second later
  export PRODUCT=$RUN-room
  flashctl sale open --product "$PRODUCT" --stock 50 --per-user 1 >/dev/null
  flashctl room open --product "$PRODUCT" --at "$((($(date +%s) + 1) * 1000))" --rate 2 >/dev/null
  sleep 2 # past the opening (the drain opens it, shuffling the empty pre-queue)
}

blocks=$(mktemp -d)
awk -v dir="$blocks" '
  /^<!-- test-setup: [a-z-]+ -->$/ { setup = $3; next }
  /^```sh$/ { inside = 1; n++; f = sprintf("%s/%03d.sh", dir, n); printf "" > f
              if (setup != "") { print setup > (f ".setup") } setup = ""; next }
  /^```$/ && inside { inside = 0; next }
  inside { print >> f }
' deploy/ops/RUNBOOK.md
count=0
for block in "$blocks"/*.sh; do
  if [ -f "$block.setup" ]; then
    setup=$(cat "$block.setup")
    say "runbook setup: $setup"
    "$setup"
  fi
  say "runbook block $(basename "$block" .sh):"
  sed 's/^/    /' "$block" >&2
  bash -euo pipefail "$block" >"$block.out" 2>&1 || {
    cat "$block.out" >&2
    die "runbook block $(basename "$block" .sh) failed"
  }
  count=$((count + 1))
done
[ "$count" -ge 10 ] || die "only $count runbook blocks found"
say "all $count runbook blocks ran as written"
