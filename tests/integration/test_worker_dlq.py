#!/usr/bin/env python3
"""Issue 4b: bad input records land in the dead-letter topic, and the stream goes on.

Raw records are written with kcat (one file = one record, same partitioner as the producers):
garbage bytes, a truncated Avro record, a record with an unknown schema id, a record whose key is
not its lead_id, a profile record on the engagement topic; `leadpulse produce` adds an event with
an unknown activity type. Each must appear on the DLQ with headers reason / source_topic /
source_partition / source_offset and the original bytes; the good events written after them (same
keys, so same partitions) must be applied: the lead's state is there and it qualifies.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def kcat_put(ctx, topic, key, value):
    path = os.path.join(ctx.dir, f"rec-{key}-{len(value)}-{value[:2].hex()}")
    with open(path, "wb") as f:
        f.write(value)
    subprocess.run(["kcat", "-P", "-b", ctx.env.brokers, "-t", topic, "-k", key, path],
                   check=True, timeout=30, capture_output=True)


def main():
    ctx = lpit.Ctx("dlq", partitions=2)
    checks = lpit.Checks("test_worker_dlq")
    try:
        eng, prof = ctx.topics["engagement"], ctx.topics["profiles"]
        w = ctx.worker("a")
        w.wait_owns(2)
        # Valid records to damage: produced by leadpulse itself, read back undecoded.
        t = lpit.now_ms()
        ctx.produce(ctx.write_lines("template.jsonl", [
            {"kind": "engagement", "event_id": "tpl-1", "lead_id": "tpl", "ts": t,
             "type": "web_visit", "url": "/blog"},
            {"kind": "profile", "event_id": "tpl-2", "lead_id": "tpl", "ts": t,
             "title": "Analyst"}]))
        raw = lpit.wait_until(lambda: (lambda r: r if len(r) == 2 else None)(
            ctx.consume(("engagement", "profiles"), raw=True, idle_ms=800)), 30, "templates")
        good = bytes.fromhex(next(r for r in raw if r["topic"] == eng)["value_hex"])
        profile = bytes.fromhex(next(r for r in raw if r["topic"] == prof)["value_hex"])

        bad = {  # key -> (bytes, what the reason must mention)
            "lead-garbage": (b"\x07\x08 not avro at all \xff\xfe", "framing"),
            "tpl": (good[:len(good) // 2], "truncated"),
            "lead-schema": (good[:1] + (99).to_bytes(4, "big") + good[5:], "schema id 99"),
            "lead-other": (good, "key does not match"),
            "lead-kind": (profile[:], "profile event"),
        }
        for key, (value, _) in bad.items():
            kcat_put(ctx, eng, key, value)
        ctx.produce(ctx.write_lines("unknown.jsonl", [
            {"kind": "engagement", "event_id": "unk-1", "lead_id": "lead-unknown", "ts": t,
             "type": "teleport"}]), "--now")
        # The next good events, on the same keys (same partitions), after the bad ones.
        follow = []
        for lead in ("lead-garbage", "lead-schema", "lead-other", "lead-unknown"):
            follow.append({"kind": "profile", "event_id": f"{lead}-p", "lead_id": lead, "ts": t,
                           "email": f"{lead}@acme-corp.io", "title": "VP Engineering",
                           "seniority": "vp", "industry": "software", "company_size": 1000,
                           "region": "emea"})
            follow += [{"kind": "engagement", "event_id": f"{lead}-e{i}", "lead_id": lead,
                        "ts": t, "type": typ}
                       # 115 points: with --now the events are ms apart and decay a little,
                       # so exactly 100 (the threshold) could fall short by a hair.
                       for i, typ in enumerate(["demo_request", "form_fill", "form_fill",
                                                "form_fill", "webinar_attended"])]
        ctx.produce(ctx.write_lines("follow.jsonl", follow), "--now")

        dlq = lpit.wait_until(lambda: (lambda r: r if len(r) >= 6 else None)(
            ctx.consume(("dlq",), raw=True, idle_ms=800)), 60, "6 dead letters")
        inputs = ctx.consume(("engagement",), raw=True, idle_ms=800)
        checks.check(len(dlq) == 6, f"dead letters: {len(dlq)} (expected 6)")
        for key, (value, must) in list(bad.items()) + [("lead-unknown", (None, "unknown activity type"))]:
            cands = [d for d in dlq if d["key"] == key and
                     (value is None or d["value_hex"] == value.hex())]
            if not checks.check(len(cands) == 1, f"{key}: one dead letter with the original "
                                                 f"bytes ({len(cands)} found)"):
                continue
            d = cands[0]
            h = d["headers"]
            src = [r for r in inputs if r["value_hex"] == d["value_hex"] and r["key"] == key]
            where = (src[0]["partition"], src[0]["offset"]) if len(src) == 1 else None
            checks.check(h.get("source_topic") == eng and where is not None
                         and h.get("source_partition") == str(where[0])
                         and h.get("source_offset") == str(where[1])
                         and (must is None or must in h.get("reason", "")),
                         f"{key}: reason '{h.get('reason')}', source {h.get('source_topic')}"
                         f"[{h.get('source_partition')}]@{h.get('source_offset')} "
                         f"(record was at {where})")

        want = {"lead-garbage", "lead-schema", "lead-other", "lead-unknown"}
        try:
            mql = lpit.wait_until(lambda: (lambda q: q if want <= {h["lead_id"] for h in q}
                                           else None)(ctx.consume(("mql",), idle_ms=800)),
                                  60, "the follow-up leads to qualify")
        except TimeoutError:
            # What the worker did with them, for the report.
            lpit.log(f"  metrics: {w.metrics()}")
            lpit.log(f"  MQLs seen: {sorted(h['lead_id'] for h in ctx.consume(('mql',)))}")
            st = ctx.inspect_all()
            for lead in sorted(want):
                lpit.log(f"  state {lead}: {st.get(lead)}")
            lpit.log(f"  stored offsets: {ctx.stored_offsets()}")
            raise
        checks.check(want <= {h["lead_id"] for h in mql},
                     f"the good events after the dead letters were applied: MQLs for "
                     f"{sorted(h['lead_id'] for h in mql)}")
        state = ctx.inspect_all()
        stages = {lead: state.get(lead, {}).get("stage") for lead in sorted(want)}
        checks.check(all(s == "mql" for s in stages.values()) and "tpl" in state,
                     f"state in Redis: stages {stages}; template lead stored: {'tpl' in state}")
        m = w.metrics() or {}
        checks.check(m.get("leadpulse_dead_letters_total") == 6,
                     f"metric leadpulse_dead_letters_total = {m.get('leadpulse_dead_letters_total')}")
        checks.check(w.stop() == 0, "SIGTERM: clean exit")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
