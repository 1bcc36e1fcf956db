/*
 * -sandbox, -runas and -chroot on the real binary: a sandboxed VM still
 * serves qtest and QMP, shuts down cleanly, and the
 * options are checked on the command line. The forbidden system calls
 * themselves are proven fatal by tests/unit/system/test-sandbox.c.
 */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "config-host.h"
#include "libqtest.h"

static void test_sandboxed_vm_serves_and_quits(void)
{
    QTestState *qts;
    JsonObject *ret;

    if (!CONFIG_SECCOMP) {
        g_test_skip("tpmvm was built without libseccomp");
        return;
    }
    qts = qtest_init("-machine pc -m 16 -sandbox on");
    qtest_writel(qts, 0x1000, 0xdeadbeef);
    g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0xdeadbeef);
    ret = qtest_qmp(qts, "{'execute': 'query-status'}");
    g_assert_true(json_object_has_member(ret, "return"));
    json_object_unref(ret);
    qtest_qmp_send(qts, "{'execute': 'quit'}");
    g_assert_cmpint(qtest_wait_exit(qts, 10000), ==, 0);
    qtest_quit(qts);
}

static void test_sandbox_bad_option(void)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = qtest_run("-machine none -sandbox on,spawn=maybe", &out, &err);

    g_assert_cmpint(status, ==, 1);
    g_assert_nonnull(strstr(err, "-sandbox on,spawn=maybe"));
    g_assert_nonnull(strstr(err, "spawn"));
}

static void test_runas_unknown_user(void)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = qtest_run("-machine none -runas no-such-user-tpmvm", &out, &err);

    g_assert_cmpint(status, ==, 1);
    g_assert_nonnull(strstr(err, "no-such-user-tpmvm"));
}

static void test_runas_nobody_drops_root(void)
{
    QTestState *qts;
    g_autofree char *path = NULL, *status = NULL;

    if (geteuid() != 0) {
        g_test_skip("-runas needs root to drop privileges");
        return;
    }
    qts = qtest_init("-machine pc -m 16 -runas nobody");
    g_assert_cmphex(qtest_readl(qts, 0x2000), ==, 0);
    path = g_strdup_printf("/proc/%d/status", (int)qtest_pid(qts));
    g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
    /* Uid: real effective saved fs - none of them root any more */
    g_assert_null(strstr(status, "Uid:\t0\t"));
    g_assert_nonnull(strstr(status, "Uid:\t"));
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sandbox/vm/serves-qtest-and-qmp-then-quits",
                    test_sandboxed_vm_serves_and_quits);
    g_test_add_func("/sandbox/cmdline/bad-option-is-named", test_sandbox_bad_option);
    g_test_add_func("/sandbox/runas/unknown-user-is-named", test_runas_unknown_user);
    g_test_add_func("/sandbox/runas/nobody-drops-root", test_runas_nobody_drops_root);
    return g_test_run();
}
