/*
 * Generic TPM backend machinery: the type registry, -tpmdev parsing and help,
 * one worker thread per backend that runs klass->handle_request(), and the
 * hand-back of completions to the main loop. See include/hw/tpm/tpm_backend.h.
 *
 * Request life cycle (be->lock guards cmd, cmd_started, cmd_done, completion):
 *   deliver (main thread, big lock) -> cmd set, worker woken
 *   worker: cmd_started, handle_request() outside the lock, cmd_done,
 *           completion source attached to the default main context
 *   completion (main loop, big lock) or finish_sync: cmd cleared, callback run
 * The completion runs exactly once, from whichever of the two comes first.
 */
#include <stdio.h>
#include <string.h>

#include "hw/tpm/tpm_backend.h"
#include "util/byteorder.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

/* Registered types, filled by constructors before main(); read-only after. */
static GPtrArray *backend_classes;
/* Instances in creation order; main thread only. */
static GPtrArray *backends;

void tpm_backend_class_register(const TPMBackendClass *klass)
{
    if (!backend_classes) {
        backend_classes = g_ptr_array_new();
    }
    g_ptr_array_add(backend_classes, (gpointer)klass);
}

const TPMBackendClass *tpm_backend_class_find(const char *type)
{
    for (guint i = 0; backend_classes && type && i < backend_classes->len; i++) {
        const TPMBackendClass *k = g_ptr_array_index(backend_classes, i);
        if (strcmp(k->type, type) == 0) {
            return k;
        }
    }
    return NULL;
}

static gint class_cmp(gconstpointer a, gconstpointer b)
{
    const TPMBackendClass *ka = *(const TPMBackendClass *const *)a;
    const TPMBackendClass *kb = *(const TPMBackendClass *const *)b;

    return strcmp(ka->type, kb->type);
}

void tpm_backend_class_foreach(void (*fn)(const TPMBackendClass *k, void *opaque),
                               void *opaque)
{
    g_autoptr(GPtrArray) sorted = g_ptr_array_new();

    /* Sorted by name so that help and query-tpm-types are stable. */
    for (guint i = 0; backend_classes && i < backend_classes->len; i++) {
        g_ptr_array_add(sorted, g_ptr_array_index(backend_classes, i));
    }
    g_ptr_array_sort(sorted, class_cmp);
    for (guint i = 0; i < sorted->len; i++) {
        fn(g_ptr_array_index(sorted, i), opaque);
    }
}

static void print_class(const TPMBackendClass *k, void *opaque)
{
    printf("%-12s %s\n", k->type, k->desc ? k->desc : "");
}

void tpm_backend_list_help(void)
{
    printf("Supported TPM types (choose only one):\n");
    tpm_backend_class_foreach(print_class, NULL);
}

TPMBackend *tpm_backend_find(const char *id)
{
    for (guint i = 0; backends && id && i < backends->len; i++) {
        TPMBackend *be = g_ptr_array_index(backends, i);
        if (strcmp(be->id, id) == 0) {
            return be;
        }
    }
    return NULL;
}

void tpm_backend_foreach(void (*fn)(TPMBackend *be, void *opaque), void *opaque)
{
    for (guint i = 0; backends && i < backends->len; i++) {
        fn(g_ptr_array_index(backends, i), opaque);
    }
}

