#!/usr/bin/env python3
"""Scale-out: three workers on 12 partitions; one leaves, one joins, one crashes, mid-stream.

The stream (~1,500 leads, ~30,000 events, no bad lines) goes to 12-partition input topics
once workers a, b and c share the partitions: the first half at once (a backlog), the rest paced
at 1,500 events/s, so every membership change happens with records produced and not yet
applied and more still to come. Small batches (batch.max_events=150).

  1. a, b, c join: they must own 12 partitions between them, each at least one; the range
     assignor (the worker's fixed choice, docs/architecture.md item 1) gives 12/3 = 4/4/4;
     each of them applies records of its partitions (their offsets stored in Redis).
  2. c gets SIGTERM in the middle of the backlog (clean leave: finishes its batch, drains its
     outbox, leaves the group); a and b must take all 12 (6/6), and c's partitions must move
     on (their stored offsets grow after c exited).
  3. d starts mid-stream: it must get partitions (4/4/4 again) and apply them.
  4. a is SIGKILLed mid-stream (a crash: no leave; the group notices after session.timeout.ms,
     6 s as lpit sets it); b and d must take all 12 (6/6), a's partitions must move on.

Cross-topic order is not what this test is about, so it is given the conditions under which
the design promises it (docs/architecture.md item 6): the producer bounds what it has in flight
(`produce --ordered-ms 100`, as the chaos test does), and the merge holds a record 1 s
(merge.grace_ms; lpit's 250 ms) for an older one of another topic. With 250 ms, four workers
and the producer on a loaded 2-core machine sometimes applied a sales decision and an activity
of one lead, produced 40-300 ms apart, in the wrong order (leads lost an MQL or gained an SLA
breach; 3 of 12 runs, 2 of 6 with the test pinned to one core); with 1 s, 0 of 6 on one core.

Then every worker stops and one worker with its clock at T fires the remaining timers (as
lpit.Scenario does), and the outcome must equal `leadpulse replay --until T`:
  - stored offsets = the input topics' ends, the outbox empty;
  - every hand-off of replay's on the output topics (mql, stale, erased) by event id, none that
    replay has not, and each event id with replay's content; redeliveries of the same content are
    allowed by the at-least-once delivery contract (docs/architecture.md, "Effectively-once
    output"), so they are counted and printed, not failed; one event id with two contents fails;
  - every lead's state (inspect --all) equal to replay's state (lpit.compare_states);
  - no dead letters.

Ownership, what the design promises and how it is checked (docs/architecture.md, "Partition
ownership", "Fencing", item 1; src/io/worker_rebalance.c):
  - The assignor is `range` with the EAGER protocol: at every rebalance each member revokes all
    of its partitions in the rebalance callback (on_revoke: owned = false, "partition N revoked")
    before it rejoins, and the group hands out the next assignment only after every member
    rejoined (or was dropped after session.timeout.ms). A member that leaves (SIGTERM) revokes
    in rd_kafka_consumer_close before its LeaveGroup; a killed one stops owning when it dies.
    So, per partition, the ownership intervals of all workers, reconstructed from their logs
    ("assigned" → "revoked", a fenced write, or the process' end), NEVER overlap. Checked
    exactly, from the log timestamps (one clock: every worker runs on this machine).
  - Every take fences: INCR <prefix>:{p}:epoch, then the "partition N assigned" line (or the
    "resumed from its stored offsets" line of a re-take). So the epoch of each partition in Redis
    equals the number of takes logged for it by all workers (the kills are done only while the
    group is settled, never in the middle of a take).
  - Redis is the source of truth for progress, so the offsets a new owner starts from never go
    back: at successive takes of a partition each input topic's offset is non-decreasing (a
    new owner that started behind would re-apply records another owner had applied).
  - No zombie: nobody is expelled while alive (heartbeats run on librdkafka's thread, session
    timeout 6 s), so no commit or outbox delete may be refused for a stale epoch ("commit
    fenced" / "epoch is stale" lines, leadpulse_fenced_total).
  - /metrics, sampled every 0.2 s from every worker that has not been signalled: the sum of
    leadpulse_partitions_owned must be at most 12, except in windows shorter than
    OVER_LIMIT_S. The sum may exceed 12 for a moment although ownership never overlaps,
    because /metrics is a snapshot the loop publishes at most every 250 ms (STATUS_EVERY_MS):
    a worker that revoked can still show its old count for up to 250 ms plus a loop pass while
    the next owner already shows its new one (and one sample reads the workers one after the
    other). A worker that keeps a revoked partition in its books would exceed 12 for good.

LP_TEST_CLUSTER=1 runs the workers against Redis Cluster (lpit.Ctx(..., cluster=True)).
"""
import inspect
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

