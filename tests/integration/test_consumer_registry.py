#!/usr/bin/env python3
"""The example CRM consumer reads the hand-offs through the Schema Registry (handoff-consumer
--registry), as Confluent's deserializers do: the writer schema of each id in the framing comes
from GET /schemas/ids/{id}, not from the .avsc files.

1. A worker with the registry (its URL list starting with a dead URL: failover) applies a
   generated stream produced by `leadpulse produce` with the registry; handoff-consumer
   --registry (its own list also starting with a dead URL, --schemas pointing to an empty folder)
   prints exactly `leadpulse replay`'s hand-offs (lpit.handoff_key), every record framed with the
   id the registry holds under <topic>-value, printed as its schema_id.
2. A record framed with an id whose writer schema the test registered (LeadStale with a field
   renamed: same binary layout) decodes with that schema: the renamed field is printed.
3. A record framed with an id the registry lacks gives the error line "schema id N unknown to
   the registry" (exit status 1); with no registry reachable, the record is retried and then
   given as an error line, not skipped. An input record framed with that id is a dead letter of
   the worker, `unknown schema id N` (docs/bad-inputs.md).

Skipped (77) without a stack or without its registry (LP_SCHEMA_REGISTRY_URL).
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402

CT = "application/vnd.schemaregistry.v1+json"


def call(base, method, path, body=None):
    """(status, parsed JSON or raw text) of a request to the registry's Confluent API."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", CT)
    if data is not None:
        req.add_header("Content-Type", CT)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def consume(ctx, registry, topics, idle_ms=1500, extra=(), timeout=120):
    """handoff-consumer --registry over topics from the beginning: (records, exit status,
    stderr). --schemas names an empty folder: nothing may come from the .avsc files."""
    empty = os.path.join(ctx.dir, "no-schemas")
    os.makedirs(empty, exist_ok=True)
    args = [ctx.env.consumer, "--brokers", ctx.env.brokers, "--registry", registry,
            "--schemas", empty, "--topics", ",".join(topics), "--from-beginning",
            "--exit-when-idle", str(idle_ms), *extra]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"handoff-consumer failed ({r.returncode}): {r.stderr[-2000:]}")
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()], r.returncode, r.stderr


def send_raw(ctx, topic, key, value):
    path = os.path.join(ctx.dir, f"raw-{key}.bin")
    with open(path, "wb") as f:
        f.write(value)
    subprocess.run(["kcat", "-P", "-b", ctx.env.brokers, "-t", topic, "-k", key, path],
                   check=True, capture_output=True, timeout=30)


