/* Per-record cost of the codecs: Avro (Confluent framing) and JSON, encode and decode, for a
 * fully populated record of each kind; avro-c's generic reader on the same bytes for comparison.
 * Usage: bench_codec [iterations] (build with CMAKE_BUILD_TYPE=Release). */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leadpulse/codec.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sample_event(lp_event_t *ev, lp_event_kind_t kind) {
    lp_event_init(ev, kind);
    snprintf(ev->event_id, sizeof(ev->event_id), "3f1c9a52-7d1e-4a43-9f0e-2b8c6e1d0a77");
    snprintf(ev->lead_id, sizeof(ev->lead_id), "lead-000123456");
    ev->ts_ms = 1795600800123LL;
    if (kind == LP_EV_ENGAGEMENT) {
        snprintf(ev->u.engagement.type, sizeof(ev->u.engagement.type), "web_visit");
        snprintf(ev->u.engagement.url, sizeof(ev->u.engagement.url),
                 "https://www.example.com/pricing/enterprise?utm_source=newsletter");
        snprintf(ev->u.engagement.campaign_id, sizeof(ev->u.engagement.campaign_id), "cmp-2026-q4");
        ev->u.engagement.seconds_since_send = 3600;
    } else if (kind == LP_EV_PROFILE) {
        lp_profile_update_t *p = &ev->u.profile;
        snprintf(p->email, sizeof(p->email), "ana.lopez@example.com");
        snprintf(p->title, sizeof(p->title), "VP Engineering");
        snprintf(p->seniority, sizeof(p->seniority), "vp");
        snprintf(p->industry, sizeof(p->industry), "software");
        snprintf(p->company, sizeof(p->company), "Example Systems GmbH");
        p->company_size = 1200;
        snprintf(p->country, sizeof(p->country), "DE");
        snprintf(p->region, sizeof(p->region), "emea");
        snprintf(p->segment, sizeof(p->segment), "enterprise");
    } else {
        ev->u.feedback.outcome = LP_FB_REJECTED;
        ev->u.feedback.reason = LP_REJ_TIMING;
        snprintf(ev->u.feedback.owner, sizeof(ev->u.feedback.owner), "rep-17");
    }
}

static void sample_fact(lp_fact_t *f) {
    memset(f, 0, sizeof(*f));
    f->kind = LP_FACT_QUALIFIED;
    snprintf(f->event_id, sizeof(f->event_id), "9b2f0c1d4e5a6b7c8d9e0f1a2b3c4d5e");
    snprintf(f->lead_id, sizeof(f->lead_id), "lead-000123456");
    f->ts_ms = 1795600800123LL;
    f->score = 104.73125;
    f->fit_grade = 'B';
    f->stage = 3;
    f->ntop = 5;
    for (int i = 0; i < 5; i++) {
        snprintf(f->top[i].activity, sizeof(f->top[i].activity), "activity_%d", i);
        f->top[i].points = 40.0 / (i + 1);
    }
    f->other = 3.25;
    snprintf(f->model_id, sizeof(f->model_id), "default");
    snprintf(f->model_version, sizeof(f->model_version), "7");
    f->mql_seq = 1;
    f->mql_at_ms = f->ts_ms;
    f->sla_deadline_ms = f->ts_ms + 86400000;
    f->profile.company_size = -1;
    snprintf(f->profile.email, sizeof(f->profile.email), "ana.lopez@example.com");
    snprintf(f->profile.company, sizeof(f->profile.company), "Example Systems GmbH");
    snprintf(f->profile.region, sizeof(f->profile.region), "emea");
}

int main(int argc, char **argv) {
    static const char *kinds[] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback"};
    const int32_t ids[LP_SCHEMA__COUNT] = {1, 2, 3, 4, 5, 6};
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    char err[LP_ERRSTR];
    lp_avro_codec_t *codec = lp_avro_codec_new(LP_SCHEMA_DIR, ids, err, sizeof(err));
    uint8_t buf[4096];
    char json[4096];
    volatile size_t sink = 0;

    if (codec == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%-20s %10s %10s %10s %10s %12s %6s\n", "record (ns/record)", "avro-enc", "avro-dec",
           "json-enc", "json-dec", "avro-c-dec", "bytes");
    for (int k = 0; k < 3; k++) {
        lp_event_t ev, out;
        size_t n, jn;
        double t0, t[5];
        char path[1024];
        FILE *fp;
        char *text = calloc(1, 65536);
        avro_schema_t schema;
        avro_value_iface_t *iface;
        avro_value_t value;
        avro_reader_t reader;

        sample_event(&ev, (lp_event_kind_t)k);
        n = lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
        jn = lp_json_encode_event(&ev, json, sizeof(json));
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += lp_avro_encode_event(codec, &ev, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
        }
        t[0] = (now_ns() - t0) / (double)iters;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += (size_t)lp_avro_decode_event(codec, buf, n, -1, &out, err, sizeof(err));
        }
        t[1] = (now_ns() - t0) / (double)iters;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += lp_json_encode_event(&ev, json, sizeof(json));
        }
        t[2] = (now_ns() - t0) / (double)iters;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += (size_t)lp_json_decode_event(json, jn, &out, err, sizeof(err));
        }
        t[3] = (now_ns() - t0) / (double)iters;

        /* avro-c generic reader on the same body (after the 5-byte Confluent header). */
        snprintf(path, sizeof(path), "%s/%s.avsc", LP_SCHEMA_DIR, kinds[k]);
        fp = fopen(path, "rb");
        sink += fread(text, 1, 65535, fp);
        fclose(fp);
        avro_schema_from_json_length(text, strlen(text), &schema);
        iface = avro_generic_class_from_schema(schema);
        avro_generic_value_new(iface, &value);
        reader = avro_reader_memory((const char *)buf + 5, (int64_t)(n - 5));
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            avro_reader_memory_set_source(reader, (const char *)buf + 5, (int64_t)(n - 5));
            avro_value_reset(&value);
            sink += (size_t)avro_value_read(reader, &value);
        }
        t[4] = (now_ns() - t0) / (double)iters;
        avro_reader_free(reader);
        avro_value_decref(&value);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        free(text);
        printf("%-20s %10.1f %10.1f %10.1f %10.1f %12.1f %6zu\n", kinds[k], t[0], t[1], t[2], t[3],
               t[4], n);
    }
    {
        lp_fact_t fact, out;
        size_t n;
        double t0, te, td, tj;
        sample_fact(&fact);
        n = lp_avro_encode_fact(codec, &fact, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += lp_avro_encode_fact(codec, &fact, LP_FRAMING_CONFLUENT, buf, sizeof(buf));
        }
        te = (now_ns() - t0) / (double)iters;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += (size_t)lp_avro_decode_fact(codec, buf, n, &out, err, sizeof(err));
        }
        td = (now_ns() - t0) / (double)iters;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            sink += lp_json_encode_fact(&fact, json, sizeof(json));
        }
        tj = (now_ns() - t0) / (double)iters;
        printf("%-20s %10.1f %10.1f %10.1f %10s %12s %6zu\n", "LeadQualified", te, td, tj, "-", "-",
               n);
    }
    lp_avro_codec_destroy(codec);
    return sink == 0;
}
