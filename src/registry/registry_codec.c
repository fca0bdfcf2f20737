/* The Schema Registry as leadpulse uses it: the subjects of its schemas, their ids (registered or
 * looked up at start), and the fetch of a writer schema the codec does not know (input records
 * framed with an id an evolved producer registered). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_internal.h"
#include "leadpulse/registry.h"

void lp_registry_subject(int strategy, const char *topic, lp_schema_kind_t kind, char *out,
                         size_t size) {
    if (strategy == LP_SUBJECT_RECORD) {
        snprintf(out, size, "io.leadpulse.%s", lp_codec_schema_names[kind]);
    } else {
        snprintf(out, size, "%s-value", topic);
    }
}

char *lp_registry_read_schema(const char *path, char *errstr, size_t size) {
    FILE *fp = fopen(path, "rb");
    char *text = NULL;
    long len;
    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0 || (text = malloc((size_t)len + 1)) == NULL ||
        fread(text, 1, (size_t)len, fp) != (size_t)len) {
        snprintf(errstr, size, "%s: cannot read", path);
        free(text);
        text = NULL;
    } else {
        text[len] = '\0';
    }
    if (fp != NULL) {
        fclose(fp);
    }
    return text;
}

/* errstr for a schema the registry refused: the subject's latest version, the registry's reason
 * and, where it gives them, its compatibility messages. */
static void refused(lp_registry_t *reg, const char *subject, const char *name, const char *schema,
                    const char *reason, char *errstr, size_t size) {
    char latest[96] = "";
    char why[LP_ERRSTR] = "";
    char err[LP_ERRSTR];
    int version = 0;
    int32_t id = 0;
    if (lp_registry_latest(reg, subject, &version, &id, err, sizeof(err)) == LP_OK) {
        snprintf(latest, sizeof(latest), " (latest version %d, schema id %" PRId32 ")", version,
                 id);
    }
    if (lp_registry_check(reg, subject, schema, why, sizeof(why), err, sizeof(err)) !=
            LP_REGISTRY_REFUSED ||
        why[0] == '\0') {
        snprintf(why, sizeof(why), "%s", reason);
    }
    snprintf(errstr, size,
             "schema registry refused %s under subject %s: incompatible with the subject's latest "
             "version%s under its compatibility level: %s",
             name, subject, latest, why);
}

int lp_registry_schema_ids(lp_registry_t *reg, const lp_registry_schemas_t *s,
                           int32_t ids[LP_SCHEMA__COUNT], char *errstr, size_t size) {
    for (int k = 0; k < LP_SCHEMA__COUNT; k++) {
        if (s->topics[k] == NULL) {
            continue;
        }
        char path[4096], subject[512], err[LP_ERRSTR];
        const char *name = lp_codec_schema_names[k];
        snprintf(path, sizeof(path), "%s/%s.avsc", s->schema_dir, name);
        char *schema = lp_registry_read_schema(path, errstr, size);
        if (schema == NULL) {
            return LP_REGISTRY_REFUSED; /* not something a retry mends */
        }
        lp_registry_subject(s->strategy, s->topics[k], (lp_schema_kind_t)k, subject,
                            sizeof(subject));
        int rc = s->auto_register
                     ? lp_registry_register(reg, subject, schema, &ids[k], err, sizeof(err))
                     : lp_registry_lookup(reg, subject, schema, &ids[k], err, sizeof(err));
        if (rc == LP_REGISTRY_REFUSED) {
            refused(reg, subject, name, schema, err, errstr, size);
        } else if (rc == LP_REGISTRY_NOT_FOUND && s->auto_register) {
            snprintf(errstr, size,
                     "%s under subject %s: the registry answered 404 to a registration (is the URL "
                     "the root of its Confluent API, e.g. .../apis/ccompat/v7 for Apicurio?): %s",
                     name, subject, err);
        } else if (rc == LP_REGISTRY_NOT_FOUND) {
            snprintf(errstr, size,
                     "%s is not registered under subject %s (schema_registry.auto_register is "
                     "false: register %s there first, or set it to true): %s",
                     name, subject, path, err);
        } else if (rc != LP_OK) {
            snprintf(errstr, size, "%s under subject %s: %s", name, subject, err);
        }
        free(schema);
        if (rc != LP_OK) {
            return rc;
        }
    }
    return LP_OK;
}

int lp_registry_fetch(void *ctx, int32_t id, const char **schema_json, char *errstr, size_t size) {
    int rc = lp_registry_schema(ctx, id, schema_json, errstr, size);
    return rc == LP_REGISTRY_NOT_FOUND ? LP_AVRO_UNKNOWN_ID : rc == LP_OK ? LP_OK : LP_ERR;
}
