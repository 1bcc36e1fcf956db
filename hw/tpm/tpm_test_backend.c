/*
 * The "test" TPM backend: canned replies, optional delay, a record of every
 * command. It exists so that the TIS frontend can be tested and fuzzed
 * without libtpms; see include/hw/tpm/tpm_test_backend.h and docs/tpm.md.
 *
 * Threads: handle_request runs on the backend worker; everything the worker
 * and the main thread share is guarded by TPMTestBackend.lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_test_backend.h"
#include "util/error.h"

#define TPM_TEST_BUFFER_MAX (1024 * 1024)

/* Ordinals after which a successful reply means "self-test done". */
#define TPM2_CC_SELF_TEST 0x143
#define TPM_ORD_CONTINUE_SELF_TEST 0x53
#define TPM_ORD_SELF_TEST_FULL 0x50
#define TPM2_RC_CANCELED 0x909

typedef struct TPMTestBackend {
    TPMBackend parent;
    TPMVersion version;
    size_t buffer_size;
    bool fail_startup;
    char *script_path;
    char *log_path;
    FILE *log;
    /* Guarded by lock (worker + main thread). */
    GMutex lock;
    GCond cond;
    GQueue replies;      /* GBytes*, used in order */
    GPtrArray *commands; /* GBytes*, as received */
    unsigned delay_ms;
    uint64_t cancel_seq; /* be->cmd_seq of the last cancelled command */
    bool established;
    int last_locty;
    unsigned cancels;
    unsigned established_resets;
    unsigned startups;
    size_t startup_buffer_size;
} TPMTestBackend;

static TPMTestBackend *TPM_TEST(TPMBackend *be)
{
    return (TPMTestBackend *)be;
}

/* Parse hex digits, ignoring spaces/tabs. */
static GBytes *parse_hex(const char *s, GError **errp)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    int hi = -1;

    for (const char *p = s; *p; p++) {
        int v;

        if (*p == ' ' || *p == '\t' || *p == '\r') {
            continue;
        }
        v = g_ascii_xdigit_value(*p);
        if (v < 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "'%c' is not a hex digit",
                        *p);
            return NULL;
        }
        if (hi < 0) {
            hi = v;
        } else {
            uint8_t b = hi << 4 | v;
            g_byte_array_append(out, &b, 1);
            hi = -1;
        }
    }
    if (hi >= 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "odd number of hex digits");
        return NULL;
    }
    if (out->len > TPM_TEST_BUFFER_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "reply longer than %u bytes",
                    TPM_TEST_BUFFER_MAX);
        return NULL;
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

static GBytes *fatal_reply(TPMVersion v)
{
    uint8_t buf[10];

    tpm_util_write_fatal_error_response(buf, sizeof(buf), v);
    return g_bytes_new(buf, sizeof(buf));
}

/*
 * Script lines: "reply HEX..." (the next reply), "fatal" (a version-correct
 * fatal error reply), "# ..." comments and blank lines.
 */
static bool tpm_test_load_script(TPMTestBackend *t, const char *path, GError **errp)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GError *err = NULL;

    if (!g_file_get_contents(path, &text, NULL, &err)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "cannot read script '%s': %s",
                    path, err->message);
        g_error_free(err);
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        const char *l = g_strstrip(lines[i]);
        GBytes *reply = NULL;

        if (l[0] == '\0' || l[0] == '#') {
            continue;
        }
        if (g_str_has_prefix(l, "reply ") || g_str_has_prefix(l, "reply\t")) {
            reply = parse_hex(l + 6, &err);
        } else if (strcmp(l, "fatal") == 0) {
            reply = fatal_reply(t->version);
        } else {
            g_set_error(&err, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "expected 'reply HEX' or 'fatal'");
        }
        if (!reply) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "script '%s' line %u: %s; fix the line (see docs/tpm.md)", path,
                        i + 1, err->message);
            g_error_free(err);
            return false;
        }
        g_queue_push_tail(&t->replies, reply);
    }
    return true;
}

