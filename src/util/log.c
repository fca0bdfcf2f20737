#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "leadpulse/common.h"

int lp_log_level = LP_LOG_INFO;

void lp_log_write(lp_log_level_t level, const char *tag, const char *fmt, ...) {
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    struct timespec ts;
    struct tm tm;
    char when[32];
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s [%s] ", when, ts.tv_nsec / 1000000L, names[level], tag);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
