/* Writes the seed corpus of the fuzz harnesses: valid records encoded by the codec itself (so the
 * seeds follow the schemas as they change) and hand-made invalid ones, one file each.
 *   fuzz_gen_corpus tests/fuzz/corpus
 * Crash inputs found later are added next to the seeds by hand (crash-<what>), never generated. */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "codec_fixture.h"
#include "leadpulse/account_state.h"
#include "leadpulse/rules.h"
#include "leadpulse/score.h"

static const char *root;
static int failures;

static void put(const char *harness, const char *name, const void *data, size_t len) {
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, harness);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        failures++;
        return;
    }
    snprintf(path, sizeof(path), "%s/%s/seed-%s", root, harness, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        perror(path);
        failures++;
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void putf(const char *harness, const char *fmt_name, int a, int b, const void *data,
                 size_t len) {
    char name[128];
    snprintf(name, sizeof(name), fmt_name, a, b);
    put(harness, name, data, len);
}

static const char *const framing_names[] = {"confluent", "single", "raw"};

/* Mutations of a valid Confluent-framed engagement record (fixture variant 1). */
static void avro_event_bad(lp_avro_codec_t *codec) {
    lp_event_t ev;
    uint8_t good[2048], bad[2048];
    size_t n;

    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, good, sizeof(good));
    /* layout: 00 id(4) | event_id len, bytes | lead_id len, bytes | ts | type ... */
    put("fuzz_avro_event", "bad-truncated-half", good, n / 2);
    put("fuzz_avro_event", "bad-truncated-header", good, 3);
    put("fuzz_avro_event", "bad-empty", good, 0);
    memcpy(bad, good, n);
    bad[4] = 99; /* schema id 101 -> 99 */
    put("fuzz_avro_event", "bad-unknown-schema-id", bad, n);
    memcpy(bad, good, n);
    bad[4] = 201; /* LeadQualified's id on an input topic */
    put("fuzz_avro_event", "bad-output-schema-id", bad, n);
    memcpy(bad, good, n);
    bad[5] = 0xF6; /* event_id length varint: huge (10 bytes of continuation) */
    memset(bad + 5, 0xFF, 9);
    bad[14] = 0x01;
    put("fuzz_avro_event", "bad-huge-length", bad, n);
    memcpy(bad, good, n);
    bad[5] = 0x01; /* length -1 */
    put("fuzz_avro_event", "bad-negative-length", bad, n);
    memcpy(bad, good, n);
    bad[6] = 0xFF; /* first byte of event_id: not UTF-8 */
    put("fuzz_avro_event", "bad-non-utf8", bad, n);
    memcpy(bad, good, n);
    bad[6] = 0x00;
    put("fuzz_avro_event", "bad-nul-in-string", bad, n);
    memcpy(bad, good, n);
    bad[n] = 0x00;
    put("fuzz_avro_event", "bad-trailing-byte", bad, n + 1);
    /* raw bytes of a record, read as each schema */
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_RAW, good, sizeof(good));
    put("fuzz_avro_event", "raw-engagement-unframed", good, n);
    memcpy(bad, "\xC3\x01\x00\x00\x00\x00\x00\x00\x00\x00", 10);
    memcpy(bad + 10, good, n);
    put("fuzz_avro_event", "bad-unknown-fingerprint", bad, n + 10);

    /* feedback with an unknown enum symbol index */
    fix_event(&ev, LP_EV_FEEDBACK, 0);
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, good, sizeof(good));
    memcpy(bad, good, n);
    bad[n - 3] = 0x0A; /* outcome index 5: one past LOST */
    put("fuzz_avro_event", "bad-enum-index", bad, n);

    /* timestamps out of range */
    fix_event(&ev, LP_EV_ENGAGEMENT, 0);
    ev.ts_ms = INT64_MAX;
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, good, sizeof(good));
    put("fuzz_avro_event", "bad-ts-max", good, n);
    ev.ts_ms = -1;
    n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, good, sizeof(good));
    put("fuzz_avro_event", "bad-ts-negative", good, n);
}

