#!/usr/bin/env bash
# `leadpulse replay`: --strict stops at the first rejected line of any kind and applies nothing
# after it; rejected lines are reported in line order; --state-out prints scores exactly.
#
#   LP_BIN=build/leadpulse LP_SOURCE_DIR=. bash tests/cli/test_replay_strict.sh
#
# Properties checked (with config/rules.yaml):
# - for a rejection of each kind (JSON syntax, a missing field, an activity type the model does
#   not define, ts 0, an unknown feedback outcome) on line K of a file whose later lines would
#   qualify a lead: `replay --strict` exits 1, reports `line K:` as its first and only rejection,
#   and its stdout and --state-out are byte-identical to a plain replay of lines 1..K-1;
# - without --strict, rejections of every kind come on stderr in increasing line order, and the
#   lines after them are applied;
# - --state-out prints each score in the shortest form that reads back as the same double: a
#   lead whose score is 8 + 8 * 2^(-1/30) (two content downloads a day apart) reads back equal
#   to that value computed here (to 1e-12: exp2 and pow may differ in the last bit), printed with
#   all its digits (a %.6f form would show 15.817279 and a lead at 99.99999998 as 100.000000).
set -euo pipefail

: "${LP_BIN:?set LP_BIN to the leadpulse binary}"
: "${LP_SOURCE_DIR:?set LP_SOURCE_DIR to the repository root}"
RULES="$LP_SOURCE_DIR/config/rules.yaml"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

D0=1772409600000 # 2026-03-02T00:00:00Z
H=3600000
ev() { # kind id lead ts extra-json
    printf '{"kind":"%s","event_id":"%s","lead_id":"%s","ts":%s%s}\n' "$1" "$2" "$3" "$4" "$5"
}

# Lines 1-2: a profile that passes the fit gate and one demo request; lines 4-6: two more demo
# requests and a form fill that take lead q over the MQL threshold (40+40+40+20 > 100).
head_lines() {
    ev profile p1 q "$D0" ',"seniority":"vp","industry":"software","company_size":500,"region":"emea"'
    ev engagement e1 q "$((D0 + H))" ',"type":"demo_request"'
}
tail_lines() {
    ev engagement e2 q "$((D0 + 2 * H))" ',"type":"demo_request"'
    ev engagement e3 q "$((D0 + 3 * H))" ',"type":"demo_request"'
    ev engagement e4 q "$((D0 + 4 * H))" ',"type":"form_fill"'
}

declare -A BAD=(
    [syntax]='{"kind":"engagement","event_id":"b1","lead_id":"q"'
    [missing]='{"kind":"engagement","event_id":"b1","ts":1772409600000,"type":"web_visit"}'
    [type]="$(ev engagement b1 q "$((D0 + H + 1))" ',"type":"fax_received"')"
    [ts0]="$(ev engagement b1 q 0 ',"type":"web_visit"')"
    [outcome]="$(ev feedback b1 q "$((D0 + H + 1))" ',"outcome":"maybe"')"
)

# The full file qualifies q; check that first, or the strict checks below would prove nothing.
{ head_lines; tail_lines; } >"$TMP/good.jsonl"
"$LP_BIN" replay --rules "$RULES" "$TMP/good.jsonl" >"$TMP/good.out" 2>/dev/null
grep -q '"kind":"qualified"' "$TMP/good.out" || fail "the test data does not qualify lead q"

head_lines >"$TMP/cut.jsonl"
"$LP_BIN" replay --rules "$RULES" --state-out "$TMP/cut.state" "$TMP/cut.jsonl" \
    >"$TMP/cut.out" 2>/dev/null