static TPMBackend *tpm_test_create(const char *id, KeyVal *opts, GError **errp);

static void tpm_test_destroy(TPMBackend *be)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_queue_clear_full(&t->replies, (GDestroyNotify)g_bytes_unref);
    g_ptr_array_unref(t->commands);
    if (t->log) {
        fclose(t->log);
    }
    g_free(t->script_path);
    g_free(t->log_path);
    g_mutex_clear(&t->lock);
    g_cond_clear(&t->cond);
    g_free(t);
}

static void tpm_test_print_help(void)
{
    printf("  script=<file>            replies to give, in order (docs/tpm.md)\n"
           "  delay-ms=<n>             hold each command n ms (a cancel ends it), "
           "default 0\n"
           "  version=2.0|1.2          TPM version to emulate, default 2.0\n"
           "  log=<file>               append each received command as hex\n"
           "  buffer-size=<n>          I/O buffer size in bytes, default 4096\n"
           "  established=on|off       the TPM-established flag, default off\n"
           "  fail-startup=on|off      make startup fail, default off\n");
}

static bool tpm_test_startup(TPMBackend *be, size_t buffersize, GError **errp)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_mutex_lock(&t->lock);
    t->startups++;
    t->startup_buffer_size = buffersize;
    g_mutex_unlock(&t->lock);
    if (t->fail_startup) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "startup failure requested with fail-startup=on");
        return false;
    }
    return true;
}

static void tpm_test_handle_request(TPMBackend *be, TPMBackendCmd *cmd)
{
    TPMTestBackend *t = TPM_TEST(be);
    g_autoptr(GBytes) reply = NULL;
    gint64 deadline;
    bool cancelled = false;
    uint64_t seq = be->cmd_seq; /* stable while this command is outstanding */
    uint32_t ord;
    const uint8_t *data;
    gsize len;

    g_mutex_lock(&t->lock);
    g_ptr_array_add(t->commands, g_bytes_new(cmd->in, cmd->in_len));
    t->last_locty = cmd->locty;
    if (t->log) {
        fprintf(t->log, "locty=%u ", cmd->locty);
        for (uint32_t i = 0; i < cmd->in_len; i++) {
            fprintf(t->log, "%02x", cmd->in[i]);
        }
        fprintf(t->log, "\n");
        fflush(t->log);
    }
    /* Hold the command; a cancel (or a delay change to 0) ends the wait. A
     * cancel counts only for this command (cmd_seq), never for a later one. */
    deadline = g_get_monotonic_time() + (gint64)t->delay_ms * G_TIME_SPAN_MILLISECOND;
    while (t->delay_ms && t->cancel_seq != seq) {
        if (!g_cond_wait_until(&t->cond, &t->lock, deadline)) {
            break;
        }
    }
    cancelled = t->cancel_seq == seq;
    if (!cancelled) {
        reply = g_queue_pop_head(&t->replies);
    }
    g_mutex_unlock(&t->lock);

    if (cancelled) {
        if (t->version == TPM_VERSION_2_0) {
            static const uint8_t canceled[10] = {0x80, 0x01, 0, 0,    0,
                                                 10,   0,    0, 0x09, 0x09};
            G_STATIC_ASSERT(TPM2_RC_CANCELED == 0x909);
            reply = g_bytes_new(canceled, sizeof(canceled));
        } else {
            reply = fatal_reply(t->version);
        }
    } else if (!reply) {
        static const uint8_t ok2[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0};
        static const uint8_t ok12[10] = {0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 0};
        reply = t->version == TPM_VERSION_1_2 ? g_bytes_new_static(ok12, sizeof(ok12))
                                              : g_bytes_new_static(ok2, sizeof(ok2));
    }
    data = g_bytes_get_data(reply, &len);
    /* in and out may be the same buffer: read the ordinal first. */
    ord = cmd->in_len >= 10 ? tpm_cmd_get_ordinal(cmd->in) : 0;
    if (len >= 10 && tpm_cmd_get_errcode(data) == 0) {
        cmd->selftest_done = ord == TPM2_CC_SELF_TEST ||
                             ord == TPM_ORD_CONTINUE_SELF_TEST ||
                             ord == TPM_ORD_SELF_TEST_FULL;
    }
    memcpy(cmd->out, data, MIN(len, (gsize)cmd->out_len));
}

