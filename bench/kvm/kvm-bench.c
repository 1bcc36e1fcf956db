/*
 * The TPM as a KVM guest sees it: the test guest (tests/guest, mode=bench)
 * runs TPM2_GetRandom, TPM2_PCR_Extend and TPM2_NV_Write through its own TIS
 * driver, byte-wise and in XDATA bursts, and reports time per command, MMIO
 * accesses (= exits) per command and the cost of one exit measured just
 * before. This program adds the libtpms time of the same commands (measured
 * here, in-process, with the state in memory like tpmvm's builtin backend
 * without a drive) and prints the distance to the floor:
 *
 *     floor = exits per command x exit cost + libtpms time;  ratio = time / floor
 *
 * It also prints the host RSS of the tpmvm process beyond the guest's RAM,
 * and, when the host emulates guest kernel code (PVM), how much one guest
 * instruction loop iteration costs: that time is outside the floor.
 *
 *   kvm-bench [--tpmvm PATH] [--guest PATH] [--ms N] [--drive]
 *
 * --drive also runs the commands with the TPM state on a LUKS qcow2
 * (tpmvm-img or qemu-img, iter-time 10 ms), showing what durable NV costs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>

#define GUEST_RAM_MIB 64

/* ---- libtpms in this process: the ceiling of the TPM work itself ---- */

/* The TPM's blobs, kept in memory (what tpmvm does without a drive). */
static GHashTable *nv_blobs;

static TPM_RESULT nv_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT nv_load(unsigned char **data, uint32_t *length, uint32_t tpm_number,
                          const char *name)
{
    GBytes *b = g_hash_table_lookup(nv_blobs, name);
    gsize len;
    const void *p;

    if (!b) {
        return TPM_RETRY; /* absent: libtpms starts fresh */
    }
    p = g_bytes_get_data(b, &len);
    *data = malloc(len ? len : 1);
    memcpy(*data, p, len);
    *length = len;
    return TPM_SUCCESS;
}

static TPM_RESULT nv_store(const unsigned char *data, uint32_t length,
                           uint32_t tpm_number, const char *name)
{
    g_hash_table_insert(nv_blobs, g_strdup(name), g_bytes_new(data, length));
    return TPM_SUCCESS;
}

static TPM_RESULT nv_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
    g_hash_table_remove(nv_blobs, name);
    return TPM_SUCCESS;
}

