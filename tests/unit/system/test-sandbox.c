/*
 * -sandbox, -runas and -chroot: option parsing in-process, and the effect
 * on a real process through sandbox-probe (forbidden calls must kill it
 * with SIGSYS and a readable line, allowed ones must keep working).
 */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "config-host.h"
#include "system/sandbox.h"

typedef struct ProbeResult {
    int status;
    char *out;
    char *err;
} ProbeResult;

static void probe_result_free(ProbeResult *r)
{
    g_free(r->out);
    g_free(r->err);
    g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProbeResult, probe_result_free)

/* The unit tests are built in tests/unit/, the probe in tests/unit/system/. */
static char *probe_path(void)
{
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = NULL;

    g_assert_nonnull(self);
    dir = g_path_get_dirname(self);
    return g_build_filename(dir, "system", "sandbox-probe", NULL);
}

/* Run sandbox-probe with the given arguments (NULL-terminated). */
static ProbeResult *run_probe(const char *first, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;
    ProbeResult *r = g_new0(ProbeResult, 1);
    va_list ap;

    g_ptr_array_add(argv, probe_path());
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        g_ptr_array_add(argv, g_strdup(a));
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, &r->out, &r->err, &r->status, &err));
    g_assert_no_error(err);
    return r;
}

static void assert_exited_ok(const ProbeResult *r)
{
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
        g_test_message("probe stdout:\n%s\nprobe stderr:\n%s", r->out, r->err);
    }
    g_assert_true(WIFEXITED(r->status));
    g_assert_cmpint(WEXITSTATUS(r->status), ==, 0);
}

/* Killed by SIGSYS after "ready", with the sandbox's line naming the call. */
static void assert_killed_for(const ProbeResult *r, const char *name, long nr)
{
    g_autofree char *line = g_strdup_printf(
        "tpmvm: sandbox: forbidden system call %s (%ld) - killed\n", name, nr);

    if (!WIFSIGNALED(r->status)) {
        g_test_message("probe stdout:\n%s\nprobe stderr:\n%s", r->out, r->err);
    }
    g_assert_true(WIFSIGNALED(r->status));
    g_assert_cmpint(WTERMSIG(r->status), ==, SIGSYS);
    g_assert_nonnull(strstr(r->out, "ready\n"));
    g_assert_nonnull(strstr(r->err, line));
}

static bool need_seccomp(void)
{
    if (!CONFIG_SECCOMP) {
        g_test_skip("built without libseccomp");
        return false;
    }
    return true;
}

static bool need_root(void)
{
    if (geteuid() != 0) {
        g_test_skip("needs root to change user or root directory");
        return false;
    }
    return true;
}

static void test_parse_accepts_groups(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(sandbox_parse("off", &err));
    g_assert_no_error(err);
    g_assert_false(sandbox_enabled());
    g_assert_true(sandbox_parse("off,spawn=allow", &err));
    g_assert_no_error(err);
    if (CONFIG_SECCOMP) {
        g_assert_true(sandbox_parse("on,obsolete=allow,elevateprivileges=children,"
                                    "spawn=deny,resourcecontrol=allow",
                                    &err));
        g_assert_no_error(err);
        g_assert_true(sandbox_enabled());
    } else {
        g_assert_false(sandbox_parse("on", &err));
        g_assert_nonnull(strstr(err->message, "built without libseccomp"));
    }
    g_assert_true(sandbox_parse("off", &err));
}

static void test_parse_names_bad_key(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(sandbox_parse("on,spwan=deny", &err));
    g_assert_cmpstr(err->message, ==, "-sandbox: Invalid parameter 'spwan'");
}

static void test_parse_names_bad_value(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(sandbox_parse("on,spawn=children", &err));
    g_assert_cmpstr(
        err->message, ==,
        "-sandbox: parameter 'spawn' expects 'deny' or 'allow', not 'children'");
    g_clear_error(&err);
    g_assert_false(sandbox_parse("on,elevateprivileges=maybe", &err));
    g_assert_cmpstr(err->message, ==,
                    "-sandbox: parameter 'elevateprivileges' expects 'deny', 'allow' or "
                    "'children', not 'maybe'");
}

