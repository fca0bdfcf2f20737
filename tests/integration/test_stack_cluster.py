#!/usr/bin/env python3
"""The local stack's Redis Cluster (`LP_STACK_REDIS_CLUSTER=1 deploy/local/stack up`), through
lpit's cluster client and helpers:

1. shape: 6 nodes, 3 masters with one replica each, none down (`stack cluster-nodes`); the
   masters are the ones CLUSTER SLOTS names; every node says cluster_state:ok and its
   CLUSTER SLOTS covers all 16384 slots exactly once; Ctx(cluster=True) gives workers
   LEADPULSE_REDIS_MODE=cluster and the cluster URL (and no mode without cluster);
2. keys with hash tags {0}..{11} written and read through ClusterRedis, read again through a
   client given only one seed; each key really is on the master of its slot (read there directly)
   and another master answers MOVED; the twelve tags land on more than one master;
3. a slot holding 200 keys migrated to another master with migrate_slot (10 keys per MIGRATE,
   50 ms between chunks) while the test keeps writing new keys and overwriting old ones in that
   slot through ClusterRedis (ASK while half migrated, MOVED afterwards): every key readable with
   its last value afterwards, all of them on the new owner, none left on the old one, and every
   node agrees on the new owner;
4. keys written to partition {0}'s slot and acknowledged by a replica (WAIT 1 1000), then the
   master serving {0} SIGKILLed: its replica is promoted (time measured) and every key is still
   there; the killed node started again rejoins as a replica of the promoted one and gets the
   data; the cluster ends in cluster_state:ok with 3 masters and 3 replicas.

The migrated slot is moved back to the master of its neighbouring slots and the test's keys are
deleted (Ctx.cleanup: scan_all on every master, DEL split by slot); the topology keeps the swapped
roles of step 4 (still 3 masters with one replica each). Skipped without a cluster in the stack.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

MIGRATE_KEYS = 200
FAILOVER_KEYS = 100


def cluster_ports():
    """The nodes' ports, from LP_REDIS_CLUSTER_URL (every node is a seed)."""
    return [int(u.rsplit(":", 1)[1]) for u in os.environ["LP_REDIS_CLUSTER_URL"].split(",")]


def owner_port(nodes, slot):
    for n in nodes:
        if n["role"] == "master" and any(a <= slot <= b for a, b in n["slots"]):
            return n["port"]
    return None


def check_shape(checks, nodes, label):
    """3 masters with slots and one replica each, nobody down. Returns the master ports."""
    masters = [n["port"] for n in nodes if n["role"] == "master" and n["slots"]
               and not n["down"]]
    replicas = {n["port"]: n["master"] for n in nodes if n["role"] == "replica"
                and not n["down"]}
    per_master = {m: sum(1 for r in replicas.values() if r == m) for m in masters}
    down = [n["port"] for n in nodes if n["down"]]
    checks.check(len(nodes) == 6 and len(masters) == 3 and len(replicas) == 3 and not down
                 and all(c == 1 for c in per_master.values()),
                 f"{label}: {len(nodes)} nodes, masters {masters}, replicas (port: master) "
                 f"{replicas}, down {down}")
    return masters


def check_slots_everywhere(checks, ctx, label):
    """Every node: cluster_state:ok, and its CLUSTER SLOTS covers 0..16383 exactly once."""
    bad = []
    for port in cluster_ports():
        node = ctx.redis.node("127.0.0.1", port)
        try:
            info = node.command("CLUSTER", "INFO").decode()
            covered = [0] * lpit.HASH_SLOTS
            for entry in node.command("CLUSTER", "SLOTS"):
                for s in range(entry[0], entry[1] + 1):
                    covered[s] += 1
        finally:
            node.close()
        if "cluster_state:ok" not in info or any(c != 1 for c in covered):
            bad.append(f"{port}: state ok {'cluster_state:ok' in info}, "
                       f"{sum(1 for c in covered if c == 1)} slots covered once")
    checks.check(not bad, f"{label}: every node says cluster_state:ok and its CLUSTER SLOTS "
                 f"covers all 16384 slots exactly once {bad}")