static void avro(lp_avro_codec_t *codec) {
    uint8_t buf[4096];

    for (int kind = 0; kind <= LP_EV_FEEDBACK; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            for (int fr = 0; fr < 3; fr++) {
                lp_event_t ev;
                size_t n;
                char name[64];
                fix_event(&ev, (lp_event_kind_t)kind, variant);
                n = lp_avro_encode_event(codec, &ev, (lp_framing_t)fr, buf, sizeof(buf));
                snprintf(name, sizeof(name), "%s-kind%%d-v%%d", framing_names[fr]);
                putf("fuzz_avro_event", name, kind, variant, buf, n);
            }
        }
    }
    avro_event_bad(codec);
    for (int kind = 0; kind <= LP_FACT_ERASED; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            for (int fr = 0; fr < 3; fr++) {
                lp_fact_t fact;
                size_t n;
                char name[64];
                fix_fact(&fact, (lp_fact_kind_t)kind, variant);
                n = lp_avro_encode_fact(codec, &fact, (lp_framing_t)fr, buf, sizeof(buf));
                snprintf(name, sizeof(name), "%s-kind%%d-v%%d", framing_names[fr]);
                putf("fuzz_avro_fact", name, kind, variant, buf, n);
                if (fr == 0 && variant == 1) {
                    putf("fuzz_avro_fact", "bad-truncated-kind%d-v%d", kind, variant, buf, n - 3);
                }
            }
        }
    }
}

static void json(void) {
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"kind\":\"engagement\",\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1795600800000}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":\"2026-11-25T10:00:00Z\",\"type\":\"Web "
        "Visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":-5,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1e400,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":NaN,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":99999999999999999999,\"type\":\"web_"
        "visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":\"9999-12-31T23:59:60Z\",\"type\":\"web_"
        "visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":\"1969-12-31T23:59:59Z\",\"type\":\"web_"
        "visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"\",\"ts\":1,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l\\u0000\",\"ts\":1,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"\\ud800\",\"ts\":1,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"\\ud83d\\ude00\",\"ts\":1,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"\xff\xfe\",\"ts\":1,\"type\":\"web_visit\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"outcome\":\"maybe\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"outcome\":\"rejected\",\"reason\":"
        "\"x\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"company_size\":-3}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"company_size\":1.5}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"email\":null,\"email\":\"a@b\"}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"type\":\"web_visit\",\"x\":[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"type\":\"web_visit\"} trailing",
        "{\"event_id\":\"e1\",\"lead_id\":\"l1\",\"ts\":1,\"type\":\"web_visit\",\"machine\":"
        "\"yes\"}",
    };
    char buf[4096];

    for (int kind = 0; kind <= LP_EV_FEEDBACK; kind++) {
        for (int variant = 0; variant < 2; variant++) {
            lp_event_t ev;
            size_t n;
            fix_event(&ev, (lp_event_kind_t)kind, variant);
            n = lp_json_encode_event(&ev, buf, sizeof(buf));
            putf("fuzz_json_event", "kind%d-v%d", kind, variant, buf, n);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        putf("fuzz_json_event", "edge-%02d%.0d", (int)i, 0, bad[i], strlen(bad[i]));
    }
}

static void rules_seeds(void) {
    static const char *const files[] = {"config/rules.yaml",
                                        "tests/unit/data/rules/minimal.yaml",
                                        "tests/unit/data/rules/bad_rearm.yaml",
                                        "tests/unit/data/rules/bad_typo.yaml",
                                        "tests/cli/data/fixture_rules.yaml",
                                        "tests/unit/data/rules/bad_accounts.yaml"};
    static const char *const bad[] = {
        "",
        "model: {id: x, version: \"1\"}\n",
        "a: &a [*a, *a]\nmodel: *a\n",
        "model: &m {id: x, version: \"1\"}\nscore: *m\nactivities: *m\n",
        "model: {id: x, version: \"1\"}\nmodel: {id: y, version: \"2\"}\n",
        "model: {id: x, version: \"1\"}\nscore: {half_life: 0d, mql: .nan, rearm: -.inf}\n",
        "model: {id: x, version: \"1\"}\nscore: {half_life: 99999999999999999999d}\n",
        "model: {id: x, version: \"1\"}\nactivities: {\"Web Visit\": {points: 1}}\n",
        "\t- tab\n",
        "%YAML 1.1\n---\n!!binary AAAA\n",
        "--- a\n--- b\n",
        "model: {id: x, version: \"1\"}\nscore: {half_life: 1d, mql: 10}\nactivities: {a: 1}\n"
        "accounts:\n  free_mail_domains: [x.io]\n  roles:\n"
        "    - {role: approver, field: title, contains: [cfo]}\n  role_points: {approver: 5}\n"
        "  mqa: {score: 5, required_roles: [[approver, user]], rearm: 1}\n"
        "  stale: {quiet_after: 1d}\n",
    };
    char path[1024];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        static char text[65536];
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "%s/%s", LP_SOURCE_DIR, files[i]);
        f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "skipping %s: %s\n", path, strerror(errno));
            continue;
        }
        n = fread(text, 1, sizeof(text), f);
        fclose(f);
        putf("fuzz_rules", "file-%d%.0d", (int)i, 0, text, n);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        putf("fuzz_rules", "edge-%02d%.0d", (int)i, 0, bad[i], strlen(bad[i]));
    }
}

