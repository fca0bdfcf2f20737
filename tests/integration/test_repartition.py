#!/usr/bin/env python3
"""`leadpulse repartition`: the input topics grow from 3 to 6 partitions mid-stream.

A generated stream (600 leads, 8,000 records, plus erasure requests of 6 leads whose partition
changes and that have events after their erasure) is cut in two halves. The first half is
produced to 3 partitions and applied by a worker (clock pinned before the data: timers fire in
event time only) until all is applied and every outbox is empty; the worker stops. Then:
- `repartition --from 3 --to 6` before the topics grew is refused (exit 1, nothing changed);
- partitions are added to the three input topics (CreatePartitions, as kafka-topics.sh --alter);
- `--dry-run` prints the moves and changes nothing;
- `repartition --from 3 --to 6` moves every lead whose CRC-32 partition changed: afterwards
  every lead is in exactly one partition, the one librdkafka's partitioner gives with 6
  partitions (zlib.crc32 here), with the same stored bytes and the same timer as before, every
  partition holds every suppression entry, and a second run moves nothing;
- the second half is produced (now over 6 partitions), a worker on 6 partitions applies it, and
  one with its clock at T fires the rest: hand-offs and final state equal `leadpulse replay`
  over the whole stream (the moved erased leads stay suppressed in their new partitions).
LP_TEST_CLUSTER=1 runs it on the stack's Redis Cluster (redis.mode: cluster).
"""
import json
import os
import random
import re
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

OLD, NEW = 3, 6


def snapshot(ctx, partitions):
    """lead -> [(partition, stored bytes, timer due or None)], and the suppression entries by
    partition."""
    leads, supp = {}, {}
    for p in range(partitions):
        h = lpit.partition_leads(ctx.redis, ctx.prefix, p)
        t = ctx.redis.command("ZRANGE", f"{ctx.prefix}:{{{p}}}:timers", 0, -1, "WITHSCORES") or []
        timers = {t[i].decode(): int(float(t[i + 1])) for i in range(0, len(t), 2)}
        for lead, data in h.items():
            leads.setdefault(lead, []).append((p, data, timers.get(lead)))
        s = ctx.redis.command("HGETALL", f"{ctx.prefix}:{{{p}}}:suppressed") or []
        supp[p] = {s[i]: s[i + 1] for i in range(0, len(s), 2)}
    return leads, supp


def home(lead, n):
    return zlib.crc32(lead.encode()) % n


def repartition(ctx, *args):
    r = subprocess.run([ctx.env.bin, "repartition", "--config", ctx.config(), "--from", str(OLD),
                        "--to", str(NEW), *args], env=ctx.base_env(), capture_output=True,
                       text=True, timeout=300, cwd=ctx.env.src)
    lpit.log(f"repartition {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}".rstrip())
    m = re.search(r"repartition: (\d+) leads moved of (\d+) \(from 3 to 6 partitions\), (\d+) "
                  r"suppression entries copied, (\d+) epochs bumped", r.stderr)
    return r, (tuple(int(x) for x in m.groups()) if m else None)


def build_stream(ctx):
    events = [json.loads(l) for l in open(ctx.gen(os.path.join(ctx.dir, "base.jsonl"), seed=37,
                                                   leads=600, events=8000, zipf=0.9))]
    cut = len(events) // 2
    first, second = events[:cut], events[cut:]
    split_ts = int(second[0]["ts"])
    n1, n2 = {}, {}
    for e in first:
        n1[e["lead_id"]] = n1.get(e["lead_id"], 0) + 1
    for e in second:
        n2[e["lead_id"]] = n2.get(e["lead_id"], 0) + 1
    movers = sorted(l for l in n1 if n1[l] >= 3 and n2.get(l, 0) >= 2
                    and home(l, OLD) != home(l, NEW))
    erased = random.Random(37).sample(movers, 6)
    for lead in erased:
        last = max(int(e["ts"]) for e in first if e["lead_id"] == lead)
        first.append({"kind": "erasure", "lead_id": lead, "ts": min(last + 1, split_ts - 1)})
    first.sort(key=lambda e: int(e["ts"]))
    return (ctx.write_lines("first.jsonl", first), ctx.write_lines("second.jsonl", second),
            ctx.write_lines("stream.jsonl", first + second), erased)


