#!/usr/bin/env bash
# End-to-end replay over a tiny hand-computed fixture.
#
#   LP_BIN=build/leadpulse LP_SOURCE_DIR=. bash tests/cli/test_replay_fixture.sh
#
# Rules: tests/cli/data/fixture_rules.yaml (half-life 1 day, warm 20, mql 50, rearm 30, min grade
# C, SLA 12h + one reminder after 6h, inactivity 10d -> responder, recycle resets the score).
# Events: tests/cli/data/fixture_events.jsonl (25 lines, 4 leads). Day N below means
# 2026-03-02T00:00:00Z + N days (d0 = 1772409600000 ms); h = half-life = 1 day, so a
# contribution of p points is worth p * 2^-(elapsed days) later.
#
# The expected values are computed by hand from the rules, NOT copied from the binary:
#
# lead-a (alice): decayed qualification, duplicate ignored, SLA breach + reminder, cooling,
#   inactivity.
#   line 1  d0 00:00 profile seniority vp (30) + company_size 500 in [100,1000] (20) = 50 -> A
#   line 2  d0 01:00 web_visit /pricing/enterprise: url_prefix /pricing -> 30.  score 30 (warm)
#   line 11 d1 01:00 demo_request 40: 30 * 2^-1 + 40 = 15 + 40 = 55 >= 50, grade A <= C
#           -> LeadQualified #1, score 55, reasons demo_request 40, web_visit 15, other 0,
#              sla_deadline = d1 01:00 + 12h = d1 13:00
#   line 12 the same event_id e-a3 again -> ignored (else the score would be 95 below)
#   line 13 truncated JSON -> "line 13: ..." on stderr, counted as rejected
#   d1 13:00 SLA breached (12h = 0.5 day after the MQL): 55 * 2^-0.5 = 38.890872965...
#            demo 40 * 2^-0.5 = 28.284271247..., web 15 * 2^-0.5 = 10.606601717...; stage mql
#   d1 19:00 reminder 1 (6h later, 0.75 day after the MQL): 55 * 2^-0.75 = 32.703195662...
#            demo 40 * 2^-0.75 = 23.784142300..., web 15 * 2^-0.75 = 8.919053362...
#            (max_reminders 1: no second reminder)
#   cooling: 55 * 2^-x = 30 (rearm) at x = log2(55/30) = 0.874469118 day = 75554131.79 ms
#            -> LeadStale cooled at d1 01:00 + 75554132 ms (the next whole ms), score 30,
#            demo 40 * 30/55 = 21.818181..., web 15 * 30/55 = 8.181818...; 30 >= warm 20 -> warm
#   d11 01:00 (10 days after the last engagement, the demo request; only with --until past it):
#            inactive, score 55 * 2^-10 = 0.0537109375 (demo 40/1024 = 0.0390625,
#            web 15/1024 = 0.0146484375), stage -> responder
#
# lead-b (bob): machine activity and caps; a near miss by decay; accepted in time.
#   line 3  d0 02:00 profile director (30) + company_size 5000 (outside the range, 0) = 30 -> B
#   line 14 d2 09:00 email_open flagged machine -> 0, not counted against the cap
#   line 15 d2 09:00 email_open 4 s after the send (< click_within 10 s) -> machine, 0
#   line 16-18 d2 09:00 three human opens: 5 + 5 + 0 (cap 2 per day) = 10
#   line 19 fax_received: unknown activity type -> dead letter "line 19: unknown activity type"
#   line 20 d2 10:00 demo_request: 10 * 2^-(1/24) + 40 = 9.715319411... + 40 = 49.715... < 50
#   line 21 d2 10:00 web_visit /blog/streaming 10: 59.715319411... >= 50 -> LeadQualified #1,
#           grade B, reasons demo_request 40, web_visit 10, email_open 9.715319411..., other 0,
#           sla_deadline d2 22:00
#   line 22 d2 20:00 accepted (within the SLA) -> SQL: no SLA breach, no cooling, no inactivity
#
# lead-c (carol): disqualified, never qualifies.
#   line 4  d0 03:00 profile email carol@Rival.Example: domain rival.example (case-insensitive)
#           -> disqualified (competitor); fit vp 30 + size 300 (20) = 50 -> A all the same
#   line 5-6 d0 04:00 demo_request 40 + web_visit /pricing 30 = 70 >= 50, but disqualified:
#           no LeadQualified, ever; final state: score 70, stage disqualified, 0 qualifications
#
# lead-d (dave): qualified by a profile update (fit gate), recycled, re-engages, re-qualifies.
#   line 7-8 d0 05:00 demo_request 40 + web_visit /pricing 30 = 70, but no profile: fit 0 -> D,
#           below the gate C: no MQL
#   line 9  d0 11:00 profile manager (0) + company_size 200 (20) = 20 -> C: the gate passes at
#           70 * 2^-0.25 = 58.862749067... -> LeadQualified #1 (demo 40 * 2^-0.25 =
#           33.635856610..., web 30 * 2^-0.25 = 25.226892457...), sla_deadline d0 23:00
#   line 10 d0 15:00 recycled (timing): score reset to 0, re-armed; no SLA breach (not an MQL
#           any more), no cooling
#   line 23-24 d3 00:00 web_visit /pricing 30 + demo_request 40 = 70 -> LeadQualified #2,
#           reasons demo 40, web 30, last_reject_reason timing, sla_deadline d3 12:00
#   line 25 d3 06:00 ACCEPTED (upper case accepted too) -> SQL, within the SLA
#
# Summary: 25 lines read, 4 leads (the truncated line names none), 4 MQLs, 3 stale
# (sla_breached 2 = breach + reminder, inactive 0, cooled 1), 1 duplicate, 2 rejected lines.
set -euo pipefail

