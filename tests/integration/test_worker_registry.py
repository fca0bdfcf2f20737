#!/usr/bin/env python3
"""The worker speaks Confluent's Schema Registry protocol, checked with Confluent's own Python
client (confluent-kafka's SchemaRegistryClient, AvroSerializer and AvroDeserializer, from PyPI)
against the local stack's registry (Apicurio Registry, Confluent API):

1. Start refused: a subject whose latest version our LeadQualified cannot read (BACKWARD) stops
   `leadpulse run` with exit 1 and an error naming the subject, its latest version and the
   registry's reason; with auto_register false and nothing registered, the start stops too.
2. The worker registers LeadQualified and LeadStale under `<topic>-value` and frames every
   hand-off with those ids: an independent consumer (AvroDeserializer, writer schema fetched by
   id) reads every hand-off, and they equal `leadpulse replay`'s. The registry serves, for the id
   in the framing, the schema file's schema. Its URL list starts with a dead URL (failover).
3. An evolved producer (AvroSerializer, EngagementEvent v2: a field added with a default, fields
   reordered, docs changed; registered under BACKWARD) writes every engagement event: all applied
   (Redis state equals replay), none dead-lettered. A producer with an incompatible schema
   (`machine` as a string) under another subject: each of its records is dead-lettered with a
   reason naming its schema id and the field.
4. The registry unreachable mid-run (the worker reaches it through a proxy in this test, which is
   stopped): records of known ids go on being applied; records of a new id (v3: a nested record
   added with a default) are held, not dead-lettered, `leadpulse_schema_registry_waits_total`
   rises and /readyz says why; once the registry answers again they are applied.
Finally every lead's state equals replay over everything applied, and the hand-offs read through
the registry equal replay's.
"""
import datetime
import fcntl
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

CONFLUENT_KAFKA = "confluent-kafka[avro,schemaregistry]==2.16.1"
PINS = ["fastavro==1.13.1", "httpx2==2.16.2", "attrs==26.1.0", "cachetools==8.0.2",
        "Authlib==1.9.10"]
CACHE = Path(os.environ.get("LP_CACHE_DIR") or Path.home() / ".cache" / "leadpulse") / \
    "registry-test"
VENV = CACHE / "venv"
CT = "application/vnd.schemaregistry.v1+json"


def ensure_venv_and_reexec():
    """Runs this script with a cached venv's python that has confluent-kafka (pinned)."""
    if os.environ.get("LP_REGISTRY_TEST_IN_VENV") == "1":
        return
    want = " ".join([CONFLUENT_KAFKA] + PINS)
    py = VENV / "bin" / "python3"
    marker = VENV / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (py.exists() and marker.exists() and marker.read_text() == want):
            lpit.log(f"setup: creating {VENV} with {want} (once)")
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", CONFLUENT_KAFKA] + PINS, check=True)
            marker.write_text(want)
    env = dict(os.environ, LP_REGISTRY_TEST_IN_VENV="1")
    os.execve(str(py), [str(py), os.path.abspath(__file__)] + sys.argv[1:], env)


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", CT)
    if data is not None:
        req.add_header("Content-Type", CT)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Proxy:
    """A forwarding HTTP proxy to the registry on a free port; stop() makes it unreachable,
    start() brings it back on the same port."""

    def __init__(self, target):
        self.target = target.rstrip("/")
        self.port = lpit.free_port()
        self.server = None
        self.requests = 0

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self):
                proxy.requests += 1
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                req = urllib.request.Request(proxy.target + self.path, data=body,
                                             method=self.command)
                for h in ("Content-Type", "Accept", "Authorization"):
                    if self.headers.get(h):
                        req.add_header(h, self.headers[h])
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, out = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, out = e.code, e.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self):
        # The registry's path prefix (/apis/ccompat/v7) is kept: the proxy forwards paths.
        return f"http://127.0.0.1:{self.port}"


def evolved_schema(version):
    """EngagementEvent as an evolved producer writes it: v2 adds utm_source (with a default),
    moves machine before type and rewords docs; v3 adds a nested record with a default."""
    base = json.load(open(os.path.join(lpit.source_dir(), "schemas", "EngagementEvent.avsc")))
    fields = {f["name"]: f for f in base["fields"]}
    order = ["event_id", "lead_id", "ts", "machine", "type", "url", "asset_id", "campaign_id",
             "seconds_since_send"]
    out = dict(base)
    out["doc"] = f"Engagement event, producer schema v{version}."
    out["fields"] = [dict(fields[n]) for n in order]
    out["fields"][4]["doc"] = "activity type (v2 wording)"
    out["fields"].insert(5, {"name": "utm_source", "type": ["null", "string"], "default": None,
                             "doc": "added in v2"})
    if version >= 3:
        out["fields"].append({"name": "consent", "default": {"email": True, "scope": []},
                              "type": {"type": "record", "name": "Consent", "fields": [
                                  {"name": "email", "type": "boolean"},
                                  {"name": "scope", "type": {"type": "array",
                                                             "items": "string"}}]}})
    return json.dumps(out)


