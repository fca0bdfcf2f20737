/* examples/handoff_decode.py (the kcat side of the CRM examples) against the project's encoder:
 * hand-offs encoded by lp_avro_encode_fact (Confluent framing), written in the kcat format that
 * examples/kcat-handoffs.sh --decode asks for ("%t %p %o %K %S\n%k%s"), must decode to the fields
 * lp_json_encode_fact gives for the same facts; a damaged record is an error line, exit status 1.
 * Needs python3 (scripts/setup installs it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec_fixture.h"
#include "leadpulse/codec.h"
#include "leadpulse/score.h"

/* Compares the decoder's lines (argv[2]) with the JSON encoder's (argv[1]), field by field:
 * `kind` becomes `type`, enums are upper-case symbols there and lower-case names here. */
static const char COMPARE[] =
    "import json, sys\n"
    "ref = [json.loads(l) for l in open(sys.argv[1])]\n"
    "dec = [json.loads(l) for l in open(sys.argv[2])]\n"
    "assert len(ref) == len(dec), (len(ref), len(dec))\n"
    "for n, (r, d) in enumerate(zip(ref, dec)):\n"
    "    kind = r.pop('kind')\n"
    "    assert d['type'] == {'qualified': 'LeadQualified', 'stale': 'LeadStale',\n"
    "                         'erased': 'LeadErased'}[kind], d\n"
    "    assert d['key'] == r['lead_id'] and d['offset'] == n, d\n"
    "    for k, v in r.items():\n"
    "        got = d.get(k, 'MISSING')\n"
    "        same = v.lower() == got.lower() if isinstance(v, str) and isinstance(got, str) \\\n"
    "            else v == got\n"
    "        assert same, (n, k, v, got)\n"
    "print('decoded %d hand-offs like the JSON encoder' % len(dec))\n";

static lp_fact_t fact_of(lp_fact_kind_t kind, const char *lead_id, int ntop) {
    lp_fact_t f;
    memset(&f, 0, sizeof(f));
    f.kind = kind;
    lp_event_id_derive(f.event_id, lead_id, kind == LP_FACT_QUALIFIED ? "qualified" : "stale", 1,
                       0);
    snprintf(f.lead_id, sizeof(f.lead_id), "%s", lead_id);
    f.ts_ms = 1772409600123LL;
    f.score = 123.456789;
    f.fit_grade = 'B';
    f.stage = kind == LP_FACT_QUALIFIED ? LP_STAGE_MQL : LP_STAGE_RESPONDER;
    f.ntop = ntop;
    double sum = 0;
    for (int i = 0; i < ntop; i++) {
        snprintf(f.top[i].activity, sizeof(f.top[i].activity), "activity_%d", i);
        f.top[i].points = 40.0 / (i + 1) - (i == ntop - 1 ? 50 : 0); /* one negative */
        sum += f.top[i].points;
    }
    f.other = f.score - sum;
    snprintf(f.model_id, sizeof(f.model_id), "b2b-default");
    snprintf(f.model_version, sizeof(f.model_version), "2026.1");
    f.mql_seq = 2;
    f.mql_at_ms = 1772400000000LL;
    f.profile.company_size = -1;
    return f;
}

