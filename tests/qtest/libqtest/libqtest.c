/*
 * libqtest: see libqtest.h.
 *
 * The test is the server on both sockets: it listens on qtest.sock and
 * qmp.sock in a scratch directory, starts tpmvm with client-mode chardevs for
 * both, and accepts the connections (watching that the process did not die
 * meanwhile).
 */
#include "libqtest.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define QTEST_CONNECT_TIMEOUT_MS 60000
#define QTEST_QUIT_GRACE_MS 10000
#define QTEST_RUN_TIMEOUT_MS 30000
/* hex/base64 transfers are split so that each request line stays well below
 * the server's 64 KiB line limit */
#define QTEST_XFER_CHUNK 16384

typedef struct LineReader {
    int fd;
    GString *buf;
} LineReader;

struct QTestState {
    pid_t pid;
    int exit_status; /* valid once reaped */
    bool reaped;
    char *tmpdir;
    char *stderr_path, *stdout_path;
    LineReader qtest;
    LineReader qmp;
    bool irq_level[256];
    GQueue *events; /* JsonObject* */
    JsonObject *greeting;
};

static GList *live_states; /* QTestState*, for the abort/exit cleanup */
static bool cleanup_installed;

/* ---- process lifetime ---- */

static void qtest_kill_all(void)
{
    for (GList *l = live_states; l; l = l->next) {
        QTestState *s = l->data;
        if (!s->reaped && s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->reaped = true;
        }
    }
}

