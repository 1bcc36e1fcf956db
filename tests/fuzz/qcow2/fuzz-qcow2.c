/*
 * Fuzz target for the qcow2 driver (block/qcow2*.c) and the block layer under
 * it: images come from users, downloads and other hosts, so every header
 * field, extension, L1/L2 entry, refcount, snapshot table entry and LUKS area
 * is hostile.
 *
 * Input: an image file. To keep seeds of images with a LUKS area (1 MiB of
 * mostly zeros) small, the 8 bytes "ZRUN" + BE32 n stand for n zero bytes;
 * the image is at most 8 MiB once expanded (the rest is cut). It is put in a
 * memfd (zero runs become holes) and opened read-only through the file
 * protocol, first for metadata only (BDRV_O_NO_IO, no secret), then - if
 * that worked - with encrypt.key-secret pointing at the passphrase "fuzz"
 * unless the image is LUKS-encrypted with more than FUZZ_QCOW2_MAX_ITERS
 * PBKDF2 iterations in a slot or the master-key digest (the LUKS code is
 * fuzzed on its own by fuzz-luks; big counts only cost time).
 *
 * With the image open: read the first 4 MiB of the virtual disk and its last
 * 64 KiB (twice: the same bytes each time), list the snapshots and look
 * some up by id, read the start of the vmstate area, and run
 * a check without repairs (twice: the same counts each time).
 *
 * Checks beyond "does not crash, hang or exhaust memory" (run with
 * -rss_limit_mb and -malloc_limit_mb, see docs/security.md):
 *   - nothing writes to the image: its size and modification time stay;
 *   - every failure sets an error, and error messages are printable UTF-8;
 *   - reads and checks are repeatable, and a check without repairs fixes
 *     nothing;
 *   - every listed snapshot has an id and a name; the first and last four are
 *     found by their id.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "block/block.h"
#include "block/block_int.h"
#include "crypto/secret.h"
#include "util/keyval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_QCOW2_MAX_IMAGE (8u << 20)
#define FUZZ_QCOW2_MAX_ITERS 5000
#define FUZZ_QCOW2_READ_HEAD (4u << 20)
#define FUZZ_QCOW2_READ_TAIL (64u << 10)
#define FUZZ_QCOW2_CHUNK (64u << 10)

static int img_fd = -1;
static char *img_path;
static uint8_t *buf_a, *buf_b;

static void G_GNUC_NORETURN fail(const char *what, const GError *err)
{
    fprintf(stderr, "fuzz-qcow2: invariant broken: %s\n", what);
    if (err) {
        fprintf(stderr, "fuzz-qcow2: error: %s\n", err->message);
    }
    abort();
}

static void fuzz_init(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *file = NULL;
    g_autofree char *opts = NULL;

    /* a GLib critical is a broken precondition: a bug, not noise */
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    img_fd = memfd_create("fuzz-qcow2-image", MFD_CLOEXEC);
    if (img_fd < 0) {
        fail("memfd_create", NULL);
    }
    img_path = g_strdup_printf("/proc/self/fd/%d", img_fd);
    /* the passphrase "fuzz", from a file: data= would print a warning */
    dir = g_dir_make_tmp("fuzz-qcow2-XXXXXX", NULL);
    file = g_build_filename(dir ? dir : "/nonexistent", "pass", NULL);
    if (!dir || !g_file_set_contents(file, "fuzz", 4, NULL)) {
        fail("cannot write the passphrase file", NULL);
    }
    opts = g_strdup_printf("qom-type=secret,id=sec0,file=%s", file);
    kv = keyval_parse(opts, NULL, &err);
    if (!kv || !secret_create(kv, &err)) {
        fail("cannot create the secret", err);
    }
    unlink(file);
    rmdir(dir);
    buf_a = g_malloc(FUZZ_QCOW2_CHUNK);
    buf_b = g_malloc(FUZZ_QCOW2_CHUNK);
}

