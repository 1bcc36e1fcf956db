/*
 * Option strings: "key=val,key2=val2", ",," escapes, implied keys, help.
 */
#include <glib.h>

#include "util/keyval.h"

static void test_basic(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv =
        keyval_parse("socket,id=c0,path=/tmp/a,,b,server=on", "backend", &err);
    bool server;

    g_assert_no_error(err);
    g_assert_cmpstr(keyval_get(kv, "backend"), ==, "socket");
    g_assert_cmpstr(keyval_get(kv, "id"), ==, "c0");
    g_assert_cmpstr(keyval_get(kv, "path"), ==, "/tmp/a,b");
    g_assert_true(keyval_get_bool(kv, "server", false, &server, &err));
    g_assert_true(server);
    g_assert_true(keyval_check_unused(kv, "-chardev", &err));
}

static void test_unused_named(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("tpm-tis,tpmdev=t0,bogus=1", "driver", &err);

    g_assert_nonnull(kv);
    keyval_get(kv, "driver");
    keyval_get(kv, "tpmdev");
    g_assert_false(keyval_check_unused(kv, "-device tpm-tis", &err));
    g_assert_cmpstr(err->message, ==, "-device tpm-tis: Invalid parameter 'bogus'");
}

static void test_errors(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse("a=1,b", NULL, &err);

    g_assert_null(kv);
    g_assert_cmpstr(err->message, ==, "Expected '=' after parameter 'b'");
    g_clear_error(&err);
    g_assert_null(keyval_parse("=x", NULL, &err));
    g_assert_nonnull(err);
}

static void test_help(void)
{
    g_autoptr(KeyVal) a = keyval_parse("help", "driver", NULL);
    g_autoptr(KeyVal) b = keyval_parse("tpm-tis,help", "driver", NULL);
    g_autoptr(KeyVal) c = keyval_parse("tpm-tis,tpmdev=x", "driver", NULL);

    g_assert_true(keyval_wants_help(a));
    g_assert_true(keyval_wants_help(b));
    g_assert_false(keyval_wants_help(c));
}

static void test_size(void)
{
    uint64_t v;
    g_autoptr(GError) err = NULL;

    g_assert_true(parse_size("128", 'M', &v, &err));
    g_assert_cmpuint(v, ==, 128ULL << 20);
    g_assert_true(parse_size("1G", 0, &v, &err));
    g_assert_cmpuint(v, ==, 1ULL << 30);
    g_assert_true(parse_size("64k", 0, &v, &err));
    g_assert_cmpuint(v, ==, 65536);
    g_assert_true(parse_size("1.5M", 0, &v, &err));
    g_assert_cmpuint(v, ==, 3ULL << 19);
    g_assert_false(parse_size("12Q", 0, &v, &err));
    g_clear_error(&err);
    g_assert_false(parse_size("-1", 0, &v, &err));
    g_clear_error(&err);
    g_assert_false(parse_size("99999999T", 0, &v, &err));
}

static void test_roundtrip(void)
{
    g_autoptr(KeyVal) kv = keyval_parse("file=a,,b.qcow2,format=qcow2", NULL, NULL);
    g_autofree char *s = keyval_to_string(kv);

    g_assert_cmpstr(s, ==, "file=a,,b.qcow2,format=qcow2");
}

static void test_prefix(void)
{
    g_autoptr(KeyVal) kv =
        keyval_parse("encrypt.format=luks,encrypt.key-secret=s0,id=d", NULL, NULL);
    g_autoptr(KeyVal) sub = keyval_extract_prefix(kv, "encrypt.");

    g_assert_cmpstr(keyval_get(sub, "format"), ==, "luks");
    g_assert_cmpstr(keyval_get(sub, "key-secret"), ==, "s0");
    keyval_get(kv, "id");
    g_assert_true(keyval_check_unused(kv, NULL, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keyval/parse/basic", test_basic);
    g_test_add_func("/keyval/parse/unused-key-is-named", test_unused_named);
    g_test_add_func("/keyval/parse/errors", test_errors);
    g_test_add_func("/keyval/parse/help", test_help);
    g_test_add_func("/keyval/size/suffixes", test_size);
    g_test_add_func("/keyval/to-string/escapes-commas", test_roundtrip);
    g_test_add_func("/keyval/prefix/extract", test_prefix);
    return g_test_run();
}
