#!/usr/bin/env python3
"""Generate a realistic leadpulse input stream as JSON lines, sorted by event time.

The output is the JSON input format of `leadpulse replay` (see include/leadpulse/codec.h): one
object per line with "kind" (engagement | profile | feedback), "event_id", "lead_id", "ts" (ms
since the epoch) and the fields of the Avro schemas in schemas/.

Activity is Zipf-distributed over the leads: the lead of rank r gets a share of the events
proportional to 1/r^s. Each lead follows a persona chosen from its share:

  hot          researches, then shows buying intent (pricing pages, webinars, form fills, demo
               requests) and qualifies; sales then accepts it in time, accepts it late, rejects it
               with a reason, recycles it (the lead comes back weeks later and qualifies again), or
               never answers; accepted leads may later be won or lost
  browser      reads blog posts and emails for months and stays warm, never hot enough for an MQL
  disqualified acts like a buyer but is a competitor, a test address or a student
  unsubscriber engages a little, then unsubscribes
  bouncer      hard-bouncing address
  scanner      a mail gateway that opens and clicks every email within seconds (machine activity:
               half of it flagged by the producer, half only recognisable by the timing)
  cold         one or two touches

About 85% of the leads get an initial profile (CRM/enrichment) with their first touch, about 10%
a later title change; ~1% of the events are sent twice (same event_id: a producer retry) and
~4% of email opens and clicks come from privacy proxies or link prefetchers (flagged "machine").

The generator knows the default scoring model roughly (points, caps, 30-day half-life, MQL at
100): it uses it only to send sales feedback after a lead would plausibly have qualified. The
stream is a pure function of the options and --seed. Memory grows with --leads, not --events: the
events are produced in time order from a heap of per-lead "next event" times.
"""

import argparse
import calendar
import collections
import heapq
import math
import random
import sys
import time

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# Rough copy of the default model, only for timing sales feedback (see module docstring).
APPROX_POINTS = {
    "email_open": 1, "email_click": 3, "web_visit": 1, "pricing_visit": 10,
    "content_download": 8, "webinar_registered": 5, "webinar_attended": 15, "form_fill": 20,
    "demo_request": 40, "qr_scan": 5, "unsubscribe": -20, "email_bounce": -15,
}
APPROX_HALF_LIFE_MS = 30 * DAY_MS
APPROX_MQL = 100.0
OPEN_CAP_PER_DAY = 3

FIRST = ["anna", "ben", "carla", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jonas",
         "kofi", "lena", "marco", "nadia", "oscar", "priya", "quinn", "rosa", "sven", "tara",
         "umar", "vera", "wei", "ximena", "yusuf", "zoe"]
LAST = ["adams", "berg", "costa", "dubois", "eriksen", "fischer", "garcia", "haddad", "ito",
        "jensen", "kowalski", "lopez", "moreau", "novak", "okafor", "petrov", "rossi", "silva",
        "tanaka", "urban", "vogel", "weber", "xu", "young", "zimmer"]
CO_A = ["north", "blue", "bright", "iron", "clear", "swift", "green", "silver", "prime", "bold",
        "true", "deep", "red", "open", "high"]
CO_B = ["field", "stone", "wave", "peak", "bridge", "line", "works", "logic", "path", "harbor",
        "grid", "forge", "leaf", "point", "river"]
CO_SUFFIX = ["Systems", "Labs", "Analytics", "Health", "Logistics", "Bank", "Retail", "Energy",
             "Software", "Manufacturing"]
INDUSTRIES = ["software", "financial_services", "healthcare", "manufacturing", "retail",
              "logistics", "energy", "education", "government", "media"]
