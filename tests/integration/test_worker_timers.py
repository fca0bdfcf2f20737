#!/usr/bin/env python3
"""Issue 5: the worker's hand-off timers and sales feedback, against the real stack.

1. SLA breach fires once, at its deadline: three leads qualify; two are never accepted, the third
   is accepted as soon as its MQL is counted. With the timer clock running an hour per second,
   each LeadStale sla_breached is fired, delivered and read back once, when the worker's clock
   reaches its deadline (within one timer interval plus two of scheduling slack); the accepted
   lead gets none. The first record the worker sends to the stale topic waits for librdkafka to
   fetch the topic's metadata (~1 s = 1 h of test clock): that one is reported, not judged.
2. SIGKILL while timers are due: a clean worker applies the input (clock before every deadline);
   then workers whose clock is pinned past every deadline and reminder are SIGKILLed mid-firing,
   twice (the second after it re-sent the first one's outbox); a last one finishes. Every due
   timer fired: the distinct hand-offs equal `leadpulse replay --until T`, no event id with two
   contents; duplicate deliveries (allowed after a crash) are counted and reported.
3. Rebalance while timers are pending: two workers share the partitions; one is stopped (SIGTERM)
   before any deadline, having fired none; the survivor fires the timers of the partitions it
   took over, each once.
4. Sales feedback: rejected / recycled leads qualify again (qualification 2, last_reject_reason
   echoed); won / lost leads never qualify again, however much they engage, even when they were
   recycled before closing.

Each part gets its own topics, group and Redis prefix, and a small rules file (SLA 48h, long
inactivity). Times are in the test clock (LEADPULSE_CLOCK_OFFSET_MS / _SCALE) unless said.
Run one part: test_worker_timers.py timers_sla|timers_kill|timers_rebalance|timers_feedback.
"""
import collections
import json
import os
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

H = lpit.HOUR_MS
INTERVAL_MS = 200  # LEADPULSE_TIMERS_INTERVAL_MS of every worker here
SLA_METRIC = 'leadpulse_stale_total{reason="sla_breached"}'

RULES_TEXT = """# test_worker_timers: SLA 48h, {reminders} reminder(s) 24h apart, long inactivity.
model:
  id: timers-test
  version: "5.{reminders}"
score:
  half_life: 30d
  mql: 100
  warm: 40
  rearm: 60
activities:
  demo_request: 40
  form_fill: 20
  web_visit: 1
sla:
  accept_within: 48h
{reminder_lines}inactivity:
  after: 180d
  move_to: responder
recycle:
  score: reset
"""


def rules_text(reminders):
    lines = f"  reminder_every: 24h\n  max_reminders: {reminders}\n" if reminders else ""
    return RULES_TEXT.format(reminders=reminders, reminder_lines=lines)


def live(*workers):
    """Raises if a worker died (so a wait fails at once, with the reason)."""
    for w in workers:
        if not w.alive():
            raise RuntimeError(f"worker {w.name} exited with status {w.proc.returncode}: "
                               f"{w.tail(5)}")
    return True


def qualify(lead, t):
    """Three demo requests, a second apart: the third takes the score to 120 (MQL at 100).
    Returns (events, qualification time)."""
    return [lpit.engagement(lead, t + i * 1000, n=i) for i in range(3)], t + 2000


def stale_of(records, lead):
    return [h for h in records if h["type"] == "LeadStale" and h["lead_id"] == lead]


def qualified_of(records, lead):
    return [h for h in records if h["type"] == "LeadQualified" and h["lead_id"] == lead]


def lower(v):
    """An enum as the consumer prints it (symbol, or a union as {"Type": "SYMBOL"})."""
    if isinstance(v, dict):
        v = next(iter(v.values()), None)
    return v.lower() if isinstance(v, str) else v


