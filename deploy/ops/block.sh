#!/usr/bin/env bash
# block.sh ip|fingerprint|user VALUE [--product P] [--ttl 15m] [--reason TEXT]
#
# Blocks an abuser (an IP address, which for IPv6 means its /64; a device fingerprint; or
# a user id) on one sale or, without --product, on every open sale, for --ttl (default
# 15m; `forever` until unblocked). Blocked requests get 403 BLOCKED and count as
# violations. Undo with: flashctl unblock ip|fingerprint|user VALUE [--product P].
#
#   deploy/ops/block.sh ip 203.0.113.7 --product iphone-15 --ttl 30m --reason "card testing"
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 2 ] || usage $([ "${1:-}" = --help ] || [ "${1:-}" = -h ] && echo 0 || echo 2)
scope=$1 value=$2
shift 2
args=()
ttl=15m
while [ $# -gt 0 ]; do
  case $1 in
    --ttl) ttl=$2; shift 2 ;;
    --product|--reason) args+=("$1" "$2"); shift 2 ;;
    --help|-h) usage 0 ;;
    *) echo "unknown option $1" >&2; usage 2 ;;
  esac
done
flashctl block "$scope" "$value" --ttl "$ttl" "${args[@]}"
