#!/usr/bin/env python3
"""Issue 4d: two workers in one group; one leaves mid-stream and its partitions move.

Round 1: SIGTERM (clean leave: finishes its batch, drains its outbox, leaves the group).
Round 2: the worker is started again, both share the partitions, then one is SIGKILLed (the
group notices after session.timeout.ms). The survivor must take every partition over; final
state equals replay and no MQL is missing. The stream is produced in two halves, one per round, so
each leave happens with a backlog in hand.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def main():
    ctx = lpit.Ctx("rebalance", partitions=4)
    checks = lpit.Checks("test_worker_rebalance")
    try:
        sc = lpit.Scenario(ctx, seed=31, leads=800, events=12000)
        # Produced in two parts, so there is a backlog left for each round.
        lines = open(sc.path).read().splitlines(keepends=True)
        first, second = os.path.join(ctx.dir, "part0.jsonl"), os.path.join(ctx.dir, "part1.jsonl")
        with open(first, "w") as f:
            f.writelines(lines[:len(lines) // 2])
        with open(second, "w") as f:
            f.writelines(lines[len(lines) // 2:])
        ctx.produce(first)
        total = len(lines)
        small = {"LEADPULSE_BATCH_MAX_EVENTS": 100}
        a = sc.worker("a", **small)
        b = sc.worker("b", **small)
        lpit.wait_until(lambda: (a.metrics() or {}).get("leadpulse_partitions_owned") == 2 and
                        (b.metrics() or {}).get("leadpulse_partitions_owned") == 2, 60,
                        "both workers to own 2 partitions")
        checks.check(True, "two workers share 4 partitions 2/2")
        sc.wait_applied_at_least(int(total * 0.15))
        rc = b.stop()
        at = sc.applied()
        a.wait_owns(4)
        checks.check(rc == 0 and at < total,
                     f"round 1: SIGTERM b at {at} of {total} applied (exit {rc}); a owns all 4")
        b2 = sc.worker("b2", **small)
        lpit.wait_until(lambda: (b2.metrics() or {}).get("leadpulse_partitions_owned") == 2, 60,
                        "b2 to own 2 partitions")
        ctx.produce(second)
        sc.wait_applied_at_least(int(total * 0.6))
        b2.signal(9)
        b2.proc.wait()
        at = sc.applied()
        a.wait_owns(4, timeout=60)
        checks.check(at < total, f"round 2: SIGKILL b2 at {at} of {total} applied; a owns all 4 "
                                 "after the session timeout")
        sc.wait_applied_at_least(total, timeout=120)
        sc.settle_and_compare(checks, "after two rebalances")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