static const uint8_t cmd_startup[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
static const uint8_t cmd_getrandom[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 32};
/* PCR_Extend(16) with an empty password session and one SHA-256 digest. */
static const uint8_t cmd_extend_head[] = {
    0x80, 0x02, 0, 0, 0,    65, 0, 0, 0x01, 0x82, 0, 0, 0, 16, 0, 0,   0,
    9,    0x40, 0, 0, 0x09, 0,  0, 0, 0,    0,    0, 0, 0, 1,  0, 0x0b};
/* NV_DefineSpace(0x01500010, 32 bytes, owner/auth read+write, no DA). */
static const uint8_t cmd_define[] = {
    0x80, 0x02, 0,    0,    0,    45, 0,    0,    0x01, 0x2a, 0x40, 0, 0, 0x01, 0,
    0,    0,    9,    0x40, 0,    0,  0x09, 0,    0,    0,    0,    0, 0, 0,    0,
    14,   0x01, 0x50, 0,    0x10, 0,  0x0b, 0x02, 0x06, 0,    0x06, 0, 0, 0,    32};
/* NV_Write(0x01500010, 32 bytes at 0) authorised by the index. */
static const uint8_t cmd_nvwrite_head[] = {
    0x80, 0x02, 0, 0, 0, 67,   0, 0, 0x01, 0x37, 0x01, 0x50, 0, 0x10, 0x01, 0x50, 0,
    0x10, 0,    0, 0, 9, 0x40, 0, 0, 0x09, 0,    0,    0,    0, 0,    0,    32};

static uint32_t resp_rc(const uint8_t *r, uint32_t len)
{
    return len >= 10 ? (uint32_t)r[6] << 24 | r[7] << 16 | r[8] << 8 | r[9] : 0xffffffff;
}

static uint32_t tpm_run(const uint8_t *cmd, uint32_t len)
{
    unsigned char *resp = NULL;
    uint32_t resp_len = 0, resp_size = 0, rc;

    if (TPMLIB_Process(&resp, &resp_len, &resp_size, (unsigned char *)cmd, len) !=
        TPM_SUCCESS) {
        free(resp);
        return 0xffffffff;
    }
    rc = resp_rc(resp, resp_len);
    free(resp);
    return rc;
}

typedef struct LibtpmsTimes {
    double getrandom_ns, extend_ns, nvwrite_ns;
} LibtpmsTimes;

/* Mean time of one command over at least `ms` milliseconds. */
static double time_command(uint8_t *cmd, uint32_t len, unsigned ms, size_t vary_at)
{
    gint64 t0 = g_get_monotonic_time(), t1;
    unsigned n = 0;

    do {
        if (vary_at) {
            cmd[vary_at] = (uint8_t)n;
        }
        if (tpm_run(cmd, len) != 0) {
            fprintf(stderr, "kvm-bench: libtpms refused a command (ordinal 0x%02x%02x)\n",
                    cmd[8], cmd[9]);
            exit(1);
        }
        n++;
        t1 = g_get_monotonic_time();
    } while (t1 - t0 < (gint64)ms * 1000 || n < 20);
    return (t1 - t0) * 1000.0 / n;
}

static bool measure_libtpms(unsigned ms, LibtpmsTimes *out)
{
    static struct libtpms_callbacks cbs = {
        .sizeOfStruct = sizeof(struct libtpms_callbacks),
        .tpm_nvram_init = nv_init,
        .tpm_nvram_loaddata = nv_load,
        .tpm_nvram_storedata = nv_store,
        .tpm_nvram_deletename = nv_delete,
    };
    uint8_t extend[sizeof(cmd_extend_head) + 32] = {0};
    uint8_t nvwrite[sizeof(cmd_nvwrite_head) + 32 + 2] = {0};

    nv_blobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify)g_bytes_unref);
    if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
        TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS ||
        TPMLIB_MainInit() != TPM_SUCCESS ||
        tpm_run(cmd_startup, sizeof(cmd_startup)) != 0 ||
        tpm_run(cmd_define, sizeof(cmd_define)) != 0) {
        fprintf(stderr, "kvm-bench: libtpms did not start\n");
        return false;
    }
    memcpy(extend, cmd_extend_head, sizeof(cmd_extend_head));
    memcpy(nvwrite, cmd_nvwrite_head, sizeof(cmd_nvwrite_head));
    out->getrandom_ns =
        time_command((uint8_t *)cmd_getrandom, sizeof(cmd_getrandom), ms, 0);
    out->extend_ns = time_command(extend, sizeof(extend), ms, sizeof(cmd_extend_head));
    out->nvwrite_ns =
        time_command(nvwrite, sizeof(nvwrite), ms, sizeof(cmd_nvwrite_head));
    TPMLIB_Terminate();
    return true;
}

/* ---- the guest ---- */

typedef struct BenchLine {
    char op[24];
    char xfer[8];
    double ns_per_op;
    double mmio_per_op;
    double exit_ns;
} BenchLine;

typedef struct GuestRun {
    GArray *lines; /* BenchLine */
    double mmio_exit_ns, pio_exit_ns, loop_ns;
    uint64_t rss_beyond_ram_kb, rss_total_kb, ram_rss_kb;
    int status;
    char *err;
} GuestRun;

static bool kv_get(const char *line, const char *key, char *out, size_t len)
{
    g_autofree char *pat = g_strdup_printf(" %s=", key);
    const char *p = strstr(line, pat);
    size_t n = 0;

    if (!p) {
        return false;
    }
    p += strlen(pat);
    while (p[n] && p[n] != ' ' && p[n] != '\r' && p[n] != '\n' && n + 1 < len) {
        n++;
    }
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

static double kv_num(const char *line, const char *key)
{
    char buf[32];

    return kv_get(line, key, buf, sizeof(buf)) ? g_ascii_strtod(buf, NULL) : 0;
}

static void parse_line(GuestRun *run, const char *line)
{
    BenchLine b = {0};

    if (!g_str_has_prefix(line, "BENCH ")) {
        return;
    }
    if (!kv_get(line, "op", b.op, sizeof(b.op))) {
        return;
    }
    if (!strcmp(b.op, "mmio-exit")) {
        run->mmio_exit_ns = kv_num(line, "ns_per_exit");
    } else if (!strcmp(b.op, "pio-exit")) {
        run->pio_exit_ns = kv_num(line, "ns_per_exit");
    } else if (!strcmp(b.op, "guest-loop")) {
        run->loop_ns = kv_num(line, "ns_per_iteration");
    } else if (kv_get(line, "xfer", b.xfer, sizeof(b.xfer))) {
        b.ns_per_op = kv_num(line, "ns_per_op");
        b.mmio_per_op = kv_num(line, "mmio_per_op");
        b.exit_ns = kv_num(line, "exit_ns");
        g_array_append_val(run->lines, b);
    }
}

/* RSS of the process, and of its guest RAM mapping (an anonymous mapping of
 * exactly the guest's RAM size), from /proc/PID/smaps. */
static void sample_rss(GuestRun *run, GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps", (int)pid);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    uint64_t total = 0, ram = 0;
    bool in_ram = false;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return;
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long long lo, hi, kb;

        if (sscanf(*l, "%llx-%llx ", &lo, &hi) == 2 && strchr(*l, ' ')) {
            in_ram = hi - lo == (unsigned long long)GUEST_RAM_MIB << 20;
        } else if (sscanf(*l, "Rss: %llu kB", &kb) == 1) {
            total += kb;
            if (in_ram) {
                ram += kb;
            }
        }
    }
    /* Peaks over the run (the guest touches its RAM as it goes). */
    run->rss_beyond_ram_kb = MAX(run->rss_beyond_ram_kb, total - ram);
    run->rss_total_kb = MAX(run->rss_total_kb, total);
    run->ram_rss_kb = MAX(run->ram_rss_kb, ram);
}