def main():
    t0 = time.monotonic()
    lpit.Env()  # skips without a stack; fills LP_SCHEMA_REGISTRY_URL from `stack env`
    registry = os.environ.get("LP_SCHEMA_REGISTRY_URL")
    if not registry:
        lpit.log("SKIP: no schema registry in the stack (LP_SCHEMA_REGISTRY_URL)")
        sys.exit(lpit.SKIP)
    ctx = lpit.Ctx("consumer_registry", partitions=3)
    checks = lpit.Checks("test_consumer_registry")
    T = ctx.topics
    prefix = registry[registry.index("/", len("http://")):]
    try:
        path = ctx.gen(os.path.join(ctx.dir, "events.jsonl"), seed=41, leads=300, events=3000,
                       zipf=0.9)
        until, _ = lpit.pick_until(ctx, path, lpit.file_max_ts(path))
        ref, _, _ = ctx.replay(path, until=until, state=False)
        ref_all = {lpit.handoff_key(h) for h in ref}
        sent = ctx.produce(path, env_extra={"LEADPULSE_SCHEMA_REGISTRY_URL": registry})
        dead = f"http://127.0.0.1:{lpit.free_port()}{prefix}"
        w = ctx.worker("a", LEADPULSE_SCHEMA_REGISTRY_URL=f"{dead},{registry}",
                       LEADPULSE_SCHEMA_REGISTRY_TIMEOUT_MS=2000, **lpit.pinned_clock(until))
        ends = ctx.wait_applied(timeout=120)
        lpit.log(f"{sent} events produced with the registry, applied by the worker ({ends}); "
                 f"replay: {len(ref_all)} hand-offs")

        # -- 1. every hand-off through the registry -------------------------------------------
        url_list = f"{dead},{registry}"

        def complete():
            got, _, _ = consume(ctx, url_list, (T["mql"], T["stale"]))
            return got if {h.get("event_id") for h in got} >= {k[1] for k in ref_all} else None
        try:
            got = lpit.wait_until(complete, 60, f"{len(ref_all)} hand-offs", interval=1)
        except TimeoutError as e:
            lpit.log(f"  {e}")
            got, _, _ = consume(ctx, url_list, (T["mql"], T["stale"]))
        errors = [h for h in got if h.get("type") == "error"]
        got_all = {lpit.handoff_key(h) for h in got if h.get("type") != "error"}
        for k in sorted(ref_all - got_all)[:5]:
            lpit.log(f"    missing {k}")
        for k in sorted(got_all - ref_all)[:5]:
            lpit.log(f"    unexpected {k}")
        checks.check(got_all == ref_all and not errors and len(ref_all) > 20,
                     f"handoff-consumer --registry (dead URL first, no .avsc files): "
                     f"{len(got)} records, {len(got_all)} distinct hand-offs vs replay's "
                     f"{len(ref_all)}: missing {len(ref_all - got_all)}, unexpected "
                     f"{len(got_all - ref_all)}, error lines {len(errors)} "
                     f"{[e.get('error') for e in errors[:2]]}")
        st_q, latest_q = call(registry, "GET", f"/subjects/{T['mql']}-value/versions/latest")
        st_s, latest_s = call(registry, "GET", f"/subjects/{T['stale']}-value/versions/latest")
        want = {T["mql"]: ("LeadQualified", latest_q.get("id") if st_q == 200 else None),
                T["stale"]: ("LeadStale", latest_s.get("id") if st_s == 200 else None)}
        seen = sorted({(h["topic"], h["type"], h["schema_id"]) for h in got
                       if h.get("type") != "error"})
        checks.check(st_q == 200 and st_s == 200 and
                     all(want[h["topic"]] == (h["type"], h["schema_id"]) for h in got
                         if h.get("type") != "error"),
                     f"every record's type and schema_id are those of its subject "
                     f"<topic>-value in the registry ({want[T['mql']]}, {want[T['stale']]}): "
                     f"seen {seen}")

        # -- 2. and 3. records framed by the test ---------------------------------------------
        extra = T["mql"][:-len("mql")] + "extra"
        lpit.create_topics(ctx.env.brokers, {extra: 1})
        stale = next((h for h in got if h.get("type") == "LeadStale"), None)
        raw, _, _ = consume(ctx, registry, (T["stale"],), idle_ms=1000,
                            extra=("--raw", "--count", "1"))
        body = bytes.fromhex(raw[0]["value_hex"])[5:]
        first = next(h for h in got if h["topic"] == T["stale"] and
                     h["partition"] == raw[0]["partition"] and h["offset"] == raw[0]["offset"])
        # LeadStale with event_id renamed: the same binary layout, another schema (and id).
        schema = json.load(open(os.path.join(ctx.env.schemas, "LeadStale.avsc")))
        for f in schema["fields"]:
            if f["name"] == "event_id":
                f["name"] = "crm_event_id"
        schema["doc"] = f"LeadStale as test {ctx.group} registered it (event_id renamed)"
        st, reg = call(registry, "POST", f"/subjects/{extra}-renamed-value/versions",
                       {"schema": json.dumps(schema)})
        renamed_id = reg.get("id") if st == 200 and isinstance(reg, dict) else None
        unknown = 2_000_000_000
        st404, _ = call(registry, "GET", f"/schemas/ids/{unknown}")
        send_raw(ctx, extra, "renamed", b"\0" + renamed_id.to_bytes(4, "big") + body)
        send_raw(ctx, extra, "unknown", b"\0" + unknown.to_bytes(4, "big") + body)
        out, rc, err = consume(ctx, registry, (extra,), idle_ms=1000)
        by_key = {h["key"]: h for h in out}
        r = by_key.get("renamed", {})
        checks.check(stale is not None and r.get("type") == "LeadStale" and
                     r.get("schema_id") == renamed_id and
                     r.get("crm_event_id") == first["event_id"] and "event_id" not in r and
                     {k: v for k, v in r.items() if k not in ("crm_event_id", "schema_id",
                                                              "topic", "partition", "offset",
                                                              "kafka_ts", "key", "headers")} ==
                     {k: v for k, v in first.items() if k not in ("event_id", "schema_id",
                                                                  "topic", "partition",
                                                                  "offset", "kafka_ts", "key",
                                                                  "headers")},
                     f"a record framed with id {renamed_id} (LeadStale, event_id renamed, "
                     f"registered by the test) decodes with that writer schema: crm_event_id "
                     f"{r.get('crm_event_id')!r}, other fields equal the original's")
        u = by_key.get("unknown", {})
        want_err = f"schema id {unknown} unknown to the registry"
        checks.check(st404 == 404 and rc == 1 and u.get("type") == "error" and
                     u.get("error") == want_err and want_err in err,
                     f"id {unknown} (registry: HTTP {st404}): error line {u.get('error')!r}, "
                     f"on stderr too, exit status {rc}")
        t = time.monotonic()
        out, rc, err = consume(ctx, f"http://127.0.0.1:{lpit.free_port()}{prefix}", (extra,),
                               idle_ms=1000, extra=("--count", "1"))
        retries = err.count("schema registry unreachable")
        checks.check(rc == 1 and len(out) == 1 and out[0].get("type") == "error" and
                     out[0]["error"].startswith("schema registry unreachable for schema id")
                     and retries >= 5,
                     f"no registry reachable: the record is tried ({retries} lines on stderr, "
                     f"{time.monotonic() - t:.1f} s), then an error line "
                     f"{out[0].get('error') if out else None!r}, exit status {rc}")
        # The worker's side of the same id (docs/bad-inputs.md): an input record framed with it
        # is a dead letter, not held.
        send_raw(ctx, T["engagement"], "lead-unknown-id",
                 b"\0" + unknown.to_bytes(4, "big") + b"\x02x")

        def dead_letter():
            dlq, _, _ = consume(ctx, registry, (T["dlq"],), idle_ms=1000, extra=("--raw",))
            return [d for d in dlq if d.get("key") == "lead-unknown-id"]
        try:
            dl = lpit.wait_until(dead_letter, 30, "the dead letter", interval=0.5)
        except TimeoutError:
            dl = []
        reason = dl[0]["headers"].get("reason", "") if dl else None
        checks.check(len(dl) == 1 and f"unknown schema id {unknown}" in reason and w.alive(),
                     f"the worker dead-letters an input record framed with id {unknown}: "
                     f"{len(dl)} dead letter(s), reason {reason!r}")
        rc = w.stop()
        checks.check(rc == 0, f"worker SIGTERM exit status {rc}")
    except Exception as e:  # noqa: BLE001 - a failed step is a failed check, with its reason
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    lpit.log(f"test_consumer_registry: {time.monotonic() - t0:.0f} s")
    checks.finish()


if __name__ == "__main__":
    main()