/* Expand zero runs into the memfd; returns the image size. */
static uint64_t image_write(const uint8_t *data, size_t size)
{
    uint64_t len = 0;
    size_t i = 0;

    if (ftruncate(img_fd, 0) < 0) {
        fail("ftruncate", NULL);
    }
    while (i < size && len < FUZZ_QCOW2_MAX_IMAGE) {
        if (size - i >= 8 && memcmp(data + i, "ZRUN", 4) == 0) {
            uint64_t n = (uint64_t)data[i + 4] << 24 | (uint64_t)data[i + 5] << 16 |
                         (uint64_t)data[i + 6] << 8 | data[i + 7];
            len += MIN(n, FUZZ_QCOW2_MAX_IMAGE - len);
            i += 8;
            continue;
        }
        {
            const uint8_t *next = memmem(data + i, size - i, "ZRUN", 4);
            size_t n = next ? (size_t)(next - (data + i)) : size - i;

            /* a "ZRUN" without its 8 bytes is plain data */
            if (n == 0) {
                n = size - i;
            }
            n = MIN(n, FUZZ_QCOW2_MAX_IMAGE - len);
            if (pwrite(img_fd, data + i, n, (off_t)len) != (ssize_t)n) {
                fail("pwrite", NULL);
            }
            len += n;
            i += n;
        }
    }
    if (ftruncate(img_fd, (off_t)len) < 0) {
        fail("ftruncate", NULL);
    }
    return len;
}

static bool message_is_printable(const char *msg)
{
    if (!g_utf8_validate(msg, -1, NULL)) {
        return false;
    }
    for (const char *p = msg; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if ((c < 0x20 && c != '\n') || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
            return false;
        }
    }
    return true;
}

static void check_error(const GError *err, const char *what)
{
    if (!err) {
        fail(what, NULL);
    }
    if (!message_is_printable(err->message)) {
        fail("an error message with control characters or invalid UTF-8", err);
    }
}

static BlockDriverState *image_open(int flags, bool with_key, GError **errp)
{
    g_autofree char *opts = g_strdup_printf(
        "driver=qcow2,file.driver=file,file.filename=%s,file.locking=off%s", img_path,
        with_key ? ",encrypt.key-secret=sec0" : "");
    g_autoptr(KeyVal) kv = keyval_parse(opts, NULL, errp);

    if (!kv) {
        fail("the harness's own options do not parse", errp ? *errp : NULL);
    }
    return bdrv_open(NULL, kv, flags, errp);
}

static bool luks_within_cap(const BlockDriverInfo *bdi)
{
    if (!bdi->has_luks_info) {
        return true;
    }
    if (bdi->luks.master_key_iters > FUZZ_QCOW2_MAX_ITERS) {
        return false;
    }
    for (int i = 0; i < 8; i++) {
        if (bdi->luks.slots[i].active &&
            bdi->luks.slots[i].iters > FUZZ_QCOW2_MAX_ITERS) {
            return false;
        }
    }
    return true;
}

/* Read [off, off+len) twice; both reads agree in outcome and in bytes. */
static void read_range(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    while (len > 0) {
        uint64_t n = MIN(len, (uint64_t)FUZZ_QCOW2_CHUNK);
        g_autoptr(GError) e1 = NULL;
        g_autoptr(GError) e2 = NULL;
        bool ok1 = bdrv_pread(bs, off, buf_a, n, &e1);
        bool ok2 = bdrv_pread(bs, off, buf_b, n, &e2);

        if (ok1 != ok2) {
            fail("reading the same range twice succeeded once", e1 ? e1 : e2);
        }
        if (!ok1) {
            check_error(e1, "a failed read without an error");
            return; /* the rest of a damaged image would fail the same way */
        }
        if (memcmp(buf_a, buf_b, n) != 0) {
            fail("reading the same range twice gave different bytes", NULL);
        }
        off += n;
        len -= n;
    }
}

static void check_snapshots(BlockDriverState *bs)
{
    BlockSnapshotInfo *list = NULL;
    int n = bdrv_snapshot_list(bs, &list);

    if (n < 0 || (n > 0 && !list)) {
        fail("a snapshot list with a negative count or no array", NULL);
    }
    for (int i = 0; i < n; i++) {
        BlockSnapshotInfo found = {0};

        if (!list[i].id_str || !list[i].name) {
            fail("a snapshot without an id or a name string", NULL);
        }
        /*
         * Each lookup lists the table again, and a tiny image can hold 65536
         * (zero) entries past its end: look up the first and last four only.
         * A duplicate id must still find one.
         */
        if (i >= 4 && i < n - 4) {
            continue;
        }
        if (!bdrv_snapshot_find(bs, list[i].id_str, &found)) {
            fail("a listed snapshot is not found by its id", NULL);
        }
        block_snapshot_info_clear(&found);
    }
    for (int i = 0; i < n; i++) {
        block_snapshot_info_clear(&list[i]);
    }
    g_free(list);
}

