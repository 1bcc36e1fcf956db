/*
 * tpmvm-img info and check: what qemu-img prints, in human form and as JSON
 * with QEMU's key order, and check's exit codes.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "img-json.h"
#include "img.h"
#include "util/error.h"

/* ---- info ----------------------------------------------------------------- */

static JVal *luks_info_json(const LuksInfo *li)
{
    JVal *e = jv_obj(), *slots = jv_arr();

    jv_obj_add(e, "ivgen-alg", jv_str(li->ivgen_alg));
    jv_obj_add(e, "hash-alg", jv_str(li->hash_alg));
    jv_obj_add(e, "cipher-alg", jv_str(li->cipher_alg));
    jv_obj_add(e, "uuid", jv_str(li->uuid));
    jv_obj_add(e, "format", jv_str("luks"));
    jv_obj_add(e, "cipher-mode", jv_str(li->cipher_mode));
    for (int i = 0; i < 8; i++) {
        JVal *sl = jv_obj();
        jv_obj_add(sl, "active", jv_bool(li->slots[i].active));
        if (li->slots[i].active) {
            jv_obj_add(sl, "iters", jv_int(li->slots[i].iters));
            jv_obj_add(sl, "stripes", jv_int(li->slots[i].stripes));
        }
        jv_obj_add(sl, "key-offset", jv_int(li->slots[i].key_offset));
        jv_arr_add(slots, sl);
    }
    jv_obj_add(e, "slots", slots);
    jv_obj_add(e, "payload-offset", jv_int(li->payload_offset));
    jv_obj_add(e, "master-key-iters", jv_int(li->master_key_iters));
    return e;
}

static JVal *format_specific_json(const BlockDriverInfo *bdi)
{
    JVal *data = jv_obj();

    jv_obj_add(data, "compat", jv_str(bdi->qcow2_version >= 3 ? "1.1" : "0.10"));
    jv_obj_add(data, "compression-type", jv_str(bdi->compression_type));
    jv_obj_add(data, "refcount-bits", jv_int(bdi->refcount_bits));
    if (bdi->qcow2_version >= 3) {
        jv_obj_add(data, "lazy-refcounts", jv_bool(bdi->lazy_refcounts));
        jv_obj_add(data, "corrupt", jv_bool(bdi->corrupt));
        jv_obj_add(data, "extended-l2", jv_bool(bdi->extended_l2));
    }
    if (bdi->encrypt_format && !strcmp(bdi->encrypt_format, "aes")) {
        JVal *e = jv_obj();
        jv_obj_add(e, "format", jv_str("aes"));
        jv_obj_add(data, "encrypt", e);
    } else if (bdi->has_luks_info) {
        jv_obj_add(data, "encrypt", luks_info_json(&bdi->luks));
    }
    return data;
}

static char *snapshot_date(uint32_t sec)
{
    time_t t = sec;
    struct tm tm;
    char buf[64];

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return g_strdup(buf);
}

void print_snapshot_table(GString *out, BlockSnapshotInfo *list, int n)
{
    g_string_append_printf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
                           "DATE", "VM CLOCK", "ICOUNT");
    for (int i = 0; i < n; i++) {
        BlockSnapshotInfo *sn = &list[i];
        g_autofree char *size = size_to_str(sn->vm_state_size);
        g_autofree char *date = snapshot_date(sn->date_sec);
        uint64_t secs = sn->vm_clock_nsec / 1000000000ull;
        g_autofree char *clock = g_strdup_printf(
            "%02d:%02d:%02d.%03d", (int)(secs / 3600), (int)((secs / 60) % 60),
            (int)(secs % 60), (int)((sn->vm_clock_nsec / 1000000) % 1000));
        g_autofree char *icount = sn->icount == -1
                                      ? g_strdup("")
                                      : g_strdup_printf("%" G_GINT64_FORMAT, sn->icount);
        g_string_append_printf(out, "%-9s %-16s %8s%20s%13s%11s\n", sn->id_str, sn->name,
                               size, date, clock, icount);
    }
}

void snapshot_list_free(BlockSnapshotInfo *list, int n)
{
    for (int i = 0; i < n; i++) {
        block_snapshot_info_clear(&list[i]);
    }
    g_free(list);
}