static bool tpm_backend_id_valid(const char *id)
{
    /* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

TPMBackend *tpm_backend_create_from_string(const char *optstr, bool *help_printed,
                                           GError **errp)
{
    g_autoptr(KeyVal) kv = NULL;
    const TPMBackendClass *klass;
    const char *type, *id;
    g_autofree char *what = NULL;
    TPMBackend *be;

    if (help_printed) {
        *help_printed = false;
    }
    kv = keyval_parse(optstr, "type", errp);
    if (!kv) {
        g_prefix_error(errp, "-tpmdev %s: ", optstr);
        return NULL;
    }
    type = keyval_get(kv, "type");
    if (keyval_wants_help(kv) && (!type || strcmp(type, "help") == 0)) {
        tpm_backend_list_help();
        if (help_printed) {
            *help_printed = true;
        }
        return NULL;
    }
    if (!type) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-tpmdev %s: Parameter 'type' is missing; use -tpmdev help to list "
                    "the TPM types",
                    optstr);
        return NULL;
    }
    klass = tpm_backend_class_find(type);
    if (!klass) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-tpmdev %s: '%s' is not a valid TPM type; use -tpmdev help to list "
                    "the TPM types",
                    optstr, type);
        return NULL;
    }
    if (keyval_wants_help(kv)) {
        printf("-tpmdev %s options:\n", klass->type);
        printf(
            "  id=<str>                 the backend's name, for -device ...,tpmdev=ID\n");
        if (klass->print_help) {
            klass->print_help();
        }
        if (help_printed) {
            *help_printed = true;
        }
        return NULL;
    }
    what = g_strdup_printf("-tpmdev %s", type);
    id = keyval_get(kv, "id");
    if (!id) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "%s: Parameter 'id' is missing; name the backend with id=NAME", what);
        return NULL;
    }
    if (!tpm_backend_id_valid(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "%s: Parameter 'id' expects an identifier (a letter, then letters, "
                    "digits, '-', '.', '_'), not '%s'",
                    what, id);
        return NULL;
    }
    if (tpm_backend_find(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "%s: a TPM backend with id '%s' already exists; pick another id",
                    what, id);
        return NULL;
    }
    be = klass->create(id, kv, errp);
    if (!be) {
        g_prefix_error(errp, "%s,id=%s: ", type, id);
        g_prefix_error(errp, "-tpmdev ");
        return NULL;
    }
    if (!keyval_check_unused(kv, what, errp)) {
        tpm_backend_destroy(be);
        return NULL;
    }
    return be;
}

/* Worker thread: waits for a command, runs it, posts the completion. */
static gpointer tpm_backend_worker(gpointer opaque)
{
    TPMBackend *be = opaque;

    g_mutex_lock(&be->lock);
    for (;;) {
        TPMBackendCmd *cmd;

        while (!be->worker_quit && (!be->cmd || be->cmd_started)) {
            g_cond_wait(&be->cond, &be->lock);
        }
        if (be->worker_quit) {
            break;
        }
        cmd = be->cmd;
        be->cmd_started = true;
        g_mutex_unlock(&be->lock);

        trace_event("tpm_backend_request_start", "id=%s locty=%u len=%u", be->id,
                    cmd->locty, cmd->in_len);
        if (be->klass->handle_request) {
            be->klass->handle_request(be, cmd);
        } else {
            tpm_util_write_fatal_error_response(cmd->out, cmd->out_len,
                                                tpm_backend_get_tpm_version(be));
        }
        trace_event("tpm_backend_request_done", "id=%s len=%u", be->id,
                    cmd->out_len >= 6 ? tpm_cmd_get_size(cmd->out) : 0);

        g_mutex_lock(&be->lock);
        be->cmd_done = true;
        g_cond_broadcast(&be->cond);
        if (be->completion) {
            g_source_attach(be->completion, g_main_context_default());
        }
    }
    g_mutex_unlock(&be->lock);
    return NULL;
}

/*
 * Run the completion of a finished command once. Main thread, big lock held
 * (the main loop holds it while dispatching).
 */
static void tpm_backend_complete(TPMBackend *be)
{
    TPMBackendCmd *cmd;
    TPMRequestCompleted completed;
    void *opaque;
    GSource *src;

    g_mutex_lock(&be->lock);
    if (!be->cmd || !be->cmd_done) {
        g_mutex_unlock(&be->lock);
        return;
    }
    cmd = be->cmd;
    completed = be->completed;
    opaque = be->completed_opaque;
    src = be->completion;
    be->cmd = NULL;
    be->cmd_done = false;
    be->cmd_started = false;
    be->completion = NULL;
    g_mutex_unlock(&be->lock);

    if (src) {
        g_source_destroy(src);
        g_source_unref(src);
    }
    if (completed) {
        completed(opaque, cmd);
    }
}

static gboolean tpm_backend_completion_cb(gpointer opaque)
{
    tpm_backend_complete(opaque);
    return G_SOURCE_REMOVE;
}

void tpm_backend_init(TPMBackend *be, const TPMBackendClass *klass, const char *id)
{
    g_autofree char *name = g_strdup_printf("tpm-%s", id);

    be->klass = klass;
    be->id = g_strdup(id);
    g_mutex_init(&be->lock);
    g_cond_init(&be->cond);
    be->worker = g_thread_new(name, tpm_backend_worker, be);
    if (!backends) {
        backends = g_ptr_array_new();
    }
    g_ptr_array_add(backends, be);
}

void tpm_backend_destroy(TPMBackend *be)
{
    if (!be) {
        return;
    }
    /* Going away: a long command need not run to its end. */
    tpm_backend_cancel_cmd(be);
    tpm_backend_finish_sync(be);
    g_mutex_lock(&be->lock);
    be->worker_quit = true;
    g_cond_broadcast(&be->cond);
    g_mutex_unlock(&be->lock);
    g_thread_join(be->worker);
    be->worker = NULL;
    if (backends) {
        g_ptr_array_remove(backends, be);
    }
    g_mutex_clear(&be->lock);
    g_cond_clear(&be->cond);
    g_clear_pointer(&be->id, g_free);
    g_clear_pointer(&be->startup_error, g_free);
    if (be->klass->destroy) {
        be->klass->destroy(be);
    } else {
        g_free(be);
    }
}

void tpm_backend_destroy_all(void)
{
    while (backends && backends->len) {
        tpm_backend_destroy(g_ptr_array_index(backends, backends->len - 1));
    }
}

bool tpm_backend_startup_tpm(TPMBackend *be, size_t buffersize, GError **errp)
{
    GError *err = NULL;

    tpm_backend_finish_sync(be);
    g_clear_pointer(&be->startup_error, g_free);
    be->had_startup_error = false;
    if (be->klass->startup_tpm && !be->klass->startup_tpm(be, buffersize, &err)) {
        be->had_startup_error = true;
        be->startup_error = g_strdup(err->message);
        g_propagate_prefixed_error(errp, err,
                                   "TPM backend '%s' failed to start: ", be->id);
        return false;
    }
    return true;
}

void tpm_backend_reset(TPMBackend *be)
{
    tpm_backend_finish_sync(be);
    if (be->klass->reset) {
        be->klass->reset(be);
    }
}

bool tpm_backend_deliver_request(TPMBackend *be, TPMBackendCmd *cmd,
                                 TPMRequestCompleted completed, void *opaque,
                                 GError **errp)
{
    GSource *src;

    g_mutex_lock(&be->lock);
    if (be->cmd) {
        g_mutex_unlock(&be->lock);
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "TPM backend '%s': a command is already in flight; wait for its "
                    "completion",
                    be->id);
        return false;
    }
    /* The source is made here so that the worker only attaches it. */
    src = g_idle_source_new();
    /* Like main_loop_call(): completions unblock the guest, so they go first. */
    g_source_set_priority(src, G_PRIORITY_HIGH);
    g_source_set_callback(src, tpm_backend_completion_cb, be, NULL);
    g_source_set_static_name(src, "tpm-backend-completion");
    be->cmd = cmd;
    be->cmd_seq++;
    be->completed = completed;
    be->completed_opaque = opaque;
    be->cmd_done = false;
    be->cmd_started = false;
    be->completion = src;
    g_cond_broadcast(&be->cond);
    g_mutex_unlock(&be->lock);
    return true;
}

