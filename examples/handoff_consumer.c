/* handoff-consumer: what a CRM team writes to receive leadpulse hand-offs.
 *
 * Reads LeadQualified / LeadStale records from the output topics, checks the Confluent framing
 * (magic byte 0, 4-byte big-endian schema id), decodes the Avro body with the schemas loaded from
 * the .avsc files (avro-c generic API) and prints each hand-off as one JSON line. It uses only
 * librdkafka, avro-c and the schema files: nothing from leadpulse itself.
 *
 *   handoff-consumer --brokers HOST:PORT --schemas schemas/ --from-beginning --exit-when-idle 2000
 *
 * Duplicates (the same event_id after a worker crash) are printed as they arrive: de-duplicate by
 * event_id downstream (see examples/README-consumers.md). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <avro.h>
#include <librdkafka/rdkafka.h>

#define MAX_TOPICS 16
#define MAX_SCHEMAS 2

typedef struct {
    const char *file; /* LeadQualified.avsc, LeadStale.avsc */
    const char *type; /* printed as "type" */
    int32_t id;       /* Schema Registry id the worker writes (schema_id.* in its config) */
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool have_value;
} schema_t;

typedef struct {
    const char *brokers;
    const char *schema_dir;
    const char *topics[MAX_TOPICS];
    int ntopics;
    const char *group; /* NULL: --from-beginning, no group, all partitions assigned */
    int idle_ms;       /* exit after this long without a record; 0 = never */
    long count;        /* exit after this many records; 0 = never */
    bool raw;          /* print records undecoded (value as hex): for the dead-letter topic */
    schema_t schemas[MAX_SCHEMAS];
} opts_t;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON output ---- */

static void json_str(FILE *out, const char *s, size_t len) {
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void json_hex(FILE *out, const void *buf, size_t len) {
    const unsigned char *p = buf;
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        fprintf(out, "%02x", p[i]);
    }
    fputc('"', out);
}

/* Writes an Avro value as plain JSON: unions as their branch's value (null or the value), enums as
 * their symbol, doubles with 17 significant digits (they read back to the same bits). */
static int json_value(FILE *out, const avro_value_t *value) {
    switch (avro_value_get_type(value)) {
    case AVRO_NULL:
        fputs("null", out);
        return 0;
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(value, &b);
        fputs(b ? "true" : "false", out);
        return 0;
    }
    case AVRO_INT32: {
        int32_t i = 0;
        avro_value_get_int(value, &i);
        fprintf(out, "%" PRId32, i);
        return 0;
    }
    case AVRO_INT64: {
        int64_t l = 0;
        avro_value_get_long(value, &l);
        fprintf(out, "%" PRId64, l);
        return 0;
    }
    case AVRO_FLOAT: {
        float f = 0;
        avro_value_get_float(value, &f);
        fprintf(out, "%.9g", (double)f);
        return 0;
    }
    case AVRO_DOUBLE: {
        double d = 0;
        avro_value_get_double(value, &d);
        fprintf(out, "%.17g", d);
        return 0;
    }
    case AVRO_STRING: {
        const char *s = NULL;
        size_t size = 0;
        avro_value_get_string(value, &s, &size);
        json_str(out, s, size > 0 ? size - 1 : 0); /* size counts the NUL */
        return 0;
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        const void *b = NULL;
        size_t size = 0;
        if (avro_value_get_type(value) == AVRO_BYTES) {
            avro_value_get_bytes(value, &b, &size);
        } else {
            avro_value_get_fixed(value, &b, &size);
        }
        json_hex(out, b, size);
        return 0;
    }
    case AVRO_ENUM: {
        int sym = 0;
        avro_value_get_enum(value, &sym);
        const char *name = avro_schema_enum_get(avro_value_get_schema(value), sym);
        json_str(out, name ? name : "?", name ? strlen(name) : 1);
        return 0;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(value, &branch) != 0) {
            return -1;
        }
        return json_value(out, &branch);
    }
    case AVRO_ARRAY: {
        size_t n = 0;
        avro_value_get_size(value, &n);
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            if (avro_value_get_by_index(value, i, &item, NULL) != 0) {
                return -1;
            }
            if (i > 0) {
                fputc(',', out);
            }
            if (json_value(out, &item) != 0) {
                return -1;
            }
        }
        fputc(']', out);
        return 0;
    }
    case AVRO_RECORD: {
        size_t n = 0;
        avro_value_get_size(value, &n);
        fputc('{', out);
        for (size_t i = 0; i < n; i++) {
            avro_value_t field;
            const char *name = NULL;
            if (avro_value_get_by_index(value, i, &field, &name) != 0) {
                return -1;
            }
            if (i > 0) {
                fputc(',', out);
            }
            json_str(out, name, strlen(name));
            fputc(':', out);
            if (json_value(out, &field) != 0) {
                return -1;
            }
        }
        fputc('}', out);
        return 0;
    }
    default:
        fputs("null", out); /* maps never occur in the hand-off schemas */
        return 0;
    }
}

