/*
 * -object secret: data=, file=, base64, errors that name the secret, and
 * locked memory that is wiped when freed.
 */
#include <string.h>
#include <sys/resource.h>

#include <glib/gstdio.h>

#include "crypto/secret.h"
#include "crypto/secure-mem.h"
#include "util/error.h"
#include "util/keyval.h"

typedef struct Fixture {
    char *dir;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("tpmvm-secret-XXXXXX", &err);
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(f->dir, name, NULL);

        g_unlink(path);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
    secret_delete_all();
}

static char *write_file(Fixture *f, const char *name, const void *data, size_t len)
{
    g_autoptr(GError) err = NULL;
    char *path = g_build_filename(f->dir, name, NULL);

    g_assert_true(g_file_set_contents(path, data, (gssize)len, &err));
    return path;
}

/* Parse an -object argument the way the command line does. */
static bool create(const char *opts, GError **errp)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(opts, "qom-type", &err);

    g_assert_no_error(err);
    return secret_create(kv, errp);
}

static void assert_secret(const char *id, const void *expected, size_t expected_len)
{
    g_autoptr(GError) err = NULL;
    uint8_t *data = NULL;
    size_t len = 0;

    g_assert_true(secret_lookup(id, &data, &len, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(data, len, expected, expected_len);
    secret_bytes_free(data, len);
}

static void test_data_is_stored_and_warns(Fixture *f, gconstpointer unused)
{
    if (g_test_subprocess()) {
        g_assert_true(create("secret,id=sec0,data=hunter2", NULL));
        assert_secret("sec0", "hunter2", 7);
        g_assert_true(secret_exists("sec0"));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*warning: -object secret,id=sec0: data= makes the secret "
                              "visible in 'ps'*use file=*");
    /* The warning never contains the secret itself. */
    g_test_trap_assert_stderr_unmatched("*hunter2*");
}

static void test_file_contents_are_kept_exactly(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *nl = write_file(f, "nl", "pw\n", 3);
    g_autofree char *bin = write_file(f, "bin", "a\0b\xff", 4);
    g_autofree char *empty = write_file(f, "empty", "", 0);
    g_autofree char *o1 = g_strdup_printf("secret,id=nl,file=%s", nl);
    g_autofree char *o2 = g_strdup_printf("secret,id=bin,file=%s,format=raw", bin);
    g_autofree char *o3 = g_strdup_printf("secret,id=empty,file=%s", empty);

    g_assert_true(create(o1, &err));
    g_assert_true(create(o2, &err));
    g_assert_true(create(o3, &err));
    g_assert_no_error(err);
    /* Like QEMU: a trailing newline is part of the secret. */
    assert_secret("nl", "pw\n", 3);
    assert_secret("bin", "a\0b\xff", 4);
    assert_secret("empty", "", 0);
}

static void test_base64_is_decoded(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;
    /* "password" and bytes 00 ff 10; a file with a trailing newline from base64(1). */
    g_autofree char *path = write_file(f, "b64", "AP8Q\n", 5);
    g_autofree char *opts = g_strdup_printf("secret,id=f64,file=%s,format=base64", path);

    g_assert_true(create("secret,id=d64,data=cGFzc3dvcmQ=,format=base64", &err));
    g_assert_true(create(opts, &err));
    g_assert_true(create("secret,id=pad2,data=cA==,format=base64", &err));
    g_assert_no_error(err);
    assert_secret("d64", "password", 8);
    assert_secret("f64", "\x00\xff\x10", 3);
    assert_secret("pad2", "p", 1);
}

static void test_bad_base64_names_the_secret(Fixture *f, gconstpointer unused)
{
    static const char *bad[] = {"not*base64", "abc", "ab=c", "a===", "=abc"};

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *opts =
            g_strdup_printf("secret,id=bad%zu,data=%s,format=base64", i, bad[i]);
        g_autofree char *id = g_strdup_printf("bad%zu", i);
        g_autofree char *quoted = g_strdup_printf("'%s'", id);

        g_assert_false(create(opts, &err));
        g_assert_nonnull(strstr(err->message, quoted));
        g_assert_nonnull(strstr(err->message, "base64"));
        g_assert_false(secret_exists(id));
    }
}

static void test_missing_file_names_file_and_secret(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = g_build_filename(f->dir, "absent.txt", NULL);
    g_autofree char *opts = g_strdup_printf("secret,id=sec9,file=%s", path);

    g_assert_false(create(opts, &err));
    g_assert_nonnull(strstr(err->message, path));
    g_assert_nonnull(strstr(err->message, "'sec9'"));
    g_assert_nonnull(strstr(err->message, "No such file"));
    g_assert_false(secret_exists("sec9"));
}

static void test_oversized_file_is_refused(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *big = g_malloc0(1024 * 1024 + 1);
    g_autofree char *path = write_file(f, "big", big, 1024 * 1024 + 1);
    g_autofree char *opts = g_strdup_printf("secret,id=big,file=%s", path);

    g_assert_false(create(opts, &err));
    g_assert_nonnull(strstr(err->message, "larger than"));
}

static void test_option_errors(Fixture *f, gconstpointer unused)
{
    static const struct {
        const char *opts;
        const char *message;
    } cases[] = {
        {"secret,data=x", "'id' is missing"},
        {"secret,id=1sec,data=x", "id must start with a letter"},
        {"secret,id=s/x,data=x", "id must start with a letter"},
        {"secret,id=s1", "exactly one of 'data' and 'file'"},
        {"secret,id=s1,data=x,file=/dev/null", "exactly one of 'data' and 'file'"},
        {"secret,id=s1,data=x,format=hex", "format 'hex'"},
        {"secret,id=s1,data=x,keyid=k0", "Invalid parameter 'keyid'"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;

        g_assert_false(create(cases[i].opts, &err));
        if (!strstr(err->message, cases[i].message)) {
            g_error("%s: expected \"%s\" in \"%s\"", cases[i].opts, cases[i].message,
                    err->message);
        }
    }
    g_assert_false(secret_exists("s1"));
}

static void test_duplicate_id_is_refused(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(create("secret,id=dup,data=first", &err));
    g_assert_false(create("secret,id=dup,data=second", &err));
    g_assert_cmpstr(err->message, ==,
                    "Secret 'dup' already exists; give each secret a unique id");
    /* The first one is untouched. */
    assert_secret("dup", "first", 5);
}

static void test_unknown_id(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;
    uint8_t *data = NULL;
    size_t len = 0;

    g_assert_false(secret_lookup("sec0", &data, &len, &err));
    g_assert_cmpstr(err->message, ==, "No secret with id 'sec0'");
    g_assert_null(data);
    g_assert_false(secret_exists("sec0"));
}

/* Records what secure_free() hands to the observer after wiping. */
static unsigned wiped_regions;
static bool wiped_all_zero;

static void observe_free(const void *p, size_t mapped_len)
{
    const uint8_t *b = p;

    wiped_regions++;
    for (size_t i = 0; i < mapped_len; i++) {
        wiped_all_zero = wiped_all_zero && b[i] == 0;
    }
}

static void test_secure_memory_is_wiped_on_free(Fixture *f, gconstpointer unused)
{
    g_autoptr(GError) err = NULL;
    uint8_t *data;
    size_t len;
    uint8_t *raw = secure_alloc(100);

    memset(raw, 0xee, 100);
    wiped_regions = 0;
    wiped_all_zero = true;
    secure_free_observer = observe_free;
    secure_free(raw, 100);
    g_assert_cmpuint(wiped_regions, ==, 1);
    g_assert_true(wiped_all_zero);

    g_assert_true(create("secret,id=w,data=top-secret-bytes", &err));
    g_assert_true(secret_lookup("w", &data, &len, &err));
    secret_bytes_free(data, len);
    g_assert_cmpuint(wiped_regions, ==, 2);
    /* The registry's own copy is wiped too. */
    secret_delete_all();
    g_assert_cmpuint(wiped_regions, ==, 3);
    g_assert_true(wiped_all_zero);
    secure_free_observer = NULL;
}

/* VmFlags of the mapping that contains p, from /proc/self/smaps. */
static char *vm_flags_of(const void *p)
{
    g_autofree char *smaps = NULL;
    g_auto(GStrv) lines = NULL;
    bool inside = false;

    g_assert_true(g_file_get_contents("/proc/self/smaps", &smaps, NULL, NULL));
    lines = g_strsplit(smaps, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long start, end;

        if (sscanf(*l, "%lx-%lx ", &start, &end) == 2 && strchr(*l, ' ')) {
            inside = (uintptr_t)p >= start && (uintptr_t)p < end;
        } else if (inside && g_str_has_prefix(*l, "VmFlags:")) {
            return g_strdup(*l + 8);
        }
    }
    return NULL;
}

static void test_secure_memory_is_locked_and_not_dumped(Fixture *f, gconstpointer unused)
{
    struct rlimit lim;
    uint8_t *p = secure_alloc(64);
    g_autofree char *flags = vm_flags_of(p);

    g_assert_nonnull(flags);
    g_test_message("VmFlags:%s", flags);
    g_assert_nonnull(strstr(flags, " dd")); /* MADV_DONTDUMP */
    g_assert_cmpint(getrlimit(RLIMIT_MEMLOCK, &lim), ==, 0);
#ifndef __SANITIZE_ADDRESS__
    /* ASan replaces mlock() with a no-op, so only plain builds can check it. */
    if (lim.rlim_cur >= 1024 * 1024) {
        g_assert_nonnull(strstr(flags, " lo")); /* mlock */
    }
#endif
    secure_free(p, 64);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/secret/data/is-stored-and-warns-about-ps", test_data_is_stored_and_warns);
    ADD("/secret/file/contents-are-kept-exactly", test_file_contents_are_kept_exactly);
    ADD("/secret/base64/is-decoded", test_base64_is_decoded);
    ADD("/secret/base64/invalid-input-names-the-secret",
        test_bad_base64_names_the_secret);
    ADD("/secret/file/missing-file-names-file-and-secret",
        test_missing_file_names_file_and_secret);
    ADD("/secret/file/oversized-file-is-refused", test_oversized_file_is_refused);
    ADD("/secret/options/errors-say-what-is-wrong", test_option_errors);
    ADD("/secret/id/duplicate-is-refused", test_duplicate_id_is_refused);
    ADD("/secret/id/unknown-is-reported-by-id", test_unknown_id);
    ADD("/secret/memory/is-wiped-on-free", test_secure_memory_is_wiped_on_free);
    ADD("/secret/memory/is-locked-and-not-dumped",
        test_secure_memory_is_locked_and_not_dumped);
#undef ADD
    return g_test_run();
}
