/*
 * Fuzz target for the option-string parser (util/keyval.c): every -drive,
 * -device, -object, -chardev and -sandbox argument goes through it, and
 * management tools build those strings from user data.
 *
 * Checks beyond "does not crash": a parsed string re-serialised by
 * keyval_to_string() parses back to the same keys and values in the same
 * order, and every typed getter either succeeds or sets an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "util/keyval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Same keys with the same values, in the same order. */
static void assert_same(KeyVal *a, KeyVal *b)
{
    const char *const *ka = keyval_keys(a);
    const char *const *kb = keyval_keys(b);
    size_t i;

    for (i = 0; ka[i] && kb[i]; i++) {
        if (strcmp(ka[i], kb[i]) != 0 ||
            strcmp(keyval_get(a, ka[i]), keyval_get(b, kb[i])) != 0) {
            abort();
        }
    }
    if (ka[i] || kb[i]) {
        abort();
    }
}

static void exercise_getters(KeyVal *kv)
{
    const char *const *keys = keyval_keys(kv);

    for (size_t i = 0; keys[i]; i++) {
        GError *err = NULL;
        bool b;
        uint64_t n;

        if (!keyval_get_bool(kv, keys[i], false, &b, &err)) {
            if (!err) {
                abort();
            }
            g_clear_error(&err);
        }
        if (!keyval_get_uint(kv, keys[i], 0, &n, &err)) {
            if (!err) {
                abort();
            }
            g_clear_error(&err);
        }
        if (!keyval_get_size(kv, keys[i], 0, &n, &err)) {
            if (!err) {
                abort();
            }
            g_clear_error(&err);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the implied key, as -device/-drive differ there */
    const char *implied = size > 0 && (data[0] & 1) ? "driver" : NULL;
    g_autofree char *str = g_strndup((const char *)data, size);
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(str, implied, &err);
    g_autoptr(KeyVal) sub = NULL;
    g_autoptr(KeyVal) again = NULL;
    g_autofree char *text = NULL;

    if (!kv) {
        if (!err) {
            abort();
        }
        return 0;
    }
    text = keyval_to_string(kv);
    again = keyval_parse(text, NULL, NULL);
    if (!again) {
        abort();
    }
    assert_same(kv, again);

    sub = keyval_extract_prefix(kv, "encrypt.");
    exercise_getters(kv);
    exercise_getters(sub);
    keyval_check_unused(kv, "-fuzz", NULL);
    (void)keyval_wants_help(kv);
    return 0;
}
