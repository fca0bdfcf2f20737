/* leadpulse config layer, internal: the worker configuration table shared by the loader
 * (config.c) and the dump / reference generator (config_doc.c). */
#ifndef LP_CONFIG_TABLE_H
#define LP_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "leadpulse/config.h"

typedef enum {
    LP_CT_STR = 0, /* text, at most size - 1 bytes */
    LP_CT_INT,     /* whole number within [min, max]; stored as int32/int/int64 by size */
    LP_CT_MS,      /* milliseconds: a whole number or a duration such as "5s" */
    LP_CT_DOUBLE,  /* number within [dmin, dmax] */
    LP_CT_ENUM,    /* one of names[]; stored as int (the index) */
} lp_config_type_t;

#define LP_CF_SECRET 0x1    /* mask in dumps */
#define LP_CF_EMPTY_OK 0x2  /* "" is a valid value (strings) */
#define LP_CF_TEST_ONLY 0x4 /* refused unless LEADPULSE_ALLOW_TEST_CLOCK=1 */

typedef struct {
    const char *name; /* dotted key, as in the YAML file: "batch.max_events" */
    lp_config_type_t type;
    size_t offset; /* field in lp_config_t */
    size_t size;
    const char *def;          /* default, as text: parsed like a file value */
    int64_t min, max;         /* LP_CT_INT / LP_CT_MS */
    double dmin, dmax;        /* LP_CT_DOUBLE */
    const char *const *names; /* LP_CT_ENUM, NULL-terminated */
    const char *env;          /* LEADPULSE_<SECTION>_<KEY> */
    unsigned flags;
    /* extra validation of a string; writes a reason into msg and returns LP_ERR */
    int (*check)(lp_config_t *config, const char *value, char *msg, size_t msg_size);
    const char *desc;
} lp_config_entry_t;

extern const lp_config_entry_t lp_config_table[];
extern const size_t lp_config_table_len;

/* Reserved librdkafka properties: the worker sets them itself (see config_doc.c). */
extern const char *const lp_config_kafka_reserved[][2];

/* Formats the field's current value as text (the same form a file would use). */
void lp_config_format(const lp_config_t *config, const lp_config_entry_t *entry, char *buf,
                      size_t size);

#endif
