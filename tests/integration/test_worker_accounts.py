#!/usr/bin/env python3
"""Issue 18: account-level qualification through the worker (both stages, docs/architecture.md
"Accounts: the second stage"), disrupted, against `replay --partitions N`.

A stream of 600 leads working for 40 companies (scripts/gen_events.py --accounts: profiles
name their account by email domain, some by account_id, and some move from one to the other
later) is produced at 3,000 events/s into 3 partitions while two workers apply it with the rules
of config/rules.yaml plus its `accounts` example; one worker is SIGKILLed mid-stream (its lead
and account partitions, with their uncommitted work and undelivered outboxes, move to the other)
and a new one joins. Then one worker with its clock at T settles the rest, and:
- the distinct hand-offs on the output topics, lead AND account hand-offs (AccountQualified on
  topics.mqa, AccountStale on topics.account_stale), equal `replay --partitions 3 --until T`'s;
- there are account qualifications to compare (the generator makes committees qualify);
- every lead's state equals replay's.
"""
import json
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpit  # noqa: E402


def main():
    # With the stack's Schema Registry (when it has one): the workers register AccountQualified and
    # AccountStale under their topics' subjects, and the consumer reads them by the ids it gives.
    registry = os.environ.get("LP_SCHEMA_REGISTRY_URL", "")
    ctx = lpit.Ctx("accounts", partitions=3, accounts=True,
                   extra_env={"LEADPULSE_SCHEMA_REGISTRY_URL": registry} if registry else None)
    checks = lpit.Checks("test_worker_accounts")
    try:
        lpit.accounts_rules(ctx)
        sc = lpit.Scenario(ctx, seed=41, leads=600, events=9000, rate=3000)
        ref_acc = [h for h in sc.ref if h.get("kind", "").startswith("account_")]
        ref_mqa = [h for h in ref_acc if h["kind"] == "account_qualified"]
        lpit.log(f"reference: {len(ref_mqa)} AccountQualified, "
                 f"{len(ref_acc) - len(ref_mqa)} AccountStale")
        checks.check(len(ref_mqa) >= 5,
                     f"the stream makes accounts qualify in replay ({len(ref_mqa)} MQAs)")
        total = sum(1 for line in open(sc.path) if line.strip())
        sc.start_stream()
        small = {"LEADPULSE_BATCH_MAX_EVENTS": 200, "LEADPULSE_OUTBOX_BATCH": 50}
        a = sc.worker("a0", **small)
        b = sc.worker("b0", **small)
        sc.wait_applied_at_least(int(total * 0.4))
        a.signal(9)
        a.proc.wait()
        lpit.log(f"SIGKILL of a0 with {sc.applied()} of {total} records applied")
        sc.wait_applied_at_least(int(total * 0.6))
        sc.worker("a1", **small)
        sc.finish_stream()
        sc.wait_applied_at_least(total, timeout=120)
        got = sc.settle_and_compare(checks, "two workers, one SIGKILLed")
        got_acc = {lpit.handoff_key(h) for h in got
                   if (h.get("type") or "").startswith("Account")}
        ref_keys = {lpit.handoff_key(h) for h in ref_acc}
        checks.check(got_acc == ref_keys and len(ref_keys) > 0,
                     f"account hand-offs equal replay's: worker {len(got_acc)}, replay "
                     f"{len(ref_keys)}, missing {len(ref_keys - got_acc)}, unexpected "
                     f"{len(got_acc - ref_keys)}")
        for k in sorted(ref_keys - got_acc)[:3]:
            lpit.log(f"    missing {k}")
        for k in sorted(got_acc - ref_keys)[:3]:
            lpit.log(f"    unexpected {k}")
        if registry:
            want = {}
            for k, name in (("mqa", "AccountQualified"), ("account_stale", "AccountStale")):
                subject = f"{ctx.topics[k]}-value"
                with urllib.request.urlopen(f"{registry}/subjects/{subject}/versions/latest",
                                            timeout=10) as r:
                    want[name] = json.loads(r.read())["id"]
            seen = {(h["type"], h.get("schema_id")) for h in got
                    if (h.get("type") or "").startswith("Account")}
            checks.check(seen and all(want.get(t) == i for t, i in seen),
                         f"account hand-offs framed with the ids their subjects have in the "
                         f"registry ({want}; seen {sorted(seen)})")
        # `leadpulse inspect`: the accounts in Redis are replay's accounts with members, and an
        # account that qualified shows its qualification count and members.
        listed = ctx.inspect_accounts()
        m = [re.search(r"(\d+) accounts with members", l) for l in sc.ref_err]
        want_n = next((int(x.group(1)) for x in m if x), None)
        last_q = {}
        for h in ref_mqa:
            last_q[h["account"]] = max(last_q.get(h["account"], 0), h["qualification"])
        key = sorted(last_q)[0] if last_q else None
        one = ctx.inspect_accounts(key) if key else None
        checks.check(want_n is not None and len(listed) == want_n
                     and len({a["account"] for a in listed}) == want_n
                     and one is not None and one["account"] == key
                     and one["qualification"] >= last_q[key] and one["members_total"] > 0
                     and len(one["members"]) == one["members_total"]
                     and abs(one["score"] - sum(min(mm["score"], 60) for mm in one["members"])
                             - sum({"decision_maker": 20, "approver": 15, "influencer": 10}
                                   .get(r, 0) for r in one["roles_covered"])) < 1e-6,
                     f"inspect --accounts lists {len(listed)} accounts (replay: {want_n} with "
                     f"members); inspect --account {key}: qualification "
                     f"{one and one['qualification']} (replay's last {last_q.get(key)}), "
                     f"{one and one['members_total']} members, score = the sum of its members' "
                     "capped scores and role points")
        keys = ctx.redis.command("KEYS", f"{ctx.prefix}:{{a*}}:*") or []
        checks.check(len(keys) > 0,
                     f"account partitions live under their own hash tag {{a<q>}} ({len(keys)} keys)")
    except Exception as e:  # noqa: BLE001
        checks.check(False, f"{type(e).__name__}: {e}")
        for w in ctx.workers:
            lpit.log(f"--- worker {w.name} log tail ---\n{w.tail()}")
    finally:
        ctx.cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