int img_info(int argc, char **argv)
{
    ImgCommon c = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    BlockDriverInfo bdi;
    BlockSnapshotInfo *snaps = NULL;
    BlockDriverState *bs;
    const char *filename;
    int64_t size, actual;
    int nsnaps, ch;
    bool json;
    JVal *root;

    while ((ch = getopt_long(argc, argv, ":f:hU", common_long_opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            c.fmt = optarg;
            break;
        default: {
            int ret = img_common_option(ch, &c);
            if (ret >= 0) {
                return ret;
            }
            break;
        }
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    if (!output_is_json(&c, &json)) {
        return 1;
    }
    filename = argv[optind];
    bs = img_open(filename, &c, BDRV_O_NO_IO, &err);
    if (!bs) {
        img_error("%s", err->message);
        return 1;
    }
    if (!bdrv_get_info(bs, &bdi, &err)) {
        img_error("%s", err->message);
        bdrv_close(bs);
        return 1;
    }
    size = bdrv_getlength(bs);
    actual = bdrv_get_allocated_size(bs);
    nsnaps = bdrv_snapshot_list(bs, &snaps);
    if (c.image_opts) {
        filename = bdrv_get_filename(bs);
    }

    root = jv_obj();
    if (nsnaps > 0) {
        JVal *arr = jv_arr();
        for (int i = 0; i < nsnaps; i++) {
            JVal *o = jv_obj();
            if (snaps[i].icount != -1) {
                jv_obj_add(o, "icount", jv_int(snaps[i].icount));
            }
            jv_obj_add(o, "vm-clock-nsec",
                       jv_int(snaps[i].vm_clock_nsec % 1000000000ull));
            jv_obj_add(o, "name", jv_str(snaps[i].name));
            jv_obj_add(o, "date-sec", jv_int(snaps[i].date_sec));
            jv_obj_add(o, "date-nsec", jv_int(snaps[i].date_nsec));
            jv_obj_add(o, "vm-clock-sec", jv_int(snaps[i].vm_clock_nsec / 1000000000ull));
            jv_obj_add(o, "id", jv_str(snaps[i].id_str));
            jv_obj_add(o, "vm-state-size", jv_int(snaps[i].vm_state_size));
            jv_arr_add(arr, o);
        }
        jv_obj_add(root, "snapshots", arr);
    }
    jv_obj_add(root, "virtual-size", jv_int(size));
    jv_obj_add(root, "filename", jv_str(filename));
    if (bdi.cluster_size) {
        jv_obj_add(root, "cluster-size", jv_int(bdi.cluster_size));
    }
    jv_obj_add(root, "format", jv_str(bdrv_get_format_name(bs)));
    if (actual >= 0) {
        jv_obj_add(root, "actual-size", jv_int(actual));
    }
    if (bdi.is_qcow2) {
        JVal *fs = jv_obj();
        jv_obj_add(fs, "type", jv_str("qcow2"));
        jv_obj_add(fs, "data", format_specific_json(&bdi));
        jv_obj_add(root, "format-specific", fs);
    }
    if (bdi.encrypted) {
        jv_obj_add(root, "encrypted", jv_bool(true));
    }
    jv_obj_add(root, "dirty-flag", jv_bool(bdi.dirty));

    if (json) {
        jv_print_json(out, root);
        g_string_append_c(out, '\n');
    } else {
        g_autofree char *vs = size_to_str(size);
        g_string_append_printf(out, "image: %s\nfile format: %s\n", filename,
                               bdrv_get_format_name(bs));
        g_string_append_printf(out, "virtual size: %s (%" G_GINT64_FORMAT " bytes)\n", vs,
                               size);
        if (actual >= 0) {
            g_autofree char *ds = size_to_str(actual);
            g_string_append_printf(out, "disk size: %s\n", ds);
        } else {
            g_string_append(out, "disk size: unavailable\n");
        }
        if (bdi.encrypted) {
            g_string_append(out, "encrypted: yes\n");
        }
        if (bdi.cluster_size) {
            g_string_append_printf(out, "cluster_size: %" G_GUINT64_FORMAT "\n",
                                   bdi.cluster_size);
        }
        if (bdi.dirty) {
            g_string_append(out, "cleanly shut down: no\n");
        }
        if (nsnaps > 0) {
            g_string_append(out, "Snapshot list:\n");
            print_snapshot_table(out, snaps, nsnaps);
        }
        if (bdi.is_qcow2) {
            JVal *data = format_specific_json(&bdi);
            g_string_append(out, "Format specific information:\n");
            jv_print_human(out, data, 1);
            jv_free(data);
        }
    }
    fputs(out->str, stdout);
    jv_free(root);
    snapshot_list_free(snaps, nsnaps);
    bdrv_close(bs);
    return 0;
}

/* ---- check ---------------------------------------------------------------- */

int img_check(int argc, char **argv)
{
    ImgCommon c = {0};
    g_autoptr(GError) err = NULL;
    BdrvCheckResult res;
    BdrvCheckMode fix = BDRV_FIX_NONE;
    BlockDriverState *bs;
    const char *filename;
    int ch, flags = BDRV_O_CHECK;
    bool json;

    while ((ch = getopt_long(argc, argv, ":f:hqr:T:U", common_long_opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            c.fmt = optarg;
            break;
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                fix = BDRV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
            } else {
                img_error("Unknown option value for -r (expecting 'leaks' or 'all'): %s",
                          optarg);
                return 1;
            }
            flags |= BDRV_O_RDWR;
            break;
        case 'T':
            break;
        default: {
            int ret = img_common_option(ch, &c);
            if (ret >= 0) {
                return ret;
            }
            break;
        }
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    if (!output_is_json(&c, &json)) {
        return 1;
    }
    filename = argv[optind];
    bs = img_open(filename, &c, flags, &err);
    if (!bs) {
        img_error("%s", err->message);
        return 1;
    }
    if (c.image_opts) {
        filename = bdrv_get_filename(bs);
    }
    if (!bdrv_can_check(bs)) {
        if (!c.quiet) {
            img_error("This image format does not support checks");
        }
        bdrv_close(bs);
        return 63;
    }
    if (!bdrv_check(bs, &res, fix, &err)) {
        img_error("Check failed: %s", err->message);
        bdrv_close(bs);
        return 1;
    }
    if (res.corruptions_fixed || res.leaks_fixed) {
        int64_t lf = res.leaks_fixed, cf = res.corruptions_fixed;
        if (!json && !c.quiet) {
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %" G_GINT64_FORMAT " leaked clusters\n"
                   "    %" G_GINT64_FORMAT " corruptions\n\n"
                   "Double checking the fixed image now...\n",
                   lf, cf);
            fflush(stdout);
        }
        g_clear_error(&err);
        if (!bdrv_check(bs, &res, BDRV_FIX_NONE, &err)) {
            img_error("Check failed: %s", err->message);
            bdrv_close(bs);
            return 1;
        }
        res.leaks_fixed = lf;
        res.corruptions_fixed = cf;
    }
    if (c.quiet) {
        /* nothing */
    } else if (json) {
        g_autoptr(GString) out = g_string_new(NULL);
        JVal *o = jv_obj();
        if (res.image_end_offset) {
            jv_obj_add(o, "image-end-offset", jv_int(res.image_end_offset));
        }
        if (res.total_clusters) {
            jv_obj_add(o, "total-clusters", jv_int(res.total_clusters));
        }
        if (res.allocated_clusters) {
            jv_obj_add(o, "allocated-clusters", jv_int(res.allocated_clusters));
        }
        if (res.fragmented_clusters) {
            jv_obj_add(o, "fragmented-clusters", jv_int(res.fragmented_clusters));
        }
        if (res.compressed_clusters) {
            jv_obj_add(o, "compressed-clusters", jv_int(res.compressed_clusters));
        }
        jv_obj_add(o, "check-errors", jv_int(res.check_errors));
        if (res.corruptions) {
            jv_obj_add(o, "corruptions", jv_int(res.corruptions));
        }
        if (res.leaks) {
            jv_obj_add(o, "leaks", jv_int(res.leaks));
        }
        if (res.corruptions_fixed) {
            jv_obj_add(o, "corruptions-fixed", jv_int(res.corruptions_fixed));
        }
        if (res.leaks_fixed) {
            jv_obj_add(o, "leaks-fixed", jv_int(res.leaks_fixed));
        }
        jv_obj_add(o, "filename", jv_str(filename));
        jv_obj_add(o, "format", jv_str(bdrv_get_format_name(bs)));
        jv_print_json(out, o);
        printf("%s\n", out->str);
        jv_free(o);
    } else {
        if (!res.corruptions && !res.leaks && !res.check_errors) {
            printf("No errors were found on the image.\n");
        } else {
            if (res.corruptions) {
                printf(
                    "\n%" G_GINT64_FORMAT " errors were found on the image.\n"
                    "Data may be corrupted, or further writes to the image may corrupt "
                    "it.\n",
                    res.corruptions);
            }
            if (res.leaks) {
                printf("\n%" G_GINT64_FORMAT " leaked clusters were found on the image.\n"
                       "This means waste of disk space, but no harm to data.\n",
                       res.leaks);
            }
            if (res.check_errors) {
                printf("\n%" G_GINT64_FORMAT " internal errors have occurred during the "
                       "check.\n",
                       res.check_errors);
            }
        }
        if (res.total_clusters && res.allocated_clusters) {
            printf("%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT
                   " = %0.2f%% allocated, %0.2f%% "
                   "fragmented, %0.2f%% compressed clusters\n",
                   res.allocated_clusters, res.total_clusters,
                   res.allocated_clusters * 100.0 / res.total_clusters,
                   res.fragmented_clusters * 100.0 / res.allocated_clusters,
                   res.compressed_clusters * 100.0 / res.allocated_clusters);
        }
        if (res.image_end_offset) {
            printf("Image end offset: %" G_GINT64_FORMAT "\n", res.image_end_offset);
        }
    }
    bdrv_close(bs);
    if (res.check_errors) {
        return 1;
    }
    if (res.corruptions) {
        return 2;
    }
    if (res.leaks) {
        return 3;
    }
    return 0;
}
