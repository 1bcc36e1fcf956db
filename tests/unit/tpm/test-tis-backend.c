/*
 * The generic TPM backend machinery (-tpmdev parsing, worker thread,
 * completion in the main loop, finish_sync, cancel) with the test backend.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_test_backend.h"

typedef struct Completion {
    unsigned count;
    TPMBackendCmd *cmd;
} Completion;

static void on_completed(void *opaque, TPMBackendCmd *cmd)
{
    Completion *c = opaque;

    c->count++;
    c->cmd = cmd;
}

static TPMBackend *create(const char *opts)
{
    g_autoptr(GError) err = NULL;
    TPMBackend *be = tpm_backend_create_from_string(opts, NULL, &err);

    g_assert_no_error(err);
    g_assert_nonnull(be);
    return be;
}

static void create_fails(const char *opts, const char *msg_part)
{
    g_autoptr(GError) err = NULL;
    bool help = true;

    g_assert_null(tpm_backend_create_from_string(opts, &help, &err));
    g_assert_nonnull(err);
    g_assert_false(help);
    if (!strstr(err->message, msg_part)) {
        g_error("'%s' not in '%s'", msg_part, err->message);
    }
}

static void test_create_errors(void)
{
    TPMBackend *be = create("test,id=dup");

    create_fails("id=x", "'type' is missing");
    create_fails("nosuchtype,id=x", "'nosuchtype' is not a valid TPM type");
    create_fails("test", "'id' is missing");
    create_fails("test,id=1bad", "expects an identifier");
    create_fails("test,id=dup", "'dup' already exists");
    create_fails("test,id=x,bogus=1", "-tpmdev test: Invalid parameter 'bogus'");
    create_fails("test,id=x,version=3", "'version' expects '2.0' or '1.2'");
    create_fails("test,id=x,buffer-size=2", "'buffer-size' must be between");
    create_fails("test,id=x,script=/nonexistent/script", "cannot read script");
    g_assert_null(tpm_backend_find("x"));
    g_assert_true(tpm_backend_find("dup") == be);
    tpm_backend_destroy(be);
    g_assert_null(tpm_backend_find("dup"));
}

static void test_help_lists_types(void)
{
    if (g_test_subprocess()) {
        bool help = false;
        g_assert_null(tpm_backend_create_from_string("help", &help, NULL));
        g_assert_true(help);
        g_assert_null(tpm_backend_create_from_string("test,help", &help, NULL));
        g_assert_true(help);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stdout("*Supported TPM types*test*Scripted TPM*");
    g_test_trap_assert_stdout("*delay-ms=<n>*");
}

static void run_until_completed(Completion *c, unsigned count)
{
    gint64 end = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

    while (c->count < count) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_main_context_iteration(NULL, TRUE);
    }
}

static void test_request_completes_in_main_loop(void)
{
    TPMBackend *be = create("test,id=t0");
    static const uint8_t in[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
    uint8_t out[64] = {0};
    TPMBackendCmd cmd = {.locty = 2, .in = in, .in_len = 12, .out = out, .out_len = 64};
    Completion c = {0};
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) cmds = NULL;
    static const uint8_t ok[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0};

    g_assert_true(tpm_backend_startup_tpm(be, 4096, &err));
    g_assert_cmpuint(tpm_test_backend_startup_buffer_size(be), ==, 4096);
    g_assert_true(tpm_backend_deliver_request(be, &cmd, on_completed, &c, &err));
    g_assert_no_error(err);
    g_assert_true(tpm_backend_cmd_pending(be));
    /* A second command while one is outstanding is refused. */
    g_assert_false(tpm_backend_deliver_request(be, &cmd, on_completed, &c, &err));
    g_assert_nonnull(strstr(err->message, "already in flight"));
    g_assert_cmpuint(c.count, ==, 0);
    run_until_completed(&c, 1);
    g_assert_true(c.cmd == &cmd);
    g_assert_false(tpm_backend_cmd_pending(be));
    g_assert_cmpmem(out, 10, ok, 10);
    cmds = tpm_test_backend_get_commands(be);
    g_assert_cmpuint(cmds->len, ==, 1);
    g_assert_cmpmem(g_bytes_get_data(cmds->pdata[0], NULL), 12, in, 12);
    g_assert_cmpint(tpm_test_backend_last_locality(be), ==, 2);
    tpm_backend_destroy(be);
}

