#!/usr/bin/env python3
"""Issue 16: the worker on a real Redis Cluster (3 masters + 3 replicas, deploy/local/stack with
LP_STACK_REDIS_CLUSTER=1), under the two things a cluster does to its clients, mid-stream
(after `leadpulse cluster-place` has evened out the partitions over the masters, also while the
worker runs):

1. The slot of the busiest partition is migrated to another master while the worker applies the
   stream (the manual resharding protocol, one key at a time with pauses, so the slot stays half
   migrated for seconds: reads of moved keys are answered ASK, the commit TRYAGAIN until the
   migration ends, then MOVED). The worker must follow without losing or re-applying anything.
2. The master serving another busy partition is killed with SIGKILL; its replica is promoted
   (cluster-node-timeout 2 s). Replication is asynchronous, so writes the master acknowledged may be
   missing on the replica; the test makes that certain (the replica is cut off for 1.5 s of
   commits first): the offsets' compare-and-set must see it (leadpulse_store_lost_writes_total)
   and the worker take the partition again from what the new master holds and re-apply the rest.
   The killed node is started again (it rejoins as a replica).

The stream (900 leads, 24k events) is produced at 1,500 events/s so both faults land mid-stream.
Afterwards: the final state equals `leadpulse replay` for every lead, every hand-off of replay is
on the output topics (duplicates with the same event id and content are allowed and counted), no
hand-off replay lacks, and the partitions' keys live on more than one master.
"""
import collections
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

PARTITIONS = 6


def busiest(ctx, exclude=()):
    """The partition with the most leads stored so far (HLEN summed over its lead buckets)."""
    sizes = {p: lpit.partition_lead_count(ctx.redis, ctx.prefix, p)
             for p in range(PARTITIONS) if p not in exclude}
    return max(sizes, key=sizes.get), sizes


def metric_sum(ctx, name):
    return sum((w.metrics() or {}).get(name, 0) for w in ctx.workers if w.alive())


