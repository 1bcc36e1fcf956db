/*
 * Helper for test-sandbox (not a test itself): sets up what a running VM
 * holds (an open file, a pipe, a listening socket with a client waiting, a
 * thread), applies -runas/-chroot/-sandbox exactly as tpmvm does, then runs
 * the actions named on the command line in order. Each action that works
 * prints "ok NAME"; a forbidden one ends the process with SIGSYS.
 *
 *   sandbox-probe [--sandbox OPTS] [--runas USER] [--chroot DIR]
 *                 [--file PATH] ACTION...
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "system/sandbox.h"
#include "util/log.h"

typedef struct Probe {
    int file_fd;
    int pipe_rd;
    int listen_fd;
    int client_fd;
    GThread *old_thread;
    GMutex lock;
    GCond cond;
    const char *old_thread_job; /* set by the main thread, run by old_thread */
    bool old_thread_done;
} Probe;

static void say(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void say(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *line = NULL;

    va_start(ap, fmt);
    line = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (write(STDOUT_FILENO, line, strlen(line)) < 0) {
        _exit(3);
    }
}

static G_GNUC_NORETURN void fail(const char *action, const char *why)
{
    say("fail %s: %s\n", action, why);
    exit(1);
}

/* A thread that exists before the filter is installed (like a vCPU). */
static gpointer old_thread_main(gpointer opaque)
{
    Probe *p = opaque;
    const char *job;

    g_mutex_lock(&p->lock);
    while (!p->old_thread_job) {
        g_cond_wait(&p->cond, &p->lock);
    }
    job = p->old_thread_job;
    g_mutex_unlock(&p->lock);

    if (!strcmp(job, "socket")) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd >= 0) {
            close(fd);
        }
    }
    g_mutex_lock(&p->lock);
    p->old_thread_done = true;
    g_cond_signal(&p->cond);
    g_mutex_unlock(&p->lock);
    return NULL;
}

static void old_thread_run(Probe *p, const char *job)
{
    g_mutex_lock(&p->lock);
    p->old_thread_job = job;
    g_cond_signal(&p->cond);
    while (!p->old_thread_done) {
        g_cond_wait(&p->cond, &p->lock);
    }
    g_mutex_unlock(&p->lock);
    g_thread_join(p->old_thread);
    p->old_thread = NULL;
}

static void setup(Probe *p, const char *file)
{
    int fds[2];
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    socklen_t addrlen;

    p->file_fd =
        open(file ? file : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (p->file_fd < 0 || pipe2(fds, O_CLOEXEC) < 0 || write(fds[1], "ping", 4) != 4) {
        fail("setup", g_strerror(errno));
    }
    close(fds[1]);
    p->pipe_rd = fds[0];

    /* abstract name: nothing on disk, reachable after -chroot too */
    snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "tpmvm-sandbox-probe-%d",
             (int)getpid());
    addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                          strlen(addr.sun_path + 1));
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    p->client_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || p->client_fd < 0 ||
        bind(p->listen_fd, (struct sockaddr *)&addr, addrlen) < 0 ||
        listen(p->listen_fd, 4) < 0 ||
        connect(p->client_fd, (struct sockaddr *)&addr, addrlen) < 0 ||
        write(p->client_fd, "hello", 5) != 5) {
        fail("setup", g_strerror(errno));
    }

    g_mutex_init(&p->lock);
    g_cond_init(&p->cond);
    p->old_thread = g_thread_new("probe-old", old_thread_main, p);
}

static gpointer thread_main(gpointer opaque)
{
    return GINT_TO_POINTER(GPOINTER_TO_INT(opaque) + 1);
}

static void pool_func(gpointer data, gpointer user_data)
{
    g_atomic_int_inc((gint *)user_data);
}

static gboolean quit_cb(gpointer opaque)
{
    *(bool *)opaque = true;
    return G_SOURCE_REMOVE;
}

static void action_mainloop(void)
{
    GMainContext *ctx = g_main_context_new();
    GSource *src = g_timeout_source_new(1);
    bool fired = false;

    g_source_set_callback(src, quit_cb, &fired, NULL);
    g_source_attach(src, ctx);
    g_source_unref(src);
    while (!fired) {
        g_main_context_iteration(ctx, TRUE);
    }
    g_main_context_unref(ctx);
}