static void test_finish_sync_completes_once(void)
{
    TPMBackend *be = create("test,id=t0,delay-ms=50");
    uint8_t buf[16] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x43};
    TPMBackendCmd cmd = {.in = buf, .in_len = 10, .out = buf, .out_len = 16};
    Completion c = {0};

    g_assert_true(tpm_backend_deliver_request(be, &cmd, on_completed, &c, NULL));
    tpm_backend_finish_sync(be);
    g_assert_cmpuint(c.count, ==, 1);
    /* SelfTest answered with success marks the self-test done. */
    g_assert_true(cmd.selftest_done);
    /* The posted completion source must not run it again. */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    g_assert_cmpuint(c.count, ==, 1);
    /* finish_sync without a command is a no-op. */
    tpm_backend_finish_sync(be);
    g_assert_cmpuint(c.count, ==, 1);
    tpm_backend_destroy(be);
}

static void test_cancel_ends_delay(void)
{
    TPMBackend *be = create("test,id=t0,delay-ms=20000");
    uint8_t buf[16] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x31};
    TPMBackendCmd cmd = {.in = buf, .in_len = 10, .out = buf, .out_len = 16};
    Completion c = {0};
    gint64 start = g_get_monotonic_time();
    static const uint8_t canceled[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x09};

    g_assert_true(tpm_backend_deliver_request(be, &cmd, on_completed, &c, NULL));
    tpm_backend_cancel_cmd(be);
    /* cancel_cmd itself returned at once; the command now ends early. */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_TIME_SPAN_SECOND);
    tpm_backend_finish_sync(be);
    g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_TIME_SPAN_SECOND);
    g_assert_cmpmem(buf, 10, canceled, 10);
    g_assert_cmpuint(tpm_test_backend_cancel_count(be), ==, 1);
    /* A cancel without a command in flight does not reach the backend. */
    tpm_backend_cancel_cmd(be);
    g_assert_cmpuint(tpm_test_backend_cancel_count(be), ==, 1);
    tpm_backend_destroy(be);
}

static void test_destroy_cancels_a_long_command(void)
{
    TPMBackend *be = create("test,id=t0,delay-ms=60000");
    uint8_t buf[16] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x31};
    TPMBackendCmd cmd = {.in = buf, .in_len = 10, .out = buf, .out_len = 16};
    Completion c = {0};
    gint64 start = g_get_monotonic_time();

    g_assert_true(tpm_backend_deliver_request(be, &cmd, on_completed, &c, NULL));
    tpm_backend_destroy(be);
    /* The completion still ran, and shutdown did not wait a minute. */
    g_assert_cmpuint(c.count, ==, 1);
    g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_TIME_SPAN_SECOND);
}

static void test_script_replies_in_order(void)
{
    g_autofree char *dir = g_dir_make_tmp("tpm-backend-XXXXXX", NULL);
    g_autofree char *script = g_build_filename(dir, "script", NULL);
    g_autofree char *log = g_build_filename(dir, "log", NULL);
    g_autofree char *opts =
        g_strdup_printf("test,id=t0,version=1.2,script=%s,log=%s", script, log);
    g_autofree char *logtext = NULL;
    uint8_t in[10] = {0x00, 0xc1, 0, 0, 0, 10, 0, 0, 0, 0x53};
    uint8_t out[32];
    TPMBackendCmd cmd = {.locty = 1, .in = in, .in_len = 10, .out = out, .out_len = 32};
    Completion c = {0};
    TPMBackend *be;
    static const uint8_t r1[12] = {0x00, 0xc4, 0, 0, 0, 12, 0, 0, 0, 0, 0xab, 0xcd};
    static const uint8_t fatal12[10] = {0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 9};
    static const uint8_t ok12[10] = {0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 0};

    g_assert_true(g_file_set_contents(script,
                                      "# two replies\n"
                                      "reply 00c4 0000000c 00000000 abcd\n"
                                      "\n"
                                      "fatal\n",
                                      -1, NULL));
    be = create(opts);
    g_assert_cmpint(tpm_backend_get_tpm_version(be), ==, TPM_VERSION_1_2);
    for (unsigned i = 1; i <= 3; i++) {
        memset(out, 0, sizeof(out));
        g_assert_true(tpm_backend_deliver_request(be, &cmd, on_completed, &c, NULL));
        tpm_backend_finish_sync(be);
        g_assert_cmpuint(c.count, ==, i);
        if (i == 1) {
            g_assert_cmpmem(out, 12, r1, 12);
            g_assert_true(cmd.selftest_done);
        } else if (i == 2) {
            /* A TPM 1.2 gets a 1.2-style fatal error. */
            g_assert_cmpmem(out, 10, fatal12, 10);
        } else {
            g_assert_cmpmem(out, 10, ok12, 10);
        }
    }
    tpm_backend_destroy(be);
    g_assert_true(g_file_get_contents(log, &logtext, NULL, NULL));
    g_assert_cmpstr(logtext, ==,
                    "locty=1 00c10000000a00000053\nlocty=1 00c10000000a00000053\n"
                    "locty=1 00c10000000a00000053\n");
    g_unlink(script);
    g_unlink(log);
    g_rmdir(dir);
}

