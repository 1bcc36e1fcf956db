/*
 * savevm + loadvm time of a 128 MiB idle VM with a started TPM 2.0:
 *   - tpmvm, TPM state on a plain qcow2 drive,
 *   - tpmvm, TPM state on a LUKS-encrypted qcow2 drive,
 *   - the peer: QEMU's tpm-tis with swtpm and a plain qcow2 drive (QEMU 7.2
 *     aborts in savevm on LUKS images, so it gets no encrypted run),
 * all on this machine in this run, each timed through QMP
 * human-monitor-command (the reply comes when the command is done).
 *
 *   snapshot-bench [--tpmvm PATH] [--rounds N] [--no-peer] [--dir DIR]
 *
 * --dir puts the images in DIR (default: $TMPDIR). On tmpfs (/dev/shm) a
 * flush costs nothing, which shows the cost of the snapshot machinery itself
 * rather than of the host disk's flushes.
 *
 * Prints the median savevm, loadvm and their sum per target, then the ratios
 * the project holds itself to: tpmvm plain / QEMU plain <= 0.5 and tpmvm
 * LUKS / tpmvm plain <= 1.2. Exit status 0 when both hold (or the peer is
 * missing and the LUKS ratio holds), 1 otherwise.
 */
#include <errno.h>
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
#include <json-glib/json-glib.h>

#define RAM_MB "128"
#define PASS "snapshot-bench-pass"
#define TIS_BASE 0xfed40000ull

typedef struct Vm {
    const char *name;
    char *dir;
    GPid pid;
    GPid swtpm_pid;
    int qtest_fd;
    int qmp_fd;
    GString *qtest_rx;
    GString *qmp_rx;
    double save_ms[64];
    double load_ms[64];
} Vm;

static GPid children[8];   /* every process started, killed on any exit */
static char *scratch_root; /* removed on any exit */
static void rm_tree(const char *path);
static unsigned nchildren;

static void kill_children(void)
{
    for (unsigned i = 0; i < nchildren; i++) {
        if (children[i] > 0 && kill(children[i], SIGKILL) == 0) {
            waitpid(children[i], NULL, 0);
        }
    }
    nchildren = 0;
}

static G_NORETURN G_GNUC_PRINTF(2, 3) void die(Vm *vm, const char *fmt, ...)
{
    va_list ap;

    kill_children();
    if (scratch_root) {
        rm_tree(scratch_root);
    }
    fprintf(stderr, "snapshot-bench: %s: ", vm ? vm->name : "setup");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- sockets ---- */

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
        die(NULL, "cannot listen on %s: %s", path, g_strerror(errno));
    }
    return fd;
}

static int accept_from(Vm *vm, int lfd)
{
    for (int i = 0; i < 3000; i++) {
        GPollFD p = {lfd, G_IO_IN, 0};
        if (g_poll(&p, 1, 10) > 0) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            close(lfd);
            return fd;
        }
        if (waitpid(vm->pid, NULL, WNOHANG) == vm->pid) {
            die(vm, "the VM exited at start-up (see %s)", vm->dir);
        }
    }
    die(vm, "the VM did not connect its qtest socket");
}

static int connect_unix(Vm *vm, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    for (int i = 0; i < 3000; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        close(fd);
        g_usleep(10000);
    }
    die(vm, "cannot connect to %s", path);
}

static void send_all(Vm *vm, int fd, const char *s)
{
    size_t len = strlen(s);

    while (len) {
        ssize_t n = write(fd, s, len);
        if (n <= 0) {
            die(vm, "write failed: %s", g_strerror(errno));
        }
        s += n;
        len -= (size_t)n;
    }
}

static char *recv_line(Vm *vm, int fd, GString *rx)
{
    for (;;) {
        char *nl = memchr(rx->str, '\n', rx->len);
        char buf[4096];
        ssize_t n;

        if (nl) {
            char *line = g_strndup(rx->str, (gsize)(nl - rx->str));
            g_string_erase(rx, 0, nl - rx->str + 1);
            return line;
        }
        n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            die(vm, "connection closed");
        }
        g_string_append_len(rx, buf, n);
    }
}

/* ---- qtest and the TIS (enough for TPM2_Startup and a PCR_Extend) ---- */

