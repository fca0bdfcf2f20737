#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "leadpulse/common.h"

int lp_cli_parse_time(const char *s, int64_t *ms) {
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end != s && *end == '\0') {
        *ms = v;
        return LP_OK;
    }
    struct tm tm;
    int millis = 0;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL) {
        return LP_ERR;
    }
    if (*rest == '.') {
        int digits = 0;
        rest++;
        while (*rest >= '0' && *rest <= '9') {
            if (digits < 3) {
                millis = millis * 10 + (*rest - '0');
            }
            digits++;
            rest++;
        }
        while (digits < 3) {
            millis *= 10;
            digits++;
        }
    }
    if (strcmp(rest, "Z") != 0) {
        return LP_ERR;
    }
    *ms = (int64_t)timegm(&tm) * 1000 + millis;
    return LP_OK;
}