static void json_headers(FILE *out, const rd_kafka_message_t *msg) {
    rd_kafka_headers_t *hdrs = NULL;
    fputs("\"headers\":{", out);
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            if (i > 0) {
                fputc(',', out);
            }
            json_str(out, name, strlen(name));
            fputc(':', out);
            if (val == NULL) {
                fputs("null", out);
            } else {
                json_str(out, val, size);
            }
        }
    }
    fputc('}', out);
}

static void json_source(FILE *out, const rd_kafka_message_t *msg) {
    fputs("\"topic\":", out);
    const char *topic = rd_kafka_topic_name(msg->rkt);
    json_str(out, topic, strlen(topic));
    fprintf(out, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"key\":", msg->partition,
            msg->offset);
    if (msg->key == NULL) {
        fputs("null", out);
    } else {
        json_str(out, msg->key, msg->key_len);
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
    fprintf(out, ",\"kafka_ts\":%" PRId64 ",", ts);
    json_headers(out, msg);
}

/* ---- decoding ---- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        goto err;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        goto err;
    }
    buf[size] = '\0';
    *len = (size_t)size;
    fclose(f);
    return buf;
err:
    free(buf);
    fclose(f);
    return NULL;
}

static int load_schemas(opts_t *o) {
    for (int i = 0; i < MAX_SCHEMAS; i++) {
        schema_t *s = &o->schemas[i];
        char path[4096];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", o->schema_dir, s->file);
        char *json = read_file(path, &len);
        if (json == NULL) {
            fprintf(stderr, "handoff-consumer: cannot read %s: %s\n", path, strerror(errno));
            return -1;
        }
        int rc = avro_schema_from_json_length(json, len, &s->schema);
        free(json);
        if (rc != 0) {
            fprintf(stderr, "handoff-consumer: %s: %s\n", path, avro_strerror());
            return -1;
        }
        s->iface = avro_generic_class_from_schema(s->schema);
        if (s->iface == NULL || avro_generic_value_new(s->iface, &s->value) != 0) {
            fprintf(stderr, "handoff-consumer: %s: %s\n", path, avro_strerror());
            return -1;
        }
        s->have_value = true;
    }
    return 0;
}

static void free_schemas(opts_t *o) {
    for (int i = 0; i < MAX_SCHEMAS; i++) {
        schema_t *s = &o->schemas[i];
        if (s->have_value) {
            avro_value_decref(&s->value);
        }
        if (s->iface != NULL) {
            avro_value_iface_decref(s->iface);
        }
        if (s->schema != NULL) {
            avro_schema_decref(s->schema);
        }
    }
}

/* Decodes and prints one record. Returns 0, or -1 with a reason printed to stderr (the record is
 * then printed as an "error" line so nothing is silently skipped). */
static int handle(opts_t *o, const rd_kafka_message_t *msg) {
    const uint8_t *p = msg->payload;
    const char *why = NULL;
    schema_t *s = NULL;
    int32_t id = -1;

    if (o->raw) {
        fputc('{', stdout);
        json_source(stdout, msg);
        fputs(",\"value_hex\":", stdout);
        json_hex(stdout, msg->payload, msg->len);
        fputs("}\n", stdout);
        return 0;
    }
    if (p == NULL || msg->len < 5) {
        why = "shorter than the 5-byte Confluent header";
    } else if (p[0] != 0) {
        why = "magic byte is not 0 (not Confluent framing)";
    } else {
        id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) |
                       (uint32_t)p[4]);
        for (int i = 0; i < MAX_SCHEMAS; i++) {
            if (o->schemas[i].id == id) {
                s = &o->schemas[i];
            }
        }
        if (s == NULL) {
            why = "unknown schema id";
        }
    }
    if (s != NULL) {
        avro_reader_t reader = avro_reader_memory((const char *)p + 5, (int64_t)msg->len - 5);
        avro_value_reset(&s->value);
        if (reader == NULL || avro_value_read(reader, &s->value) != 0) {
            why = "Avro body does not decode with the schema";
        } else if (avro_skip(reader, 1) == 0) {
            why = "trailing bytes after the Avro body";
        }
        if (reader != NULL) {
            avro_reader_free(reader);
        }
    }
    if (why != NULL) {
        fprintf(stderr,
                "handoff-consumer: %s [%" PRId32 "] offset %" PRId64 ": %s (schema id %" PRId32
                ")\n",
                rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, why, id);
        fputs("{\"type\":\"error\",\"error\":", stdout);
        json_str(stdout, why, strlen(why));
        fputc(',', stdout);
        json_source(stdout, msg);
        fputs("}\n", stdout);
        return -1;
    }
    /* {"type":..., "schema_id":..., <every field of the record>, "topic":..., "headers":{...}} */
    fputs("{\"type\":", stdout);
    json_str(stdout, s->type, strlen(s->type));
    fprintf(stdout, ",\"schema_id\":%" PRId32 ",", id);
    char *body = NULL;
    size_t body_len = 0;
    FILE *mem = open_memstream(&body, &body_len);
    int rc = mem != NULL ? json_value(mem, &s->value) : -1;
    if (mem != NULL) {
        fclose(mem);
    }
    if (rc == 0 && body_len >= 2) {
        fwrite(body + 1, 1, body_len - 2, stdout); /* the record's fields, without its braces */
        fputc(',', stdout);
    }
    free(body);
    json_source(stdout, msg);
    fputs("}\n", stdout);
    return rc;
}

