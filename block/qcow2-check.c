/*
 * qcow2 consistency check and repair (what `qemu-img check` reports, with
 * the same messages on stderr): rebuild the reference count of every cluster
 * by walking all tables, compare with the stored refcounts, check COPIED
 * flags, and optionally repair leaks, errors or the whole refcount structure.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qcow2.h"
#include "util/error.h"

typedef struct CheckState {
    Qcow2State *s;
    BdrvCheckResult *res;
    BdrvCheckMode fix;
    bool quiet;
    int64_t file_len;
    uint64_t nb_clusters; /* clusters in the file */
    uint64_t *refs;       /* computed references, nb_clusters entries */
    uint64_t next_contiguous;
    bool rebuild;
} CheckState;

static void G_GNUC_PRINTF(2, 3) check_msg(CheckState *cs, const char *fmt, ...)
{
    va_list ap;

    if (cs->quiet) {
        return;
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static inline uint64_t l2_get(const uint8_t *l2, uint64_t i)
{
    uint64_t v;
    memcpy(&v, l2 + i * 8, 8);
    return GUINT64_FROM_BE(v);
}

/* Count one reference to every cluster of [offset, offset + size). */
static void check_inc(CheckState *cs, uint64_t offset, uint64_t size)
{
    Qcow2State *s = cs->s;
    uint64_t first, last;

    if (size == 0) {
        return;
    }
    if (offset > UINT64_MAX - size ||
        (offset + size > (uint64_t)cs->file_len &&
         offset + size - (uint64_t)cs->file_len >= s->cluster_size)) {
        check_msg(cs,
                  "ERROR: counting reference for region exceeding the end of the file "
                  "by one cluster or more: offset 0x%" G_GINT64_MODIFIER
                  "x size 0x%" G_GINT64_MODIFIER "x\n",
                  offset, size);
        cs->res->corruptions++;
        return;
    }
    first = offset >> s->cluster_bits;
    last = (offset + size - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        if (c >= cs->nb_clusters) {
            continue; /* inside the last, partial cluster past EOF */
        }
        if (cs->refs[c] == s->refcount_max) {
            check_msg(cs, "ERROR: overflow cluster offset=0x%" G_GINT64_MODIFIER "x\n",
                      c << s->cluster_bits);
            cs->res->corruptions++;
            continue;
        }
        cs->refs[c]++;
    }
}

static bool check_l2(CheckState *cs, uint64_t l2_offset, bool active)
{
    Qcow2State *s = cs->s;
    g_autofree uint8_t *l2 = g_malloc(s->cluster_size);
    uint8_t *t;
    GError *err = NULL;

    if (!qcow2_cache_get(s, &s->l2_cache, l2_offset, &t, &err)) {
        check_msg(cs, "ERROR: I/O error in check_refcounts_l2: %s\n", err->message);
        g_error_free(err);
        cs->res->check_errors++;
        return false;
    }
    memcpy(l2, t, s->cluster_size);
    qcow2_cache_put(&s->l2_cache, t);

    for (uint64_t i = 0; i < s->l2_size; i++) {
        uint64_t e = l2_get(l2, i), off, size;

        switch (qcow2_l2_entry_type(s, e)) {
        case QCOW2_CLUSTER_COMPRESSED:
            if (e & QCOW_OFLAG_COPIED) {
                check_msg(cs,
                          "ERROR: coffset=0x%" G_GINT64_MODIFIER
                          "x: copied flag must never be set "
                          "for compressed clusters\n",
                          e & s->cluster_offset_mask);
                cs->res->corruptions++;
            }
            if (active) {
                cs->res->allocated_clusters++;
                cs->res->compressed_clusters++;
                /* Compressed clusters are fragmented by nature. */
                cs->res->fragmented_clusters++;
            }
            qcow2_compressed_range(s, e, &off, &size);
            check_inc(cs, off, size);
            break;
        case QCOW2_CLUSTER_ZERO_ALLOC:
        case QCOW2_CLUSTER_NORMAL:
            off = e & L2E_OFFSET_MASK;
            if (qcow2_offset_into_cluster(s, off)) {
                if (qcow2_l2_entry_type(s, e) == QCOW2_CLUSTER_ZERO_ALLOC) {
                    check_msg(cs,
                              "ERROR offset=%" G_GINT64_MODIFIER
                              "x: Preallocated zero cluster is not "
                              "properly aligned; L2 entry corrupted.\n",
                              off);
                } else {
                    check_msg(cs,
                              "ERROR offset=%" G_GINT64_MODIFIER
                              "x: Data cluster is not properly "
                              "aligned; L2 entry corrupted.\n",
                              off);
                }
                cs->res->corruptions++;
                break;
            }
            if (active) {
                cs->res->allocated_clusters++;
                if (cs->next_contiguous && off != cs->next_contiguous) {
                    cs->res->fragmented_clusters++;
                }
                cs->next_contiguous = off + s->cluster_size;
            }
            check_inc(cs, off, s->cluster_size);
            break;
        default:
            break;
        }
    }
    return true;
}

static void check_l1(CheckState *cs, uint64_t l1_offset, uint32_t l1_size, bool active)
{
    Qcow2State *s = cs->s;
    uint64_t bytes = (uint64_t)l1_size * 8;
    g_autofree uint8_t *buf = NULL;
    GError *err = NULL;

    check_inc(cs, l1_offset, bytes);
    if (!l1_size) {
        return;
    }
    buf = g_malloc(bytes);
    if (active) {
        for (uint32_t i = 0; i < l1_size; i++) {
            uint64_t be = GUINT64_TO_BE(s->l1_table[i]);
            memcpy(buf + i * 8, &be, 8);
        }
    } else if (!bdrv_pread(s->file, l1_offset, buf, bytes, &err)) {
        check_msg(cs, "ERROR: I/O error in check_refcounts_l1: %s\n", err->message);
        g_error_free(err);
        cs->res->check_errors++;
        return;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t e, l2;
        memcpy(&e, buf + i * 8, 8);
        e = GUINT64_FROM_BE(e);
        l2 = e & L1E_OFFSET_MASK;
        if (!l2) {
            continue;
        }
        check_inc(cs, l2, s->cluster_size);
        if (qcow2_offset_into_cluster(s, l2)) {
            check_msg(cs,
                      "ERROR l2_offset=%" G_GINT64_MODIFIER
                      "x: Table is not cluster aligned; L1 "
                      "entry corrupted\n",
                      l2);
            cs->res->corruptions++;
            continue;
        }
        if (l2 >= (uint64_t)cs->file_len) {
            continue; /* already reported by check_inc */
        }
        check_l2(cs, l2, active);
    }
}

/* All references except the refcount structures themselves. */
static void check_count_data(CheckState *cs)
{
    Qcow2State *s = cs->s;

    check_inc(cs, 0, s->cluster_size);
    cs->next_contiguous = 0;
    check_l1(cs, s->l1_table_offset, s->l1_size, true);
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        Qcow2Snapshot *sn = &s->snapshots[i];
        if (qcow2_offset_into_cluster(s, sn->l1_table_offset)) {
            check_msg(cs,
                      "ERROR snapshot %s (%s) l1_offset=%#" G_GINT64_MODIFIER
                      "x: L1 table is not "
                      "cluster aligned; snapshot table entry corrupted\n",
                      sn->id_str, sn->name, sn->l1_table_offset);
            cs->res->corruptions++;
            continue;
        }
        check_l1(cs, sn->l1_table_offset, sn->l1_size, false);
    }
    check_inc(cs, s->snapshots_offset, s->snapshots_size);
    if (s->has_crypto_ext) {
        check_inc(cs, s->crypto_header_offset, s->crypto_header_length);
    }
}

/* The refcount table and blocks; structural problems ask for a rebuild. */
static void check_refblocks(CheckState *cs)
{
    Qcow2State *s = cs->s;

    check_inc(cs, s->refcount_table_offset,
              (uint64_t)s->refcount_table_clusters << s->cluster_bits);
    for (uint64_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;
        uint64_t c = off >> s->cluster_bits;

        if (qcow2_offset_into_cluster(s, off)) {
            check_msg(cs,
                      "ERROR refcount block %" G_GUINT64_FORMAT
                      " is not cluster aligned; "
                      "refcount table entry corrupted\n",
                      i);
            cs->res->corruptions++;
            cs->rebuild = true;
            continue;
        }
        if (!off) {
            continue;
        }
        if (c >= cs->nb_clusters) {
            check_msg(cs, "ERROR refcount block %" G_GUINT64_FORMAT " is outside image\n",
                      i);
            cs->res->corruptions++;
            cs->rebuild = true;
            continue;
        }
        check_inc(cs, off, s->cluster_size);
        if (cs->refs[c] != 1) {
            check_msg(cs,
                      "ERROR refcount block %" G_GUINT64_FORMAT
                      " refcount=%" G_GUINT64_FORMAT "\n",
                      i, cs->refs[c]);
            cs->res->corruptions++;
            cs->rebuild = true;
        }
    }
}

static void check_compare(CheckState *cs, uint64_t *highest)
{
    Qcow2State *s = cs->s;

    for (uint64_t i = 0; i < cs->nb_clusters; i++) {
        uint64_t stored, ref = cs->refs[i];
        GError *err = NULL;
        int64_t *fixed = NULL;

        if (!qcow2_get_refcount(s, i, &stored, &err)) {
            check_msg(cs, "Can't get refcount for cluster %" G_GUINT64_FORMAT ": %s\n", i,
                      err->message);
            g_error_free(err);
            cs->res->check_errors++;
            continue;
        }
        if (stored > 0 || ref > 0) {
            *highest = i;
        }
        if (stored == ref) {
            continue;
        }
        if (stored == 0) {
            cs->rebuild = true; /* a referenced cluster looked free */
        } else if (stored > ref && (cs->fix & BDRV_FIX_LEAKS)) {
            fixed = &cs->res->leaks_fixed;
        } else if (stored < ref && (cs->fix & BDRV_FIX_ERRORS)) {
            fixed = &cs->res->corruptions_fixed;
        }
        check_msg(cs,
                  "%s cluster %" G_GUINT64_FORMAT " refcount=%" G_GUINT64_FORMAT
                  " reference=%" G_GUINT64_FORMAT "\n",
                  fixed          ? "Repairing"
                  : stored < ref ? "ERROR"
                                 : "Leaked",
                  i, stored, ref);
        if (fixed) {
            if (qcow2_update_refcount(s, i << s->cluster_bits, 1, (int64_t)(ref - stored),
                                      &err)) {
                (*fixed)++;
                continue;
            }
            check_msg(cs, "ERROR could not fix cluster %" G_GUINT64_FORMAT ": %s\n", i,
                      err->message);
            g_error_free(err);
            cs->res->check_errors++;
        }
        if (stored < ref) {
            cs->res->corruptions++;
        } else {
            cs->res->leaks++;
        }
    }
}

/*
 * Write a new refcount table and blocks after the end of everything
 * referenced, describing exactly the counted references, and switch the
 * header to them (QEMU: rebuild_refcount_structure).
 */
static bool check_rebuild(CheckState *cs, const uint64_t *data_refs, GError **errp)
{
    Qcow2State *s = cs->s;
    uint64_t per_block = 1ull << s->refblock_bits, cs_bytes = s->cluster_size;
    uint64_t start = cs->nb_clusters, nblocks = 0, tclusters = 1, end;
    g_autofree uint64_t *table = NULL;
    g_autofree uint8_t *buf = NULL;
    uint8_t header[12];

    check_msg(cs, "Rebuilding refcount structure\n");
    /* Append after the end of the file: the old structure stays intact until
     * the header switch. */
    start = MAX(cs->nb_clusters, 1);
    /* Table and blocks at the end must describe everything including themselves. */
    for (;;) {
        uint64_t need_blocks, need_tclusters;
        end = start + tclusters + nblocks;
        need_blocks = (end + per_block - 1) / per_block;
        need_tclusters = (need_blocks * 8 + cs_bytes - 1) / cs_bytes;
        if (need_blocks == nblocks && need_tclusters == tclusters) {
            break;
        }
        nblocks = need_blocks;
        tclusters = need_tclusters;
        if (tclusters > (QCOW2_MAX_REFTABLE_BYTES >> s->cluster_bits) + 1) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                        "Refcount table would be too large");
            return false;
        }
    }
    table = g_new0(uint64_t, tclusters * cs_bytes / 8);
    buf = g_malloc(cs_bytes);
    for (uint64_t b = 0; b < nblocks; b++) {
        uint64_t boff = (start + tclusters + b) << s->cluster_bits;
        memset(buf, 0, cs_bytes);
        for (uint64_t k = 0; k < per_block; k++) {
            uint64_t c = b * per_block + k, v;
            if (c >= end) {
                break;
            }
            v = c >= start ? 1 : (c < cs->nb_clusters ? data_refs[c] : 0);
            qcow2_set_refcount_in_block(s, buf, k, MIN(v, s->refcount_max));
        }
        if (!bdrv_pwrite(s->file, boff, buf, cs_bytes, errp)) {
            return false;
        }
        table[b] = boff;
    }
    {
        g_autofree uint8_t *tb = g_malloc0(tclusters * cs_bytes);
        for (uint64_t i = 0; i < nblocks; i++) {
            uint64_t be = GUINT64_TO_BE(table[i]);
            memcpy(tb + i * 8, &be, 8);
        }
        if (!bdrv_pwrite(s->file, start << s->cluster_bits, tb, tclusters * cs_bytes,
                         errp)) {
            return false;
        }
    }
    s->unsynced = true;
    if (!qcow2_file_flush(s, errp)) {
        return false;
    }
    {
        uint64_t off_be = GUINT64_TO_BE(start << s->cluster_bits);
        uint32_t n_be = GUINT32_TO_BE((uint32_t)tclusters);
        memcpy(header, &off_be, 8);
        memcpy(header + 8, &n_be, 4);
    }
    if (!qcow2_write_header_field(s, QCOW2_OFF_REFTABLE, header, 12, errp)) {
        return false;
    }
    /* Switch the in-memory state to the new structure. */
    qcow2_cache_destroy(&s->refblock_cache);
    qcow2_cache_init(&s->refblock_cache, 16, false);
    g_free(s->refcount_table);
    s->refcount_table_offset = start << s->cluster_bits;
    s->refcount_table_clusters = tclusters;
    s->refcount_table_size = tclusters * cs_bytes / 8;
    s->refcount_table = g_steal_pointer(&table);
    s->max_refcount_table_index = nblocks ? nblocks - 1 : 0;
    s->free_cluster_index = 0;
    return true;
}

