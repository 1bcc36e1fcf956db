/*
 * The human monitor: line runner, help, info tables, registration by other
 * parts, and the line session (banner, prompt, split and overlong lines).
 */
#include <string.h>

#include <glib.h>

#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "util/error.h"

static bool x_echo(const char *args, GString *out, GError **errp)
{
    g_string_append_printf(out, "echo:[%s]\n", args);
    return true;
}

static bool x_fail(const char *args, GString *out, GError **errp)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "snapshot '%s' not found", args);
    return false;
}

static bool x_noargs(const char *args, GString *out, GError **errp)
{
    g_string_append(out, "ran\n");
    return true;
}

static bool x_info_widget(const char *args, GString *out, GError **errp)
{
    g_string_append(out, "widget: ok\nsecond line\n");
    return true;
}

static void assert_line_output(const char *line, const char *expected)
{
    g_autofree char *out = hmp_run_line(line);

    g_assert_cmpstr(out, ==, expected);
}

static void test_unknown_command(void)
{
    assert_line_output("foo", "unknown command: 'foo'\r\n");
    assert_line_output("  foo bar  ", "unknown command: 'foo'\r\n");
    assert_line_output("info foo", "unknown command: 'info foo'\r\n");
}

static void test_empty_line_prints_nothing(void)
{
    assert_line_output("", "");
    assert_line_output("   \t ", "");
}

static void test_info_version(void)
{
    assert_line_output("info version", "0.1.0\r\n");
}

static void test_registered_commands_run_with_trimmed_args(void)
{
    assert_line_output("x_echo   hello  world  ", "echo:[hello  world]\r\n");
    assert_line_output("xe hi", "echo:[hi]\r\n");
    assert_line_output("info widget", "widget: ok\r\nsecond line\r\n");
}

static void test_failure_prints_error(void)
{
    assert_line_output("x_fail snap1", "Error: snapshot 'snap1' not found\r\n");
}

static void test_extra_arguments_rejected(void)
{
    assert_line_output("x_noargs", "ran\r\n");
    assert_line_output("x_noargs now",
                       "x_noargs: extraneous characters at the end of line\r\n"
                       "Try \"help x_noargs\" for more information\r\n");
    assert_line_output("info version please",
                       "version: extraneous characters at the end of line\r\n"
                       "Try \"help info version\" for more information\r\n");
}

static void test_help_lists_commands(void)
{
    g_autofree char *all = hmp_run_line("help");
    g_autofree char *infos = hmp_run_line("help info");
    g_autofree char *bare_info = hmp_run_line("info");

    g_assert_nonnull(strstr(all, "x_echo|xe text -- echo the text\r\n"));
    g_assert_nonnull(strstr(all, "help|? [cmd] -- show the help\r\n"));
    g_assert_nonnull(strstr(all, "info [subcommand] -- "));
    g_assert_null(strstr(all, "info version"));
    g_assert_nonnull(strstr(infos, "info version  -- show the version of tpmvm\r\n"));
    g_assert_nonnull(strstr(infos, "info widget  -- show the widget\r\n"));
    g_assert_cmpstr(infos, ==, bare_info);
    assert_line_output("help x_echo", "x_echo|xe text -- echo the text\r\n");
    assert_line_output("? xe", "x_echo|xe text -- echo the text\r\n");
    assert_line_output("help nothing", "unknown command: 'nothing'\r\n");
}

typedef struct TestTerm {
    HmpSession *s;
    GString *out;
} TestTerm;

static void term_output(void *opaque, const char *buf, size_t len)
{
    g_string_append_len(opaque, buf, len);
}

static void term_init(TestTerm *t)
{
    t->out = g_string_new(NULL);
    t->s = hmp_session_new(term_output, t->out);
}

static void term_destroy(TestTerm *t)
{
    hmp_session_free(t->s);
    g_string_free(t->out, TRUE);
}

