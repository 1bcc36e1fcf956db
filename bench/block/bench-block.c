/*
 * Block benchmark: 4 KiB random and 1 MiB sequential reads and writes on a
 * LUKS qcow2 image, tpmvm's block layer against QEMU 7.2 on the same file in
 * the same run, plus the time to open a LUKS image against its PBKDF2 time.
 *
 * qemu-img bench 7.2 cannot take the --object secret a LUKS image needs, so
 * two peers are measured:
 *  - LUKS qcow2: qemu-io runs the same request list as -c commands; its time
 *    is taken with qemu-io's start-up (same image, no commands) and its
 *    per-command overhead (same list on the null-co driver) removed;
 *  - plain qcow2 (same sizes): qemu-img bench -d 1 with the same offsets
 *    ("random" = a fixed stride coprime with the request count, which
 *    qemu-img bench's -S reproduces), its "Run completed in" time.
 * Ratios are peer time / our time: >= 1.0 means tpmvm is at least as fast.
 * Peers are skipped when qemu-img/qemu-io are missing.
 *
 *   bench-block [--size MiB] [--ops N] [--dir DIR] [--cache writeback|none]
 *               [--iter-time MS] [--repeats N]
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <nettle/pbkdf2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "block/block_int.h"
#include "crypto/secret.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct Req {
    uint64_t off;
    uint64_t len;
} Req;

typedef struct Workload {
    const char *name;
    bool write;
    Req *reqs;
    int n;
    uint64_t step; /* offset stride, for qemu-img bench -S */
} Workload;

static BlockDriverState *open_image(const char *path, const char *cache, GError **errp)
{
    bool luks = strstr(path, "luks") != NULL;
    g_autofree char *s = g_strdup_printf("driver=qcow2,file.filename=%s%s", path,
                                         luks ? ",encrypt.key-secret=sec0" : "");
    g_autoptr(KeyVal) kv = keyval_parse(s, NULL, errp);
    int flags = BDRV_O_RDWR | (strcmp(cache, "none") == 0 ? BDRV_O_NOCACHE : 0);

    return bdrv_open(NULL, kv, flags, errp);
}

/* Our time for the requests (and a final flush after writes if `flush`). */
static double ours(const char *path, const char *cache, const Workload *w, bool flush)
{
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs = open_image(path, cache, &err);
    uint8_t *buf = g_aligned_alloc(1 << 20, 1, 4096);
    double t0, t;

    if (!bs) {
        g_printerr("bench-block: %s\n", err->message);
        exit(1);
    }
    memset(buf, 0xab, 1 << 20);
    t0 = now();
    for (int i = 0; i < w->n; i++) {
        bool ok = w->write ? bdrv_pwrite(bs, w->reqs[i].off, buf, w->reqs[i].len, &err)
                           : bdrv_pread(bs, w->reqs[i].off, buf, w->reqs[i].len, &err);
        if (!ok) {
            g_printerr("bench-block: %s\n", err->message);
            exit(1);
        }
    }
    if (flush && w->write && !bdrv_flush(bs, &err)) {
        g_printerr("bench-block: %s\n", err->message);
        exit(1);
    }
    t = now() - t0;
    bdrv_close(bs);
    g_aligned_free(buf);
    return t;
}