static void test_decoder_matches_encoder(void **state) {
    (void)state;
    const int32_t ids[LP_SCHEMA__COUNT] = {1, 2, 3, 4, 5, 6}; /* the configuration defaults */
    char err[LP_ERRSTR] = "";
    char dir[] = "/tmp/lp-kcat-XXXXXX";
    char path[4][512], cmd[2048];
    lp_avro_codec_t *codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));
    assert_non_null(codec);
    assert_non_null(mkdtemp(dir));
    snprintf(path[0], sizeof(path[0]), "%s/kcat.bin", dir);
    snprintf(path[1], sizeof(path[1]), "%s/ref.jsonl", dir);
    snprintf(path[2], sizeof(path[2]), "%s/dec.jsonl", dir);

    lp_fact_t facts[6];
    facts[0] = fact_of(LP_FACT_QUALIFIED, "lead-1", LP_TOP_N);
    facts[0].sla_deadline_ms = 1772582400000LL;
    facts[0].last_reject_reason = LP_REJ_NOT_DECISION_MAKER;
    snprintf(facts[0].profile.email, sizeof(facts[0].profile.email), "ann@acme.example");
    snprintf(facts[0].profile.company, sizeof(facts[0].profile.company), "Caf\xc3\xa9 \"Acme\"");
    snprintf(facts[0].profile.region, sizeof(facts[0].profile.region), "emea");
    snprintf(facts[0].profile.segment, sizeof(facts[0].profile.segment), "mid_market");
    snprintf(facts[0].profile.persona, sizeof(facts[0].profile.persona), "buyer");
    snprintf(facts[0].profile.owner, sizeof(facts[0].profile.owner), "ae-7");
    facts[1] = fact_of(LP_FACT_QUALIFIED, "lead-2", 0); /* no reasons, every union null */
    facts[2] = fact_of(LP_FACT_STALE, "lead-1", 2);
    facts[2].stale_reason = LP_STALE_SLA_BREACHED;
    facts[2].reminder = 2;
    facts[2].sla_deadline_ms = 1772582400000LL;
    snprintf(facts[2].profile.title, sizeof(facts[2].profile.title), "VP Sales");
    facts[3] = fact_of(LP_FACT_STALE, "lead-3", 1);
    facts[3].stale_reason = LP_STALE_COOLED;
    /* Erasures: only the ids, the time, had_state and suppressed_until (null: until lifted). */
    for (int i = 4; i < 6; i++) {
        memset(&facts[i], 0, sizeof(facts[i]));
        facts[i].kind = LP_FACT_ERASED;
        snprintf(facts[i].lead_id, sizeof(facts[i].lead_id), "lead-%d", i - 3);
        facts[i].ts_ms = 1772409700000LL + i;
        lp_event_id_derive(facts[i].event_id, facts[i].lead_id, "erased",
                           (uint32_t)((uint64_t)facts[i].ts_ms >> 32), (uint32_t)facts[i].ts_ms);
    }
    facts[4].had_state = true;
    facts[4].suppressed_until_ms = facts[4].ts_ms + 730LL * 86400000LL;

    FILE *bin = fopen(path[0], "wb");
    FILE *ref = fopen(path[1], "w");
    assert_non_null(bin);
    assert_non_null(ref);
    for (int i = 0; i < 6; i++) {
        uint8_t buf[8192];
        char json[8192];
        size_t n = lp_avro_encode_fact(codec, &facts[i], LP_FRAMING_CONFLUENT, buf, sizeof(buf));
        size_t j = lp_json_encode_fact(&facts[i], json, sizeof(json));
        assert_true(n > 5 && j > 0);
        fprintf(bin, "%s 0 %d %zu %zu\n%s",
                i < 2   ? "leads.mql"
                : i < 4 ? "leads.stale"
                        : "leads.erased",
                i, strlen(facts[i].lead_id), n, facts[i].lead_id);
        assert_int_equal(fwrite(buf, 1, n, bin), n);
        fprintf(ref, "%.*s%s", (int)j, json, json[j - 1] == '\n' ? "" : "\n");
    }
    assert_int_equal(fclose(bin), 0);
    assert_int_equal(fclose(ref), 0);

    snprintf(cmd, sizeof(cmd), "python3 %s/examples/handoff_decode.py --schemas %s < %s > %s",
             LP_SOURCE_DIR, LP_SCHEMA_DIR, path[0], path[2]);
    assert_int_equal(system(cmd), 0);
    snprintf(path[3], sizeof(path[3]), "%s/compare.py", dir);
    FILE *py = fopen(path[3], "w");
    assert_non_null(py);
    fputs(COMPARE, py);
    assert_int_equal(fclose(py), 0);
    snprintf(cmd, sizeof(cmd), "python3 %s %s %s", path[3], path[1], path[2]);
    assert_int_equal(system(cmd), 0);

    /* A record cut short, then a good one: an error line, the good one decoded, exit status 1. */
    uint8_t buf[8192];
    size_t n = lp_avro_encode_fact(codec, &facts[0], LP_FRAMING_CONFLUENT, buf, sizeof(buf));
    bin = fopen(path[0], "wb");
    assert_non_null(bin);
    fprintf(bin, "leads.mql 0 0 1 %zu\nx", n - 3);
    assert_int_equal(fwrite(buf, 1, n - 3, bin), n - 3);
    fprintf(bin, "leads.mql 0 1 1 %zu\nx", n);
    assert_int_equal(fwrite(buf, 1, n, bin), n);
    assert_int_equal(fclose(bin), 0);
    snprintf(cmd, sizeof(cmd),
             "python3 %s/examples/handoff_decode.py --schemas %s < %s 2>/dev/null > %s",
             LP_SOURCE_DIR, LP_SCHEMA_DIR, path[0], path[2]);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    char out[16384] = "";
    FILE *dec = fopen(path[2], "r");
    assert_non_null(dec);
    size_t got = fread(out, 1, sizeof(out) - 1, dec);
    fclose(dec);
    out[got] = '\0';
    char *second = strchr(out, '\n');
    assert_non_null(second);
    assert_non_null(strstr(out, "{\"type\": \"error\", \"error\": \"truncated record"));
    assert_true(strstr(out, "\"type\": \"LeadQualified\"") > second);

    for (int i = 0; i < 4; i++) {
        unlink(path[i]);
    }
    rmdir(dir);
    lp_avro_codec_destroy(codec);
}

/* The account hand-offs the same way (ids 7 and 8, as handoff-consumer --accounts), every
 * string compared case-insensitively at any depth (stages are symbols there, names here). One
 * account has members but no role covered: the members' BuyingRole is then defined nowhere the
 * decoder has walked before (roles_covered is empty), which it must still resolve. */
