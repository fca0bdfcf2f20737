#!/usr/bin/env python3
"""Issue 4e: a zombie worker cannot write after its partitions moved on.

Worker a is paused with SIGSTOP in the middle of a backlog, longer than session.timeout.ms (6 s);
worker b takes every partition over (bumping each partition's epoch). a is resumed (SIGCONT) with
records it had fetched before the pause: its commits carry the stale epoch and must be refused
(leadpulse_fenced_total > 0 on its /metrics, a "fenced" line in its log). The final state equals replay.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def main():
    ctx = lpit.Ctx("fencing", partitions=2)
    checks = lpit.Checks("test_worker_fencing")
    try:
        sc = lpit.Scenario(ctx, seed=41, leads=600, events=10000)
        sc.start_stream()
        sc.finish_stream()
        total = sum(ctx.input_ends().values())
        # a: small batches, so it is mid-backlog with fetched records in hand when paused.
        a = sc.worker("a", LEADPULSE_BATCH_MAX_EVENTS=20)
        a.wait_owns(2)
        sc.wait_applied_at_least(int(total * 0.2))
        a.signal(signal.SIGSTOP)
        at = sc.applied()
        b = sc.worker("b", LEADPULSE_BATCH_MAX_EVENTS=20)
        b.wait_owns(2, timeout=60)
        checks.check(at < total, f"a paused at {at} of {total} applied; b owns both partitions")
        a.signal(signal.SIGCONT)
        m = lpit.wait_until(lambda: (lambda m: m if m and m.get("leadpulse_fenced_total", 0) > 0
                                     else None)(a.metrics()), 30, "a to be fenced")
        fenced_lines = [l for l in a.log_text().splitlines() if "fenced" in l.lower()]
        checks.check(m["leadpulse_fenced_total"] > 0 and fenced_lines,
                     f"zombie a: leadpulse_fenced_total {m['leadpulse_fenced_total']:.0f}; its log "
                     f"says: {fenced_lines[0][24:160] if fenced_lines else '(nothing)'}")
        sc.wait_applied_at_least(total, timeout=120)
        sc.settle_and_compare(checks, "after the zombie")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