/* Lead states the core writes, driven by the default model through a small life. */
static void lead_seeds(void) {
    static lp_lead_t lead;
    static lp_event_t ev;
    static lp_facts_t facts;
    static const char *const types[] = {"web_visit",   "demo_request", "form_fill",
                                        "email_click", "unsubscribe",  "webinar_attended"};
    uint8_t buf[LP_LEAD_ENCODED_MAX];
    char err[LP_ERRSTR];
    lp_rules_t *rules = lp_rules_load(LP_SOURCE_DIR "/config/rules.yaml", err, sizeof(err));
    int64_t ts = 1795600800000LL;
    size_t n;

    if (rules == NULL) {
        fprintf(stderr, "rules: %s\n", err);
        failures++;
        return;
    }
    lp_lead_init(&lead, rules, "lead-1");
    n = lp_lead_encode(&lead, rules, buf, sizeof(buf));
    put("fuzz_lead_state", "fresh", buf, n);
    lp_event_init(&ev, LP_EV_PROFILE);
    snprintf(ev.event_id, sizeof(ev.event_id), "p1");
    snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-1");
    ev.ts_ms = ts;
    snprintf(ev.u.profile.email, sizeof(ev.u.profile.email), "ana@example.com");
    snprintf(ev.u.profile.title, sizeof(ev.u.profile.title), "VP Marketing");
    snprintf(ev.u.profile.seniority, sizeof(ev.u.profile.seniority), "vp");
    ev.u.profile.company_size = 800;
    lp_score_apply(&lead, &ev, rules, &facts);
    for (int i = 0; i < 12; i++) {
        lp_event_init(&ev, LP_EV_ENGAGEMENT);
        snprintf(ev.event_id, sizeof(ev.event_id), "e%d", i);
        snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-1");
        ev.ts_ms = ts += 3600000;
        snprintf(ev.u.engagement.type, sizeof(ev.u.engagement.type), "%s",
                 types[i % (int)(sizeof(types) / sizeof(types[0]))]);
        snprintf(ev.u.engagement.url, sizeof(ev.u.engagement.url), "/pricing");
        facts.n = 0;
        lp_score_apply(&lead, &ev, rules, &facts);
        n = lp_lead_encode(&lead, rules, buf, sizeof(buf));
        putf("fuzz_lead_state", "life-%02d%.0d", i, 0, buf, n);
    }
    lp_event_init(&ev, LP_EV_FEEDBACK);
    snprintf(ev.event_id, sizeof(ev.event_id), "f1");
    snprintf(ev.lead_id, sizeof(ev.lead_id), "lead-1");
    ev.ts_ms = ts += 1000;
    ev.u.feedback.outcome = LP_FB_RECYCLED;
    ev.u.feedback.reason = LP_REJ_TIMING;
    lp_score_apply(&lead, &ev, rules, &facts);
    n = lp_lead_encode(&lead, rules, buf, sizeof(buf));
    put("fuzz_lead_state", "recycled", buf, n);
    /* format 5: a lead of an account (account_id and its time, latest acceptance, member
     * records sent) */
    snprintf(lead.profile.account_id, sizeof(lead.profile.account_id), "acct-42");
    lead.account_id_ms = ts - 5000;
    lead.accepted_ms = ts - 2000;
    lead.member_seq = 7;
    size_t n5 = lp_lead_encode(&lead, rules, buf, sizeof(buf));
    put("fuzz_lead_state", "account", buf, n5);
    lead.profile.account_id[0] = '\0';
    lead.account_id_ms = 0;
    lead.accepted_ms = 0;
    lead.member_seq = 0;
    n = lp_lead_encode(&lead, rules, buf, sizeof(buf));
    put("fuzz_lead_state", "bad-truncated", buf, n / 2);
    buf[0] = 2; /* a future format version */
    put("fuzz_lead_state", "bad-version", buf, n);
    lp_rules_destroy(rules);
}

