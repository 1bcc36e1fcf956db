/*
 * tpmvm-img: create, inspect, check, snapshot, convert, amend and resize
 * disk images. Command syntax, output texts and exit codes follow qemu-img
 * 7.2, so scripts written for one work with the other.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/block_int.h"
#include "config-host.h"
#include "crypto/secret.h"
#include "img-json.h"
#include "img.h"
#include "util/error.h"
#include "util/log.h"

void img_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

bool img_add_object(const char *arg)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(arg, "qom-type", &err);
    const char *type;

    if (!kv) {
        img_error("%s", err->message);
        return false;
    }
    type = keyval_get(kv, "qom-type");
    if (!type || strcmp(type, "secret") != 0) {
        img_error("Invalid object type '%s' (only 'secret' is supported)",
                  type ? type : "");
        return false;
    }
    if (!secret_create(kv, &err)) {
        img_error("%s", err->message);
        return false;
    }
    return true;
}

int img_common_option(int opt, ImgCommon *c)
{
    switch (opt) {
    case 'U':
        c->force_share = true;
        return -1;
    case 'q':
        c->quiet = true;
        return -1;
    case OPT_OUTPUT:
        c->output = optarg;
        return -1;
    case OPT_IMAGE_OPTS:
        c->image_opts = true;
        return -1;
    case OPT_OBJECT:
        return img_add_object(optarg) ? -1 : 1;
    case 'h':
        usage();
        return 0;
    default:
        img_error("Invalid option or missing argument (try '" PROG " --help')");
        return 1;
    }
}

/* Human size as qemu-img prints it: three significant digits, binary units. */
char *size_to_str(uint64_t val)
{
    static const char *const suffixes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int i;
    uint64_t div;

    frexp(val / (1000.0 / 1024.0), &i);
    i = (i - 1) / 10;
    div = 1ull << (i * 10);
    return g_strdup_printf("%0.3g %s", (double)val / div, suffixes[i]);
}

BlockDriverState *img_open(const char *filename, const ImgCommon *c, int flags,
                           GError **errp)
{
    g_autoptr(KeyVal) kv = NULL;

    if (c->force_share) {
        if (flags & BDRV_O_RDWR) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "force-share=on can only be used with read-only images");
            return NULL;
        }
        flags |= BDRV_O_FORCE_SHARE;
    }
    if (c->image_opts) {
        if (c->fmt) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "--image-opts and --format are mutually exclusive");
            return NULL;
        }
        kv = keyval_parse(filename, NULL, errp);
        if (!kv) {
            return NULL;
        }
        return bdrv_open(NULL, kv, flags, errp);
    }
    kv = keyval_new();
    if (c->fmt) {
        keyval_set(kv, "driver", c->fmt);
    }
    return bdrv_open(filename, kv, flags, errp);
}

