/*
 * Thousands of random and malformed lines at QMP: every reply must be a JSON
 * object, the process must stay up, and after a resync byte (0xFF) it must
 * answer query-status on the same connection and on libqtest's.
 */
#include <string.h>

#include <glib/gstdio.h>

#include "libqtest.h"
#include "monitor-client.h"

#define LINES 4000
#define TIMEOUT_MS 20000

/* Pieces that look like QMP, so the mutations reach past the parser. */
static const char *const fragments[] = {
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\\",
    "\\u00",
    "'",
    " ",
    "\"execute\"",
    "\"arguments\"",
    "\"id\"",
    "\"query-status\"",
    "\"stop\"",
    "\"cont\"",
    "\"human-monitor-command\"",
    "\"command-line\"",
    "\"info status\"",
    "\"help\"",
    "\"qmp_capabilities\"",
    "\"query-commands\"",
    "\"enable\"",
    "1",
    "-1",
    "1e999",
    "99999999999999999999",
    "0.5",
    "true",
    "false",
    "null",
    "\xc3\xa9",
    "\xff",
    "\x01",
    "\t",
    "{\"execute\": \"query-version\"}",
};

static const char *const commands[] = {
    "query-status",
    "query-version",
    "query-commands",
    "query-machines",
    "query-name",
    "stop",
    "cont",
    "human-monitor-command",
    "qmp_capabilities",
    "no-such-command",
    "",
};

static const char *const values[] = {
    "1",
    "-1",
    "1e999",
    "99999999999999999999",
    "0.5",
    "true",
    "null",
    "\"info status\"",
    "\"help\"",
    "\"foo\"",
    "[]",
    "{}",
    "{\"a\": [1, {\"b\": null}]}",
    "\"\\u0000\"",
};

static void append_random_line(GString *line, GRand *rand)
{
    int kind = g_rand_int_range(rand, 0, 4);
    int n = g_rand_int_range(rand, 1, 24);

    for (int i = 0; i < n; i++) {
        if (kind == 0) {
            /* raw bytes */
            char c = (char)g_rand_int_range(rand, 1, 256);
            g_string_append_c(line, c == '\n' ? ' ' : c);
        } else {
            g_string_append(
                line, fragments[g_rand_int_range(rand, 0, G_N_ELEMENTS(fragments))]);
        }
    }
    if (kind == 3) {
        /* a whole request with a mutated argument list, often valid JSON */
        g_string_printf(line, "{\"execute\": \"%s\", \"arguments\": {\"%s\": %s}}",
                        commands[g_rand_int_range(rand, 0, G_N_ELEMENTS(commands))],
                        g_rand_boolean(rand) ? "command-line" : "x",
                        values[g_rand_int_range(rand, 0, G_N_ELEMENTS(values))]);
    }
    g_string_append_c(line, '\n');
}

/* Every complete reply line must parse as a JSON object. */
static guint check_replies(GString *pending)
{
    guint n = 0;
    char *nl;

    while ((nl = memchr(pending->str, '\n', pending->len))) {
        g_autofree char *line = g_strndup(pending->str, nl - pending->str);
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonNode) node = json_from_string(line, &err);

        g_assert_no_error(err);
        g_assert_cmpint(json_node_get_node_type(node), ==, JSON_NODE_OBJECT);
        g_string_erase(pending, 0, nl - pending->str + 1);
        n++;
    }
    return n;
}

static void test_random_lines_then_query_status(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-monitor-fuzz-XXXXXX", &err);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autoptr(GRand) rand = g_rand_new_with_seed(0x7e57);
    g_autoptr(GString) pending = g_string_new(NULL);
    g_autoptr(GString) line = g_string_new(NULL);
    QTestState *qts;
    MonClient *c;
    JsonObject *rsp;
    guint replies = 0;

    g_assert_no_error(err);
    qts = qtest_initf("-machine pc -m 16 -qmp unix:%s,server=on,wait=off", sock);
    c = mon_client_connect(sock);
    mon_client_qmp_handshake(c);

    for (int i = 0; i < LINES; i++) {
        g_string_truncate(line, 0);
        append_random_line(line, rand);
        mon_client_send(c, line->str, line->len);
        if (i % 50 == 49) {
            /* keep reading so the server never blocks on a full socket */
            g_autofree char *got = mon_client_drain(c, 0);
            g_string_append(pending, got);
            replies += check_replies(pending);
        }
    }
    mon_client_send_str(c, "\xff{\"execute\": \"query-status\", \"id\": \"final\"}");
    for (;;) {
        rsp = mon_client_qmp_read(c);
        replies++;
        if (json_object_has_member(rsp, "id") &&
            json_node_get_value_type(json_object_get_member(rsp, "id")) ==
                G_TYPE_STRING &&
            strcmp(json_object_get_string_member(rsp, "id"), "final") == 0) {
            break;
        }
        json_object_unref(rsp);
    }
    g_assert_true(
        json_object_has_member(json_object_get_object_member(rsp, "return"), "status"));
    json_object_unref(rsp);
    g_test_message("%u replies to %d random lines", replies, LINES);
    g_assert_cmpuint(replies, >, LINES / 4);

    /* the process is alive and its other monitor and qtest still answer */
    rsp = qtest_qmp(qts, "{\"execute\": \"query-status\"}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    qtest_writel(qts, 0x1000, 0x5a5a5a5a);
    g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0x5a5a5a5a);

    mon_client_free(c);
    qtest_quit(qts);
    g_unlink(sock);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/monitor/fuzz/random-lines-then-query-status-answers",
                    test_random_lines_then_query_status);
    return g_test_run();
}