static void tpm_test_cancel_cmd(TPMBackend *be)
{
    TPMTestBackend *t = TPM_TEST(be);

    /* Never blocks: only flags the worker and wakes its wait. */
    g_mutex_lock(&t->lock);
    t->cancels++;
    t->cancel_seq = be->cmd_seq;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
}

static bool tpm_test_get_established(TPMBackend *be)
{
    TPMTestBackend *t = TPM_TEST(be);
    bool v;

    g_mutex_lock(&t->lock);
    v = t->established;
    g_mutex_unlock(&t->lock);
    return v;
}

static int tpm_test_reset_established(TPMBackend *be, uint8_t locty)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_mutex_lock(&t->lock);
    t->established = false;
    t->established_resets++;
    g_mutex_unlock(&t->lock);
    return 0;
}

static TPMVersion tpm_test_get_version(TPMBackend *be)
{
    return TPM_TEST(be)->version;
}

static size_t tpm_test_get_buffer_size(TPMBackend *be)
{
    return TPM_TEST(be)->buffer_size;
}

static void tpm_test_get_options(TPMBackend *be, GHashTable *kv)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_hash_table_insert(kv, g_strdup("version"), g_strdup(tpm_version_name(t->version)));
    g_hash_table_insert(kv, g_strdup("delay-ms"), g_strdup_printf("%u", t->delay_ms));
    if (t->script_path) {
        g_hash_table_insert(kv, g_strdup("script"), g_strdup(t->script_path));
    }
    if (t->log_path) {
        g_hash_table_insert(kv, g_strdup("log"), g_strdup(t->log_path));
    }
}

static const TPMBackendClass tpm_test_backend_class = {
    .type = "test",
    .desc = "Scripted TPM for tests (no libtpms)",
    .create = tpm_test_create,
    .destroy = tpm_test_destroy,
    .print_help = tpm_test_print_help,
    .startup_tpm = tpm_test_startup,
    .handle_request = tpm_test_handle_request,
    .cancel_cmd = tpm_test_cancel_cmd,
    .get_tpm_established_flag = tpm_test_get_established,
    .reset_tpm_established_flag = tpm_test_reset_established,
    .get_tpm_version = tpm_test_get_version,
    .get_buffer_size = tpm_test_get_buffer_size,
    .get_options = tpm_test_get_options,
};
TPM_BACKEND_REGISTER(tpm_test_backend_class)

static TPMBackend *tpm_test_create(const char *id, KeyVal *opts, GError **errp)
{
    g_autofree TPMTestBackend *t = g_new0(TPMTestBackend, 1);
    const char *version = keyval_get(opts, "version");
    const char *script = keyval_get(opts, "script");
    const char *log = keyval_get(opts, "log");
    uint64_t delay, bufsize;
    bool established, fail;

    if (!keyval_get_uint(opts, "delay-ms", 0, &delay, errp) ||
        !keyval_get_size(opts, "buffer-size", 4096, &bufsize, errp) ||
        !keyval_get_bool(opts, "established", false, &established, errp) ||
        !keyval_get_bool(opts, "fail-startup", false, &fail, errp)) {
        return NULL;
    }
    if (delay > 3600 * 1000) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "Parameter 'delay-ms' must be at most 3600000, not %" G_GUINT64_FORMAT,
            delay);
        return NULL;
    }
    if (bufsize < 10 || bufsize > TPM_TEST_BUFFER_MAX) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "Parameter 'buffer-size' must be between 10 and %u, not %" G_GUINT64_FORMAT,
            TPM_TEST_BUFFER_MAX, bufsize);
        return NULL;
    }
    if (!version || strcmp(version, "2.0") == 0 || strcmp(version, "2") == 0) {
        t->version = TPM_VERSION_2_0;
    } else if (strcmp(version, "1.2") == 0) {
        t->version = TPM_VERSION_1_2;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Parameter 'version' expects '2.0' or '1.2', not '%s'", version);
        return NULL;
    }
    t->delay_ms = delay;
    t->buffer_size = bufsize;
    t->established = established;
    t->fail_startup = fail;
    t->last_locty = -1;
    g_mutex_init(&t->lock);
    g_cond_init(&t->cond);
    g_queue_init(&t->replies);
    t->commands = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    if (script) {
        t->script_path = g_strdup(script);
        if (!tpm_test_load_script(t, script, errp)) {
            goto fail;
        }
    }
    if (log) {
        t->log_path = g_strdup(log);
        t->log = fopen(log, "a");
        if (!t->log) {
            error_set_errno(errp, errno, "cannot open log file '%s'", log);
            goto fail;
        }
    }
    tpm_backend_init(&t->parent, &tpm_test_backend_class, id);
    return &g_steal_pointer(&t)->parent;

