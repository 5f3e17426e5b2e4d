#!/usr/bin/env bash
# suspicious-orders.sh PRODUCT [--since 1h] [--min-users 3] [--burst 5]
#
# The fraud view of a sale: violations per hour over the last 24 h, then users over the
# cap, devices and networks (pseudonyms: no raw address is stored) shared by several
# users, and devices with bursts of orders. Feed what you find to block.sh.
#
#   deploy/ops/suspicious-orders.sh iphone-15 --since 30m
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 1 ] && [ "$1" != --help ] && [ "$1" != -h ] || usage $([ $# -ge 1 ] && echo 0 || echo 2)
product=$1
shift
flashctl violations --product "$product" --hours 24
echo
flashctl orders suspicious --product "$product" "$@"