def incompatible_schema():
    base = json.load(open(os.path.join(lpit.source_dir(), "schemas", "EngagementEvent.avsc")))
    for f in base["fields"]:
        if f["name"] == "machine":
            f["type"], f["default"] = "string", "no"
    return json.dumps(base)


def engagement_record(e, version):
    r = {"event_id": e["event_id"], "lead_id": e["lead_id"], "ts": int(e["ts"]),
         "type": e["type"], "url": e.get("url"), "asset_id": e.get("asset_id"),
         "campaign_id": e.get("campaign_id"), "machine": bool(e.get("machine", False)),
         "seconds_since_send": e.get("seconds_since_send"), "utm_source": "newsletter"}
    if version >= 3:
        r["consent"] = {"email": True, "scope": ["marketing", "sales"]}
    return r


def renamed(events, prefix):
    out = []
    for e in events:
        e = dict(e)
        e["lead_id"] = prefix + e["lead_id"]
        e["event_id"] = prefix + e["event_id"]
        out.append(e)
    return out


def to_ms(v):
    if isinstance(v, datetime.datetime):
        return (v - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // \
            datetime.timedelta(milliseconds=1)
    return v


def main():
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    registry = os.environ.get("LP_SCHEMA_REGISTRY_URL")
    ctx = lpit.Ctx("registry", partitions=3)
    checks = lpit.Checks("test_worker_registry")
    if not registry:
        lpit.log("SKIP: no schema registry in the stack (LP_SCHEMA_REGISTRY_URL)")
        ctx.cleanup()
        sys.exit(lpit.SKIP)
    origin = registry[:registry.index("/", len("http://"))]
    proxy = Proxy(origin)
    sr = SchemaRegistryClient({"url": registry})
    T = ctx.topics
    try:
        for t in ("mql", "stale", "engagement"):
            call(registry, "PUT", f"/config/{T[t]}-value", {"compatibility": "BACKWARD"})

        # -- 1. refused starts ---------------------------------------------------------------
        refused_topic = T["mql"] + ".refused"
        call(registry, "PUT", f"/config/{refused_topic}-value", {"compatibility": "BACKWARD"})
        st, _ = call(registry, "POST", f"/subjects/{refused_topic}-value/versions", {
            "schema": json.dumps({"type": "record", "name": "LeadQualified",
                                  "namespace": "io.leadpulse",
                                  "fields": [{"name": "event_id", "type": "string"}]})})
        for label, extra, must in (
                ("incompatible latest version", {"LEADPULSE_TOPICS_MQL": refused_topic},
                 [f"subject {refused_topic}-value", "latest version 1", "LeadQualified"]),
                ("auto_register false, nothing registered",
                 {"LEADPULSE_TOPICS_MQL": T["mql"] + ".unregistered",
                  "LEADPULSE_SCHEMA_REGISTRY_AUTO_REGISTER": "false"},
                 [f"subject {T['mql']}.unregistered-value", "not registered"])):
            r = subprocess.run([ctx.env.bin, "run", "--config", ctx.config()],
                               env=ctx.base_env(LEADPULSE_SCHEMA_REGISTRY_URL=registry, **extra),
                               capture_output=True, text=True, timeout=60, cwd=ctx.env.src)
            out = r.stdout + r.stderr
            line = next((l for l in out.splitlines() if "ERROR" in l), out[-300:])
            checks.check(r.returncode == 1 and all(m in out for m in must),
                         f"start with {label}: exit {r.returncode}, '{line.strip()[:400]}'")

        # -- the data: three sets of leads ---------------------------------------------------
        def load(path):
            return [json.loads(l) for l in open(path) if l.strip()]
        s1 = load(ctx.gen(os.path.join(ctx.dir, "s1.jsonl"), seed=31, leads=300, events=3000))
        s2 = renamed(load(ctx.gen(os.path.join(ctx.dir, "s2.jsonl"), seed=32, leads=60,
                                  events=500)), "k")
        s3 = [e for e in renamed(load(ctx.gen(os.path.join(ctx.dir, "s3.jsonl"), seed=33,
                                              leads=60, events=500)), "n")
              if e["kind"] == "engagement"]
        # One engagement event of a lead of its own, sent by `leadpulse produce` in phase 1:
        # the worker then knows the id of our own EngagementEvent, which phase 2 uses.
        probe = [{"kind": "engagement", "event_id": "probe-event", "lead_id": "probe-lead",
                  "ts": int(s1[0]["ts"]), "type": "web_visit", "url": "/pricing"}]
        everything = sorted(s1 + s2 + s3 + probe, key=lambda e: int(e["ts"]))
        all_path = ctx.write_lines("all.jsonl", everything)
        until, _ = lpit.pick_until(ctx, all_path, lpit.file_max_ts(all_path))

        producer = Producer({"bootstrap.servers": ctx.env.brokers, "enable.idempotence": True,
                             "linger.ms": 5})

        def send_avro(events, serializer):
            for e in events:
                topic = T["engagement"]
                value = serializer(e, SerializationContext(topic, MessageField.VALUE))
                # The record timestamp is the event time, as docs/README ("Producers") asks:
                # the worker merges its input topics by it.
                producer.produce(topic, key=e["lead_id"].encode(), value=value,
                                 timestamp=int(e["ts"]))
                producer.poll(0)
            left = producer.flush(60)
            if left:
                raise RuntimeError(f"{left} records not delivered")

        v2 = AvroSerializer(sr, evolved_schema(2), lambda e, c: engagement_record(e, 2),
                            {"auto.register.schemas": True})
        v3 = AvroSerializer(sr, evolved_schema(3), lambda e, c: engagement_record(e, 3),
                            {"auto.register.schemas": True})
        bad = AvroSerializer(sr, incompatible_schema(),
                             lambda e, c: dict(engagement_record(e, 1), machine="yes"),
                             {"auto.register.schemas": True,
                              "subject.name.strategy": lambda c, name: c.topic + "-incompatible"})

        # -- phase 1, before the worker starts: S1's engagement through the v2 producer, its
        # profiles and feedback through `leadpulse produce` (registered input schemas), and 20
        # records of the incompatible producer
        s1_eng = [e for e in s1 if e["kind"] == "engagement"]
        s1_rest = [e for e in s1 if e["kind"] != "engagement"]
        send_avro(s1_eng, v2)
        bad_events = [dict(e, lead_id=f"bad{i}", event_id=f"bad-ev{i}")
                      for i, e in enumerate(s1_eng[:20])]
        send_avro(bad_events, bad)
        sent = ctx.produce(ctx.write_lines("s1-rest.jsonl", s1_rest + probe),
                           env_extra={"LEADPULSE_SCHEMA_REGISTRY_URL": registry})
        v2_id = sr.lookup_schema(f"{T['engagement']}-value",
                                 Schema(evolved_schema(2), "AVRO")).schema_id
        bad_id = sr.get_latest_version(f"{T['engagement']}-incompatible").schema_id
        lpit.log(f"phase 1: {len(s1_eng)} engagement events as v2 (schema id {v2_id}), "
                 f"{sent} profile/feedback events by leadpulse produce, 20 incompatible "
                 f"(schema id {bad_id})")

        proxy.start()
        dead = f"http://127.0.0.1:{lpit.free_port()}"
        prefix = registry[registry.index("/", len("http://")):]
        url_list = f"{dead}{prefix},{proxy.url()}{prefix}"
        w = ctx.worker("a", LEADPULSE_SCHEMA_REGISTRY_URL=url_list,
                       LEADPULSE_SCHEMA_REGISTRY_TIMEOUT_MS=2000, **lpit.pinned_clock(until))
        ends = ctx.wait_applied(timeout=240)
        dlq = ctx.consume(("dlq",), raw=True)
        bad_dl = [d for d in dlq if d.get("key", "").startswith("bad")]
        reasons = {d["headers"].get("reason", "") for d in bad_dl}
        checks.check(len(dlq) == 20 and len(bad_dl) == 20 and all(
            f"schema id {bad_id}" in r and "machine" in r for r in reasons),
            f"phase 1 applied ({ends}); dead letters: {len(dlq)} (20 expected, all of the "
            f"incompatible producer), reasons: {sorted(reasons)[:2]}")
        st, latest_q = call(registry, "GET", f"/subjects/{T['mql']}-value/versions/latest")
        st2, latest_s = call(registry, "GET", f"/subjects/{T['stale']}-value/versions/latest")
        q_file = json.load(open(os.path.join(ctx.env.schemas, "LeadQualified.avsc")))
        ok_schema = st == 200 and json.loads(latest_q["schema"]) == q_file
        checks.check(ok_schema and st2 == 200,
                     f"the worker registered {T['mql']}-value (id "
                     f"{latest_q.get('id') if st == 200 else st}) = schemas/LeadQualified.avsc, "
                     f"and {T['stale']}-value (id "
                     f"{latest_s.get('id') if st2 == 200 else st2})")

        # -- phase 2: the registry unreachable ------------------------------------------------
        proxy.stop()
        sent2 = ctx.produce(ctx.write_lines("s2.jsonl", s2), "--ordered-ms", "100",
                            env_extra={"LEADPULSE_SCHEMA_REGISTRY_URL": registry})
        ends2 = ctx.wait_applied(timeout=120)
        checks.check(w.alive(), f"registry down: {sent2} events of known ids applied "
                     f"(input ends {ends2})")
        send_avro(s3, v3)
        v3_id = sr.get_latest_version(f"{T['engagement']}-value").schema_id

        def held():
            return (w.metric("leadpulse_schema_registry_waits_total", 0) or 0) >= 2
        lpit.wait_until(held, 60, "the worker to hold records of the new schema id")
        time.sleep(1)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{w.port}/readyz", timeout=2) as r:
                ready = (r.status, r.read().decode())
        except urllib.error.HTTPError as e:
            ready = (e.code, e.read().decode())
        stored, ends3 = ctx.stored_offsets(), ctx.input_ends()
        dlq2 = ctx.consume(("dlq",), raw=True)
        checks.check(stored["engagement"] < ends3["engagement"] and len(dlq2) == 20 and
                     ready[0] == 503 and "schema registry unreachable" in ready[1],
                     f"registry down, {len(s3)} records of new id {v3_id}: held (engagement "
                     f"stored {stored['engagement']} < end {ends3['engagement']}), "
                     f"{len(dlq2) - 20} dead-lettered, waits "
                     f"{w.metric('leadpulse_schema_registry_waits_total')}, /readyz {ready[0]} "
                     f"{ready[1].strip()!r}")
        proxy.start()
        ends4 = ctx.wait_applied(timeout=120)
        lpit.log(f"registry back: input ends {ends4} applied")

        # -- everything against replay -------------------------------------------------------
        # The worker's clock reads T: the timers due by T fire once its partitions are caught up
        # (a timer pass every 200 ms); replay --until T has fired them all. Wait for that, or
        # the state is compared a pass too early (leads still warm that go inactive by T).
        lpit.wait_until(lambda: lpit.timers_due(ctx, until) == 0, 60,
                        "the timers due by T to fire")
        ref, ref_state, _ = ctx.replay(all_path, until=until)
        ref_all = {lpit.handoff_key(h) for h in ref}
        lpit.compare_states(checks, ctx.inspect_all(), ref_state, "all three sets")

        deser = AvroDeserializer(sr)
        consumer = Consumer({"bootstrap.servers": ctx.env.brokers,
                             "group.id": f"{ctx.group}-crm", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.subscribe([T["mql"], T["stale"]])
        got, ids, errors = [], set(), []
        deadline = time.monotonic() + 90
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                if len({h["event_id"] for h in got}) >= len(ref_all) and \
                        time.monotonic() - idle_since > 3:
                    break
                continue
            if m.error():
                continue
            idle_since = time.monotonic()
            raw = m.value()
            ids.add((m.topic(), int.from_bytes(raw[1:5], "big")))
            try:
                h = deser(raw, SerializationContext(m.topic(), MessageField.VALUE))
            except Exception as e:  # noqa: BLE001 (any failure to decode is the finding)
                errors.append(str(e))
                continue
            h = {k: to_ms(v) for k, v in h.items()}
            h["type"] = "LeadQualified" if m.topic() == T["mql"] else "LeadStale"
            got.append(h)
        consumer.close()
        got_all = {lpit.handoff_key(h) for h in got}
        want_ids = {(T["mql"], latest_q.get("id")), (T["stale"], latest_s.get("id"))}
        checks.check(not errors and got_all == ref_all and ids <= want_ids,
                     f"Confluent's AvroDeserializer read {len(got)} hand-offs through the "
                     f"registry ({len(errors)} failed: {errors[:1]}), schema ids {sorted(ids)}; "
                     f"{len(got_all)} distinct vs {len(ref_all)} of replay: "
                     f"{len(ref_all - got_all)} missing, {len(got_all - ref_all)} extra")
        checks.check(proxy.requests > 0 and w.alive(),
                     f"the worker failed over past the dead URL to the proxy "
                     f"({proxy.requests} requests through it)")
    finally:
        proxy.stop()
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    if not os.environ.get("LP_SCHEMA_REGISTRY_URL"):
        lpit._stack_env()
    if not os.environ.get("LP_SCHEMA_REGISTRY_URL"):
        lpit.log("SKIP: no schema registry (deploy/local/stack up with LP_STACK_REGISTRY=1)")
        sys.exit(lpit.SKIP)
    try:
        ensure_venv_and_reexec()
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"FAIL setup: could not create the venv with {CONFLUENT_KAFKA}: {e}")
        sys.exit(1)
    main()