PARTITIONS = 12
# Small batches (a longer run); merge grace 1 s instead of lpit's 250 ms (see the docstring).
SMALL = {"LEADPULSE_BATCH_MAX_EVENTS": 150, "LEADPULSE_MERGE_GRACE_MS": 1000}
RATE = 1500              # events/s of the paced part of the stream
FIRST_PART = 0.5         # share of the stream produced at once, before the paced rest
ORDERED = ("--ordered-ms", "100")  # cross-topic order is the producer's (see the docstring)
SAMPLE_S = 0.2           # /metrics sampling interval of the ownership sampler
OVER_LIMIT_S = 1.5       # longest window in which the sampled sum may exceed PARTITIONS
OWNED = "leadpulse_partitions_owned"

T = r"^(\S+Z) +\S+ +\[worker\] "
ASSIGNED = re.compile(T + r"partition (\d+) assigned \(offsets (-?\d+)/(-?\d+)/(-?\d+)\)")
RETAKEN = re.compile(T + r"partition (\d+): .*; resumed from its stored offsets "
                         r"(-?\d+)/(-?\d+)/(-?\d+)")
REVOKED = re.compile(T + r"partition (\d+) revoked")
FENCED = re.compile(r"partition (\d+): (?:commit fenced|outbox ack fenced|epoch is stale)")