/* ---- Kafka ---- */

/* --from-beginning: assign every partition of the topics at the beginning (no group, no
 * commits), so the consumer sees the whole topic each time it runs. */
static int assign_all(rd_kafka_t *rk, const opts_t *o) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    int rc = -1;
    for (int t = 0; t < o->ntopics; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
            fprintf(stderr, "handoff-consumer: metadata of %s: %s\n", o->topics[t],
                    rd_kafka_err2str(err ? err : md->topics[0].err));
            if (md != NULL) {
                rd_kafka_metadata_destroy(md);
            }
            goto done;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
            rd_kafka_topic_partition_list_add(list, o->topics[t], md->topics[0].partitions[i].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_metadata_destroy(md);
    }
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "handoff-consumer: assign failed\n");
        goto done;
    }
    rc = 0;
done:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

static rd_kafka_t *make_consumer(const opts_t *o) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Without a group (--from-beginning) librdkafka still wants a group.id for its consumer
     * machinery; nothing is committed under it. */
    const char *group = o->group != NULL ? o->group : "handoff-consumer-nogroup";
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", o->group != NULL ? "true" : "false", errstr,
                          sizeof(errstr)) ||
        /* Only committed records of a transactional producer (the default would also be fine
         * for the idempotent producer the worker uses today). */
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof(errstr))) {
        fprintf(stderr, "handoff-consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "handoff-consumer: %s\n", errstr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: handoff-consumer --brokers HOST:PORT [--schemas DIR] [--topics T1,T2]\n"
            "                        [--group G | --from-beginning] [--exit-when-idle MS]\n"
            "                        [--count N] [--id-qualified N] [--id-stale N] [--raw]\n\n"
            "Prints each LeadQualified / LeadStale record as one JSON line on stdout.\n"
            "  --schemas DIR        folder with LeadQualified.avsc and LeadStale.avsc (schemas)\n"
            "  --topics LIST        comma-separated output topics (leads.mql,leads.stale)\n"
            "  --group G            consume as member of group G (commits its position)\n"
            "  --from-beginning     no group: read every partition from the start (default)\n"
            "  --exit-when-idle MS  exit when no record arrived for MS milliseconds\n"
            "  --count N            exit after N records\n"
            "  --id-qualified N     schema id of LeadQualified in the framing (default 4)\n"
            "  --id-stale N         schema id of LeadStale (default 5)\n"
            "  --raw                print records undecoded: key, headers, value as hex (for the\n"
            "                       dead-letter topic)\n"
            "Exit status: 0, or 1 if a record did not decode (it is printed as an error line).\n");
}