def run(checks, ctx):
    cr = ctx.redis
    url = os.environ["LP_REDIS_CLUSTER_URL"]
    ports = cluster_ports()
    waited = ctx.cluster_wait()
    lpit.log(f"cluster ready ({waited:.1f} s); seeds {url}")

    # 1. shape, slots, Ctx plumbing
    nodes = ctx.cluster_nodes()
    masters = check_shape(checks, nodes, "start")
    checks.check(sorted(n["port"] for n in nodes) == sorted(ports),
                 f"cluster-nodes lists the ports of LP_REDIS_CLUSTER_URL {ports}")
    cr_masters = sorted(p for _, p in cr.masters())
    checks.check(cr_masters == sorted(masters),
                 f"ClusterRedis.masters() (CLUSTER SLOTS) {cr_masters} = cluster-nodes masters")
    check_slots_everywhere(checks, ctx, "start")
    env = ctx.base_env()
    checks.check(isinstance(cr, lpit.ClusterRedis) and env.get("LEADPULSE_REDIS_MODE") == "cluster"
                 and env.get("LEADPULSE_REDIS_URL") == url,
                 f"Ctx(cluster=True): ClusterRedis, worker env LEADPULSE_REDIS_MODE="
                 f"{env.get('LEADPULSE_REDIS_MODE')}, LEADPULSE_REDIS_URL = the cluster URL")
    ctx.cluster = False
    plain = ctx.base_env()
    ctx.cluster = True
    checks.check("LEADPULSE_REDIS_MODE" not in plain
                 and plain["LEADPULSE_REDIS_URL"] == ctx.env.redis_url,
                 f"without cluster: no LEADPULSE_REDIS_MODE, LEADPULSE_REDIS_URL "
                 f"{plain['LEADPULSE_REDIS_URL']} (the standalone redis)")
    offsets = ctx.stored_offsets()
    checks.check(offsets == {"engagement": 0, "profiles": 0, "feedback": 0}
                 and ctx.outbox_len() == 0,
                 f"stored_offsets {offsets} and outbox_len {ctx.outbox_len()} through the cluster")

    # 2. hash tags {0}..{11}
    keys = {p: f"{ctx.prefix}:{{{p}}}:probe" for p in range(12)}
    for p, k in keys.items():
        cr.command("SET", k, f"v{p}")
    one_seed = lpit.ClusterRedis(f"redis://127.0.0.1:{ports[-1]}")
    try:
        got = {p: one_seed.command("GET", k) for p, k in keys.items()}
    finally:
        one_seed.close()
    checks.check(all(got[p] == f"v{p}".encode() for p in keys)
                 and all(cr.command("GET", k) == f"v{p}".encode() for p, k in keys.items()),
                 "12 keys {0}..{11} written through ClusterRedis read back, also through a "
                 f"client given only seed {ports[-1]}")
    where, misplaced = {}, []
    for p, k in keys.items():
        host, port = cr.owner(lpit.slot_of(k))
        where.setdefault(port, []).append(p)
        own = cr.node(host, port)
        other = cr.node(host, next(m for m in masters if m != port))
        try:
            direct = own.command("GET", k)
            try:
                other.command("GET", k)
                moved = ""
            except lpit.RedisError as e:
                moved = e.reply
        finally:
            own.close()
            other.close()
        if direct != f"v{p}".encode() or not moved.startswith(
                f"MOVED {lpit.slot_of(k)} 127.0.0.1:{port}"):
            misplaced.append((p, port, direct, moved))
    checks.check(not misplaced, f"each key is on the master of its slot (read there directly), "
                 f"another master answers MOVED to it {misplaced}")
    checks.check(len(where) >= 2, f"hash tags by master: {where} ({len(where)} masters)")

    # 3. a slot migrated under traffic
    tag = f"{ctx.prefix}mig"
    slot = lpit.slot_of(tag)
    src_port = cr.owner(slot)[1]
    dst_port = next(m for m in masters if m != src_port)
    expected = {}
    for i in range(MIGRATE_KEYS):
        k = f"{ctx.prefix}:{{{tag}}}:{i}"
        cr.command("SET", k, f"a{i}")
        expected[k] = f"a{i}"
    src = cr.node("127.0.0.1", src_port)
    dst = cr.node("127.0.0.1", dst_port)
    try:
        before = src.command("CLUSTER", "COUNTKEYSINSLOT", slot)
        redirects0 = dict(cr.redirects)
        result = {}

        def migrate():
            try:
                result["moved"] = ctx.migrate_slot(slot, dst_port, pause_s=0.05, batch=10)
            except Exception as e:  # noqa: BLE001
                result["error"] = e
        t0 = time.monotonic()
        th = threading.Thread(target=migrate)
        th.start()
        writes, n = 0, 0
        while th.is_alive():
            k = f"{ctx.prefix}:{{{tag}}}:n{n}"
            cr.command("SET", k, f"n{n}")
            expected[k] = f"n{n}"
            old = f"{ctx.prefix}:{{{tag}}}:{n % MIGRATE_KEYS}"
            cr.command("SET", old, f"b{n}")
            expected[old] = f"b{n}"
            writes += 2
            n += 1
            time.sleep(0.01)
        th.join()
        migrate_s = time.monotonic() - t0
        # The client's map still names the old owner: the next write meets MOVED.
        for i in range(10):
            k = f"{ctx.prefix}:{{{tag}}}:after{i}"
            cr.command("SET", k, f"c{i}")
            expected[k] = f"c{i}"
        seen = {k: cr.redirects[k] - redirects0[k] for k in cr.redirects}
        checks.check("error" not in result and result.get("moved", 0) >= MIGRATE_KEYS,
                     f"migrate_slot {slot} {src_port} -> {dst_port}: {before} keys before, "
                     f"{result.get('moved')} moved in {migrate_s:.1f} s "
                     f"{result.get('error', '')}")
        checks.check(writes > 20 and seen["ASK"] > 0 and seen["MOVED"] > 0,
                     f"{writes} writes to the slot while it migrated and 10 after; redirections "
                     f"seen by the client: {seen}")
        ctx.cluster_wait()
        wrong = [k for k, v in expected.items() if cr.command("GET", k) != v.encode()]
        checks.check(not wrong, f"all {len(expected)} keys of the slot readable with their last "
                     f"value after the migration (wrong: {wrong[:5]})")
        on_dst = dst.command("CLUSTER", "COUNTKEYSINSLOT", slot)
        on_src = src.command("CLUSTER", "COUNTKEYSINSLOT", slot)
        checks.check(on_dst == len(expected) and on_src == 0,
                     f"slot {slot}: {on_dst} keys on the new owner {dst_port} (expected "
                     f"{len(expected)}), {on_src} on the old one {src_port}")
    finally:
        src.close()
        dst.close()
    nodes = ctx.cluster_nodes()
    cr.refresh()
    checks.check(owner_port(nodes, slot) == dst_port and cr.owner(slot)[1] == dst_port,
                 f"cluster-nodes and CLUSTER SLOTS: slot {slot} served by "
                 f"{owner_port(nodes, slot)} / {cr.owner(slot)[1]}")

    # 4. failover of partition {0}'s master, and the killed node's return
    fkeys = {f"{ctx.prefix}:{{0}}:f{i}": f"f{i}" for i in range(FAILOVER_KEYS)}
    for k, v in fkeys.items():
        cr.command("SET", k, v)
    acked = cr.command("WAIT", 1, 1000)
    checks.check(acked >= 1, f"{FAILOVER_KEYS} keys in slot {lpit.slot_of('{0}')} ({{0}}): "
                 f"WAIT 1 1000 -> {acked} replica(s) acknowledged")
    nodes = ctx.cluster_nodes()
    old_master = owner_port(nodes, lpit.slot_of("{0}"))
    its_replica = next((n["port"] for n in nodes if n["master"] == old_master), None)
    t0 = time.monotonic()
    killed = ctx.kill_master_of_partition(0)
    ctx.cluster_wait(timeout=60)
    failover_s = time.monotonic() - t0
    nodes = ctx.cluster_nodes()
    promoted = owner_port(nodes, lpit.slot_of("{0}"))
    dead = next(n for n in nodes if n["port"] == killed)
    checks.check(killed == old_master and promoted == its_replica and dead["down"]
                 and failover_s < 20,
                 f"SIGKILL of {{0}}'s master {killed}: its replica {its_replica} serves the slot "
                 f"now ({promoted}), cluster_state:ok again {failover_s:.1f} s after the kill; "
                 f"{killed} listed down")
    lost = [k for k, v in fkeys.items() if cr.command("GET", k) != v.encode()]
    checks.check(not lost, f"after the failover all {FAILOVER_KEYS} acknowledged keys are there "
                 f"(lost: {len(lost)}, e.g. {lost[:3]})")
    check_shape_after = [n["port"] for n in nodes if n["role"] == "master" and n["slots"]
                         and not n["down"]]
    checks.check(len(check_shape_after) == 3,
                 f"3 masters serve the slots after the failover: {check_shape_after}")

    t0 = time.monotonic()
    ctx.start_node(killed)
    ctx.cluster_wait(timeout=60)
    rejoin_s = time.monotonic() - t0
    nodes = ctx.cluster_nodes()
    back = next(n for n in nodes if n["port"] == killed)
    checks.check(back["role"] == "replica" and back["master"] == promoted and not back["down"],
                 f"{killed} started again: rejoined as a replica of {back['master']} "
                 f"(promoted {promoted}), cluster ok after {rejoin_s:.1f} s")
    replica = cr.node("127.0.0.1", killed)
    try:
        replica.command("READONLY")
        synced = lpit.wait_until(
            lambda: all(replica.command("GET", k) == v.encode() for k, v in fkeys.items()),
            15, "the rejoined replica to hold the keys")
    except TimeoutError:
        synced = False
    finally:
        replica.close()
    checks.check(bool(synced), f"the rejoined replica {killed} serves the {FAILOVER_KEYS} keys "
                 "(READONLY reads)")
    check_shape(checks, nodes, "end")
    check_slots_everywhere(checks, ctx, "end")
    lpit.log(f"timings: migration {migrate_s:.1f} s, failover {failover_s:.1f} s, "
             f"rejoin {rejoin_s:.1f} s")
    return slot