static bool run_guest(const char *tpmvm, const char *guest, unsigned ms,
                      const char *tpm_args, GuestRun *run)
{
    g_autofree char *append = g_strdup_printf("mode=bench bench-ms=%u", ms);
    g_autofree char *mem = g_strdup_printf("%u", GUEST_RAM_MIB);
    g_auto(GStrv) extra = g_strsplit(tpm_args, " ", -1);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GString) buf = g_string_new(NULL);
    g_autoptr(GError) err = NULL;
    int out_fd, err_fd, wstatus = 0;
    GPid pid;

    g_ptr_array_add(argv, (char *)tpmvm);
    const char *fixed[] = {"-machine", "pc",    "-accel",   "kvm",
                           "-m",       mem,     "-display", "none",
                           "-serial",  "stdio", "-device",  "isa-debug-exit",
                           "-kernel",  guest,   "-append",  append};
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_ptr_array_add(argv, (char *)fixed[i]);
    }
    for (char **a = extra; *a; a++) {
        if (**a) {
            g_ptr_array_add(argv, *a);
        }
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL,
                                  G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL,
                                  &out_fd, &err_fd, &err)) {
        fprintf(stderr, "kvm-bench: cannot run %s: %s\n", tpmvm, err->message);
        return false;
    }
    run->lines = g_array_new(FALSE, TRUE, sizeof(BenchLine));
    for (;;) {
        struct pollfd pfd = {.fd = out_fd, .events = POLLIN};
        char chunk[4096];
        ssize_t n;
        char *nl;

        sample_rss(run, pid);
        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        n = read(out_fd, chunk, sizeof(chunk));
        if (n <= 0) {
            break;
        }
        g_string_append_len(buf, chunk, n);
        while ((nl = strchr(buf->str, '\n'))) {
            *nl = 0;
            parse_line(run, buf->str);
            g_string_erase(buf, 0, nl - buf->str + 1);
        }
    }
    waitpid(pid, &wstatus, 0);
    {
        char ebuf[4096];
        ssize_t n = read(err_fd, ebuf, sizeof(ebuf) - 1);

        run->err = g_strndup(ebuf, n > 0 ? n : 0);
    }
    close(out_fd);
    close(err_fd);
    g_spawn_close_pid(pid);
    run->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    return run->status == 1 && run->lines->len > 0;
}

static double libtpms_ns(const LibtpmsTimes *t, const char *op)
{
    if (!strcmp(op, "getrandom")) {
        return t->getrandom_ns;
    }
    if (!strcmp(op, "pcr-extend")) {
        return t->extend_ns;
    }
    return t->nvwrite_ns;
}

static void print_table(const GuestRun *run, const LibtpmsTimes *lt, const char *title)
{
    printf("\n%s\n", title);
    printf("%-11s %-6s %8s %9s %8s %9s %10s %10s %6s\n", "command", "xfer", "per sec",
           "us/cmd", "exits", "exit us", "libtpms us", "floor us", "ratio");
    for (guint i = 0; i < run->lines->len; i++) {
        const BenchLine *b = &g_array_index(run->lines, BenchLine, i);
        double lib = libtpms_ns(lt, b->op);
        double floor_ns = b->mmio_per_op * b->exit_ns + lib;

        printf("%-11s %-6s %8.0f %9.1f %8.0f %9.1f %10.1f %10.1f %5.2fx\n", b->op,
               b->xfer, 1e9 / b->ns_per_op, b->ns_per_op / 1000, b->mmio_per_op,
               b->exit_ns / 1000, lib / 1000, floor_ns / 1000, b->ns_per_op / floor_ns);
    }
}

