#!/usr/bin/env bash
# Reservations that end, under load: loadtest/scenarios/reservations.toml through
# loadtest/ci.sh (one API and one worker, the run's audit and report), as a run named
# reservations on its own ports (docs/ports.md). A sale with a short
# payment window and three times more demand than stock; after its 202 a shopper pays by
# the payment webhook (60 %), cancels (5 %), pays only after the window (5 %, told
# `expired`), or never pays (30 %). The audit: every 202 one row, live + returned =
# accepted, remaining + live = stock, no unit returned twice, every shopper told the state
# PostgreSQL holds. Then this script checks that returned units were sold again (more units
# accepted than on sale). Exits non-zero otherwise. Another scenario may be given, such as
# loadtest/scenarios/reservations-sharded.toml (the same sale on three shards, run on the
# Redis Cluster by deploy/local/test.sh).
#
#   loadtest/reservations.sh [scenario.toml]
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
# The webhook calls of a run come from one address: let them past the API's in-process limit.
export FALLBACK_IP_LIMIT=${FALLBACK_IP_LIMIT:-1000/s:2000}
export PAYMENT_WEBHOOK_SECRETS=whsec_cmVzZXJ2YXRpb25zLXdlYmhvb2stc2VjcmV0
export PAYMENT_WEBHOOK_SECRET=$PAYMENT_WEBHOOK_SECRETS
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
scenario=${1:-$REPO_ROOT/loadtest/scenarios/reservations.toml}
CI_NAME=reservations RESULTS=$results "$REPO_ROOT/loadtest/ci.sh" "$scenario" ||
  die "reservations under load: FAIL"
python3 - "$results"/*/summary.json <<'PY' || die "reservations under load: no unit was resold"
import json, sys
a = json.load(open(sys.argv[1]))["audit"]
print(f"resold: {a['accepted_units']} units accepted for {a['stock']} on sale; "
      f"{a['paid_units']} paid, {a['returned_units']} returned, {a['contradicted']} contradicted")
sys.exit(0 if a["accepted_units"] > a["stock"] and a["returned_units"] > 0 else 1)
PY
say "reservations under load: PASS"
