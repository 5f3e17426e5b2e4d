#!/usr/bin/env bash
# Stops what up.sh started (and only that): the tansu broker, and Redis or PostgreSQL if
# up.sh had to start them. Data of tansu stays in .local/tansu for the next up.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
started=$STATE_DIR/started
if [ -f "$started/tansu.pid" ]; then
  pid=$(cat "$started/tansu.pid")
  if kill -0 "$pid" 2>/dev/null; then say "stopping tansu ($pid)"; kill "$pid"; fi
  rm -f "$started/tansu.pid"
fi
if [ -f "$started/redis" ]; then
  say "stopping redis"; redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$started/redis"
fi
if [ -f "$started/postgresql" ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  say "stopping postgresql $version"; as_root pg_ctlcluster --skip-systemctl-redirect "$version" main stop || true
  rm -f "$started/postgresql"
fi
say "stack down (what this checkout started)"
