#!/usr/bin/env python3
"""Probes and metrics stay up through outages (HTTP on its own thread), and /leads is guarded.

1. A worker on a private redis-server: /readyz turns 200 once it owns its partitions. The
   redis-server is then killed and events keep coming: for 8 s, every /healthz and /readyz
   answers within 100 ms; /healthz stays 200 (the loop beats while it waits out the store) and
   /readyz turns 503 naming Redis. Redis is started again (empty: the worker takes its
   partitions again) and /readyz returns to 200.
2. A worker on a private Kafka broker (its own deploy/local/stack): ready, then the stack is
   stopped: for 6 s, every probe answers within 100 ms and /healthz stays 200.
   Its log (log.format: json) is one JSON object per line, with the partition where relevant.
3. /leads: 404 while http.leads is off (the default); with it on and a token, 401 without the
   token or with a wrong one, 200 with the lead's state for the right one, 404 for an unknown id.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def get(port, path, token=None, timeout=2):
    """(status, body, seconds) of a GET; status 0 if the request failed."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), time.monotonic() - t0
    except OSError as e:
        return 0, str(e), time.monotonic() - t0


def start_redis(port, workdir):
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def watch(port, seconds):
    """Polls /healthz and /readyz for `seconds`; returns [(path, status, body, latency)]."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for path in ("/healthz", "/readyz"):
            code, body, dt = get(port, path)
            out.append((path, code, body.strip(), dt))
        time.sleep(0.2)
    return out


def probe_checks(checks, label, seen, want_ready_fail=None):
    slow = [s for s in seen if s[3] > 0.1 or s[1] == 0]
    checks.check(seen and not slow, f"{label}: {len(seen)} probe requests, all answered within "
                 f"100 ms (slowest {max(s[3] for s in seen) * 1000:.1f} ms; failures {slow[:2]})")
    health = {s[1] for s in seen if s[0] == "/healthz"}
    checks.check(health == {200}, f"{label}: /healthz stayed 200 (saw {sorted(health)})")
    if want_ready_fail is not None:
        bad = [s for s in seen if s[0] == "/readyz" and s[1] == 503 and want_ready_fail in s[2]]
        checks.check(bool(bad), f"{label}: /readyz 503 naming '{want_ready_fail}' "
                     f"({bad[0][2] if bad else [s for s in seen if s[0] == '/readyz'][-1:]})")


def main():
    ctx = lpit.Ctx("probes", partitions=3)
    checks = lpit.Checks("test_worker_probes")
    redis = None
    stack_dir = os.path.join(ctx.dir, "kafka-stack")
    stack_up = False
    try:
        path = ctx.gen(os.path.join(ctx.dir, "events.jsonl"), seed=5, leads=200, events=2000,
                       zipf=0.9)
        lines = open(path).read().splitlines()
        first = ctx.write_lines("first.jsonl", [json.loads(l) for l in lines[:1000]])
        # One event the scorer rejects (an activity the rules do not name): dead-lettered, with a
        # WARN line that carries its topic and offset.
        bad = {"kind": "engagement", "event_id": "eng-bad-1", "lead_id": "lead-bad-1",
               "ts": json.loads(lines[1000])["ts"], "type": "no_such_activity"}
        rest = ctx.write_lines("rest.jsonl", [bad] + [json.loads(l) for l in lines[1000:]])

        # 1. Redis outage
        rport = lpit.free_port()
        redis = start_redis(rport, ctx.dir)
        url = f"redis://127.0.0.1:{rport}"
        ctx.produce(first)
        w = ctx.worker("r", LEADPULSE_REDIS_URL=url, LEADPULSE_LOG_FORMAT="json")
        lpit.wait_until(lambda: get(w.port, "/readyz")[0] == 200, 60, "/readyz 200")
        checks.check(True, "ready with Redis up: " + get(w.port, "/readyz")[1].strip())
        redis.kill()
        redis.wait()
        producer = ctx.produce_async(rest)
        seen = watch(w.port, 8)
        probe_checks(checks, "Redis down", seen, want_ready_fail="redis")
        listen = f"127.0.0.1:{w.port}"
        live = subprocess.run([ctx.env.bin, "health", "--listen", listen], capture_output=True)
        ready = subprocess.run([ctx.env.bin, "health", "--ready", "--listen", listen],
                               capture_output=True, text=True)
        checks.check(live.returncode == 0 and ready.returncode == 1 and "redis" in ready.stderr,
                     f"leadpulse health: {live.returncode} (live), --ready {ready.returncode} "
                     f"({ready.stderr.strip()})")
        code, text, _ = get(w.port, "/metrics")
        checks.check(code == 200 and "leadpulse_store_errors_total" in text,
                     f"/metrics answers during the Redis outage ({code})")
        redis = start_redis(rport, ctx.dir)
        producer.wait(120)
        lpit.wait_until(lambda: get(w.port, "/readyz")[0] == 200, 60, "/readyz 200 again")
        checks.check(True, "ready again once Redis is back")

        # log.format json: every line one object with ts, level, component, msg
        logs = [l for l in w.log_text().splitlines() if l.strip()]
        parsed = []
        for l in logs:
            try:
                parsed.append(json.loads(l))
            except ValueError:
                parsed.append(None)
        good = [p for p in parsed if p and {"ts", "level", "component", "msg"} <= set(p)]
        with_part = [p for p in good if "partition" in p]
        checks.check(logs and len(good) == len(logs) and with_part,
                     f"log.format json: {len(good)} of {len(logs)} lines are JSON objects with ts, "
                     f"level, component, msg; {len(with_part)} carry a partition")
        # Logged once its batch is committed (a batch retried through the outage logs it once).
        def dead_lines():
            found = []
            for line in w.log_text().splitlines():
                try:
                    p = json.loads(line)
                except ValueError:
                    continue
                if "dead-lettered" in p.get("msg", ""):
                    found.append(p)
            return found
        try:
            dead = lpit.wait_until(dead_lines, 30, "the dead letter's log line")
        except TimeoutError:
            dead = []
        checks.check(len(dead) == 1 and dead[0]["level"] == "warn" and
                     dead[0].get("topic") == ctx.topics["engagement"] and
                     isinstance(dead[0].get("offset"), int) and "partition" in dead[0] and
                     "unknown activity type" in dead[0]["msg"],
                     f"log.format json: the dead letter's line carries topic, partition and "
                     f"offset: {dead}")

        # 3. /leads (this worker: off by default)
        code, _, _ = get(w.port, "/leads/" + json.loads(lines[0])["lead_id"])
        checks.check(code == 404, f"/leads off by default: {code}")
        w.stop()
        lead = json.loads(lines[0])["lead_id"]
        w2 = ctx.worker("l", LEADPULSE_REDIS_URL=url, LEADPULSE_HTTP_LEADS="on",
                        LEADPULSE_HTTP_TOKEN="s3cret")
        lpit.wait_until(lambda: get(w2.port, "/readyz")[0] == 200, 60, "/readyz 200")
        lpit.wait_until(lambda: get(w2.port, "/leads/" + lead, "s3cret")[0] == 200, 60,
                        "the lead is stored")
        no_tok = get(w2.port, "/leads/" + lead)[0]
        bad_tok = get(w2.port, "/leads/" + lead, "wrong")[0]
        code, body, _ = get(w2.port, "/leads/" + lead, "s3cret")
        unknown = get(w2.port, "/leads/no-such-lead", "s3cret")[0]
        checks.check(no_tok == 401 and bad_tok == 401 and code == 200 and lead in body
                     and unknown == 404,
                     f"/leads with a token: none {no_tok}, wrong {bad_tok}, right {code}, "
                     f"unknown {unknown}")
        w2.stop()

        # 2. Kafka outage: a private broker
        env = dict(os.environ, LP_STACK_DIR=stack_dir, LP_PARTITIONS="3")
        r = subprocess.run([os.path.join(ctx.env.src, "deploy", "local", "stack"), "up"],
                           env=env, capture_output=True, text=True, timeout=180)
        stack_up = r.returncode == 0
        brokers = [l.split("=", 1)[1].strip("'\"") for l in r.stdout.splitlines()
                   if "LP_KAFKA_BROKERS=" in l]
        checks.check(stack_up and brokers, f"private Kafka up: {brokers}")
        if stack_up and brokers:
            lpit.create_topics(brokers[0], {ctx.topics[k]: 3 for k in ctx.topics})
            bw = ctx.worker("k", LEADPULSE_KAFKA_BROKERS=brokers[0], LEADPULSE_REDIS_URL=url)
            lpit.wait_until(lambda: get(bw.port, "/readyz")[0] == 200, 90, "/readyz 200")
            subprocess.run([os.path.join(ctx.env.src, "deploy", "local", "stack"), "down",
                            "--kill"], env=env, capture_output=True, timeout=120)
            stack_up = False
            seen = watch(bw.port, 6)
            probe_checks(checks, "Kafka down", seen)
            bw.kill()
    except Exception as e:  # noqa: BLE001 - a failed step is a failed check, with its reason
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        if stack_up:
            subprocess.run([os.path.join(ctx.env.src, "deploy", "local", "stack"), "down",
                            "--kill"], env=dict(os.environ, LP_STACK_DIR=stack_dir),
                           capture_output=True, timeout=120)
        if redis is not None and redis.poll() is None:
            redis.kill()
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    if shutil.which("redis-server") is None:
        print("redis-server not installed")
        sys.exit(77)
    main()
