#!/bin/sh
# Writes Redis's ACL file from the passwords in the environment, then starts Redis.
#   api     the admission script, the hand-off and the waiting room: only the namespace's
#           sale, registry, order-status and violation keys, only the commands they use
#   worker  only order-status keys (marks orders persisted): it can never touch stock
#   ops     flashctl: the whole namespace, no dangerous or admin commands
#   default disabled
# `redis-acl.sh --print` prints the file instead (the tests load it into a real Redis).
set -eu
ns=${REDIS_NAMESPACE:-fs}
acl() {
  cat <<ACL
user default off
user api on >${REDIS_API_PASSWORD} resetkeys ~${ns}:{p:* ~${ns}:sales ~${ns}:rooms ~${ns}:order:* ~${ns}:viol:* resetchannels -@all +ping +auth +hello +eval +evalsha +script|load +time +exists +hget +hmget +hgetall +hset +hsetnx +hincrby +hkeys +expire +pexpireat +get +mget +set +smembers +zadd +zrem +zcard +zcount +zrange +zremrangebyscore +zrevrangebyscore +wait +xadd +xclaim +xautoclaim +xgroup|create +xack +xdel +xlen +xpending +xrange
user worker on >${REDIS_WORKER_PASSWORD} resetkeys ~${ns}:order:* resetchannels -@all +ping +auth +hello +hset +expire
user ops on >${REDIS_OPS_PASSWORD} resetkeys ~${ns}:* resetchannels +@all -@dangerous -@admin +scan
ACL
}
if [ "${1:-}" = --print ]; then
  acl
  exit 0
fi
acl > /tmp/users.acl
exec redis-server --aclfile /tmp/users.acl --appendonly yes --appendfsync everysec --dir /data