def main():
    cluster = os.environ.get("LP_TEST_CLUSTER") == "1"
    ctx = lpit.Ctx("repartition", partitions=OLD, cluster=cluster)
    checks = lpit.Checks("test_repartition" + (" (Redis Cluster)" if cluster else ""))
    try:
        first, second, whole, erased = build_stream(ctx)
        early = lpit.file_min_ts(whole) - lpit.DAY_MS
        until, _ = lpit.pick_until(ctx, whole, lpit.file_max_ts(whole))
        ref, ref_state, err = ctx.replay(whole, until=until)
        lpit.log(f"reference: {[l for l in err if l.startswith('replay:')][-1:]}")

        # -- 1. the first half on 3 partitions ------------------------------------------------
        sent = ctx.produce(first)
        w = ctx.worker("w3", **lpit.pinned_clock(early))
        ends = ctx.wait_applied()
        rc = w.stop()
        checks.check(rc == 0 and ctx.outbox_len() == 0,
                     f"first half: {sent} records applied by a worker on {OLD} partitions "
                     f"({ends}), outboxes empty, worker stopped (exit {rc})")
        before, supp_before = snapshot(ctx, NEW)
        ntimers = sum(1 for v in before.values() if v[0][2] is not None)
        moving = sorted(l for l in before if home(l, NEW) != before[l][0][0])
        nsupp = sum(len(s) for s in supp_before.values())
        checks.check(all(len(v) == 1 and v[0][0] == home(l, OLD) for l, v in before.items())
                     and nsupp == len(erased),
                     f"before: {len(before)} leads, each in its CRC-32 partition of {OLD}; "
                     f"{ntimers} timers; {len(moving)} leads to move; {nsupp} suppression entries")

        # -- 2. refused while the topics still have 3 partitions ------------------------------
        r, _ = repartition(ctx)
        checks.check(r.returncode == 1 and "add them first" in r.stderr
                     and snapshot(ctx, NEW)[0] == before,
                     f"repartition before the topics grew: exit {r.returncode}, refused, "
                     "nothing changed")

        # -- 3. grow the input topics, dry run, the move --------------------------------------
        lpit.create_partitions(ctx.env.brokers, {ctx.topics[k]: NEW
                                                 for k in ("engagement", "profiles", "feedback")})
        ctx.partitions = NEW
        r, _ = repartition(ctx, "--dry-run")
        planned = sum(int(m) for m in re.findall(r"^\d+ -> \d+: (\d+) leads$", r.stdout, re.M))
        checks.check(r.returncode == 0 and planned == len(moving)
                     and f"{len(moving)} leads would move of {len(before)}" in r.stderr
                     and snapshot(ctx, NEW) == (before, supp_before),
                     f"--dry-run: exit {r.returncode}, {planned} moves listed, nothing changed")
        r, got = repartition(ctx)
        checks.check(r.returncode == 0 and got == (len(moving), len(before),
                                                   len(erased) * (NEW - 1), NEW),
                     f"repartition: exit {r.returncode}, summary {got}, expected "
                     f"{(len(moving), len(before), len(erased) * (NEW - 1), NEW)}")
        after, supp_after = snapshot(ctx, NEW)
        wrong = [l for l, v in after.items() if len(v) != 1 or v[0][0] != home(l, NEW)]
        changed = [l for l in before if l not in after or after[l][0][1:] != before[l][0][1:]]
        moved_timers = sum(1 for l in moving if before[l][0][2] is not None)
        checks.check(not wrong and not changed and set(after) == set(before) and moved_timers > 0,
                     f"after: {len(after)} leads, {len(wrong)} not exactly once in their CRC-32 "
                     f"partition of {NEW}, {len(changed)} with other bytes or timer than before "
                     f"({moved_timers} of the moved leads have a timer)")
        all_supp = {k: v for s in supp_before.values() for k, v in s.items()}
        checks.check(all(supp_after[p] == all_supp for p in range(NEW)),
                     f"every partition 0..{NEW - 1} holds the {len(all_supp)} suppression "
                     "entries")
        r, got = repartition(ctx)
        checks.check(r.returncode == 0 and got is not None and got[0] == 0 and got[2] == 0
                     and snapshot(ctx, NEW) == (after, supp_after),
                     f"second run: exit {r.returncode}, summary {got}: nothing moved or copied")

        # -- 4. the second half on 6 partitions, then compare with replay ---------------------
        sent = ctx.produce(second)
        ends_new = lpit.end_offsets(ctx.env.brokers, ctx.topics["engagement"], NEW)
        checks.check(all(ends_new.get(p, 0) > 0 for p in range(OLD, NEW)),
                     f"second half: {sent} records, engagement ends per partition {ends_new}")
        w = ctx.worker("w6", **lpit.pinned_clock(early))
        ctx.wait_applied()
        sc = lpit.Scenario.__new__(lpit.Scenario)
        # settle_and_compare reads leads.mql and leads.stale; the LeadErased records (all from
        # the first half) are compared here.
        ref_erased = [h for h in ref if h.get("kind") == "erased"]
        sc.ctx, sc.until, sc.ref_state = ctx, until, ref_state
        sc.ref = [h for h in ref if h.get("kind") != "erased"]
        sc.settle_and_compare(checks, f"after {OLD} -> {NEW}")
        got_er = {lpit.handoff_key(h) for h in ctx.consume(("erased",), idle_ms=800)}
        checks.check(got_er == {lpit.handoff_key(h) for h in ref_erased} and len(got_er) == 6,
                     f"LeadErased records equal replay's: {len(got_er)} of {len(ref_erased)}")
        final, _ = snapshot(ctx, NEW)
        wrong = [l for l, v in final.items() if len(v) != 1 or v[0][0] != home(l, NEW)]
        checks.check(not wrong and not set(erased) & set(final),
                     f"final: every one of {len(final)} leads once in its partition; none of the "
                     f"{len(erased)} erased leads (events after their erasure were dropped in "
                     "their new partitions)")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