class Fleet:
    """The workers of the test, which of them are live (not signalled), when each ended, and a
    sampler of their leadpulse_partitions_owned."""

    def __init__(self, ctx, sc):
        self.ctx = ctx
        self.sc = sc
        self.workers = {}
        self.live = {}
        self.ended_ms = {}
        self.last_metrics = {}
        self.lock = threading.Lock()
        self.samples = []   # (monotonic s, {name: owned})
        self.sample_errors = []
        self.halt = threading.Event()
        self.thread = None

    def start(self, name, final_at=None):
        if final_at is None:
            w = self.sc.worker(name, **SMALL)
        else:
            w = self.ctx.worker(name, **lpit.pinned_clock(final_at))
        with self.lock:
            self.workers[name] = w
            self.live[name] = w
        return w

    def _leave(self, name):
        """Takes the worker out of the sampled set (before it is signalled) and keeps its last
        metrics."""
        with self.lock:
            w = self.live.pop(name)
        self.last_metrics[name] = w.metrics() or {}
        return w

    def stop(self, name):
        w = self._leave(name)
        rc = w.stop()
        self.ended_ms[name] = lpit.now_ms()
        return rc

    def kill(self, name):
        w = self._leave(name)
        w.signal(9)
        w.proc.wait()
        self.ended_ms[name] = lpit.now_ms()

    def owned(self, names):
        out = {}
        for n in names:
            w = self.workers[n]
            if not w.alive():
                raise RuntimeError(f"worker {n} exited with status {w.proc.returncode}: "
                                   f"{w.tail()}")
            out[n] = w.metric(OWNED)
        return out

    def wait_settled(self, names, timeout=60):
        """Until the named workers own PARTITIONS between them, each at least one, the same in
        two readings 0.3 s apart. Returns {name: owned}."""
        prev = [None]

        def settled():
            c = self.owned(names)
            ok = all(v is not None and v >= 1 for v in c.values()) and \
                sum(c.values()) == PARTITIONS
            stable = ok and c == prev[0]
            prev[0] = c if ok else None
            return {n: int(v) for n, v in c.items()} if stable else None
        return lpit.wait_until(settled, timeout,
                               f"{'+'.join(names)} to own {PARTITIONS} partitions", interval=0.3)

    # -- the sampler --
    def _sample_loop(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                with self.lock:
                    row = {n: w.metric(OWNED) for n, w in self.live.items()}
                self.samples.append((t0, row))
            except Exception as e:  # noqa: BLE001 (keep sampling; reported at the end)
                self.sample_errors.append(f"{type(e).__name__}: {e}")
            self.halt.wait(max(0.0, SAMPLE_S - (time.monotonic() - t0)))

    def start_sampler(self):
        self.thread = threading.Thread(target=self._sample_loop, daemon=True)
        self.thread.start()

    def stop_sampler(self):
        self.halt.set()
        if self.thread is not None:
            self.thread.join(10)


def part_offsets(ctx, parts):
    """Sum of the next offsets stored in Redis over the input topics of the given partitions."""
    total = 0
    inputs = {ctx.topics[k] for k in ("engagement", "profiles", "feedback")}
    for p in parts:
        h = ctx.redis.command("HGETALL", f"{ctx.prefix}:{{{p}}}:offsets") or []
        total += sum(max(int(h[i + 1]), 0) for i in range(0, len(h), 2)
                     if h[i].decode() in inputs)
    return total


def split(counts):
    return "/".join(str(counts[n]) for n in sorted(counts))


def change_point(ctx, sc, produced=None):
    """(applied, produced so far, backlog, whether the paced producer still runs) just before
    a membership change: the input ends (or what is known to be produced) are read first, so
    the backlog is a lower bound."""
    ends = produced if produced is not None else sum(ctx.input_ends().values())
    at = sc.applied()
    return at, ends, ends - at, "stream still producing" if sc.streaming() else "stream produced"


def moves_on(ctx, parts, what, timeout=60):
    """Waits until the stored offsets of parts grow (their new owners apply them)."""
    base = part_offsets(ctx, parts)
    return lpit.wait_until(lambda: (lambda v: v if v > base else None)(part_offsets(ctx, parts)),
                           timeout, f"{what} partitions {sorted(parts)} to move on"), base


# ---- the end: one worker at T, then the comparisons ----------------------------------------------

def settle(ctx, sc, fleet, checks):
    for name in list(fleet.live):
        rc = fleet.stop(name)
        checks.check(rc == 0, f"{name} stopped with SIGTERM: exit status {rc}")
    final = fleet.start("final", final_at=sc.until)
    try:
        ctx.wait_applied(timeout=180)
    except TimeoutError as e:
        lpit.log(f"  {e}")
    ends, stored, outbox = ctx.input_ends(), ctx.stored_offsets(), ctx.outbox_len()
    checks.check(stored == ends and outbox == 0,
                 f"offsets stored in Redis {stored} = input ends {ends}; outbox holds {outbox}")

    ref = {}
    for h in sc.ref:
        k = lpit.handoff_key(h)
        ref.setdefault(k[1], set()).add(k)
    ref_many = [i for i, v in ref.items() if len(v) > 1]
    if ref_many:
        lpit.log(f"  note: replay has {len(ref_many)} event ids with two hand-offs, e.g. "
                 f"{ref_many[:3]}")
    which = ("mql", "stale", "erased")

    def complete():
        got = ctx.consume(which)
        return got if {h["event_id"] for h in got} >= set(ref) else None
    try:
        got = lpit.wait_until(complete, 60, "every expected hand-off", interval=1)
    except TimeoutError as e:
        lpit.log(f"  {e}")
        got = ctx.consume(which)
    by_id = {}
    for h in got:
        by_id.setdefault(h["event_id"], []).append(lpit.handoff_key(h))
    missing = sorted(set(ref) - set(by_id))
    unexpected = sorted(set(by_id) - set(ref))
    conflicting = sorted(i for i, ks in by_id.items() if len(set(ks)) > 1)
    differing = sorted(i for i, ks in by_id.items()
                       if i in ref and i not in conflicting and set(ks) != ref[i])
    dups = {i: len(ks) for i, ks in by_id.items() if len(ks) > len(set(ks))}
    kinds = {}
    for v in ref.values():
        for k in v:
            kinds[k[0]] = kinds.get(k[0], 0) + 1
    for i in missing[:5]:
        lpit.log(f"    missing {sorted(ref[i])}")
    for i in unexpected[:5]:
        lpit.log(f"    unexpected {by_id[i]}")
    for i in (conflicting + differing)[:5]:
        lpit.log(f"    {i}: worker {sorted(set(by_id[i]))} replay {sorted(ref.get(i, ()))}")
    checks.check(not missing and len(ref) > 20,
                 f"every hand-off of replay delivered: {len(ref) - len(missing)} of {len(ref)} "
                 f"event ids ({kinds}), missing {len(missing)}")
    checks.check(not unexpected, f"no hand-off replay does not have: {len(unexpected)} unexpected")
    checks.check(not conflicting and not differing,
                 f"each event id with replay's content: {len(conflicting)} event ids with two "
                 f"contents, {len(differing)} different from replay's")
    extra = sum(n - 1 for n in dups.values())
    lpit.log(f"  duplicate deliveries (same event id, same content; allowed, counted): {extra} "
             f"extra records for {len(dups)} event ids, {len(got)} records in all"
             + (f"; e.g. {sorted(dups.items())[:5]}" if dups else ""))
    lpit.compare_states(checks, ctx.inspect_all(), sc.ref_state, "final state")
    dlq = ctx.consume(("dlq",), raw=True)
    checks.check(len(dlq) == 0, f"dead letters: {len(dlq)}")
    rc = fleet.stop("final")
    checks.check(rc == 0, f"final worker stopped with SIGTERM: exit status {rc}")
    return extra


# ---- ownership, from the logs, Redis and the samples ------------------------------------------

def ownership_from_logs(fleet):
    """Per partition: the ownership intervals [(start ms, end ms, worker)], the takes
    [(ms, worker, offsets)], and the fenced-write lines of all workers."""
    intervals = {p: [] for p in range(PARTITIONS)}
    takes = {p: [] for p in range(PARTITIONS)}
    fenced, oddities = [], []
    for name, w in fleet.workers.items():
        open_ = {}
        for line in w.log_text().splitlines():
            if FENCED.search(line):
                fenced.append(f"{name}: {line}")
            m = ASSIGNED.match(line) or RETAKEN.match(line)
            if m:
                t, p = lpit.log_line_ms(m.group(1)), int(m.group(2))
                takes[p].append((t, name, tuple(int(m.group(k)) for k in (3, 4, 5))))
                if p in open_ and m.re is ASSIGNED:
                    oddities.append(f"{name}: partition {p} assigned twice without a revoke")
                open_.setdefault(p, t)
                continue
            m = REVOKED.match(line)
            f = FENCED.search(line)
            if m or f:
                p = int((m or f).group(2 if m else 1))
                if p in open_:
                    intervals[p].append((open_.pop(p), lpit.log_line_ms(line), name))
        end = fleet.ended_ms.get(name, lpit.now_ms())
        for p, t in open_.items():
            intervals[p].append((t, end, name))
    return intervals, takes, fenced, oddities


def check_ownership(ctx, fleet, checks):
    intervals, takes, fenced, oddities = ownership_from_logs(fleet)
    overlaps, handovers, gaps = [], 0, []
    for p, iv in intervals.items():
        iv.sort()
        for prev, nxt in zip(iv, iv[1:]):
            handovers += 1
            gaps.append(nxt[0] - prev[1])
            if nxt[0] < prev[1]:
                overlaps.append(f"partition {p}: {prev[2]} owned it until {prev[1]}, "
                                f"{nxt[2]} took it at {nxt[0]}")
    for o in (oddities + overlaps)[:8]:
        lpit.log(f"    {o}")
    n = sum(map(len, intervals.values()))
    checks.check(not overlaps and not oddities and handovers > 0,
                 f"ownership intervals from the logs never overlap: {n} intervals, {handovers} "
                 f"hand-overs (gap old end → new start: min "
                 f"{min(gaps) if gaps else '-'} ms, max {max(gaps) if gaps else '-'} ms), "
                 f"{len(overlaps)} overlaps, {len(oddities)} double assignments")

    epochs = {p: int(ctx.redis.command("GET", f"{ctx.prefix}:{{{p}}}:epoch") or 0)
              for p in range(PARTITIONS)}
    bad = {p: (epochs[p], len(takes[p])) for p in range(PARTITIONS) if epochs[p] != len(takes[p])}
    checks.check(not bad,
                 f"each partition's epoch = takes logged (one fence per take): epochs "
                 f"{[epochs[p] for p in range(PARTITIONS)]}; mismatches (epoch, takes) {bad}")

    back = []
    for p, tk in takes.items():
        tk.sort()
        for prev, nxt in zip(tk, tk[1:]):
            if any(b < a for a, b in zip(prev[2], nxt[2])):
                back.append(f"partition {p}: {prev[1]} started at {prev[2]}, then {nxt[1]} at "
                            f"{nxt[2]}")
    for b in back[:5]:
        lpit.log(f"    {b}")
    checks.check(not back,
                 f"start offsets of successive takes never go back: {sum(map(len, takes.values()))}"
                 f" takes, {len(back)} went back")

    for n, m in fleet.last_metrics.items():
        lpit.log(f"  {n} before its stop: " + ", ".join(
            f"{k[10:]} {m.get(k, 0):g}" for k in (
                "leadpulse_events_total", "leadpulse_events_duplicate_total",
                "leadpulse_rebalances_total", "leadpulse_merge_wait_timeouts_total",
                "leadpulse_merge_early_releases_total", "leadpulse_fetch_restarts_total",
                "leadpulse_input_pauses_total")))
    metric_fenced = {n: m.get("leadpulse_fenced_total") for n, m in fleet.last_metrics.items()}
    for line in fenced[:5]:
        lpit.log(f"    {line}")
    checks.check(not fenced and not any(metric_fenced.values()),
                 f"no zombie writes: {len(fenced)} fenced lines in the logs; "
                 f"leadpulse_fenced_total before each stop {metric_fenced}")


def check_samples(fleet, checks):
    s = fleet.samples
    sums = [sum(v for v in row.values() if v is not None) for _, row in s]
    runs, start = [], None
    for i, (t, _) in enumerate(s):
        if sums[i] > PARTITIONS and start is None:
            start = t
        elif sums[i] <= PARTITIONS and start is not None:
            runs.append(t - start)
            start = None
    if start is not None:
        runs.append(s[-1][0] - start + SAMPLE_S)
    over = sum(1 for x in sums if x > PARTITIONS)
    top = f"{max(sums):g}" if sums else "-"
    worst = max(runs) if runs else 0.0
    for (t, row), x in zip(s, sums):
        if x > PARTITIONS:
            lpit.log(f"    sample at +{t - s[0][0]:.1f} s: {row} (sum {x:g})")
    if fleet.sample_errors:
        lpit.log(f"  sampler errors: {len(fleet.sample_errors)}, e.g. {fleet.sample_errors[0]}")
    checks.check(len(s) > 50 and worst < OVER_LIMIT_S,
                 f"sampled ownership: {len(s)} samples every {SAMPLE_S} s, sum of "
                 f"{OWNED} at most {top}; above {PARTITIONS} in {over} "
                 f"samples, longest window {worst:.2f} s (limit {OVER_LIMIT_S} s)")


# ---- the test -----------------------------------------------------------------------------------

def main():
    t_begin = time.monotonic()
    kwargs = {"cluster": True} if os.environ.get("LP_TEST_CLUSTER") == "1" else {}
    if kwargs and "cluster" not in inspect.signature(lpit.Ctx).parameters:
        lpit.log("FATAL: LP_TEST_CLUSTER=1, but lpit.Ctx has no `cluster` keyword yet")
        sys.exit(2)
    ctx = lpit.Ctx("scaleout", partitions=PARTITIONS, **kwargs)
    checks = lpit.Checks("test_worker_scaleout")
    fleet = None
    try:
        sc = lpit.Scenario(ctx, seed=71, leads=1500, events=30000)
        lines = open(sc.path).read().splitlines(keepends=True)
        total = len(lines)
        first, rest = os.path.join(ctx.dir, "part0.jsonl"), os.path.join(ctx.dir, "part1.jsonl")
        with open(first, "w") as f:
            f.writelines(lines[:int(total * FIRST_PART)])
        with open(rest, "w") as f:
            f.writelines(lines[int(total * FIRST_PART):])
        fleet = Fleet(ctx, sc)
        fleet.start_sampler()

        # 1. a, b, c share the partitions; then half the stream at once, the rest paced.
        t0 = time.monotonic()
        for name in ("a", "b", "c"):
            fleet.start(name)
        got = fleet.wait_settled(["a", "b", "c"])
        checks.check(sorted(got.values()) == [4, 4, 4],
                     f"a, b, c own {sum(got.values())} partitions, each at least one: "
                     f"{split(got)} (range gives 4/4/4) after {time.monotonic() - t0:.1f} s")
        parts = {n: sorted(fleet.workers[n].partitions_assigned()) for n in ("a", "b", "c")}
        t_stream = time.monotonic()
        sent = ctx.produce(first, *ORDERED)
        sc.producer = ctx.produce_async(rest, *ORDERED, "--rate", str(RATE))
        lpit.log(f"produced {sent} records at once in {time.monotonic() - t_stream:.2f} s; the "
                 f"other {total - sent} at {RATE}/s")

        # 2. c leaves cleanly in the middle of that backlog.
        sc.wait_applied_at_least(int(total * 0.1))
        at, ends, backlog, live = change_point(ctx, sc, produced=sent)
        t0 = time.monotonic()
        rc = fleet.stop("c")
        t_stop = time.monotonic() - t0
        per = {n: part_offsets(ctx, parts[n]) for n in ("a", "b", "c")}
        checks.check(all(per.values()),
                     f"each of a, b, c applied records of its partitions (stored offsets "
                     f"{'/'.join(str(per[n]) for n in ('a', 'b', 'c'))})")
        got = fleet.wait_settled(["a", "b"])
        t_move = time.monotonic() - t0
        checks.check(rc == 0 and at < total and sorted(got.values()) == [6, 6],
                     f"SIGTERM c (partitions {parts['c']}) at {at} of {total} applied, backlog "
                     f">= {backlog} ({live}): exit {rc} in {t_stop:.1f} s; a/b own "
                     f"{split(got)} {t_move:.1f} s after the signal")
        now, base = moves_on(ctx, parts["c"], "c's")
        checks.check(True, f"c's partitions move on under a and b: stored offsets {base} → {now}")

        # 3. d joins mid-stream.
        sc.wait_applied_at_least(int(total * 0.6))
        at, ends, backlog, live = change_point(ctx, sc)
        t0 = time.monotonic()
        fleet.start("d")
        got = fleet.wait_settled(["a", "b", "d"])
        t_move = time.monotonic() - t0
        d_parts = sorted(fleet.workers["d"].partitions_assigned())
        checks.check(at < total and sorted(got.values()) == [4, 4, 4],
                     f"d started at {at} of {total} applied, backlog >= {backlog} ({live}): "
                     f"a/b/d own {split(got)} {t_move:.1f} s later; d took {d_parts}")
        now, base = moves_on(ctx, d_parts, "d's")
        checks.check(True, f"d applies its partitions: stored offsets {base} → {now}")

        # 4. a crashes mid-stream (SIGKILL, with the group settled).
        sc.wait_applied_at_least(int(total * 0.75))
        fleet.wait_settled(["a", "b", "d"], timeout=30)
        a_parts = sorted(fleet.workers["a"].partitions_assigned())
        at, ends, backlog, live = change_point(ctx, sc)
        t0 = time.monotonic()
        fleet.kill("a")
        got = fleet.wait_settled(["b", "d"], timeout=60)
        t_move = time.monotonic() - t0
        checks.check(at < total and sorted(got.values()) == [6, 6],
                     f"SIGKILL a (partitions {a_parts}) at {at} of {total} applied, backlog >= "
                     f"{backlog} ({live}); b/d own {split(got)} {t_move:.1f} s later "
                     f"(session timeout 6 s)")
        now, base = moves_on(ctx, a_parts, "a's")
        checks.check(True, f"a's partitions move on under b and d: stored offsets {base} → {now}")

        sc.finish_stream()
        sc.wait_applied_at_least(total, timeout=120)
        lpit.log(f"stream of {total} records applied {time.monotonic() - t_stream:.1f} s after "
                 f"it started; outbox holding {ctx.outbox_len()}")
        fleet.stop_sampler()
        check_samples(fleet, checks)

        settle(ctx, sc, fleet, checks)
        check_ownership(ctx, fleet, checks)
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        if fleet is not None:
            fleet.stop_sampler()
        ctx.cleanup()
    lpit.log(f"test_worker_scaleout: {time.monotonic() - t_begin:.1f} s in all")
    checks.finish()


if __name__ == "__main__":
    main()
