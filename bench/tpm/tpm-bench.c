/*
 * TPM throughput, latency and footprint of tpmvm's built-in TPM, measured
 * through the TIS registers over the qtest protocol, against
 *   - the ceiling: TPMLIB_Process in a loop in this process (no device), and
 *   - the peer: QEMU's tpm-tis with swtpm, driven by the same client.
 *
 *   tpm-bench [--tpmvm PATH] [--seconds S] [--no-peer] [--no-tpmvm] [--cpu N]
 *
 * --cpu N runs this client and every process it starts on CPU N only. On a
 * small VM whose other CPUs sit idle, waking a process on another CPU costs
 * tens of microseconds, and every qtest line does that twice; on one CPU
 * both targets pay only for their own work and context switches.
 *
 * Figures: GetRandom and PCR_Extend per second with a Linux-style byte-wise
 * FIFO, through XDATA_FIFO with one qtest line per 4-byte access, and with
 * one qtest line per 64-byte burst (the target splits it into bus accesses);
 * the extra time of a state-changing NV_Write over an NV_Read; launch to the
 * first TPM2_Startup response on a plain and on a LUKS qcow2; RSS after
 * Startup; bytes written to storage per NV_Write. The
 * peer is skipped when swtpm or qemu-system-x86_64 is missing.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>

#define TIS_BASE 0xfed40000ull
#define TIS_ACCESS 0x00
#define TIS_STS 0x18
#define TIS_FIFO 0x24
#define TIS_XFIFO 0x80
#define STS_VALID 0x80
#define STS_COMMAND_READY 0x40
#define STS_GO 0x20
#define STS_DATA_AVAIL 0x10
#define STS_EXPECT 0x08
#define ACCESS_REQUEST_USE 0x02
#define ACCESS_ACTIVE 0x20
#define ACCESS_VALID 0x80

/*
 * FIFO_BYTEWISE: Linux's tpm_tis, one qtest line per byte through DATA_FIFO.
 * FIFO_XDATA_DWORD: XDATA_FIFO, one qtest line per 4-byte access.
 * FIFO_XDATA: XDATA_FIFO, one qtest line (write/read ADDR LEN) per 64-byte
 * burst; the target splits it into device accesses on its bus.
 */
typedef enum { FIFO_BYTEWISE, FIFO_XDATA_DWORD, FIFO_XDATA } FifoMode;

typedef struct Target {
    const char *name;
    GPid pid;     /* the process with the TIS (tpmvm or QEMU) */
    GPid tpm_pid; /* the process that writes TPM state (tpmvm or swtpm) */
    GPid aux_pid; /* swtpm, 0 for tpmvm */
    int fd;       /* qtest connection */
    GString *rx;  /* buffered input */
    char *dir;
    double launch_ms;
} Target;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every process started, so that die() leaves none behind. */
static GPid children[8];
static unsigned n_children;

