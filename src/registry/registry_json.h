/* The registry client's JSON reader (registry_json.c). */
#ifndef LP_REGISTRY_JSON_H
#define LP_REGISTRY_JSON_H

#include <stddef.h>

const char *lp_rj_skip_ws(const char *p);

/* A JSON string starting at p (at its opening quote), unescaped into a new allocation (free it);
 * *end is set past the closing quote. NULL when malformed. */
char *lp_rj_string(const char *p, const char **end);

/* The value of member key of the top-level object in json: a pointer to its first character, or
 * NULL. Nested objects and arrays are skipped, strings are skipped escape-aware. */
const char *lp_rj_member(const char *json, const char *key);

/* The integer value of member key. LP_OK or LP_ERR (absent, not a number). */
int lp_rj_int(const char *json, const char *key, long long *v);

/* The strings of the array at p ('['), joined with "; " into out (truncated to fit). */
void lp_rj_strings_join(const char *p, char *out, size_t size);

#endif