: "${LP_BIN:?set LP_BIN to the leadpulse binary}"
: "${LP_SOURCE_DIR:?set LP_SOURCE_DIR to the repository root}"
DATA="$LP_SOURCE_DIR/tests/cli/data"
RULES="$DATA/fixture_rules.yaml"
EVENTS="$DATA/fixture_events.jsonl"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# 1. The whole fixture, timers fired up to d5.
"$LP_BIN" replay --rules "$RULES" --until 2026-03-07T00:00:00Z --state-out "$TMP/state.jsonl" \
    "$EVENTS" >"$TMP/out1.jsonl" 2>"$TMP/err1.txt" ||
    fail "replay exited $? ($(cat "$TMP/err1.txt"))"
# 2. The same with --until past alice's inactivity deadline (d11 01:00).
"$LP_BIN" replay --rules "$RULES" --until 2026-03-14T00:00:00Z \
    "$EVENTS" >"$TMP/out2.jsonl" 2>"$TMP/err2.txt" || fail "replay (until d12) exited $?"
# 3. Only the first 12 lines (up to alice's MQL at d1 01:00): the event-time watermark stops at
#    d1 01:00, so the SLA breach due at d1 13:00 fires only through --until, and only once the
#    deadline is reached.
head -n 12 "$EVENTS" >"$TMP/head.jsonl"
"$LP_BIN" replay --rules "$RULES" "$TMP/head.jsonl" >"$TMP/out3a.jsonl" 2>/dev/null ||
    fail "replay (head, no --until) exited $?"
"$LP_BIN" replay --rules "$RULES" --until 2026-03-03T12:59:59.999Z "$TMP/head.jsonl" \
    >"$TMP/out3b.jsonl" 2>/dev/null || fail "replay (head, until 12:59:59.999) exited $?"
"$LP_BIN" replay --rules "$RULES" --until 2026-03-03T13:00:00Z "$TMP/head.jsonl" \
    >"$TMP/out3c.jsonl" 2>/dev/null || fail "replay (head, until 13:00) exited $?"
# 4. --strict stops at the first bad line (13) with exit status 1.
set +e
"$LP_BIN" replay --strict --rules "$RULES" "$EVENTS" >"$TMP/out4.jsonl" 2>"$TMP/err4.txt"
strict_rc=$?
set -e
[ "$strict_rc" -eq 1 ] || fail "--strict: exit status $strict_rc, expected 1"
grep -q '^line 13: ' "$TMP/err4.txt" ||
    fail "--strict: no 'line 13:' report: $(cat "$TMP/err4.txt")"
if grep -q '^line 19: ' "$TMP/err4.txt"; then
    fail "--strict went on past the first bad line"
fi

python3 - "$TMP" <<'EOF'
import json, math, re, sys

tmp = sys.argv[1]
D0 = 1772409600000          # 2026-03-02T00:00:00Z
H, DAY = 3_600_000, 86_400_000
def t(day, hour=0):
    return D0 + day * DAY + hour * H

errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

def load(name):
    with open("%s/%s" % (tmp, name)) as f:
        return [json.loads(line) for line in f if line.strip()]