static void kill_children(void)
{
    for (unsigned i = 0; i < n_children; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
}

/* STS reads spent waiting, and qtest lines sent (for TPM_BENCH_VERBOSE). */
static unsigned long sts_polls, qt_lines;

static char *trace_ring[64];
static unsigned trace_pos;

static void trace_line(const char *dir, const char *line)
{
    g_free(trace_ring[trace_pos % 64]);
    trace_ring[trace_pos++ % 64] = g_strdup_printf("%s %s", dir, line);
}

static G_NORETURN void die(const char *fmt, ...)
{
    va_list ap;
    for (unsigned i = trace_pos > 64 ? trace_pos - 64 : 0; i < trace_pos; i++) {
        fprintf(stderr, "%s\n", trace_ring[i % 64]);
    }
    va_start(ap, fmt);
    fprintf(stderr, "tpm-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    kill_children();
    exit(1);
}

/* qtest line protocol (docs: the qtest wire protocol) */

static void qt_send(Target *t, const char *line)
{
    size_t len = strlen(line), off = 0;
    qt_lines++;
    trace_line(">", line);
    while (off < len) {
        ssize_t n = write(t->fd, line + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            die("%s: qtest write failed: %s", t->name, g_strerror(errno));
        }
        off += n;
    }
}

/* Next reply line, skipping asynchronous "IRQ ..." lines. */
static char *qt_reply(Target *t)
{
    for (;;) {
        char *nl = memchr(t->rx->str, '\n', t->rx->len);
        if (nl) {
            size_t n = nl - t->rx->str;
            char *line = g_strndup(t->rx->str, n);
            g_string_erase(t->rx, 0, n + 1);
            trace_line("<", line);
            if (g_str_has_prefix(line, "IRQ ")) {
                g_free(line);
                continue;
            }
            if (!g_str_has_prefix(line, "OK")) {
                die("%s: qtest error: %s", t->name, line);
            }
            return line;
        }
        char buf[65536];
        ssize_t r = read(t->fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            die("%s: qtest connection closed", t->name);
        }
        g_string_append_len(t->rx, buf, r);
    }
}

static void qt_cmd(Target *t, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void qt_cmd(Target *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qt_send(t, line);
    g_free(qt_reply(t));
}

static uint32_t qt_read(Target *t, const char *op, uint64_t addr)
{
    char line[64];
    snprintf(line, sizeof(line), "%s 0x%" PRIx64 "\n", op, addr);
    qt_send(t, line);
    g_autofree char *r = qt_reply(t);
    return (uint32_t)g_ascii_strtoull(r + 3, NULL, 16);
}

static void writeb(Target *t, uint32_t reg, uint8_t v)
{
    qt_cmd(t, "writeb 0x%llx 0x%x\n", TIS_BASE + reg, v);
}

static uint8_t readb(Target *t, uint32_t reg)
{
    return qt_read(t, "readb", TIS_BASE + reg);
}

static uint32_t readl(Target *t, uint32_t reg)
{
    return qt_read(t, "readl", TIS_BASE + reg);
}

static void writel(Target *t, uint32_t reg, uint32_t v)
{
    qt_cmd(t, "writel 0x%llx 0x%x\n", TIS_BASE + reg, v);
}

/* Little-endian lanes: byte i of the dword is FIFO byte i. */
static void dword_write(Target *t, const uint8_t *data, size_t len)
{
    for (size_t off = 0; off < len; off += 4) {
        uint32_t v = 0;
        for (size_t i = 0; i < 4 && off + i < len; i++) {
            v |= (uint32_t)data[off + i] << (8 * i);
        }
        if (len - off >= 4) {
            writel(t, TIS_XFIFO + (off & 63), v);
        } else {
            for (size_t i = 0; off + i < len; i++) {
                writeb(t, TIS_XFIFO + ((off + i) & 63), (uint8_t)(v >> (8 * i)));
            }
        }
    }
}

static void dword_read(Target *t, uint8_t *out, size_t len)
{
    for (size_t off = 0; off < len; off += 4) {
        uint32_t v = readl(t, TIS_XFIFO + (off & 63));
        for (size_t i = 0; i < 4 && off + i < len; i++) {
            out[off + i] = (uint8_t)(v >> (8 * i));
        }
    }
}

static void burst_write(Target *t, const uint8_t *data, size_t len)
{
    GString *line = g_string_new(NULL);
    g_string_printf(line, "write 0x%llx %zu 0x", TIS_BASE + TIS_XFIFO, len);
    for (size_t i = 0; i < len; i++) {
        g_string_append_printf(line, "%02x", data[i]);
    }
    g_string_append_c(line, '\n');
    qt_send(t, line->str);
    g_string_free(line, TRUE);
    g_free(qt_reply(t));
}

static void burst_read(Target *t, uint8_t *out, size_t len)
{
    char line[64];
    snprintf(line, sizeof(line), "read 0x%llx %zu\n", TIS_BASE + TIS_XFIFO, len);
    qt_send(t, line);
    g_autofree char *r = qt_reply(t);
    const char *hex = strstr(r, "0x");
    if (!hex || strlen(hex + 2) < 2 * len) {
        die("%s: short read reply: %s", t->name, r);
    }
    for (size_t i = 0; i < len; i++) {
        char b[3] = {hex[2 + 2 * i], hex[3 + 2 * i], 0};
        out[i] = (uint8_t)strtoul(b, NULL, 16);
    }
}

static void tis_request_locality(Target *t)
{
    writeb(t, TIS_ACCESS, ACCESS_REQUEST_USE);
    for (int i = 0; i < 100000; i++) {
        if ((readb(t, TIS_ACCESS) & (ACCESS_ACTIVE | ACCESS_VALID)) ==
            (ACCESS_ACTIVE | ACCESS_VALID)) {
            return;
        }
    }
    die("%s: locality 0 not granted", t->name);
}

static void wait_sts(Target *t, uint8_t mask, uint8_t want)
{
    for (long i = 0; i < 50000000; i++) {
        sts_polls++;
        if ((readb(t, TIS_STS) & mask) == want) {
            return;
        }
    }
    die("%s: STS never reached 0x%x", t->name, want);
}

/*
 * One command through the TIS as Linux's tpm_tis does it (byte-wise: burst
 * count from STS, one MMIO byte access per FIFO byte, Expect checked after
 * each burst) or with 64-byte XDATA_FIFO bursts. Returns the response length.
 */
static uint32_t tis_transmit(Target *t, FifoMode mode, const uint8_t *cmd, uint32_t len,
                             uint8_t *rsp, uint32_t rsp_max)
{
    uint32_t got = 0, size;

    writeb(t, TIS_STS, STS_COMMAND_READY);
    wait_sts(t, STS_COMMAND_READY, STS_COMMAND_READY);
    if (mode != FIFO_BYTEWISE) {
        for (uint32_t off = 0; off < len; off += 64) {
            (mode == FIFO_XDATA ? burst_write : dword_write)(t, cmd + off,
                                                             MIN(64u, len - off));
        }
    } else {
        uint32_t count = 0;
        while (count < len - 1) {
            uint32_t burst = (readl(t, TIS_STS) >> 8) & 0xffff;
            burst = MIN(burst, len - count - 1);
            for (uint32_t i = 0; i < burst; i++) {
                writeb(t, TIS_FIFO, cmd[count++]);
            }
            if (!(readb(t, TIS_STS) & STS_EXPECT)) {
                die("%s: Expect dropped early", t->name);
            }
        }
        writeb(t, TIS_FIFO, cmd[count]);
        if (readb(t, TIS_STS) & STS_EXPECT) {
            die("%s: Expect still set after the last byte", t->name);
        }
    }
    writeb(t, TIS_STS, STS_GO);
    wait_sts(t, STS_DATA_AVAIL | STS_VALID, STS_DATA_AVAIL | STS_VALID);
    if (mode != FIFO_BYTEWISE) {
        void (*rd)(Target *, uint8_t *, size_t) =
            mode == FIFO_XDATA ? burst_read : dword_read;
        uint8_t chunk[64];
        rd(t, chunk, 64);
        size = (uint32_t)chunk[2] << 24 | chunk[3] << 16 | chunk[4] << 8 | chunk[5];
        if (size < 10 || size > rsp_max) {
            die("%s: bad response size %u (%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x)",
                t->name, size, chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5],
                chunk[6], chunk[7], chunk[8], chunk[9]);
        }
        memcpy(rsp, chunk, MIN(64u, size));
        for (got = MIN(64u, size); got < size; got += 64) {
            rd(t, chunk, 64);
            memcpy(rsp + got, chunk, MIN(64u, size - got));
        }
        got = size;
    } else {
        size = 10;
        while (got < size) {
            uint32_t burst = (readl(t, TIS_STS) >> 8) & 0xffff;
            burst = MIN(burst, size - got);
            for (uint32_t i = 0; i < burst; i++) {
                rsp[got++] = readb(t, TIS_FIFO);
            }
            if (got == 10) {
                size = (uint32_t)rsp[2] << 24 | rsp[3] << 16 | rsp[4] << 8 | rsp[5];
                if (size < 10 || size > rsp_max) {
                    die("%s: bad response size %u", t->name, size);
                }
            }
        }
        if (readb(t, TIS_STS) & STS_DATA_AVAIL) {
            die("%s: data left over", t->name);
        }
    }
    writeb(t, TIS_STS, STS_COMMAND_READY);
    return got;
}

/* TPM 2.0 commands (Part 3) */

static size_t put_cmd(uint8_t *b, uint16_t tag, uint32_t cc, const uint8_t *body,
                      size_t n)
{
    size_t len = 10 + n;
    b[0] = tag >> 8;
    b[1] = tag;
    b[2] = len >> 24;
    b[3] = len >> 16;
    b[4] = len >> 8;
    b[5] = len;
    b[6] = cc >> 24;
    b[7] = cc >> 16;
    b[8] = cc >> 8;
    b[9] = cc;
    memcpy(b + 10, body, n);
    return len;
}

static const uint8_t pw_auth[] = {0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0};

typedef struct Cmds {
    uint8_t startup[12], get_random[12], pcr_extend[80], nv_define[64], nv_write[96],
        nv_read[48];
    size_t startup_len, get_random_len, pcr_extend_len, nv_define_len, nv_write_len,
        nv_read_len;
} Cmds;

static void cmds_build(Cmds *c)
{
    uint8_t body[128];
    size_t n;

    c->startup_len = put_cmd(c->startup, 0x8001, 0x144, (const uint8_t[]){0, 0}, 2);
    c->get_random_len =
        put_cmd(c->get_random, 0x8001, 0x17b, (const uint8_t[]){0, 32}, 2);
    n = 0;
    memcpy(body, (const uint8_t[]){0, 0, 0, 10}, 4); /* PCR 10 */
    n = 4;
    memcpy(body + n, pw_auth, sizeof(pw_auth));
    n += sizeof(pw_auth);
    memcpy(body + n, (const uint8_t[]){0, 0, 0, 1, 0, 0x0b}, 6); /* 1 digest, SHA-256 */
    n += 6;
    memset(body + n, 0xab, 32);
    n += 32;
    c->pcr_extend_len = put_cmd(c->pcr_extend, 0x8002, 0x182, body, n);
    /* NV_DefineSpace(owner, index 0x01500010, 32 bytes, OWNERWRITE|OWNERREAD|NO_DA) */
    n = 0;
    memcpy(body, (const uint8_t[]){0x40, 0, 0, 1}, 4);
    n = 4;
    memcpy(body + n, pw_auth, sizeof(pw_auth));
    n += sizeof(pw_auth);
    memcpy(body + n,
           (const uint8_t[]){0, 0, 0, 14, 0x01, 0x50, 0, 0x10, 0, 0x0b, 0x02, 0x02, 0,
                             0x02, 0, 0, 0, 32},
           18);
    n += 18;
    c->nv_define_len = put_cmd(c->nv_define, 0x8002, 0x12a, body, n);
    n = 0;
    memcpy(body, (const uint8_t[]){0x40, 0, 0, 1, 0x01, 0x50, 0, 0x10}, 8);
    n = 8;
    memcpy(body + n, pw_auth, sizeof(pw_auth));
    n += sizeof(pw_auth);
    body[n++] = 0;
    body[n++] = 32;
    memset(body + n, 0, 32);
    n += 32;
    body[n++] = 0;
    body[n++] = 0;
    c->nv_write_len = put_cmd(c->nv_write, 0x8002, 0x137, body, n);
    n = 0;
    memcpy(body, (const uint8_t[]){0x40, 0, 0, 1, 0x01, 0x50, 0, 0x10}, 8);
    n = 8;
    memcpy(body + n, pw_auth, sizeof(pw_auth));
    n += sizeof(pw_auth);
    memcpy(body + n, (const uint8_t[]){0, 32, 0, 0}, 4);
    n += 4;
    c->nv_read_len = put_cmd(c->nv_read, 0x8002, 0x14e, body, n);
}

/* Offset of the NV_Write data in the command (header, 2 handles, auth, size). */
#define NV_WRITE_DATA_OFFSET (10 + 8 + 13 + 2)

static uint32_t rc_of(const uint8_t *rsp)
{
    return (uint32_t)rsp[6] << 24 | rsp[7] << 16 | rsp[8] << 8 | rsp[9];
}

static void expect_ok(Target *t, const char *what, const uint8_t *rsp)
{
    if (rc_of(rsp) != 0) {
        die("%s: %s failed with 0x%x", t->name, what, rc_of(rsp));
    }
}

/* process management */

static int listen_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_strlcpy(a.sun_path, path, sizeof(a.sun_path));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
        die("cannot listen on %s: %s", path, g_strerror(errno));
    }
    return fd;
}

