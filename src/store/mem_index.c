/* leadpulse in-memory store: lead table (open addressing) and timer heap. */
#include <stdlib.h>
#include <string.h>

#include "leadpulse/common.h"
#include "leadpulse/hash.h"
#include "store/mem_index.h"

#define MEM_TABLE_MIN 64

uint64_t lp_mem_hash(const char *id, size_t id_len) {
    return lp_hash64(id, id_len, 0x6d656d73u /* "mems" */);
}

mem_lead_t *lp_mem_lead_new(const char *id, size_t id_len, uint64_t hash) {
    mem_lead_t *lead = malloc(sizeof(*lead) + id_len + 1);

    if (lead == NULL) {
        return NULL;
    }
    lead->hash = hash;
    lead->data = NULL;
    lead->len = 0;
    lead->due_ms = 0;
    lead->heap_idx = 0;
    lead->id_len = id_len;
    memcpy(lead->id, id, id_len);
    lead->id[id_len] = '\0';
    return lead;
}

mem_lead_t *lp_mem_table_find(const mem_table_t *table, const char *id, size_t id_len,
                              uint64_t hash) {
    size_t mask;
    size_t i;

    if (table->cap == 0) {
        return NULL;
    }
    mask = table->cap - 1;
    for (i = hash & mask; table->slots[i] != NULL; i = (i + 1) & mask) {
        const mem_lead_t *lead = table->slots[i];

        if (lead->hash == hash && lead->id_len == id_len && memcmp(lead->id, id, id_len) == 0) {
            return table->slots[i];
        }
    }
    return NULL;
}

static void table_place(mem_lead_t **slots, size_t cap, mem_lead_t *lead) {
    size_t mask = cap - 1;
    size_t i;

    for (i = lead->hash & mask; slots[i] != NULL; i = (i + 1) & mask) {
    }
    slots[i] = lead;
}

int lp_mem_table_reserve(mem_table_t *table, size_t more) {
    size_t need = table->count + more;
    size_t cap = table->cap == 0 ? MEM_TABLE_MIN : table->cap;
    mem_lead_t **slots;
    size_t i;

    /* Keep the load factor under 0.7 so probe runs stay short. */
    while (need > cap / 10 * 7) {
        if (cap > SIZE_MAX / 2 / sizeof(*slots)) {
            return LP_ERR;
        }
        cap *= 2;
    }
    if (cap == table->cap) {
        return LP_OK;
    }
    slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return LP_ERR;
    }
    for (i = 0; i < table->cap; i++) {
        if (table->slots[i] != NULL) {
            table_place(slots, cap, table->slots[i]);
        }
    }
    free(table->slots);
    table->slots = slots;
    table->cap = cap;
    return LP_OK;
}

void lp_mem_table_insert(mem_table_t *table, mem_lead_t *lead) {
    table_place(table->slots, table->cap, lead);
    table->count++;
}

void lp_mem_table_free(mem_table_t *table) {
    size_t i;

    for (i = 0; i < table->cap; i++) {
        if (table->slots[i] != NULL) {
            free(table->slots[i]->data);
            free(table->slots[i]);
        }
    }
    free(table->slots);
    memset(table, 0, sizeof(*table));
}

/* Redis sorted-set order: score, then member bytes (memcmp, shorter first on a tie). */
static int lead_less(const mem_lead_t *a, const mem_lead_t *b) {
    size_t min;
    int c;

    if (a->due_ms != b->due_ms) {
        return a->due_ms < b->due_ms;
    }
    min = a->id_len < b->id_len ? a->id_len : b->id_len;
    c = memcmp(a->id, b->id, min);
    if (c != 0) {
        return c < 0;
    }
    return a->id_len < b->id_len;
}

static void heap_put(mem_heap_t *heap, size_t i, mem_lead_t *lead) {
    heap->items[i] = lead;
    lead->heap_idx = i;
}

static void heap_up(mem_heap_t *heap, size_t i) {
    mem_lead_t *lead = heap->items[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!lead_less(lead, heap->items[parent])) {
            break;
        }
        heap_put(heap, i, heap->items[parent]);
        i = parent;
    }
    heap_put(heap, i, lead);
}