static const char COMPARE_ACCOUNTS[] =
    "import json, sys\n"
    "def norm(v):\n"
    "    if isinstance(v, str): return v.lower()\n"
    "    if isinstance(v, list): return [norm(x) for x in v]\n"
    "    if isinstance(v, dict): return {k: norm(x) for k, x in v.items()}\n"
    "    return v\n"
    "ref = [json.loads(l) for l in open(sys.argv[1])]\n"
    "dec = [json.loads(l) for l in open(sys.argv[2])]\n"
    "assert len(ref) == len(dec), (len(ref), len(dec))\n"
    "for n, (r, d) in enumerate(zip(ref, dec)):\n"
    "    kind = r.pop('kind')\n"
    "    assert d['type'] == {'account_qualified': 'AccountQualified',\n"
    "                         'account_stale': 'AccountStale'}[kind], d\n"
    "    assert d['key'] == r['account'] and d['offset'] == n, d\n"
    "    for k, v in r.items():\n"
    "        assert norm(v) == norm(d.get(k, 'MISSING')), (n, k, v, d.get(k))\n"
    "print('decoded %d account hand-offs like the JSON encoder' % len(dec))\n";

static void test_decoder_matches_account_encoder(void **state) {
    (void)state;
    const int32_t ids[LP_SCHEMA__COUNT] = {1, 2, 3, 4, 5, 6};
    char err[LP_ERRSTR] = "";
    char dir[] = "/tmp/lp-kcat-XXXXXX";
    char path[4][512], cmd[2048];
    lp_avro_codec_t *codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));
    assert_non_null(codec);
    assert_int_equal(
        lp_avro_codec_set_schema_id(codec, LP_SCHEMA_ACCOUNT_QUALIFIED, 7, err, sizeof(err)),
        LP_OK);
    assert_int_equal(
        lp_avro_codec_set_schema_id(codec, LP_SCHEMA_ACCOUNT_STALE, 8, err, sizeof(err)), LP_OK);
    assert_non_null(mkdtemp(dir));
    snprintf(path[0], sizeof(path[0]), "%s/kcat.bin", dir);
    snprintf(path[1], sizeof(path[1]), "%s/ref.jsonl", dir);
    snprintf(path[2], sizeof(path[2]), "%s/dec.jsonl", dir);

    static lp_account_fact_t facts[7];
    for (int v = 0; v < 3; v++) {
        fix_account_fact(&facts[2 * v], LP_ACCOUNT_FACT_QUALIFIED, v);
        fix_account_fact(&facts[2 * v + 1], LP_ACCOUNT_FACT_STALE, v);
    }
    fix_account_fact(&facts[6], LP_ACCOUNT_FACT_STALE, 2);
    facts[6].roles_covered = 0; /* members, none engaged with a role that counts */
    facts[6].engaged_members = 0;
    for (int m = 0; m < facts[6].nmembers; m++) {
        facts[6].members[m].engaged = false;
    }
    lp_account_members_sort(facts[6].members, facts[6].nmembers);

    FILE *bin = fopen(path[0], "wb");
    FILE *ref = fopen(path[1], "w");
    assert_non_null(bin);
    assert_non_null(ref);
    for (int i = 0; i < 7; i++) {
        static uint8_t buf[16384];
        static char json[65536];
        size_t n =
            lp_avro_encode_account_fact(codec, &facts[i], LP_FRAMING_CONFLUENT, buf, sizeof(buf));
        size_t j = lp_json_encode_account_fact(&facts[i], json, sizeof(json));
        assert_true(n > 5 && j > 0);
        fprintf(bin, "%s 0 %d %zu %zu\n%s",
                facts[i].kind == LP_ACCOUNT_FACT_QUALIFIED ? "leads.mqa" : "leads.account_stale", i,
                strlen(facts[i].account), n, facts[i].account);
        assert_int_equal(fwrite(buf, 1, n, bin), n);
        fprintf(ref, "%.*s%s", (int)j, json, json[j - 1] == '\n' ? "" : "\n");
    }
    assert_int_equal(fclose(bin), 0);
    assert_int_equal(fclose(ref), 0);
    snprintf(cmd, sizeof(cmd), "python3 %s/examples/handoff_decode.py --schemas %s < %s > %s",
             LP_SOURCE_DIR, LP_SCHEMA_DIR, path[0], path[2]);
    assert_int_equal(system(cmd), 0);
    snprintf(path[3], sizeof(path[3]), "%s/compare.py", dir);
    FILE *py = fopen(path[3], "w");
    assert_non_null(py);
    fputs(COMPARE_ACCOUNTS, py);
    assert_int_equal(fclose(py), 0);
    snprintf(cmd, sizeof(cmd), "python3 %s %s %s", path[3], path[1], path[2]);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 4; i++) {
        unlink(path[i]);
    }
    rmdir(dir);
    lp_avro_codec_destroy(codec);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_matches_encoder),
        cmocka_unit_test(test_decoder_matches_account_encoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