static GPid spawn(char **argv, const char *log)
{
    GError *err = NULL;
    GPid pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (!g_spawn_async_with_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, -1, fd, fd, &err)) {
        die("cannot start %s: %s", argv[0], err->message);
    }
    close(fd);
    if (n_children < G_N_ELEMENTS(children)) {
        children[n_children++] = pid;
    }
    return pid;
}

static int accept_or_die(int lfd, GPid pid, const char *what, const char *log)
{
    for (int i = 0; i < 3000; i++) {
        fd_set set;
        struct timeval tv = {0, 10000};
        int status;
        FD_ZERO(&set);
        FD_SET(lfd, &set);
        if (select(lfd + 1, &set, NULL, NULL, &tv) > 0) {
            return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            g_autofree char *text = NULL;
            g_file_get_contents(log, &text, NULL, NULL);
            die("%s exited before connecting:\n%s", what, text ? text : "");
        }
    }
    die("%s did not connect within 30 s", what);
}

static void target_stop(Target *t)
{
    GPid pids[2] = {t->pid, t->aux_pid};
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    for (int i = 0; i < 2; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            for (int j = 0; j < 200 && waitpid(pids[i], NULL, WNOHANG) == 0; j++) {
                g_usleep(10000);
            }
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            for (unsigned j = 0; j < n_children; j++) {
                if (children[j] == pids[i]) {
                    children[j] = 0;
                }
            }
        }
    }
    t->pid = t->aux_pid = 0;
}

