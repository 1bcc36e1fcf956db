/*
 * Option strings in QEMU syntax. See include/util/keyval.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/keyval.h"

typedef struct KeyValEntry {
    char *key;
    char *value;
    bool used;
} KeyValEntry;

struct KeyVal {
    GPtrArray *entries; /* KeyValEntry*, in order of first appearance */
    GPtrArray *keys;    /* NULL-terminated view for keyval_keys() */
    bool help;
};

static void entry_free(gpointer p)
{
    KeyValEntry *e = p;

    g_free(e->key);
    g_free(e->value);
    g_free(e);
}

KeyVal *keyval_new(void)
{
    KeyVal *kv = g_new0(KeyVal, 1);

    kv->entries = g_ptr_array_new_with_free_func(entry_free);
    kv->keys = g_ptr_array_new();
    g_ptr_array_add(kv->keys, NULL);
    return kv;
}

void keyval_free(KeyVal *kv)
{
    if (!kv) {
        return;
    }
    g_ptr_array_unref(kv->entries);
    g_ptr_array_unref(kv->keys);
    g_free(kv);
}

static KeyValEntry *keyval_find(const KeyVal *kv, const char *key)
{
    for (guint i = 0; i < kv->entries->len; i++) {
        KeyValEntry *e = g_ptr_array_index(kv->entries, i);
        if (strcmp(e->key, key) == 0) {
            return e;
        }
    }
    return NULL;
}

void keyval_set(KeyVal *kv, const char *key, const char *value)
{
    KeyValEntry *e = keyval_find(kv, key);

    if (e) {
        g_free(e->value);
        e->value = g_strdup(value);
        e->used = false;
        return;
    }
    e = g_new0(KeyValEntry, 1);
    e->key = g_strdup(key);
    e->value = g_strdup(value);
    g_ptr_array_add(kv->entries, e);
    /* keep the NULL terminator last */
    kv->keys->pdata[kv->keys->len - 1] = e->key;
    g_ptr_array_add(kv->keys, NULL);
}

/* Read one element up to an unescaped ',' (",," is a literal comma). */
static char *parse_element(const char **p)
{
    GString *s = g_string_new(NULL);
    const char *c = *p;

    for (;;) {
        if (*c == '\0') {
            break;
        }
        if (*c == ',') {
            if (c[1] == ',') {
                g_string_append_c(s, ',');
                c += 2;
                continue;
            }
            c++;
            break;
        }
        g_string_append_c(s, *c++);
    }
    *p = c;
    return g_string_free(s, FALSE);
}

KeyVal *keyval_parse(const char *str, const char *implied_key, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_new();
    const char *p = str ? str : "";
    bool first = true;

    while (*p) {
        g_autofree char *elem = parse_element(&p);
        char *eq = strchr(elem, '=');

        if (!eq) {
            if (strcmp(elem, "help") == 0 || strcmp(elem, "?") == 0) {
                kv->help = true;
            } else if (first && implied_key) {
                keyval_set(kv, implied_key, elem);
            } else if (elem[0] == '\0') {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "Invalid empty parameter in '%s'", str);
                return NULL;
            } else {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "Expected '=' after parameter '%s'", elem);
                return NULL;
            }
        } else {
            *eq = '\0';
            if (elem[0] == '\0') {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "Parameter name missing before '=%s'", eq + 1);
                return NULL;
            }
            if (strcmp(eq + 1, "help") == 0 || strcmp(eq + 1, "?") == 0) {
                kv->help = true;
            }
            keyval_set(kv, elem, eq + 1);
        }
        first = false;
    }
    return g_steal_pointer(&kv);
}

bool keyval_wants_help(const KeyVal *kv)
{
    return kv->help;
}

bool keyval_has(const KeyVal *kv, const char *key)
{
    return keyval_find(kv, key) != NULL;
}

const char *keyval_get(KeyVal *kv, const char *key)
{
    KeyValEntry *e = keyval_find(kv, key);

    if (!e) {
        return NULL;
    }
    e->used = true;
    return e->value;
}

bool keyval_get_bool(KeyVal *kv, const char *key, bool def, bool *out, GError **errp)
{
    const char *v = keyval_get(kv, key);

    if (!v) {
        *out = def;
        return true;
    }
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = false;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Parameter '%s' expects 'on' or 'off', not '%s'", key, v);
        return false;
    }
    return true;
}

