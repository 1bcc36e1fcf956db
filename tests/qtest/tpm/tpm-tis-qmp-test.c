/*
 * The TPM monitor commands through a tpmvm process: query-tpm,
 * query-tpm-models, query-tpm-types in QEMU's JSON form, and HMP "info tpm".
 */
#include <glib.h>
#include <string.h>

#include "libqtest.h"

static char *to_json(JsonNode *node)
{
    return json_to_string(node, FALSE);
}

/* The "return" member of a reply as compact JSON text. */
static char *qmp_return(QTestState *qts, const char *cmd)
{
    JsonObject *rsp = qtest_qmp(qts, "%s", cmd);
    char *text;

    if (!json_object_has_member(rsp, "return")) {
        g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), rsp);
        g_autofree char *t = to_json(n);
        g_error("%s failed: %s", cmd, t);
    }
    text = to_json(json_object_get_member(rsp, "return"));
    json_object_unref(rsp);
    return text;
}

static void test_query_tpm(void)
{
    QTestState *qts = qtest_init("-machine pc -tpmdev test,id=tpm0,delay-ms=3 "
                                 "-device tpm-tis,tpmdev=tpm0,id=tis0");
    g_autofree char *tpm = qmp_return(qts, "{'execute': 'query-tpm'}");
    g_autofree char *models = qmp_return(qts, "{'execute': 'query-tpm-models'}");
    g_autofree char *types = qmp_return(qts, "{'execute': 'query-tpm-types'}");

    /* QEMU's TPMInfo: model, backend id, options {type, data}. */
    g_assert_cmpstr(
        tpm, ==,
        "[{\"model\":\"tpm-tis\",\"id\":\"tpm0\",\"options\":{\"type\":\"test\","
        "\"data\":{\"delay-ms\":\"3\",\"version\":\"2.0\"}}}]");
    g_assert_cmpstr(models, ==, "[\"tpm-tis\"]");
    /* Every registered backend type, sorted; the test backend is one of them. */
    g_assert_nonnull(strstr(types, "\"test\""));
    g_assert_true(types[0] == '[');
    /* The queries take no arguments; an unknown one is refused. */
    {
        JsonObject *rsp =
            qtest_qmp(qts, "{'execute': 'query-tpm', 'arguments': {'x': 1}}");
        g_assert_true(json_object_has_member(rsp, "error"));
        json_object_unref(rsp);
    }
    qtest_quit(qts);
}

static void test_query_tpm_without_tpm(void)
{
    QTestState *qts = qtest_init("-machine pc");
    g_autofree char *tpm = qmp_return(qts, "{'execute': 'query-tpm'}");
    g_autofree char *info = qtest_hmp(qts, "info tpm");

    g_assert_cmpstr(tpm, ==, "[]");
    g_assert_cmpstr(info, ==, "TPM device:\r\n");
    qtest_quit(qts);
}

static void test_info_tpm(void)
{
    QTestState *qts = qtest_init("-machine pc -tpmdev test,id=tpm0,version=1.2 "
                                 "-device tpm-tis,tpmdev=tpm0");
    g_autofree char *info = qtest_hmp(qts, "info tpm");

    g_assert_cmpstr(info, ==,
                    "TPM device:\r\n"
                    " tpm0: model=tpm-tis\r\n"
                    "  \\ tpm0: type=test,delay-ms=0,version=1.2\r\n");
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tpm-tis/qmp/query-tpm-in-qemu-form", test_query_tpm);
    g_test_add_func("/tpm-tis/qmp/no-tpm-is-an-empty-list", test_query_tpm_without_tpm);
    g_test_add_func("/tpm-tis/hmp/info-tpm", test_info_tpm);
    return g_test_run();
}
