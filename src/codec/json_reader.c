/* A strict JSON reader (RFC 8259): no comments, no trailing commas, no leading zeros, no raw
 * control characters, valid UTF-8 and paired surrogates only, nesting at most 8 deep. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json_internal.h"

int lp_json_fail(lp_json_rd_t *rd, const char *fmt, ...) {
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rd->key != NULL && rd->key[0] != '\0') {
        return lp_codec_err(rd->errstr, rd->errstr_size, "key \"%s\": %s at byte %zu", rd->key, msg,
                            rd->pos);
    }
    return lp_codec_err(rd->errstr, rd->errstr_size, "%s at byte %zu", msg, rd->pos);
}

char lp_json_peek(lp_json_rd_t *rd) {
    while (rd->pos < rd->len) {
        char c = rd->buf[rd->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return c;
        }
        rd->pos++;
    }
    return 0;
}

static int expect(lp_json_rd_t *rd, char c) {
    if (lp_json_peek(rd) != c) {
        if (rd->pos >= rd->len) {
            return lp_json_fail(rd, "unexpected end of input, expected '%c'", c);
        }
        return lp_json_fail(rd, "expected '%c'", c);
    }
    rd->pos++;
    return LP_OK;
}

static int hex4(lp_json_rd_t *rd, uint32_t *out) {
    uint32_t v = 0;

    if (rd->len - rd->pos < 4) {
        return lp_json_fail(rd, "truncated \\u escape");
    }
    for (int i = 0; i < 4; i++) {
        char c = rd->buf[rd->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        } else {
            return lp_json_fail(rd, "bad \\u escape");
        }
    }
    rd->pos += 4;
    *out = v;
    return LP_OK;
}

/* Decodes a string token; writes at most dst_size - 1 bytes but counts them all in *out_len. */
static int parse_string(lp_json_rd_t *rd, char *dst, size_t dst_size, size_t *out_len) {
    size_t n = 0;

#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (dst != NULL && n + 1 < dst_size) {                                                     \
            dst[n] = (char)(ch);                                                                   \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)

    if (expect(rd, '"') != LP_OK) {
        return LP_ERR;
    }
    for (;;) {
        uint8_t c;
        if (rd->pos >= rd->len) {
            return lp_json_fail(rd, "unterminated string");
        }
        c = (uint8_t)rd->buf[rd->pos];
        if (c == '"') {
            rd->pos++;
            break;
        }
        if (c < 0x20) {
            return lp_json_fail(rd, "control character in string");
        }
        if (c >= 0x80) {
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            size_t avail = rd->len - rd->pos < need ? rd->len - rd->pos : need;
            if (lp_codec_utf8_check((const uint8_t *)rd->buf + rd->pos, avail) != need ||
                avail != need) {
                return lp_json_fail(rd, "invalid UTF-8 in string");
            }
            for (size_t k = 0; k < need; k++) {
                PUT(rd->buf[rd->pos + k]);
            }
            rd->pos += need;
            continue;
        }
        if (c != '\\') {
            PUT(c);
            rd->pos++;
            continue;
        }
        rd->pos++;
        if (rd->pos >= rd->len) {
            return lp_json_fail(rd, "unterminated string");
        }
        c = (uint8_t)rd->buf[rd->pos++];
        switch (c) {
        case '"':
            PUT('"');
            break;
        case '\\':
            PUT('\\');
            break;
        case '/':
            PUT('/');
            break;
        case 'b':
            PUT('\b');
            break;
        case 'f':
            PUT('\f');
            break;
        case 'n':
            PUT('\n');
            break;
        case 'r':
            PUT('\r');
            break;
        case 't':
            PUT('\t');
            break;
        case 'u': {
            uint32_t cp;
            uint32_t lo;
            if (hex4(rd, &cp) != LP_OK) {
                return LP_ERR;
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return lp_json_fail(rd, "lone low surrogate in \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (rd->len - rd->pos < 2 || rd->buf[rd->pos] != '\\' ||
                    rd->buf[rd->pos + 1] != 'u') {
                    return lp_json_fail(rd, "lone high surrogate in \\u escape");
                }
                rd->pos += 2;
                if (hex4(rd, &lo) != LP_OK) {
                    return LP_ERR;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    return lp_json_fail(rd, "lone high surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) {
                return lp_json_fail(rd, "NUL character (\\u0000) in string");
            }
            if (cp < 0x80) {
                PUT(cp);
            } else if (cp < 0x800) {
                PUT(0xC0 | (cp >> 6));
                PUT(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                PUT(0xE0 | (cp >> 12));
                PUT(0x80 | ((cp >> 6) & 0x3F));
                PUT(0x80 | (cp & 0x3F));
            } else {
                PUT(0xF0 | (cp >> 18));
                PUT(0x80 | ((cp >> 12) & 0x3F));
                PUT(0x80 | ((cp >> 6) & 0x3F));
                PUT(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            rd->pos--;
            return lp_json_fail(rd, "bad escape \\%c", c >= 0x20 && c < 0x7F ? c : '?');
        }
    }
#undef PUT
    if (dst != NULL && dst_size > 0) {
        dst[n < dst_size ? n : dst_size - 1] = '\0';
    }
    *out_len = n;
    return LP_OK;
}

int lp_json_string(lp_json_rd_t *rd, char *dst, size_t dst_size) {
    size_t start;
    size_t n;

    if (lp_json_peek(rd) != '"') {
        return lp_json_fail(rd, "expected a string");
    }
    start = rd->pos;
    if (parse_string(rd, dst, dst_size, &n) != LP_OK) {
        return LP_ERR;
    }
    if (dst != NULL && n >= dst_size) {
        rd->pos = start;
        return lp_json_fail(rd, "string of %zu bytes exceeds the limit of %zu", n, dst_size - 1);
    }
    return LP_OK;
}

int lp_json_number(lp_json_rd_t *rd, lp_json_num_t *num) {
    char tmp[64];
    size_t start;
    size_t p;
    bool neg = false;
    uint64_t mag = 0;

    lp_json_peek(rd);
    start = p = rd->pos;
    memset(num, 0, sizeof(*num));
    num->is_int = true;
    if (p < rd->len && rd->buf[p] == '-') {
        neg = true;
        p++;
    }
    if (p >= rd->len || rd->buf[p] < '0' || rd->buf[p] > '9') {
        return lp_json_fail(rd, "expected a number");
    }
    if (rd->buf[p] == '0' && p + 1 < rd->len && rd->buf[p + 1] >= '0' && rd->buf[p + 1] <= '9') {
        return lp_json_fail(rd, "leading zero in number");
    }
    while (p < rd->len && rd->buf[p] >= '0' && rd->buf[p] <= '9') {
        uint64_t d = (uint64_t)(rd->buf[p] - '0');
        if (mag > (UINT64_MAX - d) / 10) {
            num->overflow = true;
        } else {
            mag = mag * 10 + d;
        }
        p++;
    }
    if (p < rd->len && rd->buf[p] == '.') {
        num->is_int = false;
        p++;
        if (p >= rd->len || rd->buf[p] < '0' || rd->buf[p] > '9') {
            rd->pos = p;
            return lp_json_fail(rd, "digit expected after '.'");
        }
        while (p < rd->len && rd->buf[p] >= '0' && rd->buf[p] <= '9') {
            p++;
        }
    }
    if (p < rd->len && (rd->buf[p] == 'e' || rd->buf[p] == 'E')) {
        num->is_int = false;
        p++;
        if (p < rd->len && (rd->buf[p] == '+' || rd->buf[p] == '-')) {
            p++;
        }
        if (p >= rd->len || rd->buf[p] < '0' || rd->buf[p] > '9') {
            rd->pos = p;
            return lp_json_fail(rd, "digit expected in exponent");
        }
        while (p < rd->len && rd->buf[p] >= '0' && rd->buf[p] <= '9') {
            p++;
        }
    }
    if (num->is_int && !num->overflow) {
        if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX) {
            num->overflow = true;
        } else {
            num->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        }
    }
    if (p - start >= sizeof(tmp)) {
        return lp_json_fail(rd, "number longer than %zu characters", sizeof(tmp) - 1);
    }
    memcpy(tmp, rd->buf + start, p - start);
    tmp[p - start] = '\0';
    errno = 0;
    num->d = strtod(tmp, NULL);
    rd->pos = p;
    return LP_OK;
}

static int literal(lp_json_rd_t *rd, const char *word) {
    size_t n = strlen(word);

    if (rd->len - rd->pos < n || memcmp(rd->buf + rd->pos, word, n) != 0) {
        return LP_ERR;
    }
    rd->pos += n;
    return LP_OK;
}

int lp_json_null(lp_json_rd_t *rd) {
    if (lp_json_peek(rd) == 'n') {
        if (literal(rd, "null") != LP_OK) {
            return lp_json_fail(rd, "invalid literal");
        }
        return 1;
    }
    return 0;
}

int lp_json_bool(lp_json_rd_t *rd, bool *out) {
    char c = lp_json_peek(rd);

    if (c == 't' && literal(rd, "true") == LP_OK) {
        *out = true;
        return LP_OK;
    }
    if (c == 'f' && literal(rd, "false") == LP_OK) {
        *out = false;
        return LP_OK;
    }
    return lp_json_fail(rd, "expected true or false");
}

static int open_container(lp_json_rd_t *rd, char open, const char *what) {
    if (lp_json_peek(rd) != open) {
        return lp_json_fail(rd, "expected %s", what);
    }
    if (rd->depth >= LP_JSON_MAX_DEPTH) {
        return lp_json_fail(rd, "nesting deeper than %d", LP_JSON_MAX_DEPTH);
    }
    rd->depth++;
    rd->pos++;
    return LP_OK;
}

/* Shared by objects and arrays: at a closer -> done; after the first element a ',' is required. */
static int next_element(lp_json_rd_t *rd, int *index, char close, bool *done) {
    char c = lp_json_peek(rd);

    *done = false;
    if (c == close) {
        rd->pos++;
        rd->depth--;
        *done = true;
        return LP_OK;
    }
    if (*index > 0) {
        if (c != ',') {
            if (rd->pos >= rd->len) {
                return lp_json_fail(rd, "unexpected end of input");
            }
            return lp_json_fail(rd, "expected ',' or '%c'", close);
        }
        rd->pos++;
    }
    (*index)++;
    return LP_OK;
}

int lp_json_object_begin(lp_json_rd_t *rd) {
    return open_container(rd, '{', "an object");
}

int lp_json_object_next(lp_json_rd_t *rd, int *index, char key[LP_JSON_KEY_MAX + 1], bool *done) {
    size_t n;

    if (next_element(rd, index, '}', done) != LP_OK || *done) {
        return *done ? LP_OK : LP_ERR;
    }
    if (lp_json_peek(rd) != '"') {
        return lp_json_fail(rd, rd->pos >= rd->len ? "unexpected end of input"
                                                   : "expected a key string");
    }
    if (parse_string(rd, key, LP_JSON_KEY_MAX + 1, &n) != LP_OK) {
        return LP_ERR;
    }
    if (n > LP_JSON_KEY_MAX) {
        key[0] = '\0'; /* no known key is that long: treated as unknown */
    }
    return expect(rd, ':');
}

int lp_json_array_begin(lp_json_rd_t *rd) {
    return open_container(rd, '[', "an array");
}

int lp_json_array_next(lp_json_rd_t *rd, int *index, bool *done) {
    if (next_element(rd, index, ']', done) != LP_OK) {
        return LP_ERR;
    }
    if (!*done && lp_json_peek(rd) == 0) {
        return lp_json_fail(rd, "unexpected end of input");
    }
    return LP_OK;
}

int lp_json_skip(lp_json_rd_t *rd) {
    char c = lp_json_peek(rd);
    bool done = false;
    int index = 0;
    char key[LP_JSON_KEY_MAX + 1];
    lp_json_num_t num;
    bool b;

    switch (c) {
    case '"':
        return lp_json_string(rd, NULL, 0);
    case '{':
        if (lp_json_object_begin(rd) != LP_OK) {
            return LP_ERR;
        }
        for (;;) {
            if (lp_json_object_next(rd, &index, key, &done) != LP_OK) {
                return LP_ERR;
            }
            if (done) {
                return LP_OK;
            }
            if (lp_json_skip(rd) != LP_OK) {
                return LP_ERR;
            }
        }
    case '[':
        if (lp_json_array_begin(rd) != LP_OK) {
            return LP_ERR;
        }
        for (;;) {
            if (lp_json_array_next(rd, &index, &done) != LP_OK) {
                return LP_ERR;
            }
            if (done) {
                return LP_OK;
            }
            if (lp_json_skip(rd) != LP_OK) {
                return LP_ERR;
            }
        }
    case 't':
    case 'f':
        return lp_json_bool(rd, &b);
    case 'n':
        return lp_json_null(rd) == 1 ? LP_OK : LP_ERR;
    case 0:
        return lp_json_fail(rd, "unexpected end of input");
    default:
        return lp_json_number(rd, &num);
    }
}

int lp_json_end(lp_json_rd_t *rd) {
    rd->key = "";
    if (lp_json_peek(rd) != 0) {
        return lp_json_fail(rd, "trailing characters after the object");
    }
    return LP_OK;
}

int lp_json_int(lp_json_rd_t *rd, int64_t min, int64_t max, int64_t *out) {
    lp_json_num_t num;
    size_t start;

    if (lp_json_peek(rd) == '"' || lp_json_peek(rd) == 't' || lp_json_peek(rd) == 'f' ||
        lp_json_peek(rd) == '{' || lp_json_peek(rd) == '[' || lp_json_peek(rd) == 'n') {
        return lp_json_fail(rd, "expected an integer");
    }
    start = rd->pos;
    if (lp_json_number(rd, &num) != LP_OK) {
        return LP_ERR;
    }
    if (!num.is_int) {
        rd->pos = start;
        return lp_json_fail(rd, "expected an integer, got a fraction or exponent");
    }
    if (num.overflow || num.i < min || num.i > max) {
        rd->pos = start;
        return lp_json_fail(rd, "integer out of range [%lld, %lld]", (long long)min,
                            (long long)max);
    }
    *out = num.i;
    return LP_OK;
}

int lp_json_double(lp_json_rd_t *rd, double *out) {
    lp_json_num_t num;
    size_t start;
    char c = lp_json_peek(rd);

    if (c != '-' && (c < '0' || c > '9')) {
        return lp_json_fail(rd, "expected a number");
    }
    start = rd->pos;
    if (lp_json_number(rd, &num) != LP_OK) {
        return LP_ERR;
    }
    if (num.d != num.d || num.d > 1.7976931348623157e308 || num.d < -1.7976931348623157e308) {
        rd->pos = start;
        return lp_json_fail(rd, "number out of range");
    }
    *out = num.d;
    return LP_OK;
}

int lp_json_time(lp_json_rd_t *rd, int64_t *ts_ms) {
    char text[64];
    const char *why = NULL;
    size_t start;

    if (lp_json_peek(rd) != '"') {
        return lp_json_int(rd, LP_CODEC_TS_MIN, LP_CODEC_TS_MAX, ts_ms);
    }
    start = rd->pos;
    if (lp_json_string(rd, text, sizeof(text)) != LP_OK) {
        return LP_ERR;
    }
    if (lp_json_parse_rfc3339(text, strlen(text), ts_ms, &why) != LP_OK) {
        rd->pos = start;
        return lp_json_fail(rd, "not an RFC 3339 time (%s)", why);
    }
    if (*ts_ms < LP_CODEC_TS_MIN || *ts_ms > LP_CODEC_TS_MAX) {
        rd->pos = start;
        return lp_json_fail(rd, "time before 1970");
    }
    return LP_OK;
}