/* Start, take locality 0, send TPM2_Startup; the launch time ends there. */
static void target_ready(Target *t, double t0, const Cmds *c)
{
    uint8_t rsp[4096];

    tis_request_locality(t);
    tis_transmit(t, FIFO_BYTEWISE, c->startup, c->startup_len, rsp, sizeof(rsp));
    expect_ok(t, "TPM2_Startup", rsp);
    t->launch_ms = (now_s() - t0) * 1000;
}

static bool target_start_tpmvm(Target *t, const char *binary, bool unsafe, bool plain,
                               const Cmds *c)
{
    g_autofree char *sock = g_build_filename(t->dir, "qtest.sock", NULL);
    g_autofree char *img = g_build_filename(t->dir, "tpm.qcow2", NULL);
    g_autofree char *log = g_build_filename(t->dir, "tpmvm.log", NULL);
    g_autofree char *drive = g_strdup_printf("if=none,id=tpmnv,file=%s,format=qcow2%s%s",
                                             img, plain ? "" : ",encrypt.key-secret=sec0",
                                             unsafe ? ",cache=unsafe" : "");
    g_autofree char *qtest = g_strdup_printf("unix:%s", sock);
    /* tpmvm-img beside the binary (Debian's qemu-img cannot calibrate
     * iter-time=10), else qemu-img */
    g_autofree char *bindir = g_path_get_dirname(binary);
    g_autofree char *tool = g_build_filename(bindir, "tools", "tpmvm-img", NULL);
    char *mk[] = {
        g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE) ? tool : "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=sec0,data=benchpass",
        "-o",
        plain ? "cluster_size=65536"
              : "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
        img,
        "1M",
        NULL};
    char *argv[] = {(char *)binary,
                    "-machine",
                    "pc",
                    "-m",
                    "64",
                    "-accel",
                    "qtest",
                    "-qtest",
                    qtest,
                    "-object",
                    "secret,id=sec0,data=benchpass",
                    "-drive",
                    drive,
                    "-tpmdev",
                    "builtin,id=tpm0,drive=tpmnv",
                    "-device",
                    "tpm-tis,tpmdev=tpm0",
                    "-trace",
                    "tpm_nvram_slot_write",
                    NULL};
    int status = 0;
    int lfd;
    double t0;

    if (!g_file_test(img, G_FILE_TEST_EXISTS) &&
        (!g_spawn_sync(NULL, mk, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                       NULL, NULL, NULL, NULL, &status, NULL) ||
         !g_spawn_check_wait_status(status, NULL))) {
        fprintf(stderr, "tpm-bench: cannot create the TPM image; skipping tpmvm\n");
        return false;
    }
    g_unlink(sock);
    lfd = listen_unix(sock);
    t0 = now_s();
    t->pid = t->tpm_pid = spawn(argv, log);
    t->fd = accept_or_die(lfd, t->pid, "tpmvm", log);
    close(lfd);
    target_ready(t, t0, c);
    return true;
}

static bool target_start_peer(Target *t, const Cmds *c)
{
    g_autofree char *sock = g_build_filename(t->dir, "qtest.sock", NULL);
    g_autofree char *ctrl = g_build_filename(t->dir, "swtpm.sock", NULL);
    g_autofree char *state = g_build_filename(t->dir, "state", NULL);
    g_autofree char *log = g_build_filename(t->dir, "qemu.log", NULL);
    g_autofree char *swlog = g_build_filename(t->dir, "swtpm.log", NULL);
    g_autofree char *tpmstate = g_strdup_printf("dir=%s", state);
    g_autofree char *ctrlopt = g_strdup_printf("type=unixio,path=%s", ctrl);
    g_autofree char *chardev = g_strdup_printf("socket,id=chrtpm,path=%s", ctrl);
    g_autofree char *qtest = g_strdup_printf("unix:%s", sock);
    g_autofree char *swtpm = g_find_program_in_path("swtpm");
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    char *sw_argv[] = {swtpm,    "socket", "--tpmstate", tpmstate,
                       "--ctrl", ctrlopt,  "--tpm2",     NULL};
    /*
     * -S: no guest code runs. Debian's QEMU has no qtest accelerator and falls
     * back to TCG, where SeaBIOS would drive the TPM at the same time.
     */
    char *argv[] = {qemu,
                    "-S",
                    "-M",
                    "pc",
                    "-m",
                    "64",
                    "-display",
                    "none",
                    "-nodefaults",
                    "-chardev",
                    chardev,
                    "-tpmdev",
                    "emulator,id=tpm0,chardev=chrtpm",
                    "-device",
                    "tpm-tis,tpmdev=tpm0",
                    "-qtest",
                    qtest,
                    NULL};
    int lfd;
    double t0;

    if (!swtpm || !qemu) {
        fprintf(stderr, "tpm-bench: swtpm or qemu-system-x86_64 not found; no peer\n");
        return false;
    }
    g_mkdir(state, 0700);
    g_unlink(sock);
    g_unlink(ctrl);
    lfd = listen_unix(sock);
    t0 = now_s();
    t->aux_pid = t->tpm_pid = spawn(sw_argv, swlog);
    for (int i = 0; i < 1000 && !g_file_test(ctrl, G_FILE_TEST_EXISTS); i++) {
        g_usleep(1000);
    }
    t->pid = spawn(argv, log);
    t->fd = accept_or_die(lfd, t->pid, "qemu-system-x86_64", log);
    close(lfd);
    target_ready(t, t0, c);
    return true;
}

