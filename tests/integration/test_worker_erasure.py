#!/usr/bin/env python3
"""Erasure on request through the real stack (docs/privacy.md), against `leadpulse replay`:

1. A generated stream with erasure requests (tombstones on the profiles topic, sent by
   `leadpulse produce` from {"kind":"erasure"} lines) for 12 leads at random points of their
   activity, unsuppress requests for 3 of them, and events of every erased lead after its erasure
   (later ones and late ones dated before it), produced before the worker starts. Checked: every
   lead's state in Redis equals replay's (erased leads absent from both); the LeadErased records
   equal replay's (event id, lead, had_state, suppressed_until); hand-offs of leads never erased
   equal replay's; Redis holds no key, timer or outbox entry of an erased lead; the suppression
   hash holds one entry per lead still suppressed, none naming a lead id; the dropped-event count
   equals replay's; the worker log names no erased lead.
2. `leadpulse erase` of a live lead while the worker runs: its LeadErased arrives, its state is
   gone; `leadpulse unsuppress` lifts it, and its next event starts it afresh.
"""
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

H = 3600 * 1000


def main():
    ctx = lpit.Ctx("erasure", partitions=3)
    checks = lpit.Checks("test_worker_erasure")
    rng = random.Random(15)
    try:
        events = [json.loads(l) for l in open(ctx.gen(os.path.join(ctx.dir, "base.jsonl"),
                                                       seed=15, leads=300, events=4000))]
        by_lead = {}
        for e in events:
            by_lead.setdefault(e["lead_id"], []).append(e)
        busy = sorted((l for l, es in by_lead.items() if len(es) >= 8), key=lambda l: l)
        erased = rng.sample(busy, 12)
        extra = []
        for lead in erased:
            es = by_lead[lead]
            at = int(es[rng.randrange(2, len(es) - 2)]["ts"]) + 1
            extra.append({"kind": "erasure", "lead_id": lead, "ts": at})
            # a late event dated before the erasure, sent after it
            late = dict(es[0], event_id=es[0]["event_id"] + "-late", ts=at + 2 * H)
            late["ts"] = at + 2 * H
            extra.append(dict(late, ts=at + 2 * H))
        for lead in erased[:3]:
            last = max(int(e["ts"]) for e in by_lead[lead])
            extra.append({"kind": "unsuppress", "lead_id": lead, "ts": last + 3 * H})
            extra.append({"kind": "engagement", "event_id": f"{lead}-back", "lead_id": lead,
                          "ts": last + 4 * H, "type": "demo_request", "url": "/demo"})
        stream = sorted(events + extra, key=lambda e: int(e["ts"]))
        path = ctx.write_lines("stream.jsonl", stream)
        until, _ = lpit.pick_until(ctx, path, lpit.file_max_ts(path))
        ref, ref_state, ref_err = ctx.replay(path, until=until)
        summary = [l for l in ref_err if "erased" in l]
        lpit.log(f"reference: {summary}")
        sent = ctx.produce(path)
        lpit.log(f"produced {sent} records ({len(erased)} erasure requests) before the worker")

        w = ctx.worker("a", **lpit.pinned_clock(until))
        ctx.wait_applied(timeout=240)
        # timers fire on the pinned clock: wait for every hand-off replay has, then compare
        # (hand-offs of erased leads may have been erased before delivery: not awaited)
        ref_ids = {h["event_id"] for h in ref
                   if h.get("kind") == "erased" or h["lead_id"] not in set(erased)}

        def complete():
            got = ctx.consume(("mql", "stale", "erased"))
            return got if ref_ids <= {h["event_id"] for h in got} else None
        try:
            got = lpit.wait_until(complete, 90, f"replay's {len(ref_ids)} hand-offs", interval=1)
        except TimeoutError as e:
            lpit.log(f"  {e}")
            got = ctx.consume(("mql", "stale", "erased"))
        lpit.compare_states(checks, ctx.inspect_all(), ref_state, "after the backlog")
        erased_set = set(erased)
        checks.check(not (erased_set - set(erased[:3])) & set(ref_state),
                     f"replay holds no state of the {len(erased) - 3} leads still suppressed")

        got_er = {(h["event_id"], h["lead_id"], h["had_state"], h.get("suppressed_until"))
                  for h in got if h.get("type") == "LeadErased"}
        ref_er = {(h["event_id"], h["lead_id"], h["had_state"], h.get("suppressed_until"))
                  for h in ref if h.get("kind") == "erased"}
        checks.check(got_er == ref_er and len(ref_er) == len(erased),
                     f"LeadErased: {len(got_er)} read, {len(ref_er)} in replay, equal: "
                     f"{got_er == ref_er}")
        keep = [h for h in got if h.get("type") != "LeadErased" and h["lead_id"] not in erased_set]
        ref_keep = [h for h in ref if h.get("kind") != "erased" and h["lead_id"] not in erased_set]
        a, b = {lpit.handoff_key(h) for h in keep}, {lpit.handoff_key(h) for h in ref_keep}
        checks.check(a == b, f"hand-offs of leads never erased: {len(a)} vs replay {len(b)}, "
                     f"missing {len(b - a)}, extra {len(a - b)}")

        r = ctx.redis
        left = []
        supp = 0
        for p in range(ctx.partitions):
            for lead in erased[3:]:
                if r.command("HEXISTS", lpit.lead_key(r, ctx.prefix, p, lead), lead) or \
                        r.command("ZSCORE", f"{ctx.prefix}:{{{p}}}:timers", lead) is not None:
                    left.append(lead)
            fields = r.command("HKEYS", f"{ctx.prefix}:{{{p}}}:suppressed") or []
            supp += len(fields)
            left += [f.decode() for f in fields if any(l.encode() in f for l in erased)]
        checks.check(not left and supp == len(erased) - 3,
                     f"Redis: no key or timer of the suppressed leads ({left[:3]}); "
                     f"{supp} suppression entries (expected {len(erased) - 3}), no lead id in them")
        ref_dropped = next((int(l.split()[4]) for l in ref_err if "suppressed leads dropped" in l),
                           -1)
        dropped = w.metric("leadpulse_suppressed_events_total")
        checks.check(dropped == ref_dropped and w.metric("leadpulse_erased_total") == len(erased),
                     f"dropped events: worker {dropped}, replay {ref_dropped}; erased_total "
                     f"{w.metric('leadpulse_erased_total')}")

        # -- 2. live: erase, then unsuppress --------------------------------------------------
        live = next(l for l in busy if l not in erased_set and l in ref_state)
        cli_env = ctx.base_env()
        r1 = subprocess.run([ctx.env.bin, "erase", "--config", ctx.config(), live],
                            env=cli_env, capture_output=True, text=True, timeout=60,
                            cwd=ctx.env.src)
        checks.check(r1.returncode == 0 and live not in r1.stderr,
                     f"leadpulse erase: exit {r1.returncode}, '{r1.stderr.strip()}' (no lead id)")

        def erased_live():
            hs = ctx.consume(("erased",), idle_ms=800)
            return [h for h in hs if h["lead_id"] == live]
        lpit.wait_until(erased_live, 60, "the live lead's LeadErased", interval=1)
        state = ctx.inspect_all()
        checks.check(live not in state, f"{live}: no state after the live erasure")
        r2 = subprocess.run([ctx.env.bin, "unsuppress", "--config", ctx.config(), live],
                            env=cli_env, capture_output=True, text=True, timeout=60,
                            cwd=ctx.env.src)
        back = ctx.write_lines("back.jsonl", [{"kind": "engagement", "event_id": "live-back",
                                               "lead_id": live, "ts": lpit.now_ms(),
                                               "type": "web_visit", "url": "/pricing"}])
        ctx.produce(back)
        lpit.wait_until(lambda: live in ctx.inspect_all(), 60, "the lead to start afresh",
                        interval=0.5)
        checks.check(r2.returncode == 0 and w.metric("leadpulse_unsuppressed_total", 0) >= 4,
                     f"unsuppress: exit {r2.returncode}; the lead's next event started it afresh; "
                     f"unsuppressed_total {w.metric('leadpulse_unsuppressed_total')}")
        log = w.log_text()
        named = [l for l in erased + [live] if l in log]
        checks.check(not named, f"the worker log names none of the erased leads ({named[:3]})")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