def compare_with_replay(checks, ctx, got, events, until, label):
    """Distinct hand-offs on the output topics equal replay's over the same events; no event id
    with two different contents. Returns the number of duplicate deliveries."""
    path = ctx.write_lines(f"replay-{label.replace(' ', '-')}.jsonl",
                           sorted(events, key=lambda e: e["ts"]))
    ref, _, _ = ctx.replay(path, until=until, state=False)
    ref_all = {lpit.handoff_key(h) for h in ref}
    got_all = {lpit.handoff_key(h) for h in got}
    for k in sorted(ref_all - got_all)[:5]:
        lpit.log(f"    missing {k}")
    for k in sorted(got_all - ref_all)[:5]:
        lpit.log(f"    unexpected {k}")
    checks.check(got_all == ref_all,
                 f"{label}: distinct hand-offs equal replay --until: worker {len(got_all)}, "
                 f"replay {len(ref_all)}, missing {len(ref_all - got_all)}, unexpected "
                 f"{len(got_all - ref_all)}")
    by_id = collections.defaultdict(set)
    for h in got:
        by_id[h["event_id"]].add(lpit.handoff_key(h))
    conflicting = sum(1 for v in by_id.values() if len(v) > 1)
    dups = len(got) - len(by_id)
    checks.check(conflicting == 0,
                 f"{label}: {conflicting} event ids with differing content; {dups} duplicate "
                 f"deliveries of {len(got)} records (same id and content: allowed, reported)")
    return ref, dups


def consume_until(ctx, want, timeout=60):
    """Reads the output topics until `want(records)` holds (deadline), returns the records."""
    try:
        return lpit.wait_until(lambda: (lambda r: r if want(r) else None)(ctx.consume()),
                               timeout, "the expected hand-offs", interval=0.5)
    except TimeoutError as e:
        lpit.log(f"  {e}")
        return ctx.consume()


# ---- 1. SLA breach at its deadline, once; acceptance cancels it ------------------------------