static uint64_t qtest(Vm *vm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static uint64_t qtest(Vm *vm, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *cmd = NULL;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    send_all(vm, vm->qtest_fd, cmd);
    send_all(vm, vm->qtest_fd, "\n");
    for (;;) {
        g_autofree char *line = recv_line(vm, vm->qtest_fd, vm->qtest_rx);
        if (g_str_has_prefix(line, "IRQ")) {
            continue;
        }
        if (!g_str_has_prefix(line, "OK")) {
            die(vm, "qtest '%s': %s", cmd, line);
        }
        return line[2] ? g_ascii_strtoull(line + 3, NULL, 0) : 0;
    }
}

static uint32_t tpm_exchange(Vm *vm, const uint8_t *cmd, size_t len)
{
    uint8_t hdr[10];
    double deadline = now_ms() + 30000;
    uint32_t size;

    qtest(vm, "writeb 0x%llx 0x02", TIS_BASE);
    while (!(qtest(vm, "readb 0x%llx", TIS_BASE) & 0x20)) {
        if (now_ms() > deadline) {
            die(vm, "TIS locality 0 not granted");
        }
    }
    qtest(vm, "writel 0x%llx 0x40", TIS_BASE + 0x18);
    for (size_t i = 0; i < len; i++) {
        qtest(vm, "writeb 0x%llx 0x%02x", TIS_BASE + 0x24, cmd[i]);
    }
    qtest(vm, "writel 0x%llx 0x20", TIS_BASE + 0x18);
    while ((qtest(vm, "readl 0x%llx", TIS_BASE + 0x18) & 0x90) != 0x90) {
        if (now_ms() > deadline) {
            die(vm, "no TPM response");
        }
        g_usleep(200);
    }
    for (unsigned i = 0; i < 10; i++) {
        hdr[i] = (uint8_t)qtest(vm, "readb 0x%llx", TIS_BASE + 0x24);
    }
    size = (uint32_t)hdr[2] << 24 | hdr[3] << 16 | hdr[4] << 8 | hdr[5];
    for (uint32_t i = 10; i < size && i < 4096; i++) {
        qtest(vm, "readb 0x%llx", TIS_BASE + 0x24);
    }
    qtest(vm, "writel 0x%llx 0x40", TIS_BASE + 0x18);
    return (uint32_t)hdr[6] << 24 | hdr[7] << 16 | hdr[8] << 8 | hdr[9];
}

/* TPM2_Startup(CLEAR) and TPM2_PCR_Extend(16) with an empty password session. */
static void tpm_start(Vm *vm)
{
    static const uint8_t startup[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
    uint8_t extend[65] = {0x80, 0x02, 0,  0, 0, 65, 0, 0,    0x01, 0x82, 0,
                          0,    0,    16, 0, 0, 0,  9, 0x40, 0,    0,    9,
                          0,    0,    0,  0, 0, 0,  0, 0,    1,    0,    0x0b};
    uint32_t rc;

    memset(extend + 33, 0x5a, 32);
    if ((rc = tpm_exchange(vm, startup, sizeof(startup))) != 0) {
        die(vm, "TPM2_Startup failed: 0x%x", rc);
    }
    if ((rc = tpm_exchange(vm, extend, sizeof(extend))) != 0) {
        die(vm, "TPM2_PCR_Extend failed: 0x%x", rc);
    }
}

/* ---- QMP ---- */

static JsonObject *qmp_reply(Vm *vm)
{
    for (;;) {
        g_autofree char *line = recv_line(vm, vm->qmp_fd, vm->qmp_rx);
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonObject *obj;

        if (!json_parser_load_from_data(parser, line, -1, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
            die(vm, "bad QMP line: %s", line);
        }
        obj = json_node_get_object(json_parser_get_root(parser));
        if (json_object_has_member(obj, "event")) {
            continue;
        }
        return json_object_ref(obj);
    }
}

/* Run an HMP command; returns the milliseconds it took. */
static double hmp(Vm *vm, const char *cmd)
{
    g_autofree char *req = g_strdup_printf(
        "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": "
        "\"%s\"}}\n",
        cmd);
    double t0 = now_ms(), t;
    JsonObject *rsp;
    const char *out;

    send_all(vm, vm->qmp_fd, req);
    rsp = qmp_reply(vm);
    t = now_ms() - t0;
    if (!json_object_has_member(rsp, "return")) {
        die(vm, "'%s' failed", cmd);
    }
    out = json_object_get_string_member_with_default(rsp, "return", "");
    if (strstr(out, "Error") || strstr(out, "error")) {
        die(vm, "'%s': %s", cmd, out);
    }
    json_object_unref(rsp);
    return t;
}

static void qmp_open(Vm *vm, const char *path)
{
    JsonObject *rsp;
    g_autofree char *greeting = NULL;

    vm->qmp_fd = connect_unix(vm, path);
    greeting = recv_line(vm, vm->qmp_fd, vm->qmp_rx);
    send_all(vm, vm->qmp_fd, "{\"execute\": \"qmp_capabilities\"}\n");
    rsp = qmp_reply(vm);
    json_object_unref(rsp);
}

/* ---- targets ---- */

static void create_image(Vm *vm, const char *path, bool luks)
{
    g_autofree char *pass = g_build_filename(vm->dir, "pass.txt", NULL);

    g_file_set_contents(pass, PASS, -1, NULL);
    for (int attempt = 0; attempt < 50; attempt++) {
        g_auto(GStrv) argv = NULL;
        g_autofree char *err = NULL;
        g_autofree char *cmd = g_strdup_printf(
            "qemu-img create -q -f qcow2 --object secret,id=sec0,file=%s %s %s 16M", pass,
            luks ? "-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
                 : "",
            path);
        int status;

        g_shell_parse_argv(cmd, NULL, &argv, NULL);
        if (g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err,
                         &status, NULL) &&
            g_spawn_check_wait_status(status, NULL)) {
            return;
        }
        /* qemu-img's PBKDF2 calibration flakes with "Unable to get accurate CPU usage" */
        if (!err || !strstr(err, "accurate CPU usage")) {
            die(vm, "qemu-img create failed: %s", err ? err : "");
        }
    }
    die(vm, "qemu-img create kept failing its PBKDF2 calibration");
}

static void spawn(Vm *vm, char **argv, GPid *pid, const char *log)
{
    g_autofree char *logpath = g_build_filename(vm->dir, log, NULL);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    GError *err = NULL;

    if (!g_spawn_async_with_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                pid, -1, fd, fd, &err)) {
        die(vm, "cannot start %s: %s", argv[0], err->message);
    }
    if (nchildren < G_N_ELEMENTS(children)) {
        children[nchildren++] = *pid;
    }
    close(fd);
}

static void start_tpmvm(Vm *vm, const char *binary, bool luks)
{
    g_autofree char *img = g_build_filename(vm->dir, "tpm.qcow2", NULL);
    g_autofree char *qsock = g_build_filename(vm->dir, "qtest.sock", NULL);
    g_autofree char *msock = g_build_filename(vm->dir, "qmp.sock", NULL);
    g_autofree char *pass = g_build_filename(vm->dir, "pass.txt", NULL);
    g_autofree char *qtest_arg = g_strdup_printf("unix:%s", qsock);
    g_autofree char *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", msock);
    g_autofree char *secret = NULL;
    g_autofree char *drive = NULL;
    int lfd;

    create_image(vm, img, luks);
    secret = g_strdup_printf("secret,id=sec0,file=%s", pass);
    drive = g_strdup_printf("if=none,id=tpmnv,file=%s,format=qcow2%s", img,
                            luks ? ",encrypt.format=luks,encrypt.key-secret=sec0" : "");
    lfd = listen_unix(qsock);
    {
        char *argv[] = {(char *)binary,
                        "-machine",
                        "pc",
                        "-m",
                        RAM_MB,
                        "-S",
                        "-accel",
                        "qtest",
                        "-qtest",
                        qtest_arg,
                        "-qmp",
                        qmp_arg,
                        "-display",
                        "none",
                        "-object",
                        secret,
                        "-drive",
                        drive,
                        "-tpmdev",
                        "builtin,id=tpm0,drive=tpmnv",
                        "-device",
                        "tpm-tis,tpmdev=tpm0",
                        NULL};
        spawn(vm, argv, &vm->pid, "tpmvm.log");
    }
    vm->qtest_fd = accept_from(vm, lfd);
    qmp_open(vm, msock);
}

static bool start_qemu(Vm *vm)
{
    g_autofree char *img = g_build_filename(vm->dir, "disk.qcow2", NULL);
    g_autofree char *state = g_build_filename(vm->dir, "swtpm-state", NULL);
    g_autofree char *ctrl = g_build_filename(vm->dir, "swtpm.sock", NULL);
    g_autofree char *qsock = g_build_filename(vm->dir, "qtest.sock", NULL);
    g_autofree char *msock = g_build_filename(vm->dir, "qmp.sock", NULL);
    g_autofree char *swtpm = g_find_program_in_path("swtpm");
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    g_autofree char *tpmstate = g_strdup_printf("dir=%s", state);
    g_autofree char *ctrlopt = g_strdup_printf("type=unixio,path=%s", ctrl);
    g_autofree char *qtest_arg = g_strdup_printf("unix:%s", qsock);
    g_autofree char *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", msock);
    g_autofree char *chardev = g_strdup_printf("socket,id=chrtpm,path=%s", ctrl);
    g_autofree char *drive = g_strdup_printf("if=none,id=d0,file=%s,format=qcow2", img);
    int lfd;

    if (!swtpm || !qemu) {
        fprintf(stderr,
                "snapshot-bench: swtpm or qemu-system-x86_64 not found: no peer\n");
        return false;
    }
    g_mkdir_with_parents(state, 0700);
    create_image(vm, img, false);
    {
        char *argv[] = {swtpm,    "socket", "--tpmstate", tpmstate,
                        "--ctrl", ctrlopt,  "--tpm2",     NULL};
        spawn(vm, argv, &vm->swtpm_pid, "swtpm.log");
    }
    for (int i = 0; i < 500 && !g_file_test(ctrl, G_FILE_TEST_EXISTS); i++) {
        g_usleep(10000);
    }
    lfd = listen_unix(qsock);
    {
        /*
         * -S: QEMU 7.2 from Debian has no qtest accelerator and runs TCG, and
         * SeaBIOS would send TPM2_Startup itself; paused, no guest code runs,
         * as in tpmvm under qtest.
         */
        char *argv[] = {qemu,
                        "-machine",
                        "pc",
                        "-m",
                        RAM_MB,
                        "-S",
                        "-nodefaults",
                        "-display",
                        "none",
                        "-qtest",
                        qtest_arg,
                        "-qmp",
                        qmp_arg,
                        "-drive",
                        drive,
                        "-chardev",
                        chardev,
                        "-tpmdev",
                        "emulator,id=tpm0,chardev=chrtpm",
                        "-device",
                        "tpm-tis,tpmdev=tpm0",
                        NULL};
        spawn(vm, argv, &vm->pid, "qemu.log");
    }
    vm->qtest_fd = accept_from(vm, lfd);
    qmp_open(vm, msock);
    return true;
}

static void stop_vm(Vm *vm)
{
    GPid pids[] = {vm->pid, vm->swtpm_pid};

    for (unsigned i = 0; i < G_N_ELEMENTS(pids); i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
            for (unsigned j = 0; j < nchildren; j++) {
                if (children[j] == pids[i]) {
                    children[j] = 0;
                }
            }
        }
    }
    close(vm->qtest_fd);
    close(vm->qmp_fd);
}