def main():
    ctx = lpit.Ctx("cluster", partitions=PARTITIONS, cluster=True)
    checks = lpit.Checks("test_worker_cluster")
    try:
        sc = lpit.Scenario(ctx, seed=61, leads=900, events=24000, rate=1500)
        total = sum(1 for line in open(sc.path) if line.strip())
        sc.start_stream()
        w = sc.worker("c0", LEADPULSE_BATCH_MAX_EVENTS=200)
        sc.wait_applied_at_least(int(total * 0.05))

        # 0. `leadpulse cluster-place` evens out the partitions over the masters while the
        # worker runs (on a new cluster the 6 partitions' slots fall 1/3/2).
        r = subprocess.run([ctx.env.bin, "cluster-place", "--config", ctx.config(),
                            "--partitions", str(PARTITIONS)], env=ctx.base_env(),
                           capture_output=True, text=True, timeout=120, cwd=ctx.env.src)
        ctx.redis.refresh()
        per = collections.Counter(ctx.redis.owner(lpit.slot_of(f"{{{p}}}"))
                                  for p in range(PARTITIONS))
        summary = (r.stderr.strip().splitlines() or ["?"])[-1]
        checks.check(r.returncode == 0 and sorted(per.values()) == [2, 2, 2],
                     f"cluster-place while the worker runs: exit {r.returncode}, '{summary}'; "
                     f"partitions per master now {sorted(per.values())}")
        sc.wait_applied_at_least(int(total * 0.15))

        # 1. A busy partition's slot migrated under the worker.
        p1, sizes = busiest(ctx)
        slot = lpit.slot_of(f"{{{p1}}}")
        src = ctx.redis.owner(slot)
        dst = next(m for m in ctx.redis.masters() if m != src)
        before = sc.applied()
        offs_before = int(ctx.redis.command("HGET", f"{ctx.prefix}:{{{p1}}}:offsets",
                                            ctx.topics["engagement"]) or 0)
        t0 = time.monotonic()
        # One key at a time, spread over ~4 s: the slot stays half migrated while the worker
        # commits (the slot may hold other tests' keys too).
        node = ctx.redis.node(*src)
        nkeys = int(node.command("CLUSTER", "COUNTKEYSINSLOT", slot) or 1)
        node.close()
        moved = ctx.migrate_slot(slot, dst[1], pause_s=min(0.7, 4.0 / max(nkeys, 1)), batch=1)
        took = time.monotonic() - t0
        during = sc.applied() - before
        ctx.redis.refresh()
        checks.check(moved >= 3 and ctx.redis.owner(slot) == dst,
                     f"partition {p1} (leads {sizes[p1]}, the busiest) moved from master "
                     f":{src[1]} to :{dst[1]} mid-stream: {moved} keys, one at a time, in "
                     f"{took:.1f} s; the worker applied {during} records meanwhile")
        lpit.wait_until(lambda: int(ctx.redis.command(
            "HGET", f"{ctx.prefix}:{{{p1}}}:offsets", ctx.topics["engagement"]) or 0)
            > offs_before, 60, f"partition {p1} to advance on its new master")
        redirects = metric_sum(ctx, "leadpulse_redis_redirects_total")
        checks.check(redirects > 0 and w.alive(),
                     f"the worker followed the migration (leadpulse_redis_redirects_total "
                     f"{redirects:.0f}) and partition {p1} advances on :{dst[1]}")

        # 2. The master of another busy partition killed; its replica takes over, lacking the
        # master's last acknowledged writes: the replica is stopped (SIGSTOP), its link cut
        # (CLIENT KILL TYPE replica on the master), the worker commits to the master alone for
        # 1.5 s, then the master is SIGKILLed and the replica continued. What asynchronous
        # replication loses in a real crash, made certain.
        sc.wait_applied_at_least(int(total * 0.55))
        p2, _ = busiest(ctx, exclude=(p1,))
        ctx.redis.refresh()
        host, port = ctx.redis.owner(lpit.slot_of(f"{{{p2}}}"))
        replica = next(n["port"] for n in ctx.cluster_nodes()
                       if n["master"] == port and not n["down"])
        rconn = ctx.redis.node(host, replica)
        info = rconn.command("INFO", "server").decode()
        rconn.close()
        rpid = int(next(l.split(":")[1] for l in info.splitlines()
                        if l.startswith("process_id:")))
        lost_before = metric_sum(ctx, "leadpulse_store_lost_writes_total")
        os.kill(rpid, signal.SIGSTOP)
        try:
            mconn = ctx.redis.node(host, port)
            mconn.command("CLIENT", "KILL", "TYPE", "replica")
            mconn.close()
            time.sleep(1.5)
            t0 = time.monotonic()
            lpit.stop_node(port, kill=True)
        finally:
            os.kill(rpid, signal.SIGCONT)
        at = sc.applied()
        lpit.log(f"SIGKILL of master :{port} (partition {p2}) at {at} of {total} applied, its "
                 f"replica :{replica} 1.5 s behind")
        waited = ctx.cluster_wait(timeout=60)
        promoted = time.monotonic() - t0
        ctx.redis.refresh()
        new_owner = ctx.redis.owner(lpit.slot_of(f"{{{p2}}}"))
        checks.check(new_owner[1] == replica and at < total,
                     f"mid-stream ({at} of {total} applied), replica :{new_owner[1]} promoted "
                     f"for partition {p2} in {promoted:.1f} s (cluster ok after {waited:.1f} s "
                     f"of waiting)")
        try:
            lpit.wait_until(lambda: metric_sum(ctx, "leadpulse_store_lost_writes_total") >
                            lost_before, 60, "the worker to see the lost writes")
        except TimeoutError:
            pass
        lost = metric_sum(ctx, "leadpulse_store_lost_writes_total") - lost_before
        checks.check(lost >= 1,
                     f"the worker saw the promoted replica behind what it had acknowledged and "
                     f"took the partition again: leadpulse_store_lost_writes_total +{lost:.0f}")
        ctx.start_node(port)
        ctx.cluster_wait(timeout=60)
        # A master restarted after losing its slots turns replica when the cluster's newer
        # configuration reaches it (gossip): seconds, not at once.
        t0 = time.monotonic()

        def role():
            return {n["port"]: n["role"] for n in ctx.cluster_nodes()}.get(port)
        try:
            lpit.wait_until(lambda: role() == "replica", 60, f"node :{port} to turn replica",
                            interval=0.5)
        except TimeoutError:
            pass
        checks.check(role() == "replica",
                     f"the killed node :{port} came back as a replica ({role()}, after "
                     f"{time.monotonic() - t0:.1f} s)")

        sc.finish_stream()
        sc.wait_applied_at_least(total, timeout=180)
        lost = metric_sum(ctx, "leadpulse_store_lost_writes_total")
        lpit.log(f"stream applied; partitions taken again after lost writes: {lost:.0f}; "
                 f"redirects {metric_sum(ctx, 'leadpulse_redis_redirects_total'):.0f}, slot map "
                 f"refreshes {metric_sum(ctx, 'leadpulse_redis_slot_map_refreshes_total'):.0f}")
        checks.check(w.alive(), "one worker ran through the migration and the failover "
                     "(no restart)")

        masters = {ctx.redis.owner(lpit.slot_of(f"{{{p}}}")) for p in range(PARTITIONS)}
        checks.check(len(masters) >= 2,
                     f"the {PARTITIONS} partitions live on {len(masters)} masters")
        got = sc.settle_and_compare(checks, "on the cluster")
        lpit.log(f"duplicate deliveries: {len(got) - len({h['event_id'] for h in got})} of "
                 f"{len(got)} records")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