/* Seconds qemu-io needs for the commands (0 commands: start-up only). */
static double qemu_io_run(const char *image_opts, const char *cache, const Workload *w,
                          bool with_cmds)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) gerr = NULL;
    int status;
    double t0, t;

    g_ptr_array_add(argv, g_strdup("qemu-io"));
    g_ptr_array_add(argv, g_strdup("--object"));
    g_ptr_array_add(argv, g_strdup("secret,id=sec0,data=bench"));
    g_ptr_array_add(argv, g_strdup("-t"));
    g_ptr_array_add(argv, g_strdup(cache));
    g_ptr_array_add(argv, g_strdup("--image-opts"));
    g_ptr_array_add(argv, g_strdup(image_opts));
    for (int i = 0; with_cmds && i < w->n; i++) {
        g_ptr_array_add(argv, g_strdup("-c"));
        g_ptr_array_add(
            argv, g_strdup_printf("%s -q %s%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                                  w->write ? "write" : "read", w->write ? "-P 0xab " : "",
                                  w->reqs[i].off, w->reqs[i].len));
    }
    g_ptr_array_add(argv, g_strdup("-c"));
    g_ptr_array_add(argv, g_strdup("flush"));
    g_ptr_array_add(argv, NULL);
    t0 = now();
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                      &out, &err, &status, &gerr) ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_printerr("bench-block: qemu-io failed: %s\n", gerr ? gerr->message : err);
        exit(1);
    }
    t = now() - t0;
    g_ptr_array_unref(argv);
    return t;
}

static int repeats = 3;

/* Best of `repeats` runs: the machine is shared, noise only adds time. */
#define BEST(expr)                                                                       \
    ({                                                                                   \
        double best_ = 1e9;                                                              \
        for (int r_ = 0; r_ < repeats; r_++) {                                           \
            double t_ = (expr);                                                          \
            best_ = MIN(best_, t_);                                                      \
        }                                                                                \
        best_;                                                                           \
    })

static double peer(const char *path, const char *cache, const Workload *w)
{
    g_autofree char *luks =
        g_strdup_printf("driver=qcow2,file.filename=%s,encrypt.key-secret=sec0", path);
    g_autofree char *null = g_strdup("driver=null-co,size=1T");
    double luks_cmds = BEST(qemu_io_run(luks, cache, w, true));
    double luks_start = BEST(qemu_io_run(luks, cache, w, false));
    double null_cmds = BEST(qemu_io_run(null, "writeback", w, true));
    double null_start = BEST(qemu_io_run(null, "writeback", w, false));

    double t = (luks_cmds - luks_start) - (null_cmds - null_start);

    /* Below 5% of qemu-io's own time the difference is noise: not measurable. */
    return t > 0.05 * luks_cmds ? t : -1;
}

/* Offsets i * step mod size: a large odd stride scatters them like random. */
static Workload make_workload(const char *name, bool write, int n, uint64_t len,
                              bool random, uint64_t size)
{
    Workload w = {.name = name, .write = write, .n = n, .reqs = g_new(Req, n)};

    w.step = random ? len * 7919 : len;
    for (int i = 0; i < n; i++) {
        w.reqs[i].len = len;
        w.reqs[i].off = ((uint64_t)i * w.step) % size;
    }
    return w;
}

/* qemu-img bench -d 1 on the plain image: its own "Run completed" time. */
static double qemu_img_bench(const char *path, const char *cache, const Workload *w)
{
    g_autofree char *count = g_strdup_printf("%d", w->n);
    g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, w->reqs[0].len);
    g_autofree char *step = g_strdup_printf("%" G_GUINT64_FORMAT, w->step);
    g_autofree char *out = NULL, *err = NULL;
    const char *argv[20] = {"qemu-img", "bench", "-f",  "qcow2", "-t", cache, "-d",
                            "1",        "-c",    count, "-s",    size, "-S",  step};
    int n = 14, status;
    const char *p;

    if (w->write) {
        argv[n++] = "-w";
        argv[n++] = "--pattern=171";
    }
    argv[n++] = path;
    argv[n] = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                      &err, &status, NULL) ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        !(p = strstr(out, "Run completed in "))) {
        g_printerr("bench-block: qemu-img bench failed: %s\n", err ? err : "");
        exit(1);
    }
    return g_ascii_strtod(p + strlen("Run completed in "), NULL);
}

static void fill_image(const char *path)
{
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs = open_image(path, "writeback", &err);
    uint8_t *buf = g_malloc(1 << 20);
    int64_t size;

    if (!bs) {
        g_printerr("bench-block: %s\n", err->message);
        exit(1);
    }
    size = bdrv_getlength(bs);
    memset(buf, 0x5a, 1 << 20);
    for (int64_t off = 0; off < size; off += 1 << 20) {
        bdrv_pwrite(bs, off, buf, 1 << 20, NULL);
    }
    bdrv_flush(bs, NULL);
    bdrv_close(bs);
    g_free(buf);
}

