#!/usr/bin/env bash
# events.sh [--dlq] [--topic TOPIC] [--max N] [--timeout SECONDS] [--from-beginning]
#
# Prints the events of the order topic (or, with --dlq, of its dead-letter topic) with
# Apache Kafka's own console consumer: one line per event with its time, partition,
# offset, headers (a dead letter's `reason` and `source`), key (the order id) and the
# event as JSON. Reads the newest events unless --from-beginning; stops after --max
# events (default 20) or --timeout seconds without a new one (default 10). It never joins
# the workers' consumer group and commits nothing, so it cannot disturb them.
#
# Reads KAFKA_BROKERS, KAFKA_TOPIC and KAFKA_DLQ_TOPIC (defaults 127.0.0.1:9092, orders,
# orders.dlq). Uses `kafka-console-consumer.sh` from PATH when there is one (a Kafka
# installation), else the jars deploy/local/up.sh fetched.
#
#   deploy/ops/events.sh --dlq --from-beginning --max 50
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
topic=${KAFKA_TOPIC:-orders} max=20 timeout=10 from=()
while [ $# -gt 0 ]; do
  case $1 in
    --dlq) topic=${KAFKA_DLQ_TOPIC:-orders.dlq} ;;
    --topic) topic=$2; shift ;;
    --max) max=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --from-beginning) from=(--from-beginning) ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
  shift
done
[[ $max =~ ^[0-9]+$ && $timeout =~ ^[0-9]+$ ]] || { echo "--max and --timeout take whole numbers" >&2; exit 2; }

args=(--bootstrap-server "${KAFKA_BROKERS:-127.0.0.1:9092}" --topic "$topic" "${from[@]}"
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