/*
 * The check prints a line per problem on stderr, as qemu-img check does:
 * thousands of lines a second while fuzzing. They go to /dev/null unless
 * FUZZ_VERBOSE is set (set it when reproducing a crash inside the check,
 * whose sanitizer report would go there too).
 */
static int quiet_stderr(void)
{
    int saved, null;

    if (g_getenv("FUZZ_VERBOSE")) {
        return -1;
    }
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || null < 0 || dup2(null, STDERR_FILENO) < 0) {
        fail("cannot redirect stderr", NULL);
    }
    close(null);
    return saved;
}

static void restore_stderr(int saved)
{
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
}

static void check_check(BlockDriverState *bs)
{
    BdrvCheckResult r1, r2;
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    int saved = quiet_stderr();
    bool ok1 = bdrv_check(bs, &r1, BDRV_FIX_NONE, &e1);
    bool ok2 = bdrv_check(bs, &r2, BDRV_FIX_NONE, &e2);

    restore_stderr(saved);

    if (ok1 != ok2 || (ok1 && memcmp(&r1, &r2, sizeof(r1)) != 0)) {
        fail("checking twice gave different results", e1 ? e1 : e2);
    }
    if (!ok1) {
        check_error(e1, "a failed check without an error");
    }
    if (r1.corruptions_fixed || r1.leaks_fixed) {
        fail("a check without repairs fixed something", NULL);
    }
}

static void exercise(BlockDriverState *bs)
{
    int64_t size = bdrv_getlength(bs);
    g_autoptr(GError) err = NULL;

    if (size > 0) {
        uint64_t head = MIN((uint64_t)size, (uint64_t)FUZZ_QCOW2_READ_HEAD);
        uint64_t tail = MIN((uint64_t)size - head, (uint64_t)FUZZ_QCOW2_READ_TAIL);

        read_range(bs, 0, head);
        read_range(bs, (uint64_t)size - tail, tail);
    }
    check_snapshots(bs);
    if (!bdrv_load_vmstate(bs, buf_a, 0, 4096, &err)) {
        check_error(err, "a failed vmstate read without an error");
    }
    check_check(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;
    BlockDriverInfo bdi;
    struct stat before, after;
    bool keyed, full;

    if (img_fd < 0) {
        fuzz_init();
    }
    image_write(data, size);
    if (fstat(img_fd, &before) < 0) {
        fail("fstat", NULL);
    }

    /* metadata only, as `tpmvm-img info` opens an image */
    bs = image_open(BDRV_O_NO_IO | BDRV_O_NO_LOCK, false, &err);
    if (!bs) {
        check_error(err, "a failed open without an error");
        return 0;
    }
    if (!bdrv_get_info(bs, &bdi, &err)) {
        check_error(err, "a failed get_info without an error");
        bdrv_close(bs);
        return 0;
    }
    keyed = bdi.encrypted;
    full = !bdi.encrypted || luks_within_cap(&bdi);
    bdrv_close(bs);

    if (full) {
        /* read-only, as a VM or `tpmvm-img check` opens it, with the key if needed */
        g_clear_error(&err);
        bs = image_open(BDRV_O_NO_LOCK, keyed, &err);
        if (!bs) {
            check_error(err, "a failed open without an error");
        } else {
            exercise(bs);
            bdrv_close(bs);
        }
    }

    if (fstat(img_fd, &after) < 0) {
        fail("fstat", NULL);
    }
    if (before.st_size != after.st_size ||
        before.st_mtim.tv_sec != after.st_mtim.tv_sec ||
        before.st_mtim.tv_nsec != after.st_mtim.tv_nsec) {
        fail("a read-only open wrote to the image", NULL);
    }
    return 0;
}