/* Parse the options every command accepts; returns the option or -1/'?' */
const struct option common_long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"object", required_argument, NULL, OPT_OBJECT},
    {"image-opts", no_argument, NULL, OPT_IMAGE_OPTS},
    {"target-image-opts", no_argument, NULL, OPT_TARGET_IMAGE_OPTS},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"force-share", no_argument, NULL, 'U'},
    {"shrink", no_argument, NULL, OPT_SHRINK},
    {"force", no_argument, NULL, OPT_FORCE},
    {"preallocation", required_argument, NULL, OPT_PREALLOCATION},
    {"format", required_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

void usage(void)
{
    printf(
        "usage: " PROG " [standard options] command [command options]\n"
        "tpmvm disk image utility (command syntax and output as qemu-img)\n"
        "\n"
        "Command syntax:\n"
        "  amend [--object objectdef] [--image-opts] [-q] [-f fmt] -o options filename\n"
        "  check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] "
        "[-r [leaks | all]] [-U] filename\n"
        "  convert [--object objectdef] [--image-opts] [-U] [-c] [-p] [-q] [-f fmt] "
        "[-O output_fmt] [-o options] filename output_filename\n"
        "  create [--object objectdef] [-q] [-f fmt] [-o options] filename [size]\n"
        "  info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [-U] "
        "filename\n"
        "  resize [--object objectdef] [--image-opts] [-f fmt] [-q] [--shrink] filename "
        "[+ | -]size\n"
        "  snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | "
        "-c snapshot | -d snapshot] filename\n"
        "\n"
        "Supported formats: raw qcow2\n");
}

static bool add_o_option(GString **opts, const char *arg)
{
    if (!*opts) {
        *opts = g_string_new(arg);
    } else {
        g_string_append_printf(*opts, ",%s", arg);
    }
    return true;
}

bool output_is_json(const ImgCommon *c, bool *json)
{
    if (!c->output || !strcmp(c->output, "human")) {
        *json = false;
        return true;
    }
    if (!strcmp(c->output, "json")) {
        *json = true;
        return true;
    }
    img_error("--output must be used with human or json as argument.");
    return false;
}

/* ---- create --------------------------------------------------------------- */

static void print_create_help(const char *fmt)
{
    if (!strcmp(fmt, "qcow2")) {
        printf(
            "Supported qcow2 options:\n"
            "  cluster_size=<size>    - qcow2 cluster size (512 .. 2M, default 64k)\n"
            "  compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])\n"
            "  encrypt.format=<str>   - Encrypt the image, format choices: 'luks'\n"
            "  encrypt.key-secret=<str> - ID of secret providing qcow2 AES key or LUKS "
            "passphrase\n"
            "  encrypt.iter-time=<num> - Time to spend in PBKDF in milliseconds\n"
            "  encrypt.cipher-alg=<str> - Name of encryption cipher algorithm\n"
            "  encrypt.hash-alg=<str> - Name of encryption hash algorithm\n"
            "  refcount_bits=<num>    - Width of a reference count entry in bits\n"
            "  size=<size>            - Virtual disk size\n");
    } else {
        printf("Supported %s options:\n"
               "  size=<size>            - Virtual disk size\n",
               fmt);
    }
}

static char *create_summary(const char *fmt, uint64_t size, KeyVal *kv)
{
    static const char *const enc_keys[] = {
        "encrypt.format",      "encrypt.key-secret", "encrypt.cipher-alg",
        "encrypt.cipher-mode", "encrypt.ivgen-alg",  "encrypt.ivgen-hash-alg",
        "encrypt.hash-alg",    "encrypt.iter-time",  NULL,
    };
    GString *s = g_string_new(NULL);
    const char *v;

    if (strcmp(fmt, "qcow2") != 0) {
        g_string_append_printf(s, "size=%" G_GUINT64_FORMAT, size);
        return g_string_free(s, FALSE);
    }
    for (int i = 0; enc_keys[i]; i++) {
        if (keyval_has(kv, enc_keys[i])) {
            g_string_append_printf(s, "%s=%s ", enc_keys[i], keyval_get(kv, enc_keys[i]));
        }
    }
    v = keyval_has(kv, "cluster_size") ? keyval_get(kv, "cluster_size") : NULL;
    if (v) {
        uint64_t cs;
        if (parse_size(v, 0, &cs, NULL)) {
            g_string_append_printf(s, "cluster_size=%" G_GUINT64_FORMAT " ", cs);
        } else {
            g_string_append_printf(s, "cluster_size=%s ", v);
        }
    } else {
        g_string_append(s, "cluster_size=65536 ");
    }
    g_string_append_printf(
        s, "extended_l2=off compression_type=zlib size=%" G_GUINT64_FORMAT, size);
    if (keyval_has(kv, "compat")) {
        g_string_append_printf(s, " compat=%s", keyval_get(kv, "compat"));
    }
    g_string_append_printf(
        s, " lazy_refcounts=off refcount_bits=%s",
        keyval_has(kv, "refcount_bits") ? keyval_get(kv, "refcount_bits") : "16");
    return g_string_free(s, FALSE);
}

static bool parse_image_size(const char *str, uint64_t *size)
{
    if (str[0] == '-' || !parse_size(str, 0, size, NULL) || *size > INT64_MAX) {
        img_error("Invalid image size specified. Must be between 0 and "
                  "9223372036854775807.");
        return false;
    }
    return true;
}

static int img_create(int argc, char **argv)
{
    ImgCommon c = {.fmt = "raw"};
    g_autoptr(GString) o = NULL;
    g_autoptr(KeyVal) kv = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *summary = NULL;
    const char *filename;
    uint64_t size = 0;
    bool have_size = false;
    int ch;

    while ((ch = getopt_long(argc, argv, ":f:o:qhF:b:u", common_long_opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            c.fmt = optarg;
            break;
        case 'o':
            add_o_option(&o, optarg);
            break;
        case 'b':
        case 'F':
            img_error("Backing files are not supported");
            return 1;
        default: {
            int ret = img_common_option(ch, &c);
            if (ret >= 0) {
                return ret;
            }
            break;
        }
        }
    }
    if (optind >= argc) {
        img_error("Expecting image file name");
        return 1;
    }
    filename = argv[optind++];
    kv = keyval_parse(o ? o->str : "", NULL, &err);
    if (!kv) {
        img_error("Invalid options for file format '%s': %s", c.fmt, err->message);
        return 1;
    }
    if (keyval_wants_help(kv)) {
        print_create_help(c.fmt);
        return 0;
    }
    if (optind < argc) {
        if (!parse_image_size(argv[optind++], &size)) {
            return 1;
        }
        have_size = true;
    } else if (keyval_has(kv, "size")) {
        if (!parse_image_size(keyval_get(kv, "size"), &size)) {
            return 1;
        }
        have_size = true;
    }
    keyval_get(kv, "size");
    if (optind != argc) {
        img_error("Unexpected argument: %s", argv[optind]);
        return 1;
    }
    if (!have_size) {
        img_error("Image creation needs a size parameter");
        return 1;
    }
    if (!bdrv_find_format(c.fmt) || !strcmp(c.fmt, "blkcrash")) {
        img_error("Unknown file format '%s'", c.fmt);
        return 1;
    }
    summary = create_summary(c.fmt, size, kv);
    if (!c.quiet) {
        printf("Formatting '%s', fmt=%s %s\n", filename, c.fmt, summary);
        fflush(stdout);
    }
    if (!bdrv_create(c.fmt, filename, size, kv, &err)) {
        img_error("%s: %s", filename, err->message);
        return 1;
    }
    return 0;
}

/* ---- snapshot ------------------------------------------------------------- */

static int img_snapshot(int argc, char **argv)
{
    ImgCommon c = {0};
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;
    const char *name = NULL;
    int action = 0, ch, ret = 0;

    while ((ch = getopt_long(argc, argv, ":la:c:d:f:hqU", common_long_opts, NULL)) !=
           -1) {
        switch (ch) {
        case 'l':
        case 'a':
        case 'c':
        case 'd':
            if (action) {
                img_error("Cannot mix '-l', '-a', '-c', '-d'");
                return 1;
            }
            action = ch;
            name = optarg;
            break;
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
    if (!action) {
        action = 'l';
    }
    bs = img_open(argv[optind], &c, action == 'l' ? 0 : BDRV_O_RDWR, &err);
    if (!bs) {
        img_error("%s", err->message);
        return 1;
    }
    switch (action) {
    case 'l': {
        BlockSnapshotInfo *list;
        int n = bdrv_snapshot_list(bs, &list);
        if (n > 0) {
            g_autoptr(GString) out = g_string_new("Snapshot list:\n");
            print_snapshot_table(out, list, n);
            fputs(out->str, stdout);
        }
        snapshot_list_free(list, n);
        break;
    }
    case 'c': {
        BlockSnapshotInfo sn = {0};
        gint64 now = g_get_real_time();
        sn.name = g_strdup(name);
        sn.date_sec = now / G_USEC_PER_SEC;
        sn.date_nsec = (now % G_USEC_PER_SEC) * 1000;
        sn.icount = 0;
        if (!bdrv_snapshot_create(bs, &sn, &err)) {
            img_error("Could not create snapshot '%s': %s", name, err->message);
            ret = 1;
        }
        block_snapshot_info_clear(&sn);
        break;
    }
    case 'a':
        if (!bdrv_snapshot_goto(bs, name, &err)) {
            img_error("Could not apply snapshot '%s': %s", name, err->message);
            ret = 1;
        }
        break;
    case 'd':
        if (!bdrv_snapshot_delete(bs, NULL, name, &err)) {
            img_error("Could not delete snapshot '%s': %s", name, err->message);
            ret = 1;
        }
        break;
    }
    if (ret == 0 && action != 'l' && !bdrv_flush(bs, &err)) {
        img_error("%s", err->message);
        ret = 1;
    }
    bdrv_close(bs);
    return ret;
}

/* ---- convert -------------------------------------------------------------- */

static bool buffer_is_zero(const uint8_t *buf, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

static int img_convert(int argc, char **argv)
{
    ImgCommon c = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) o = NULL;
    g_autoptr(KeyVal) create_opts = NULL;
    g_autoptr(KeyVal) open_opts = NULL;
    g_autofree uint8_t *buf = NULL;
    const char *out_fmt = "raw", *out_name, *key_secret = NULL;
    BlockDriverState *src, *dst;
    bool compress = false, progress = false;
    uint64_t size, chunk, done = 0;
    int ch, ret = 1;

    while ((ch = getopt_long(argc, argv, ":hf:O:o:cpqnt:T:S:U", common_long_opts,
                             NULL)) != -1) {
        switch (ch) {
        case 'f':
            c.fmt = optarg;
            break;
        case 'O':
            out_fmt = optarg;
            break;
        case 'o':
            add_o_option(&o, optarg);
            break;
        case 'c':
            compress = true;
            break;
        case 'p':
            progress = true;
            break;
        case 'n':
            img_error("-n (skip target creation) is not supported");
            return 1;
        case 't':
        case 'T':
        case 'S':
            break;
        case OPT_TARGET_IMAGE_OPTS:
            img_error("--target-image-opts is not supported");
            return 1;
        default: {
            int ret = img_common_option(ch, &c);
            if (ret >= 0) {
                return ret;
            }
            break;
        }
        }
    }
    if (argc - optind != 2) {
        img_error(argc - optind < 2
                      ? "Expecting image file name"
                      : "Converting several source images is not supported");
        return 1;
    }
    out_name = argv[optind + 1];
    create_opts = keyval_parse(o ? o->str : "", NULL, &err);
    if (!create_opts) {
        img_error("Invalid options for file format '%s': %s", out_fmt, err->message);
        return 1;
    }
    if (keyval_wants_help(create_opts)) {
        print_create_help(out_fmt);
        return 0;
    }
    if (compress && keyval_has(create_opts, "encrypt.format")) {
        img_error("Compression and encryption not supported at the same time");
        return 1;
    }
    if (compress && strcmp(out_fmt, "qcow2")) {
        img_error("Compression not supported for this file format");
        return 1;
    }
    src = img_open(argv[optind], &c, 0, &err);
    if (!src) {
        img_error("%s", err->message);
        return 1;
    }
    size = bdrv_getlength(src);
    /* The new image is opened with the secret it was created with. */
    key_secret = keyval_get(create_opts, "encrypt.key-secret");
    if (!bdrv_create(out_fmt, out_name, size, create_opts, &err)) {
        img_error("%s: %s", out_name, err->message);
        bdrv_close(src);
        return 1;
    }
    open_opts = keyval_new();
    keyval_set(open_opts, "driver", out_fmt);
    if (key_secret) {
        keyval_set(open_opts, "encrypt.key-secret", key_secret);
    }
    dst = bdrv_open(out_name, open_opts, BDRV_O_RDWR, &err);
    if (!dst) {
        img_error("%s", err->message);
        bdrv_close(src);
        return 1;
    }
    chunk = MAX(bdrv_cluster_size(dst), 65536);
    if (!compress) {
        chunk = MAX(chunk, 1u << 20);
    }
    buf = g_malloc(chunk);
    while (done < size) {
        uint64_t n = MIN(chunk, size - done), pnum;
        int st = bdrv_block_status(src, done, n, &pnum, &err);
        if (st < 0) {
            img_error("error while reading at byte %" G_GUINT64_FORMAT ": %s", done,
                      err->message);
            goto out;
        }
        if (st & BDRV_BLOCK_ZERO) {
            /* Unallocated or zero in the source: the new target reads zeros. */
            n = MAX(MIN(pnum, n), 1);
        } else {
            if (!bdrv_pread(src, done, buf, n, &err)) {
                img_error("error while reading at byte %" G_GUINT64_FORMAT ": %s", done,
                          err->message);
                goto out;
            }
            if (!buffer_is_zero(buf, n)) {
                bool ok = compress ? bdrv_write_compressed(dst, done, buf, n, &err)
                                   : bdrv_pwrite(dst, done, buf, n, &err);
                if (!ok) {
                    img_error("error while writing at byte %" G_GUINT64_FORMAT ": %s",
                              done, err->message);
                    goto out;
                }
            }
        }
        done += n;
        if (progress && !c.quiet) {
            printf("    (%3.2f/100%%)\r", done * 100.0 / MAX(size, 1));
            fflush(stdout);
        }
    }
    if (!bdrv_flush(dst, &err)) {
        img_error("%s", err->message);
        goto out;
    }
    if (progress && !c.quiet) {
        printf("    (100.00/100%%)\n");
    }
    ret = 0;
out:
    bdrv_close(dst);
    bdrv_close(src);
    return ret;
}

/* ---- resize / amend ------------------------------------------------------- */

static int img_resize(int argc, char **argv)
{
    ImgCommon c = {0};
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;
    const char *arg;
    bool shrink = false;
    uint64_t delta, size;
    int64_t cur;
    int ch, ret = 1, sign = 0;

    /* A size like "-1G" must not be taken for an option. */
    if (argc > 2 && argv[argc - 1][0] == '-' && g_ascii_isdigit(argv[argc - 1][1])) {
        argv[argc - 1][0] = '~';
    }
    while ((ch = getopt_long(argc, argv, ":f:hq", common_long_opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            c.fmt = optarg;
            break;
        case OPT_SHRINK:
            shrink = true;
            break;
        case OPT_PREALLOCATION:
            if (strcmp(optarg, "off")) {
                img_error("Unsupported preallocation mode '%s'", optarg);
                return 1;
            }
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
    if (argc - optind != 2) {
        img_error("Expecting image file name and size");
        return 1;
    }
    arg = argv[optind + 1];
    if (arg[0] == '+') {
        sign = 1;
        arg++;
    } else if (arg[0] == '~') {
        sign = -1;
        arg++;
    }
    if (!parse_size(arg, 0, &delta, NULL) || delta > INT64_MAX) {
        img_error("Invalid size specified");
        return 1;
    }
    bs = img_open(argv[optind], &c, BDRV_O_RDWR, &err);
    if (!bs) {
        img_error("%s", err->message);
        return 1;
    }
    cur = bdrv_getlength(bs);
    if (sign > 0) {
        size = cur + delta;
    } else if (sign < 0) {
        if (delta > (uint64_t)cur) {
            img_error("New image size must be positive");
            goto out;
        }
        size = cur - delta;
    } else {
        size = delta;
    }
    if (size < (uint64_t)cur && !shrink) {
        img_error("Use the --shrink option to perform a shrink operation.");
        goto out;
    }
    if (!bdrv_truncate(bs, size, &err) || !bdrv_flush(bs, &err)) {
        img_error("%s", err->message);
        goto out;
    }
    if (!c.quiet) {
        printf("Image resized.\n");
    }
    ret = 0;
out:
    bdrv_close(bs);
    return ret;
}

static int img_amend(int argc, char **argv)
{
    ImgCommon c = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) o = NULL;
    g_autoptr(KeyVal) kv = NULL;
    BlockDriverState *bs;
    int ch, ret = 1;

    while ((ch = getopt_long(argc, argv, ":ho:f:t:pq", common_long_opts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            add_o_option(&o, optarg);
            break;
        case 'f':
            c.fmt = optarg;
            break;
        case 't':
        case 'p':
        case OPT_FORCE:
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
    if (!o) {
        img_error("Must specify options (-o)");
        return 1;
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    kv = keyval_parse(o->str, NULL, &err);
    if (!kv) {
        img_error("Invalid options for file format: %s", err->message);
        return 1;
    }
    if (keyval_wants_help(kv)) {
        printf("Amend options for qcow2 (LUKS key slots):\n"
               "  encrypt.state=active|inactive\n"
               "  encrypt.new-secret=<id>  - passphrase to add (state=active)\n"
               "  encrypt.keyslot=<num>    - free slot to add it to (default: the first),\n"
               "                             or the slot to erase (state=inactive)\n"
               "  encrypt.old-secret=<id>  - erase every slot this passphrase opens\n"
               "                             (state=inactive); with state=active it\n"
               "                             must open the image too\n"
               "  encrypt.iter-time=<num>  - PBKDF2 time for the new slot (ms)\n");
        return 0;
    }
    bs = img_open(argv[optind], &c, BDRV_O_RDWR, &err);
    if (!bs) {
        img_error("%s", err->message);
        return 1;
    }
    if (!bdrv_amend(bs, kv, &err) || !bdrv_flush(bs, &err)) {
        img_error("Error while amending options: %s", err->message);
        goto out;
    }
    ret = 0;
out:
    bdrv_close(bs);
    return ret;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} img_cmds[] = {
    {"amend", img_amend},       {"check", img_check}, {"convert", img_convert},
    {"create", img_create},     {"info", img_info},   {"resize", img_resize},
    {"snapshot", img_snapshot},
};

int main(int argc, char **argv)
{
    const char *cmd;
    int ret;

    log_set_prog_name(PROG);
    if (argc < 2) {
        img_error("Not enough arguments\nTry '" PROG " --help' for more information");
        return 1;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage();
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf(PROG " version %s\n", TPMVM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(img_cmds); i++) {
        if (!strcmp(cmd, img_cmds[i].name)) {
            optind = 1;
            ret = img_cmds[i].fn(argc - 1, argv + 1);
            drive_close_all();
            secret_delete_all();
            return ret;
        }
    }
    img_error("Command not found: %s", cmd);
    return 1;
}
