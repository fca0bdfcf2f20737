/* leadpulse Redis store: parsing redis://[[user]:password@]host[:port][/db]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

static int hexval(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Copies src[0..len) into dst with %XX decoded; LP_ERR on a bad escape, a NUL or no room. */
static int decode(char *dst, size_t dst_size, const char *src, size_t len) {
    size_t o = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        int c = (unsigned char)src[i];

        if (c == '%') {
            int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(src[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                return LP_ERR;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= dst_size) {
            return LP_ERR;
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return LP_OK;
}

/* Parses a decimal in [min, max] from s[0..len). */
static int parse_int(const char *s, size_t len, long min, long max, int *out) {
    long v = 0;
    size_t i;

    if (len == 0 || len > 10) {
        return LP_ERR;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return LP_ERR;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max) {
        return LP_ERR;
    }
    *out = (int)v;
    return LP_OK;
}

int lp_store_redis_url_parse(const char *url, lp_store_redis_url_t *out, char *errstr,
                             size_t errstr_size) {
    static const char scheme[] = "redis://";
    const char *p;
    const char *at;
    const char *slash;
    const char *hostend;
    const char *port;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        /* Never echo the url: it may hold a password. */
        snprintf(errstr, errstr_size,
                 "redis url must start with redis:// (rediss:// and unix "
                 "sockets are not supported)");
        return LP_ERR;
    }
    p = url + sizeof(scheme) - 1;
    slash = strchr(p, '/');
    if (slash == NULL) {
        slash = p + strlen(p);
    }
    /* The last '@' before the path ends the credentials (a raw '@' may sit in a password). */
    at = NULL;
    for (const char *q = p; q < slash; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));

        if (colon == NULL) {
            /* redis://password@host, as many clients accept */
            if (decode(out->password, sizeof(out->password), p, (size_t)(at - p)) != LP_OK) {
                goto bad_credentials;
            }
        } else if (decode(out->user, sizeof(out->user), p, (size_t)(colon - p)) != LP_OK ||
                   decode(out->password, sizeof(out->password), colon + 1,
                          (size_t)(at - colon - 1)) != LP_OK) {
            goto bad_credentials;
        }
        p = at + 1;
    }
    if (*p == '[') {
        hostend = memchr(p, ']', (size_t)(slash - p));
        if (hostend == NULL || hostend == p + 1) {
            snprintf(errstr, errstr_size, "redis url: unterminated or empty [ipv6] host");
            return LP_ERR;
        }
        if ((size_t)(hostend - p - 1) >= sizeof(out->host)) {
            goto bad_host;
        }
        memcpy(out->host, p + 1, (size_t)(hostend - p - 1));
        hostend++;
        if (hostend < slash && *hostend != ':') {
            goto bad_host;
        }
    } else {
        hostend = memchr(p, ':', (size_t)(slash - p));
        if (hostend == NULL) {
            hostend = slash;
        }
        if (hostend == p || (size_t)(hostend - p) >= sizeof(out->host)) {
            goto bad_host;
        }
        memcpy(out->host, p, (size_t)(hostend - p));
    }
    if (hostend < slash) {
        port = hostend + 1;
        if (parse_int(port, (size_t)(slash - port), 1, 65535, &out->port) != LP_OK) {
            snprintf(errstr, errstr_size, "redis url: port must be 1..65535");
            return LP_ERR;
        }
    }
    if (*slash == '/' && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 1000000, &out->db) != LP_OK) {
        snprintf(errstr, errstr_size, "redis url: database after '/' must be a number");
        return LP_ERR;
    }
    return LP_OK;
bad_credentials:
    snprintf(errstr, errstr_size,
             "redis url: bad user or password (escape special characters "
             "as %%XX)");
    return LP_ERR;
bad_host:
    snprintf(errstr, errstr_size, "redis url: missing or bad host");
    return LP_ERR;
}

int lp_store_redis_seeds_parse(const char *urls, lp_store_redis_url_t *out, int max, char *errstr,
                               size_t errstr_size) {
    int n = 0;

    for (const char *p = urls; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *next = p[len] == ',' ? p + len + 1 : NULL;
        char one[1024];

        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (n == max || len >= sizeof(one)) {
            snprintf(errstr, errstr_size, "redis cluster: %s",
                     n == max ? "too many seed URLs" : "a seed URL too long");
            return -1;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (lp_store_redis_url_parse(one, &out[n], errstr, errstr_size) != LP_OK) {
            return -1;
        }
        if (out[n].db != 0) {
            snprintf(errstr, errstr_size,
                     "redis cluster: seed URL %d names database %d; a Redis Cluster has "
                     "database 0 only",
                     n + 1, out[n].db);
            return -1;
        }
        n++;
        p = next;
    }
    if (n == 0) {
        snprintf(errstr, errstr_size, "redis cluster: no seed URL");
        return -1;
    }
    return n;
}
