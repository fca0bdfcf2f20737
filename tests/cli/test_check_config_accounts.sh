#!/usr/bin/env bash
# The `accounts:` section of the rules file through the CLI (docs/rules.md "accounts").
#
#   LP_BIN=build/leadpulse LP_SOURCE_DIR=. bash tests/cli/test_check_config_accounts.sh
#
# Properties checked:
# - `check-config` accepts config/rules.yaml (accounts off), and the same file with its
#   commented-out `accounts:` example uncommented (and says the section is not evaluated yet);
# - it refuses a bad accounts section with exit 1 and `file:line: key: message`;
# - the section does not change lead scoring: `replay` of examples/events.jsonl prints the same
#   lead hand-offs and the same lead state with and without it, and with it account hand-offs
#   (AccountQualified) besides, whose members are leads of the input.
set -euo pipefail

: "${LP_BIN:?set LP_BIN to the leadpulse binary}"
: "${LP_SOURCE_DIR:?set LP_SOURCE_DIR to the repository root}"
cd "$LP_SOURCE_DIR"
RULES="$LP_SOURCE_DIR/config/rules.yaml"
CONFIG="$LP_SOURCE_DIR/config/leadpulse.yaml"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# config/rules.yaml with the example block (from `# accounts:` to the end) uncommented.
cp "$RULES" "$TMP/with-accounts.yaml"
sed -n '/^# accounts:$/,$p' "$RULES" | sed 's/^# //' >>"$TMP/with-accounts.yaml"
grep -q '^accounts:$' "$TMP/with-accounts.yaml" || fail "no \`# accounts:\` example in $RULES"

check() { # rules-file -> stdout in $TMP/out, stderr in $TMP/err, exit status echoed
    local rc=0
    LEADPULSE_RULES_PATH="$1" "$LP_BIN" check-config --config "$CONFIG" >"$TMP/out" 2>"$TMP/err" ||
        rc=$?
    echo "$rc"
}

[ "$(check "$RULES")" = 0 ] || fail "check-config refuses $RULES: $(cat "$TMP/err")"
grep -q "^# rules: $RULES (model b2b-default version 2026.1, 11 activities)$" "$TMP/out" ||
    fail "check-config summary: $(tail -n 1 "$TMP/out")"

[ "$(check "$TMP/with-accounts.yaml")" = 0 ] ||
    fail "check-config refuses the uncommented example: $(cat "$TMP/err")"
grep -q "11 activities; accounts: valid)$" "$TMP/out" ||
    fail "check-config summary with accounts: $(tail -n 1 "$TMP/out")"

BAD="$LP_SOURCE_DIR/tests/unit/data/rules/bad_accounts.yaml"
[ "$(check "$BAD")" = 1 ] || fail "check-config accepts $BAD"
want="leadpulse check-config: $BAD:18: accounts.mqa.required_roles[1][0]: unknown role \"aprover\""
grep -qF -- "$want" "$TMP/err" || fail "want \"$want\", got: $(cat "$TMP/err")"

sed 's/^  mqa:$/  mqa:\n    rearm_below: 100/' "$TMP/with-accounts.yaml" >"$TMP/rearm.yaml"
[ "$(check "$TMP/rearm.yaml")" = 1 ] || fail "check-config accepts accounts.mqa.rearm_below"
grep -qE -- "rearm.yaml:[0-9]+: accounts.mqa.rearm_below: unknown key; the key is \`rearm\`" \
    "$TMP/err" || fail "rearm_below: $(cat "$TMP/err")"

for r in "$RULES" "$TMP/with-accounts.yaml"; do
    n=$(basename "$r" .yaml)
    "$LP_BIN" replay --rules "$r" --state-out "$TMP/$n.state" examples/events.jsonl \
        >"$TMP/$n.out" 2>"$TMP/$n.err" || fail "replay with $r exited $?: $(tail -n 3 "$TMP/$n.err")"
done
[ -s "$TMP/rules.out" ] || fail "replay printed no hand-offs"
grep -v '"kind":"account_' "$TMP/with-accounts.out" >"$TMP/with-accounts.leads" || true
cmp -s "$TMP/rules.out" "$TMP/with-accounts.leads" || fail "accounts changed the lead hand-offs"
grep -q '"kind":"account_qualified"' "$TMP/with-accounts.out" ||
    fail "no account hand-off with accounts on: $(tail -n 2 "$TMP/with-accounts.err")"
grep -q '^replay: accounts: ' "$TMP/with-accounts.err" || fail "no accounts summary line"
cmp -s "$TMP/rules.state" "$TMP/with-accounts.state" || fail "accounts changed the lead state"
echo "ok: check-config and replay with accounts"
