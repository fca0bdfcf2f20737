#!/usr/bin/env bash
# Watch leadpulse hand-offs with kcat: key, headers and the raw record of each.
#
#   examples/kcat-handoffs.sh [BROKERS] [TOPIC...]      (default: $LP_KAFKA_BROKERS or
#                                                         localhost:9092; leads.mql leads.stale)
#
# The value is Avro with Confluent framing (magic byte 0, 4-byte schema id, Avro binary), so kcat
# prints it as bytes. kcat 1.7 decodes Avro only through a Schema Registry:
#
#   kcat -C -b BROKERS -t leads.mql -s value=avro -r http://registry:8081 \
#        -f 'key=%k event_id=%h\n%s\n'
#
# (the worker writes the ids of schema_id.qualified / schema_id.stale; register
# schemas/LeadQualified.avsc and LeadStale.avsc under those ids). Without a registry, decode
# with examples/handoff_consumer.c (handoff-consumer), which reads the .avsc files.
set -euo pipefail

brokers="${1:-${LP_KAFKA_BROKERS:-localhost:9092}}"
[ $# -gt 0 ] && shift
topics=("$@")
[ ${#topics[@]} -gt 0 ] || topics=(leads.mql leads.stale)

for topic in "${topics[@]}"; do
    # -e: stop at the end of the topic; -o beginning: from the first record. %h prints the
    # headers (event_id, event_type, model_id, model_version; dead letters: reason,
    # source_topic, source_partition, source_offset); %s the raw value (hexdump it if needed).
    kcat -C -b "$brokers" -t "$topic" -o beginning -e -q \
        -f '%t [%p] @%o  key=%k  ts=%T\n  headers: %h\n  value (%S bytes): %s\n\n'
done
