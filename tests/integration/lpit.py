"""lpit: helpers for the worker's integration tests (python3 standard library only).

The tests run `leadpulse run` workers as subprocesses against the real stack started by
deploy/local/stack (LP_KAFKA_BROKERS, LP_REDIS_URL), read the hand-offs back with the example
CRM consumer (handoff-consumer) and compare with `leadpulse replay`, the in-memory reference.
Every test gets its own topics, consumer group and Redis prefix, so tests never see each
other's data. Waits are conditions with deadlines, never bare sleeps.

Redis Cluster: `Ctx(name, cluster=True)` runs against the stack's cluster (LP_REDIS_CLUSTER_URL,
started by `LP_STACK_REDIS_CLUSTER=1 deploy/local/stack up`; the test is skipped without it):
ctx.redis is then a ClusterRedis and the workers get LEADPULSE_REDIS_MODE=cluster. Cluster
helpers: slot_of, ClusterRedis (masters, node, scan_all), cluster_nodes, cluster_wait, stop_node,
start_node, kill_master_of_partition, migrate_slot (also as Ctx methods).

Leads in Redis (docs/redis-layout.md, "Lead buckets": each partition's leads are spread over the
hashes <prefix>:{p}:leads:<b>): lead_bucket, lead_buckets, bucket_keys, lead_key,
partition_leads, partition_lead_count; they work with Redis and ClusterRedis alike.
"""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

SKIP = 77  # ctest SKIP_RETURN_CODE: no stack to run against


def log(msg):
    print(msg, flush=True)


# ---- environment --------------------------------------------------------------------------

def source_dir():
    return os.environ.get("LP_SOURCE_DIR") or os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", ".."))


def stack_script():
    return os.path.join(source_dir(), "deploy", "local", "stack")


