#!/usr/bin/env bash
# reconcile.sh PRODUCT [--wait 30s]
#
# Compares the sale in Redis with PostgreSQL and the pipeline in between (outbox, worker
# lag, dead letters). Exit 0: consistent. Exit 3: drift (units taken in Redis that no
# order explains, or rows that disagree with sales.sold). Exit 6: still settling after
# --wait (orders in flight).
#
#   deploy/ops/reconcile.sh iphone-15 --wait 60s
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 1 ] && [ "$1" != --help ] && [ "$1" != -h ] || usage $([ $# -ge 1 ] && echo 0 || echo 2)
product=$1
shift
flashctl reconcile --product "$product" "$@"