bool keyval_get_uint(KeyVal *kv, const char *key, uint64_t def, uint64_t *out,
                     GError **errp)
{
    const char *v = keyval_get(kv, key);
    char *end;

    if (!v) {
        *out = def;
        return true;
    }
    errno = 0;
    *out = strtoull(v, &end, 0);
    if (v[0] == '\0' || v[0] == '-' || *end != '\0' || errno) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Parameter '%s' expects a non-negative number, not '%s'", key, v);
        return false;
    }
    return true;
}

bool parse_size(const char *str, char default_suffix, uint64_t *out, GError **errp)
{
    char *end;
    double d;
    uint64_t mult = 1;
    char suffix;

    errno = 0;
    if (!str || !g_ascii_isdigit(str[0])) {
        goto bad;
    }
    d = g_ascii_strtod(str, &end);
    if (errno || end == str) {
        goto bad;
    }
    suffix = *end ? *end : default_suffix;
    switch (g_ascii_toupper(suffix)) {
    case 0:
    case 'B':
        mult = 1;
        break;
    case 'K':
        mult = 1ULL << 10;
        break;
    case 'M':
        mult = 1ULL << 20;
        break;
    case 'G':
        mult = 1ULL << 30;
        break;
    case 'T':
        mult = 1ULL << 40;
        break;
    default:
        goto bad;
    }
    if (*end && end[1] != '\0' && !(g_ascii_toupper(end[1]) == 'B' && end[2] == '\0') &&
        !(g_ascii_toupper(end[1]) == 'I' && g_ascii_toupper(end[2]) == 'B' &&
          end[3] == '\0')) {
        goto bad;
    }
    if (d * mult >= 18446744073709551616.0 || d * mult != (double)(uint64_t)(d * mult)) {
        goto bad;
    }
    *out = (uint64_t)(d * mult);
    return true;
bad:
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "'%s' is not a valid size (a number with optional suffix K, M, G, T)",
                str ? str : "");
    return false;
}

bool keyval_get_size(KeyVal *kv, const char *key, uint64_t def, uint64_t *out,
                     GError **errp)
{
    const char *v = keyval_get(kv, key);
    GError *err = NULL;

    if (!v) {
        *out = def;
        return true;
    }
    if (!parse_size(v, 0, out, &err)) {
        g_propagate_prefixed_error(errp, err, "Parameter '%s': ", key);
        return false;
    }
    return true;
}

const char *const *keyval_keys(const KeyVal *kv)
{
    return (const char *const *)kv->keys->pdata;
}

KeyVal *keyval_extract_prefix(KeyVal *kv, const char *prefix)
{
    KeyVal *sub = keyval_new();
    size_t plen = strlen(prefix);

    for (guint i = 0; i < kv->entries->len; i++) {
        KeyValEntry *e = g_ptr_array_index(kv->entries, i);
        if (strncmp(e->key, prefix, plen) == 0 && e->key[plen]) {
            keyval_set(sub, e->key + plen, e->value);
            e->used = true;
        }
    }
    sub->help = kv->help;
    return sub;
}

bool keyval_check_unused(const KeyVal *kv, const char *what, GError **errp)
{
    for (guint i = 0; i < kv->entries->len; i++) {
        KeyValEntry *e = g_ptr_array_index(kv->entries, i);
        if (!e->used) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "%s%sInvalid parameter '%s'", what ? what : "", what ? ": " : "",
                        e->key);
            return false;
        }
    }
    return true;
}

static void keyval_append_escaped(GString *s, const char *text)
{
    for (const char *c = text; *c; c++) {
        if (*c == ',') {
            g_string_append_c(s, ',');
        }
        g_string_append_c(s, *c);
    }
}

char *keyval_to_string(const KeyVal *kv)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < kv->entries->len; i++) {
        KeyValEntry *e = g_ptr_array_index(kv->entries, i);
        if (i) {
            g_string_append_c(s, ',');
        }
        /* keys can hold a ",," too: escape both so the string parses back */
        keyval_append_escaped(s, e->key);
        g_string_append_c(s, '=');
        keyval_append_escaped(s, e->value);
    }
    return g_string_free(s, FALSE);
}