def part_sla_timing(ctx, checks):
    scale = 3600  # an hour of test clock per second
    lpit.use_rules(ctx, rules_text(0))
    # The worker's clock starts at the real now; the leads qualified 34h before, so their 48h
    # deadline comes ~14 s after the start: time to see the MQLs and accept one first. A first
    # lead breaches 4 h earlier: the first record a producer sends to a topic waits for the
    # topic's metadata (~1 s here), which the measured breach must not include.
    t0 = lpit.now_ms() - 34 * H
    first, breach, accept = "lead-sla-first", "lead-sla-breached", "lead-sla-accepted"
    ev_f, q_f = qualify(first, t0 - 4 * H)
    ev_a, q_a = qualify(breach, t0)
    ev_b, _ = qualify(accept, t0 + 60000)
    events = ev_f + ev_a + ev_b
    deadline = q_a + 48 * H
    ctx.produce(ctx.write_lines("sla.jsonl", sorted(events, key=lambda e: e["ts"])))

    # Arrival on the output topic: a consumer reading the stale topic, line-buffered, so each
    # record is seen when it is consumed (not when the process exits).
    # (stdbuf preloads a library: a sanitizer build of the consumer must be told that is fine.)
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    watcher_err = open(os.path.join(ctx.dir, "watcher.err"), "w+")
    watcher = subprocess.Popen(
        ["stdbuf", "-oL", ctx.env.consumer, "--brokers", ctx.env.brokers, "--schemas",
         ctx.env.schemas, "--topics", ctx.topics["stale"], "--from-beginning"],
        stdout=subprocess.PIPE, stderr=watcher_err, text=True, env=env)
    try:
        w = ctx.worker("sla", clock_offset_ms=0, clock_scale=scale,
                       LEADPULSE_TIMERS_INTERVAL_MS=INTERVAL_MS)
        lpit.wait_until(lambda: live(w) and (w.metric("leadpulse_qualified_total") or 0) >= 3, 60,
                        "the three MQLs", interval=0.05)
        seen = lpit.now_ms()
        lo, hi = w.clock_range(seen)
        lpit.log(f"sla: MQLs counted {(seen - w.launched_ms) / 1000:.1f} s after launch, worker "
                 f"clock {(lo - q_a) / H:.2f}..{(hi - q_a) / H:.2f} h after qualification (clock "
                 f"start known within {(hi - lo) / 60000:.1f} min)")
        fb = lpit.feedback(accept, int(hi), "accepted")
        ctx.produce(ctx.write_lines("sla-accept.jsonl", [fb]))
        events.append(fb)
        sent = w.clock_range(lpit.now_ms())[1]
        checks.check(sent < deadline - 2 * H,
                     f"sla: acceptance of {accept} sent at clock deadline - "
                     f"{(deadline - sent) / H:.1f} h (needs to be before the deadline)")

        # When the k-th breach (k = 1: first, 2: breached) was fired (timer committed: the
        # sla_breached counter), delivered (broker acknowledged: produced_total, after 3 MQLs)
        # and read back (the watcher's k-th line). The counters are served between loop
        # iterations: an event lies after the start of the last poll that did not show it and
        # before the end of the first that did.
        probes = {("fired", k): (lambda m, k=k: (m.get(SLA_METRIC) or 0) >= k) for k in (1, 2)}
        probes.update({("delivered", k): (lambda m, k=k: (m.get("leadpulse_produced_total")
                                                          or 0) >= 3 + k) for k in (1, 2)})
        seen_at, before = {}, {}
        lines = []
        stop_at = time.monotonic() + (deadline - hi) / scale / 1000 + 20
        # (every probe, not a count: the "read" entries share seen_at, and a record can be
        # read back before the worker has counted its delivery report)
        while time.monotonic() < stop_at and (any(k not in seen_at for k in probes)
                                              or len(lines) < 2):
            start = lpit.now_ms()
            m = w.metrics() or {}
            for key, cond in probes.items():
                if key in seen_at:
                    continue
                if cond(m):
                    seen_at[key] = (before.get(key), lpit.now_ms())
                else:
                    before[key] = start
            if len(lines) < 2 and select.select([watcher.stdout], [], [], 0.01)[0]:
                line = watcher.stdout.readline()
                if not line:
                    watcher_err.seek(0)
                    raise RuntimeError(f"the stale-topic watcher exited ({watcher.wait()}): "
                                       f"{watcher_err.read()[-500:]}")
                lines.append((line, lpit.now_ms()))
                k = len(lines)
                fired = seen_at.get(("fired", k), (before.get(("fired", k)), None))[0]
                seen_at[("read", k)] = (fired, lines[-1][1])
            elif len(lines) >= 2:
                time.sleep(0.01)
        slack = 3 * INTERVAL_MS * scale  # one interval + two of scheduling slack
        allowed = f"allowed 0..{slack / 60000:.0f} min = 1 timer interval of " \
                  f"{INTERVAL_MS * scale / 60000:.0f} min + 2 of scheduling slack"
        read = [json.loads(line) for line, _ in lines if line.strip()]
        for k, lead, dl in ((1, first, q_f + 48 * H), (2, breach, deadline)):
            for what in ("fired", "delivered", "read"):
                at = seen_at.get((what, k))
                if at is None or at[0] is None:
                    checks.check(False, f"sla: breach of {lead} never {what} ({at})")
                    continue
                late = w.clock_range(at[0])[0] - dl
                early = w.clock_range(at[1])[1] - dl
                text = (f"LeadStale of {lead} {what} at clock deadline + {max(late, 0) / 60000:.0f}"
                        f"..{early / 60000:.0f} min, wall {(at[1] - w.launched_ms) / 1000:.2f} s "
                        f"after launch")
                if k == 1 and what != "fired":
                    # The first record the worker's producer sends to the stale topic: reported,
                    # not judged (librdkafka fetches the topic's metadata first).
                    lpit.log(f"  note {text} (first record to the topic)")
                    continue
                checks.check(early >= 0 and late <= slack, f"sla: {text} ({allowed})")
        checks.check([h["lead_id"] for h in read] == [first, breach],
                     f"sla: stale topic, in order: {[h['lead_id'] for h in read]}")

        # Nothing else may fire: wait until the clock is 3 h past the deadline, then the
        # breached lead's next timer must be far away (cooling) and the accepted one has none.
        lpit.wait_until(lambda: w.clock_range(lpit.now_ms())[0] > deadline + 3 * H, 30,
                        "clock 3 h past the deadline", interval=0.05)
        lpit.wait_until(lambda: ctx.outbox_len() == 0, 30, "outbox empty", interval=0.05)
        p_a = lpit.timer_partition_of(ctx, breach)
        nxt_a = None if p_a is None else ctx.redis.command(
            "ZSCORE", f"{ctx.prefix}:{{{p_a}}}:timers", breach)
        nxt_b = lpit.timer_partition_of(ctx, accept)
        checks.check(nxt_a is not None and float(nxt_a) > deadline + 7 * 24 * H and nxt_b is None,
                     f"sla: next timer of {breach} at deadline + "
                     f"{(float(nxt_a or 0) - deadline) / 24 / H:.1f} d (cooling), {accept} "
                     f"has {'none' if nxt_b is None else 'one in partition %s' % nxt_b}")
        got = consume_until(ctx, lambda r: len(r) >= 5, timeout=20)
        sa, sb = stale_of(got, breach), stale_of(got, accept)
        checks.check(len(sa) == 1 and lower(sa[0]["reason"]) == "sla_breached"
                     and sa[0]["reminder"] == 0 and sa[0]["ts"] == deadline,
                     f"sla: {breach}: {len(sa)} LeadStale (want 1: sla_breached, reminder 0, "
                     f"ts = deadline {deadline}: got "
                     f"{[(lower(h['reason']), h['reminder'], h['ts']) for h in sa]})")
        checks.check(not sb and len(qualified_of(got, accept)) == 1,
                     f"sla: {accept} (accepted at deadline - {(deadline - fb['ts']) / H:.1f} h): "
                     f"{len(sb)} LeadStale, {len(qualified_of(got, accept))} LeadQualified")
        checks.check(w.metric(SLA_METRIC) == 2,
                     f"sla: worker counted {w.metric(SLA_METRIC)} sla_breached (want 2)")
        compare_with_replay(checks, ctx, got, events, deadline + 3 * H, "sla")
        rc = w.stop()
        checks.check(rc == 0, f"sla: SIGTERM exit status {rc}")
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()
        watcher_err.close()


