#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "leadpulse/common.h"

int lp_log_level = LP_LOG_INFO;
int lp_log_json = 0;

static _Thread_local int32_t ctx_partition = -1;
static _Thread_local const char *ctx_topic;
static _Thread_local int64_t ctx_offset = -1;
static _Thread_local const char *ctx_lead;

void lp_log_context(int32_t partition, const char *topic, int64_t offset) {
    ctx_partition = partition;
    ctx_topic = topic;
    ctx_offset = offset;
}

void lp_log_lead(const char *lead_id) {
    ctx_lead = lead_id;
}

int lp_log_limit(lp_log_limit_t *lim, int per_sec, uint64_t *held_back) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if ((int64_t)ts.tv_sec != lim->sec) {
        lim->sec = (int64_t)ts.tv_sec;
        lim->n = 0;
    }
    if (lim->n >= per_sec) {
        lim->held++;
        return 0;
    }
    lim->n++;
    *held_back = lim->held;
    lim->held = 0;
    return 1;
}

size_t lp_json_escape(char *out, size_t size, const char *s) {
    size_t j = 0;
    for (; *s != '\0' && j + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[j++] = '\\';
            out[j++] = (char)c;
        } else if (c < 0x20) {
            j += (size_t)snprintf(out + j, size - j, "\\u%04x", c);
        } else {
            out[j++] = (char)c;
        }
    }
    out[j] = '\0';
    return j;
}

void lp_log_write(lp_log_level_t level, const char *tag, const char *fmt, ...) {
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    static const char *lower[] = {"error", "warn", "info", "debug"};
    struct timespec ts;
    struct tm tm;
    char when[32], msg[2048], line[4608];
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One write per line, so that lines of several threads never interleave. */
    if (!lp_log_json) {
        snprintf(line, sizeof(line), "%s.%03ldZ %-5s [%s] %s\n", when, ts.tv_nsec / 1000000L,
                 names[level], tag, msg);
    } else {
        char emsg[4096], etag[128], etopic[512];
        lp_json_escape(emsg, sizeof(emsg), msg);
        lp_json_escape(etag, sizeof(etag), tag);
        size_t n = (size_t)snprintf(line, sizeof(line),
                                    "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\","
                                    "\"msg\":\"%s\"",
                                    when, ts.tv_nsec / 1000000L, lower[level], etag, emsg);
        if (n < sizeof(line) && ctx_partition >= 0) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"partition\":%d",
                                  (int)ctx_partition);
        }
        if (n < sizeof(line) && ctx_topic != NULL) {
            lp_json_escape(etopic, sizeof(etopic), ctx_topic);
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"topic\":\"%s\"", etopic);
        }
        if (n < sizeof(line) && ctx_offset >= 0) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"offset\":%lld",
                                  (long long)ctx_offset);
        }
        if (n < sizeof(line) && ctx_lead != NULL) {
            char elead[LP_ID_MAX * 6 + 1];
            lp_json_escape(elead, sizeof(elead), ctx_lead);
            n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"lead_id\":\"%s\"", elead);
        }
        if (n < sizeof(line)) {
            snprintf(line + n, sizeof(line) - n, "}\n");
        }
    }
    fputs(line, stderr);
}
