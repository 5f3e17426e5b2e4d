#!/usr/bin/env bash
# stop-sale.sh PRODUCT [--resume]
#
# Halts a sale on every API instance at once (the next request answers 409
# SALE_NOT_OPEN), shows its state, and records the change in the audit trail. With
# --resume, opens it again. Orders already accepted are still handed off and persisted.
#
#   deploy/ops/stop-sale.sh iphone-15
#   deploy/ops/stop-sale.sh iphone-15 --resume
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 1 ] && [ "$1" != --help ] && [ "$1" != -h ] || usage $([ $# -ge 1 ] && echo 0 || echo 2)
product=$1
if [ "${2:-}" = --resume ]; then
  flashctl sale resume --product "$product"
else
  flashctl --yes sale halt --product "$product"
fi
flashctl sale status --product "$product"