# ---- 2. SIGKILL while timers are due ---------------------------------------------------------

def part_kill_while_due(ctx, checks):
    lpit.use_rules(ctx, rules_text(1))
    n_leads = 600
    t0 = lpit.now_ms() - 20 * 24 * H
    events = []
    last_q = 0
    for i in range(n_leads):
        ev, q = qualify(f"lead-due-{i:04d}", t0 + i * 20000)
        events += ev
        last_q = max(last_q, q)
    ctx.produce(ctx.write_lines("due.jsonl", sorted(events, key=lambda e: e["ts"])))
    # Every breach (q + 48h) and reminder (q + 72h) is due at `until`; nothing else is.
    until = last_q + 80 * H
    first_due = t0 + 48 * H

    w = ctx.worker("apply", **lpit.pinned_clock(last_q + H))
    ctx.wait_applied(timeout=60)
    rc = w.stop()
    due0 = lpit.timers_due(ctx, until)
    checks.check(rc == 0 and due0 == n_leads and lpit.timers_due(ctx, first_due - 1) == 0,
                 f"kill: input applied by a worker with its clock before every deadline (exit "
                 f"{rc}); {due0} of {n_leads} leads have a timer due by T")

    small = {"LEADPULSE_TIMERS_BATCH": 5, "LEADPULSE_OUTBOX_BATCH": 10,
             "LEADPULSE_TIMERS_INTERVAL_MS": INTERVAL_MS}
    # k1: SIGKILLed as soon as its first timer batch is committed (the outbox is drained only
    # after every due timer of the partition fired, so a non-empty outbox means mid-firing).
    k1 = ctx.worker("k1", **lpit.pinned_clock(until), **small)
    lpit.wait_until(lambda: ctx.outbox_len() > 0 or not k1.alive(), 60, "k1's first timers",
                    interval=0.001)
    k1.signal(signal.SIGKILL)
    k1.proc.wait()
    left1, box1 = lpit.timers_due(ctx, until), ctx.outbox_len()
    lpit.log(f"kill: SIGKILL k1 mid-firing: {left1} leads still due, {box1} hand-offs in the "
             "outbox, undelivered")
    # k2: takes over what k1 left (re-sends its outbox), and is SIGKILLed as soon as it fired
    # timers of its own (fired leads leave the due set: their next timer is far away).
    k2 = ctx.worker("k2", **lpit.pinned_clock(until), **small)
    lpit.wait_until(lambda: lpit.timers_due(ctx, until) < left1 or not k2.alive(), 60,
                    "k2's first timers", interval=0.001)
    k2.signal(signal.SIGKILL)
    k2.proc.wait()
    left2, box2 = lpit.timers_due(ctx, until), ctx.outbox_len()
    lpit.log(f"kill: SIGKILL k2 mid-firing: {left2} leads still due, {box2} hand-offs in the "
             "outbox")
    checks.check(0 < left1 < due0 and 0 < left2 < left1,
                 f"kill: both killed while firing: k1 after {due0 - left1} of {due0} leads "
                 f"({box1} hand-offs undelivered), k2 after {left1 - left2} more ({box2} "
                 "undelivered)")

    final = ctx.worker("final", **lpit.pinned_clock(until), **small)
    lpit.wait_until(lambda: live(final) and lpit.timers_due(ctx, until) == 0
                    and ctx.outbox_len() == 0, 90,
                    "every due timer fired and delivered", interval=0.1)
    expected = n_leads * 3  # MQL, breach, reminder
    got = consume_until(ctx, lambda r: len({h["event_id"] for h in r}) >= expected)
    ref, dups = compare_with_replay(checks, ctx, got, events, until, "kill")
    stale = [h for h in got if h["type"] == "LeadStale"]
    per_reminder = collections.Counter(h["reminder"] for h in {h["event_id"]: h
                                                                for h in stale}.values())
    checks.check(len(ref) == expected and per_reminder == {0: n_leads, 1: n_leads},
                 f"kill: distinct LeadStale by reminder {dict(per_reminder)} (want {n_leads} "
                 f"each; replay has {len(ref)} hand-offs, want {expected})")
    rc = final.stop()
    checks.check(rc == 0, f"kill: final worker SIGTERM exit status {rc}")


