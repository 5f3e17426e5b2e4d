#!/usr/bin/env bash
# The HTTP contract, checked by a fuzzer: schemathesis (pinned in
# loadtest/contract/requirements.txt, installed once per machine into a venv under
# $HOME/.cache/flash-sale/contract-venv) against ingest-api/openapi.yaml, on one API
# started on the local stack. First openapi-spec-validator checks that the document is
# valid OpenAPI 3.1; then three schemathesis runs, each with every check (`--checks all`):
#
#   signed    the public operations, each request signed by loadtest/contract/hooks.py
#             (X-Signature of POST /order, /order/{id}/cancel, /queue/{p}/join and
#             /queue/{p}/claim, Standard Webhooks of POST /webhooks/payment), so the fuzzer
#             reaches past the signature check; a sale is open for a product the hooks put
#             into half the generated orders, and one with a waiting room for half the
#             room's requests (polls and claims then carry tickets joins got)
#   unsigned  the public operations as generated (the signature check itself)
#   admin     /healthz, /readyz, /metrics and /openapi.yaml, whose server in the document
#             is the admin port
#
# Any 5xx fails a run except the documented 503 (which must then match the document, like
# every answer). One summary line per run; the reports (JUnit, NDJSON events, the log and
# the requests per status) land in $STATE_DIR/contract/<run>/. Exits non-zero if the
# document is invalid or any run fails.
#
#   loadtest/contract.sh
#
# CONTRACT_MAX_EXAMPLES (default 100) bounds the generated cases per operation and phase;
# CONTRACT_SEED fixes the random seed (printed by each run) to reproduce one.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
cd "$REPO_ROOT" # up.sh and cargo build from the workspace
"$REPO_ROOT/deploy/local/up.sh" >/dev/null
. "$STATE_DIR/env"
contract=$REPO_ROOT/loadtest/contract
spec=$REPO_ROOT/ingest-api/openapi.yaml
venv=$HOME/.cache/flash-sale/contract-venv
max_examples=${CONTRACT_MAX_EXAMPLES:-100}
port=${CONTRACT_PORT:-$(port_of contract-api)}
admin_port=${CONTRACT_ADMIN_PORT:-$(port_of contract-admin)}

# --- the pinned tools, in a venv recreated only when requirements.txt changes -----------
# shellcheck source=loadtest/contract/lib.sh
. "$contract/lib.sh"
pinned_venv "$venv" "$contract/requirements.txt"

say "openapi-spec-validator: ingest-api/openapi.yaml"
"$venv/bin/openapi-spec-validator" --schema 3.1 "$spec" >/dev/null ||
  die "ingest-api/openapi.yaml is not a valid OpenAPI 3.1 document"

# --- one API on the local stack, with its own namespace and topic -------------------------
for p in "$port" "$admin_port"; do
  port_open "$p" && die "port $p is in use (set CONTRACT_PORT / CONTRACT_ADMIN_PORT)"
done
isolated_run contract ingest-api
out=$STATE_DIR/contract/$RUN
mkdir -p "$out"
PAYMENT_WEBHOOK_SECRETS=whsec_$(printf '%s' 'contract-webhook-secret-0123456789' | base64 -w0)
export PAYMENT_WEBHOOK_SECRETS PAYMENT_WEBHOOK_SECRET=$PAYMENT_WEBHOOK_SECRETS
# The fuzzer is one client on one address: keep the per-instance limit out of its way.
export FALLBACK_IP_LIMIT=100000/s:100000 HTTP_WORKERS=${HTTP_WORKERS:-2}
# No worker consumes this run's topic: its Redis keys go with it.
# shellcheck disable=SC2016 # expanded when the trap runs
on_exit 'redis-cli -u "$REDIS_URL" --scan --pattern "$RUN:*" 2>/dev/null |
  xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1'
spawn api "$LOGS/api.log" env "LISTEN_ADDR=127.0.0.1:$port" "ADMIN_ADDR=127.0.0.1:$admin_port" "$BIN/ingest-api"
wait_ready "http://127.0.0.1:$admin_port/readyz"
# The product the signed run's hooks put into orders: plenty of stock, no cap, limits out of
# the way, and a payment window so answers carry paymentDeadline. Same stock every run, so
# re-opening it in PostgreSQL is a no-op (no worker consumes this run's topic: sold stays 0).
product=contract-sale
high=100000/s:100000
"$BIN/flashctl" sale open --product "$product" --stock 1000000 --per-user 0 --payment-window 15m \
  --ip "$high" --fingerprint "$high" --user "$high" --global "$high" >/dev/null
# The product the hooks put into the waiting room's operations: a sale with a room that
# opened a second ago and lets everyone in at once, so joins get tickets and claims of them
# get admissions (a claim window of ten minutes outlasts the run).
room_product=contract-room
"$BIN/flashctl" sale open --product "$room_product" --stock 1000000 --per-user 0 \
  --ip "$high" --fingerprint "$high" --user "$high" --global "$high" >/dev/null
now_s=$(date +%s)
"$BIN/flashctl" room open --product "$room_product" --prequeue-from "$(((now_s - 2) * 1000))" \
  --at "$(((now_s - 1) * 1000))" --rate 100000 --burst 100000 --claim-window 10m >/dev/null

