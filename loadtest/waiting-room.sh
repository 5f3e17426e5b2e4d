#!/usr/bin/env bash
# The waiting room under load (loadtest/scenarios/waiting-room.toml, about four minutes): one API
# and one worker on the local stack (one Redis server: the cost of a poll is read from
# its INFO commandstats), tens of thousands of waiters and the bots, the room's checks and
# its report (loadtest/results/, or $RESULTS).
# Exits non-zero if a check fails.
#
#   loadtest/waiting-room.sh [scenario.toml]
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
SCENARIO=${1:-$REPO_ROOT/loadtest/scenarios/waiting-room.toml}
api_port=$(port_of waiting-room-api)
admin_port=$(port_of waiting-room-admin)
worker_port=$(port_of waiting-room-worker-admin)
unset REDIS_CLUSTER_NODES

isolated_run waiting-room ingest-api inventory-worker loadtest
# The waiters all come from this machine's one address: the per-network fallback limit is
# lifted so the room, not the limiter, paces them.
export FALLBACK_IP_LIMIT=1000000/s:1000000 HTTP_WORKERS=${HTTP_WORKERS:-2}
spawn api "$LOGS/api.log" env "LISTEN_ADDR=127.0.0.1:$api_port" "ADMIN_ADDR=127.0.0.1:$admin_port" "$BIN/ingest-api"
spawn worker "$LOGS/worker.log" env "ADMIN_ADDR=127.0.0.1:$worker_port" "$BIN/inventory-worker"
wait_ready "http://127.0.0.1:$admin_port/readyz" "http://127.0.0.1:$worker_port/readyz"
say "waiting-room scenario $(basename "$SCENARIO") (logs: $LOGS)"
"$BIN/loadtest" room --scenario "$SCENARIO" --url "http://127.0.0.1:$api_port" \
  --results "${RESULTS:-$REPO_ROOT/loadtest/results}"