void tpm_backend_cancel_cmd(TPMBackend *be)
{
    bool pending;

    g_mutex_lock(&be->lock);
    pending = be->cmd && !be->cmd_done;
    g_mutex_unlock(&be->lock);
    if (pending && be->klass->cancel_cmd) {
        be->klass->cancel_cmd(be);
    }
}

void tpm_backend_finish_sync(TPMBackend *be)
{
    g_mutex_lock(&be->lock);
    while (be->cmd && !be->cmd_done) {
        g_cond_wait(&be->cond, &be->lock);
    }
    g_mutex_unlock(&be->lock);
    tpm_backend_complete(be);
}

bool tpm_backend_cmd_pending(TPMBackend *be)
{
    bool pending;

    g_mutex_lock(&be->lock);
    pending = be->cmd != NULL;
    g_mutex_unlock(&be->lock);
    return pending;
}

bool tpm_backend_had_startup_error(TPMBackend *be)
{
    return be->had_startup_error;
}

bool tpm_backend_get_tpm_established_flag(TPMBackend *be)
{
    return be->klass->get_tpm_established_flag ? be->klass->get_tpm_established_flag(be)
                                               : false;
}

int tpm_backend_reset_tpm_established_flag(TPMBackend *be, uint8_t locty)
{
    return be->klass->reset_tpm_established_flag
               ? be->klass->reset_tpm_established_flag(be, locty)
               : 0;
}

TPMVersion tpm_backend_get_tpm_version(TPMBackend *be)
{
    return be->klass->get_tpm_version ? be->klass->get_tpm_version(be)
                                      : TPM_VERSION_UNSPEC;
}

size_t tpm_backend_get_buffer_size(TPMBackend *be)
{
    return be->klass->get_buffer_size ? be->klass->get_buffer_size(be) : 4096;
}

void tpm_backend_get_options(TPMBackend *be, GHashTable *kv)
{
    if (be->klass->get_options) {
        be->klass->get_options(be, kv);
    }
}

const char *tpm_version_name(TPMVersion v)
{
    switch (v) {
    case TPM_VERSION_1_2:
        return "1.2";
    case TPM_VERSION_2_0:
        return "2.0";
    default:
        return "unspecified";
    }
}

void tpm_util_write_fatal_error_response(uint8_t *out, uint32_t out_len, TPMVersion v)
{
    if (!out || out_len < 10) {
        return;
    }
    if (v == TPM_VERSION_1_2) {
        /* TPM 1.2 Part 2: TPM_TAG_RSP_COMMAND 0x00C4, TPM_FAIL = 9 */
        put_be16(out, 0x00C4);
        put_be32(out + 2, 10);
        put_be32(out + 6, 9);
    } else {
        /* TPM 2.0 Part 2: TPM_ST_NO_SESSIONS 0x8001, TPM_RC_FAILURE = 0x101 */
        put_be16(out, 0x8001);
        put_be32(out + 2, 10);
        put_be32(out + 6, 0x101);
    }
}

uint32_t tpm_cmd_get_size(const void *b)
{
    return be32_at((const uint8_t *)b + 2);
}

uint32_t tpm_cmd_get_ordinal(const void *b)
{
    return be32_at((const uint8_t *)b + 6);
}

uint32_t tpm_cmd_get_errcode(const void *b)
{
    return be32_at((const uint8_t *)b + 6);
}