def _read_stack_env():
    """Copies the `export NAME=value` lines of `deploy/local/stack env` (LP_STACK_DIR's stack)
    into os.environ. False if there is no stack."""
    try:
        out = subprocess.run([stack_script(), "env"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[7:].partition("=")
            os.environ[name] = value.strip("'\"")
    return out.returncode == 0


def _stack_env():
    """The stack's settings: from the environment (scripts/test exports them) or from
    `deploy/local/stack env` of LP_STACK_DIR."""
    brokers, redis_url = os.environ.get("LP_KAFKA_BROKERS"), os.environ.get("LP_REDIS_URL")
    if brokers and redis_url:
        return brokers, redis_url
    if not _read_stack_env():
        return None, None
    return os.environ.get("LP_KAFKA_BROKERS"), os.environ.get("LP_REDIS_URL")


def _stack_cluster_url():
    """LP_REDIS_CLUSTER_URL (the stack's Redis Cluster, every node a seed): from the environment
    or from `deploy/local/stack env`; None if the stack runs no cluster."""
    if not os.environ.get("LP_REDIS_CLUSTER_URL"):
        _read_stack_env()
    return os.environ.get("LP_REDIS_CLUSTER_URL") or None


class Env:
    """The stack's settings and the built tools. cluster=True also needs the stack's Redis
    Cluster (redis_cluster_url); without it the test is skipped (exit SKIP)."""

    def __init__(self, cluster=False):
        self.src = source_dir()
        self.bin = os.environ.get("LP_BIN") or os.path.join(self.src, "build", "leadpulse")
        self.consumer = os.environ.get("LP_CONSUMER") or os.path.join(
            os.path.dirname(self.bin), "handoff-consumer")
        self.brokers, self.redis_url = _stack_env()
        for path, what in ((self.bin, "LP_BIN (leadpulse)"),
                           (self.consumer, "LP_CONSUMER (handoff-consumer)")):
            if not os.access(path, os.X_OK):
                log(f"FATAL: {what} not found at {path}; build it first")
                sys.exit(2)
        if not self.brokers or not self.redis_url:
            log("SKIP: no stack (run `eval \"$(deploy/local/stack up)\"` or scripts/test)")
            sys.exit(SKIP)
        self.redis_cluster_url = _stack_cluster_url() if cluster else None
        if cluster and not self.redis_cluster_url:
            log("SKIP: the stack runs no Redis Cluster (no LP_REDIS_CLUSTER_URL; start it with "
                "`LP_STACK_REDIS_CLUSTER=1 deploy/local/stack up`, as scripts/test does)")
            sys.exit(SKIP)
        self.schemas = os.path.join(self.src, "schemas")
        self.gen = os.path.join(self.src, "scripts", "gen_events.py")


# ---- checks -------------------------------------------------------------------------------

class Checks:
    """Counts checks; every check prints what it compared, with figures."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            log(f"  ok   {what}")
        else:
            self.failed += 1
            log(f"  FAIL {what}")
        return ok

    def finish(self):
        log(f"{self.name}: {self.passed} passed, {self.failed} failed")
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)


def wait_until(cond, timeout, what, interval=0.2):
    """Polls cond() until it returns a true value (returned) or the deadline passes (raises)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- Redis (RESP, enough for the tests' reads) ----------------------------------------------

class RedisError(RuntimeError):
    """An error reply; .reply is its text (e.g. "MOVED 3999 127.0.0.1:7002")."""

    def __init__(self, reply):
        super().__init__("redis: " + reply)
        self.reply = reply


def _parse_redis_url(url):
    """redis://[[user]:password@]host[:port][/db] -> (host, port, user, password)."""
    rest = url.strip().split("://", 1)[1]
    auth, _, hostport = rest.rpartition("@")
    hostport = hostport.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    user, _, password = auth.partition(":")
    return host.strip("[]") or "127.0.0.1", int(port or 6379), user, password


class Redis:
    """One connection to one Redis server (RESP2); command(*args) returns the decoded reply and
    raises RedisError for an error reply."""

    def __init__(self, url):
        self.host, self.port, user, password = _parse_redis_url(url)
        self.sock = socket.create_connection((self.host, self.port), timeout=10)
        self.buf = b""
        if password or user:
            self.command(*(["AUTH", user, password] if user else ["AUTH", password]))

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"redis: unexpected reply {line!r}")

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def scan_all(self, match="*", count=1000):
        """Every key matching the pattern (SCAN to the end), as bytes."""
        keys, cursor = set(), b"0"
        while True:
            cursor, batch = self.command("SCAN", cursor, "MATCH", match, "COUNT", count)
            keys.update(batch)
            if cursor == b"0":
                return sorted(keys)


# ---- Redis Cluster ------------------------------------------------------------------------------

HASH_SLOTS = 16384


def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    """CRC16/XMODEM (polynomial 0x1021, initial value 0): Redis Cluster's key hash."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def slot_of(key):
    """The hash slot of a key: CRC16 of its hash tag (the text between the first `{` and the next
    `}`, if not empty), else of the whole key, mod 16384. slot_of(f"{{{p}}}") is the slot of
    partition p's keys (`<prefix>:{p}:...`)."""
    k = key if isinstance(key, bytes) else str(key).encode()
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    return crc16(k) % HASH_SLOTS


def _addr(hostport):
    """b"127.0.0.1:7001" or "127.0.0.1:7001" -> ("127.0.0.1", 7001)."""
    if isinstance(hostport, bytes):
        hostport = hostport.decode()
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


# Commands with no key (sent to one master), or whose keys are not argument 1.
_ANY_NODE = {"PING", "ECHO", "TIME", "INFO", "CLUSTER", "COMMAND", "CONFIG", "LASTSAVE",
             "READONLY", "READWRITE"}
_MULTI_KEY = {"DEL", "UNLINK", "EXISTS", "TOUCH"}


class ClusterRedis:
    """A small Redis Cluster client for tests, with Redis's command(*args) and close().

    seeds: "redis://h:p,redis://h:p,..." (LP_REDIS_CLUSTER_URL) or a list of URLs; any live one
    will do, the first URL's credentials are used for every node. The slot map comes from
    CLUSTER SLOTS and is refreshed on MOVED; ASK is followed once, with ASKING, on the node it
    names; TRYAGAIN, CLUSTERDOWN and connection errors are retried (map refreshed, 0.1 s apart)
    for up to retry_s seconds. Routing: by argument 1 (GET, SET, HGETALL, XLEN, ZCARD, TYPE, ...);
    EVAL/EVALSHA/FCALL by their first key; DEL/UNLINK/EXISTS/TOUCH with several keys are split
    by slot and the counts added; DBSIZE is summed over the masters; WAIT goes to every master
    this client has a connection to and returns the smallest count (so `WAIT 1 1000` after writes
    means every write so far reached a replica); PING/INFO/CLUSTER/... go to one master. SCAN is
    per node: use scan_all. Counters of redirections seen: .redirects {"MOVED", "ASK",
    "TRYAGAIN", "CLUSTERDOWN", "CONNECTION"}. Not thread-safe: one client per thread.
    """

    def __init__(self, seeds, retry_s=5.0):
        urls = [u.strip() for u in (seeds.split(",") if isinstance(seeds, str) else seeds)
                if u.strip()]
        if not urls:
            raise ValueError("ClusterRedis: no seed URL")
        self.urls = urls
        _, _, self.user, self.password = _parse_redis_url(urls[0])
        self.seeds = [_parse_redis_url(u)[:2] for u in urls]
        self.retry_s = retry_s
        self.conns = {}
        self.slots = [None] * HASH_SLOTS
        self.redirects = {"MOVED": 0, "ASK": 0, "TRYAGAIN": 0, "CLUSTERDOWN": 0, "CONNECTION": 0}
        self.refresh()

    # -- connections --
    def _url(self, host, port):
        auth = ""
        if self.password or self.user:
            auth = f"{self.user}:{self.password}@" if self.user else f":{self.password}@"
        return f"redis://{auth}{host}:{port}"

    def node(self, host, port):
        """A new plain Redis connection to one node (for CLUSTER commands, or to look at one
        node's keys); the caller closes it."""
        return Redis(self._url(host, port))

    def _conn(self, addr):
        c = self.conns.get(addr)
        if c is None:
            c = self.conns[addr] = self.node(*addr)
        return c

    def _drop(self, addr):
        c = self.conns.pop(addr, None)
        if c is not None:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        for addr in list(self.conns):
            self._drop(addr)

    # -- slot map --
    def refresh(self):
        """Reloads the slot map from CLUSTER SLOTS of the first node that answers (known masters
        first, then the seeds). Raises ConnectionError if none does."""
        tried, errors = [], []
        for addr in self.masters(cached=True) + self.seeds:
            if addr in tried:
                continue
            tried.append(addr)
            try:
                reply = self._conn(addr).command("CLUSTER", "SLOTS")
            except (OSError, RedisError) as e:
                self._drop(addr)
                errors.append(f"{addr[0]}:{addr[1]}: {e}")
                continue
            slots = [None] * HASH_SLOTS
            for entry in reply:
                start, end, master = entry[0], entry[1], entry[2]
                host = master[0].decode() if master[0] else addr[0]
                owner = (host, int(master[1]))
                for s in range(start, end + 1):
                    slots[s] = owner
            self.slots = slots
            return
        raise ConnectionError("no cluster node answered CLUSTER SLOTS: " + "; ".join(errors))

    def masters(self, cached=False):
        """The masters serving slots, as (host, port), in slot order (the map is refreshed
        first unless cached)."""
        if not cached:
            self.refresh()
        out = []
        for owner in self.slots:
            if owner is not None and owner not in out:
                out.append(owner)
        return out

    def owner(self, slot):
        """(host, port) of the master serving slot, per the current map."""
        if self.slots[slot] is None:
            self.refresh()
        if self.slots[slot] is None:
            raise RedisError(f"CLUSTERDOWN slot {slot} is not served (per CLUSTER SLOTS)")
        return self.slots[slot]

    # -- commands --
    def _routed(self, slot, args):
        deadline = time.monotonic() + self.retry_s
        ask, redirects = None, 0
        while True:
            try:
                addr = ask or self.owner(slot)
            except (RedisError, ConnectionError):
                # No map (no node answers, or the slot is not served): like CLUSTERDOWN.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
                continue
            try:
                conn = self._conn(addr)
                if ask:
                    ask = None
                    conn.command("ASKING")
                return conn.command(*args)
            except RedisError as e:
                kind, _, rest = e.reply.partition(" ")
                if kind in ("MOVED", "ASK") and redirects < 16:
                    redirects += 1
                    self.redirects[kind] += 1
                    target = _addr(rest.split()[1])
                    if kind == "ASK":
                        ask = target
                    else:
                        self.slots[int(rest.split()[0])] = target
                        try:
                            self.refresh()
                        except ConnectionError:
                            pass
                        # The node that answered MOVED knows best, whatever a lagging map says.
                        self.slots[int(rest.split()[0])] = target
                    continue
                if kind not in ("TRYAGAIN", "CLUSTERDOWN") or time.monotonic() >= deadline:
                    raise
                self.redirects[kind] += 1
            except OSError as e:
                self._drop(addr)
                self.redirects["CONNECTION"] += 1
                if time.monotonic() >= deadline:
                    raise ConnectionError(f"{addr[0]}:{addr[1]}: {e}") from e
            time.sleep(0.1)
            try:
                self.refresh()
            except ConnectionError:
                pass

    def command(self, *args):
        name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()
        if name in _MULTI_KEY and len(args) > 2:
            by_slot = {}
            for key in args[1:]:
                by_slot.setdefault(slot_of(key), []).append(key)
            return sum(self._routed(s, (args[0], *keys)) for s, keys in by_slot.items())
        if name == "DBSIZE":
            return sum(self._on_node(m, args) for m in self.masters())
        if name == "WAIT":
            masters = self.masters(cached=True)
            return min((self._on_node(a, args) for a in list(self.conns) if a in masters),
                       default=0)
        if name in ("EVAL", "EVALSHA", "FCALL", "FCALL_RO") and len(args) > 3 \
                and int(args[2]) > 0:
            return self._routed(slot_of(args[3]), args)
        if name in _ANY_NODE or len(args) < 2:
            masters = self.masters(cached=True)
            return self._on_node(masters[0] if masters else self.seeds[0], args)
        return self._routed(slot_of(args[1]), args)

    def _on_node(self, addr, args):
        try:
            return self._conn(addr).command(*args)
        except OSError:
            self._drop(addr)
            raise

    def scan_all(self, match="*", count=1000):
        """Every key matching the pattern on every master (SCAN on each), as bytes."""
        keys = set()
        for addr in self.masters():
            keys.update(self._conn(addr).scan_all(match, count))
        return sorted(keys)


# ---- lead buckets (docs/redis-layout.md, "Lead buckets") ---------------------------------------
# A partition's leads are in the hashes <prefix>:{p}:leads:<b> (field = lead id, value = encoded
# lead), b = FNV-1a-32(lead id) mod N, N in <prefix>:{p}:buckets ("A>B" while the partition is
# being re-bucketed, missing before its first write); <prefix>:{p}:leads is a marker string. All
# carry the hash tag {p}: on a cluster they live on the master owning slot_of("{p}"), and both
# Redis and ClusterRedis reach them by plain keyed commands.

def fnv1a32(data):
    """FNV-1a, 32 bits, of bytes (a str is UTF-8 encoded)."""
    h = 2166136261
    for b in data.encode() if isinstance(data, str) else data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def lead_bucket(lead_id, n):
    """The bucket of a lead among n: FNV-1a-32 of its id's bytes mod n (0 when n <= 1)."""
    return fnv1a32(lead_id) % n if n > 1 else 0


def lead_buckets(redis, prefix, p):
    """Partition p's lead bucket count (<prefix>:{p}:buckets). 0 when the key is missing: nothing
    written yet, or written by a version before lead buckets (whose single hash is
    <prefix>:{p}:leads). Raises RuntimeError while the partition is being re-bucketed ("A>B")
    or if the key holds anything else."""
    v = redis.command("GET", f"{prefix}:{{{p}}}:buckets")
    if v is None:
        return 0
    text = v.decode(errors="replace")
    if not text.isdigit() or int(text) < 1:
        raise RuntimeError(f"{prefix}:{{{p}}}:buckets holds {text!r}, not a bucket count"
                           + (" (the partition is being re-bucketed)" if ">" in text else ""))
    return int(text)


def bucket_keys(redis, prefix, p, n=None):
    """The names of partition p's lead hashes: <prefix>:{p}:leads:0 .. :<N-1> (N read unless
    given); [<prefix>:{p}:leads] for N = 0 (nothing written, or an older version's hash)."""
    n = lead_buckets(redis, prefix, p) if n is None else n
    if n == 0:
        return [f"{prefix}:{{{p}}}:leads"]
    return [f"{prefix}:{{{p}}}:leads:{b}" for b in range(n)]


def lead_key(redis, prefix, p, lead_id, n=None):
    """The hash that holds (or would hold) the lead in partition p (N read unless given)."""
    n = lead_buckets(redis, prefix, p) if n is None else n
    if n == 0:
        return f"{prefix}:{{{p}}}:leads"
    return f"{prefix}:{{{p}}}:leads:{lead_bucket(lead_id, n)}"


def partition_leads(redis, prefix, p):
    """Every lead of partition p: {lead id (str): stored bytes}, HGETALL of each of its N
    buckets. Raises RuntimeError if a lead is in a bucket other than its own or in two."""
    n = lead_buckets(redis, prefix, p)
    out = {}
    for b, key in enumerate(bucket_keys(redis, prefix, p, n)):
        h = redis.command("HGETALL", key) or []
        for i in range(0, len(h), 2):
            lead = h[i].decode()
            if n and lead_bucket(h[i], n) != b:
                raise RuntimeError(f"lead {lead!r} in {key}, its bucket of {n} is "
                                   f"{lead_bucket(h[i], n)}")
            if lead in out:
                raise RuntimeError(f"lead {lead!r} twice in partition {p}'s buckets")
            out[lead] = h[i + 1]
    return out


def partition_lead_count(redis, prefix, p):
    """The number of leads of partition p: HLEN summed over its buckets."""
    return sum(int(redis.command("HLEN", k) or 0) for k in bucket_keys(redis, prefix, p))


def stack(*args, timeout=None):
    """Runs `deploy/local/stack ARGS...` (LP_STACK_DIR's stack); returns its stdout. Raises with
    its stderr if it fails. timeout: LP_STACK_TIMEOUT for the command (its own waits)."""
    env = dict(os.environ)
    if timeout is not None:
        env["LP_STACK_TIMEOUT"] = str(int(timeout))
    r = subprocess.run([stack_script(), *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=(timeout or 120) + 60)
    if r.returncode != 0:
        raise RuntimeError(f"stack {' '.join(map(str, args))} failed ({r.returncode}): "
                           f"{r.stderr.strip()[-2000:]}")
    return r.stdout


def _slot_ranges(text):
    """"0-5460,10923" -> [(0, 5460), (10923, 10923)]; "-" -> []."""
    out = []
    for part in ([] if text == "-" else text.split(",")):
        a, _, b = part.partition("-")
        out.append((int(a), int(b or a)))
    return out


def cluster_nodes():
    """The stack's cluster nodes as the cluster sees them (`deploy/local/stack cluster-nodes`):
    a list, in the stack's port order, of dicts {"port": int, "role": "master" | "replica",
    "down": bool (not running, or flagged as failing), "master": port of its master or None,
    "slots": [(first, last), ...]}."""
    nodes = []
    for line in stack("cluster-nodes").splitlines():
        port, role, master, slots = line.split()
        nodes.append({"port": int(port), "role": role.split(",")[0], "down": ",down" in role,
                      "master": None if master in ("-", "?") else int(master),
                      "slots": _slot_ranges(slots)})
    return nodes


def cluster_wait(timeout=30):
    """Until every running node says cluster_state:ok, every slot is served by a running master,
    all agree on the slot map and every running replica's link is up
    (`deploy/local/stack cluster-wait`). Returns the seconds waited; raises after timeout."""
    t0 = time.monotonic()
    stack("cluster-wait", timeout=timeout)
    return time.monotonic() - t0


def stop_node(port, kill=False):
    """Stops one cluster node (SIGTERM; kill=True: SIGKILL, a crash)."""
    stack("stop-redis-node", port, *(["--kill"] if kill else []))


def start_node(port):
    """Starts a stopped cluster node again (same port, data and nodes.conf): it rejoins, after
    a failover as a replica of the promoted node. Returns when it answers PING; cluster_wait()
    then waits until the cluster has taken it back."""
    stack("start-redis-node", port)


def kill_master_of_partition(redis, p):
    """SIGKILLs the master that serves partition p's keys (slot of hash tag {p}) per a fresh
    CLUSTER SLOTS through redis (a ClusterRedis); returns its port."""
    redis.refresh()
    _, port = redis.owner(slot_of(f"{{{p}}}"))
    stop_node(port, kill=True)
    return port


def migrate_slot(seeds, slot, to_port, pause_s=0.0, batch=1):
    """Moves one hash slot, with its keys, to the master listening on to_port, by the manual
    resharding protocol: CLUSTER SETSLOT slot IMPORTING <source id> on the target, SETSLOT
    MIGRATING <target id> on the source, then CLUSTER GETKEYSINSLOT slot <batch> and
    MIGRATE host port "" 0 5000 KEYS ... until the source holds none (sleeping pause_s between
    chunks, so a test can send traffic while the slot is half migrated: the source answers ASK
    for keys it no longer has, the target TRYAGAIN for multi-key commands on split keys), then
    CLUSTER SETSLOT slot NODE <target id> on the target, the source and the other masters.

    seeds: a ClusterRedis (its seeds are used) or seed URLs; the function opens its own
    connections, so it may run in a thread while the caller's client carries traffic. Returns the
    number of keys moved (0 if the target already serves the slot)."""
    admin = ClusterRedis(seeds.urls if isinstance(seeds, ClusterRedis) else seeds)
    conns = []
    try:
        masters = admin.masters()
        src = admin.owner(slot)
        dst = next((m for m in masters if m[1] == int(to_port)), None)
        if dst is None:
            raise RuntimeError(f"migrate_slot: no master on port {to_port} (masters {masters})")
        if dst == src:
            return 0
        s, d = admin.node(*src), admin.node(*dst)
        conns += [s, d]
        src_id = s.command("CLUSTER", "MYID").decode()
        dst_id = d.command("CLUSTER", "MYID").decode()
        d.command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        s.command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        auth = []
        if admin.password:
            auth = ["AUTH2", admin.user, admin.password] if admin.user else ["AUTH",
                                                                          admin.password]
        moved = 0
        while True:
            keys = s.command("CLUSTER", "GETKEYSINSLOT", slot, max(1, int(batch)))
            if not keys:
                break
            s.command("MIGRATE", dst[0], dst[1], "", 0, 5000, *auth, "KEYS", *keys)
            moved += len(keys)
            if pause_s > 0:
                time.sleep(pause_s)
        d.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        s.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for m in masters:
            if m not in (src, dst):
                o = admin.node(*m)
                conns.append(o)
                o.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        return moved
    finally:
        for c in conns:
            c.close()
        admin.close()


# ---- Kafka: topics (CreateTopics v2 over the wire: milliseconds, no JVM per topic) ---------------

def _kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _kafka_admin(brokers, api_key, version, body, what, ok_errors=(0,)):
    """One admin request over the wire (CreateTopics, CreatePartitions: their v0-v2 replies are
    [name, error code, error message] per topic); raises on an error code not in ok_errors."""
    host, port = brokers.split(",")[0].rsplit(":", 1)
    req = struct.pack(">hhi", api_key, version, 1) + _kstr("lpit") + body
    with socket.create_connection((host, int(port)), timeout=35) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("kafka closed the connection")
            data += chunk
    pos = 4 + 4 + 4  # size, correlation id, throttle time
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(n):
        (ln,) = struct.unpack_from(">h", data, pos)
        name = data[pos + 2:pos + 2 + ln].decode()
        pos += 2 + ln
        (err,) = struct.unpack_from(">h", data, pos)
        pos += 2
        (ml,) = struct.unpack_from(">h", data, pos)
        msg = data[pos + 2:pos + 2 + ml].decode() if ml > 0 else ""
        pos += 2 + max(ml, 0)
        if err not in ok_errors:
            raise RuntimeError(f"{what} {name}: error {err} {msg}")


def _wait_leaders(brokers, specs, timeout):
    """Until every partition of every topic in specs ({name: partitions}) has a leader."""
    def leaders_ready():
        for name, parts in specs.items():
            out = subprocess.run(["kcat", "-L", "-b", brokers, "-t", name, "-m", "5"],
                                 capture_output=True, text=True, timeout=15).stdout
            if out.count(", leader 1,") != parts:
                return False
        return True

    wait_until(leaders_ready, timeout, "topic leaders", interval=0.3)


def create_topics(brokers, specs, timeout=60):
    """specs: {name: partitions}. Creates them (existing ones are fine) and waits until every
    partition has a leader (kcat metadata). deploy/local/stack create-topics does the same with
    the Kafka tools."""
    body = struct.pack(">i", len(specs))
    for name, parts in specs.items():
        body += _kstr(name) + struct.pack(">ihii", parts, 1, 0, 0)
    body += struct.pack(">ib", 30000, 0)
    # CreateTopics v2; 36: TOPIC_ALREADY_EXISTS
    _kafka_admin(brokers, 19, 2, body, "creating topic", ok_errors=(0, 36))
    _wait_leaders(brokers, specs, timeout)


def create_partitions(brokers, specs, timeout=60):
    """specs: {name: new total partition count}. Adds partitions to existing topics (Kafka's
    CreatePartitions v0, API key 37, over the wire as create_topics; what `kafka-topics.sh --alter
    --partitions N` sends) and waits until every partition has a leader."""
    body = struct.pack(">i", len(specs))
    for name, parts in specs.items():
        body += _kstr(name) + struct.pack(">ii", parts, -1)  # count, assignments: null
    body += struct.pack(">ib", 30000, 0)  # timeout_ms, validate_only
    _kafka_admin(brokers, 37, 0, body, "adding partitions to")
    _wait_leaders(brokers, specs, timeout)


def end_offsets(brokers, topic, partitions):
    """High watermarks of a topic's partitions (kcat -Q with timestamp -1 = end)."""
    args = ["kcat", "-Q", "-b", brokers]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    ends = {}
    for line in out.splitlines():
        # "<topic> [<p>] offset <n>"
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "offset":
            ends[int(parts[1].strip("[]"))] = int(parts[3])
    return ends


# ---- the test context ------------------------------------------------------------------------

DAY_MS = 86400000


def now_ms():
    return int(time.time() * 1000)


class Ctx:
    """One test's world: topics, group, Redis prefix, work folder, and the tools.

    cluster=True: Redis is the stack's Redis Cluster (skipped without one): self.redis is a
    ClusterRedis on LP_REDIS_CLUSTER_URL and workers get LEADPULSE_REDIS_MODE=cluster with that
    URL; the cluster helpers below are then available as methods."""

    def __init__(self, name, partitions=3, rules=None, cluster=False, accounts=False,
                 extra_env=None):
        self.env = Env(cluster=cluster)
        # extra_env: LEADPULSE_* settings for every worker and `produce` (e.g. the registry).
        self.extra_env = dict(extra_env or {})
        self.cluster = cluster
        # accounts=True: the rules have `accounts`; the members topic and the account hand-off
        # topics exist, `replay` gets --partitions, consume() reads the account hand-offs too.
        self.accounts = accounts
        self.name = name
        tag = f"{name}-{os.getpid()}-{random.randrange(1 << 30):x}"
        self.partitions = partitions
        self.topics = {k: f"it.{tag}.{k}" for k in
                       ("engagement", "profiles", "feedback", "mql", "stale", "erased", "dlq",
                        "members", "mqa", "account_stale")}
        self.group = f"it-{tag}"
        self.prefix = f"it{name.replace('_', '')}{os.getpid()}x{random.randrange(1 << 20):x}"
        self.rules = rules or os.path.join(self.env.src, "config", "rules.yaml")
        base = os.environ.get("LP_BINARY_DIR") or os.path.dirname(self.env.bin)
        self.dir = os.path.join(base, "itest-work", tag)
        os.makedirs(self.dir, exist_ok=True)
        self.workers = []
        self.redis = (ClusterRedis(self.env.redis_cluster_url) if cluster
                      else Redis(self.env.redis_url))
        t0 = time.monotonic()
        create_topics(self.env.brokers, {
            self.topics["engagement"]: partitions, self.topics["profiles"]: partitions,
            self.topics["feedback"]: partitions, self.topics["mql"]: partitions,
            self.topics["stale"]: partitions, self.topics["erased"]: partitions,
            self.topics["dlq"]: partitions,
            **({self.topics[k]: partitions for k in ("members", "mqa", "account_stale")}
               if accounts else {})})
        log(f"{name}: topics it.{tag}.* ({partitions} partitions) created in "
            f"{time.monotonic() - t0:.1f} s; redis prefix {self.prefix}; work dir {self.dir}")

    # -- configuration through the environment (every key has a LEADPULSE_* variable) --
    def base_env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPULSE_")}
        env.update({
            "LEADPULSE_KAFKA_BROKERS": self.env.brokers,
            "LEADPULSE_KAFKA_GROUP_ID": self.group,
            "LEADPULSE_TOPICS_ENGAGEMENT": self.topics["engagement"],
            "LEADPULSE_TOPICS_PROFILES": self.topics["profiles"],
            "LEADPULSE_TOPICS_FEEDBACK": self.topics["feedback"],
            "LEADPULSE_TOPICS_MQL": self.topics["mql"],
            "LEADPULSE_TOPICS_STALE": self.topics["stale"],
            "LEADPULSE_TOPICS_ERASED": self.topics["erased"],
            "LEADPULSE_TOPICS_DLQ": self.topics["dlq"],
            "LEADPULSE_TOPICS_MEMBERS": self.topics["members"],
            "LEADPULSE_TOPICS_MQA": self.topics["mqa"],
            "LEADPULSE_TOPICS_ACCOUNT_STALE": self.topics["account_stale"],
            "LEADPULSE_REDIS_URL": self.env.redis_url,
            "LEADPULSE_REDIS_PREFIX": self.prefix,
            "LEADPULSE_RULES_PATH": self.rules,
            "LEADPULSE_HTTP_LISTEN": "",
            "LEADPULSE_LOG_LEVEL": "info",
        })
        env.update({k: str(v) for k, v in self.extra_env.items()})
        if self.cluster:
            env["LEADPULSE_REDIS_MODE"] = "cluster"
            env["LEADPULSE_REDIS_URL"] = self.env.redis_cluster_url
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def config(self):
        return os.path.join(self.env.src, "config", "leadpulse.yaml")

    # -- tools --
    def gen(self, out, **kw):
        args = [sys.executable, self.env.gen, "--out", out]
        for k, v in kw.items():
            flag = "--" + k.replace("_", "-")
            args += [flag] if v is True else [flag, str(v)]
        subprocess.run(args, check=True, capture_output=True)
        return out

    def produce(self, path, *extra, timeout=300, env_extra=None):
        """Sends a JSON-lines file to the input topics; returns the number sent."""
        r = subprocess.run([self.env.bin, "produce", "--config", self.config(), *extra, path],
                           env=self.base_env(**(env_extra or {})), capture_output=True, text=True,
                           timeout=timeout,
                           cwd=self.env.src)
        if r.returncode != 0:
            raise RuntimeError(f"produce failed ({r.returncode}): {r.stderr[-2000:]}")
        for line in r.stderr.splitlines():
            if line.startswith("produce:"):
                return int(line.split()[1])
        raise RuntimeError(f"produce printed no summary: {r.stderr[-2000:]}")

    def produce_async(self, path, *extra):
        return subprocess.Popen([self.env.bin, "produce", "--config", self.config(), *extra, path],
                                env=self.base_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, cwd=self.env.src)

    def write_lines(self, name, events):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        return path

    def inspect_accounts(self, key=None):
        """`leadpulse inspect --account KEY` (a dict, or None when not found) or `--accounts`
        (a list of dicts)."""
        args = ["--account", key] if key is not None else ["--accounts"]
        r = subprocess.run([self.env.bin, "inspect", "--config", self.config(), "--partitions",
                            str(self.partitions), *args], env=self.base_env(),
                           capture_output=True, text=True, timeout=120, cwd=self.env.src)
        if key is not None:
            return json.loads(r.stdout) if r.returncode == 0 else None
        if r.returncode != 0:
            raise RuntimeError(f"inspect --accounts failed ({r.returncode}): {r.stderr[-500:]}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def consume(self, which=None, raw=False, idle_ms=1500):
        """Every record of the output topics, from the beginning, as dicts (by default LeadQualified
        and LeadStale, and with accounts=True the account hand-offs too)."""
        if which is None:
            which = ("mql", "stale", "mqa", "account_stale") if self.accounts else ("mql", "stale")
        acc = [w for w in which if w in ("mqa", "account_stale")]
        topics = ",".join(self.topics[w] for w in which if w not in acc)
        args = [self.env.consumer, "--brokers", self.env.brokers, "--schemas", self.env.schemas,
                "--topics", topics, "--from-beginning", "--exit-when-idle", str(idle_ms)]
        if acc:
            args += ["--account-topics", ",".join(self.topics[w] for w in acc)]
        if self.extra_env.get("LEADPULSE_SCHEMA_REGISTRY_URL"):
            # the writer schema of every id from the registry the workers registered with
            args += ["--registry", self.extra_env["LEADPULSE_SCHEMA_REGISTRY_URL"]]
        if raw:
            args.append("--raw")
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if r.returncode not in (0, 1):
            raise RuntimeError(f"handoff-consumer failed ({r.returncode}): {r.stderr[-2000:]}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def replay(self, path, until=None, state=True):
        """Runs the reference. Returns (hand-offs, state by lead id, stderr lines)."""
        args = [self.env.bin, "replay", "--rules", self.rules]
        state_path = os.path.join(self.dir, f"replay-state-{random.randrange(1 << 30):x}.jsonl")
        if until is not None:
            args += ["--until", str(until)]
        if self.accounts:
            args += ["--partitions", str(self.partitions)]
        if state:
            args += ["--state-out", state_path]
        r = subprocess.run(args + [path], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"replay failed ({r.returncode}): {r.stderr[-2000:]}")
        out = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        st = {}
        if state:
            with open(state_path) as f:
                for line in f:
                    s = json.loads(line)
                    st[s["lead_id"]] = s
        return out, st, r.stderr.splitlines()

    def inspect_all(self):
        r = subprocess.run([self.env.bin, "inspect", "--config", self.config(), "--partitions",
                            str(self.partitions), "--all"], env=self.base_env(),
                           capture_output=True, text=True, timeout=120, cwd=self.env.src)
        if r.returncode != 0:
            raise RuntimeError(f"inspect --all failed: {r.stderr[-2000:]}")
        st = {}
        for line in r.stdout.splitlines():
            s = json.loads(line)
            st[s["lead_id"]] = s
        return st

    def stored_offsets(self):
        """Sum over partitions of the next offset the worker stored in Redis, per input topic."""
        total = {k: 0 for k in ("engagement", "profiles", "feedback")}
        for p in range(self.partitions):
            h = self.redis.command("HGETALL", f"{self.prefix}:{{{p}}}:offsets") or []
            got = {h[i].decode(): int(h[i + 1]) for i in range(0, len(h), 2)}
            for k in total:
                total[k] += max(got.get(self.topics[k], 0), 0)
        return total

    def input_ends(self):
        return {k: sum(end_offsets(self.env.brokers, self.topics[k], self.partitions).values())
                for k in ("engagement", "profiles", "feedback")}

    def outbox_len(self):
        return sum(self.redis.command("XLEN", f"{self.prefix}:{{{p}}}:outbox") or 0
                   for p in range(self.partitions))

    def wait_applied(self, timeout=180):
        """Until the workers stored offsets at the end of every input topic and emptied the
        outbox (all applied, all hand-offs delivered)."""
        ends = self.input_ends()

        def done():
            return self.stored_offsets() == ends and self.outbox_len() == 0
        wait_until(done, timeout, f"offsets {ends} applied and the outbox empty", interval=0.3)
        return ends

    # -- workers --
    def worker(self, name="w", clock_offset_ms=None, clock_scale=None, **extra):
        return Worker(self, name, clock_offset_ms, clock_scale, extra)

    # -- Redis Cluster (cluster=True) --
    def cluster_nodes(self):
        """See cluster_nodes()."""
        return cluster_nodes()

    def cluster_wait(self, timeout=30):
        """See cluster_wait(): seconds waited."""
        return cluster_wait(timeout)

    def start_node(self, port):
        """See start_node()."""
        start_node(port)

    def kill_master_of_partition(self, p):
        """SIGKILLs the master serving partition p's keys ({p}); returns its port."""
        return kill_master_of_partition(self.redis, p)

    def migrate_slot(self, slot, to_port, pause_s=0.0, batch=1):
        """See migrate_slot() (own connections: may run in a thread while self.redis is used)."""
        return migrate_slot(self.redis, slot, to_port, pause_s, batch)

    def cleanup(self):
        for w in self.workers:
            w.kill()
        try:
            # On a cluster scan_all scans every master and DEL is split by slot.
            keys = self.redis.scan_all(self.prefix + ":*")
            for i in range(0, len(keys), 500):
                self.redis.command("DEL", *keys[i:i + 500])
            self.redis.close()
        except (OSError, RuntimeError):
            pass
        if os.environ.get("LP_KEEP_WORK") is None:
            shutil.rmtree(self.dir, ignore_errors=True)


class Worker:
    """A `leadpulse run` subprocess with its own environment, HTTP port and log file."""

    def __init__(self, ctx, name, clock_offset_ms, clock_scale, extra):
        self.ctx = ctx
        self.name = name
        self.port = free_port()
        self.log_path = os.path.join(ctx.dir, f"worker-{name}.log")
        env = {"LEADPULSE_HTTP_LISTEN": f"127.0.0.1:{self.port}",
               "LEADPULSE_TIMERS_INTERVAL_MS": 200,
               # Live streams: while a topic is idle, hold records long enough for one produced
               # just before on another topic to arrive, also on a loaded 2-core CI machine
               # (merge.grace_ms; the default of 20 ms suits an unloaded machine).
               "LEADPULSE_MERGE_GRACE_MS": 250,
               "LEADPULSE_SHUTDOWN_TIMEOUT_MS": 10000,
               "LEADPULSE_KAFKA_SESSION_TIMEOUT_MS": 6000,
               "LEADPULSE_KAFKA_HEARTBEAT_INTERVAL_MS": 500}
        if clock_offset_ms is not None or clock_scale is not None:
            env["LEADPULSE_ALLOW_TEST_CLOCK"] = "1"
            env["LEADPULSE_CLOCK_OFFSET_MS"] = int(clock_offset_ms or 0)
            env["LEADPULSE_CLOCK_SCALE"] = clock_scale if clock_scale is not None else 1
        env.update(extra)
        # Kept for clock_range(): what the worker's timer clock was set to.
        self.clock_offset_ms = int(clock_offset_ms or 0)
        self.clock_scale = float(clock_scale) if clock_scale is not None else 1.0
        self.launched_ms = now_ms()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ctx.env.bin, "run", "--config", ctx.config()],
                                     env=ctx.base_env(**env), stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=ctx.env.src)
        ctx.workers.append(self)

    def alive(self):
        return self.proc.poll() is None

    def metrics_text(self):
        """The raw /metrics text, or None."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def metrics(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    m[name] = float(value)
                except ValueError:
                    pass
        return m

    def wait_owns(self, n, timeout=60):
        def owns():
            if not self.alive():
                raise RuntimeError(f"worker {self.name} exited with status {self.proc.returncode}: "
                                   f"{self.tail()}")
            m = self.metrics()
            return m is not None and m.get("leadpulse_partitions_owned") == n
        wait_until(owns, timeout, f"worker {self.name} to own {n} partitions")

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop_mid_store_call(self, timeout=10):
        """SIGSTOPs the worker while its main thread waits for a Redis reply (read/recvfrom in
        /proc/PID/syscall, x86-64 numbers), i.e. in the middle of a batch: after SIGCONT it goes
        on with that batch. Falls back to a plain SIGSTOP elsewhere. Returns True if caught."""
        path = f"/proc/{self.proc.pid}/syscall"
        deadline = time.monotonic() + timeout
        while os.uname().machine == "x86_64" and time.monotonic() < deadline:
            try:
                with open(path) as f:
                    nr = f.read().split(" ", 1)[0]
            except OSError:
                break
            if nr in ("0", "45"):
                self.signal(signal.SIGSTOP)
                return True
        self.signal(signal.SIGSTOP)
        return False

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
            except OSError:
                pass
            self.proc.kill()
            self.proc.wait()
        if not self.logf.closed:
            self.logf.close()

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def tail(self, n=20):
        return "\n".join(self.log_text().splitlines()[-n:])

    def metric(self, name, default=None):
        """One value of /metrics (e.g. 'leadpulse_timers_fired_total'), or default if the
        worker does not answer."""
        m = self.metrics()
        return default if m is None else m.get(name, default)

    def started_wall_range(self):
        """Bounds of the wall time (ms) at which the worker set its clock's start: after the
        process was launched, before its first `[run] leadpulse` log line (ms resolution)."""
        for line in self.log_text().splitlines():
            if "[run] leadpulse " in line:
                return self.launched_ms, log_line_ms(line) + 1
        return None

    def clock_range(self, wall_ms):
        """Bounds of the worker's timer clock at wall time wall_ms: start + offset + scale *
        (wall - start), with the start only known to lie in started_wall_range(). With a large
        scale the uncertainty is (scale - 1) * (width of that range)."""
        rng = self.started_wall_range()
        if rng is None:
            return None
        a, b = (w + self.clock_offset_ms + self.clock_scale * (wall_ms - w) for w in rng)
        return min(a, b), max(a, b)

    def partitions_assigned(self):
        """Partitions the worker took (its `partition N assigned` log lines), minus the ones it
        logged as revoked since: {partition: True}."""
        owned = {}
        for line in self.log_text().splitlines():
            words = line.split()
            for i, w in enumerate(words[:-2]):
                if w == "partition" and words[i + 1].isdigit():
                    if words[i + 2] == "assigned":
                        owned[int(words[i + 1])] = True
                    elif words[i + 2] == "revoked":
                        owned.pop(int(words[i + 1]), None)
        return owned


# ---- comparisons -------------------------------------------------------------------------------

def qualified_key(h):
    return (h["event_id"], h["lead_id"], round(h["score"], 6), h["fit_grade"])


def handoff_key(h):
    """What identifies a hand-off's content in both the consumer's and replay's JSON."""
    t = h.get("type") or ""
    if t.startswith("Account") or (h.get("kind") or "").startswith("account_"):
        kind = "account_qualified" if t == "AccountQualified" or \
            h.get("kind") == "account_qualified" else "account_stale"
        return (kind, h["event_id"], h["account"], h["ts"], round(h["score"], 6),
                h["qualification"], (h.get("reason") or "").lower(), h["engaged_members"],
                h["members_total"])
    if h.get("type") == "LeadErased" or h.get("kind") == "erased":
        return ("erased", h["event_id"], h["lead_id"], h["ts"], h["had_state"],
                h.get("suppressed_until"))
    kind = "qualified" if h.get("type") == "LeadQualified" or h.get("kind") == "qualified" \
        else "stale"
    reason = (h.get("reason") or "").lower() if kind == "stale" else ""
    return (kind, h["event_id"], h["lead_id"], h["ts"], round(h["score"], 6), h["fit_grade"],
            reason, h.get("reminder", 0) if kind == "stale" else 0, h["qualification"])


def compare_states(checks, worker_state, replay_state, label):
    """Every lead: score (1e-6), stage, grade, qualifications equal. Prints the first diffs."""
    missing = sorted(set(replay_state) - set(worker_state))
    extra = sorted(set(worker_state) - set(replay_state))
    diffs = []
    for lead, r in replay_state.items():
        w = worker_state.get(lead)
        if w is None:
            continue
        if (abs(w["score"] - r["score"]) > 2e-6 or w["stage"].lower() != r["stage"].lower()
                or w["fit_grade"] != r["fit_grade"] or w["qualifications"] != r["qualifications"]):
            diffs.append((lead, {k: w[k] for k in ("score", "stage", "fit_grade",
                                                     "qualifications")},
                          {k: r[k] for k in ("score", "stage", "fit_grade", "qualifications")}))
    for d in diffs[:5]:
        log(f"    diff {d[0]}: worker {d[1]} replay {d[2]}")
    checks.check(not missing and not extra and not diffs,
                 f"{label}: {len(worker_state)} leads in Redis vs {len(replay_state)} in replay: "
                 f"{len(missing)} missing, {len(extra)} extra, {len(diffs)} differ "
                 "(score to 1e-6, stage, grade, qualifications)")


def pick_until(ctx, path, max_ts):
    """A time T after the data such that no timer falls due in [T, T + 60 s]: the worker's
    clock is pinned near T (it may read up to a few seconds late), replay fires up to T."""
    t = max_ts + DAY_MS
    for _ in range(20):
        a, _, _ = ctx.replay(path, until=t, state=False)
        b, _, _ = ctx.replay(path, until=t + 60000, state=False)
        if len(a) == len(b):
            return t, a
        t += 3600000
    raise RuntimeError("no quiet time window after the data")


def file_max_ts(path):
    m = 0
    with open(path) as f:
        for line in f:
            try:
                m = max(m, int(json.loads(line).get("ts", 0)))
            except (ValueError, TypeError, AttributeError):
                pass
    return m


def pinned_clock(t_ms):
    """Worker env for a test clock that reads t_ms (plus 1 ms per real second) from now on."""
    return {"clock_offset_ms": t_ms - now_ms(), "clock_scale": 0.001}


# ---- disruption scenarios (crash, rebalance, fencing) ---------------------------------------------

def file_min_ts(path):
    m = None
    with open(path) as f:
        for line in f:
            try:
                ts = int(json.loads(line).get("ts", 0))
            except (ValueError, TypeError, AttributeError):
                continue
            m = ts if m is None or ts < m else m
    return m or now_ms()


class Scenario:
    """A generated stream, produced up front (a backlog) or at a steady rate, that workers apply
    while the test disrupts them. Meanwhile every worker's clock is pinned before the data, so
    timers fire only in event time (as in replay); afterwards one worker with its clock pinned at
    T fires the rest, and the outcome must equal `replay --until T`."""

    def __init__(self, ctx, seed, leads, events, rate=0):
        self.ctx = ctx
        self.path = ctx.gen(os.path.join(ctx.dir, "events.jsonl"), seed=seed, leads=leads,
                            events=events, zipf=0.9,
                            **({"accounts": max(4, leads // 15)} if ctx.accounts else {}))
        self.early = file_min_ts(self.path) - DAY_MS
        self.until, _ = pick_until(ctx, self.path, file_max_ts(self.path))
        self.ref, self.ref_state, err = ctx.replay(self.path, until=self.until)
        self.ref_err = err
        summary = [l for l in err if l.startswith("replay:")]
        log(f"reference: {summary[-1] if summary else '?'}")
        self.rate = rate
        self.producer = None

    def worker(self, name, **extra):
        return self.ctx.worker(name, **pinned_clock(self.early), **extra)

    def start_stream(self):
        rate = ["--rate", str(self.rate)] if self.rate > 0 else []
        self.producer = self.ctx.produce_async(self.path, *rate)

    def applied(self):
        return sum(self.ctx.stored_offsets().values())

    def wait_applied_at_least(self, n, timeout=90):
        wait_until(lambda: self.applied() >= n, timeout, f"{n} records applied", interval=0.05)

    def streaming(self):
        return self.producer is not None and self.producer.poll() is None

    def finish_stream(self, timeout=120):
        rc = self.producer.wait(timeout)
        err = self.producer.stderr.read()
        if rc != 0:
            raise RuntimeError(f"produce failed ({rc}): {err[-1000:]}")

    def settle_and_compare(self, checks, label):
        """Stops every worker, then one worker with the clock at T applies the rest; compares
        hand-offs and state with replay. Returns the records read from the output topics."""
        ctx = self.ctx
        for w in ctx.workers:
            if w.alive():
                w.stop()
        final = ctx.worker("final", **pinned_clock(self.until))
        ends = ctx.wait_applied(timeout=180)
        log(f"{label}: all input applied {ends}")
        ref_all = {handoff_key(h) for h in self.ref}

        def complete():
            got = ctx.consume()
            return got if {h["event_id"] for h in got} >= {k[1] for k in ref_all} else None
        try:
            got = wait_until(complete, 60, "every expected hand-off", interval=1)
        except TimeoutError as e:
            log(f"  {e}")
            got = ctx.consume()
        got_all = {handoff_key(h) for h in got}
        ref_q = {k for k in ref_all if k[0] == "qualified"}
        got_q = {k for k in got_all if k[0] == "qualified"}
        for k in sorted(ref_all - got_all)[:5]:
            log(f"    missing {k}")
        for k in sorted(got_all - ref_all)[:5]:
            log(f"    unexpected {k}")
        checks.check(ref_q <= got_q and len(ref_q) > 20,
                     f"{label}: every expected MQL on the output topic: {len(ref_q & got_q)} of "
                     f"{len(ref_q)} (missing {len(ref_q - got_q)})")
        checks.check(got_all == ref_all,
                     f"{label}: distinct hand-offs equal replay's: worker {len(got_all)}, replay "
                     f"{len(ref_all)}, missing {len(ref_all - got_all)}, unexpected "
                     f"{len(got_all - ref_all)}")
        by_id = {}
        for h in got:
            by_id.setdefault(h["event_id"], set()).add(handoff_key(h))
        conflicting = [i for i, v in by_id.items() if len(v) > 1]
        dups = len(got) - len(by_id)
        checks.check(not conflicting,
                     f"{label}: {dups} duplicate deliveries (same event_id; allowed, de-duplicated "
                     f"by consumers), {len(conflicting)} event_ids with differing content")
        compare_states(checks, ctx.inspect_all(), self.ref_state, f"{label}: final state")
        rc = final.stop()
        checks.check(rc == 0, f"{label}: final worker SIGTERM exit status {rc}")
        return got


# ---- hand-made streams and timers (test_worker_timers) ----------------------------------------

HOUR_MS = 3600000


def log_line_ms(line):
    """Wall time (ms) of a worker log line: `2026-01-02T03:04:05.678Z LEVEL [tag] ...`."""
    import calendar
    stamp = line.split(" ", 1)[0].rstrip("Z")
    base, _, frac = stamp.partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac or 0)


def engagement(lead, ts, kind="demo_request", n=0):
    """One engagement event of the JSON input format (event id unique per lead, ts, n)."""
    return {"kind": "engagement", "event_id": f"{lead}-{kind}-{ts}-{n}", "lead_id": lead,
            "ts": int(ts), "type": kind}


def feedback(lead, ts, outcome, reason=None):
    e = {"kind": "feedback", "event_id": f"{lead}-fb-{outcome}-{ts}", "lead_id": lead,
         "ts": int(ts), "outcome": outcome}
    if reason is not None:
        e["reason"] = reason
    return e


def use_rules(ctx, text, name="rules.yaml"):
    """Writes a rules file into the test's work folder; workers and replay use it from now on."""
    path = os.path.join(ctx.dir, name)
    with open(path, "w") as f:
        f.write(text)
    ctx.rules = path
    return path


def accounts_rules(ctx):
    """config/rules.yaml with its commented `accounts:` example switched on, for ctx's workers and
    replay."""
    src = open(os.path.join(ctx.env.src, "config", "rules.yaml")).read()
    lines = src.splitlines()
    start = lines.index("# accounts:")
    block = [line[2:] if line.startswith("# ") else line for line in lines[start:]]
    return use_rules(ctx, src + "\n" + "\n".join(block) + "\n", "rules-accounts.yaml")


def timers_due(ctx, until_ms):
    """Entries of every partition's timer set due at or before until_ms."""
    return sum(ctx.redis.command("ZCOUNT", f"{ctx.prefix}:{{{p}}}:timers", "-inf", int(until_ms))
               for p in range(ctx.partitions))


def timer_partition_of(ctx, lead):
    """The partition whose timer set holds the lead, or None."""
    for p in range(ctx.partitions):
        if ctx.redis.command("ZSCORE", f"{ctx.prefix}:{{{p}}}:timers", lead) is not None:
            return p
    return None
