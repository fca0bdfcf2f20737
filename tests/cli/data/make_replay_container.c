/* Writes the JSON-lines events of a file as an Avro object container file whose writer schema is
 * the union [EngagementEvent, LeadProfileUpdated, SalesFeedback] of schemas/, one record per line,
 * in the same order: the input of tests/cli/test_replay_avro.sh. Not built by CMake (the container
 * is committed); see tests/cli/data/README.md for the command that built and ran it.
 *
 *   make_replay_container SCHEMA_DIR IN.jsonl OUT.avro
 *
 * Lines are decoded with lp_json_decode_event, the decoder `leadpulse replay` uses for JSON lines,
 * and written with avro-c's generic writer. A line that does not decode is an error: the container
 * must hold exactly the events of the JSON file. */
#include <avro.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leadpulse/codec.h"

static const char *schema_files[3] = {"EngagementEvent", "LeadProfileUpdated", "SalesFeedback"};

static char *read_text(const char *dir, const char *name) {
    char path[1024];
    char *buf = calloc(1, 65536);
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s.avsc", dir, name);
    fp = fopen(path, "rb");
    if (buf == NULL || fp == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        free(buf);
        if (fp != NULL) {
            fclose(fp);
        }
        return NULL;
    }
    n = fread(buf, 1, 65535, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

/* An optional field is ["null", T]: branch 0 when absent. */
static int set_opt_string(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t field, branch;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0) {
        return -1;
    }
    if (s[0] == '\0') {
        return avro_value_set_branch(&field, 0, &branch) == 0 ? avro_value_set_null(&branch) : -1;
    }
    if (avro_value_set_branch(&field, 1, &branch) != 0) {
        return -1;
    }
    return avro_value_set_string(&branch, s);
}

static int set_opt_long(avro_value_t *rec, const char *name, int64_t v) {
    avro_value_t field, branch;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0) {
        return -1;
    }
    if (v < 0) {
        return avro_value_set_branch(&field, 0, &branch) == 0 ? avro_value_set_null(&branch) : -1;
    }
    if (avro_value_set_branch(&field, 1, &branch) != 0) {
        return -1;
    }
    return avro_value_set_long(&branch, v);
}

static int set_string(avro_value_t *rec, const char *name, const char *s) {
    avro_value_t field;
    return avro_value_get_by_name(rec, name, &field, NULL) == 0 ? avro_value_set_string(&field, s)
                                                                : -1;
}

/* Enums by symbol (the schemas spell them in upper case), not by our enum's numbering. */
static int set_enum(avro_value_t *rec, const char *name, const char *symbol) {
    avro_value_t field;
    char upper[64];
    int index;
    size_t i;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0) {
        return -1;
    }
    for (i = 0; symbol[i] != '\0' && i + 1 < sizeof(upper); i++) {
        upper[i] = (char)toupper((unsigned char)symbol[i]);
    }
    upper[i] = '\0';
    index = avro_schema_enum_get_by_name(avro_value_get_schema(&field), upper);
    return index < 0 ? -1 : avro_value_set_enum(&field, index);
}

