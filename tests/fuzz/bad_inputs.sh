#!/usr/bin/env bash
# Verifies the replay-level and rules-file rows of docs/bad-inputs.md through `leadpulse replay`:
# each bad line is rejected with the documented reason and the others still score; each bad
# rules file is refused at load with the documented message. Run by ctest (fuzz_bad_inputs);
# by hand: LP_BIN=build/leadpulse tests/fuzz/bad_inputs.sh
set -euo pipefail

bin="${LP_BIN:?set LP_BIN to the leadpulse binary}"
rules="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/config/rules.yaml"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# Expects `needle` (fixed string) in file.
expect() {
    grep -qF -- "$2" "$1" || fail "$3: want \"$2\" in: $(tr '\n' '|' <"$1")"
}

# ---- events (JSON lines) ----
T=1795600800000
{
    echo '{"event_id":"ok1","lead_id":"l1","ts":'$T',"type":"demo_request"}'
    echo '{"event_id":"ok1","lead_id":"l1","ts":'$T',"type":"demo_request"}'
    echo '{"event_id":"b1","lead_id":"l1","ts":0,"type":"web_visit"}'
    echo '{"event_id":"b2","lead_id":"l1","ts":'$T',"type":"page_view"}'
    echo 'not json'
    echo '{"event_id":"b3","lead_id":"","ts":1,"type":"web_visit"}'
    printf '{"event_id":"b4","lead_id":"l\xff","ts":1,"type":"web_visit"}\n'
    echo '{"event_id":"b5","lead_id":"l1","ts":-1,"type":"web_visit"}'
    echo '{"event_id":"b6","lead_id":"l1","ts":253402300800000,"type":"web_visit"}'
    echo '{"event_id":"b7","lead_id":"l1","ts":"1969-12-31T23:59:59Z","type":"web_visit"}'
    echo '{"event_id":"b8","lead_id":"l1","ts":'$T',"company_size":-5}'
    echo '{"event_id":"b9","lead_id":"l1","ts":'$T',"company_size":NaN}'
    echo '{"event_id":"b10","lead_id":"l1","ts":'$T',"outcome":"maybe"}'
    echo '{"event_id":"b11","lead_id":"l1","ts":'$T',"outcome":"rejected","reason":"bored"}'
    printf '{"event_id":"b12","lead_id":"%s","ts":1,"type":"web_visit"}\n' "$(printf 'x%.0s' {1..65})"
    echo '{"event_id":"b13","lead_id":"l1","ts":'$T',"type":"web_visit","type":"form_fill"}'
    echo '{"event_id":"ok2","lead_id":"l1","ts":'$((T + 1000))',"type":"form_fill"}'
} >"$work/events.jsonl"
"$bin" replay --rules "$rules" --state-out "$work/state.jsonl" "$work/events.jsonl" >"$work/out" 2>"$work/err" ||
    fail "replay exited with $?"
expect "$work/err" "line 3: timestamp 0 is not after the Unix epoch" "ts 0"
expect "$work/err" "line 4: unknown activity type" "unknown activity"
expect "$work/err" "line 5: expected an object" "not JSON"
expect "$work/err" "line 6: lead_id is empty" "empty lead_id"
expect "$work/err" "line 7: key \"lead_id\": invalid UTF-8 in string" "non-UTF-8"
expect "$work/err" "line 8: key \"ts\": integer out of range" "negative ts"
expect "$work/err" "line 9: key \"ts\": integer out of range" "ts after 9999"
expect "$work/err" "line 10: key \"ts\"" "ts before 1970"
expect "$work/err" "line 11: key \"company_size\": integer out of range" "negative size"
expect "$work/err" "line 12: key \"company_size\": expected a number" "NaN size"
expect "$work/err" "line 13: key \"outcome\": unknown value \"maybe\"" "unknown outcome"
expect "$work/err" "line 14: key \"reason\": unknown value" "unknown reason"
expect "$work/err" "line 15: key \"lead_id\": string of 65 bytes exceeds the limit of 64" "long id"
expect "$work/err" "line 16: key \"type\": duplicate key" "duplicate key"
expect "$work/err" "1 duplicates ignored" "duplicate event"
expect "$work/err" "14 rejected lines" "rejected count"
# The good lines still scored: 40 (demo_request, once) + 20 (form_fill), decayed for 1 s.
expect "$work/state.jsonl" '"score":59.9999' "good lines scored"

# --strict stops at the first bad line with status 1.
if "$bin" replay --rules "$rules" --strict "$work/events.jsonl" >/dev/null 2>"$work/err"; then
    fail "--strict accepted a bad line"
fi

# ---- rules files: refused at load, with file:line: key: message ----
head='model: {id: m, version: "1"}'
rules_case() { # name, expected message part, yaml body
    printf '%s\n%s' "$head" "$3" >"$work/$1.yaml"
    if "$bin" replay --rules "$work/$1.yaml" "$work/events.jsonl" >/dev/null 2>"$work/err"; then
        fail "rules $1 accepted"
    fi
    expect "$work/err" "$2" "rules $1"
}
rules_case inf "$work/inf.yaml:3: activities.a: must be a number" \
    $'score: {half_life: 30d, mql: 100}\nactivities: {a: .inf}\n'
rules_case nan "$work/nan.yaml:2: score.mql: must be a number" \
    $'score: {half_life: 30d, mql: .nan}\nactivities: {a: 1}\n'
rules_case zero_half_life "$work/zero_half_life.yaml:2: score.half_life: must be longer than 0" \
    $'score: {half_life: 0d, mql: 100}\nactivities: {a: 1}\n'
rules_case rearm "score.rearm: must be below score.mql" \
    $'score: {half_life: 30d, mql: 100, rearm: 100}\nactivities: {a: 1}\n'
rules_case typo "$work/typo.yaml:2: scroe: unknown key" \
    $'scroe: {half_life: 30d, mql: 100}\nactivities: {a: 1}\n'
rules_case dup_activity "activities.a: activity defined twice (first at line 4)" \
    $'score: {half_life: 30d, mql: 100}\nactivities:\n  a: 1\n  a: 2\n'
rules_case bad_name "contains a space or control character" \
    $'score: {half_life: 30d, mql: 100}\nactivities: {"Web Visit": 1}\n'
rules_case alias "aliases (*name) are not supported" \
    $'score: &s {half_life: 30d, mql: 100}\nother: *s\nactivities: {a: 1}\n'
rules_case two_docs "more than one YAML document" \
    $'score: {half_life: 30d, mql: 100}\nactivities: {a: 1}\n---\nx: 1\n'
rules_case syntax "fix the YAML syntax" \
    $'score: {half_life: 30d, mql: 100\nactivities: {a: 1}\n'
printf '%s\nscore: {half_life: 30d, mql: 100}\nactivities: {"\xff": 1}\n' "$head" >"$work/utf8.yaml"
if "$bin" replay --rules "$work/utf8.yaml" "$work/events.jsonl" >/dev/null 2>"$work/err"; then
    fail "rules with non-UTF-8 accepted"
fi
expect "$work/err" "utf8.yaml:1: (yaml): invalid leading UTF-8 octet" "rules non-UTF-8"
: >"$work/empty.yaml"
if "$bin" replay --rules "$work/empty.yaml" "$work/events.jsonl" >/dev/null 2>"$work/err"; then
    fail "empty rules accepted"
fi
expect "$work/err" "the file is empty" "rules empty"

if [ "$failures" -gt 0 ]; then
    echo "$failures bad-input checks failed" >&2
    exit 1
fi
echo "bad-input checks passed"