# ---- 3. rebalance while timers are pending ------------------------------------------------

def part_rebalance(ctx, checks):
    scale = 3600
    lpit.use_rules(ctx, rules_text(0))
    n_leads = 40
    margin_h = 7  # test-clock hours (= wall seconds) from the workers' start to the 1st deadline
    t0 = lpit.now_ms() - (48 - margin_h) * H
    events, deadlines = [], {}
    for i in range(n_leads):
        lead = f"lead-rb-{i:02d}"
        ev, q = qualify(lead, t0 + i * 60000)  # 40 deadlines over 40 test-clock minutes
        events += ev
        deadlines[lead] = q + 48 * H
    ctx.produce(ctx.write_lines("rb.jsonl", sorted(events, key=lambda e: e["ts"])))
    first, last = min(deadlines.values()), max(deadlines.values())

    a = ctx.worker("a", clock_offset_ms=0, clock_scale=scale)
    b = ctx.worker("b", clock_offset_ms=0, clock_scale=scale)

    def shared():
        live(a, b)
        na, nb = a.metric("leadpulse_partitions_owned"), b.metric("leadpulse_partitions_owned")
        return na and nb and na + nb == ctx.partitions
    lpit.wait_until(shared, 60, "both workers owning partitions", interval=0.1)
    ctx.wait_applied(timeout=30)
    moved = sorted(b.partitions_assigned())
    leads_of = {p: [] for p in range(ctx.partitions)}
    for lead in deadlines:
        leads_of[lpit.timer_partition_of(ctx, lead)].append(lead)
    moved_leads = [lead for p in moved for lead in leads_of[p]]
    fired_b = b.metric("leadpulse_timers_fired_total")
    stop_wall = lpit.now_ms()
    rc = b.stop()
    exited = lpit.now_ms()
    clock_exit = b.clock_range(exited)[1]
    lpit.log(f"rebalance: b owned partitions {moved} ({len(moved_leads)} leads), stopped "
             f"{(stop_wall - b.launched_ms) / 1000:.1f} s after launch; exit took "
             f"{(exited - stop_wall) / 1000:.1f} s")
    checks.check(rc == 0 and fired_b == 0 and clock_exit < first and moved_leads,
                 f"rebalance: b (partitions {moved}, {len(moved_leads)} leads with pending "
                 f"timers) stopped with SIGTERM (exit {rc}) at clock first deadline - "
                 f"{(first - clock_exit) / 60000:.0f} min, having fired {fired_b} timers")
    a.wait_owns(ctx.partitions, timeout=30)
    # Until a's clock passed the last deadline by 3 intervals, and every timer has fired.
    lpit.wait_until(lambda: live(a)
                    and a.clock_range(lpit.now_ms())[0] > last + 3 * INTERVAL_MS * scale
                    and lpit.timers_due(ctx, last) == 0 and ctx.outbox_len() == 0, 60,
                    "every deadline passed and fired", interval=0.1)
    got = consume_until(ctx, lambda r: len({h["event_id"] for h in r}) >= 2 * n_leads)
    counts = collections.Counter(h["lead_id"] for h in got if h["type"] == "LeadStale")
    ids = collections.Counter(h["event_id"] for h in got if h["type"] == "LeadStale")
    missing = [lead for lead in moved_leads if counts[lead] == 0]
    checks.check(not missing,
                 f"rebalance: the survivor fired the timers of the moved partitions: "
                 f"{len(moved_leads) - len(missing)} of {len(moved_leads)} leads have their "
                 f"LeadStale")
    once = sum(1 for lead in deadlines if counts[lead] == 1)
    dups = sum(ids.values()) - len(ids)
    checks.check(len(ids) == n_leads and once + sum(1 for lead in deadlines
                                                     if counts[lead] > 1) == n_leads,
                 f"rebalance: {len(ids)} distinct LeadStale ids for {n_leads} leads; {once} "
                 f"delivered once, {dups} duplicate deliveries (reported)")
    checks.check(a.metric("leadpulse_timers_fired_total") == n_leads
                 and a.metric(SLA_METRIC) == n_leads,
                 f"rebalance: survivor fired {a.metric('leadpulse_timers_fired_total')} timers, "
                 f"{a.metric(SLA_METRIC)} sla_breached (want {n_leads})")
    compare_with_replay(checks, ctx, got, events, last + H, "rebalance")
    rc = a.stop()
    checks.check(rc == 0, f"rebalance: survivor SIGTERM exit status {rc}")