int main(int argc, char **argv)
{
    g_autofree char *tpmvm = NULL, *guest = NULL;
    unsigned ms = 1000;
    bool with_drive = false;
    LibtpmsTimes lt;
    GuestRun run = {0}, drun = {0};

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tpmvm") && i + 1 < argc) {
            tpmvm = g_strdup(argv[++i]);
        } else if (!strcmp(argv[i], "--guest") && i + 1 < argc) {
            guest = g_strdup(argv[++i]);
        } else if (!strcmp(argv[i], "--ms") && i + 1 < argc) {
            ms = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--drive")) {
            with_drive = true;
        } else {
            fprintf(stderr,
                    "usage: %s [--tpmvm PATH] [--guest PATH] [--ms N] [--drive]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!tpmvm) {
        tpmvm = g_strdup(TPMVM_BINARY_DEFAULT);
    }
    if (!guest) {
        guest = g_strdup(TPMVM_GUEST_DEFAULT);
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        printf("kvm-bench: skipped: /dev/kvm is not usable (%s)\n", g_strerror(errno));
        return 0;
    }
    if (!g_file_test(guest, G_FILE_TEST_EXISTS)) {
        printf("kvm-bench: skipped: the test guest %s was not built\n", guest);
        return 0;
    }

    if (!measure_libtpms(ms / 2 ? ms / 2 : 1, &lt)) {
        return 1;
    }
    if (!run_guest(tpmvm, guest, ms,
                   "-tpmdev builtin,id=tpm0 -device tpm-tis,tpmdev=tpm0", &run)) {
        fprintf(stderr, "kvm-bench: the guest run failed (status %d)\n%s", run.status,
                run.err ? run.err : "");
        return 1;
    }
    printf("tpmvm under KVM, guest-side TIS driver (tests/guest mode=bench), %u ms per "
           "command\n",
           ms);
    printf("exit cost (guest loop): MMIO %.1f us, port I/O %.1f us\n",
           run.mmio_exit_ns / 1000, run.pio_exit_ns / 1000);
    printf("guest ring-0 empty loop: %.0f ns per iteration%s\n", run.loop_ns,
           run.loop_ns > 20 ? "  (the host emulates guest kernel code, e.g. PVM: the "
                              "driver's own instructions are not in the floor)"
                            : "");
    print_table(&run, &lt, "TPM state in memory (floor = exits x exit cost + libtpms)");
    printf("\nhost RSS of tpmvm beyond guest RAM: %.1f MiB (peak total %.1f MiB, guest "
           "RAM resident %.1f of %u MiB)\n",
           run.rss_beyond_ram_kb / 1024.0, run.rss_total_kb / 1024.0,
           run.ram_rss_kb / 1024.0, GUEST_RAM_MIB);

    if (with_drive) {
        g_autofree char *dir = g_dir_make_tmp("kvm-bench-XXXXXX", NULL);
        g_autofree char *img = g_build_filename(dir, "tpm.qcow2", NULL);
        g_autofree char *bindir = g_path_get_dirname(tpmvm);
        g_autofree char *ourimg = g_build_filename(bindir, "tools", "tpmvm-img", NULL);
        /* tpmvm-img from the same build, else qemu-img (same syntax). */
        g_autofree char *cmd = g_strdup_printf(
            "%s create -q -f qcow2 --object secret,id=sec0,data=bench "
            "-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 %s 1M",
            g_file_test(ourimg, G_FILE_TEST_IS_EXECUTABLE) ? ourimg : "qemu-img", img);
        g_autofree char *args = g_strdup_printf(
            "-object secret,id=sec0,data=bench -drive if=none,id=tpmnv,file=%s,"
            "format=qcow2,encrypt.format=luks,encrypt.key-secret=sec0 "
            "-tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0",
            img);
        int st = -1;

        if (!g_spawn_command_line_sync(cmd, NULL, NULL, &st, NULL) || st != 0) {
            printf("\n(drive run skipped: could not create %s)\n", img);
        } else if (!run_guest(tpmvm, guest, ms, args, &drun)) {
            printf("\n(drive run skipped: %s)\n",
                   drun.err ? g_strstrip(drun.err) : "failed");
        } else {
            print_table(&drun, &lt,
                        "TPM state on a LUKS qcow2 (durable before each response; the "
                        "floor has no disk time)");
        }
        g_unlink(img);
        g_rmdir(dir);
    }
    return 0;
}