GOOD_INDUSTRIES = ["software", "financial_services", "healthcare", "manufacturing"]
SENIORITY_TITLES = {
    "c_level": ["CTO", "CIO", "Chief Information Security Officer", "COO"],
    "vp": ["VP Engineering", "VP IT", "VP Marketing Operations", "VP Security"],
    "director": ["Director of IT", "Director of Engineering", "Head of Platform",
                 "Director, Data Engineering"],
    "manager": ["IT Manager", "Engineering Manager", "Security Operations Manager",
                "Marketing Operations Manager"],
    "individual": ["Software Engineer", "Systems Administrator", "Data Analyst",
                   "DevOps Engineer", "Marketing Specialist"],
}
PROMOTION = {"individual": "manager", "manager": "director", "director": "vp", "vp": "c_level",
             "c_level": "c_level"}
REGIONS = {"emea": ["DE", "FR", "GB", "NL", "SE", "ES"], "na": ["US", "CA"],
           "latam": ["BR", "MX", "AR"], "apac": ["JP", "AU", "SG", "IN"]}
PERSONA_NAMES = ["it_buyer", "developer", "security_lead", "executive", "marketing_ops"]
# Match the disqualify rules of config/rules.yaml: competitor domains, RFC 2606 test addresses.
COMPETITOR_DOMAINS = ["rivalsoft.com", "competitor.io"]
OWNERS = ["ae-%02d@sales.leadpulse.example" % i for i in range(1, 13)]
CAMPAIGNS = ["cmp-newsletter", "cmp-product-launch", "cmp-webinar-invite", "cmp-nurture-security",
             "cmp-nurture-data", "cmp-event-followup", "cmp-customer-story"]
BLOG = ["/blog/zero-trust-basics", "/blog/streaming-101", "/blog/kafka-vs-queues",
        "/blog/lead-scoring-myths", "/docs/getting-started", "/docs/api", "/product/overview",
        "/product/integrations", "/customers/northwave", "/about"]
PRICING = ["/pricing", "/pricing/enterprise", "/pricing/compare"]
ASSETS = ["wp-zero-trust", "wp-streaming-economics", "ebook-data-platform", "report-analyst-2026",
          "checklist-migration"]
WEBINARS = ["webinar-platform-tour", "webinar-security-roundtable", "webinar-customer-panel"]
REJECT_REASONS = ["no_budget", "not_decision_maker", "bad_data", "competitor", "timing", "other"]

KINDS = ("engagement", "profile", "feedback")


class Lead:
    """Per-lead generator state (only while the lead has events left)."""

    __slots__ = ("idx", "lid", "persona", "budget", "mode", "t_end", "gap", "journey_start",
                 "journey_ms", "score", "ref", "open_day", "opens", "fit_ok",
                 "quals", "email", "seniority", "dq", "title_change_at", "pending",
                 "fb_scheduled", "act_scheduled", "sleep_until", "account")

    def __init__(self, idx, lid):
        self.idx = idx
        self.lid = lid
        self.score = 0.0
        self.ref = 0
        self.open_day = -1
        self.opens = 0
        self.quals = 0
        self.pending = 0
        self.title_change_at = 0
        self.dq = None
        self.fb_scheduled = 0
        self.act_scheduled = False
        self.sleep_until = 0
        self.account = None