static void test_parse_requires_on_or_off(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(sandbox_parse("spawn=deny", &err));
    g_assert_nonnull(strstr(err->message, "the first value must be 'on' or 'off'"));
    g_clear_error(&err);
    g_assert_false(sandbox_parse("yes", &err));
    g_assert_nonnull(strstr(err->message, "-sandbox yes:"));
    g_clear_error(&err);
    g_assert_false(sandbox_parse("help", &err));
    g_assert_nonnull(strstr(err->message, "spawn=deny|allow"));
}

static void test_unapplied_blocks_nothing(void)
{
    g_autoptr(ProbeResult) a =
        run_probe("fork", "socket", "setuid", "obsolete", "exec", NULL);
    g_autoptr(ProbeResult) b =
        run_probe("--sandbox", "off", "fork", "socket", "setuid", "exec", NULL);

    assert_exited_ok(a);
    g_assert_nonnull(
        strstr(a->out, "ok fork\nok socket\nok setuid\nok obsolete\nok exec\n"));
    assert_exited_ok(b);
    g_assert_nonnull(strstr(b->out, "ok fork\nok socket\nok setuid\nok exec\n"));
    g_assert_cmpstr(b->err, ==, "");
}

static void test_kills_exec(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    r = run_probe("--sandbox", "on", "exec", NULL);
    assert_killed_for(r, "execve", SYS_execve);
    g_assert_null(strstr(r->out, "ok exec"));
}

static void test_kills_fork(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    /* glibc's fork() is clone() without CLONE_THREAD */
    r = run_probe("--sandbox", "on", "fork", NULL);
    assert_killed_for(r, "clone", SYS_clone);
    g_assert_null(strstr(r->out, "ok fork"));
}

static void test_kills_socket(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    r = run_probe("--sandbox", "on", "socket", NULL);
    assert_killed_for(r, "socket", SYS_socket);
}

static void test_kills_setuid(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    r = run_probe("--sandbox", "on", "setuid", NULL);
    assert_killed_for(r, "setuid", SYS_setuid);
}

static void test_kills_thread_started_before(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    r = run_probe("--sandbox", "on", "old-thread-socket", NULL);
    assert_killed_for(r, "socket", SYS_socket);
}

static void test_kills_handler_replacement(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    r = run_probe("--sandbox", "on", "replace-sigsys-handler", "socket", NULL);
    g_assert_true(WIFSIGNALED(r->status));
    g_assert_cmpint(WTERMSIG(r->status), ==, SIGSYS);
    g_assert_null(strstr(r->out, "ok replace-sigsys-handler"));
}

static void test_keeps_allowed_calls(void)
{
    g_autoptr(ProbeResult) r = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *file = NULL;
    g_autofree char *data = NULL;

    if (!need_seccomp()) {
        return;
    }
    dir = g_dir_make_tmp("test-sandbox-XXXXXX", NULL);
    g_assert_nonnull(dir);
    file = g_build_filename(dir, "out", NULL);
    r = run_probe("--sandbox", "on", "--file", file, "thread", "pool", "write", "mmap",
                  "futex", "clock", "pipe", "accept", "socketpair", "mainloop", NULL);
    assert_exited_ok(r);
    g_assert_cmpstr(r->out, ==,
                    "ready\nok thread\nok pool\nok write\nok mmap\nok futex\nok clock\n"
                    "ok pipe\nok accept\nok socketpair\nok mainloop\n");
    g_assert_true(g_file_get_contents(file, &data, NULL, NULL));
    g_assert_cmpstr(data, ==, "data");
    g_unlink(file);
    g_rmdir(dir);
}

static void test_spawn_allow(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp()) {
        return;
    }
    r = run_probe("--sandbox", "on,spawn=allow", "fork", "exec", NULL);
    assert_exited_ok(r);
    g_assert_nonnull(strstr(r->out, "ok fork\nok exec\n"));
}

