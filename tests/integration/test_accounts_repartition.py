#!/usr/bin/env python3
"""Growing the members topic (accounts) mid-stream: `leadpulse repartition --accounts`.

A generated stream of 400 leads in 30 companies (scripts/gen_events.py --accounts) is cut in two
at a quiet moment (a gap of more than `accounts.lateness` between two events). The first half is
produced to 3 input partitions with a members topic of 3 partitions and applied by a worker
whose clock is pinned just before the second half, so that stage 2 applies every member record
of the first half (its watermark passes them); the worker stops. Then:
- partitions are added to the members topic (3 -> 6): a worker refuses to start, naming the
  command to run (its account partitions recorded 3);
- `repartition --accounts --from 3 --to 6 --dry-run` lists the moves and changes nothing;
- `repartition --accounts --from 3 --to 6` moves every account whose crc32 partition changed:
  afterwards each account is in the account partition crc32 gives it with 6, with the same
  stored bytes as before, and every account partition records 6; a second run moves nothing;
- the second half is produced; workers (now sending to 6 members partitions) apply it and one
  with its clock at T fires the rest: lead AND account hand-offs and the final lead state equal
  `replay --partitions 3` over the whole stream (the account hand-offs do not depend on the
  members topic's partition count).
"""
import json
import os
import re
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

OLD, NEW = 3, 6
LATENESS_MS = 60000  # accounts.lateness of config/rules.yaml's example (the default)


def accounts_by_partition(ctx, n):
    """account key -> [(account partition, stored bytes)] over account partitions 0..n-1 (the
    last applied record "@applied" left out)."""
    out = {}
    for q in range(n):
        for key, data in lpit.partition_leads(ctx.redis, ctx.prefix, f"a{q}").items():
            if key != "@applied":
                out.setdefault(key, []).append((q, data))
    return out


def recorded_counts(ctx, n):
    return [int(ctx.redis.command("HGET", f"{ctx.prefix}:{{a{q}}}:offsets", "@partitions") or -1)
            for q in range(n)]


def home(key, n):
    return zlib.crc32(key.encode()) % n


def repartition(ctx, *args):
    r = subprocess.run([ctx.env.bin, "repartition", "--accounts", "--config", ctx.config(),
                        "--from", str(OLD), "--to", str(NEW), *args], env=ctx.base_env(),
                       capture_output=True, text=True, timeout=300, cwd=ctx.env.src)
    lpit.log(f"repartition --accounts {' '.join(args)}: exit {r.returncode}\n"
             f"{r.stdout}{r.stderr}".rstrip())
    m = re.search(r"repartition: (\d+) accounts moved of (\d+) \(from 3 to 6 partitions of \S+\), "
                  r"(\d+) tombstones deleted, (\d+) epochs bumped", r.stderr)
    return r, (tuple(int(x) for x in m.groups()) if m else None)