def restore_slot(ctx, slot):
    """Moves the test's slot back to the master of its neighbouring slots (contiguous ranges)."""
    cr = ctx.redis
    cr.refresh()
    home = cr.owner(slot - 1 if slot > 0 else slot + 1)[1]
    if cr.owner(slot)[1] != home:
        ctx.migrate_slot(slot, home, batch=100)
        ctx.cluster_wait()
        lpit.log(f"slot {slot} moved back to {home}")


def main():
    t_start = time.monotonic()
    ctx = lpit.Ctx("stackcluster", cluster=True)
    checks = lpit.Checks("test_stack_cluster")
    slot = lpit.slot_of(f"{ctx.prefix}mig")
    try:
        run(checks, ctx)
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        try:
            lpit.log(lpit.stack("cluster-nodes"))
        except RuntimeError as e2:
            lpit.log(str(e2))
    finally:
        try:
            restore_slot(ctx, slot)
        except (OSError, RuntimeError) as e:
            checks.check(False, f"moving slot {slot} back: {e}")
        ctx.cleanup()
    fresh = lpit.ClusterRedis(os.environ["LP_REDIS_CLUSTER_URL"])
    try:
        left = fresh.scan_all(ctx.prefix + ":*")
    finally:
        fresh.close()
    checks.check(not left, f"Ctx.cleanup on the cluster: {len(left)} keys of prefix {ctx.prefix} "
                 f"left on the masters")
    lpit.log(f"test_stack_cluster: {time.monotonic() - t_start:.1f} s")
    checks.finish()


if __name__ == "__main__":
    main()