static void run_action(Probe *p, const char *argv0, const char *a)
{
    if (!strcmp(a, "exec")) {
        execl("/proc/self/exe", argv0, "exec-child", (char *)NULL);
        fail(a, g_strerror(errno));
    } else if (!strcmp(a, "fork")) {
        int status;
        pid_t pid = fork();

        if (pid < 0) {
            fail(a, g_strerror(errno));
        }
        if (pid == 0) {
            _exit(0);
        }
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
            fail(a, "child did not exit");
        }
    } else if (!strcmp(a, "socket")) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0) {
            fail(a, g_strerror(errno));
        }
        close(fd);
    } else if (!strcmp(a, "setuid")) {
        if (setuid(getuid()) < 0) {
            fail(a, g_strerror(errno));
        }
    } else if (!strcmp(a, "old-thread-socket")) {
        old_thread_run(p, "socket");
    } else if (!strcmp(a, "thread")) {
        GThread *t = g_thread_new("probe-new", thread_main, GINT_TO_POINTER(41));

        if (GPOINTER_TO_INT(g_thread_join(t)) != 42) {
            fail(a, "wrong result");
        }
    } else if (!strcmp(a, "pool")) {
        gint count = 0;
        GThreadPool *pool = g_thread_pool_new(pool_func, &count, 2, FALSE, NULL);

        for (int i = 0; i < 8; i++) {
            g_thread_pool_push(pool, GINT_TO_POINTER(i + 1), NULL);
        }
        g_thread_pool_free(pool, FALSE, TRUE);
        if (g_atomic_int_get(&count) != 8) {
            fail(a, "not every job ran");
        }
    } else if (!strcmp(a, "write")) {
        if (write(p->file_fd, "data", 4) != 4 || fsync(p->file_fd) < 0) {
            fail(a, g_strerror(errno));
        }
    } else if (!strcmp(a, "mmap")) {
        size_t len = 1 << 20;
        char *m =
            mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (m == MAP_FAILED) {
            fail(a, g_strerror(errno));
        }
        memset(m, 0xa5, len);
        if (mprotect(m, len, PROT_READ) < 0 || munmap(m, len) < 0) {
            fail(a, g_strerror(errno));
        }
    } else if (!strcmp(a, "futex")) {
        int word = 0;

        if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0) {
            fail(a, g_strerror(errno));
        }
    } else if (!strcmp(a, "clock")) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || g_get_real_time() <= 0) {
            fail(a, g_strerror(errno));
        }
    } else if (!strcmp(a, "pipe")) {
        char buf[8] = {0};

        if (read(p->pipe_rd, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4) != 0) {
            fail(a, "did not read what was written before the sandbox");
        }
    } else if (!strcmp(a, "accept")) {
        char buf[8] = {0};
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            fail(a, g_strerror(errno));
        }
        if (read(fd, buf, sizeof(buf)) != 5 || memcmp(buf, "hello", 5) != 0 ||
            write(fd, "bye", 3) != 3) {
            fail(a, "no data on the accepted connection");
        }
        close(fd);
    } else if (!strcmp(a, "socketpair")) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
            fail(a, g_strerror(errno));
        }
        close(sv[0]);
        close(sv[1]);
    } else if (!strcmp(a, "mainloop")) {
        action_mainloop();
    } else if (!strcmp(a, "replace-sigsys-handler")) {
        signal(SIGSYS, SIG_IGN);
    } else if (!strcmp(a, "obsolete")) {
        /* sysfs(3): number of file system types; any answer will do */
        if (syscall(SYS_sysfs, 3) < 0 && errno == ENOSYS) {
            fail(a, g_strerror(errno));
        }
    } else if (!strcmp(a, "resource")) {
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) < 0) {
            fail(a, g_strerror(errno));
        }
        if (sched_setaffinity(0, sizeof(set), &set) < 0) {
            say("refused resource: %s\n", g_strerror(errno));
            return;
        }
    } else if (!strcmp(a, "regain-root")) {
        if (setuid(0) == 0 || seteuid(0) == 0) {
            fail(a, "root came back");
        }
        say("ok regain-root refused: %s\n", g_strerror(errno));
        return;
    } else if (!strcmp(a, "whoami")) {
        gid_t groups[64];
        int n = getgroups(G_N_ELEMENTS(groups), groups);

        say("uid=%u euid=%u gid=%u egid=%u ngroups=%d\n", (unsigned)getuid(),
            (unsigned)geteuid(), (unsigned)getgid(), (unsigned)getegid(), n);
    } else if (!strcmp(a, "chroot-check")) {
        char cwd[64];

        if (access("/sandbox-probe-marker", F_OK) < 0) {
            fail(a, "marker not at the new root");
        }
        if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/") != 0) {
            fail(a, "working directory is not the new root");
        }
    } else {
        fail(a, "unknown action");
    }
    say("ok %s\n", a);
}

int main(int argc, char **argv)
{
    const struct rlimit no_core = {0, 0};
    const char *sandbox = NULL, *runas = NULL, *root = NULL, *file = NULL;
    GError *err = NULL;
    Probe probe = {0};
    int i;

    if (argc == 2 && !strcmp(argv[1], "exec-child")) {
        say("ok exec\n");
        return 0;
    }
    /* a killed probe must not leave core files behind */
    setrlimit(RLIMIT_CORE, &no_core);

    for (i = 1; i + 1 < argc && g_str_has_prefix(argv[i], "--"); i += 2) {
        if (!strcmp(argv[i], "--sandbox")) {
            sandbox = argv[i + 1];
        } else if (!strcmp(argv[i], "--runas")) {
            runas = argv[i + 1];
        } else if (!strcmp(argv[i], "--chroot")) {
            root = argv[i + 1];
        } else if (!strcmp(argv[i], "--file")) {
            file = argv[i + 1];
        } else {
            fprintf(stderr, "sandbox-probe: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if ((sandbox && !sandbox_parse(sandbox, &err)) ||
        (runas && !os_set_runas(runas, &err)) || (root && !os_set_chroot(root, &err))) {
        error_report_err(err);
        return 2;
    }
    setup(&probe, file);
    if (!os_apply_runas_chroot(&err) || !sandbox_apply(&err)) {
        error_report_err(err);
        return 2;
    }
    say("ready\n");
    for (; i < argc; i++) {
        run_action(&probe, argv[0], argv[i]);
    }
    if (probe.old_thread) {
        old_thread_run(&probe, "exit");
    }
    close(probe.file_fd);
    close(probe.pipe_rd);
    close(probe.listen_fd);
    close(probe.client_fd);
    if (root) {
        /* LeakSanitizer (ASan builds) needs /proc, which the new root lacks */
        _exit(0);
    }
    return 0;
}