static int parse_args(int argc, char **argv, opts_t *o) {
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"schemas", required_argument, NULL, 's'},
        {"topics", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"from-beginning", no_argument, NULL, 'f'},
        {"exit-when-idle", required_argument, NULL, 'i'},
        {"count", required_argument, NULL, 'c'},
        {"id-qualified", required_argument, NULL, 'Q'},
        {"id-stale", required_argument, NULL, 'S'},
        {"raw", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static char topics_buf[1024];
    const char *topics = "leads.mql,leads.stale";
    int c;
    while ((c = getopt_long(argc, argv, "b:s:t:g:fi:c:Q:S:rh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->brokers = optarg;
            break;
        case 's':
            o->schema_dir = optarg;
            break;
        case 't':
            topics = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'f':
            o->group = NULL;
            break;
        case 'i':
            o->idle_ms = atoi(optarg);
            break;
        case 'c':
            o->count = atol(optarg);
            break;
        case 'Q':
            o->schemas[0].id = atoi(optarg);
            break;
        case 'S':
            o->schemas[1].id = atoi(optarg);
            break;
        case 'r':
            o->raw = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (o->brokers == NULL || strlen(topics) >= sizeof(topics_buf)) {
        usage(stderr);
        return -1;
    }
    strcpy(topics_buf, topics);
    for (char *save = NULL, *tok = strtok_r(topics_buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->ntopics == MAX_TOPICS) {
            fprintf(stderr, "handoff-consumer: at most %d topics\n", MAX_TOPICS);
            return -1;
        }
        o->topics[o->ntopics++] = tok;
    }
    return o->ntopics > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    opts_t o = {
        .schema_dir = "schemas",
        .schemas = {{.file = "LeadQualified.avsc", .type = "LeadQualified", .id = 4},
                    {.file = "LeadStale.avsc", .type = "LeadStale", .id = 5}},
    };
    rd_kafka_t *rk = NULL;
    int status = 2;
    long seen = 0, bad = 0;

    if (parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    if (!o.raw && load_schemas(&o) != 0) {
        goto done;
    }
    rk = make_consumer(&o);
    if (rk == NULL) {
        goto done;
    }
    if (o.group == NULL) {
        if (assign_all(rk, &o) != 0) {
            goto done;
        }
    } else {
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(o.ntopics);
        for (int t = 0; t < o.ntopics; t++) {
            rd_kafka_topic_partition_list_add(subs, o.topics[t], RD_KAFKA_PARTITION_UA);
        }
        rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "handoff-consumer: subscribe: %s\n", rd_kafka_err2str(err));
            goto done;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int64_t last = mono_ms();
    /* One line per hand-off as it arrives, also into a pipe or a container's log. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!stop_flag && (o.count == 0 || seen < o.count)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg == NULL) {
            if (o.idle_ms > 0 && mono_ms() - last >= o.idle_ms) {
                break;
            }
            continue;
        }
        last = mono_ms();
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "handoff-consumer: %s\n", rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        seen++;
        if (handle(&o, msg) != 0) {
            bad++;
        }
        rd_kafka_message_destroy(msg);
    }
    fflush(stdout);
    fprintf(stderr, "handoff-consumer: %ld records, %ld did not decode\n", seen, bad);
    status = bad > 0 ? 1 : 0;
done:
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free_schemas(&o);
    return status;
}
