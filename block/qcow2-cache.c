/*
 * qcow2 metadata cache: L2 tables and refcount blocks, written back lazily.
 *
 * Crash-safety rule (qcow2 spec, QEMU's cache dependency): an L2 table may
 * only reach the disk after every refcount block and every data write made
 * before it is durable, so that a mapping on disk never points at a cluster
 * whose refcount or contents are not. qcow2_cache_write() on the L2 cache
 * therefore first writes the refcount blocks and flushes the file.
 */
#include <stdio.h>
#include <string.h>

#include "qcow2.h"
#include "util/error.h"
#include "util/trace.h"

void qcow2_cache_init(Qcow2Cache *c, int size, bool is_l2)
{
    c->entries = g_new0(Qcow2CacheEntry, size);
    c->size = size;
    c->index = g_hash_table_new(g_int64_hash, g_int64_equal);
    c->by_table = g_hash_table_new(g_direct_hash, g_direct_equal);
    c->lru_clock = 0;
    c->is_l2 = is_l2;
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    if (!c->entries) {
        return;
    }
    for (int i = 0; i < c->size; i++) {
        g_free(c->entries[i].table);
    }
    g_free(c->entries);
    g_hash_table_destroy(c->index);
    g_hash_table_destroy(c->by_table);
    memset(c, 0, sizeof(*c));
}

static Qcow2CacheEntry *cache_entry_of(Qcow2Cache *c, uint8_t *table)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->by_table, table);

    g_assert(e);
    return e;
}

/* Everything a dirty L2 table may point at must be durable first. */
static bool cache_l2_barrier(Qcow2State *s, GError **errp)
{
    if (!qcow2_cache_write(s, &s->refblock_cache, errp)) {
        return false;
    }
    if (s->unsynced) {
        return qcow2_file_flush(s, errp);
    }
    return true;
}

static bool cache_entry_writeback(Qcow2State *s, Qcow2Cache *c, Qcow2CacheEntry *e,
                                  GError **errp)
{
    if (!e->dirty) {
        return true;
    }
    if (!qcow2_check_overlap(s, e->offset, s->cluster_size,
                             c->is_l2 ? QCOW2_OL_L2 : QCOW2_OL_REFBLOCK, errp)) {
        return false;
    }
    trace_event("qcow2_cache_writeback", "%s offset=0x%" G_GINT64_MODIFIER "x",
                c->is_l2 ? "l2" : "refblock", e->offset);
    if (!bdrv_pwrite(s->file, e->offset, e->table, s->cluster_size, errp)) {
        return false;
    }
    s->unsynced = true;
    e->dirty = false;
    return true;
}

bool qcow2_cache_write(Qcow2State *s, Qcow2Cache *c, GError **errp)
{
    bool barrier_done = false;

    for (int i = 0; i < c->size; i++) {
        Qcow2CacheEntry *e = &c->entries[i];
        if (!e->offset || !e->dirty) {
            continue;
        }
        if (c->is_l2 && !barrier_done) {
            if (!cache_l2_barrier(s, errp)) {
                return false;
            }
            barrier_done = true;
        }
        if (!cache_entry_writeback(s, c, e, errp)) {
            return false;
        }
    }
    return true;
}

bool qcow2_cache_write_unordered(Qcow2State *s, Qcow2Cache *c, GError **errp)
{
    for (int i = 0; i < c->size; i++) {
        Qcow2CacheEntry *e = &c->entries[i];
        if (e->offset && e->dirty && !cache_entry_writeback(s, c, e, errp)) {
            return false;
        }
    }
    return true;
}

bool qcow2_cache_is_dirty(Qcow2Cache *c)
{
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].offset && c->entries[i].dirty) {
            return true;
        }
    }
    return false;
}

/* A free slot, or the least recently used unpinned one after writing it back. */
static Qcow2CacheEntry *cache_victim(Qcow2State *s, Qcow2Cache *c, GError **errp)
{
    Qcow2CacheEntry *victim = NULL;

    for (int i = 0; i < c->size; i++) {
        Qcow2CacheEntry *e = &c->entries[i];
        if (!e->offset) {
            victim = e;
            break;
        }
        if (e->pins == 0 && (!victim || e->lru < victim->lru)) {
            victim = e;
        }
    }
    if (!victim) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "qcow2 metadata cache of '%s' has no free slot", s->bs->filename);
        return NULL;
    }
    if (victim->offset) {
        if (victim->dirty && c->is_l2 && !cache_l2_barrier(s, errp)) {
            return NULL;
        }
        if (!cache_entry_writeback(s, c, victim, errp)) {
            return NULL;
        }
        g_hash_table_remove(c->index, &victim->offset);
        victim->offset = 0;
    }
    if (!victim->table) {
        victim->table = g_malloc(s->cluster_size);
        g_hash_table_insert(c->by_table, victim->table, victim);
    }
    return victim;
}

static bool cache_do_get(Qcow2State *s, Qcow2Cache *c, uint64_t offset, bool read,
                         uint8_t **table, GError **errp)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->index, &offset);

    g_assert(offset != 0 && qcow2_offset_into_cluster(s, offset) == 0);
    if (e) {
        if (!read) {
            memset(e->table, 0, s->cluster_size);
        }
    } else {
        e = cache_victim(s, c, errp);
        if (!e) {
            return false;
        }
        if (read) {
            if (!bdrv_pread(s->file, offset, e->table, s->cluster_size, errp)) {
                return false;
            }
        } else {
            memset(e->table, 0, s->cluster_size);
        }
        e->offset = offset;
        e->dirty = false;
        g_hash_table_insert(c->index, &e->offset, e);
    }
    e->pins++;
    e->lru = ++c->lru_clock;
    *table = e->table;
    return true;
}

bool qcow2_cache_get(Qcow2State *s, Qcow2Cache *c, uint64_t offset, uint8_t **table,
                     GError **errp)
{
    return cache_do_get(s, c, offset, true, table, errp);
}

bool qcow2_cache_get_empty(Qcow2State *s, Qcow2Cache *c, uint64_t offset, uint8_t **table,
                           GError **errp)
{
    return cache_do_get(s, c, offset, false, table, errp);
}

void qcow2_cache_put(Qcow2Cache *c, uint8_t *table)
{
    Qcow2CacheEntry *e = cache_entry_of(c, table);

    g_assert(e->pins > 0);
    e->pins--;
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, uint8_t *table)
{
    cache_entry_of(c, table)->dirty = true;
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    Qcow2CacheEntry *e;

    if (!c->index) {
        return;
    }
    e = g_hash_table_lookup(c->index, &offset);
    if (e && e->pins == 0) {
        g_hash_table_remove(c->index, &e->offset);
        e->offset = 0;
        e->dirty = false;
    } else if (e) {
        e->dirty = false;
    }
}

void qcow2_cache_clear(Qcow2Cache *c)
{
    for (int i = 0; i < c->size; i++) {
        Qcow2CacheEntry *e = &c->entries[i];
        if (e->offset && e->pins == 0) {
            g_hash_table_remove(c->index, &e->offset);
            e->offset = 0;
            e->dirty = false;
        }
    }
}
