/* leadpulse: the one 64-bit hash (src/core/hash.c), used for event-id de-duplication, emitted
 * event ids, the engine's lead cache and batch map, and the in-memory store's lead table. */
#ifndef LEADPULSE_HASH_H
#define LEADPULSE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Well-mixed 64-bit hash of len bytes (murmur3's mixing, word at a time): every input bit
 * reaches every output bit, and the result is the same on every host (little-endian loads), so
 * ids derived from it agree across machines. Callers that hash producer-chosen keys into tables
 * pass a per-process random seed. Pinned by test vectors (tests/unit/test_core_lookup.c). */
uint64_t lp_hash64(const void *data, size_t len, uint64_t seed);

/* SipHash-2-4 with a 128-bit output (the reference's siphash128 variant) under a 128-bit key: a
 * keyed pseudo-random function. Names suppression entries so that they hold no lead id and a
 * guessed id cannot be tested without the key (src/core/siphash.c; pinned by the reference's
 * test vectors in tests/unit/test_core_lookup.c). */
void lp_siphash128(const uint8_t key[16], const void *data, size_t len, uint8_t out[16]);

/* The Kafka producers' key partitioners (src/core/partition.c), for `leadpulse repartition`:
 * - LP_PARTITIONER_CRC32: librdkafka's default `consistent_random` for keyed records (what
 *   `leadpulse produce` uses): CRC-32 (zlib's) of the key, modulo the partition count.
 * - LP_PARTITIONER_MURMUR2: the Java client's default (and librdkafka's `murmur2_random`):
 *   (Utils.murmur2(key) & 0x7fffffff) modulo the partition count. */
typedef enum { LP_PARTITIONER_CRC32 = 0, LP_PARTITIONER_MURMUR2 = 1 } lp_partitioner_t;

uint32_t lp_crc32(const void *data, size_t len);
/* Kafka's Utils.murmur2 as an unsigned 32-bit value (Java's int reinterpreted). */
uint32_t lp_murmur2(const void *data, size_t len);
/* The partition of key among count partitions (count >= 1; -1 otherwise). */
int32_t lp_partition_of(lp_partitioner_t partitioner, const void *key, size_t len, int32_t count);
/* "crc32" (or librdkafka's names "consistent_random", "consistent") or "murmur2" (or
 * "murmur2_random"): 0, else -1. */
int lp_partitioner_parse(const char *name, lp_partitioner_t *out);
const char *lp_partitioner_name(lp_partitioner_t partitioner);

#endif
