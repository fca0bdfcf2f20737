#include <string.h>

#include "leadpulse/common.h"

int lp_strlcpy_checked(char *dst, size_t dst_size, const char *src, size_t src_len) {
    if (src_len >= dst_size) {
        return LP_ERR;
    }
    memcpy(dst, src, src_len);
    dst[src_len] = '\0';
    return LP_OK;
}