/* Time of one PBKDF2 unlock of slot 0 and the master-key digest check. */
static double pbkdf2_time(const LuksInfo *li)
{
    uint8_t salt[32] = {0}, out[64];
    double t0 = now();

    pbkdf2_hmac_sha256(5, (const uint8_t *)"bench", li->slots[0].iters, sizeof(salt),
                       salt, 64, out);
    pbkdf2_hmac_sha256(64, out, li->master_key_iters, sizeof(salt), salt, 20, out);
    return now() - t0;
}

int main(int argc, char **argv)
{
    const char *dir = g_get_tmp_dir(), *cache = "writeback";
    int size_mb = 256, ops = 4000, iter_time = 1000;
    g_autofree char *tmpdir = NULL, *path = NULL, *plain = NULL, *pwfile = NULL,
                    *opts = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *qemu_io = g_find_program_in_path("qemu-io");
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    bool have_peer = qemu_io != NULL, have_bench = qemu_img != NULL, unmeasurable = false;
    BlockDriverState *bs;
    BlockDriverInfo bdi;
    Workload w[4];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            size_mb = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
            ops = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--cache") && i + 1 < argc) {
            cache = argv[++i];
        } else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) {
            repeats = atoi(argv[++i]);
            repeats = MAX(repeats, 1);
        } else if (!strcmp(argv[i], "--iter-time") && i + 1 < argc) {
            iter_time = atoi(argv[++i]);
        } else {
            g_printerr("usage: bench-block [--size MiB] [--ops N] [--dir DIR] "
                       "[--cache writeback|none] [--iter-time MS] [--repeats N]\n");
            return 1;
        }
    }
    tmpdir = g_build_filename(dir, "bench-block-XXXXXX", NULL);
    if (!g_mkdtemp(tmpdir)) {
        g_printerr("bench-block: cannot create a directory in %s\n", dir);
        return 1;
    }
    path = g_build_filename(tmpdir, "bench-luks.qcow2", NULL);
    plain = g_build_filename(tmpdir, "bench-plain.qcow2", NULL);
    pwfile = g_build_filename(tmpdir, "pw", NULL);
    g_file_set_contents(pwfile, "bench", 5, NULL);
    {
        g_autofree char *s = g_strdup_printf("id=sec0,file=%s", pwfile);
        g_autoptr(KeyVal) kv = keyval_parse(s, NULL, &err);
        if (!secret_create(kv, &err)) {
            g_printerr("bench-block: %s\n", err->message);
            return 1;
        }
    }
    opts = g_strdup_printf(
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=%d", iter_time);
    {
        g_autoptr(KeyVal) kv = keyval_parse(opts, NULL, &err);
        if (!bdrv_create("qcow2", path, (uint64_t)size_mb << 20, kv, &err)) {
            g_printerr("bench-block: %s\n", err->message);
            return 1;
        }
    }

    /* Open time against PBKDF2 time, then fill the image (no allocation below). */
    {
        double t0 = now(), t_open, t_kdf;
        bs = open_image(path, "writeback", &err);
        t_open = now() - t0;
        if (!bs || !bdrv_get_info(bs, &bdi, &err)) {
            g_printerr("bench-block: %s\n", err->message);
            return 1;
        }
        t_kdf = pbkdf2_time(&bdi.luks);
        printf("LUKS open (iter-time %d ms): %.3f s, PBKDF2 alone %.3f s, open/PBKDF2 "
               "%.2f\n",
               iter_time, t_open, t_kdf, t_open / t_kdf);
        if (have_peer) {
            g_autofree char *lo = g_strdup_printf(
                "driver=qcow2,file.filename=%s,encrypt.key-secret=sec0", path);
            Workload none = {.n = 0};
            bdrv_close(bs);
            double tq = qemu_io_run(lo, "writeback", &none, false);
            printf("qemu-io open+close of the same image: %.3f s (PBKDF2 ratio %.2f)\n",
                   tq, tq / t_kdf);
            bs = open_image(path, "writeback", &err);
        }
        bdrv_close(bs);
    }
    fill_image(path);

    w[0] =
        make_workload("4k-random-write", true, ops, 4096, true, (uint64_t)size_mb << 20);
    w[1] =
        make_workload("4k-random-read", false, ops, 4096, true, (uint64_t)size_mb << 20);
    /* sequential passes go over the image 4 times: long enough to measure */
    w[2] = make_workload("1m-seq-write", true, 4 * size_mb, 1 << 20, false,
                         (uint64_t)size_mb << 20);
    w[3] = make_workload("1m-seq-read", false, 4 * size_mb, 1 << 20, false,
                         (uint64_t)size_mb << 20);
    printf("\nLUKS qcow2 %d MiB, cache=%s, depth 1; seconds; ratio = qemu-io / tpmvm\n",
           size_mb, cache);
    printf("%-18s %8s %10s %10s %10s %7s\n", "workload", "ops", "tpmvm", "qemu-io",
           "MiB/s", "ratio");
    for (int i = 0; i < 4; i++) {
        /* qemu-io flushes at exit: both sides include the final flush */
        double t_ours = BEST(ours(path, cache, &w[i], true));
        double mib = (double)w[i].n * w[i].reqs[0].len / (1 << 20);
        if (have_peer) {
            double t_peer = peer(path, cache, &w[i]);
            printf("%-18s %8d %10.4f %10.4f %10.1f %7.2f\n", w[i].name, w[i].n, t_ours,
                   t_peer, mib / t_ours, t_peer / t_ours);
        } else {
            printf("%-18s %8d %10.4f %10s %10.1f %7s\n", w[i].name, w[i].n, t_ours,
                   "skipped", mib / t_ours, "-");
        }
    }

    /* The same on an unencrypted image, against qemu-img bench itself. */
    {
        g_autoptr(KeyVal) kv = keyval_new();
        if (!bdrv_create("qcow2", plain, (uint64_t)size_mb << 20, kv, &err)) {
            g_printerr("bench-block: %s\n", err->message);
            return 1;
        }
        fill_image(plain);
    }
    printf("\nplain qcow2 %d MiB, cache=%s, depth 1; seconds; ratio = qemu-img bench / "
           "tpmvm\n",
           size_mb, cache);
    printf("%-18s %8s %10s %10s %10s %7s\n", "workload", "ops", "tpmvm", "qemu-img",
           "MiB/s", "ratio");
    for (int i = 0; i < 4; i++) {
        /* qemu-img bench stops its clock before a final flush: neither side has one */
        double t_ours = BEST(ours(plain, cache, &w[i], false));
        double mib = (double)w[i].n * w[i].reqs[0].len / (1 << 20);
        if (have_bench) {
            double t_peer = BEST(qemu_img_bench(plain, cache, &w[i]));
            printf("%-18s %8d %10.4f %10.4f %10.1f %7.2f\n", w[i].name, w[i].n, t_ours,
                   t_peer, mib / t_ours, t_peer / t_ours);
        } else {
            printf("%-18s %8d %10.4f %10s %10.1f %7s\n", w[i].name, w[i].n, t_ours,
                   "skipped", mib / t_ours, "-");
        }
        g_free(w[i].reqs);
    }
    g_unlink(plain);
    if (unmeasurable) {
        printf(
            "n/a: qemu-io's per-command overhead hides QEMU's time for that workload\n");
    }
    if (!have_peer || !have_bench) {
        printf("peers skipped: qemu-io/qemu-img not installed (package qemu-utils)\n");
    }
    g_unlink(path);
    g_unlink(pwfile);
    g_rmdir(tmpdir);
    secret_delete_all();
    return 0;
}
