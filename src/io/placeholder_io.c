/* The IO layer's Kafka code lives in src/engine/worker.c for now. */
typedef int lp_io_placeholder_t;
