/* The Schema Registry client's JSON reader (src/registry/registry_json.c) over arbitrary answers.
 * Properties: no crash, UB or read past the answer's NUL; a string it unescapes is never longer
 * than its escaped form, and escaping it again (as the client does for a schema it sends) and
 * unescaping gives it back; a joined message list fits its buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "leadpulse/common.h"
#include "registry/registry_json.h"

static void check_string(const char *p) {
    const char *end = NULL;
    char *s = lp_rj_string(p, &end);
    if (s == NULL) {
        return;
    }
    size_t n = strlen(s);
    if (end == NULL || end <= p || (size_t)(end - p) < n + 2) {
        fuzz_fail("unescaped string of %zu bytes from %td bytes of JSON", n, end - p);
    }
    size_t cap = n * 6 + 3;
    char *esc = malloc(cap + 2);
    if (esc == NULL) {
        free(s);
        return;
    }
    esc[0] = '"';
    size_t m = lp_json_escape(esc + 1, cap, s);
    esc[1 + m] = '"';
    esc[2 + m] = '\0';
    const char *end2 = NULL;
    char *back = lp_rj_string(esc, &end2);
    if (back == NULL || strcmp(back, s) != 0) {
        fuzz_fail("escape + unescape changed a string of %zu bytes", n);
    }
    free(back);
    free(esc);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const keys[] = {"id",      "schema",        "message", "error_code",
                                       "version", "is_compatible", "messages"};
    char *json = malloc(size + 1);
    if (json == NULL) {
        return 0;
    }
    memcpy(json, data, size);
    json[size] = '\0';
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        long long v;
        const char *p = lp_rj_member(json, keys[k]);
        if (p != NULL && (p < json || p > json + strlen(json))) {
            fuzz_fail("member %s points outside the answer", keys[k]);
        }
        if (p != NULL && *p == '"') {
            check_string(p);
        }
        (void)lp_rj_int(json, keys[k], &v);
    }
    char joined[64];
    lp_rj_strings_join(lp_rj_member(json, "messages"), joined, sizeof(joined));
    if (memchr(joined, '\0', sizeof(joined)) == NULL) {
        fuzz_fail("joined messages not terminated");
    }
    check_string(lp_rj_skip_ws(json));
    free(json);
    return 0;
}