# Schemathesis's settings beyond the command line: the documented 503 is not a server
# error (its shape is still checked; a 500 fails). A valid request may meet 422
# IDEMPOTENCY_KEY_REUSED: the generator reuses its favourite keys for other orders, and the
# signing hooks keep the generated key; like a 409, the answer depends on what came before,
# not on the request (schemathesis's defaults plus 422). No state is kept between runs (no
# cache, no example database), so a run does only what its seed says.
cat >"$out/schemathesis.toml" <<'TOML'
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[cache]
enabled = false
TOML

# schemathesis_run NAME URL [ARGS…]: one run; its log, reports and request counts in
# $out/NAME*; prints the summary line; returns non-zero if it failed. Every check, every
# failure of an operation (not only its first), unsanitized reproduction commands (the
# keys are this script's test secrets), the hooks of loadtest/contract/hooks.py.
schemathesis_run() {
  local name=$1 url=$2 rc=0 started elapsed
  shift 2
  started=$(date +%s)
  (cd "$out" && CONTRACT_STATS="$out/$name-requests.json" SCHEMATHESIS_HOOKS="$contract/hooks.py" \
    "$venv/bin/schemathesis" --config-file "$out/schemathesis.toml" --no-color run "$spec" \
    --url "$url" --checks all --max-examples "$max_examples" --continue-on-failure --workers 2 \
    --generation-database none --output-sanitize false ${CONTRACT_SEED:+--seed "$CONTRACT_SEED"} \
    --report junit,ndjson --report-junit-path "$out/$name/junit.xml" \
    --report-ndjson-path "$out/$name/events.ndjson" "$@") >"$out/$name.log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - started))
  if "$venv/bin/python" - "$name" "$rc" "$elapsed" "$out" <<'PY'
import json, os, re, sys
import xml.etree.ElementTree as ET
name, rc, elapsed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
log = open(os.path.join(out, f"{name}.log"), errors="replace").read()
try:
    stats = json.load(open(os.path.join(out, f"{name}-requests.json")))
except OSError:
    stats = {"requests": 0, "per_operation": {}}
statuses = {}
for per_status in stats["per_operation"].values():
    for status, count in per_status.items():
        statuses[status] = statuses.get(status, 0) + count
failing = 0
try:
    for suite in ET.parse(os.path.join(out, name, "junit.xml")).getroot().iter("testsuite"):
        failing += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
except (OSError, ET.ParseError):
    pass
def grab(pattern, text, default="?"):
    m = re.search(pattern, text)
    return m.group(1) if m else default
# schemathesis's own summary, e.g. "Test cases:\n  146 generated, 3 found 3 unique failures"
tally = grab(r"Test cases:\s+([^\n]+)", log, "")
cases = grab(r"(\d+) generated", tally)
failures = grab(r"(\d+) unique failures?", tally, "0")
errors = grab(r"(\d+) errors?", tally, "0")
seed = grab(r"Seed: (\d+)", log)
codes = " ".join(f"{s}:{n}" for s, n in sorted(statuses.items()))
refused = stats.get("signed_but_refused", 0)
verdict = f"FAIL (schemathesis exit {rc})" if rc else "FAIL (signing)" if refused else "PASS"
print(f"contract {name}: {verdict}: {cases} test cases, {stats['requests']} requests ({codes}); "
      f"{failures} unique failures, {errors} errors, {failing} operations failing"
      + (f", {refused} validly signed requests answered 401" if refused else "")
      + f"; {elapsed}s; seed {seed}")
for example in stats.get("signed_but_refused_examples", []):
    print(f"  signed but refused: {example}")
sys.exit(1 if refused else 0)
PY
  then :; else [ "$rc" -ne 0 ] || rc=1; fi
  return "$rc"
}

say "schemathesis against ingest-api (reports: $out)"
failed=()
CONTRACT_SIGN=1 CONTRACT_PRODUCT=$product CONTRACT_ROOM_PRODUCT=$room_product \
  CONTRACT_BASE_URL="http://127.0.0.1:$port" schemathesis_run signed "http://127.0.0.1:$port" \
  --exclude-tag admin || failed+=(signed)
CONTRACT_SIGN=0 schemathesis_run unsigned "http://127.0.0.1:$port" \
  --exclude-tag admin || failed+=(unsigned)
CONTRACT_SIGN=0 schemathesis_run admin "http://127.0.0.1:$admin_port" \
  --include-tag admin || failed+=(admin)
if [ ${#failed[@]} -gt 0 ]; then
  for name in "${failed[@]}"; do
    printf '\n--- %s: %s\n' "$name" "$out/$name.log" >&2
    if grep -q '^=* FAILURES =*$' "$out/$name.log"; then
      sed -n '/^=* FAILURES =*$/,/^=* SUMMARY =*$/p' "$out/$name.log" | grep -v '^ *$' | head -n 150 >&2
    else
      tail -n 30 "$out/$name.log" >&2
    fi
  done
  die "contract: ${failed[*]} failed (reports: $out)"
fi
say "contract: PASS"
