/*
 * TPM backends: what the TIS frontend talks to. A backend type registers a
 * TPMBackendClass under a name (-tpmdev TYPE,id=ID,...); the frontend finds
 * the instance by id.
 *
 * Requests are asynchronous with at most one outstanding command: the
 * frontend calls tpm_backend_deliver_request() (big lock held); the generic
 * code runs klass->handle_request() on the backend's worker thread; the
 * completion callback then runs in the main loop with the big lock held.
 * tpm_backend_finish_sync() waits for an outstanding command and runs its
 * completion (used by reset, vmstate save and snapshots).
 *
 * The completion is posted to GLib's default main context (the main loop of
 * include/system/main-loop.h), whose dispatch runs with the big lock held.
 * A backend's worker thread never touches frontend state: it only reads
 * cmd->in and writes cmd->out.
 */
#ifndef HW_TPM_TPM_BACKEND_H
#define HW_TPM_TPM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "hw/core/vmstate.h"
#include "util/keyval.h"

typedef enum {
    TPM_VERSION_UNSPEC = 0,
    TPM_VERSION_1_2 = 1,
    TPM_VERSION_2_0 = 2,
} TPMVersion;

typedef struct TPMBackendCmd {
    uint8_t locty;
    const uint8_t *in;
    uint32_t in_len;
    uint8_t *out; /* frontend buffer, out_len bytes */
    uint32_t out_len;
    bool selftest_done; /* set by the backend when a self-test succeeded */
} TPMBackendCmd;

typedef struct TPMBackend TPMBackend;

typedef struct TPMBackendClass {
    const char *type; /* "builtin", "test" */
    const char *desc;
    /* Parse options (id already taken out) and create; help handled by caller. */
    TPMBackend *(*create)(const char *id, KeyVal *opts, GError **errp);
    void (*destroy)(TPMBackend *be);
    /* Print the options this type accepts (for -tpmdev TYPE,help). */
    void (*print_help)(void);
    /* (Re)start the TPM with this I/O buffer size; main thread, nothing in flight. */
    bool (*startup_tpm)(TPMBackend *be, size_t buffersize, GError **errp);
    /* Machine reset: stop the TPM (it is started again by startup_tpm). The
     * generic code has already waited for any in-flight command. */
    void (*reset)(TPMBackend *be);
    /* Worker thread: process cmd->in into cmd->out. Must always produce a
     * response (a version-correct error on failure). */
    void (*handle_request)(TPMBackend *be, TPMBackendCmd *cmd);
    /* Any thread: ask the running command to finish early. Must not block. */
    void (*cancel_cmd)(TPMBackend *be);
    bool (*get_tpm_established_flag)(TPMBackend *be);
    int (*reset_tpm_established_flag)(TPMBackend *be, uint8_t locty);
    TPMVersion (*get_tpm_version)(TPMBackend *be);
    size_t (*get_buffer_size)(TPMBackend *be);
    /* Backend-specific part of query-tpm "options": key/value strings. */
    void (*get_options)(TPMBackend *be, GHashTable *kv);
    /* Backend state for vmstate (libtpms blobs). NULL if stateless. The
     * frontend that claims the backend registers it, with the backend as
     * opaque; the backend does not register it itself. */
    const VMStateDescription *vmsd;
} TPMBackendClass;

typedef void (*TPMRequestCompleted)(void *opaque, TPMBackendCmd *cmd);

struct TPMBackend {
    const TPMBackendClass *klass;
    char *id;
    bool had_startup_error;
    char *startup_error; /* why, for query-tpm / logs */
    /* generic request machinery (tpm_backend.c) */
    TPMBackendCmd *cmd; /* outstanding command or NULL */
    TPMRequestCompleted completed;
    void *completed_opaque;
    GThread *worker;
    GMutex lock;
    GCond cond;
    bool worker_quit;
    bool cmd_done;       /* worker finished cmd, completion not yet run */
    bool in_use;         /* claimed by a frontend */
    bool cmd_started;    /* the worker has taken cmd */
    GSource *completion; /* posted completion not yet dispatched */
    uint64_t cmd_seq;    /* number of the latest delivered command; a
                          * cancel_cmd applies to this one */
};

void tpm_backend_class_register(const TPMBackendClass *klass);
#define TPM_BACKEND_REGISTER(k)                                                          \
    static void __attribute__((constructor)) register_##k(void)                          \
    {                                                                                    \
        tpm_backend_class_register(&k);                                                  \
    }
const TPMBackendClass *tpm_backend_class_find(const char *type);
void tpm_backend_class_foreach(void (*fn)(const TPMBackendClass *k, void *opaque),
                               void *opaque);

/* -tpmdev TYPE,id=ID,... ; prints help and returns NULL, *help_printed=true
 * when asked. */
TPMBackend *tpm_backend_create_from_string(const char *optstr, bool *help_printed,
                                           GError **errp);
TPMBackend *tpm_backend_find(const char *id);
void tpm_backend_foreach(void (*fn)(TPMBackend *be, void *opaque), void *opaque);
void tpm_backend_destroy_all(void);
/* Stop the worker, unregister and free one backend (klass->destroy frees the
 * type's part and the struct; the generic fields are released before). */
void tpm_backend_destroy(TPMBackend *be);
/* -tpmdev help: the registered types, one per line. */
void tpm_backend_list_help(void);

/* Initialise the generic part (called by class create functions). */
void tpm_backend_init(TPMBackend *be, const TPMBackendClass *klass, const char *id);

bool tpm_backend_startup_tpm(TPMBackend *be, size_t buffersize, GError **errp);
void tpm_backend_reset(TPMBackend *be);
bool tpm_backend_deliver_request(TPMBackend *be, TPMBackendCmd *cmd,
                                 TPMRequestCompleted completed, void *opaque,
                                 GError **errp);
void tpm_backend_cancel_cmd(TPMBackend *be);
void tpm_backend_finish_sync(TPMBackend *be);
bool tpm_backend_had_startup_error(TPMBackend *be);
bool tpm_backend_get_tpm_established_flag(TPMBackend *be);
int tpm_backend_reset_tpm_established_flag(TPMBackend *be, uint8_t locty);
TPMVersion tpm_backend_get_tpm_version(TPMBackend *be);
size_t tpm_backend_get_buffer_size(TPMBackend *be);
/* True while a command is outstanding (delivered, completion not yet run). */
bool tpm_backend_cmd_pending(TPMBackend *be);
/* The query-tpm "options.data" pairs of this backend (empty if none). */
void tpm_backend_get_options(TPMBackend *be, GHashTable *kv);
/* Name of a TPM version as QMP/HMP show it ("2.0", "1.2", "unspecified"). */
const char *tpm_version_name(TPMVersion v);

/* A version-correct 10-byte error response (TPM2: tag 0x8001 TPM_RC_FAILURE;
 * TPM 1.2: tag 0x00C4 TPM_FAIL) written to out (out_len >= 10). */
void tpm_util_write_fatal_error_response(uint8_t *out, uint32_t out_len, TPMVersion v);
/* Big-endian command/response header fields. */
uint32_t tpm_cmd_get_size(const void *b);
uint32_t tpm_cmd_get_ordinal(const void *b);
uint32_t tpm_cmd_get_errcode(const void *b);

#endif