/* The last one only launches: the peer's setup (no encryption, no flush). */
typedef enum {
    KIND_TPMVM,
    KIND_PEER,
    KIND_TPMVM_UNSAFE,
    KIND_TPMVM_PLAIN,
    KIND_TPMVM_PLAIN_UNSAFE,
    KIND_N
} Kind;

static const char *const kind_names[KIND_N] = {"tpmvm", "qemu+swtpm",
                                               "tpmvm,cache=unsafe"};
static const char *tpmvm_binary;

static void rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
        !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        GDir *d = g_dir_open(path, 0, NULL);
        const char *name;
        while (d && (name = g_dir_read_name(d))) {
            g_autofree char *sub = g_build_filename(path, name, NULL);
            rm_rf(sub);
        }
        if (d) {
            g_dir_close(d);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

/*
 * Start a target of `kind` in `dir` (NULL: a fresh directory; else the
 * state a previous start left there); false if unavailable.
 */
static bool target_start(Target *t, Kind kind, const char *dir, const Cmds *c)
{
    memset(t, 0, sizeof(*t));
    t->name = kind_names[kind];
    t->fd = -1;
    t->rx = g_string_new(NULL);
    t->dir = dir ? g_strdup(dir) : g_dir_make_tmp("tpm-bench-XXXXXX", NULL);
    if (kind == KIND_PEER
            ? target_start_peer(t, c)
            : target_start_tpmvm(
                  t, tpmvm_binary,
                  kind == KIND_TPMVM_UNSAFE || kind == KIND_TPMVM_PLAIN_UNSAFE,
                  kind == KIND_TPMVM_PLAIN || kind == KIND_TPMVM_PLAIN_UNSAFE, c)) {
        return true;
    }
    target_stop(t);
    return false;
}

static void target_free(Target *t, bool keep_dir)
{
    target_stop(t);
    if (t->dir) {
        if (!keep_dir) {
            rm_rf(t->dir);
        }
        g_free(t->dir);
        t->dir = NULL;
    }
    if (t->rx) {
        g_string_free(t->rx, TRUE);
        t->rx = NULL;
    }
}

static long status_kib(GPid pid, const char *key)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", pid);
    g_autofree char *text = NULL;
    const char *p;

    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strstr(text, key))) {
        return 0;
    }
    return strtol(p + strlen(key) + 1, NULL, 10);
}

/*
 * Bytes the TPM wrote for its state since `log_offset`: tpmvm's slot writes
 * from its tpm_nvram_slot_write trace lines; swtpm rewrites its whole
 * permall file on every change, so its size.
 */
static double state_bytes_written(Target *t, bool peer, long log_offset)
{
    g_autofree char *path =
        g_build_filename(t->dir, peer ? "state/tpm2-00.permall" : "tpmvm.log", NULL);
    g_autofree char *text = NULL;
    gsize len = 0;
    double sum = 0;

    if (!g_file_get_contents(path, &text, &len, NULL)) {
        return -1;
    }
    if (peer) {
        return (double)len;
    }
    for (const char *p = text + MIN((gsize)log_offset, len);
         (p = strstr(p, " bytes="));) {
        p += 7;
        sum += g_ascii_strtod(p, NULL);
    }
    return sum;
}

static long log_size(Target *t)
{
    g_autofree char *path = g_build_filename(t->dir, "tpmvm.log", NULL);
    GStatBuf st;
    return g_stat(path, &st) == 0 ? (long)st.st_size : 0;
}

typedef enum {
    M_RANDOM_BYTES,
    M_EXTEND_BYTES,
    M_RANDOM_DWORD,
    M_EXTEND_DWORD,
    M_RANDOM_XDATA,
    M_EXTEND_XDATA,
    M_N_RATES
} RateMetric;

static const FifoMode metric_mode[M_N_RATES] = {FIFO_BYTEWISE,    FIFO_BYTEWISE,
                                                FIFO_XDATA_DWORD, FIFO_XDATA_DWORD,
                                                FIFO_XDATA,       FIFO_XDATA};

typedef struct Results {
    bool valid;
    double launch_ms;
    long rss_kib;
    double rtt_us;
    double rate[M_N_RATES];   /* commands per second, best window */
    double cpu_us[M_N_RATES]; /* CPU per command of the target's processes, best */
    double nv_write_ms, nv_read_ms;
    double state_bytes; /* bytes of TPM state written per NV_Write */
    long nv_writes;     /* NV_Writes sent after the setup */
} Results;

/*
 * CPU time (ns) that every thread of `pid` has run so far, from
 * /proc/PID/task/TID/schedstat (first field: time on a CPU, in ns); 0 if
 * unreadable.
 */
static uint64_t proc_cpu_ns(GPid pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", (int)pid);
    GDir *d = pid > 0 ? g_dir_open(dir, 0, NULL) : NULL;
    const char *tid;
    uint64_t sum = 0;

    while (d && (tid = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, tid, "schedstat", NULL);
        g_autofree char *text = NULL;

        if (g_file_get_contents(path, &text, NULL, NULL)) {
            sum += g_ascii_strtoull(text, NULL, 10);
        }
    }
    if (d) {
        g_dir_close(d);
    }
    return sum;
}

