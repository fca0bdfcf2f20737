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
    # Eight partitions: the worker commits one partition while it applies the next, so the reply
    # it most often waits for is the last one of a pass; with more partitions per pass, a pause
    # more often lands where batches are still to be committed after it (on 2 partitions the
    # zombie wrote nothing in 3 pauses; on 4, once in a CI-like run).
    ctx = lpit.Ctx("fencing", partitions=8)
    checks = lpit.Checks("test_worker_fencing")
    try:
        sc = lpit.Scenario(ctx, seed=41, leads=800, events=20000)
        # The stream in parts: a backlog for each pause (b applies what is left fast).
        lines = open(sc.path).read().splitlines(keepends=True)
        cut = [0] + [len(lines) * k // 10 for k in (6, 7, 8, 9)] + [len(lines)]
        parts = []
        for k in range(len(cut) - 1):
            part = os.path.join(ctx.dir, f"part{k}.jsonl")
            with open(part, "w") as f:
                f.writelines(lines[cut[k]:cut[k + 1]])
            parts.append(part)
        ctx.produce(parts[0])
        total = len(lines)
        # a: small batches, so it is mid-backlog with fetched records in hand when paused.
        a = sc.worker("a", LEADPULSE_BATCH_MAX_EVENTS=10)
        a.wait_owns(8)
        b = None

        def fenced_lines():
            return [l for l in a.log_text().splitlines()
                    if "is stale" in l or "fenced" in l.lower()]
        lines = []
        # A zombie only writes if it still holds fetched records (or unacknowledged outbox
        # entries) when it wakes up, before librdkafka, which notices the session timeout at
        # once, revokes its partitions: a pause during the last commit of a loop pass sees the
        # revoke first. Up to 5 pauses while backlog is left.
        for attempt in range(1, len(parts) + 1):
            if attempt == 1:
                sc.wait_applied_at_least(int(total * 0.1))
            else:
                ctx.produce(parts[attempt - 1])
                sc.wait_applied_at_least(cut[attempt - 1] + 200)
            caught = a.stop_mid_store_call()
            at = sc.applied()
            if b is None:
                b = sc.worker("b", LEADPULSE_BATCH_MAX_EVENTS=10)
            b.wait_owns(8, timeout=60)
            lpit.log(f"pause {attempt}: a stopped {'waiting for Redis ' if caught else ''}at "
                     f"{at} of {total} applied; b owns every partition; resuming a")
            a.signal(signal.SIGCONT)
            try:
                lines = lpit.wait_until(fenced_lines, 8, "a's stale-epoch commit to be refused")
                break
            except TimeoutError:
                a.wait_owns(4, timeout=60)  # a rejoined and shares the partitions again
        # /metrics is a snapshot the loop publishes every 250 ms: poll it for a few seconds.
        def fenced_metric():
            m = a.metrics() or {}
            return m if m.get("leadpulse_fenced_total", 0) > 0 else None
        try:
            m = lpit.wait_until(fenced_metric, 10, "leadpulse_fenced_total > 0") if lines else {}
        except TimeoutError:
            m = a.metrics() or {}
        checks.check(bool(lines), f"zombie a: its stale-epoch commit was refused: "
                                  f"{lines[0][24:150] if lines else f'(never, in {attempt} pauses)'}")
        checks.check(m.get("leadpulse_fenced_total", 0) > 0,
                     f"zombie a: /metrics leadpulse_fenced_total = "
                     f"{m.get('leadpulse_fenced_total')} (after {len(lines)} refused writes logged)")
        for part in parts[attempt:]:
            ctx.produce(part)
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
