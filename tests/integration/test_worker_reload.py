#!/usr/bin/env python3
"""Rules reloads reach a running worker: by watching the file (rules.check_ms) and by SIGHUP.

The rules file sits where a Kubernetes ConfigMap mounted as a directory puts it: `rules.yaml` is a
symlink to `..data/rules.yaml`, and `..data` a symlink to a timestamped folder that an update
replaces atomically. Checked, on /metrics and on the hand-offs:
1. an in-place edit of the file is reloaded within a few check periods; a lead that qualifies only
   under the new model gets a LeadQualified carrying the new model_version;
2. a ConfigMap-style swap of `..data` is reloaded;
3. a broken file is refused (reloads_total{result="failed"}), the running rules stay and the worker
   keeps applying events;
4. SIGHUP reloads too.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def rules_text(src, version, mql):
    text = open(src).read()
    text = re.sub(r'version: "[^"]*"', f'version: "{version}"', text, count=1)
    text = re.sub(r"(?m)^(  mql: )\d+", rf"\g<1>{mql}", text, count=1)
    text = re.sub(r"(?m)^(  rearm: )\d+", r"\g<1>30", text, count=1)
    text = re.sub(r"(?m)^(  warm: )\d+", r"\g<1>20", text, count=1)
    return re.sub(r"(?m)^(  min_fit_grade: )\w", r"\g<1>D", text, count=1)


def model(w):
    text = w.metrics_text() or ""
    m = re.search(r'leadpulse_rules_info\{model="([^"]*)"\} 1', text)
    return m.group(1) if m else None


def reloads(w, result):
    return (w.metrics() or {}).get(f'leadpulse_rules_reloads_total{{result="{result}"}}', 0)


def main():
    src = lpit.Env().src
    base_rules = os.path.join(src, "config", "rules.yaml")
    ctx = None
    checks = lpit.Checks("test_worker_reload")
    try:
        # A ConfigMap-like folder: rules.yaml -> ..data/rules.yaml, ..data -> ..2026_v1
        ctx = lpit.Ctx("reload", partitions=2)
        cm = os.path.join(ctx.dir, "configmap")
        os.makedirs(os.path.join(cm, "..v1"))
        with open(os.path.join(cm, "..v1", "rules.yaml"), "w") as f:
            f.write(rules_text(base_rules, "r1", 100))
        os.symlink("..v1", os.path.join(cm, "..data"))
        os.symlink("..data/rules.yaml", os.path.join(cm, "rules.yaml"))
        ctx.rules = os.path.join(cm, "rules.yaml")

        w = ctx.worker("w", LEADPULSE_RULES_CHECK_MS=300)
        w.wait_owns(2)
        checks.check(model(w) == "b2b-default/r1", f"started with model {model(w)}")

        # 1. in-place edit (through the symlinks): mql 100 -> 70, version r2
        with open(os.path.join(cm, "..v1", "rules.yaml"), "w") as f:
            f.write(rules_text(base_rules, "r2", 70))
        t0 = time.monotonic()
        lpit.wait_until(lambda: model(w) == "b2b-default/r2", 10, "model r2 in use")
        checks.check(reloads(w, "ok") == 1,
                     f"in-place edit reloaded in {time.monotonic() - t0:.1f} s "
                     f"(reloads ok {reloads(w, 'ok')})")
        now = lpit.now_ms()
        lead = "lead-reload-1"
        events = [{"kind": "engagement", "event_id": f"eng-reload-{i}", "lead_id": lead,
                   "ts": now - 60000 + i * 1000, "type": "demo_request"} for i in range(2)]
        ctx.produce(ctx.write_lines("two-demos.jsonl", events))

        def qualified():
            got = [h for h in ctx.consume(("mql",)) if h.get("lead_id") == lead]
            return got or None
        got = lpit.wait_until(qualified, 60, "a LeadQualified for the lead")
        checks.check(len(got) == 1 and got[0].get("model_version") == "r2",
                     f"80 points qualify under the reloaded model (mql 70): "
                     f"{[(h.get('type'), h.get('model_version')) for h in got]}")

        # 2. ConfigMap update: a new folder, then ..data swapped atomically (rename over it)
        os.makedirs(os.path.join(cm, "..v2"))
        with open(os.path.join(cm, "..v2", "rules.yaml"), "w") as f:
            f.write(rules_text(base_rules, "r3", 70))
        os.symlink("..v2", os.path.join(cm, "..data_tmp"))
        os.rename(os.path.join(cm, "..data_tmp"), os.path.join(cm, "..data"))
        t0 = time.monotonic()
        lpit.wait_until(lambda: model(w) == "b2b-default/r3", 10, "model r3 in use")
        checks.check(reloads(w, "ok") == 2,
                     f"ConfigMap-style symlink swap reloaded in {time.monotonic() - t0:.1f} s")

        # 3. a broken file: refused, the running rules stay, events still applied
        with open(os.path.join(cm, "..v2", "rules.yaml"), "a") as f:
            f.write("\nscore: [this is not a mapping\n")
        lpit.wait_until(lambda: reloads(w, "failed") >= 1, 10, "a failed reload")
        m = w.metrics() or {}
        checks.check(model(w) == "b2b-default/r3" and
                     m.get("leadpulse_rules_last_reload_success") == 0,
                     f"broken file refused: model {model(w)}, last_reload_success "
                     f"{m.get('leadpulse_rules_last_reload_success')}")
        checks.check("rules reload failed" in w.log_text(),
                     "the refusal is logged with the file's error")
        before = w.metric("leadpulse_events_applied_total", 0)
        ctx.produce(ctx.write_lines("more.jsonl", [
            {"kind": "engagement", "event_id": "eng-reload-9", "lead_id": "lead-reload-2",
             "ts": now, "type": "form_fill"}]))
        lpit.wait_until(lambda: w.metric("leadpulse_events_applied_total", 0) > before, 30,
                        "the next event applied")
        checks.check(True, "the worker keeps applying events under the running rules")

        # 4. SIGHUP (file fixed first)
        with open(os.path.join(cm, "..v2", "rules.yaml"), "w") as f:
            f.write(rules_text(base_rules, "r4", 70))
        w.signal(signal.SIGHUP)
        lpit.wait_until(lambda: model(w) == "b2b-default/r4", 10, "model r4 in use")
        checks.check(reloads(w, "ok") >= 3, f"SIGHUP (and the file watch) reloaded: "
                     f"ok {reloads(w, 'ok')}, failed {reloads(w, 'failed')}")
        rc = w.stop()
        checks.check(rc == 0, f"SIGTERM exit status {rc}")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for wk in (ctx.workers if ctx else []):
            lpit.log(f"--- worker {wk.name} log tail ---\n{wk.tail()}")
    finally:
        if ctx is not None:
            ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