static void heap_down(mem_heap_t *heap, size_t i) {
    mem_lead_t *lead = heap->items[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= heap->n) {
            break;
        }
        if (child + 1 < heap->n && lead_less(heap->items[child + 1], heap->items[child])) {
            child++;
        }
        if (!lead_less(heap->items[child], lead)) {
            break;
        }
        heap_put(heap, i, heap->items[child]);
        i = child;
    }
    heap_put(heap, i, lead);
}

int lp_mem_heap_reserve(mem_heap_t *heap, size_t more) {
    size_t cap = heap->cap == 0 ? 64 : heap->cap;
    mem_lead_t **items;

    while (heap->n + more > cap) {
        if (cap > SIZE_MAX / 2 / sizeof(*items)) {
            return LP_ERR;
        }
        cap *= 2;
    }
    if (cap == heap->cap) {
        return LP_OK;
    }
    items = realloc(heap->items, cap * sizeof(*items));
    if (items == NULL) {
        return LP_ERR;
    }
    heap->items = items;
    heap->cap = cap;
    return LP_OK;
}

void lp_mem_heap_set(mem_heap_t *heap, mem_lead_t *lead, int64_t due_ms) {
    size_t i;

    if (lead->due_ms == 0) {
        if (due_ms == 0) {
            return;
        }
        lead->due_ms = due_ms;
        heap_put(heap, heap->n++, lead);
        heap_up(heap, lead->heap_idx);
        return;
    }
    i = lead->heap_idx;
    if (due_ms != 0) {
        lead->due_ms = due_ms;
        heap_up(heap, i);
        heap_down(heap, lead->heap_idx);
        return;
    }
    lead->due_ms = 0;
    heap->n--;
    if (i != heap->n) {
        /* Move the last record into the hole; it may need to go either way. */
        mem_lead_t *moved = heap->items[heap->n];

        heap_put(heap, i, moved);
        heap_up(heap, i);
        heap_down(heap, moved->heap_idx);
    }
}

/* The scratch heap holds indices into heap->items, ordered like the heap itself. */
static int idx_less(const mem_heap_t *heap, size_t a, size_t b) {
    return lead_less(heap->items[a], heap->items[b]);
}

size_t lp_mem_heap_due(const mem_heap_t *heap, int64_t now_ms, size_t max, mem_lead_t **out,
                       size_t *scratch) {
    size_t nout = 0;
    size_t ns = 0;

    if (heap->n > 0 && heap->items[0]->due_ms <= now_ms) {
        scratch[ns++] = 0;
    }
    /* Best-first walk: the next smallest due record is the root or a child of one taken. */
    while (ns > 0 && nout < max) {
        size_t top = scratch[0];
        size_t child;
        size_t c;

        out[nout++] = heap->items[top];
        scratch[0] = scratch[--ns];
        for (size_t i = 0;;) {
            size_t l = 2 * i + 1;
            size_t m = i;

            if (l < ns && idx_less(heap, scratch[l], scratch[m])) {
                m = l;
            }
            if (l + 1 < ns && idx_less(heap, scratch[l + 1], scratch[m])) {
                m = l + 1;
            }
            if (m == i) {
                break;
            }
            size_t tmp = scratch[i];
            scratch[i] = scratch[m];
            scratch[m] = tmp;
            i = m;
        }
        for (c = 1; c <= 2; c++) {
            child = 2 * top + c;
            if (child >= heap->n || heap->items[child]->due_ms > now_ms) {
                continue;
            }
            size_t i = ns++;
            scratch[i] = child;
            while (i > 0 && idx_less(heap, scratch[i], scratch[(i - 1) / 2])) {
                size_t p = (i - 1) / 2;
                size_t tmp = scratch[i];
                scratch[i] = scratch[p];
                scratch[p] = tmp;
                i = p;
            }
        }
    }
    return nout;
}

void lp_mem_heap_free(mem_heap_t *heap) {
    free(heap->items);
    memset(heap, 0, sizeof(*heap));
}
