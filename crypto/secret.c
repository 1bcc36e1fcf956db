/*
 * -object secret: named byte strings (passphrases) held in locked memory.
 *
 * The registry is process-wide because secrets are named on the command line
 * and looked up by id from any part; a mutex guards it. Secret bytes are never
 * formatted into messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "crypto/secret.h"
#include "util/error.h"
#include "util/log.h"

/* Passphrases are short; a bound keeps file=/dev/zero from eating memory. */
#define SECRET_MAX_LEN (1024 * 1024)

typedef struct Secret {
    uint8_t *data; /* secure_alloc */
    size_t len;
} Secret;

static GMutex secret_lock;
static GHashTable *secret_table; /* id -> Secret *, guarded by secret_lock */

static void secret_free(gpointer p)
{
    Secret *s = p;

    secure_free(s->data, s->len);
    g_free(s);
}

static bool secret_id_valid(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

/* Read a whole file into locked memory, never through an unlocked buffer. */
static bool secret_read_file(const char *id, const char *path, Secret *s, GError **errp)
{
    size_t cap = 4096;
    uint8_t *buf;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        error_set_errno(errp, errno, "Cannot read file '%s' of secret '%s'", path, id);
        return false;
    }
    buf = secure_alloc(cap);
    for (;;) {
        ssize_t n;

        if (len == cap) {
            uint8_t *bigger;

            if (cap >= SECRET_MAX_LEN) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "File '%s' of secret '%s' is larger than %d bytes", path, id,
                            SECRET_MAX_LEN);
                goto fail;
            }
            bigger = secure_alloc(cap * 2);
            memcpy(bigger, buf, len);
            secure_free(buf, cap);
            buf = bigger;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_set_errno(errp, errno, "Cannot read file '%s' of secret '%s'", path,
                            id);
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    /* Shrink to the exact length so secret_free() knows the mapping size. */
    s->data = secure_alloc(len);
    s->len = len;
    memcpy(s->data, buf, len);
    secure_free(buf, cap);
    return true;
fail:
    close(fd);
    secure_free(buf, cap);
    return false;
}

/*
 * Strict base64 (RFC 4648 §4): only the alphabet, '=' padding at the end and
 * line breaks; g_base64_decode() alone would skip garbage silently.
 */
static bool secret_base64_valid(const uint8_t *in, size_t len)
{
    size_t n = 0;
    size_t pad = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i];

        if (c == '\n' || c == '\r') {
            continue;
        }
        if (c == '=') {
            pad++;
        } else if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
            return false;
        }
        n++;
    }
    return n % 4 == 0 && pad <= 2;
}

static bool secret_decode_base64(const char *id, Secret *s, GError **errp)
{
    size_t cap = s->len / 4 * 3 + 3;
    uint8_t *out;
    gint state = 0;
    guint save = 0;
    size_t len;

    if (!secret_base64_valid(s->data, s->len)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Secret '%s' is not valid base64 (format=base64)", id);
        return false;
    }
    out = secure_alloc(cap);
    len = g_base64_decode_step((const char *)s->data, s->len, out, &state, &save);
    secure_free(s->data, s->len);
    s->data = out;
    s->len = len;
    /* The mapping size is derived from len; keep it exact for secure_free(). */
    if (len != cap) {
        uint8_t *exact = secure_alloc(len);

        memcpy(exact, out, len);
        secure_free(out, cap);
        s->data = exact;
    }
    return true;
}

bool secret_create(KeyVal *opts, GError **errp)
{
    const char *id = keyval_get(opts, "id");
    const char *data = keyval_get(opts, "data");
    const char *file = keyval_get(opts, "file");
    const char *format = keyval_get(opts, "format");
    Secret *s;
    bool base64;

    keyval_get(opts, "qom-type");
    if (!id) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-object secret: Parameter 'id' is missing");
        return false;
    }
    if (!secret_id_valid(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-object secret,id=%s: id must start with a letter and contain only "
                    "letters, digits, '-', '.' and '_'",
                    id);
        return false;
    }
    if (!keyval_check_unused(opts, "-object secret", errp)) {
        return false;
    }
    if (!data == !file) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-object secret,id=%s: exactly one of 'data' and 'file' is required",
                    id);
        return false;
    }
    if (!format || !strcmp(format, "raw")) {
        base64 = false;
    } else if (!strcmp(format, "base64")) {
        base64 = true;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-object secret,id=%s: format '%s' is invalid; use raw or base64", id,
                    format);
        return false;
    }
    if (secret_exists(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Secret '%s' already exists; give each secret a unique id", id);
        return false;
    }

    s = g_new0(Secret, 1);
    if (data) {
        warn_report("-object secret,id=%s: data= makes the secret visible in 'ps' and "
                    "the shell history; use file= with a file only you can read",
                    id);
        s->len = strlen(data);
        s->data = secure_alloc(s->len);
        memcpy(s->data, data, s->len);
    } else if (!secret_read_file(id, file, s, errp)) {
        g_free(s);
        return false;
    }
    if (base64 && !secret_decode_base64(id, s, errp)) {
        secret_free(s);
        return false;
    }

    g_mutex_lock(&secret_lock);
    if (!secret_table) {
        secret_table =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, secret_free);
    }
    if (g_hash_table_contains(secret_table, id)) {
        /* Lost a race with another secret_create() of the same id. */
        g_mutex_unlock(&secret_lock);
        secret_free(s);
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Secret '%s' already exists; give each secret a unique id", id);
        return false;
    }
    g_hash_table_insert(secret_table, g_strdup(id), s);
    g_mutex_unlock(&secret_lock);
    return true;
}

bool secret_lookup(const char *id, uint8_t **data, size_t *len, GError **errp)
{
    Secret *s;

    g_mutex_lock(&secret_lock);
    s = secret_table ? g_hash_table_lookup(secret_table, id) : NULL;
    if (!s) {
        g_mutex_unlock(&secret_lock);
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "No secret with id '%s'", id);
        return false;
    }
    *data = secure_alloc(s->len);
    memcpy(*data, s->data, s->len);
    *len = s->len;
    g_mutex_unlock(&secret_lock);
    return true;
}

bool secret_exists(const char *id)
{
    bool found;

    g_mutex_lock(&secret_lock);
    found = secret_table && g_hash_table_contains(secret_table, id);
    g_mutex_unlock(&secret_lock);
    return found;
}

void secret_bytes_free(uint8_t *data, size_t len)
{
    secure_free(data, len);
}

void secret_delete_all(void)
{
    g_mutex_lock(&secret_lock);
    if (secret_table) {
        g_hash_table_destroy(secret_table);
        secret_table = NULL;
    }
    g_mutex_unlock(&secret_lock);
}
