/*
 * LUKS1 header creation, unlocking, payload sectors, key slots and hostile
 * headers, on an in-memory LUKS area.
 */
#include <string.h>

#include "crypto/luks.h"
#include "luks-mem-io.h"
#include "util/error.h"

#define PASS "correct horse"

static const LuksCreateOpts fast_opts = {.iter_time_ms = 10};

static LuksBlock *create_area(MemArea *a, LuksIO *io, const LuksCreateOpts *opts)
{
    g_autoptr(GError) err = NULL;
    LuksBlock *luks;

    mem_area_init(a, io);
    luks = luks_create(opts, (const uint8_t *)PASS, strlen(PASS), io, &err);
    g_assert_no_error(err);
    g_assert_nonnull(luks);
    return luks;
}

static void test_create_then_open(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;
    LuksBlock *created = create_area(&a, &io, &fast_opts);
    LuksBlock *opened;
    uint8_t plain[4096], buf[4096];

    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)(i * 7 + 3);
    }
    g_assert_cmpuint(a.bytes->len, <=, luks_area_size(&fast_opts));

    opened = luks_open((const uint8_t *)PASS, strlen(PASS), &io, &err);
    g_assert_no_error(err);
    g_assert_nonnull(opened);

    /* What one handle encrypts, the other decrypts: both hold the same master key. */
    memcpy(buf, plain, sizeof(buf));
    g_assert_true(luks_encrypt(created, 4736, buf, sizeof(buf), &err));
    g_assert_true(memcmp(buf, plain, sizeof(buf)) != 0);
    g_assert_true(luks_decrypt(opened, 4736, buf, sizeof(buf), &err));
    g_assert_cmpmem(buf, sizeof(buf), plain, sizeof(plain));

    luks_free(created);
    luks_free(opened);
    mem_area_clear(&a);
}

static void test_wrong_password_is_refused(void)
{
    g_autoptr(GError) err = NULL;
    MemArea a;
    LuksIO io;
    LuksBlock *created = create_area(&a, &io, &fast_opts);

    g_assert_null(luks_open((const uint8_t *)"wrong", 5, &io, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);
    g_assert_cmpstr(err->message, ==, "Invalid password, cannot unlock any keyslot");
    g_clear_error(&err);
    /* A prefix of the right passphrase is a different passphrase. */
    g_assert_null(luks_open((const uint8_t *)PASS, strlen(PASS) - 1, &io, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);

    luks_free(created);
    mem_area_clear(&a);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/luks/create/then-open-decrypts-what-create-encrypted",
                    test_create_then_open);
    g_test_add_func("/luks/open/wrong-password-is-refused",
                    test_wrong_password_is_refused);
    return g_test_run();
}
