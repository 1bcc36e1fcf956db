/*
 * qtest benchmark: tpmvm against QEMU with one client, in one run.
 *
 *   round trip  mean time of "readl 0x1000" (guest RAM) and its reply
 *   launch      spawn to the first qtest reply (median of several launches)
 *   RSS         VmRSS of an idle "-machine pc -m 128" qtest VM after start-up
 *
 * Prints each figure, the tpmvm/QEMU ratio and the target ratio. QEMU is
 * skipped (with a message) when qemu-system-x86_64 is not installed.
 *
 *   bench-qtest [--binary PATH] [--qemu PATH] [--iterations N] [--launches N]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#define ACCEPT_TIMEOUT_MS 20000
#define REPLY_TIMEOUT_MS 20000
#define RAM_ADDR "0x1000"
#define BENCH_ERROR g_quark_from_static_string("bench-qtest")

/* How to start one peer; "%s" in an argument is replaced by the socket path. */
typedef struct Peer {
    const char *name;
    const char *binary;
    const char *const *args_rt;  /* round trip and launch */
    const char *const *args_rss; /* idle VM for the RSS figure */
} Peer;

static const char *const tpmvm_args[] = {"-machine",    "pc",     "-accel",   "qtest",
                                         "-m",          "128",    "-display", "none",
                                         "-nodefaults", "-qtest", "unix:%s",  NULL};

/* -accel tcg -S: QEMU's own CPU stays stopped, so only qtest does work. */
static const char *const qemu_args_rt[] = {
    "-machine", "pc",      "-accel",     "tcg",       "-S",
    "-m",       "128",     "-display",   "none",      "-nodefaults",
    "-qtest",   "unix:%s", "-qtest-log", "/dev/null", NULL};
/* Debian's QEMU refuses "-accel qtest"; -qtest without -accel selects it. */
static const char *const qemu_args_rss[] = {
    "-machine",    "pc",     "-m",      "128",        "-display",  "none",
    "-nodefaults", "-qtest", "unix:%s", "-qtest-log", "/dev/null", NULL};

typedef struct Vm {
    GPid pid;
    int fd;
    GString *in; /* bytes read but not yet consumed */
} Vm;

static char *sock_dir;
static char *sock_path;
static int listen_fd = -1;

static double now_us(void)
{
    return (double)g_get_monotonic_time();
}

static int listen_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || strlen(path) >= sizeof(addr.sun_path)) {
        return -1;
    }
    strcpy(addr.sun_path, path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void vm_kill(Vm *vm)
{
    if (vm->fd >= 0) {
        close(vm->fd);
        vm->fd = -1;
    }
    if (vm->pid > 0) {
        kill(vm->pid, SIGKILL);
        waitpid(vm->pid, NULL, 0);
        vm->pid = 0;
    }
    if (vm->in) {
        g_string_free(vm->in, TRUE);
        vm->in = NULL;
    }
}

/* Spawn and wait for the qtest connection; the VM connects to our socket. */
static bool vm_start(Vm *vm, const Peer *peer, const char *const *args, GError **errp)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
    int status = 0;

    vm->fd = -1;
    vm->pid = 0;
    vm->in = g_string_new(NULL);
    g_ptr_array_add(argv, g_strdup(peer->binary));
    for (size_t i = 0; args[i]; i++) {
        const char *pct = strstr(args[i], "%s");

        g_ptr_array_add(argv, pct ? g_strdup_printf("%.*s%s%s", (int)(pct - args[i]),
                                                    args[i], sock_path, pct + 2)
                                  : g_strdup(args[i]));
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_async(NULL, (char **)argv->pdata, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                       &vm->pid, errp)) {
        return false;
    }
    gint64 deadline = g_get_monotonic_time() + ACCEPT_TIMEOUT_MS * (gint64)1000;

    for (;;) {
        int r = poll(&pfd, 1, 50);

        if (r > 0) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            g_set_error(errp, BENCH_ERROR, 0, "poll: %s", g_strerror(errno));
            vm_kill(vm);
            return false;
        }
        if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
            vm->pid = 0;
            g_set_error(errp, BENCH_ERROR, 0,
                        "%s exited (status %d) before connecting to the qtest socket; "
                        "its messages are above",
                        peer->name, status);
            vm_kill(vm);
            return false;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, BENCH_ERROR, 0, "%s did not connect to %s within %d ms",
                        peer->name, sock_path, ACCEPT_TIMEOUT_MS);
            vm_kill(vm);
            return false;
        }
    }
    vm->fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (vm->fd < 0) {
        g_set_error(errp, BENCH_ERROR, 0, "accept: %s", g_strerror(errno));
        vm_kill(vm);
        return false;
    }
    return true;
}