for kind in "${!BAD[@]}"; do
    { head_lines; printf '%s\n' "${BAD[$kind]}"; tail_lines; } >"$TMP/$kind.jsonl"
    set +e
    "$LP_BIN" replay --rules "$RULES" --strict --state-out "$TMP/$kind.state" "$TMP/$kind.jsonl" \
        >"$TMP/$kind.out" 2>"$TMP/$kind.err"
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "$kind: --strict exit status $rc, want 1"
    lines=$(grep -c '^line ' "$TMP/$kind.err" || true)
    [ "$lines" -eq 1 ] || fail "$kind: $lines rejections reported, want 1: $(cat "$TMP/$kind.err")"
    grep -q '^line 3: ' "$TMP/$kind.err" || fail "$kind: first rejection is not line 3"
    cmp -s "$TMP/$kind.out" "$TMP/cut.out" ||
        fail "$kind: --strict printed other hand-offs than lines 1-2 alone: $(cat "$TMP/$kind.out")"
    cmp -s "$TMP/$kind.state" "$TMP/cut.state" ||
        fail "$kind: --strict state differs from lines 1-2 alone"
done
echo "ok: --strict stops at the first rejected line of every kind (${!BAD[*]})"

# Without --strict: every kind of rejection, interleaved with good lines, in line order.
{
    head_lines                 # 1-2
    printf '%s\n' "${BAD[type]}"     # 3: scorer
    printf '%s\n' "${BAD[syntax]}"   # 4: decoder
    printf '%s\n' "${BAD[ts0]}"      # 5: engine
    printf '%s\n' "${BAD[missing]}"  # 6: decoder
    printf '%s\n' "${BAD[outcome]}"  # 7: decoder or scorer
    tail_lines                 # 8-10
} >"$TMP/mixed.jsonl"
"$LP_BIN" replay --rules "$RULES" "$TMP/mixed.jsonl" >"$TMP/mixed.out" 2>"$TMP/mixed.err"
got=$(grep '^line ' "$TMP/mixed.err" | sed -E 's/^line ([0-9]+):.*/\1/' | tr '\n' ' ')
[ "$got" = "3 4 5 6 7 " ] || fail "rejections reported as lines '$got', want '3 4 5 6 7 '"
grep -q '"kind":"qualified"' "$TMP/mixed.out" || fail "lines after the rejections were not applied"
grep -q ' 5 rejected lines' "$TMP/mixed.err" || fail "summary: $(tail -1 "$TMP/mixed.err")"
echo "ok: rejections in line order, later lines applied"

# --state-out precision.
{
    ev engagement c1 s "$((D0 + 34 * H))" ',"type":"content_download"'
    ev engagement c2 s "$((D0 + 58 * H))" ',"type":"content_download"'
} >"$TMP/prec.jsonl"
"$LP_BIN" replay --rules "$RULES" --state-out "$TMP/prec.state" "$TMP/prec.jsonl" >/dev/null 2>&1
python3 - "$TMP/prec.state" <<'EOF' || fail "state-out score is not exact"
import json, sys
state = {json.loads(l)["lead_id"]: json.loads(l) for l in open(sys.argv[1])}
want = 8 * 2 ** (-1 / 30) + 8          # the first download decayed by one day, plus the second
got = state["s"]["score"]
if abs(got - want) > 1e-12 * want:
    sys.exit(f"score {got!r}, want {want!r}")
text = open(sys.argv[1]).read().split('"score":')[1].split(",")[0]
if len(text.replace(".", "")) < 15:
    sys.exit("score printed with too few digits: " + text)
print(f"ok: state-out score {got!r} reads back as 8 + 8*2^(-1/30) = {want!r}")
EOF

# --state-out is JSON whatever the lead id holds (quotes, backslashes).
ev engagement q1 'a\"b\\c' "$D0" ',"type":"demo_request"' >"$TMP/quote.jsonl"
"$LP_BIN" replay --rules "$RULES" --state-out "$TMP/quote.state" "$TMP/quote.jsonl" >/dev/null 2>&1
python3 -c 'import json,sys; s=json.loads(open(sys.argv[1]).read()); assert s["lead_id"] == "a\"b\\c", s' \
    "$TMP/quote.state" || fail "state-out of a lead id with a quote is not JSON: $(cat "$TMP/quote.state")"
echo "ok: state-out escapes lead ids"