static void test_bad_script_line_is_named(void)
{
    g_autofree char *dir = g_dir_make_tmp("tpm-backend-XXXXXX", NULL);
    g_autofree char *script = g_build_filename(dir, "script", NULL);
    g_autofree char *opts = g_strdup_printf("test,id=t0,script=%s", script);

    g_assert_true(g_file_set_contents(script, "reply 8001\nreply 80x1\n", -1, NULL));
    create_fails(opts, "line 2: 'x' is not a hex digit");
    g_assert_true(g_file_set_contents(script, "reply 800\n", -1, NULL));
    create_fails(opts, "line 1: odd number of hex digits");
    g_assert_true(g_file_set_contents(script, "respond 8001\n", -1, NULL));
    create_fails(opts, "line 1: expected 'reply HEX' or 'fatal'");
    g_unlink(script);
    g_rmdir(dir);
}

static void test_startup_error_is_recorded(void)
{
    TPMBackend *be = create("test,id=t0,fail-startup=on");
    g_autoptr(GError) err = NULL;

    g_assert_false(tpm_backend_startup_tpm(be, 4096, &err));
    g_assert_nonnull(strstr(err->message, "TPM backend 't0' failed to start"));
    g_assert_true(tpm_backend_had_startup_error(be));
    g_assert_nonnull(be->startup_error);
    tpm_backend_destroy(be);
}

static void test_fatal_error_is_version_correct(void)
{
    uint8_t b[12];
    static const uint8_t tpm2[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01};
    static const uint8_t tpm12[10] = {0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 9};

    tpm_util_write_fatal_error_response(b, sizeof(b), TPM_VERSION_2_0);
    g_assert_cmpmem(b, 10, tpm2, 10);
    g_assert_cmpuint(tpm_cmd_get_size(b), ==, 10);
    g_assert_cmpuint(tpm_cmd_get_errcode(b), ==, 0x101);
    tpm_util_write_fatal_error_response(b, sizeof(b), TPM_VERSION_1_2);
    g_assert_cmpmem(b, 10, tpm12, 10);
    /* Too small a buffer is left alone. */
    memset(b, 0x5a, sizeof(b));
    tpm_util_write_fatal_error_response(b, 9, TPM_VERSION_2_0);
    g_assert_cmpuint(b[0], ==, 0x5a);
}

static void test_options_for_query(void)
{
    TPMBackend *be = create("test,id=t0,delay-ms=7");
    g_autoptr(GHashTable) kv =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    tpm_backend_get_options(be, kv);
    g_assert_cmpstr(g_hash_table_lookup(kv, "version"), ==, "2.0");
    g_assert_cmpstr(g_hash_table_lookup(kv, "delay-ms"), ==, "7");
    tpm_backend_destroy(be);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tpm-backend/create/errors-name-the-option", test_create_errors);
    g_test_add_func("/tpm-backend/create/help-lists-types-and-options",
                    test_help_lists_types);
    g_test_add_func("/tpm-backend/request/completes-in-main-loop",
                    test_request_completes_in_main_loop);
    g_test_add_func("/tpm-backend/request/finish-sync-completes-once",
                    test_finish_sync_completes_once);
    g_test_add_func("/tpm-backend/request/cancel-ends-a-delayed-command",
                    test_cancel_ends_delay);
    g_test_add_func("/tpm-backend/request/destroy-cancels-a-long-command",
                    test_destroy_cancels_a_long_command);
    g_test_add_func("/tpm-backend/test-backend/script-replies-in-order",
                    test_script_replies_in_order);
    g_test_add_func("/tpm-backend/test-backend/bad-script-line-is-named",
                    test_bad_script_line_is_named);
    g_test_add_func("/tpm-backend/startup/error-is-recorded",
                    test_startup_error_is_recorded);
    g_test_add_func("/tpm-backend/util/fatal-error-is-version-correct",
                    test_fatal_error_is_version_correct);
    g_test_add_func("/tpm-backend/query/options-of-the-test-backend",
                    test_options_for_query);
    return g_test_run();
}