/* g_assert aborts (SIGABRT), g_error traps (SIGTRAP): either way, no orphans. */
static void qtest_fatal_signal(int sig)
{
    qtest_kill_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void qtest_install_cleanup(void)
{
    if (cleanup_installed) {
        return;
    }
    cleanup_installed = true;
    atexit(qtest_kill_all);
    signal(SIGABRT, qtest_fatal_signal);
    signal(SIGTRAP, qtest_fatal_signal);
    /* a peer that went away must not kill the test with SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
}

static const char *qtest_binary(void)
{
    const char *bin = g_getenv("TPMVM_BINARY");

    if (!bin || !*bin) {
        g_error("libqtest: TPMVM_BINARY is not set (run the test through meson test)");
    }
    return bin;
}

static char *read_file_or_empty(const char *path)
{
    char *text = NULL;

    if (!path || !g_file_get_contents(path, &text, NULL, NULL)) {
        return g_strdup("");
    }
    return text;
}

/* Reap the process if it exited; true if it is gone. */
static bool qtest_reap(QTestState *s, bool block)
{
    int st;
    pid_t r;

    if (s->reaped) {
        return true;
    }
    do {
        r = waitpid(s->pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != s->pid) {
        return false;
    }
    s->reaped = true;
    s->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

static void G_GNUC_NORETURN qtest_die(QTestState *s, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
static void qtest_die(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;
    g_autofree char *err = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qtest_reap(s, false);
    err = read_file_or_empty(s->stderr_path);
    g_printerr("libqtest: %s\n", msg);
    if (s->reaped) {
        g_printerr("libqtest: tpmvm exited with status %d\n", s->exit_status);
    }
    if (*err) {
        g_printerr("libqtest: tpmvm stderr:\n%s\n", err);
    }
    g_error("libqtest: %s", msg);
}

/* fork + exec tpmvm with argv; stdout/stderr to files, stdin from /dev/null. */
static pid_t qtest_spawn(char **argv, const char *out_path, const char *err_path)
{
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        g_error("libqtest: fork failed: %s", g_strerror(errno));
    }
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        /* die with the test even if it is killed with SIGKILL */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (in < 0 || out < 0 || err < 0) {
            _exit(127);
        }
        dup2(in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        signal(SIGTRAP, SIG_DFL);
        execv(argv[0], argv);
        dprintf(STDERR_FILENO, "libqtest: cannot run %s: %s\n", argv[0],
                g_strerror(errno));
        _exit(127);
    }
    return pid;
}

static int qtest_listen(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert(fd >= 0);
    g_assert(strlen(path) < sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
        g_error("libqtest: cannot listen on %s: %s", path, g_strerror(errno));
    }
    return fd;
}

static int qtest_accept(QTestState *s, int lfd, const char *what)
{
    gint64 deadline = g_get_monotonic_time() + QTEST_CONNECT_TIMEOUT_MS * 1000LL;

    for (;;) {
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        int r = poll(&pfd, 1, 100);
        if (r > 0) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                return fd;
            }
        }
        if (qtest_reap(s, false)) {
            qtest_die(s, "tpmvm exited before connecting its %s socket", what);
        }
        if (g_get_monotonic_time() > deadline) {
            qtest_die(s, "tpmvm did not connect its %s socket within %d s", what,
                      QTEST_CONNECT_TIMEOUT_MS / 1000);
        }
    }
}

static bool args_choose_accel(char **argv)
{
    for (char **a = argv; *a; a++) {
        if (!strcmp(*a, "-accel") || !strcmp(*a, "--accel") ||
            !strcmp(*a, "-enable-kvm") ||
            ((!strcmp(*a, "-machine") || !strcmp(*a, "-M")) && a[1] &&
             strstr(a[1], "accel="))) {
            return true;
        }
    }
    return false;
}

static char **parse_args(const char *extra)
{
    char **argv = NULL;
    GError *err = NULL;

    if (!extra || !*extra || strspn(extra, " \t\n") == strlen(extra)) {
        return g_new0(char *, 1);
    }
    if (!g_shell_parse_argv(extra, NULL, &argv, &err)) {
        g_error("libqtest: cannot parse arguments '%s': %s", extra, err->message);
    }
    return argv;
}

static JsonObject *qmp_read_message(QTestState *s);

static void qmp_handshake(QTestState *s)
{
    JsonObject *rsp;

    s->greeting = qmp_read_message(s);
    if (!json_object_has_member(s->greeting, "QMP")) {
        qtest_die(s, "QMP greeting has no \"QMP\" member");
    }
    rsp = qtest_qmp(s, "{\"execute\": \"qmp_capabilities\"}");
    if (!json_object_has_member(rsp, "return")) {
        qtest_die(s, "qmp_capabilities failed");
    }
    json_object_unref(rsp);
}

QTestState *qtest_init_flags(const char *extra_args, unsigned flags)
{
    QTestState *s = g_new0(QTestState, 1);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_auto(GStrv) extra = parse_args(extra_args);
    g_autofree char *qtest_sock = NULL, *qmp_sock = NULL, *qtest_arg = NULL;
    g_autofree char *qmp_arg = NULL, *log_path = NULL;
    GError *err = NULL;
    int qtest_lfd, qmp_lfd = -1;
    bool with_qmp = !(flags & QTEST_INIT_NO_QMP) && !g_getenv("TPMVM_QTEST_NO_QMP");

    qtest_install_cleanup();
    s->tmpdir = g_dir_make_tmp("tpmvm-qtest-XXXXXX", &err);
    g_assert_no_error(err);
    s->stderr_path = g_build_filename(s->tmpdir, "stderr", NULL);
    s->stdout_path = g_build_filename(s->tmpdir, "stdout", NULL);
    s->events = g_queue_new();
    s->qtest.fd = s->qmp.fd = -1;
    s->qtest.buf = g_string_new(NULL);
    s->qmp.buf = g_string_new(NULL);
    qtest_sock = g_build_filename(s->tmpdir, "qtest.sock", NULL);
    qmp_sock = g_build_filename(s->tmpdir, "qmp.sock", NULL);
    log_path = g_strdup(g_getenv("QTEST_LOG") ? g_getenv("QTEST_LOG") : "/dev/null");
    qtest_lfd = qtest_listen(qtest_sock);
    qtest_arg = g_strdup_printf("unix:%s", qtest_sock);

    g_ptr_array_add(argv, (char *)qtest_binary());
    g_ptr_array_add(argv, "-qtest");
    g_ptr_array_add(argv, qtest_arg);
    g_ptr_array_add(argv, "-qtest-log");
    g_ptr_array_add(argv, log_path);
    if (with_qmp) {
        qmp_lfd = qtest_listen(qmp_sock);
        qmp_arg = g_strdup_printf("socket,path=%s,id=qmp0", qmp_sock);
        g_ptr_array_add(argv, "-chardev");
        g_ptr_array_add(argv, qmp_arg);
        g_ptr_array_add(argv, "-mon");
        g_ptr_array_add(argv, "chardev=qmp0,mode=control");
    }
    g_ptr_array_add(argv, "-display");
    g_ptr_array_add(argv, "none");
    for (char **a = extra; *a; a++) {
        g_ptr_array_add(argv, *a);
    }
    if (!args_choose_accel(extra)) {
        g_ptr_array_add(argv, "-accel");
        g_ptr_array_add(argv, "qtest");
    }
    g_ptr_array_add(argv, NULL);

    s->pid = qtest_spawn((char **)argv->pdata, s->stdout_path, s->stderr_path);
    live_states = g_list_prepend(live_states, s);
    s->qtest.fd = qtest_accept(s, qtest_lfd, "qtest");
    close(qtest_lfd);
    unlink(qtest_sock);
    if (with_qmp) {
        s->qmp.fd = qtest_accept(s, qmp_lfd, "QMP");
        close(qmp_lfd);
        unlink(qmp_sock);
        qmp_handshake(s);
    }
    return s;
}

QTestState *qtest_init(const char *extra_args)
{
    return qtest_init_flags(extra_args, 0);
}

QTestState *qtest_init_without_qmp(const char *extra_args)
{
    return qtest_init_flags(extra_args, QTEST_INIT_NO_QMP);
}

QTestState *qtest_initf(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *args = NULL;

    va_start(ap, fmt);
    args = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return qtest_init(args);
}

static void wait_or_kill(QTestState *s, unsigned grace_ms)
{
    gint64 deadline = g_get_monotonic_time() + grace_ms * 1000LL;

    while (!qtest_reap(s, false)) {
        if (g_get_monotonic_time() > deadline) {
            kill(s->pid, SIGKILL);
            qtest_reap(s, true);
            return;
        }
        g_usleep(2000);
    }
}

int qtest_wait_exit(QTestState *s, unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;

    while (!qtest_reap(s, false)) {
        if (g_get_monotonic_time() > deadline) {
            qtest_die(s, "tpmvm did not exit within %u ms", timeout_ms);
        }
        g_usleep(2000);
    }
    return s->exit_status;
}

static void rm_rf(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (!d) {
        return;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rm_rf(p);
        } else {
            unlink(p);
        }
    }
    g_dir_close(d);
    rmdir(dir);
}

void qtest_quit(QTestState *s)
{
    if (!s) {
        return;
    }
    if (!s->reaped) {
        kill(s->pid, SIGTERM);
        wait_or_kill(s, QTEST_QUIT_GRACE_MS);
    }
    live_states = g_list_remove(live_states, s);
    if (s->qtest.fd >= 0) {
        close(s->qtest.fd);
    }
    if (s->qmp.fd >= 0) {
        close(s->qmp.fd);
    }
    g_string_free(s->qtest.buf, TRUE);
    g_string_free(s->qmp.buf, TRUE);
    g_queue_free_full(s->events, (GDestroyNotify)json_object_unref);
    if (s->greeting) {
        json_object_unref(s->greeting);
    }
    rm_rf(s->tmpdir);
    g_free(s->tmpdir);
    g_free(s->stderr_path);
    g_free(s->stdout_path);
    g_free(s);
}

pid_t qtest_pid(QTestState *s)
{
    return s->pid;
}

char *qtest_get_stderr(QTestState *s)
{
    return read_file_or_empty(s->stderr_path);
}

char *qtest_get_stdout(QTestState *s)
{
    return read_file_or_empty(s->stdout_path);
}

const char *qtest_tmpdir(QTestState *s)
{
    return s->tmpdir;
}

int qtest_run(const char *args, char **out, char **err)
{
    QTestState s = {0};
    g_auto(GStrv) extra = parse_args(args);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    GError *gerr = NULL;

    qtest_install_cleanup();
    s.tmpdir = g_dir_make_tmp("tpmvm-run-XXXXXX", &gerr);
    g_assert_no_error(gerr);
    s.stderr_path = g_build_filename(s.tmpdir, "stderr", NULL);
    s.stdout_path = g_build_filename(s.tmpdir, "stdout", NULL);
    g_ptr_array_add(argv, (char *)qtest_binary());
    for (char **a = extra; *a; a++) {
        g_ptr_array_add(argv, *a);
    }
    g_ptr_array_add(argv, NULL);
    s.pid = qtest_spawn((char **)argv->pdata, s.stdout_path, s.stderr_path);
    live_states = g_list_prepend(live_states, &s);
    wait_or_kill(&s, QTEST_RUN_TIMEOUT_MS);
    live_states = g_list_remove(live_states, &s);
    if (out) {
        *out = read_file_or_empty(s.stdout_path);
    }
    if (err) {
        *err = read_file_or_empty(s.stderr_path);
    }
    rm_rf(s.tmpdir);
    g_free(s.tmpdir);
    g_free(s.stderr_path);
    g_free(s.stdout_path);
    return s.exit_status;
}

/* ---- line I/O ---- */

static void send_all(QTestState *s, int fd, const void *buf, size_t len, const char *what)
{
    const uint8_t *p = buf;

    if (fd < 0) {
        qtest_die(s, "the %s connection is closed", what);
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            qtest_die(s, "writing to the %s socket failed: %s", what, g_strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

/* One line from r (without the newline); dies on EOF. */
static char *read_line(QTestState *s, LineReader *r, const char *what)
{
    size_t scanned = 0; /* bytes already known to hold no newline */

    for (;;) {
        char *nl = memchr(r->buf->str + scanned, '\n', r->buf->len - scanned);
        ssize_t n;

        if (nl) {
            size_t len = (size_t)(nl - r->buf->str);
            char *line = g_strndup(r->buf->str, len);
            g_string_erase(r->buf, 0, (gssize)len + 1);
            if (len && line[len - 1] == '\r') {
                line[len - 1] = '\0';
            }
            return line;
        }
        scanned = r->buf->len;
        if (r->fd < 0) {
            qtest_die(s, "the %s connection is closed", what);
        }
        /* read straight into the buffer: replies can be megabytes long */
        g_string_set_size(r->buf, scanned + 65536);
        n = read(r->fd, r->buf->str + scanned, 65536);
        g_string_set_size(r->buf, scanned + (n > 0 ? (size_t)n : 0));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            qtest_die(s, "tpmvm closed the %s connection", what);
        }
    }
}

void qtest_send_bytes(QTestState *s, const void *buf, size_t len)
{
    send_all(s, s->qtest.fd, buf, len, "qtest");
}

static bool is_irq_line(const char *line)
{
    return g_str_has_prefix(line, "IRQ raise ") || g_str_has_prefix(line, "IRQ lower ");
}

char *qtest_recv_raw_line(QTestState *s)
{
    char *line = read_line(s, &s->qtest, "qtest");

    if (is_irq_line(line)) {
        int n = atoi(line + 10);
        if (n >= 0 && n < (int)G_N_ELEMENTS(s->irq_level)) {
            s->irq_level[n] = line[4] == 'r';
        }
    }
    return line;
}

char *qtest_recv_line(QTestState *s)
{
    for (;;) {
        char *line = qtest_recv_raw_line(s);

        if (!is_irq_line(line)) {
            return line;
        }
        g_free(line);
    }
}

char *qtest_raw(QTestState *s, const char *line)
{
    qtest_send_bytes(s, line, strlen(line));
    qtest_send_bytes(s, "\n", 1);
    return qtest_recv_line(s);
}

void qtest_disconnect(QTestState *s)
{
    if (s->qtest.fd >= 0) {
        close(s->qtest.fd);
        s->qtest.fd = -1;
    }
}

/* Send a request and return the text after "OK" ("" if none); FAIL/ERR dies. */
static char *qtest_cmd(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static char *qtest_cmd(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *req = NULL;
    char *rsp;

    va_start(ap, fmt);
    req = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    rsp = qtest_raw(s, req);
    if (strcmp(rsp, "OK") == 0) {
        g_free(rsp);
        return g_strdup("");
    }
    if (g_str_has_prefix(rsp, "OK ")) {
        char *val = g_strdup(rsp + 3);
        g_free(rsp);
        return val;
    }
    qtest_die(s, "qtest request '%.80s' failed: %s", req, rsp);
}

static uint64_t qtest_cmd_u64(QTestState *s, const char *req)
{
    g_autofree char *v = qtest_cmd(s, "%s", req);
    char *end;
    uint64_t r = g_ascii_strtoull(v, &end, 0);

    if (!*v || *end) {
        qtest_die(s, "qtest request '%s': unexpected reply value '%s'", req, v);
    }
    return r;
}

#define QTEST_READ_FN(NAME, TYPE, CMD)                                                   \
    TYPE NAME(QTestState *s, uint64_t addr)                                              \
    {                                                                                    \
        g_autofree char *req = g_strdup_printf(CMD " 0x%" PRIx64, addr);                 \
        return (TYPE)qtest_cmd_u64(s, req);                                              \
    }
#define QTEST_WRITE_FN(NAME, TYPE, CMD)                                                  \
    void NAME(QTestState *s, uint64_t addr, TYPE value)                                  \
    {                                                                                    \
        g_free(qtest_cmd(s, CMD " 0x%" PRIx64 " 0x%" PRIx64, addr, (uint64_t)value));    \
    }

QTEST_READ_FN(qtest_readb, uint8_t, "readb")
QTEST_READ_FN(qtest_readw, uint16_t, "readw")
QTEST_READ_FN(qtest_readl, uint32_t, "readl")
QTEST_READ_FN(qtest_readq, uint64_t, "readq")
QTEST_WRITE_FN(qtest_writeb, uint8_t, "writeb")
QTEST_WRITE_FN(qtest_writew, uint16_t, "writew")
QTEST_WRITE_FN(qtest_writel, uint32_t, "writel")
QTEST_WRITE_FN(qtest_writeq, uint64_t, "writeq")

#define QTEST_IN_FN(NAME, TYPE, CMD)                                                     \
    TYPE NAME(QTestState *s, uint16_t port)                                              \
    {                                                                                    \
        g_autofree char *req = g_strdup_printf(CMD " 0x%x", port);                       \
        return (TYPE)qtest_cmd_u64(s, req);                                              \
    }
#define QTEST_OUT_FN(NAME, TYPE, CMD)                                                    \
    void NAME(QTestState *s, uint16_t port, TYPE value)                                  \
    {                                                                                    \
        g_free(qtest_cmd(s, CMD " 0x%x 0x%" PRIx64, port, (uint64_t)value));             \
    }

QTEST_IN_FN(qtest_inb, uint8_t, "inb")
QTEST_IN_FN(qtest_inw, uint16_t, "inw")
QTEST_IN_FN(qtest_inl, uint32_t, "inl")
QTEST_OUT_FN(qtest_outb, uint8_t, "outb")
QTEST_OUT_FN(qtest_outw, uint16_t, "outw")
QTEST_OUT_FN(qtest_outl, uint32_t, "outl")

void qtest_memread(QTestState *s, uint64_t addr, void *data, size_t size)
{
    uint8_t *p = data;

    while (size > 0) {
        size_t n = MIN(size, QTEST_XFER_CHUNK);
        g_autofree char *v = qtest_cmd(s, "read 0x%" PRIx64 " 0x%zx", addr, n);
        if (strlen(v) != 2 + 2 * n || strncmp(v, "0x", 2) != 0) {
            qtest_die(s, "read: reply has %zu characters, expected %zu", strlen(v),
                      2 + 2 * n);
        }
        for (size_t i = 0; i < n; i++) {
            p[i] = (uint8_t)(g_ascii_xdigit_value(v[2 + 2 * i]) << 4 |
                             g_ascii_xdigit_value(v[3 + 2 * i]));
        }
        p += n;
        addr += n;
        size -= n;
    }
}

void qtest_memwrite(QTestState *s, uint64_t addr, const void *data, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = data;

    while (size > 0) {
        size_t n = MIN(size, QTEST_XFER_CHUNK);
        g_autoptr(GString) req = g_string_sized_new(64 + 2 * n);
        g_string_printf(req, "write 0x%" PRIx64 " 0x%zx 0x", addr, n);
        for (size_t i = 0; i < n; i++) {
            g_string_append_c(req, hex[p[i] >> 4]);
            g_string_append_c(req, hex[p[i] & 0xf]);
        }
        g_free(qtest_cmd(s, "%s", req->str));
        p += n;
        addr += n;
        size -= n;
    }
}

void qtest_bufread(QTestState *s, uint64_t addr, void *data, size_t size)
{
    uint8_t *p = data;

    while (size > 0) {
        size_t n = MIN(size, QTEST_XFER_CHUNK);
        g_autofree char *v = qtest_cmd(s, "b64read 0x%" PRIx64 " 0x%zx", addr, n);
        gsize len = 0;
        g_autofree guchar *dec = g_base64_decode(v, &len);
        if (len != n) {
            qtest_die(s, "b64read: decoded %zu bytes, expected %zu", (size_t)len, n);
        }
        memcpy(p, dec, n);
        p += n;
        addr += n;
        size -= n;
    }
}

void qtest_bufwrite(QTestState *s, uint64_t addr, const void *data, size_t size)
{
    const uint8_t *p = data;

    while (size > 0) {
        size_t n = MIN(size, QTEST_XFER_CHUNK);
        g_autofree char *enc = g_base64_encode(p, n);
        g_free(qtest_cmd(s, "b64write 0x%" PRIx64 " 0x%zx %s", addr, n, enc));
        p += n;
        addr += n;
        size -= n;
    }
}

void qtest_memset(QTestState *s, uint64_t addr, uint8_t pattern, size_t size)
{
    g_free(qtest_cmd(s, "memset 0x%" PRIx64 " 0x%zx 0x%02x", addr, size, pattern));
}

static int64_t qtest_cmd_i64(QTestState *s, const char *req)
{
    g_autofree char *v = qtest_cmd(s, "%s", req);
    char *end;
    int64_t r = g_ascii_strtoll(v, &end, 0);

    if (!*v || *end) {
        qtest_die(s, "qtest request '%s': unexpected reply value '%s'", req, v);
    }
    return r;
}

int64_t qtest_clock_step(QTestState *s, int64_t step_ns)
{
    g_autofree char *req = g_strdup_printf("clock_step %" PRId64, step_ns);
    return qtest_cmd_i64(s, req);
}

int64_t qtest_clock_step_next(QTestState *s)
{
    return qtest_cmd_i64(s, "clock_step");
}

int64_t qtest_clock_set(QTestState *s, int64_t ns)
{
    g_autofree char *req = g_strdup_printf("clock_set %" PRId64, ns);
    return qtest_cmd_i64(s, req);
}

void qtest_irq_intercept_in(QTestState *s, const char *path)
{
    g_free(qtest_cmd(s, "irq_intercept_in %s", path));
}

void qtest_irq_intercept_out(QTestState *s, const char *path)
{
    g_free(qtest_cmd(s, "irq_intercept_out %s", path));
}

bool qtest_get_irq(QTestState *s, int num)
{
    g_assert(num >= 0 && num < (int)G_N_ELEMENTS(s->irq_level));
    /* a round trip so that IRQ lines sent before it have been read */
    g_free(qtest_cmd(s, "endianness"));
    return s->irq_level[num];
}

void qtest_set_irq_in(QTestState *s, const char *path, const char *name, int num,
                      int level)
{
    g_free(qtest_cmd(s, "set_irq_in %s %s %d %d", path, name ? name : "unnamed-gpio-in",
                     num, level));
}

/* ---- QMP ---- */

static JsonObject *qmp_read_message(QTestState *s)
{
    for (;;) {
        g_autofree char *line = read_line(s, &s->qmp, "QMP");
        g_autoptr(JsonParser) parser = json_parser_new();
        GError *err = NULL;
        JsonNode *root;

        if (!*line) {
            continue;
        }
        if (!json_parser_load_from_data(parser, line, -1, &err)) {
            qtest_die(s, "QMP sent invalid JSON (%s): %.200s", err->message, line);
        }
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
            qtest_die(s, "QMP sent a non-object: %.200s", line);
        }
        return json_object_ref(json_node_get_object(root));
    }
}

JsonObject *qtest_qmp_receive(QTestState *s)
{
    for (;;) {
        JsonObject *msg = qmp_read_message(s);
        if (json_object_has_member(msg, "event")) {
            g_queue_push_tail(s->events, msg);
            continue;
        }
        return msg;
    }
}

static void qmp_vsend(QTestState *s, const char *fmt, va_list ap)
{
    /* one write: the server acts on the closing brace, and after "quit" it
     * may be gone before a separate newline could be written */
    g_autofree char *body = g_strdup_vprintf(fmt, ap);
    g_autofree char *text = g_strconcat(body, "\n", NULL);

    send_all(s, s->qmp.fd, text, strlen(text), "QMP");
}

void qtest_qmp_send(QTestState *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    qmp_vsend(s, fmt, ap);
    va_end(ap);
}

JsonObject *qtest_qmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    qmp_vsend(s, fmt, ap);
    va_end(ap);
    return qtest_qmp_receive(s);
}

void qtest_qmp_assert_success(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    JsonObject *rsp;

    va_start(ap, fmt);
    qmp_vsend(s, fmt, ap);
    va_end(ap);
    rsp = qtest_qmp_receive(s);
    if (!json_object_has_member(rsp, "return")) {
        g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), rsp);
        g_autofree char *text = json_to_string(node, FALSE);
        qtest_die(s, "QMP command failed: %s", text);
    }
    json_object_unref(rsp);
}