static int set_event(avro_value_t *top, const lp_event_t *ev) {
    avro_value_t rec, field;
    int rc = 0;

    avro_value_reset(top);
    if (avro_value_set_branch(top, (int)ev->kind, &rec) != 0) {
        return -1;
    }
    rc |= set_string(&rec, "event_id", ev->event_id);
    rc |= set_string(&rec, "lead_id", ev->lead_id);
    rc |=
        avro_value_get_by_name(&rec, "ts", &field, NULL) || avro_value_set_long(&field, ev->ts_ms);
    if (ev->kind == LP_EV_ENGAGEMENT) {
        const lp_engagement_t *e = &ev->u.engagement;
        rc |= set_string(&rec, "type", e->type);
        rc |= set_opt_string(&rec, "url", e->url);
        rc |= set_opt_string(&rec, "asset_id", e->asset_id);
        rc |= set_opt_string(&rec, "campaign_id", e->campaign_id);
        rc |= avro_value_get_by_name(&rec, "machine", &field, NULL) ||
              avro_value_set_boolean(&field, e->machine);
        rc |= set_opt_long(&rec, "seconds_since_send", e->seconds_since_send);
    } else if (ev->kind == LP_EV_PROFILE) {
        const lp_profile_update_t *p = &ev->u.profile;
        rc |= set_opt_string(&rec, "email", p->email);
        rc |= set_opt_string(&rec, "title", p->title);
        rc |= set_opt_string(&rec, "seniority", p->seniority);
        rc |= set_opt_string(&rec, "industry", p->industry);
        rc |= set_opt_string(&rec, "company", p->company);
        rc |= set_opt_long(&rec, "company_size", p->company_size);
        rc |= set_opt_string(&rec, "country", p->country);
        rc |= set_opt_string(&rec, "region", p->region);
        rc |= set_opt_string(&rec, "persona", p->persona);
        rc |= set_opt_string(&rec, "segment", p->segment);
        rc |= set_opt_string(&rec, "owner", p->owner);
    } else {
        const lp_feedback_t *f = &ev->u.feedback;
        rc |= set_enum(&rec, "outcome", lp_feedback_outcome_name(f->outcome));
        rc |= set_enum(&rec, "reason", lp_reject_reason_name(f->reason));
        rc |= set_opt_string(&rec, "owner", f->owner);
    }
    return rc == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    char *texts[3] = {NULL, NULL, NULL};
    char *json = NULL, *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    char why[512];
    lp_event_t ev;
    avro_schema_t schema = NULL;
    avro_value_iface_t *iface = NULL;
    avro_value_t value;
    bool have_value = false;
    avro_file_writer_t writer = NULL;
    FILE *in = NULL;
    int status = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s SCHEMA_DIR IN.jsonl OUT.avro\n", argv[0]);
        return 2;
    }
    for (int k = 0; k < 3; k++) {
        if ((texts[k] = read_text(argv[1], schema_files[k])) == NULL) {
            goto err;
        }
    }
    json = calloc(1, 3 * 65536 + 8);
    if (json == NULL) {
        goto err;
    }
    snprintf(json, 3 * 65536 + 8, "[%s,%s,%s]", texts[0], texts[1], texts[2]);
    if (avro_schema_from_json_length(json, strlen(json), &schema) != 0 ||
        (iface = avro_generic_class_from_schema(schema)) == NULL ||
        avro_generic_value_new(iface, &value) != 0) {
        fprintf(stderr, "union schema: %s\n", avro_strerror());
        goto err;
    }
    have_value = true;
    in = fopen(argv[2], "r");
    if (in == NULL) {
        perror(argv[2]);
        goto err;
    }
    unlink(argv[3]); /* avro-c refuses to create over an existing file */
    if (avro_file_writer_create(argv[3], schema, &writer) != 0) {
        fprintf(stderr, "%s: %s\n", argv[3], avro_strerror());
        goto err;
    }
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (lp_json_decode_event(line, (size_t)len, &ev, why, sizeof(why)) != LP_OK) {
            fprintf(stderr, "%s:%ld: %s\n", argv[2], lineno, why);
            goto err;
        }
        if (set_event(&value, &ev) != 0 || avro_file_writer_append_value(writer, &value) != 0) {
            fprintf(stderr, "%s:%ld: %s\n", argv[2], lineno, avro_strerror());
            goto err;
        }
    }
    status = 0;
    printf("%s: %ld records\n", argv[3], lineno);
err:
    if (writer != NULL && avro_file_writer_close(writer) != 0) {
        status = 1;
    }
    if (in != NULL) {
        fclose(in);
    }
    free(line);
    if (have_value) {
        avro_value_decref(&value);
    }
    if (iface != NULL) {
        avro_value_iface_decref(iface);
    }
    if (schema != NULL) {
        avro_schema_decref(schema);
    }
    free(json);
    for (int k = 0; k < 3; k++) {
        free(texts[k]);
    }
    return status;
}