# ---- 4. recycled leads qualify again; closed leads never ---------------------------------------

def part_feedback(ctx, checks):
    lpit.use_rules(ctx, rules_text(1))
    t0 = lpit.now_ms() - 10 * 24 * H
    # lead: (verdicts an hour apart after its first MQL, expected reject reason echoed by the
    # second MQL or None if it must never qualify again, final stage). The closed leads that were
    # recycled first would qualify again if closing were not terminal.
    leads = {
        "lead-fb-rejected": ([("rejected", "no_budget")], "no_budget", "mql"),
        "lead-fb-recycled": ([("recycled", "timing")], "timing", "mql"),
        "lead-fb-won": ([("accepted", None), ("won", None), ("recycled", "timing")], None,
                        "closed_won"),
        "lead-fb-recycled-lost": ([("recycled", "timing"), ("lost", None)], None, "closed_lost"),
        "lead-fb-rejected-won": ([("rejected", "bad_data"), ("won", None)], None, "closed_won"),
    }
    # The clock stays a few hours after the data: no SLA deadline is reached.
    w = ctx.worker("fb", **lpit.pinned_clock(t0 + 8 * H))
    first = []
    for i, lead in enumerate(leads):
        first += qualify(lead, t0 + i * 1000)[0]
    ctx.produce(ctx.write_lines("fb-1.jsonl", sorted(first, key=lambda e: e["ts"])))
    lpit.wait_until(lambda: live(w)
                    and (w.metric("leadpulse_qualified_total") or 0) >= len(leads), 60,
                    "the first MQLs", interval=0.05)
    verdicts = []
    for lead, (said, _, _) in leads.items():
        for k, (outcome, reason) in enumerate(said):
            verdicts.append(lpit.feedback(lead, t0 + (k + 1) * H, outcome, reason))
    ctx.produce(ctx.write_lines("fb-2.jsonl", sorted(verdicts, key=lambda e: e["ts"])))
    ctx.wait_applied(timeout=30)
    again = []
    for lead in leads:
        again += [lpit.engagement(lead, t0 + 5 * H + k * 1000, n=10 + k) for k in range(4)]
    ctx.produce(ctx.write_lines("fb-3.jsonl", sorted(again, key=lambda e: e["ts"])))
    ctx.wait_applied(timeout=30)
    events = first + verdicts + again
    got = consume_until(ctx, lambda r: len(r) >= len(leads) + 2, timeout=20)
    for lead, (said, echo, _) in leads.items():
        q = sorted(qualified_of(got, lead), key=lambda h: h["qualification"])
        desc = [(h["qualification"], lower(h.get("last_reject_reason"))) for h in q]
        want = [(1, None), (2, echo)] if echo else [(1, None)]
        story = ", ".join(o + (f"({r})" if r else "") for o, r in said)
        checks.check(desc == want,
                     f"feedback: {lead}: MQL, {story}, then 160 points: LeadQualified "
                     f"(qualification, last_reject_reason) {desc} (want {want})")
    state = ctx.inspect_all()
    stages = {lead: (state[lead]["stage"].lower(), state[lead]["qualifications"])
              for lead in leads if lead in state}
    want = {lead: (stage, 2 if echo else 1) for lead, (_, echo, stage) in leads.items()}
    checks.check(stages == want, f"feedback: (stage, qualifications) in Redis {stages}")
    compare_with_replay(checks, ctx, got, events, t0 + 8 * H, "feedback")
    rc = w.stop()
    checks.check(rc == 0, f"feedback: SIGTERM exit status {rc}")


PARTS = (("timers_sla", 2, part_sla_timing),
         ("timers_kill", 3, part_kill_while_due),
         ("timers_rebalance", 4, part_rebalance),
         ("timers_feedback", 2, part_feedback))


def main():
    checks = lpit.Checks("test_worker_timers")
    only = set(sys.argv[1:])
    for name, partitions, fn in PARTS:
        if only and name not in only:
            continue
        started = time.monotonic()
        ctx = lpit.Ctx(name, partitions=partitions)
        try:
            fn(ctx, checks)
        except Exception as e:  # noqa: BLE001 - a failed step is a failed check, with its reason
            checks.check(False, f"{name}: {type(e).__name__}: {e}")
            for w in ctx.workers:
                lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
        finally:
            ctx.cleanup()
        lpit.log(f"{name}: {time.monotonic() - started:.1f} s")
    checks.finish()


if __name__ == "__main__":
    main()