static void test_elevateprivileges_allow(void)
{
    g_autoptr(ProbeResult) a = NULL;
    g_autoptr(ProbeResult) c = NULL;

    if (!need_seccomp()) {
        return;
    }
    a = run_probe("--sandbox", "on,elevateprivileges=allow", "setuid", NULL);
    c = run_probe("--sandbox", "on,elevateprivileges=children", "setuid", "socket", NULL);
    assert_exited_ok(a);
    g_assert_nonnull(strstr(a->out, "ok setuid\n"));
    /* the other groups stay denied */
    assert_killed_for(c, "socket", SYS_socket);
    g_assert_nonnull(strstr(c->out, "ok setuid\n"));
}

static void test_obsolete(void)
{
    g_autoptr(ProbeResult) deny = NULL;
    g_autoptr(ProbeResult) allow = NULL;

    if (!need_seccomp()) {
        return;
    }
    deny = run_probe("--sandbox", "on", "obsolete", NULL);
    allow = run_probe("--sandbox", "on,obsolete=allow", "obsolete", NULL);
    assert_killed_for(deny, "sysfs", SYS_sysfs);
    assert_exited_ok(allow);
    g_assert_nonnull(strstr(allow->out, "ok obsolete\n"));
}

static void test_resourcecontrol(void)
{
    g_autoptr(ProbeResult) deny = NULL;
    g_autoptr(ProbeResult) allow = NULL;

    if (!need_seccomp()) {
        return;
    }
    deny = run_probe("--sandbox", "on", "resource", "thread", NULL);
    allow = run_probe("--sandbox", "on,resourcecontrol=allow", "resource", NULL);
    /* refused with EPERM, not killed: libraries probe these calls */
    assert_exited_ok(deny);
    g_assert_nonnull(strstr(deny->out, "refused resource: Operation not permitted\n"));
    g_assert_nonnull(strstr(deny->out, "ok thread\n"));
    assert_exited_ok(allow);
    g_assert_nonnull(strstr(allow->out, "ok resource\n"));
}

static void test_runas_drops_root(void)
{
    g_autoptr(ProbeResult) r = NULL;
    g_autoptr(ProbeResult) s = NULL;

    if (!need_root()) {
        return;
    }
    r = run_probe("--runas", "nobody", "regain-root", "whoami", "accept", NULL);
    assert_exited_ok(r);
    g_assert_nonnull(strstr(r->out, "ok regain-root refused: Operation not permitted\n"));
    g_assert_nonnull(strstr(r->out, "uid=65534 euid=65534 gid=65534 egid=65534"));
    g_assert_nonnull(strstr(r->out, "ok accept\n"));
    if (!CONFIG_SECCOMP) {
        return;
    }
    /* with the sandbox the attempt itself is fatal */
    s = run_probe("--runas", "nobody", "--sandbox", "on", "setuid", NULL);
    assert_killed_for(s, "setuid", SYS_setuid);
}

static void test_elevateprivileges_allow_unprivileged(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_seccomp() || !need_root()) {
        return;
    }
    /* without CAP_SYS_ADMIN the filter can only go on with no_new_privs */
    r = run_probe("--runas", "nobody", "--sandbox", "on,elevateprivileges=allow",
                  "setuid", "socket", NULL);
    assert_killed_for(r, "socket", SYS_socket);
    g_assert_nonnull(strstr(r->out, "ok setuid\n"));
}

static void test_runas_explicit_group(void)
{
    g_autoptr(ProbeResult) r = NULL;

    if (!need_root()) {
        return;
    }
    r = run_probe("--runas", "65534:65533", "whoami", NULL);
    assert_exited_ok(r);
    g_assert_nonnull(
        strstr(r->out, "uid=65534 euid=65534 gid=65533 egid=65533 ngroups=1"));
}