static void check_oflag_copied(CheckState *cs)
{
    Qcow2State *s = cs->s;
    bool repair = cs->fix & BDRV_FIX_ERRORS;
    GError *err = NULL;

    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t e = s->l1_table[i], l2 = e & L1E_OFFSET_MASK, rc;
        uint8_t *t;

        if (!l2 || qcow2_offset_into_cluster(s, l2)) {
            continue;
        }
        if (!qcow2_get_refcount(s, l2 >> s->cluster_bits, &rc, &err)) {
            g_clear_error(&err);
            cs->res->check_errors++;
            continue;
        }
        if ((rc == 1) != !!(e & QCOW_OFLAG_COPIED)) {
            check_msg(
                cs,
                "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%" G_GINT64_MODIFIER
                "x "
                "refcount=%" G_GUINT64_FORMAT "\n",
                repair ? "Repairing" : "ERROR", i, e, rc);
            if (repair) {
                s->l1_table[i] =
                    rc == 1 ? (e | QCOW_OFLAG_COPIED) : (e & ~QCOW_OFLAG_COPIED);
                s->l1_dirty = true;
                cs->res->corruptions_fixed++;
            } else {
                cs->res->corruptions++;
            }
        }
        if (l2 >= (uint64_t)cs->file_len) {
            continue;
        }
        if (!qcow2_cache_get(s, &s->l2_cache, l2, &t, &err)) {
            g_clear_error(&err);
            cs->res->check_errors++;
            continue;
        }
        for (uint64_t j = 0; j < s->l2_size; j++) {
            uint64_t le = l2_get(t, j), dc;
            Qcow2ClusterType type = qcow2_l2_entry_type(s, le);

            if (type != QCOW2_CLUSTER_NORMAL && type != QCOW2_CLUSTER_ZERO_ALLOC) {
                continue;
            }
            dc = le & L2E_OFFSET_MASK;
            if (qcow2_offset_into_cluster(s, dc)) {
                continue;
            }
            if (!qcow2_get_refcount(s, dc >> s->cluster_bits, &rc, &err)) {
                g_clear_error(&err);
                cs->res->check_errors++;
                continue;
            }
            if ((rc == 1) != !!(le & QCOW_OFLAG_COPIED)) {
                check_msg(cs,
                          "%s OFLAG_COPIED data cluster: l2_entry=%" G_GINT64_MODIFIER
                          "x "
                          "refcount=%" G_GUINT64_FORMAT "\n",
                          repair ? "Repairing" : "ERROR", le, rc);
                if (repair) {
                    uint64_t ne =
                        rc == 1 ? (le | QCOW_OFLAG_COPIED) : (le & ~QCOW_OFLAG_COPIED);
                    uint64_t be = GUINT64_TO_BE(ne);
                    memcpy(t + j * 8, &be, 8);
                    qcow2_cache_mark_dirty(&s->l2_cache, t);
                    cs->res->corruptions_fixed++;
                } else {
                    cs->res->corruptions++;
                }
            }
        }
        qcow2_cache_put(&s->l2_cache, t);
    }
}