JsonObject *qtest_qmp_eventwait_ref(QTestState *s, const char *event)
{
    for (;;) {
        for (GList *l = s->events->head; l; l = l->next) {
            JsonObject *ev = l->data;
            if (!g_strcmp0(json_object_get_string_member_with_default(ev, "event", ""),
                           event)) {
                g_queue_delete_link(s->events, l);
                return ev;
            }
        }
        JsonObject *msg = qmp_read_message(s);
        if (!json_object_has_member(msg, "event")) {
            qtest_die(s, "unexpected QMP reply while waiting for event %s", event);
        }
        g_queue_push_tail(s->events, msg);
    }
}

void qtest_qmp_eventwait(QTestState *s, const char *event)
{
    json_object_unref(qtest_qmp_eventwait_ref(s, event));
}

char *qtest_hmp(QTestState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *cmd = NULL;
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) node = NULL;
    g_autofree char *text = NULL;
    JsonObject *rsp;
    char *out;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* built with json-glib so that quotes in the command line are escaped */
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, "human-monitor-command");
    json_builder_set_member_name(b, "arguments");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "command-line");
    json_builder_add_string_value(b, cmd);
    json_builder_end_object(b);
    json_builder_end_object(b);
    node = json_builder_get_root(b);
    text = json_to_string(node, FALSE);
    rsp = qtest_qmp(s, "%s", text);
    if (!json_object_has_member(rsp, "return")) {
        qtest_die(s, "human-monitor-command '%s' failed", cmd);
    }
    out = g_strdup(json_object_get_string_member_with_default(rsp, "return", ""));
    json_object_unref(rsp);
    return out;
}

JsonObject *qtest_qmp_greeting(QTestState *s)
{
    return s->greeting;
}

void qtest_qmp_disconnect(QTestState *s)
{
    if (s->qmp.fd >= 0) {
        close(s->qmp.fd);
        s->qmp.fd = -1;
    }
}