static void term_send(TestTerm *t, const char *text)
{
    hmp_session_feed(t->s, (const uint8_t *)text, strlen(text));
}

static void test_session_banner_and_prompt(void)
{
    TestTerm t;

    term_init(&t);
    hmp_session_open(t.s);
    g_assert_cmpstr(t.out->str, ==,
                    "tpmvm 0.1.0 monitor - type 'help' for more information\r\n(tpmvm) ");
    g_string_truncate(t.out, 0);
    term_send(&t, "info version\n");
    g_assert_cmpstr(t.out->str, ==, "0.1.0\r\n(tpmvm) ");
    term_destroy(&t);
}

static void test_session_lines_split_and_crlf(void)
{
    TestTerm t;

    term_init(&t);
    hmp_session_open(t.s);
    g_string_truncate(t.out, 0);
    term_send(&t, "x_ec");
    g_assert_cmpstr(t.out->str, ==, "");
    term_send(&t, "ho a\r");
    term_send(&t, "\nxe b\r\n\n");
    g_assert_cmpstr(t.out->str, ==, "echo:[a]\r\n(tpmvm) echo:[b]\r\n(tpmvm) (tpmvm) ");
    term_destroy(&t);
}

static void test_session_overlong_line_rejected(void)
{
    TestTerm t;
    GString *line = g_string_new("x_echo ");

    term_init(&t);
    hmp_session_open(t.s);
    g_string_truncate(t.out, 0);
    for (int i = 0; i < 3 * HMP_LINE_MAX; i++) {
        g_string_append_c(line, 'z');
    }
    g_string_append(line, "\nxe ok\n");
    term_send(&t, line->str);
    g_assert_cmpstr(t.out->str, ==,
                    "Error: line longer than 4096 bytes, ignored\r\n(tpmvm) "
                    "echo:[ok]\r\n(tpmvm) ");
    g_string_free(line, TRUE);
    term_destroy(&t);
}

static void test_session_close_drops_partial_line(void)
{
    TestTerm t;

    term_init(&t);
    hmp_session_open(t.s);
    term_send(&t, "x_echo half");
    hmp_session_close(t.s);
    hmp_session_open(t.s);
    g_string_truncate(t.out, 0);
    term_send(&t, "xe whole\n");
    g_assert_cmpstr(t.out->str, ==, "echo:[whole]\r\n(tpmvm) ");
    term_destroy(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    hmp_register_command("x_echo|xe", "text", "echo the text", x_echo);
    hmp_register_command("x_fail", "tag", "always fails", x_fail);
    hmp_register_command("x_noargs", "", "takes no arguments", x_noargs);
    hmp_register_info("widget", "show the widget", x_info_widget);

    g_test_add_func("/hmp/line/unknown-command-is-named", test_unknown_command);
    g_test_add_func("/hmp/line/empty-line-prints-nothing",
                    test_empty_line_prints_nothing);
    g_test_add_func("/hmp/line/info-version-prints-version", test_info_version);
    g_test_add_func("/hmp/line/registered-commands-get-trimmed-args",
                    test_registered_commands_run_with_trimmed_args);
    g_test_add_func("/hmp/line/failure-prints-error", test_failure_prints_error);
    g_test_add_func("/hmp/line/extra-arguments-are-rejected",
                    test_extra_arguments_rejected);
    g_test_add_func("/hmp/help/lists-commands-with-params", test_help_lists_commands);
    g_test_add_func("/hmp/session/banner-then-prompt-after-each-line",
                    test_session_banner_and_prompt);
    g_test_add_func("/hmp/session/lines-split-across-reads-and-crlf",
                    test_session_lines_split_and_crlf);
    g_test_add_func("/hmp/session/overlong-line-is-rejected",
                    test_session_overlong_line_rejected);
    g_test_add_func("/hmp/session/close-drops-partial-line",
                    test_session_close_drops_partial_line);
    return g_test_run();
}