static void rm_tree(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(path, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rm_tree(p);
        } else {
            unlink(p);
        }
    }
    if (dir) {
        g_dir_close(dir);
    }
    rmdir(path);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    double tmp[64];

    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* Start the TPM and run one untimed cycle (first-touch costs). */
static void warm_up(Vm *vm)
{
    tpm_start(vm);
    hmp(vm, "savevm warmup");
    hmp(vm, "loadvm warmup");
    hmp(vm, "delvm warmup");
}

/* One timed savevm / loadvm / delvm cycle. */
static void measure_round(Vm *vm, int i)
{
    g_autofree char *save = g_strdup_printf("savevm s%d", i);
    g_autofree char *load = g_strdup_printf("loadvm s%d", i);
    g_autofree char *del = g_strdup_printf("delvm s%d", i);

    vm->save_ms[i] = hmp(vm, save);
    vm->load_ms[i] = hmp(vm, load);
    hmp(vm, del);
}

int main(int argc, char **argv)
{
    const char *binary = "build/tpmvm";
    int rounds = 10;
    bool peer = true;
    const char *dir = NULL;
    g_autofree char *root = NULL;
    Vm plain = {.name = "tpmvm plain"}, luks = {.name = "tpmvm LUKS"},
       qemu = {.name = "qemu+swtpm plain"};
    Vm *vms[] = {&plain, &luks, &qemu};
    double sum[3] = {0}, best[3] = {0};
    bool have_peer = false, ok = true;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tpmvm") && i + 1 < argc) {
            binary = argv[++i];
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            int n = atoi(argv[++i]); /* CLAMP evaluates its argument more than once */
            rounds = CLAMP(n, 1, 64);
        } else if (!strcmp(argv[i], "--no-peer")) {
            peer = false;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: snapshot-bench [--tpmvm PATH] [--rounds N] [--no-peer]\n");
            return 2;
        }
    }
    if (dir) {
        root = g_build_filename(dir, "snapshot-bench-XXXXXX", NULL);
        if (!g_mkdtemp(root)) {
            die(NULL, "cannot create a directory in %s: %s", dir, g_strerror(errno));
        }
    } else {
        root = g_dir_make_tmp("snapshot-bench-XXXXXX", NULL);
    }
    scratch_root = root;
    for (unsigned i = 0; i < G_N_ELEMENTS(vms); i++) {
        vms[i]->dir = g_build_filename(root,
                                       i == 0   ? "plain"
                                       : i == 1 ? "luks"
                                                : "qemu",
                                       NULL);
        vms[i]->qtest_rx = g_string_new(NULL);
        vms[i]->qmp_rx = g_string_new(NULL);
        g_mkdir_with_parents(vms[i]->dir, 0700);
    }

    /*
     * All VMs run at once (idle, they cost no CPU) and the rounds take turns,
     * so that load from other processes on the machine falls on all of them
     * alike instead of on whichever target happened to run at the time.
     */
    start_tpmvm(&plain, binary, false);
    start_tpmvm(&luks, binary, true);
    have_peer = peer && start_qemu(&qemu);
    for (unsigned v = 0; v < G_N_ELEMENTS(vms); v++) {
        if (v < 2 || have_peer) {
            warm_up(vms[v]);
        }
    }
    for (int i = 0; i < rounds; i++) {
        for (unsigned v = 0; v < G_N_ELEMENTS(vms); v++) {
            if (v < 2 || have_peer) {
                measure_round(vms[v], i);
            }
        }
    }
    for (unsigned v = 0; v < G_N_ELEMENTS(vms); v++) {
        if (v < 2 || have_peer) {
            stop_vm(vms[v]);
        }
    }

    printf("savevm + loadvm, %s MiB idle VM with a started TPM 2.0, %d rounds, images in "
           "%s\n",
           RAM_MB, rounds, dir ? dir : g_get_tmp_dir());
    printf("%-20s %12s %12s %12s %12s\n", "", "savevm ms", "loadvm ms", "sum ms",
           "best sum ms");
    for (unsigned i = 0; i < G_N_ELEMENTS(vms); i++) {
        double s, l, sums[64];
        if (i == 2 && !have_peer) {
            continue;
        }
        s = median(vms[i]->save_ms, rounds);
        l = median(vms[i]->load_ms, rounds);
        for (int r = 0; r < rounds; r++) {
            sums[r] = vms[i]->save_ms[r] + vms[i]->load_ms[r];
        }
        qsort(sums, (size_t)rounds, sizeof(double), cmp_double);
        sum[i] = median(sums, rounds);
        best[i] = sums[0];
        printf("%-20s %12.2f %12.2f %12.2f %12.2f\n", vms[i]->name, s, l, sum[i],
               best[i]);
    }
    if (have_peer) {
        double r = sum[0] / sum[2];
        printf("ratio tpmvm plain / qemu+swtpm plain: %.3fx median, %.3fx best "
               "(target <= 0.5x): %s\n",
               r, best[0] / best[2], r <= 0.5 ? "met" : "MISSED");
        ok &= r <= 0.5;
    }
    {
        double r = sum[1] / sum[0];
        printf("ratio tpmvm LUKS / tpmvm plain:        %.3fx median, %.3fx best "
               "(target <= 1.2x): %s\n",
               r, best[1] / best[0], r <= 1.2 ? "met" : "MISSED");
        ok &= r <= 1.2;
    }
    {
        double load1;
        FILE *f = fopen("/proc/loadavg", "r");
        if (f && fscanf(f, "%lf", &load1) == 1) {
            printf("host load average during the run: %.2f (numbers are noisy above ~1 "
                   "per core)\n",
                   load1);
        }
        if (f) {
            fclose(f);
        }
    }
    rm_tree(root);
    return ok ? 0 : 1;
}
