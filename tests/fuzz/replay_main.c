/* A plain main for the libFuzzer harnesses: runs LLVMFuzzerTestOneInput over the files named on
 * the command line (directories: every regular file in them, in name order), without libFuzzer.
 * ctest uses it to replay each corpus under ASan/UBSan; by hand it replays one crash input:
 *   build/fuzz_avro_event_replay crash-0123abcd
 * Exit status: 0 if every input ran (a failed property aborts), 1 on a usage or I/O error. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file. The input gets a heap buffer of exactly its size, as under libFuzzer, so ASan
 * reports a read one byte past the end. */
static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot get the size\n", path);
        goto err;
    }
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL || (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)) {
        fprintf(stderr, "%s: read failed\n", path);
        goto err;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    free(buf);
    return 0;
err:
    fclose(f);
    free(buf);
    return -1;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Returns the number of inputs run, or -1 on error. */
static long run_path(const char *path) {
    struct stat st;
    struct dirent **names = NULL;
    long count = 0;
    int n;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return run_file(path) == 0 ? 1 : -1;
    }
    n = scandir(path, &names, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char child[4096];
        if (count >= 0 && names[i]->d_name[0] != '.') {
            snprintf(child, sizeof(child), "%s/%s", path, names[i]->d_name);
            if (stat(child, &st) == 0 && S_ISREG(st.st_mode)) {
                count = run_file(child) == 0 ? count + 1 : -1;
            }
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv) {
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n < 0) {
            return 1;
        }
        total += n;
    }
    /* An empty corpus would make the ctest replay pass vacuously. */
    if (total == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    printf("%ld inputs ran\n", total);
    return 0;
}