def parse_start(text):
    if text.isdigit():
        return int(text)
    return calendar.timegm(time.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S")) * 1000


class Generator:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.heap = []
        self.seq = 0          # heap tie-breaker: equal times keep scheduling order
        self.ev_counter = 0
        self.out_kinds = set(args.kinds)
        self.emitted = 0
        self.buf = []
        self.out = None
        self.end_ms = args.start_ms + args.days * DAY_MS
        self.width = max(6, len(str(args.leads)))
        self.bad_left = args.bad_lines
        self.bad_every = max(1, args.events // (args.bad_lines + 1)) if args.bad_lines else 0
        self.stats = collections.defaultdict(int)
        self.last_lid = "lead-%0*d" % (self.width, 1)
        self.last_ts = args.start_ms

    # ---- helpers ---------------------------------------------------------------------------
    def push(self, t, lead, action, payload=None):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, lead, action, payload))

    def next_id(self, prefix):
        self.ev_counter += 1
        return "%s-%09d" % (prefix, self.ev_counter)

    def write(self, kind, line):
        self.emitted += 1
        if kind in self.out_kinds:
            self.buf.append(line)
            if self.bad_every and self.bad_left and self.emitted % self.bad_every == 0:
                self.buf.append(self.bad_line())
                self.bad_left -= 1
            if len(self.buf) >= 8192:
                self.flush()

    def flush(self):
        if self.buf:
            self.out.write("\n".join(self.buf))
            self.out.write("\n")
            self.buf.clear()

    def bad_line(self):
        """A line a broken producer might send; replay must report it with its line number."""
        n = self.args_bad_variant = getattr(self, "args_bad_variant", -1) + 1
        lid = self.last_lid  # a lead of the stream, so the bad lines add no lead of their own
        ts = self.last_ts
        variants = [
            '{"kind":"engagement","event_id":"bad-%d","lead_id":"%s","ts":%d' % (n, lid, ts),
            '{"kind":"engagement","event_id":"bad-%d","ts":%d,"type":"web_visit"}' % (n, ts),
            '{"kind":"engagement","event_id":"bad-%d","lead_id":"%s","ts":%d,'
            '"type":"fax_received"}' % (n, lid, ts),
        ]
        return variants[n % len(variants)]

    def count(self, key):
        self.stats[key] += 1

    # ---- budgets and personas --------------------------------------------------------------
    def budgets(self):
        a = self.a
        weights = [1.0 / math.pow(r, a.zipf) for r in range(1, a.leads + 1)]
        total = sum(weights)
        shares = [a.events * w / total for w in weights]
        budget = [int(s) for s in shares]
        rest = a.events - sum(budget)
        # Randomised rounding keeps the total exact without favouring the top ranks.
        frac = [(s - int(s), r) for r, s in enumerate(shares)]
        picks = self.rng.choices(range(a.leads), weights=[f for f, _ in frac], k=rest) \
            if rest > 0 and any(f > 0 for f, _ in frac) else []
        for r in picks:
            budget[r] += 1
        rest = a.events - sum(budget)
        for r in range(rest):
            budget[r % a.leads] += 1
        return budget

    def pick_persona(self, b):
        r = self.rng.random()
        if b <= 1:
            return "cold" if r < 0.75 else "bouncer"
        if b == 2:
            return "cold" if r < 0.6 else ("bouncer" if r < 0.8 else "unsubscriber")
        if b < 9:
            table = [("browser", 0.50), ("unsubscriber", 0.15), ("scanner", 0.05),
                     ("disqualified", 0.15), ("bouncer", 0.05), ("cold", 0.10)]
        elif b <= 200:
            table = [("hot", 0.50), ("browser", 0.24), ("disqualified", 0.11),
                     ("scanner", 0.06), ("unsubscriber", 0.09)]
        else:
            table = [("browser", 0.6), ("hot", 0.3), ("scanner", 0.1)]
        for name, p in table:
            if r < p:
                return name
            r -= p
        return table[-1][0]

    # ---- profiles --------------------------------------------------------------------------
    def make_profile(self, lead):
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        account = None
        if self.a.accounts > 0:
            # --accounts N: every lead works for one of N companies, so that buying committees
            # form (account-level qualification, docs/rules.md "accounts").
            k = rng.randrange(self.a.accounts)
            company = "%s%s %s" % (CO_A[k % len(CO_A)].capitalize(),
                                   CO_B[(k // len(CO_A)) % len(CO_B)], CO_SUFFIX[k % len(CO_SUFFIX)])
            account = "ACC-%04d" % k
            lead.account = account
        else:
            company = "%s%s %s" % (rng.choice(CO_A).capitalize(), rng.choice(CO_B),
                                   rng.choice(CO_SUFFIX))
        # Real-looking companies live under the reserved TLD .example, which the default model
        # does not treat as a test address (it disqualifies example.com/.net/.org and .test).
        domain = company.split()[0].lower() + ".example"
        if lead.persona == "hot" or (lead.persona == "disqualified" and lead.dq != "student"):
            seniority = rng.choice(["c_level", "vp", "director", "director", "manager"])
            industry = rng.choice(GOOD_INDUSTRIES)
            size = rng.choice([250, 400, 800, 1200, 2500, 5000, 12000])
        else:
            seniority = rng.choice(list(SENIORITY_TITLES))
            industry = rng.choice(INDUSTRIES)
            size = rng.choice([5, 20, 60, 150, 400, 1500, 8000])
        title = rng.choice(SENIORITY_TITLES[seniority])
        email = "%s.%s@%s" % (first, last, domain)
        if lead.dq == "competitor":
            email = "%s.%s@%s" % (first, last, rng.choice(COMPETITOR_DOMAINS))
            company = "Rivalsoft" if "rivalsoft" in email else "Competitor IO"
        elif lead.dq == "test":
            email = rng.choice(["test.%s@example.com", "qa+%s@example.com",
                                "%s.test@example.com"]) % lead.lid.split("-")[1]
            company = "Test Account"
        elif lead.dq == "student":
            title = rng.choice(["Student", "PhD Student", "Graduate Student"])
            seniority = "individual"
            industry = "education"
            size = 30000
            email = "%s.%s@student.state-university.example" % (first, last)
            company = "State University"
        region = rng.choice(list(REGIONS))
        lead.email = email
        lead.seniority = seniority
        extra = {}
        if account is not None and rng.random() < 0.3:
            extra["account_id"] = account  # the CRM names the account: id:<account>
        return {**extra,
            "email": email, "title": title, "seniority": seniority, "industry": industry,
            "company": company, "company_size": size, "country": rng.choice(REGIONS[region]),
            "region": region, "persona": rng.choice(PERSONA_NAMES),
            "segment": "enterprise" if size >= 2000 else ("mid_market" if size >= 200 else "smb"),
            "owner": rng.choice(OWNERS),
        }

    # ---- emitting --------------------------------------------------------------------------
    def emit(self, t, kind, lead, fields, dup_ok=True):
        eid = self.next_id({"engagement": "eng", "profile": "prof", "feedback": "fb"}[kind])
        parts = ['{"kind":"%s","event_id":"%s","lead_id":"%s","ts":%d' % (kind, eid, lead.lid, t)]
        # Every string comes from the tables above (no quotes or backslashes): no escaping needed.
        for k, v in fields:
            if v is None:
                continue
            tv = type(v)
            if tv is str:
                parts.append(f'"{k}":"{v}"')
            elif tv is bool:
                parts.append(f'"{k}":true' if v else f'"{k}":false')
            else:
                parts.append(f'"{k}":{v:d}')
        line = ",".join(parts) + "}"
        self.last_lid = lead.lid
        self.last_ts = t
        self.write(kind, line)
        lead.budget -= 1
        self.count(kind)
        # A producer retry re-sends the same bytes right after (same event_id and ts).
        if dup_ok and lead.budget > lead.pending and self.rng.random() < self.a.dup_rate:
            lead.budget -= 1
            self.write(kind, line)
            self.count("duplicate")

    def approx_apply(self, lead, t, name):
        """Tracks the lead's score with the rough default model (caps for opens)."""
        lead.score *= math.pow(2.0, -(t - lead.ref) / APPROX_HALF_LIFE_MS)
        lead.ref = t
        pts = APPROX_POINTS.get(name, 0)
        if name == "email_open":
            day = t // DAY_MS
            if day != lead.open_day:
                lead.open_day, lead.opens = day, 0
            lead.opens += 1
            if lead.opens > OPEN_CAP_PER_DAY:
                pts = 0
        lead.score = max(0.0, lead.score + pts)

    def engagement(self, lead, t, name, machine=False, fast=False):
        rng = self.rng
        url = asset = campaign = None
        since = None
        atype = name
        if name == "pricing_visit":
            atype, url = "web_visit", rng.choice(PRICING)
        elif name == "web_visit":
            url = rng.choice(BLOG)
        elif name in ("email_open", "email_click", "unsubscribe", "email_bounce"):
            campaign = rng.choice(CAMPAIGNS)
            if name == "email_bounce":
                since = rng.randint(1, 30)
            elif fast:
                since = rng.randint(0, 4)
            else:
                since = int(rng.expovariate(1.0 / 14400)) + 45
            if name == "email_click":
                url = rng.choice(BLOG + PRICING[:1])
        elif name == "content_download":
            asset, campaign = rng.choice(ASSETS), rng.choice(CAMPAIGNS + [None])
        elif name in ("webinar_registered", "webinar_attended"):
            asset = rng.choice(WEBINARS)
        elif name == "form_fill":
            url, asset = "/contact", None
        elif name == "demo_request":
            url = "/demo"
        elif name == "qr_scan":
            campaign = "cmp-event-followup"
        if not machine and name in ("email_open", "email_click") and rng.random() < 0.04:
            machine = True  # privacy-proxy open / link prefetch flagged by the ESP
        if not machine and not fast:
            self.approx_apply(lead, t, name)
        self.count("machine" if (machine or fast) else atype)
        self.emit(t, "engagement", lead, [("type", atype), ("url", url), ("asset_id", asset),
                                          ("campaign_id", campaign),
                                          ("machine", True if machine else None),
                                          ("seconds_since_send", since)])

    def profile(self, lead, t, initial):
        if initial:
            fields = self.make_profile(lead)
        else:
            lead.seniority = PROMOTION.get(lead.seniority, "manager")
            fields = {"title": self.rng.choice(SENIORITY_TITLES[lead.seniority]),
                      "seniority": lead.seniority}
            if self.a.accounts > 0 and lead.account and \
                    self.rng.random() < 0.3:
                # the CRM links the lead to its account later: it moves from domain:<domain>
                # to id:<account> (a leave and a join)
                fields["account_id"] = lead.account
        self.emit(t, "profile", lead, list(fields.items()))

    # ---- persona behaviour -----------------------------------------------------------------
    def choose_activity(self, lead, t):
        rng = self.rng
        p = lead.persona
        if p in ("hot", "disqualified") and lead.mode == "journey":
            progress = (t - lead.journey_start) / max(1, lead.journey_ms)
            if progress < 0.25:
                return rng.choice(["web_visit", "email_open", "email_click", "content_download",
                                   "webinar_registered", "web_visit", "qr_scan"])
            if lead.score > APPROX_MQL - 50 and rng.random() < 0.6:
                return "demo_request"
            return rng.choice(["pricing_visit", "webinar_attended", "form_fill", "pricing_visit",
                               "content_download", "email_click", "demo_request"])
        if p == "browser" or lead.mode == "after":
            name = rng.choice(["web_visit", "web_visit", "email_open", "email_open",
                               "email_click", "content_download", "webinar_registered"])
            if lead.score + APPROX_POINTS[name] > 0.8 * APPROX_MQL:
                return "proxy_open"  # too hot for a browser: a privacy-proxy open scores 0
            return name
        if p == "unsubscriber":
            if lead.mode == "unsubscribed":
                return "web_visit"
            if lead.budget <= 1 or rng.random() < 0.3:
                lead.mode = "unsubscribed"
                return "unsubscribe"
            return rng.choice(["email_open", "email_click", "web_visit"])
        if p == "bouncer":
            return "email_bounce"
        if p == "scanner":
            return rng.choice(["scan_open", "scan_click", "scan_click", "email_open"])
        return rng.choice(["email_open", "web_visit", "email_click"])

    def start_lead(self, lead, t0):
        rng = self.rng
        horizon = max(HOUR_MS, self.end_ms - t0)
        lead.mode = "browse"
        if lead.persona in ("hot", "disqualified"):
            lead.mode = "journey"
            lead.journey_ms = int(rng.uniform(4, 21) * DAY_MS)
            lead.journey_start = t0
            lead.gap = lead.journey_ms / 9.0
            if lead.persona == "disqualified":
                lead.dq = rng.choice(["competitor", "test", "student"])
        elif lead.persona == "cold":
            lead.gap = rng.uniform(1, 20) * DAY_MS
        else:
            lead.gap = max(60_000.0, rng.uniform(0.4, 1.0) * horizon / max(1, lead.budget))
        lead.fit_ok = lead.persona == "hot"
        if not self.a.no_feedback and lead.persona == "hot":
            lead.pending = 2  # reserved for sales feedback (verdict, then maybe won/lost)
        t = t0
        if rng.random() < 0.85 or lead.persona in ("hot", "disqualified"):
            self.profile(lead, t, True)
            t += rng.randint(1000, 600_000)
            if lead.budget > lead.pending + 2 and rng.random() < 0.12:
                lead.title_change_at = t + int(rng.uniform(0.2, 0.8) * horizon)
        self.cont(lead, t)

    def cont(self, lead, t):
        """Schedules the lead's next activity while it has events beyond those reserved for
        feedback. One activity chain per lead; feedback runs on its own schedule."""
        if lead.act_scheduled:
            return
        if lead.budget <= lead.pending and lead.fb_scheduled == 0:
            # Out of events before it qualified: the buyer loses interest, and the events kept
            # for feedback are spent on browsing.
            if lead.mode == "journey":
                self.after_journey(lead)
            lead.pending = 0
        if lead.budget <= lead.pending:
            return
        gap = lead.gap
        free = lead.budget - lead.pending
        start = max(t, lead.sleep_until)
        if start + free * gap > self.end_ms:
            # Keep the stream within the period: a lead with many events left speeds up.
            gap = max(15 * 60_000.0, min(gap, (self.end_ms - start) / free))
        at = start + max(1000, int(self.rng.expovariate(1.0 / gap)))
        lead.act_scheduled = True
        self.push(at, lead, "act")

    def on_act(self, lead, t):
        rng = self.rng
        lead.act_scheduled = False
        if t < lead.sleep_until:
            self.cont(lead, t)
            return
        if lead.title_change_at and t >= lead.title_change_at:
            lead.title_change_at = 0
            self.count("title_change")
            self.profile(lead, t, False)
            self.cont(lead, t)
            return
        name = self.choose_activity(lead, t)
        if name == "proxy_open" and rng.random() < 0.8:
            # Too hot for a browser: it goes quiet until its score has cooled to 60% of an MQL,
            # if that is still within the period; else a privacy-proxy open (0 points).
            lead.score *= math.pow(2.0, -(t - lead.ref) / APPROX_HALF_LIFE_MS)
            lead.ref = t
            quiet = APPROX_HALF_LIFE_MS * math.log2(max(1.0, lead.score / (0.6 * APPROX_MQL)))
            if t + quiet < self.end_ms:
                lead.sleep_until = t + int(quiet)
                self.cont(lead, t)
                return
        if name == "proxy_open":
            self.engagement(lead, t, "email_open", machine=True)
        elif name == "scan_open":
            self.engagement(lead, t, "email_open", machine=rng.random() < 0.5, fast=True)
        elif name == "scan_click":
            self.engagement(lead, t, "email_click", machine=rng.random() < 0.5, fast=True)
        else:
            self.engagement(lead, t, name)
        if lead.mode == "journey":
            if lead.fit_ok and lead.score >= APPROX_MQL:
                self.qualified(lead, t)
            elif t - lead.journey_start > 1.5 * lead.journey_ms:
                self.after_journey(lead)
        self.cont(lead, t)

    def after_journey(self, lead):
        """The buying burst is over: the lead browses at a slower pace with its remaining events."""
        lead.mode = "after"
        lead.gap = max(lead.gap, 3 * DAY_MS)

    def qualified(self, lead, t):
        """The rough model says the lead is an MQL now: decide what sales does about it."""
        rng = self.rng
        lead.quals += 1
        self.count("approx_mql")
        self.after_journey(lead)
        if self.a.no_feedback or lead.budget < 2:
            lead.pending = 0
            return
        spare = lead.budget - 2
        if lead.quals > 1:
            scenario = rng.choice(["accept", "accept", "none"])
        else:
            r = rng.random()
            scenario = ("accept" if r < 0.30 else "accept_late" if r < 0.42 else
                        "reject" if r < 0.57 else "recycle" if r < 0.82 else "none")
            if scenario == "recycle" and spare < 8:
                scenario = "reject"
        self.count("scenario_" + scenario)
        lead.pending = 2
        if scenario == "none":
            lead.pending = 0
            return
        if scenario == "accept":
            fb, delay = ("accepted", None), rng.randint(HOUR_MS, 40 * HOUR_MS)
        elif scenario == "accept_late":
            fb, delay = ("accepted", None), rng.randint(52 * HOUR_MS, 110 * HOUR_MS)
        elif scenario == "reject":
            fb, delay = ("rejected", rng.choice(REJECT_REASONS)), rng.randint(2, 40) * HOUR_MS
        else:
            fb = ("recycled", rng.choice(["timing", "no_budget"]))
            delay = rng.randint(2, 40) * HOUR_MS
            lead.sleep_until = t + delay + 1  # keeps its events for the second burst
        lead.fb_scheduled += 1
        self.push(t + delay, lead, "fb", fb)

    def on_feedback(self, lead, t, payload):
        rng = self.rng
        outcome, reason = payload
        self.count("feedback_" + outcome)
        lead.fb_scheduled -= 1
        lead.pending -= 1
        self.emit(t, "feedback", lead, [("outcome", outcome), ("reason", reason),
                                        ("owner", rng.choice(OWNERS))], dup_ok=False)
        if outcome == "accepted" and lead.pending > 0 and rng.random() < 0.6:
            final = "won" if rng.random() < 0.4 else "lost"
            lead.fb_scheduled += 1
            self.push(t + rng.randint(7 * DAY_MS, 45 * DAY_MS), lead, "fb", (final, None))
            return
        lead.pending = 0
        if outcome == "recycled":
            # Back to nurture; weeks later a new buying burst makes it qualify again.
            lead.score = 0.0
            lead.mode = "journey"
            lead.sleep_until = t + rng.randint(10 * DAY_MS, 30 * DAY_MS)
            lead.journey_start = lead.sleep_until
            lead.journey_ms = int(rng.uniform(4, 14) * DAY_MS)
            lead.gap = lead.journey_ms / 9.0
            lead.pending = min(2, lead.budget)
        self.cont(lead, t)

    # ---- main loop -------------------------------------------------------------------------
    def run(self, out):
        a = self.a
        self.out = out
        rng = self.rng
        budget = self.budgets()
        order = list(range(a.leads))
        rng.shuffle(order)  # rank -> lead number, so busy leads are spread over the id space
        span = max(1, int(a.days * 0.8 * DAY_MS))
        first = [a.start_ms + rng.randrange(span) for _ in range(a.leads)]
        # Leads enter the stream at their first touch: activation in time order, no per-event lists.
        arrivals = sorted((first[order[r]], order[r], budget[r]) for r in range(a.leads)
                          if budget[r] > 0)
        del first, order, budget
        ai = 0
        heap = self.heap
        while ai < len(arrivals) or heap:
            if ai < len(arrivals) and (not heap or arrivals[ai][0] <= heap[0][0]):
                t0, idx, b = arrivals[ai]
                ai += 1
                lead = Lead(idx, "lead-%0*d" % (self.width, idx + 1))
                lead.budget = b
                lead.persona = self.pick_persona(b)
                self.count("persona_" + lead.persona)
                self.start_lead(lead, t0)
                continue
            t, _, lead, action, payload = heapq.heappop(heap)
            if action == "act":
                self.on_act(lead, t)
            else:
                self.on_feedback(lead, t, payload)
        while self.bad_left:
            self.buf.append(self.bad_line())
            self.bad_left -= 1
        self.flush()


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="gen_events.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="""examples:
  # the bundled sample (examples/events.jsonl)
  scripts/gen_events.py --seed 11 --leads 300 --events 4000 --zipf 0.7 --bad-lines 3 \\
      --out examples/events.jsonl
  # a big stream for the bench and the chaos test (about 1.5 minutes and 300 MB of memory)
  scripts/gen_events.py --seed 1 --leads 1000000 --events 5000000 --out /tmp/big.jsonl
  # the same stream, one file per input topic
  for k in engagement profile feedback; do
      scripts/gen_events.py --seed 1 --leads 1000000 --events 5000000 --kinds $k \\
          --out /tmp/$k.jsonl; done

Apart from --bad-lines, every line is a complete JSON object; the file is sorted by "ts" (a
duplicate follows its original with the same ts). --events counts every generated line (profiles,
engagement, feedback and duplicates) before --kinds filtering; bad lines come on top.""")
    p.add_argument("--leads", type=int, default=300, help="number of leads (default 300)")
    p.add_argument("--events", type=int, default=4000,
                   help="number of events to generate (default 4000)")
    p.add_argument("--start", default="2026-01-05T00:00:00Z",
                   help="start of the period: ms since the epoch or YYYY-MM-DDTHH:MM:SSZ "
                        "(default 2026-01-05T00:00:00Z, fixed so the output is stable)")
    p.add_argument("--days", type=int, default=90,
                   help="period over which leads first appear and act (default 90); feedback "
                        "and recycled leads may run past it")
    p.add_argument("--zipf", type=float, default=1.0,
                   help="Zipf exponent s of activity over leads: rank r gets a share ~ 1/r^s "
                        "(default 1.0; 0 = uniform)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--accounts", type=int, default=0,
                   help="leads work for this many companies (buying committees form; profiles "
                        "carry account_id now and then); 0 = every lead a company of its own "
                        "choosing (default)")
    p.add_argument("--dup-rate", type=float, default=0.01,
                   help="fraction of events re-sent with the same event_id (default 0.01)")
    p.add_argument("--no-feedback", action="store_true",
                   help="generate no sales feedback (hot leads then stay MQLs until they go stale)")
    p.add_argument("--kinds", default="engagement,profile,feedback",
                   help="comma-separated kinds to write (default all); the stream is generated in "
                        "full and filtered, so runs with the same seed split one stream")
    p.add_argument("--bad-lines", type=int, default=0,
                   help="insert N invalid lines (truncated JSON, missing lead_id, unknown "
                        "activity type) spread over the output (default 0)")
    p.add_argument("--out", default="-", help="output file (default: stdout)")
    p.add_argument("--stats", action="store_true",
                   help="print what was generated (personas, scenarios, counts) to stderr")
    args = p.parse_args(argv)

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            p.error("--kinds: unknown kind %r (expected engagement, profile, feedback)" % k)
    args.kinds = kinds
    if args.leads < 1 or args.events < 0 or args.days < 1 or args.zipf < 0:
        p.error("--leads and --days must be >= 1, --events and --zipf >= 0")
    if not 0 <= args.dup_rate < 0.5:
        p.error("--dup-rate must be in [0, 0.5)")
    try:
        args.start_ms = parse_start(args.start)
    except ValueError:
        p.error("--start: expected ms since the epoch or YYYY-MM-DDTHH:MM:SSZ")

    gen = Generator(args)
    if args.out == "-":
        gen.run(sys.stdout)
    else:
        with open(args.out, "w", buffering=1 << 20) as out:
            gen.run(out)
    if args.stats:
        for k in sorted(gen.stats):
            print("%-28s %d" % (k, gen.stats[k]), file=sys.stderr)
        print("%-28s %d" % ("lines (before --kinds)", gen.emitted), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
