/*
 * TPM throughput, latency and footprint of tpmvm's built-in TPM, measured
 * through the TIS registers over the qtest protocol, against
 *   - the ceiling: TPMLIB_Process in a loop in this process (no device), and
 *   - the peer: QEMU's tpm-tis with swtpm, driven by the same client.
 *
 *   tpm-bench [--tpmvm PATH] [--seconds S] [--no-peer] [--no-tpmvm]
 *
 * Figures: GetRandom and PCR_Extend per second with a Linux-style byte-wise
 * FIFO and with 64-byte XDATA_FIFO bursts; the extra time of a state-
 * changing NV_Write over an NV_Read; launch to the first TPM2_Startup
 * response; RSS after Startup; bytes written to storage per NV_Write. The
 * peer is skipped when swtpm or qemu-system-x86_64 is missing.
 */
#include <errno.h>
#include <inttypes.h>
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

typedef enum { FIFO_BYTEWISE, FIFO_XDATA } FifoMode;

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
    if (mode == FIFO_XDATA) {
        for (uint32_t off = 0; off < len; off += 64) {
            burst_write(t, cmd + off, MIN(64u, len - off));
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
    if (mode == FIFO_XDATA) {
        uint8_t chunk[64];
        burst_read(t, chunk, 64);
        size = (uint32_t)chunk[2] << 24 | chunk[3] << 16 | chunk[4] << 8 | chunk[5];
        if (size < 10 || size > rsp_max) {
            die("%s: bad response size %u (%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x)",
                t->name, size, chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5],
                chunk[6], chunk[7], chunk[8], chunk[9]);
        }
        memcpy(rsp, chunk, MIN(64u, size));
        for (got = MIN(64u, size); got < size; got += 64) {
            burst_read(t, chunk, 64);
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

static bool target_start_tpmvm(Target *t, const char *binary, const Cmds *c)
{
    g_autofree char *sock = g_build_filename(t->dir, "qtest.sock", NULL);
    g_autofree char *img = g_build_filename(t->dir, "tpm.qcow2", NULL);
    g_autofree char *log = g_build_filename(t->dir, "tpmvm.log", NULL);
    g_autofree char *drive = g_strdup_printf(
        "if=none,id=tpmnv,file=%s,format=qcow2,encrypt.key-secret=sec0", img);
    g_autofree char *qtest = g_strdup_printf("unix:%s", sock);
    char *mk[] = {"qemu-img",
                  "create",
                  "-q",
                  "-f",
                  "qcow2",
                  "--object",
                  "secret,id=sec0,data=benchpass",
                  "-o",
                  "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
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
                    NULL};
    int status = 0;
    int lfd;
    double t0;

    if (!g_spawn_sync(NULL, mk, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                      &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        fprintf(stderr,
                "tpm-bench: qemu-img cannot create the TPM image; skipping tpmvm\n");
        return false;
    }
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

/* Bytes the process caused to be written to storage (/proc/PID/io). */
static long long io_write_bytes(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/io", pid);
    g_autofree char *text = NULL;
    const char *p;

    if (pid <= 0 || !g_file_get_contents(path, &text, NULL, NULL) ||
        !(p = strstr(text, "\nwrite_bytes:"))) {
        return -1;
    }
    return strtoll(p + 13, NULL, 10);
}

typedef struct Results {
    bool valid;
    double launch_ms;
    long rss_kib;
    double rate[2][2]; /* [FifoMode][0 GetRandom, 1 PCR_Extend] per second */
    double nv_write_ms, nv_read_ms;
    double bytes_per_nv_write;
} Results;

/* Commands per second of one command for `seconds`. */
static double rate_of(Target *t, FifoMode mode, const uint8_t *cmd, size_t len,
                      double seconds)
{
    uint8_t rsp[4096];
    double t0 = now_s(), t1;
    long n = 0;

    do {
        tis_transmit(t, mode, cmd, len, rsp, sizeof(rsp));
        expect_ok(t, "command", rsp);
        n++;
        t1 = now_s();
    } while (t1 - t0 < seconds);
    return n / (t1 - t0);
}

static void measure(Target *t, const Cmds *c0, double seconds, Results *r)
{
    Cmds c = *c0;
    uint8_t rsp[4096];
    long long w0, w1;
    int n = 0;
    double t0;

    r->valid = true;
    r->launch_ms = t->launch_ms;
    r->rss_kib = status_kib(t->pid, "VmRSS:") + status_kib(t->aux_pid, "VmRSS:");
    for (int m = 0; m < 2; m++) {
        r->rate[m][0] = rate_of(t, m, c.get_random, c.get_random_len, seconds);
        r->rate[m][1] = rate_of(t, m, c.pcr_extend, c.pcr_extend_len, seconds);
    }
    tis_transmit(t, FIFO_XDATA, c.nv_define, c.nv_define_len, rsp, sizeof(rsp));
    expect_ok(t, "NV_DefineSpace", rsp);
    tis_transmit(t, FIFO_XDATA, c.nv_write, c.nv_write_len, rsp, sizeof(rsp));
    expect_ok(t, "NV_Write", rsp);
    /* NV_Read: same path, no state change */
    t0 = now_s();
    n = 0;
    do {
        tis_transmit(t, FIFO_XDATA, c.nv_read, c.nv_read_len, rsp, sizeof(rsp));
        expect_ok(t, "NV_Read", rsp);
        n++;
    } while (now_s() - t0 < seconds);
    r->nv_read_ms = (now_s() - t0) * 1000 / n;
    /* NV_Write with new bytes each time: a durable state change */
    w0 = io_write_bytes(t->tpm_pid);
    t0 = now_s();
    n = 0;
    do {
        memcpy(c.nv_write + NV_WRITE_DATA_OFFSET, &n, sizeof(n));
        tis_transmit(t, FIFO_XDATA, c.nv_write, c.nv_write_len, rsp, sizeof(rsp));
        expect_ok(t, "NV_Write", rsp);
        n++;
    } while (now_s() - t0 < seconds);
    r->nv_write_ms = (now_s() - t0) * 1000 / n;
    w1 = io_write_bytes(t->tpm_pid);
    r->bytes_per_nv_write = (w0 >= 0 && w1 >= 0) ? (double)(w1 - w0) / n : -1;
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

static void print_ratio(const char *label, double ours, double peer, double ceil,
                        const char *unit, const char *target)
{
    printf("%-34s %12.1f %12.1f", label, ours, peer);
    if (ceil > 0) {
        printf(" %12.1f", ceil);
    } else {
        printf(" %12s", "-");
    }
    if (peer > 0 && ours > 0) {
        printf("   x%.2f vs peer", ours / peer);
    }
    if (ceil > 0 && ours > 0) {
        printf(", %.0f%% of ceiling", 100 * ours / ceil);
    }
    printf("  %s %s\n", unit, target ? target : "");
}

int main(int argc, char **argv)
{
    g_autofree char *tpmvm = NULL;
    double seconds = 1.0;
    bool run_peer = true, run_tpmvm = true;
    Results ours = {0}, peer = {0};
    double ceil[2];
    Cmds c;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tpmvm") && i + 1 < argc) {
            tpmvm = g_strdup(argv[++i]);
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = g_ascii_strtod(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--no-peer")) {
            run_peer = false;
        } else if (!strcmp(argv[i], "--no-tpmvm")) {
            run_tpmvm = false;
        } else {
            fprintf(stderr,
                    "usage: %s [--tpmvm PATH] [--seconds S] [--no-peer] "
                    "[--no-tpmvm]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!tpmvm) {
        tpmvm =
            g_strdup(g_getenv("TPMVM_BINARY") ? g_getenv("TPMVM_BINARY") : "build/tpmvm");
    }
    signal(SIGPIPE, SIG_IGN);
    cmds_build(&c);
    ceiling(&c, seconds, ceil);

    if (run_tpmvm) {
        Target t = {.name = "tpmvm", .fd = -1, .rx = g_string_new(NULL)};
        t.dir = g_dir_make_tmp("tpm-bench-XXXXXX", NULL);
        if (target_start_tpmvm(&t, tpmvm, &c)) {
            measure(&t, &c, seconds, &ours);
        }
        target_stop(&t);
    }
    if (run_peer) {
        Target t = {.name = "qemu+swtpm", .fd = -1, .rx = g_string_new(NULL)};
        t.dir = g_dir_make_tmp("tpm-bench-XXXXXX", NULL);
        if (target_start_peer(&t, &c)) {
            measure(&t, &c, seconds, &peer);
        }
        target_stop(&t);
    }

    printf("%-34s %12s %12s %12s\n", "", "tpmvm", "qemu+swtpm", "ceiling");
    print_ratio("GetRandom/s, byte-wise FIFO", ours.rate[0][0], peer.rate[0][0], ceil[0],
                "", "(target >= x1.5)");
    print_ratio("PCR_Extend/s, byte-wise FIFO", ours.rate[0][1], peer.rate[0][1], ceil[1],
                "", "(target >= x1.5)");
    print_ratio("GetRandom/s, XDATA bursts", ours.rate[1][0], peer.rate[1][0], ceil[0],
                "", "(target >= x2)");
    print_ratio("PCR_Extend/s, XDATA bursts", ours.rate[1][1], peer.rate[1][1], ceil[1],
                "", "(target >= x2)");
    printf("%-34s %12.3f %12.3f %12s   ms\n", "NV_Read (XDATA)", ours.nv_read_ms,
           peer.nv_read_ms, "-");
    printf("%-34s %12.3f %12.3f %12s   ms\n", "NV_Write (XDATA, durable)",
           ours.nv_write_ms, peer.nv_write_ms, "-");
    printf("%-34s %12.3f %12.3f %12s   ms (target <= peer)\n",
           "NV_Write extra over NV_Read", ours.nv_write_ms - ours.nv_read_ms,
           peer.nv_write_ms - peer.nv_read_ms, "-");
    printf("%-34s %12.1f %12.1f %12s   ms", "launch to first Startup response",
           ours.launch_ms, peer.launch_ms, "-");
    if (ours.valid && peer.valid) {
        printf("   x%.2f of peer (target <= x0.3)", ours.launch_ms / peer.launch_ms);
    }
    printf("\n%-34s %12ld %12ld %12s   KiB", "RSS after Startup", ours.rss_kib,
           peer.rss_kib, "-");
    if (ours.valid && peer.valid) {
        printf("   x%.2f of peer (target <= x0.3)", (double)ours.rss_kib / peer.rss_kib);
    }
    printf("\n%-34s %12.0f %12.0f %12s   bytes to storage per NV_Write\n",
           "storage bytes per NV_Write", ours.bytes_per_nv_write, peer.bytes_per_nv_write,
           "-");
    return 0;
}
