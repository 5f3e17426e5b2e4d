#!/usr/bin/env bash
# Runs every check and test against real services: first the checks of the tree itself
# (deploy/local/checks/: the port table docs/ports.md, the shape of the code — no
# function over 60 lines, no file over 400 — and every documented setting against the
# code), then brings the local stack up (installing what is
# missing; with --secure, the TLS-only PostgreSQL and Redis the TLS tests reach), then formatting, clippy, the whole workspace's tests (on one Redis
# server, then again on a Redis Cluster), the fault suite (loadtest/faults.sh), the
# runbook (on both), six sales at once on the cluster (loadtest/many-sales.sh),
# reservations that end under load (loadtest/reservations.sh), the same three on sales
# spread over the cluster's masters (--shards 3) and the CI-sized load scenario with its
# audit (loadtest/ci.sh); the fuzz targets briefly (fuzz/run.sh) and
# schemathesis against the OpenAPI document, signed and unsigned (loadtest/contract.sh),
# typed clients generated from it, used on a real API (loadtest/generated-client.sh), and
# the shopper's page of a sale with a waiting room in headless Chromium (loadtest/shop.sh).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
say "checks of the tree: ports, code shape, documented settings"
"$REPO_ROOT/deploy/local/checks/ports.sh"
python3 "$REPO_ROOT/deploy/local/checks/code_shape.py" "$REPO_ROOT"
python3 "$REPO_ROOT/deploy/local/checks/documented_settings.py" "$REPO_ROOT"
"$REPO_ROOT/deploy/local/up.sh" --secure
. "$STATE_DIR/env"
cd "$REPO_ROOT"
prune_build_cache

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (warnings are errors)"
cargo clippy -q --workspace --all-targets -- -D warnings
say "fuzz targets, ${FUZZ_SECONDS:-10} s each (fuzz/README.md)"
"$REPO_ROOT/fuzz/run.sh"
say "cargo test --workspace (Redis: one server)"
cargo test -q --workspace
say "cargo test --workspace again, on a Redis Cluster of 3 masters and 3 replicas"
"$REPO_ROOT/deploy/local/up.sh" --redis-cluster --secure >/dev/null
REDIS_CLUSTER_NODES=$(redis_cluster_nodes) cargo test -q --workspace
say "fault suite (kill -9 an API, a worker, the broker; crash PostgreSQL; a partition leader and a follower of a three-node Kafka cluster; the Redis master of the product, with its replica current, lagging, and lagging without the WAIT defence; all under load)"
"$REPO_ROOT/loadtest/faults.sh"
say "runbook: every command of deploy/ops/RUNBOOK.md, as written (one Redis server, then the cluster)"
"$REPO_ROOT/deploy/ops/test-runbook.sh"
REDIS_CLUSTER_NODES=$(redis_cluster_nodes) "$REPO_ROOT/deploy/ops/test-runbook.sh"
say "many products, many masters: six sales at once on the Redis Cluster, audited"
"$REPO_ROOT/loadtest/many-sales.sh"
say "reservations under load: a payment window, shoppers who pay, cancel, pay late or never; expired units resold; audited"
"$REPO_ROOT/loadtest/reservations.sh"
say "one product over three masters (--shards 3 on the Redis Cluster): three sharded sales at once on two API instances; reservations that end on a sharded sale; the CI load scenario sharded; each audited, the invariant sampled every second"
SHARDS=3 SALES=3 "$REPO_ROOT/loadtest/many-sales.sh"
REDIS_CLUSTER_NODES=$(redis_cluster_nodes) "$REPO_ROOT/loadtest/reservations.sh" "$REPO_ROOT/loadtest/scenarios/reservations-sharded.toml"
REDIS_CLUSTER_NODES=$(redis_cluster_nodes) "$REPO_ROOT/loadtest/ci.sh" "$REPO_ROOT/loadtest/scenarios/ci-sharded.toml"
say "HTTP contract: schemathesis against ingest-api/openapi.yaml (signed, unsigned, admin)"
"$REPO_ROOT/loadtest/contract.sh"
say "generated clients: openapi-python-client and oapi-codegen from ingest-api/openapi.yaml, without warnings; the Python one on a real API"
"$REPO_ROOT/loadtest/generated-client.sh"
say "the shopper's page in headless Chromium: two shoppers join a waiting room, one orders the last unit, the other is told sold out"
"$REPO_ROOT/loadtest/shop.sh"
say "CI load scenario (open model, crowd and bots, audited)"
"$REPO_ROOT/loadtest/ci.sh"
say "all tests passed"
