#!/usr/bin/env bash
# The shopper's page in a real browser (loadtest/shop/): one API on the local stack, a
# sale of ONE unit whose waiting room opens a few seconds after the shoppers arrive, the
# reference shop (`loadtest shop`: the page, and its calls signed as a shop's backend
# would), and loadtest/shop/test/browser.mjs driving two headless Debian Chromiums with
# playwright-core: both join before the opening and see the countdown, one is admitted
# and orders, the other is told sold out. Installs what is missing, once per machine:
# Debian's chromium (apt) and playwright-core (pinned by loadtest/shop/test/package.json
# and package-lock.json, `npm ci` into $HOME/.cache/flash-sale/shop-browser; it downloads
# no browser). The screenshots land in the run's log folder, or in $SHOP_SCREENSHOTS
# (`SHOP_SCREENSHOTS=docs/images loadtest/shop.sh` takes the README's).
# Exits non-zero if the browser test fails.
#
#   loadtest/shop.sh
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
unset REDIS_CLUSTER_NODES
api_port=$(port_of shop-api) admin_port=$(port_of shop-admin) shop_port=$(port_of shop)
test_dir=$REPO_ROOT/loadtest/shop/test
node_dir=$HOME/.cache/flash-sale/shop-browser

# --- the browser and its driver, once per machine ----------------------------------------
[ -x /usr/bin/chromium ] || apt_install --no-install-recommends chromium
command -v npm >/dev/null || die "npm is needed (Node.js 20 or newer)"
if ! cmp -s "$test_dir/package-lock.json" "$node_dir/installed-lock.json"; then
  say "installing playwright-core (loadtest/shop/test/package-lock.json) into $node_dir"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$test_dir/package.json" "$test_dir/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci of playwright-core failed"
  # Written last: a folder without it (an interrupted install) is made again.
  cp "$test_dir/package-lock.json" "$node_dir/installed-lock.json"
fi
cp "$test_dir/browser.mjs" "$node_dir/"

# --- one API, the sale and its room, the shop --------------------------------------------
for p in "$api_port" "$admin_port" "$shop_port"; do
  port_open "$p" && die "port $p is in use"
done
isolated_run shop ingest-api loadtest
# No worker consumes this run's topic: its Redis keys go with it.
# shellcheck disable=SC2016 # expanded when the trap runs
on_exit 'redis-cli -u "$REDIS_URL" --scan --pattern "$RUN:*" 2>/dev/null |
  xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1'
spawn api "$LOGS/api.log" env "LISTEN_ADDR=127.0.0.1:$api_port" "ADMIN_ADDR=127.0.0.1:$admin_port" "$BIN/ingest-api"
wait_ready "http://127.0.0.1:$admin_port/readyz"
# The same product every run (one unit, at most one per user): re-opening it in
# PostgreSQL is a no-op, and Redis holds it in this run's namespace.
product=shop-demo
"$BIN/flashctl" sale open --product "$product" --stock 1 --per-user 1 >/dev/null
now_ms=$(($(date +%s) * 1000))
"$BIN/flashctl" room open --product "$product" --prequeue-from "$now_ms" --at "$((now_ms + 12000))" \
  --rate 1 --burst 1 --claim-window 60s --message "One unit. Everyone who joins before the opening has the same chance." >/dev/null
spawn shop "$LOGS/shop.log" "$BIN/loadtest" shop --url "http://127.0.0.1:$api_port" \
  --listen "127.0.0.1:$shop_port" --product "$product" --title "The last kite of the season"
for _ in $(seq 50); do port_open "$shop_port" && break; sleep 0.1; done
port_open "$shop_port" || die "the shop did not start (log: $LOGS/shop.log)"

say "two shoppers in headless Chromium (playwright-core $(node -p "require('$node_dir/node_modules/playwright-core/package.json').version"))"
shots=$(cd "$REPO_ROOT" && mkdir -p "${SHOP_SCREENSHOTS:-$LOGS}" && cd "${SHOP_SCREENSHOTS:-$LOGS}" && pwd)
(cd "$node_dir" && node browser.mjs "http://127.0.0.1:$shop_port/" "$shots") ||
  die "the browser test failed (logs: $LOGS)"
say "screenshots: $shots"
