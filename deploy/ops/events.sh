#!/usr/bin/env bash
# events.sh [--dlq] [--topic TOPIC] [--max N] [--timeout SECONDS] [--from-beginning]
#
# Prints the events of the order topic (or, with --dlq, of its dead-letter topic) with
# Apache Kafka's own console consumer: one line per event with its time, partition,
# offset, headers (a dead letter's `reason` and `source`), key (the order id) and the
# event as JSON. With --from-beginning it reads from the oldest event kept; without, it
# waits for events published after it starts. It stops after --max events (default 20)
# or --timeout seconds without a new one (default 10). It reads in a throwaway consumer
# group of its own, never the workers', so it cannot disturb them.
#
# Reads KAFKA_BROKERS, KAFKA_TOPIC and KAFKA_DLQ_TOPIC (defaults 127.0.0.1:9092, orders,
# orders.dlq). Uses `kafka-console-consumer.sh` from PATH when there is one (Apache Kafka
# 4.0 or newer), else the jars deploy/local/up.sh fetched.
#
#   deploy/ops/events.sh --dlq --from-beginning --max 50
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
topic=${KAFKA_TOPIC:-orders} max=20 timeout=10 from=()
while [ $# -gt 0 ]; do
  case $1 in
    --dlq) topic=${KAFKA_DLQ_TOPIC:-orders.dlq} ;;
    --topic | --max | --timeout)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; usage 2; }
      case $1 in --topic) topic=$2 ;; --max) max=$2 ;; --timeout) timeout=$2 ;; esac
      shift ;;
    --from-beginning) from=(--from-beginning) ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
  shift
done
[[ $max =~ ^[0-9]+$ && $timeout =~ ^[0-9]+$ ]] || { echo "--max and --timeout take whole numbers" >&2; exit 2; }

brokers=${KAFKA_BROKERS:-127.0.0.1:9092} # port-of: kafka (this script runs without lib.sh, in the image too)
first=${brokers%%,*}
(exec 3<>"/dev/tcp/${first%:*}/${first##*:}") 2>/dev/null ||
  { echo "no Kafka broker answers at $first (KAFKA_BROKERS)" >&2; exit 1; }
args=(--bootstrap-server "$brokers" --topic "$topic" "${from[@]}"
  --max-messages "$max" --timeout-ms $((timeout * 1000))
  --formatter-property print.timestamp=true --formatter-property print.partition=true
  --formatter-property print.offset=true --formatter-property print.headers=true
  --formatter-property print.key=true)
if command -v kafka-console-consumer.sh >/dev/null; then
  consume() { kafka-console-consumer.sh "$@"; }
else
  . "$HERE/../local/lib.sh"
  [ -f "$KAFKA_HOME/libs/.complete" ] ||
    { echo "no Kafka tools: put kafka-console-consumer.sh on PATH or run deploy/local/up.sh" >&2; exit 127; }
  consume() { kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer "$@"; }
fi
consume "${args[@]}"
