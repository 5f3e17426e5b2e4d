#!/usr/bin/env bash
# Reservations that end, under load: a sale with a short payment window, one API and one
# worker, a steady stream with three times more demand than stock. After its 202 a
# shopper pays by the payment webhook (60 %), cancels (5 %), pays only after the window
# (5 %, told `expired`), or never pays (30 %): the units of the last three come back on
# sale and are bought by later shoppers. Then the audit: every 202 one row, live + returned
# = accepted, remaining + live = stock, no unit returned twice, every shopper told the
# state PostgreSQL holds; and at least some units resold. Exits non-zero otherwise.
#
#   loadtest/reservations.sh      (RATE=150 DURATION=12 STOCK=600 WINDOW=2s)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
RATE=${RATE:-150}
DURATION=${DURATION:-12}
STOCK=${STOCK:-600}
WINDOW=${WINDOW:-2s}

run=reserve-$(date +%s)
OUT=$STATE_DIR/reservations/$run
mkdir -p "$OUT"
bin=$CARGO_TARGET_DIR/debug
cargo build -q -p ingest-api -p inventory-worker -p flashctl -p loadtest
export REDIS_NAMESPACE=$run KAFKA_TOPIC=$run-orders KAFKA_DLQ_TOPIC=$run-orders.dlq
export KAFKA_GROUP=$run-worker RUST_LOG=${RUST_LOG:-warn}
export SIGNING_KEYS="res:res-secret-0123456789" SIGNING_KEY="res:res-secret-0123456789"
export PAYMENT_WEBHOOK_SECRETS=whsec_cmVzZXJ2YXRpb25zLXdlYmhvb2stc2VjcmV0
export PAYMENT_WEBHOOK_SECRET=$PAYMENT_WEBHOOK_SECRETS
trap 'stop_spawned; kafka_delete_topics "$KAFKA_BROKERS" "$run-.*"' EXIT

"$bin/flashctl" topics create --partitions 6 >/dev/null
spawn api "$OUT/api.log" env LISTEN_ADDR=127.0.0.1:18481 ADMIN_ADDR=127.0.0.1:19481 \
  FALLBACK_IP_LIMIT=1000/s:2000 "$bin/ingest-api"
spawn worker "$OUT/worker.log" env ADMIN_ADDR=127.0.0.1:19491 "$bin/inventory-worker"
wait_ready http://127.0.0.1:19481/readyz http://127.0.0.1:19491/readyz

product=$run-sale
say "sale $product: $STOCK units, payment window $WINDOW, $RATE orders/s for ${DURATION}s (logs: $OUT)"
"$bin/flashctl" sale open --product "$product" --stock "$STOCK" --per-user 1 \
  --payment-window "$WINDOW" >/dev/null
"$bin/loadtest" stream --url http://127.0.0.1:18481 --product "$product" --rate "$RATE" \
  --duration "${DURATION}s" --users 100000 --pay 0.6 --cancel 0.05 --pay-late 0.05 \
  --pay-after 500ms --late-after 4s --answers "$OUT/answers.jsonl" 2>"$OUT/stream.log" ||
  die "the stream failed; see $OUT/stream.log"
tail -n 2 "$OUT/stream.log" >&2
# Let every unpaid reservation expire, so the audit sees each unit's final place.
sleep 3
"$bin/loadtest" audit --url http://127.0.0.1:18481 --product "$product" \
  --answers "$OUT/answers.jsonl" --label reserve --json-out "$OUT/audit.json" 2>/dev/null ||
  die "reservations under load: audit FAIL (logs in $OUT)"
python3 - "$OUT/audit.json" "$STOCK" <<'PY' || die "reservations under load: no unit was resold"
import json, sys
r, stock = json.load(open(sys.argv[1])), int(sys.argv[2])
print(f"resold: {r['accepted_units']} units accepted for {stock} on sale; "
      f"{r['paid_units']} paid, {r['returned_units']} returned, {r['contradicted']} contradicted")
sys.exit(0 if r["accepted_units"] > stock and r["returned_units"] > 0 else 1)
PY
say "reservations under load: PASS"