def main():
    ctx = lpit.Ctx("acctrep", partitions=OLD, accounts=True)
    checks = lpit.Checks("test_accounts_repartition")
    try:
        lpit.accounts_rules(ctx)
        events = [json.loads(line) for line in open(ctx.gen(
            os.path.join(ctx.dir, "base.jsonl"), seed=43, leads=400, events=5000, zipf=0.9,
            accounts=30))]
        cut = next(k for k in range(len(events) // 2, len(events))
                   if int(events[k]["ts"]) - int(events[k - 1]["ts"]) > LATENESS_MS + 10000)
        first, second = events[:cut], events[cut:]
        drain_clock = int(first[-1]["ts"]) + LATENESS_MS + 5000  # before second[0]
        whole = ctx.write_lines("stream.jsonl", events)
        until, _ = lpit.pick_until(ctx, whole, lpit.file_max_ts(whole))
        ref, ref_state, err = ctx.replay(whole, until=until)
        lpit.log(f"reference: {[l for l in err if l.startswith('replay:')][-2:]}")
        ref_acc = [h for h in ref if h.get("kind", "").startswith("account_")]

        # -- 1. the first half, members topic of 3, stage 2 applies all of it -----------------
        sent = ctx.produce(ctx.write_lines("first.jsonl", first))
        w = ctx.worker("w3", **lpit.pinned_clock(drain_clock))
        ctx.wait_applied()

        def drained():
            m = w.metrics() or {}
            sent_m = m.get("leadpulse_account_member_records_total", -1)
            applied = m.get("leadpulse_account_records_applied_total", -2)
            outboxes = sum(ctx.redis.command("XLEN", f"{ctx.prefix}:{{a{q}}}:outbox") or 0
                           for q in range(OLD))
            return sent_m > 0 and sent_m == applied and outboxes == 0
        lpit.wait_until(drained, 120, "stage 2 applied every member record of the first half",
                        interval=0.5)
        rc = w.stop()
        before = accounts_by_partition(ctx, NEW)
        checks.check(rc == 0 and before and all(len(v) == 1 and v[0][0] == home(k, OLD)
                                                for k, v in before.items())
                     and recorded_counts(ctx, OLD) == [OLD] * OLD,
                     f"first half: {sent} records, every member record applied, {len(before)} "
                     f"accounts each in its crc32 account partition of {OLD}, which record {OLD} "
                     f"(worker exit {rc})")

        # -- 2. the members topic grows: a worker refuses to start ----------------------------
        lpit.create_partitions(ctx.env.brokers, {ctx.topics["members"]: NEW})
        w = ctx.worker("refused", **lpit.pinned_clock(drain_clock))
        try:
            rc = w.proc.wait(60)
        except subprocess.TimeoutExpired:
            rc = None
        text = open(w.log_path, errors="replace").read()
        checks.check(rc not in (None, 0) and "repartition --accounts --from 3 --to 6" in text,
                     f"a worker on a members topic of {NEW} refuses to start (exit {rc}) and "
                     "names `repartition --accounts --from 3 --to 6`")

        # -- 3. the move -----------------------------------------------------------------------
        moving = sorted(k for k, v in before.items() if home(k, NEW) != v[0][0])
        r, _ = repartition(ctx, "--dry-run")
        planned = sum(int(m) for m in re.findall(r"^\d+ -> \d+: (\d+) accounts$", r.stdout, re.M))
        checks.check(r.returncode == 0 and planned == len(moving)
                     and accounts_by_partition(ctx, NEW) == before,
                     f"--dry-run: exit {r.returncode}, {planned} moves listed of {len(moving)}, "
                     "nothing changed")
        r, got = repartition(ctx)
        after = accounts_by_partition(ctx, NEW)
        wrong = [k for k, v in after.items() if len(v) != 1 or v[0][0] != home(k, NEW)]
        changed = [k for k in after if k not in before or after[k][0][1] != before[k][0][1]]
        lost = [k for k in before if k not in after and before[k][0][1] != b"\x00"]
        checks.check(r.returncode == 0 and got is not None and got[0] == len(moving) - got[2]
                     and not wrong and not changed and not lost
                     and recorded_counts(ctx, NEW) == [NEW] * NEW,
                     f"repartition: exit {r.returncode}, summary {got}; {len(after)} accounts, "
                     f"{len(wrong)} not exactly once in their crc32 partition of {NEW}, "
                     f"{len(changed)} with other bytes, {len(lost)} lost; every account "
                     f"partition records {NEW}")
        r, got = repartition(ctx)
        checks.check(r.returncode == 0 and got is not None and got[0] == 0
                     and accounts_by_partition(ctx, NEW) == after,
                     f"second run: exit {r.returncode}, summary {got}: nothing moved")

        # -- 4. the second half with 6 members partitions, then compare with replay -----------
        sent = ctx.produce(ctx.write_lines("second.jsonl", second))
        w = ctx.worker("w6", **lpit.pinned_clock(drain_clock))
        ctx.wait_applied()
        time.sleep(1)
        sc = lpit.Scenario.__new__(lpit.Scenario)
        sc.ctx, sc.until, sc.ref_state, sc.ref = ctx, until, ref_state, ref
        got = sc.settle_and_compare(checks, f"after the members topic grew {OLD} -> {NEW}")
        got_acc = {lpit.handoff_key(h) for h in got if (h.get("type") or "").startswith("Account")}
        ref_keys = {lpit.handoff_key(h) for h in ref_acc}
        checks.check(got_acc == ref_keys and len(ref_keys) > 0,
                     f"account hand-offs equal replay's: worker {len(got_acc)}, replay "
                     f"{len(ref_keys)}, missing {len(ref_keys - got_acc)}, unexpected "
                     f"{len(got_acc - ref_keys)}")
        final = accounts_by_partition(ctx, NEW)
        checks.check(all(len(v) == 1 and v[0][0] == home(k, NEW) for k, v in final.items()),
                     f"final: each of {len(final)} accounts once, in its partition of {NEW}")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