/* Send one command and read its reply line, skipping "IRQ ..." lines. */
static bool vm_cmd(Vm *vm, const char *cmd, GError **errp)
{
    size_t len = strlen(cmd);

    for (size_t off = 0; off < len;) {
        ssize_t n = write(vm->fd, cmd + off, len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(errp, BENCH_ERROR, 0, "write to qtest: %s", g_strerror(errno));
            return false;
        }
        off += n;
    }
    for (;;) {
        char *nl = memchr(vm->in->str, '\n', vm->in->len);
        char buf[4096];
        struct pollfd pfd = {.fd = vm->fd, .events = POLLIN};
        ssize_t n;

        if (nl) {
            bool is_irq = g_str_has_prefix(vm->in->str, "IRQ");
            bool ok = g_str_has_prefix(vm->in->str, "OK");

            if (!is_irq && !ok) {
                g_set_error(errp, BENCH_ERROR, 0, "qtest replied '%.*s' to %s",
                            (int)(nl - vm->in->str), vm->in->str, cmd);
            }
            g_string_erase(vm->in, 0, nl - vm->in->str + 1);
            if (is_irq) {
                continue;
            }
            return ok;
        }
        if (poll(&pfd, 1, REPLY_TIMEOUT_MS) <= 0) {
            g_set_error(errp, BENCH_ERROR, 0, "no qtest reply to %s", cmd);
            return false;
        }
        n = read(vm->fd, buf, sizeof(buf));
        if (n <= 0) {
            g_set_error(errp, BENCH_ERROR, 0, "qtest connection closed");
            return false;
        }
        g_string_append_len(vm->in, buf, n);
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median time (ms) from spawn to the first reply. */
static bool measure_launch(const Peer *peer, int launches, double *out, GError **errp)
{
    g_autofree double *t = g_new(double, launches);

    for (int i = 0; i < launches; i++) {
        Vm vm;
        double t0 = now_us();

        if (!vm_start(&vm, peer, peer->args_rt, errp) ||
            !vm_cmd(&vm, "readl " RAM_ADDR "\n", errp)) {
            vm_kill(&vm);
            return false;
        }
        t[i] = (now_us() - t0) / 1000.0;
        vm_kill(&vm);
    }
    qsort(t, launches, sizeof(double), compare_doubles);
    *out = t[launches / 2];
    return true;
}

/* Best of three batches of mean round-trip time (us). */
static bool measure_round_trip(const Peer *peer, int iterations, double *out,
                               GError **errp)
{
    Vm vm;
    double best = 0;

    if (!vm_start(&vm, peer, peer->args_rt, errp)) {
        return false;
    }
    for (int i = 0; i < 1000; i++) {
        if (!vm_cmd(&vm, "readl " RAM_ADDR "\n", errp)) {
            vm_kill(&vm);
            return false;
        }
    }
    for (int batch = 0; batch < 3; batch++) {
        double t0 = now_us(), mean;

        for (int i = 0; i < iterations; i++) {
            if (!vm_cmd(&vm, "readl " RAM_ADDR "\n", errp)) {
                vm_kill(&vm);
                return false;
            }
        }
        mean = (now_us() - t0) / iterations;
        best = batch == 0 || mean < best ? mean : best;
    }
    vm_kill(&vm);
    *out = best;
    return true;
}

static long read_vmrss_kb(GPid pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", pid);
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    p = strstr(text, "VmRSS:");
    return p ? strtol(p + strlen("VmRSS:"), NULL, 10) : -1;
}

/* RSS (KiB) of an idle VM once it answers qtest and has settled. */
static bool measure_rss(const Peer *peer, long *out, GError **errp)
{
    Vm vm;

    if (!vm_start(&vm, peer, peer->args_rss, errp) ||
        !vm_cmd(&vm, "readl " RAM_ADDR "\n", errp)) {
        vm_kill(&vm);
        return false;
    }
    g_usleep(300 * 1000);
    *out = read_vmrss_kb(vm.pid);
    vm_kill(&vm);
    if (*out < 0) {
        g_set_error(errp, BENCH_ERROR, 0, "cannot read VmRSS of %s", peer->name);
        return false;
    }
    return true;
}

typedef struct Figures {
    double rt_us, launch_ms;
    long rss_kb;
} Figures;

static bool measure_peer(const Peer *peer, int iterations, int launches, Figures *f)
{
    g_autoptr(GError) err = NULL;

    if (!measure_round_trip(peer, iterations, &f->rt_us, &err) ||
        !measure_launch(peer, launches, &f->launch_ms, &err) ||
        !measure_rss(peer, &f->rss_kb, &err)) {
        fprintf(stderr, "bench-qtest: %s (%s): %s\n", peer->name, peer->binary,
                err->message);
        return false;
    }
    return true;
}

static void print_row(const char *what, const char *unit, double ours, double peer,
                      bool have_peer, double target)
{
    if (!have_peer) {
        printf("%-34s tpmvm %10.1f %-3s\n", what, ours, unit);
        return;
    }
    printf("%-34s tpmvm %10.1f %-3s  QEMU %10.1f %-3s  ratio %.2f (target <= %.2f) %s\n",
           what, ours, unit, peer, unit, ours / peer, target,
           ours / peer <= target ? "met" : "MISSED");
}

int main(int argc, char **argv)
{
    g_autofree char *binary = g_strdup(g_getenv("TPMVM_BINARY"));
    g_autofree char *qemu = NULL;
    int iterations = 20000, launches = 7;
    GOptionEntry entries[] = {
        {"binary", 0, 0, G_OPTION_ARG_FILENAME, &binary, "tpmvm binary", "PATH"},
        {"qemu", 0, 0, G_OPTION_ARG_FILENAME, &qemu, "QEMU binary", "PATH"},
        {"iterations", 0, 0, G_OPTION_ARG_INT, &iterations, "round trips per batch", "N"},
        {"launches", 0, 0, G_OPTION_ARG_INT, &launches, "launches to time", "N"},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("- qtest benchmark vs QEMU");
    g_autoptr(GError) err = NULL;
    Peer ours = {"tpmvm", NULL, tpmvm_args, tpmvm_args};
    Peer peer = {"QEMU", NULL, qemu_args_rt, qemu_args_rss};
    Figures fo = {0}, fq = {0};
    bool have_qemu;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "bench-qtest: %s\n", err->message);
        return 2;
    }
    if (!binary) {
        binary = g_strdup(TPMVM_BINARY_DEFAULT);
    }
    if (!qemu) {
        qemu = g_find_program_in_path("qemu-system-x86_64");
    }
    iterations = CLAMP(iterations, 100, 10000000);
    launches = CLAMP(launches, 1, 1000);
    ours.binary = binary;
    peer.binary = qemu;
    signal(SIGPIPE, SIG_IGN);

    sock_dir = g_dir_make_tmp("bench-qtest-XXXXXX", &err);
    if (!sock_dir) {
        fprintf(stderr, "bench-qtest: %s\n", err->message);
        return 1;
    }
    sock_path = g_build_filename(sock_dir, "qtest.sock", NULL);
    listen_fd = listen_unix(sock_path);
    if (listen_fd < 0) {
        fprintf(stderr, "bench-qtest: cannot listen on %s: %s\n", sock_path,
                g_strerror(errno));
        return 1;
    }

    if (!measure_peer(&ours, iterations, launches, &fo)) {
        return 1;
    }
    have_qemu = qemu != NULL;
    if (!have_qemu) {
        printf("QEMU: skipped, qemu-system-x86_64 not found in PATH "
               "(install qemu-system-x86 or pass --qemu PATH)\n");
    } else if (!measure_peer(&peer, iterations, launches, &fq)) {
        printf("QEMU: skipped, it failed to run (see above)\n");
        have_qemu = false;
    }

    printf("qtest benchmark (%d round trips x 3 batches, %d launches)\n", iterations,
           launches);
    print_row("round trip: readl " RAM_ADDR, "us", fo.rt_us, fq.rt_us, have_qemu, 0.6);
    print_row("launch to first qtest reply", "ms", fo.launch_ms, fq.launch_ms, have_qemu,
              0.3);
    print_row("RSS idle pc, -m 128", "KiB", (double)fo.rss_kb, (double)fq.rss_kb,
              have_qemu, 0.25);

    close(listen_fd);
    g_unlink(sock_path);
    g_rmdir(sock_dir);
    return 0;
}
