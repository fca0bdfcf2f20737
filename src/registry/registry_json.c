/* A small reader of the Schema Registry's JSON answers ({"id":N}, {"schema":"..."},
 * {"error_code":N,"message":"..."}, {"is_compatible":false,"messages":[...]}): members of the
 * top-level object, strings unescaped. Input is NUL-terminated and untrusted: malformed JSON gives
 * NULL / LP_ERR, never a read past the NUL (tests/fuzz/fuzz_registry_json.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadpulse/common.h"
#include "registry/registry_json.h"

const char *lp_rj_skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

/* Appends the UTF-8 form of code point cp. */
static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return LP_ERR;
        }
        *v = *v << 4 | (uint32_t)d;
    }
    return LP_OK;
}

/* A JSON string starting at p (at its opening quote), unescaped into a new allocation; *end is
 * set past the closing quote. NULL when malformed. */
char *lp_rj_string(const char *p, const char **end) {
    if (*p != '"') {
        return NULL;
    }
    p++;
    size_t cap = strlen(p) + 1;
    char *out = malloc(cap);
    size_t n = 0;
    if (out == NULL) {
        return NULL;
    }
    while (*p != '"') {
        if (*p == '\0' || (unsigned char)*p < 0x20) {
            free(out);
            return NULL;
        }
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        uint32_t cp;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            out[n++] = *p;
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u':
            if (hex4(p + 1, &cp) != LP_OK) {
                free(out);
                return NULL;
            }
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                uint32_t lo;
                if (hex4(p + 3, &lo) == LP_OK && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            n += put_utf8(out + n, cp);
            break;
        default:
            free(out);
            return NULL;
        }
        p++;
    }
    out[n] = '\0';
    *end = p + 1;
    return out;
}

/* The value of member key of the top-level object in json: a pointer to its first character,
 * or NULL. Nested objects and arrays are skipped, strings are skipped escape-aware. */
const char *lp_rj_member(const char *json, const char *key) {
    const char *p = lp_rj_skip_ws(json);
    if (*p != '{') {
        return NULL;
    }
    int depth = 0;
    size_t klen = strlen(key);
    for (; *p != '\0'; p++) {
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (*p == '"') {
            const char *start = p + 1;
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0') {
                    p++;
                }
            }
            if (*p == '\0') {
                return NULL;
            }
            const char *after = lp_rj_skip_ws(p + 1);
            if (depth == 1 && *after == ':' && (size_t)(p - start) == klen &&
                memcmp(start, key, klen) == 0) {
                return lp_rj_skip_ws(after + 1);
            }
        }
    }
    return NULL;
}

int lp_rj_int(const char *json, const char *key, long long *v) {
    const char *p = lp_rj_member(json, key);
    char *end;
    if (p == NULL) {
        return LP_ERR;
    }
    *v = strtoll(p, &end, 10);
    return end != p ? LP_OK : LP_ERR;
}

/* The strings of the array at p ('['), joined with "; " into out. */
void lp_rj_strings_join(const char *p, char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    if (p == NULL || *p != '[') {
        return;
    }
    p = lp_rj_skip_ws(p + 1);
    while (*p == '"') {
        const char *end;
        char *s = lp_rj_string(p, &end);
        if (s == NULL) {
            return;
        }
        int w = snprintf(out + n, size - n, "%s%s", n > 0 ? "; " : "", s);
        free(s);
        if (w < 0 || (size_t)w >= size - n) {
            return;
        }
        n += (size_t)w;
        p = lp_rj_skip_ws(end);
        if (*p != ',') {
            return;
        }
        p = lp_rj_skip_ws(p + 1);
    }
}