/* CPU of the target's processes (tpmvm; or QEMU and swtpm). */
static uint64_t target_cpu_ns(const Target *t)
{
    return proc_cpu_ns(t->pid) + (t->aux_pid > 0 ? proc_cpu_ns(t->aux_pid) : 0);
}

/*
 * Commands per second of one command during `seconds`; *cpu_us: CPU time
 * the target's processes spent per command. Both depend on how fast the
 * host wakes a sleeping process (every qtest line wakes the VM), the rate
 * most (see --cpu).
 */
static double rate_of(Target *t, FifoMode mode, const uint8_t *cmd, size_t len,
                      double seconds, double *cpu_us)
{
    uint8_t rsp[4096];
    double t0 = now_s(), t1;
    long n = 0;
    unsigned long polls0 = sts_polls, lines0 = qt_lines;
    uint64_t cpu0 = target_cpu_ns(t);

    do {
        tis_transmit(t, mode, cmd, len, rsp, sizeof(rsp));
        expect_ok(t, "command", rsp);
        n++;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    if (g_getenv("TPM_BENCH_VERBOSE")) {
        fprintf(
            stderr,
            "%s: %s: %.1f qtest lines and %.1f STS polls per command, %.1f us per line\n",
            t->name,
            mode == FIFO_XDATA         ? "xdata bursts"
            : mode == FIFO_XDATA_DWORD ? "xdata dwords"
                                       : "bytes",
            (double)(qt_lines - lines0) / n, (double)(sts_polls - polls0) / n,
            (t1 - t0) * 1e6 / (qt_lines - lines0));
    }
    *cpu_us = (double)(target_cpu_ns(t) - cpu0) / 1e3 / n;
    return n / (t1 - t0);
}

/* Microseconds per qtest round trip (a TIS register read). */
static double rtt_of(Target *t, double seconds)
{
    double t0 = now_s(), t1;
    long n = 0;

    do {
        readl(t, 0xf00); /* DID_VID */
        n++;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    return (t1 - t0) * 1e6 / n;
}

/* Milliseconds per NV command during `seconds` (new bytes on each NV_Write). */
static double nv_ms_of(Target *t, Cmds *c, bool write, double seconds, Results *r)
{
    uint8_t rsp[4096];
    double t0 = now_s(), t1;
    static uint32_t counter;
    long n = 0;

    do {
        if (write) {
            counter++;
            memcpy(c->nv_write + NV_WRITE_DATA_OFFSET, &counter, sizeof(counter));
            tis_transmit(t, FIFO_XDATA, c->nv_write, c->nv_write_len, rsp, sizeof(rsp));
        } else {
            tis_transmit(t, FIFO_XDATA, c->nv_read, c->nv_read_len, rsp, sizeof(rsp));
        }
        expect_ok(t, write ? "NV_Write" : "NV_Read", rsp);
        n++;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    if (write) {
        r->nv_writes += n;
    }
    return (t1 - t0) * 1000 / n;
}

static void nv_setup(Target *t, const Cmds *c)
{
    uint8_t rsp[4096];

    tis_transmit(t, FIFO_XDATA, c->nv_define, c->nv_define_len, rsp, sizeof(rsp));
    expect_ok(t, "NV_DefineSpace", rsp);
    tis_transmit(t, FIFO_XDATA, c->nv_write, c->nv_write_len, rsp, sizeof(rsp));
    expect_ok(t, "NV_Write", rsp);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The ceiling: TPMLIB_Process in a loop, state in memory. */
static unsigned char *ceiling_blob;
static uint32_t ceiling_len;

static TPM_RESULT ceil_nvram_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT ceil_load(unsigned char **data, uint32_t *len, uint32_t n,
                            const char *name)
{
    if (strcmp(name, "permall") || !ceiling_blob) {
        return TPM_RETRY;
    }
    *data = malloc(ceiling_len);
    memcpy(*data, ceiling_blob, ceiling_len);
    *len = ceiling_len;
    return TPM_SUCCESS;
}

static TPM_RESULT ceil_store(const unsigned char *data, uint32_t len, uint32_t n,
                             const char *name)
{
    if (!strcmp(name, "permall")) {
        free(ceiling_blob);
        ceiling_blob = malloc(len);
        memcpy(ceiling_blob, data, len);
        ceiling_len = len;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT ceil_delete(uint32_t n, const char *name, TPM_BOOL must)
{
    return TPM_SUCCESS;
}

static double ceiling_rate(unsigned char *cmd, uint32_t len, double seconds)
{
    unsigned char *rsp = NULL;
    uint32_t rsp_len, rsp_size = 0;
    double t0 = now_s(), t1;
    long n = 0;

    do {
        TPMLIB_Process(&rsp, &rsp_len, &rsp_size, cmd, len);
        if (rc_of(rsp)) {
            die("ceiling: command failed 0x%x", rc_of(rsp));
        }
        n++;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    free(rsp);
    return n / (t1 - t0);
}

static void ceiling(const Cmds *c0, double seconds, double out[2])
{
    struct libtpms_callbacks cbs = {
        .sizeOfStruct = sizeof(cbs),
        .tpm_nvram_init = ceil_nvram_init,
        .tpm_nvram_loaddata = ceil_load,
        .tpm_nvram_storedata = ceil_store,
        .tpm_nvram_deletename = ceil_delete,
    };
    Cmds c = *c0;
    unsigned char *rsp = NULL;
    uint32_t rsp_len, rsp_size = 0;

    TPMLIB_RegisterCallbacks(&cbs);
    TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
    if (TPMLIB_MainInit() != TPM_SUCCESS) {
        die("ceiling: libtpms does not start");
    }
    TPMLIB_Process(&rsp, &rsp_len, &rsp_size, c.startup, c.startup_len);
    free(rsp);
    out[0] = ceiling_rate(c.get_random, c.get_random_len, seconds);
    out[1] = ceiling_rate(c.pcr_extend, c.pcr_extend_len, seconds);
    TPMLIB_Terminate();
}

static void print_rate(const char *label, const Results *r, RateMetric m, double ceil,
                       double target)
{
    const Results *ours = &r[KIND_TPMVM], *peer = &r[KIND_PEER];

    printf("%-36s %11.0f %11.0f %11.0f", label, ours->rate[m], peer->rate[m], ceil);
    if (ours->valid && peer->valid) {
        double x = ours->rate[m] / peer->rate[m];
        printf("   x%.2f vs peer (target >= x%.1f: %s)", x, target,
               x >= target ? "met" : "MISSED");
    }
    printf("\n");
}

static void print_cpu(const char *label, const Results *r, RateMetric m)
{
    const Results *ours = &r[KIND_TPMVM], *peer = &r[KIND_PEER];

    printf("%-36s %11.1f %11.1f %11s   us", label, ours->cpu_us[m], peer->cpu_us[m], "-");
    if (ours->valid && peer->valid && peer->cpu_us[m] > 0) {
        printf("   x%.2f of peer", ours->cpu_us[m] / peer->cpu_us[m]);
    }
    printf("\n");
}

static void print_launch(const char *label, const Results *r, Kind k, const char *note)
{
    double peer = r[KIND_PEER].launch_ms;

    printf("%-36s %11.1f %11.1f %11s   ms", label, r[k].launch_ms, peer, "-");
    if (r[k].launch_ms > 0 && peer > 0) {
        double x = r[k].launch_ms / peer;
        printf("   x%.2f of peer (target <= x0.3: %s)", x, x <= 0.3 ? "met" : "MISSED");
    }
    printf("; %s\n", note);
}

int main(int argc, char **argv)
{
    double seconds = 1.0, ceil[2];
    bool run[KIND_N] = {true, true, true, true, true};
    Results r[KIND_N] = {0};
    Target tg[KIND_N];
    const int rounds = 5, launches = 5;
    long log_offset[KIND_N] = {0};
    Cmds c;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tpmvm") && i + 1 < argc) {
            tpmvm_binary = argv[++i];
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = g_ascii_strtod(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--no-peer")) {
            run[KIND_PEER] = false;
        } else if (!strcmp(argv[i], "--no-tpmvm")) {
            run[KIND_TPMVM] = run[KIND_TPMVM_UNSAFE] = run[KIND_TPMVM_PLAIN] =
                run[KIND_TPMVM_PLAIN_UNSAFE] = false;
        } else if (!strcmp(argv[i], "--cpu") && i + 1 < argc) {
            cpu_set_t set;
            int cpu = atoi(argv[++i]);

            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set) != 0) {
                fprintf(stderr, "tpm-bench: cannot run on CPU %d: %s\n", cpu,
                        g_strerror(errno));
                return 2;
            }
            printf("All processes on CPU %d.\n", cpu);
        } else {
            fprintf(stderr,
                    "usage: %s [--tpmvm PATH] [--seconds S] [--no-peer] [--no-tpmvm] "
                    "[--cpu N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!tpmvm_binary) {
        tpmvm_binary =
            g_getenv("TPMVM_BINARY") ? g_getenv("TPMVM_BINARY") : "build/tpmvm";
    }
    signal(SIGPIPE, SIG_IGN);
    cmds_build(&c);
    ceiling(&c, seconds, ceil);

    /*
     * Launch time: median of several starts on existing TPM state (a VM's
     * every boot but its first), targets interleaved.
     */
    {
        double ms[KIND_N][8];
        char *dirs[KIND_N] = {NULL};
        for (int k = 0; k < KIND_N; k++) {
            if (run[k] && target_start(&tg[k], k, NULL, &c)) {
                dirs[k] = g_strdup(tg[k].dir);
                target_free(&tg[k], true);
            } else {
                run[k] = false;
            }
        }
        for (int i = 0; i < launches; i++) {
            for (int k = 0; k < KIND_N; k++) {
                if (run[k] && target_start(&tg[k], k, dirs[k], &c)) {
                    ms[k][i] = tg[k].launch_ms;
                    target_free(&tg[k], true);
                }
            }
        }
        for (int k = 0; k < KIND_N; k++) {
            if (dirs[k]) {
                qsort(ms[k], launches, sizeof(ms[k][0]), cmp_double);
                r[k].launch_ms = ms[k][launches / 2];
                rm_rf(dirs[k]);
                g_free(dirs[k]);
            }
        }
    }
    run[KIND_TPMVM_PLAIN] = run[KIND_TPMVM_PLAIN_UNSAFE] = false; /* launches only */
    for (int k = 0; k < KIND_N; k++) {
        if (run[k] && target_start(&tg[k], k, NULL, &c)) {
            r[k].valid = true;
            r[k].rss_kib =
                status_kib(tg[k].pid, "VmRSS:") + status_kib(tg[k].aux_pid, "VmRSS:");
            nv_setup(&tg[k], &c);
            log_offset[k] = log_size(&tg[k]);
        } else {
            run[k] = false;
        }
    }
    /*
     * Short windows, targets interleaved, best window kept: the host is
     * shared, and a slow patch should not land on one target only.
     */
    for (int round = 0; round < rounds; round++) {
        double w = seconds / rounds;
        for (int k = 0; k < KIND_N; k++) {
            Results *x = &r[k];
            double v;
            if (!run[k]) {
                continue;
            }
            if (k != KIND_TPMVM_UNSAFE) {
                v = rtt_of(&tg[k], w / 4);
                x->rtt_us = round ? MIN(x->rtt_us, v) : v;
                for (int m = 0; m < M_N_RATES; m++) {
                    const uint8_t *cmd = m % 2 == 0 ? c.get_random : c.pcr_extend;
                    size_t len =
                        cmd == c.get_random ? c.get_random_len : c.pcr_extend_len;
                    double cpu;
                    v = rate_of(&tg[k], metric_mode[m], cmd, len, w, &cpu);
                    x->rate[m] = MAX(x->rate[m], v);
                    x->cpu_us[m] = round ? MIN(x->cpu_us[m], cpu) : cpu;
                }
            }
            v = nv_ms_of(&tg[k], &c, false, w, x);
            x->nv_read_ms = round ? MIN(x->nv_read_ms, v) : v;
            v = nv_ms_of(&tg[k], &c, true, w, x);
            x->nv_write_ms = round ? MIN(x->nv_write_ms, v) : v;
        }
    }
    for (int k = 0; k < KIND_N; k++) {
        if (run[k]) {
            double bytes = state_bytes_written(&tg[k], k == KIND_PEER, log_offset[k]);
            /* swtpm's figure is its file size: each change rewrites it whole */
            r[k].state_bytes =
                k == KIND_PEER || !r[k].nv_writes ? bytes : bytes / r[k].nv_writes;
            target_free(&tg[k], false);
        }
    }

    printf("%-36s %11s %11s %11s\n", "", "tpmvm", "qemu+swtpm", "ceiling");
    printf("%-36s %11.1f %11.1f %11s   us\n", "qtest round trip (TIS register read)",
           r[KIND_TPMVM].rtt_us, r[KIND_PEER].rtt_us, "-");
    print_rate("GetRandom/s, byte-wise FIFO", r, M_RANDOM_BYTES, ceil[0], 1.5);
    print_rate("PCR_Extend/s, byte-wise FIFO", r, M_EXTEND_BYTES, ceil[1], 1.5);
    print_rate("GetRandom/s, XDATA, line per dword", r, M_RANDOM_DWORD, ceil[0], 2);
    print_rate("PCR_Extend/s, XDATA, line per dword", r, M_EXTEND_DWORD, ceil[1], 2);
    print_rate("GetRandom/s, XDATA, line per burst", r, M_RANDOM_XDATA, ceil[0], 2);
    print_rate("PCR_Extend/s, XDATA, line per burst", r, M_EXTEND_XDATA, ceil[1], 2);
    printf("CPU per command (VM + TPM processes; wake-ups from idle are charged here "
           "too):\n");
    print_cpu("  GetRandom, byte-wise FIFO", r, M_RANDOM_BYTES);
    print_cpu("  PCR_Extend, byte-wise FIFO", r, M_EXTEND_BYTES);
    print_cpu("  GetRandom, XDATA, line per dword", r, M_RANDOM_DWORD);
    print_cpu("  PCR_Extend, XDATA, line per dword", r, M_EXTEND_DWORD);
    print_cpu("  GetRandom, XDATA, line per burst", r, M_RANDOM_XDATA);
    print_cpu("  PCR_Extend, XDATA, line per burst", r, M_EXTEND_XDATA);
    printf("%-36s %11.3f %11.3f %11s   ms\n", "NV_Read (XDATA)", r[KIND_TPMVM].nv_read_ms,
           r[KIND_PEER].nv_read_ms, "-");
    printf("%-36s %11.3f %11.3f %11s   ms\n", "NV_Write (XDATA)",
           r[KIND_TPMVM].nv_write_ms, r[KIND_PEER].nv_write_ms, "-");
    printf("%-36s %11.3f %11.3f %11s   ms (durable: written and flushed)\n",
           "NV_Write extra over NV_Read",
           r[KIND_TPMVM].nv_write_ms - r[KIND_TPMVM].nv_read_ms,
           r[KIND_PEER].nv_write_ms - r[KIND_PEER].nv_read_ms, "-");
    printf("%-36s %11.3f %11s %11s   ms (written, not flushed, like the peer)\n",
           "  same, tpmvm with cache=unsafe",
           r[KIND_TPMVM_UNSAFE].nv_write_ms - r[KIND_TPMVM_UNSAFE].nv_read_ms, "-", "-");
    print_launch("launch to Startup rsp, plain qcow2", r, KIND_TPMVM_PLAIN,
                 "durable: 1 flush; the fair comparison (the peer has no encryption)");
    print_launch("launch to Startup rsp, LUKS qcow2", r, KIND_TPMVM,
                 "plus the PBKDF2 the LUKS header asks for (iter-time=10)");
    print_launch("  plain qcow2, cache=unsafe", r, KIND_TPMVM_PLAIN_UNSAFE,
                 "no flush, no unlock: the peer's own setup");
    print_launch("  LUKS qcow2, cache=unsafe", r, KIND_TPMVM_UNSAFE,
                 "Startup's state change not flushed");
    printf("%-36s %11ld %11ld %11s   KiB", "RSS after Startup", r[KIND_TPMVM].rss_kib,
           r[KIND_PEER].rss_kib, "-");
    if (r[KIND_TPMVM].valid && r[KIND_PEER].valid) {
        double x = (double)r[KIND_TPMVM].rss_kib / r[KIND_PEER].rss_kib;
        printf("   x%.2f of peer (target <= x0.3: %s)", x, x <= 0.3 ? "met" : "MISSED");
    }
    printf("\n%-36s %11.0f %11.0f %11s   bytes, tpmvm: 1 write + 1 flush; swtpm: file "
           "rewrite, no flush\n",
           "state written per NV_Write", r[KIND_TPMVM].state_bytes,
           r[KIND_PEER].state_bytes, "-");
    return 0;
}