/* One counting pass; *data_refs gets the counts without refcount structures. */
static bool check_pass(CheckState *cs, uint64_t **data_refs, uint64_t *highest,
                       GError **errp)
{
    Qcow2State *s = cs->s;

    cs->file_len = bdrv_getlength(s->file);
    if (cs->file_len < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "Could not get the size of '%s'",
                    s->bs->filename);
        return false;
    }
    cs->nb_clusters = qcow2_size_to_clusters(s, cs->file_len);
    g_free(cs->refs);
    cs->refs = g_try_new0(uint64_t, cs->nb_clusters + 1);
    if (!cs->refs) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "Out of memory checking '%s'",
                    s->bs->filename);
        return false;
    }
    cs->rebuild = false;
    check_count_data(cs);
    if (data_refs) {
        *data_refs = g_memdup2(cs->refs, (cs->nb_clusters + 1) * sizeof(uint64_t));
    }
    check_refblocks(cs);
    *highest = 0;
    check_compare(cs, highest);
    return true;
}

static bool check_run(Qcow2State *s, BdrvCheckResult *res, BdrvCheckMode fix, bool quiet,
                      GError **errp)
{
    CheckState cs = {.s = s, .res = res, .fix = fix, .quiet = quiet};
    g_autofree uint64_t *data_refs = NULL;
    uint64_t highest = 0;
    bool ok = false;

    if (!s->read_only && !qcow2_flush_metadata(s, errp)) {
        return false;
    }
    res->total_clusters = qcow2_size_to_clusters(s, s->size);
    if (!check_pass(&cs, &data_refs, &highest, errp)) {
        goto out;
    }
    if (cs.rebuild && (fix & BDRV_FIX_ERRORS)) {
        BdrvCheckResult again = {0};
        if (!check_rebuild(&cs, data_refs, errp)) {
            goto out;
        }
        /* Everything refcount-related is consistent now; count it as fixed. */
        res->corruptions_fixed += res->corruptions;
        res->corruptions = 0;
        res->leaks_fixed += res->leaks;
        res->leaks = 0;
        cs.res = &again;
        if (!check_pass(&cs, NULL, &highest, errp)) {
            goto out;
        }
        cs.res = res;
        res->corruptions += again.corruptions;
        res->leaks += again.leaks;
        res->check_errors += again.check_errors;
        res->leaks_fixed += again.leaks_fixed;
        res->corruptions_fixed += again.corruptions_fixed;
    } else if (cs.rebuild && fix) {
        check_msg(&cs, "ERROR need to rebuild refcount structures\n");
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "%s", g_strerror(EIO));
        goto out;
    }
    check_oflag_copied(&cs);
    if (!s->read_only && fix && !qcow2_flush_metadata(s, errp)) {
        goto out;
    }
    res->image_end_offset = (int64_t)(highest + 1) << s->cluster_bits;
    ok = true;
