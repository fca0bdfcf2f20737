#!/usr/bin/env python3
"""Issue 4c: a worker killed with SIGKILL mid-stream, several times, and restarted.

The stream (800 leads, 12k events) is produced at 2,000 events/s while the worker applies it in
small batches (batch.max_events=100); the worker is SIGKILLed once it has applied 20%, 45% and
70% of it (no clean shutdown: the batch in hand and undelivered outbox entries die with it); a
new worker takes over each time. The paced input keeps every kill mid-stream on any build and
machine speed: at 70% applied, 30% of the stream is at least 1.8 s from being produced (a
backlog produced up front was all applied before the third kill by a Release build).
Final Redis state equals `replay --state-out` for every lead, every expected MQL is on the
output topic, and duplicate deliveries (same event_id, same content) are counted and reported.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def main():
    ctx = lpit.Ctx("crash", partitions=3)
    checks = lpit.Checks("test_worker_crash")
    try:
        sc = lpit.Scenario(ctx, seed=21, leads=800, events=12000, rate=2000)
        total = sum(1 for line in open(sc.path) if line.strip())
        sc.start_stream()
        small = {"LEADPULSE_BATCH_MAX_EVENTS": 100, "LEADPULSE_OUTBOX_BATCH": 10}
        w = sc.worker("k0", **small)
        kills, pending = [], []
        for frac in (0.2, 0.45, 0.7):
            sc.wait_applied_at_least(int(total * frac))
            # Mid-stream: input still being produced or not all applied when the kill is sent (a
            # restarted worker that waited out the dead one's session can race through a
            # backlog, so the count read after the kill may already be the total).
            pending.append(sc.streaming() or sc.applied() < total)
            w.signal(9)
            w.proc.wait()
            kills.append(sc.applied())
            lpit.log(f"SIGKILL #{len(kills)} with {kills[-1]} of {total} records applied, "
                     f"outbox holding {ctx.outbox_len()}; restarting")
            w = sc.worker(f"k{len(kills)}", **small)
        checks.check(len(kills) == 3 and all(pending),
                     f"worker SIGKILLed {len(kills)} times mid-stream (stream pending at each kill: "
                     f"{pending}; applied after each: {kills} of {total})")
        sc.finish_stream()
        sc.wait_applied_at_least(total, timeout=120)
        got = sc.settle_and_compare(checks, "after 3 SIGKILLs")
        lpit.log(f"duplicate deliveries reported: {len(got) - len({h['event_id'] for h in got})}"
                 f" of {len(got)} records")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
