/* RFC 3339 times ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.250+01:00") to epoch milliseconds.
 */
#include <stdbool.h>
#include <string.h>

#include "codec/json_internal.h"

static bool digits(const char *s, size_t n, int *out) {
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

int lp_json_parse_rfc3339(const char *s, size_t len, int64_t *ts_ms, const char **why) {
    int year, month, day, hour, minute, second;
    int ms = 0;
    int offset_min = 0;
    size_t p = 19;

    if (len < 20 || !digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) ||
        s[7] != '-' || !digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &hour) || s[13] != ':' || !digits(s + 14, 2, &minute) || s[16] != ':' ||
        !digits(s + 17, 2, &second)) {
        *why = "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset";
        return LP_ERR;
    }
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) {
        *why = "no such date";
        return LP_ERR;
    }
    if (hour > 23 || minute > 59 || second > 59) {
        *why = second == 60 ? "leap seconds are not supported" : "no such time of day";
        return LP_ERR;
    }
    if (s[p] == '.') {
        int ndigits = 0;
        p++;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            /* Sub-millisecond digits are dropped: event times are milliseconds. */
            if (ndigits < 3) {
                ms = ms * 10 + (s[p] - '0');
            }
            ndigits++;
            p++;
        }
        if (ndigits == 0 || ndigits > 9) {
            *why = "fraction of a second needs 1 to 9 digits";
            return LP_ERR;
        }
        for (int i = ndigits; i < 3; i++) {
            ms *= 10;
        }
    }
    if (p < len && (s[p] == 'Z' || s[p] == 'z') && p + 1 == len) {
        offset_min = 0;
    } else if (p + 6 == len && (s[p] == '+' || s[p] == '-') && s[p + 3] == ':') {
        int oh, om;
        if (!digits(s + p + 1, 2, &oh) || !digits(s + p + 4, 2, &om) || oh > 23 || om > 59) {
            *why = "bad UTC offset";
            return LP_ERR;
        }
        offset_min = (oh * 60 + om) * (s[p] == '-' ? -1 : 1);
    } else {
        *why = "expected Z or an offset like +01:00 at the end";
        return LP_ERR;
    }
    *ts_ms = ((days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) -
              (int64_t)offset_min * 60) *
                 1000 +
             ms;
    return LP_OK;
}