/* Account states the model writes (fuzz_account_state): the harness's model (its ACCOUNT_RULES),
 * an account's life through members, untracked leads, qualifications and timers. */
static void account_seeds(void) {
    static const char *const yaml = "model: {id: fuzz, version: \"1\"}\n"
                                    "score: {half_life: 1d, mql: 100, floor: -20}\n"
                                    "activities: {a: 1}\n"
                                    "accounts:\n"
                                    "  member_cap: 60\n"
                                    "  role_points: {decision_maker: 20, blocker: -5}\n"
                                    "  mqa:\n"
                                    "    score: 50\n"
                                    "    engaged_members: 1\n"
                                    "    required_roles: [[decision_maker, user]]\n"
                                    "    rearm: 20\n"
                                    "  stale: {quiet_after: 2d, accept_within: 1d}\n"
                                    "  max_members: 3\n";
    static lp_account_fact_t facts[LP_ACCOUNT_APPLY_FACTS];
    static const lp_role_t roles[] = {LP_ROLE_DECISION_MAKER, LP_ROLE_USER, LP_ROLE_BLOCKER,
                                      LP_ROLE_INFLUENCER};
    char err[LP_ERRSTR];
    lp_rules_t *rules =
        lp_rules_load_buffer("fuzz-accounts.yaml", yaml, strlen(yaml), err, sizeof(err));
    lp_account_state_t a;
    lp_member_record_t r;
    int64_t ts = 1795600800000LL;
    uint8_t buf[4096];
    size_t n, nfacts;

    if (rules == NULL) {
        fprintf(stderr, "account rules: %s\n", err);
        failures++;
        return;
    }
    lp_account_init(&a);
    for (int i = 0; i < 14; i++) {
        memset(&r, 0, sizeof(r));
        snprintf(r.account, sizeof(r.account), "domain:acme.com");
        snprintf(r.lead_id, sizeof(r.lead_id), "lead-%d", i % 5);
        r.seq = (uint64_t)i + 1;
        r.leave = i == 9;
        r.e = i % 3 == 0 ? 80.25 : i % 3 == 1 ? -7.5 : 30;
        r.ref_ms = r.event_ms = ts += (i % 4 + 1) * 9 * 3600000LL;
        r.role = roles[i % 4];
        r.fit_grade = (char)('A' + i % 4);
        r.stage = (uint8_t)(i % LP_STAGE__COUNT);
        r.last_activity_ms = i % 2 ? r.event_ms : 0;
        r.accepted_ms = i == 11 ? r.event_ms : 0;
        lp_account_apply(&a, rules, &r, facts, LP_ACCOUNT_APPLY_FACTS, &nfacts);
        n = lp_account_encode(&a, buf, sizeof(buf));
        if (n > 0) {
            putf("fuzz_account_state", "life-%02d%.0d", i, 0, buf, n);
        }
    }
    n = lp_account_encode(&a, buf, sizeof(buf));
    put("fuzz_account_state", "bad-truncated", buf, n / 2);
    buf[0] = 2; /* a future format version */
    put("fuzz_account_state", "bad-version", buf, n);
    lp_account_free(&a);
    lp_rules_destroy(rules);
}

int main(int argc, char **argv) {
    lp_avro_codec_t *codec;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    codec = fix_codec();
    avro(codec);
    json();
    rules_seeds();
    lead_seeds();
    account_seeds();
    lp_avro_codec_destroy(codec);
    return failures == 0 ? 0 : 1;
}