# The hand computation of the header, as data: (lead, kind, reason, reminder) -> expectation.
cool_ms = t(1, 1) + math.ceil(math.log2(55 / 30) * DAY)
Q, S = "qualified", "stale"
expected = {
    ("lead-d", Q, None, 1): dict(ts=t(0, 11), score=70 * 2 ** -0.25, grade="C", stage="mql",
                                 reasons=[("demo_request", 40 * 2 ** -0.25),
                                          ("web_visit", 30 * 2 ** -0.25)],
                                 sla=t(0, 23), reject=None),
    ("lead-a", Q, None, 1): dict(ts=t(1, 1), score=30 * 2 ** -1 + 40, grade="A", stage="mql",
                                 reasons=[("demo_request", 40), ("web_visit", 15)],
                                 sla=t(1, 13), reject=None),
    ("lead-b", Q, None, 1): dict(ts=t(2, 10), score=10 * 2 ** (-1 / 24) + 40 + 10, grade="B",
                                 stage="mql",
                                 reasons=[("demo_request", 40), ("web_visit", 10),
                                          ("email_open", 10 * 2 ** (-1 / 24))],
                                 sla=t(2, 22), reject=None),
    ("lead-d", Q, None, 2): dict(ts=t(3), score=70, grade="C", stage="mql",
                                 reasons=[("demo_request", 40), ("web_visit", 30)],
                                 sla=t(3, 12), reject="timing"),
    ("lead-a", S, "sla_breached", 0): dict(ts=t(1, 13), score=55 * 2 ** -0.5, grade="A",
                                           stage="mql",
                                           reasons=[("demo_request", 40 * 2 ** -0.5),
                                                    ("web_visit", 15 * 2 ** -0.5)],
                                           sla=t(1, 13), qualified_at=t(1, 1)),
    ("lead-a", S, "sla_breached", 1): dict(ts=t(1, 19), score=55 * 2 ** -0.75, grade="A",
                                           stage="mql",
                                           reasons=[("demo_request", 40 * 2 ** -0.75),
                                                    ("web_visit", 15 * 2 ** -0.75)],
                                           sla=t(1, 13), qualified_at=t(1, 1)),
    ("lead-a", S, "cooled", 0): dict(ts=cool_ms, score=30, grade="A", stage="warm",
                                     reasons=[("demo_request", 40 * 30 / 55),
                                              ("web_visit", 15 * 30 / 55)],
                                     sla=t(1, 13), qualified_at=t(1, 1)),
}
inactive = {
    ("lead-a", S, "inactive", 0): dict(ts=t(11, 1), score=55 / 1024, grade="A", stage="responder",
                                       reasons=[("demo_request", 40 / 1024),
                                                ("web_visit", 15 / 1024)],
                                       qualified_at=t(1, 1)),
}

def key(f):
    if f["kind"] == Q:
        return (f["lead_id"], Q, None, f["qualification"])
    return (f["lead_id"], S, f["reason"], f["reminder"])