static void test_runas_rejects(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(os_set_runas("no-such-user-tpmvm", &err));
    g_assert_cmpstr(
        err->message, ==,
        "-runas no-such-user-tpmvm: no user 'no-such-user-tpmvm' (give a user "
        "name or number)");
    g_clear_error(&err);
    g_assert_false(os_set_runas("root", &err));
    g_assert_nonnull(strstr(err->message, "uid 0"));
    g_clear_error(&err);
    g_assert_false(os_set_runas("nobody:no-such-group-tpmvm", &err));
    g_assert_nonnull(strstr(err->message, "no group 'no-such-group-tpmvm'"));
    g_clear_error(&err);
    g_assert_false(os_set_runas("nobody:", &err));
    g_assert_nonnull(strstr(err->message, "expected USER or USER:GROUP"));
    g_clear_error(&err);
    g_assert_false(os_set_runas("4000000", &err));
    g_assert_nonnull(strstr(err->message, "give its group as -runas UID:GID"));
}

static void test_chroot_confines(void)
{
    g_autoptr(ProbeResult) r = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *marker = NULL;

    if (!need_root()) {
        return;
    }
    dir = g_dir_make_tmp("test-sandbox-root-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_assert_cmpint(g_chmod(dir, 0755), ==, 0);
    marker = g_build_filename(dir, "sandbox-probe-marker", NULL);
    g_assert_true(g_file_set_contents(marker, "", 0, NULL));
    r = run_probe("--chroot", dir, "--runas", "nobody", "chroot-check", "pipe", NULL);
    assert_exited_ok(r);
    g_assert_nonnull(strstr(r->out, "ok chroot-check\nok pipe\n"));
    g_assert_null(strstr(r->err, "without -runas"));
    g_unlink(marker);
    g_rmdir(dir);
}

static void test_chroot_rejects(void)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(os_set_chroot("/no/such/dir/tpmvm", &err));
    g_assert_nonnull(strstr(err->message, "-chroot /no/such/dir/tpmvm:"));
    g_clear_error(&err);
    g_assert_false(os_set_chroot("/dev/null", &err));
    g_assert_cmpstr(err->message, ==, "-chroot /dev/null: not a directory");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sandbox/parse/accepts-on-off-and-groups",
                    test_parse_accepts_groups);
    g_test_add_func("/sandbox/parse/names-the-bad-key", test_parse_names_bad_key);
    g_test_add_func("/sandbox/parse/names-the-bad-value", test_parse_names_bad_value);
    g_test_add_func("/sandbox/parse/requires-on-or-off", test_parse_requires_on_or_off);
    g_test_add_func("/sandbox/off/blocks-nothing", test_unapplied_blocks_nothing);
    g_test_add_func("/sandbox/on/kills-exec", test_kills_exec);
    g_test_add_func("/sandbox/on/kills-fork", test_kills_fork);
    g_test_add_func("/sandbox/on/kills-socket", test_kills_socket);
    g_test_add_func("/sandbox/on/kills-setuid", test_kills_setuid);
    g_test_add_func("/sandbox/on/covers-threads-started-before",
                    test_kills_thread_started_before);
    g_test_add_func("/sandbox/on/kills-sigsys-handler-replacement",
                    test_kills_handler_replacement);
    g_test_add_func("/sandbox/on/keeps-allowed-calls-working", test_keeps_allowed_calls);
    g_test_add_func("/sandbox/spawn/allow-permits-fork-and-exec", test_spawn_allow);
    g_test_add_func("/sandbox/elevateprivileges/allow-permits-setuid",
                    test_elevateprivileges_allow);
    g_test_add_func("/sandbox/obsolete/deny-kills-allow-permits", test_obsolete);
    g_test_add_func("/sandbox/resourcecontrol/deny-refuses-without-killing",
                    test_resourcecontrol);
    g_test_add_func("/runas/drops-root-for-good", test_runas_drops_root);
    g_test_add_func("/sandbox/elevateprivileges/allow-works-after-dropping-root",
                    test_elevateprivileges_allow_unprivileged);
    g_test_add_func("/runas/explicit-group-replaces-groups", test_runas_explicit_group);
    g_test_add_func("/runas/rejects-unknown-and-root", test_runas_rejects);
    g_test_add_func("/chroot/confines-to-the-directory", test_chroot_confines);
    g_test_add_func("/chroot/rejects-a-non-directory", test_chroot_rejects);
    return g_test_run();
}