fail:
    g_queue_clear_full(&t->replies, (GDestroyNotify)g_bytes_unref);
    g_ptr_array_unref(t->commands);
    g_free(t->script_path);
    g_free(t->log_path);
    g_mutex_clear(&t->lock);
    g_cond_clear(&t->cond);
    return NULL;
}

static bool is_test_backend(TPMBackend *be)
{
    return be && be->klass == &tpm_test_backend_class;
}

void tpm_test_backend_push_reply(TPMBackend *be, const uint8_t *reply, size_t len)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_return_if_fail(is_test_backend(be));
    g_mutex_lock(&t->lock);
    g_queue_push_tail(&t->replies, g_bytes_new(reply, MIN(len, TPM_TEST_BUFFER_MAX)));
    g_mutex_unlock(&t->lock);
}

GPtrArray *tpm_test_backend_get_commands(TPMBackend *be)
{
    TPMTestBackend *t = TPM_TEST(be);
    GPtrArray *copy;

    g_return_val_if_fail(is_test_backend(be), NULL);
    g_mutex_lock(&t->lock);
    copy = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < t->commands->len; i++) {
        g_ptr_array_add(copy, g_bytes_ref(g_ptr_array_index(t->commands, i)));
    }
    g_mutex_unlock(&t->lock);
    return copy;
}

#define TPM_TEST_GETTER(type, name, field)                                               \
    type name(TPMBackend *be)                                                            \
    {                                                                                    \
        TPMTestBackend *t = TPM_TEST(be);                                                \
        type v;                                                                          \
        g_return_val_if_fail(is_test_backend(be), 0);                                    \
        g_mutex_lock(&t->lock);                                                          \
        v = t->field;                                                                    \
        g_mutex_unlock(&t->lock);                                                        \
        return v;                                                                        \
    }

TPM_TEST_GETTER(int, tpm_test_backend_last_locality, last_locty)
TPM_TEST_GETTER(unsigned, tpm_test_backend_cancel_count, cancels)
TPM_TEST_GETTER(unsigned, tpm_test_backend_established_reset_count, established_resets)
TPM_TEST_GETTER(unsigned, tpm_test_backend_startup_count, startups)
TPM_TEST_GETTER(size_t, tpm_test_backend_startup_buffer_size, startup_buffer_size)

void tpm_test_backend_set_delay_ms(TPMBackend *be, unsigned delay_ms)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_return_if_fail(is_test_backend(be));
    g_mutex_lock(&t->lock);
    t->delay_ms = delay_ms;
    g_cond_broadcast(&t->cond);
    g_mutex_unlock(&t->lock);
}

void tpm_test_backend_clear(TPMBackend *be)
{
    TPMTestBackend *t = TPM_TEST(be);

    g_return_if_fail(is_test_backend(be));
    g_mutex_lock(&t->lock);
    g_queue_clear_full(&t->replies, (GDestroyNotify)g_bytes_unref);
    g_ptr_array_set_size(t->commands, 0);
    t->last_locty = -1;
    g_mutex_unlock(&t->lock);
}