def check_facts(name, facts, want):
    got = {}
    for f in facts:
        k = key(f)
        check(k not in got, "%s: %s emitted twice" % (name, k))
        got[k] = f
    check(set(got) == set(want), "%s: hand-offs %s, expected %s" %
          (name, sorted(got, key=str), sorted(want, key=str)))
    for k in set(got) & set(want):
        f, w = got[k], want[k]
        # The cooling deadline is a real number of ms: allow the ms it is rounded to either way.
        slack = 1 if k[2] == "cooled" else 0
        check(abs(f["ts"] - w["ts"]) <= slack,
              "%s %s: ts %s, expected %s" % (name, k, f["ts"], w["ts"]))
        check(abs(f["score"] - w["score"]) <= 1e-6,
              "%s %s: score %r, expected %r" % (name, k, f["score"], w["score"]))
        check(f["fit_grade"] == w["grade"], "%s %s: fit_grade %s" % (name, k, f["fit_grade"]))
        check(f["stage"] == w["stage"],
              "%s %s: stage %s, expected %s" % (name, k, f["stage"], w["stage"]))
        names = [r["activity"] for r in f["reasons"]]
        check(names == [a for a, _ in w["reasons"]],
              "%s %s: reasons %s, expected %s" % (name, k, names, [a for a, _ in w["reasons"]]))
        for r, (a, p) in zip(f["reasons"], w["reasons"]):
            check(abs(r["points"] - p) <= 1e-6, "%s %s: %s points %r, expected %r" %
                  (name, k, a, r["points"], p))
        total = sum(r["points"] for r in f["reasons"]) + f["other_points"]
        check(abs(total - f["score"]) <= 1e-9, "%s %s: reasons + other = %r != score %r" %
              (name, k, total, f["score"]))
        check(abs(f["other_points"]) <= 1e-6,
              "%s %s: other_points %r" % (name, k, f["other_points"]))
        check(f["model_id"] == "fixture" and f["model_version"] == "1", "%s %s: model" % (name, k))
        check(re.fullmatch(r"[0-9a-f]{32}", f["event_id"]) is not None,
              "%s %s: event_id %r" % (name, k, f["event_id"]))
        if "sla" in w:
            check(f["sla_deadline"] == w["sla"], "%s %s: sla_deadline %s, expected %s" %
                  (name, k, f["sla_deadline"], w["sla"]))
        if k[1] == Q:
            check(f["last_reject_reason"] == w["reject"], "%s %s: last_reject_reason %r" %
                  (name, k, f["last_reject_reason"]))
        else:
            check(f["qualified_at"] == w["qualified_at"], "%s %s: qualified_at %s" %
                  (name, k, f["qualified_at"]))
            check(f["qualification"] == 1,
                  "%s %s: qualification %s" % (name, k, f["qualification"]))
    ids = [f["event_id"] for f in facts]
    check(len(set(ids)) == len(ids), "%s: event ids not unique" % name)
    return got

def summary(name):
    text = open("%s/%s" % (tmp, name)).read()
    m = re.search(r"replay: (\d+) events read, (\d+) leads, (\d+) MQLs, (\d+) stale "
                  r"\(sla_breached (\d+), inactive (\d+), cooled (\d+)\), "
                  r"(\d+) duplicates ignored, (\d+) rejected lines", text)
    check(m is not None, "%s: no summary line in %r" % (name, text))
    return (tuple(int(x) for x in m.groups()) if m else None), text

run1 = check_facts("run1", load("out1.jsonl"), expected)
s1, err1 = summary("err1.txt")
check(s1 == (25, 4, 4, 3, 2, 0, 1, 1, 2), "run1: summary %s" % (s1,))
check(re.search(r"^line 13: ", err1, re.M) is not None, "run1: line 13 not reported: %r" % err1)
check(re.search(r"^line 19: unknown activity type", err1, re.M) is not None,
      "run1: line 19 not reported as an unknown activity type: %r" % err1)

both = dict(expected)
both.update(inactive)
run2 = check_facts("run2", load("out2.jsonl"), both)
s2, _ = summary("err2.txt")
check(s2 == (25, 4, 4, 4, 2, 1, 1, 1, 2), "run2: summary %s" % (s2,))
for k in set(run1) & set(run2):
    check(run1[k]["event_id"] == run2[k]["event_id"], "%s: event id differs between runs" % (k,))

state = {s["lead_id"]: s for s in load("state.jsonl")}
want_state = {"lead-a": ("warm", 55, t(1, 1), 1), "lead-c": ("disqualified", 70, t(0, 4), 0)}
for lead, (stage, score, ref, quals) in want_state.items():
    s = state.get(lead)
    check(s is not None and s["stage"] == stage and abs(s["score"] - score) <= 1e-6 and
          s["ref_ms"] == ref and s["qualifications"] == quals, "state %s: %r" % (lead, s))
check(state.get("lead-b", {}).get("stage") == "sql", "state lead-b: %r" % state.get("lead-b"))
check(state.get("lead-d", {}).get("stage") == "sql" and state["lead-d"]["qualifications"] == 2,
      "state lead-d: %r" % state.get("lead-d"))

head_q = {k: expected[k] for k in (("lead-d", Q, None, 1), ("lead-a", Q, None, 1))}
check_facts("head, no --until", load("out3a.jsonl"), head_q)
check_facts("head, --until 12:59:59.999", load("out3b.jsonl"), head_q)
head_sla = dict(head_q)
head_sla[("lead-a", S, "sla_breached", 0)] = expected[("lead-a", S, "sla_breached", 0)]
check_facts("head, --until 13:00", load("out3c.jsonl"), head_sla)

if errors:
    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    sys.exit(1)
print("ok: %d hand-offs checked against the hand computation" %
      (len(run1) + len(run2) + 2 + 2 + 3))
EOF
