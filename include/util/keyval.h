/*
 * QEMU-style option strings: "[implied,]key=val,key2=val2". A literal comma in
 * a value is written ",,". "help" or "?" anywhere asks for help. Keys are kept
 * in order; each get marks a key used so leftovers can be reported by name.
 */
#ifndef UTIL_KEYVAL_H
#define UTIL_KEYVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct KeyVal KeyVal;

/*
 * Parse `str`. A first element without '=' is the value of `implied_key`
 * (error if implied_key is NULL). Duplicate keys: the last one wins.
 */
KeyVal *keyval_parse(const char *str, const char *implied_key, GError **errp);
KeyVal *keyval_new(void);
void keyval_free(KeyVal *kv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KeyVal, keyval_free)

/* True if the string contained "help" or "?". */
bool keyval_wants_help(const KeyVal *kv);

bool keyval_has(const KeyVal *kv, const char *key);
/* Value of key (marks it used) or NULL. */
const char *keyval_get(KeyVal *kv, const char *key);
void keyval_set(KeyVal *kv, const char *key, const char *value);
/* on/off/yes/no/true/false. Absent key -> *out = def. */
bool keyval_get_bool(KeyVal *kv, const char *key, bool def, bool *out, GError **errp);
/* Decimal/0x numbers. */
bool keyval_get_uint(KeyVal *kv, const char *key, uint64_t def, uint64_t *out,
                     GError **errp);
/* Sizes with optional suffix k/K, M, G, T (powers of 1024); bare number = bytes
 * unless default_suffix is given (e.g. 'M' for -m). */
bool parse_size(const char *str, char default_suffix, uint64_t *out, GError **errp);
bool keyval_get_size(KeyVal *kv, const char *key, uint64_t def, uint64_t *out,
                     GError **errp);

/* Keys in order (NULL-terminated, owned by kv). */
const char *const *keyval_keys(const KeyVal *kv);
/* Sub-options with a dotted prefix: "encrypt.key-secret" under "encrypt." */
KeyVal *keyval_extract_prefix(KeyVal *kv, const char *prefix);

/*
 * Fail with "Invalid parameter 'KEY'" for the first key never read;
 * `what` prefixes the message (e.g. "-device tpm-tis").
 */
bool keyval_check_unused(const KeyVal *kv, const char *what, GError **errp);

/* Re-serialise (escaping commas), for messages and for passing options on. */
char *keyval_to_string(const KeyVal *kv);

#endif