out:
    g_free(cs.refs);
    return ok;
}

bool qcow2_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                 GError **errp)
{
    Qcow2State *s = bs->opaque;
    bool ok;

    if ((fix & ~BDRV_CHECK_QUIET) && s->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Image '%s' is read-only; repair needs read-write access",
                    bs->filename);
        return false;
    }
    s->in_repair = true; /* report problems, do not mark the image corrupt */
    ok = check_run(s, res, fix & ~BDRV_CHECK_QUIET, fix & BDRV_CHECK_QUIET, errp);
    s->in_repair = false;
    if (ok && (fix & ~BDRV_CHECK_QUIET) && !res->corruptions && !res->check_errors) {
        /* A consistent image is clean: drop the dirty and corrupt bits. */
        ok = qcow2_set_incompat_bits(s, 0, QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT,
                                     errp);
    }
    return ok;
}

bool qcow2_repair(Qcow2State *s, GError **errp)
{
    BdrvCheckResult res = {0};
    bool ok;

    s->in_repair = true;
    ok = check_run(s, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, true, errp);
    s->in_repair = false;
    if (!ok) {
        return false;
    }
    if (res.corruptions || res.check_errors) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%" G_GINT64_FORMAT " corruptions remain after the repair of '%s'",
                    res.corruptions + res.check_errors, s->bs->filename);
        return false;
    }
    return qcow2_set_incompat_bits(s, 0, QCOW2_INCOMPAT_DIRTY, errp);
}
