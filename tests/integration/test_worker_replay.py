#!/usr/bin/env python3
"""Issue 4a: one worker over a generated stream gives what `leadpulse replay` gives.

~2000 leads, ~20k events (a few bad lines) are produced to the three input topics BEFORE the
worker starts, so the worker sees the worst interleaving (whole fetches of one topic first) and
must merge the topics by event time. Its clock is pinned just after the data, so once it has
caught up it fires every timer due by then, like `replay --until T`. Checked: the LeadQualified
set (event_id, lead_id, score to 1e-6, grade), every hand-off, every lead's state in Redis
(inspect --all vs replay --state-out), and the dead letters against replay's rejected lines.
"""
import collections
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def main():
    ctx = lpit.Ctx("replay", partitions=3)
    checks = lpit.Checks("test_worker_replay")
    try:
        path = ctx.gen(os.path.join(ctx.dir, "events.jsonl"), seed=11, leads=2000, events=20000,
                       zipf=0.9, bad_lines=6)
        until, expected = lpit.pick_until(ctx, path, lpit.file_max_ts(path))
        ref, ref_state, ref_err = ctx.replay(path, until=until)
        summary = [l for l in ref_err if l.startswith("replay:")]
        lpit.log(f"reference: {summary[-1] if summary else '?'} (timers fired until {until})")
        rejected = sum(1 for l in ref_err if l.startswith("line "))

        sent = ctx.produce(path)
        lines = sum(1 for _ in open(path))
        lpit.log(f"produced {sent} of {lines} lines before starting the worker")

        w = ctx.worker("a", **lpit.pinned_clock(until))
        ends = ctx.wait_applied(timeout=240)
        lpit.log(f"worker applied input ends {ends}")
        ref_q = {lpit.qualified_key(h) for h in ref if h["kind"] == "qualified"}
        ref_all = {lpit.handoff_key(h) for h in ref}

        def outputs_complete():
            got = ctx.consume()
            return got if len({h["event_id"] for h in got}) >= len(ref_all) else None
        try:
            got = lpit.wait_until(outputs_complete, 90, f"{len(ref_all)} distinct hand-offs",
                                  interval=1)
        except TimeoutError as e:
            lpit.log(f"  {e}")
            got = ctx.consume()
        m = w.metrics() or {}
        def lag_settled():
            mm = w.metrics() or {}
            lag = [v for k, v in mm.items() if k.startswith("leadpulse_consumer_lag_records{")]
            stored = sum(v for k, v in mm.items() if k.startswith("leadpulse_stored_offset{"))
            return (lag, stored) if lag and max(lag) == 0 and stored == sum(ends.values()) \
                else None
        try:
            lag, stored = lpit.wait_until(lag_settled, 10, "lag 0 on /metrics", interval=0.3)
            checks.check(True, f"/metrics: consumer lag 0 on {len(lag)} topic-partitions, "
                         f"stored offsets {stored:.0f} = the input ends")
        except TimeoutError:
            mm = w.metrics() or {}
            checks.check(False, "/metrics lag/stored offsets: " + str(
                {k: v for k, v in mm.items() if "lag" in k or "stored_offset" in k}))
        text = w.metrics_text() or ""
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                               text=True)
            checks.check(r.returncode == 0 and "# HELP leadpulse_events_total" in text,
                         f"/metrics passes promtool check metrics: {r.stdout}{r.stderr}".strip())
        hist = [l for l in text.splitlines()
                if l.startswith(("leadpulse_batch_apply_seconds_count ",
                                 "leadpulse_handoff_latency_seconds_count "))]
        checks.check(len(hist) == 2 and all(float(l.split()[1]) > 0 for l in hist),
                     f"/metrics: batch apply and hand-off latency histograms observed {hist}")

        got_q = {lpit.qualified_key(h) for h in got if h["type"] == "LeadQualified"}
        got_all = {lpit.handoff_key(h) for h in got}
        for k in sorted(ref_q - got_q)[:5]:
            lpit.log(f"    missing MQL {k}")
        for k in sorted(got_q - ref_q)[:5]:
            lpit.log(f"    unexpected MQL {k}")
        checks.check(got_q == ref_q and len(ref_q) > 50,
                     f"LeadQualified (event_id, lead_id, score 1e-6, grade): worker {len(got_q)}, "
                     f"replay {len(ref_q)}, missing {len(ref_q - got_q)}, "
                     f"unexpected {len(got_q - ref_q)}")
        for k in sorted(ref_all - got_all)[:5]:
            lpit.log(f"    missing hand-off {k}")
        for k in sorted(got_all - ref_all)[:5]:
            lpit.log(f"    unexpected hand-off {k}")
        stale = collections.Counter(k[6] for k in ref_all if k[0] == "stale")
        checks.check(got_all == ref_all,
                     f"every hand-off (content incl. ts, reason, reminder): worker {len(got_all)}, "
                     f"replay {len(ref_all)} (stale by reason {dict(stale)})")
        dups = len(got) - len({h["event_id"] for h in got})
        checks.check(dups == 0, f"no duplicate deliveries without a crash: {dups}")
        checks.check(all(h["headers"].get("event_id") == h["event_id"] and h["key"] == h["lead_id"]
                         and h["headers"].get("event_ts") == str(h["ts"]) for h in got),
                     "every record: key = lead_id, headers event_id and event_ts = the record's "
                     "event_id and ts")

        lpit.compare_states(checks, ctx.inspect_all(), ref_state, "final state")

        dlq = ctx.consume(("dlq",), raw=True)
        not_sent = lines - sent
        checks.check(rejected > 0 and len(dlq) == rejected - not_sent,
                     f"dead letters: {len(dlq)} on the DLQ = replay's {rejected} rejected lines - "
                     f"{not_sent} lines produce could not parse (never sent)")
        checks.check(m.get("leadpulse_dead_letters_total") == len(dlq)
                     and m.get("leadpulse_events_total") == sent,
                     f"metrics: events {m.get('leadpulse_events_total')} (sent {sent}), "
                     f"dead letters {m.get('leadpulse_dead_letters_total')}")
        rc = w.stop()
        checks.check(rc == 0, f"SIGTERM: clean exit (status {rc})")
    except Exception as e:  # noqa: BLE001 - a failed step is a failed check, with its reason
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
