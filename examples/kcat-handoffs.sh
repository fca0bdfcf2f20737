#!/usr/bin/env bash
# Watch leadpulse hand-offs with kcat.
#
#   examples/kcat-handoffs.sh [--decode] [--follow] [BROKERS] [TOPIC...]
#       BROKERS: default $LP_KAFKA_BROKERS or localhost:9092; TOPIC: default leads.mql leads.stale
#       leads.erased
#
#   (no option)  key, headers and the raw value of every record so far, then exit
#   --decode     decode each value with the schemas (schemas/*.avsc) through
#                examples/handoff_decode.py: one JSON line per hand-off, as handoff-consumer
#                prints it (schema ids 4, 5 and 6 unless LP_ID_QUALIFIED / LP_ID_STALE /
#                LP_ID_ERASED say otherwise)
#   --follow     do not stop at the end of the topics: print hand-offs as they arrive (a
#                throw-away consumer group reads every topic from its beginning)
#
# The value is Avro with Confluent framing (magic byte 0, 4-byte schema id, Avro binary). kcat
# decodes Avro only through a Schema Registry (`-s value=avro -r http://registry:8081`, the ids of
# schema_id.qualified / schema_id.stale / schema_id.erased registered with
# schemas/LeadQualified.avsc, LeadStale.avsc and LeadErased.avsc), and only when built with Avro
# support: Debian 12's kcat 1.7.1 is not (`kcat -V` lists no "avro"). Hence --decode, which needs
# only Python 3 and the .avsc files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
decode=0
follow=0
while [ $# -gt 0 ]; do
    case "$1" in
        --decode) decode=1 ;;
        --follow) follow=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "kcat-handoffs.sh: unknown option '$1'" >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
brokers="${1:-${LP_KAFKA_BROKERS:-localhost:9092}}"
[ $# -gt 0 ] && shift
topics=("$@")
[ ${#topics[@]} -gt 0 ] || topics=(leads.mql leads.stale leads.erased)

if [ "$decode" = 1 ]; then
    # Header line "<topic> <partition> <offset> <key length> <value length>", then the key and
    # value bytes exactly: binary-safe, whatever bytes the Avro value holds.
    format='%t %p %o %K %S\n%k%s'
else
    # %h: headers (event_id, event_type, model_id, model_version; dead letters: reason,
    # source_topic, source_partition, source_offset); %s: the raw value (hexdump it if needed).
    format='%t [%p] @%o  key=%k  ts=%T\n  headers: %h\n  value (%S bytes): %s\n\n'
fi

consume() {
    if [ "$follow" = 1 ]; then
        # A balanced consumer follows several topics at once; a fresh group starts at the
        # beginning (auto.offset.reset) and commits nothing worth keeping.
        kcat -b "$brokers" -G "kcat-handoffs-$$" -X auto.offset.reset=earliest \
            -X enable.auto.commit=false -q -u -f "$format" "${topics[@]}"
    else
        for topic in "${topics[@]}"; do
            # -e: stop at the end of the topic; -o beginning: from the first record.
            kcat -C -b "$brokers" -t "$topic" -o beginning -e -q -u -f "$format"
        done
    fi
}

if [ "$decode" = 1 ]; then
    consume | python3 "$here/handoff_decode.py" --schemas "$here/../schemas" \
        --id-qualified "${LP_ID_QUALIFIED:-4}" --id-stale "${LP_ID_STALE:-5}" \
        --id-erased "${LP_ID_ERASED:-6}"
else
    consume
fi
