#!/usr/bin/env bash
# tighten-limits.sh PRODUCT [--ip LIMIT] [--fingerprint LIMIT] [--user LIMIT] [--global LIMIT]
#
# Shows a sale's rate limits, changes the ones given, and shows them again. Every API
# instance applies the new limits to its next request. LIMIT is RATE/PERIOD:BURST
# (PERIOD s, m or h; e.g. 2/s:4) or `off`.
#
#   deploy/ops/tighten-limits.sh iphone-15 --ip 2/s:4 --fingerprint 1/s:2
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 2 ] && [ "$1" != --help ] && [ "$1" != -h ] || usage $([ "${1:-}" = --help ] || [ "${1:-}" = -h ] && echo 0 || echo 2)
product=$1
shift
echo "before:"
flashctl limits get --product "$product"
echo
flashctl limits set --product "$product" "$@"
