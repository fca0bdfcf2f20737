#!/usr/bin/env bash
# `leadpulse repartition`: its command line, without servers (the work itself is unit-tested in
# tests/unit/test_engine_repartition.c and end to end in tests/integration/test_repartition.py).
#
#   LP_BIN=build/leadpulse LP_SOURCE_DIR=. bash tests/cli/test_repartition_args.sh
#
# - --help prints the usage on stdout and exits 0; `leadpulse --help` lists the command;
# - a missing or shrinking count, an unknown partitioner and extra arguments exit 2 with a
#   message, before any configuration is read;
# - an unreachable Redis exits 1 with a message naming it (nothing to change, nothing changed).
set -euo pipefail

: "${LP_BIN:?set LP_BIN to the leadpulse binary}"
: "${LP_SOURCE_DIR:?set LP_SOURCE_DIR to the repository root}"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

expect() { # expect STATUS PATTERN ARGS...: exit status and a pattern in stdout+stderr
    local want=$1 pattern=$2 out status
    shift 2
    set +e
    out=$("$LP_BIN" "$@" 2>&1)
    status=$?
    set -e
    [ "$status" = "$want" ] || fail "leadpulse $*: exit $status, want $want: $out"
    grep -q -- "$pattern" <<<"$out" || fail "leadpulse $*: no '$pattern' in: $out"
}

expect 0 "usage: leadpulse repartition" repartition --help
expect 0 "repartition" --help
expect 2 "give --from N --to M" repartition
expect 2 "give --from N --to M" repartition --from 3
expect 2 "only grows" repartition --from 6 --to 3
expect 2 "only grows" repartition --from 3 --to 3
expect 2 "only grows" repartition --from 0 --to 3
expect 2 "nothing else" repartition --from 3 --to 6 extra
expect 2 "crc32 or murmur2" repartition --from 3 --to 6 --partitioner fnv
expect 2 "usage" repartition --from 3 --to 6 --bogus

cd "$LP_SOURCE_DIR"
port=1 # nothing listens on port 1
LEADPULSE_REDIS_URL="redis://127.0.0.1:$port" LEADPULSE_REDIS_TIMEOUT_MS=500 \
    expect 1 "redis" repartition --config config/leadpulse.yaml --from 3 --to 6 --skip-kafka-check
echo "ok: repartition command line"
