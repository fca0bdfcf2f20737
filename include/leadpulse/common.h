/* leadpulse: common status codes, limits and the logging macro. */
#ifndef LEADPULSE_COMMON_H
#define LEADPULSE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define LP_OK 0
#define LP_ERR (-1)

/* Per-message outcome (Fluent Bit's OK/RETRY/ERROR). */
typedef enum {
    LP_APPLIED = 0,     /* applied (or ignored as a duplicate): the offset may advance */
    LP_RETRY = 1,       /* transient failure: keep the offset, try again later */
    LP_DEAD_LETTER = 2, /* permanent: send the original bytes to the dead-letter topic */
} lp_outcome_t;

/* How a topic or file is encoded: Avro (framing per lp_framing_t) or JSON lines. */
typedef enum { LP_FORMAT_AVRO = 0, LP_FORMAT_JSON = 1 } lp_format_t;

/* Fixed limits. Inputs longer than these are rejected by the decoders, never truncated. */
#define LP_ID_MAX 64           /* lead id, event id (bytes, without the NUL) */
#define LP_NAME_MAX 32         /* activity type, enum-like names */
#define LP_STR_MAX 128         /* profile strings: email, title, company, ... */
#define LP_URL_MAX 256         /* engagement URL */
#define LP_MAX_ACTIVITIES 32   /* activity types a rules file may define */
#define LP_PARTITIONS_MAX 4096 /* input partitions 0..4095: worker, engine and store alike */
/* The store's partitions of stage 2 (account qualification): account partition q of the members
 * topic is store partition LP_ACCOUNT_PARTITION_BASE + q, whose keys carry the hash tag {a<q>}
 * (docs/redis-layout.md). */
#define LP_ACCOUNT_PARTITION_BASE LP_PARTITIONS_MAX
#define LP_STORE_PARTITIONS_MAX (2 * LP_PARTITIONS_MAX)
#define LP_TOP_N 5         /* top contributing activities in an explanation */
#define LP_EVENT_ID_HEX 32 /* emitted event ids: 128 bits as lowercase hex */
#define LP_ERRSTR 512      /* recommended size of errstr buffers */

/* Logging: one level-checked macro with a component tag. */
typedef enum {
    LP_LOG_ERROR = 0,
    LP_LOG_WARN = 1,
    LP_LOG_INFO = 2,
    LP_LOG_DEBUG = 3
} lp_log_level_t;
extern int lp_log_level;
/* 0: text lines; 1: one JSON object per line (ts, level, component, msg and the context fields). */
extern int lp_log_json;
void lp_log_write(lp_log_level_t level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Context fields of this thread's log lines (JSON form): the partition, topic and offset being
 * worked on; -1 / NULL = none. lp_log_context(-1, NULL, -1) clears them. */
void lp_log_context(int32_t partition, const char *topic, int64_t offset);
/* The lead id field of this thread's log lines (JSON form); NULL = none. The pointer is kept:
 * clear it before the string goes away. */
void lp_log_lead(const char *lead_id);

/* A rate limit for a log line that bad input can repeat: at most per_sec lines a second. */
typedef struct {
    int64_t sec;
    int n;
    uint64_t held; /* lines held back since the last one let through */
} lp_log_limit_t;
/* Whether a line may be written now; when it may, *held_back says how many were held back
 * before it (to mention in the line). */
int lp_log_limit(lp_log_limit_t *lim, int per_sec, uint64_t *held_back);

/* s as the body of a JSON string (quotes, backslashes and control characters escaped; cut to
 * fit size, NUL-terminated). Returns the length written. */
size_t lp_json_escape(char *out, size_t size, const char *s);
#define LP_LOG(level, tag, ...)                                                                    \
    do {                                                                                           \
        if ((int)(level) <= lp_log_level) {                                                        \
            lp_log_write((level), (tag), __VA_ARGS__);                                             \
        }                                                                                          \
    } while (0)

/* Copies src into dst (size dst_size) if it fits. Returns LP_OK, or LP_ERR if too long. */
int lp_strlcpy_checked(char *dst, size_t dst_size, const char *src, size_t src_len);

#endif
