/*
 * libtpms glue of the built-in TPM: the process-wide TPM instance, its
 * callbacks and the lock that serialises every call into libtpms.
 *
 * libtpms facts used here (libtpms man pages): ChooseTPMVersion comes before
 * SetBufferSize, SetState and MainInit; SetState takes the permanent blob
 * first; loaddata returns a malloc'd buffer that libtpms frees, and
 * TPM_RETRY for an absent blob; storedata must not free its data; the nvram
 * and io callback groups are registered complete.
 */
#include "hw/tpm/tpm_builtin_lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_tis.h>

#include "util/byteorder.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

/* TPM 2.0 Part 2 §6.6 response codes and TPM 1.2 Part 2 §16 return codes. */
#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_RC_FAILURE 0x101
#define TPM2_RC_COMMAND_SIZE 0x142
#define TPM2_RC_LOCALITY 0x907
#define TPM12_TAG_RSP_COMMAND 0x00C4
#define TPM12_FAIL 0x09
#define TPM12_BAD_PARAM_SIZE 0x19
#define TPM12_BAD_LOCALITY 0x3D
#define TPM2_CC_SELF_TEST 0x143
#define TPM12_ORD_SELF_TEST_FULL 0x50
#define TPM12_ORD_CONTINUE_SELF_TEST 0x53

/*
 * libtpms 0.9 answers TPMLIB_GetTPMProperty(MAX_*_SPACE) only for TPM 1.2.
 * For TPM 2.0 the bounds follow from its NV_MEMORY_SIZE (128 KiB + 65 * 704
 * bytes in libtpms' profile) plus the marshalled persistent and orderly
 * data, and from VolatileSave's 16-bit length (at most 65535 bytes).
 */
#define TPM2_MAX_PERMALL (256 * 1024 - 64)
#define TPM2_MAX_VOLATILE 65535
#define TPM2_MAX_SAVESTATE (64 * 1024 - 64)

/*
 * The one libtpms TPM of this process. libtpms holds its TPM in globals and
 * is not re-entrant: `lock` is held around every call into libtpms except
 * TPMLIB_CancelCommand (which only sets a flag and must work while a
 * command runs). The fields below are guarded by `lock` unless noted.
 */
static struct {
    GMutex lock;
    bool running; /* MainInit succeeded, no Terminate since */
    TPMVersion version;
    uint32_t buffer_size;
    TPMNvram *nv;
    uint8_t locality;    /* locality of the command being processed */
    uint8_t *cmd;        /* private copy of the command (buffer_size bytes) */
    unsigned char *resp; /* libtpms-managed response buffer */
    uint32_t resp_bufsize;
    GError *store_error;  /* first store failure during the current call */
    gint established;     /* atomic: cached tpmEstablished */
    gint reset_est_locty; /* atomic: deferred reset of tpmEstablished, -1 none */
    gint running_atomic;  /* atomic copy of running, for cancel */
} tpm_lib = {.reset_est_locty = -1};

void tpm_builtin_blobs_clear(TPMBuiltinBlobs *blobs)
{
    for (unsigned i = 0; i < TPM_NVRAM_NBLOBS; i++) {
        g_clear_pointer(&blobs->blob[i], g_bytes_unref);
    }
}

static TPMNvramBlob blob_of_name(const char *name, bool *ok)
{
    TPMNvramBlob b = TPM_NVRAM_BLOB_PERMALL;

    *ok = tpm_nvram_blob_from_name(name, &b);
    return b;
}

static void lib_note_store_error(GError *err)
{
    if (!tpm_lib.store_error) {
        tpm_lib.store_error = err;
    } else {
        g_error_free(err);
    }
}

static TPM_RESULT cb_nvram_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_loaddata(unsigned char **data, uint32_t *length,
                                    uint32_t tpm_number, const char *name)
{
    const uint8_t *src;
    uint32_t len;
    bool ok;
    TPMNvramBlob b = blob_of_name(name, &ok);

    *data = NULL;
    *length = 0;
    if (!ok || !tpm_lib.nv || !tpm_nvram_get(tpm_lib.nv, b, &src, &len)) {
        trace_event("tpm_builtin_load", "name=%s absent", name);
        return TPM_RETRY;
    }
    /* libtpms frees this buffer with free() */
    *data = malloc(len);
    if (!*data) {
        return TPM_FAIL;
    }
    memcpy(*data, src, len);
    *length = len;
    trace_event("tpm_builtin_load", "name=%s len=%u", name, len);
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_storedata(const unsigned char *data, uint32_t length,
                                     uint32_t tpm_number, const char *name)
{
    GError *err = NULL;
    bool ok;
    TPMNvramBlob b = blob_of_name(name, &ok);

    trace_event("tpm_builtin_store", "name=%s len=%u", name, length);
    if (!ok) {
        lib_note_store_error(g_error_new(TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                                         "libtpms stored an unknown blob '%s'", name));
        return TPM_FAIL;
    }
    if (!tpm_lib.nv) {
        return TPM_SUCCESS;
    }
    if (!tpm_nvram_store(tpm_lib.nv, b, data, length, &err)) {
        lib_note_store_error(err);
        return TPM_FAIL;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_deletename(uint32_t tpm_number, const char *name,
                                      TPM_BOOL mustExist)
{
    const uint8_t *src;
    uint32_t len;
    GError *err = NULL;
    bool ok;
    TPMNvramBlob b = blob_of_name(name, &ok);

    trace_event("tpm_builtin_delete", "name=%s", name);
    if (!ok || !tpm_lib.nv) {
        return mustExist ? TPM_FAIL : TPM_SUCCESS;
    }
    if (!tpm_nvram_get(tpm_lib.nv, b, &src, &len)) {
        return mustExist ? TPM_FAIL : TPM_SUCCESS;
    }
    if (!tpm_nvram_delete(tpm_lib.nv, b, &err)) {
        lib_note_store_error(err);
        return TPM_FAIL;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getlocality(TPM_MODIFIER_INDICATOR *locality, uint32_t tpm_number)
{
    *locality = tpm_lib.locality;
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number)
{
    *pp = FALSE;
    return TPM_SUCCESS;
}

static struct libtpms_callbacks lib_callbacks = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = cb_nvram_init,
    .tpm_nvram_loaddata = cb_nvram_loaddata,
    .tpm_nvram_storedata = cb_nvram_storedata,
    .tpm_nvram_deletename = cb_nvram_deletename,
    .tpm_io_init = cb_io_init,
    .tpm_io_getlocality = cb_io_getlocality,
    .tpm_io_getphysicalpresence = cb_io_getphysicalpresence,
};

static TPMLIB_TPMVersion lib_version(TPMVersion v)
{
    return v == TPM_VERSION_1_2 ? TPMLIB_TPM_VERSION_1_2 : TPMLIB_TPM_VERSION_2;
}

void tpm_builtin_lib_blob_limits(TPMVersion version, uint64_t max_blob[TPM_NVRAM_NBLOBS])
{
    static const enum TPMLIB_TPMProperty props[TPM_NVRAM_NBLOBS] = {
        [TPM_NVRAM_BLOB_PERMALL] = TPMPROP_TPM_MAX_NV_SPACE,
        [TPM_NVRAM_BLOB_VOLATILE] = TPMPROP_TPM_MAX_VOLATILESTATE_SPACE,
        [TPM_NVRAM_BLOB_SAVESTATE] = TPMPROP_TPM_MAX_SAVESTATE_SPACE,
    };
    static const uint64_t tpm2_max[TPM_NVRAM_NBLOBS] = {
        [TPM_NVRAM_BLOB_PERMALL] = TPM2_MAX_PERMALL,
        [TPM_NVRAM_BLOB_VOLATILE] = TPM2_MAX_VOLATILE,
        [TPM_NVRAM_BLOB_SAVESTATE] = TPM2_MAX_SAVESTATE,
    };

    g_mutex_lock(&tpm_lib.lock);
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        int val = 0;
        max_blob[b] = tpm2_max[b];
        if (version == TPM_VERSION_1_2 && !tpm_lib.running &&
            TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_1_2) == TPM_SUCCESS &&
            TPMLIB_GetTPMProperty(props[b], &val) == TPM_SUCCESS && val > 0) {
            max_blob[b] = (uint64_t)val;
        }
    }
    g_mutex_unlock(&tpm_lib.lock);
}

uint32_t tpm_builtin_lib_buffer_size(TPMVersion version, uint32_t wanted)
{
    uint32_t min = 0, max = 0, size = 4096;

    g_mutex_lock(&tpm_lib.lock);
    if (tpm_lib.running) {
        size = tpm_lib.buffer_size;
    } else if (TPMLIB_ChooseTPMVersion(lib_version(version)) == TPM_SUCCESS) {
        size = TPMLIB_SetBufferSize(wanted, &min, &max);
    }
    g_mutex_unlock(&tpm_lib.lock);
    return size;
}

static void lib_stop_locked(void)
{
    if (tpm_lib.running) {
        TPMLIB_Terminate();
        trace_event("tpm_builtin_stop", "version=%d", tpm_lib.version);
    }
    tpm_lib.running = false;
    g_atomic_int_set(&tpm_lib.running_atomic, 0);
    g_atomic_int_set(&tpm_lib.reset_est_locty, -1);
    tpm_lib.nv = NULL;
    g_clear_pointer(&tpm_lib.cmd, g_free);
    free(tpm_lib.resp);
    tpm_lib.resp = NULL;
    tpm_lib.resp_bufsize = 0;
}

static void lib_update_established_locked(void)
{
    TPM_BOOL est = FALSE;

    if (TPM_IO_TpmEstablished_Get(&est) == TPM_SUCCESS) {
        g_atomic_int_set(&tpm_lib.established, est ? 1 : 0);
    }
}

static const char *version_str(TPMVersion v)
{
    return v == TPM_VERSION_1_2 ? "1.2" : "2.0";
}

static bool lib_fail(GError **errp, const char *what, TPM_RESULT rc)
{
    if (tpm_lib.store_error) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "libtpms could not start the TPM %s (%s: error 0x%x): %s",
                    version_str(tpm_lib.version), what, rc, tpm_lib.store_error->message);
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "libtpms could not start the TPM %s (%s: error 0x%x)%s",
                    version_str(tpm_lib.version), what, rc,
                    rc == TPM_RETRY ? ""
                                    : "; the TPM state may be from an incompatible "
                                      "libtpms or damaged");
    }
    g_clear_error(&tpm_lib.store_error);
    return false;
}

bool tpm_builtin_lib_start(TPMVersion version, uint32_t buffer_size, TPMNvram *nv,
                           const TPMBuiltinBlobs *state, GError **errp)
{
    static const enum TPMLIB_StateType types[TPM_NVRAM_NBLOBS] = {
        [TPM_NVRAM_BLOB_PERMALL] = TPMLIB_STATE_PERMANENT,
        [TPM_NVRAM_BLOB_VOLATILE] = TPMLIB_STATE_VOLATILE,
        [TPM_NVRAM_BLOB_SAVESTATE] = TPMLIB_STATE_SAVE_STATE,
    };
    /* libtpms wants the permanent blob set first (TPMLIB_SetState(3)). */
    static const TPMNvramBlob order[TPM_NVRAM_NBLOBS] = {
        TPM_NVRAM_BLOB_PERMALL, TPM_NVRAM_BLOB_VOLATILE, TPM_NVRAM_BLOB_SAVESTATE};
    uint32_t min = 0, max = 0;
    TPM_RESULT rc;
    bool ok = false;

    g_mutex_lock(&tpm_lib.lock);
    lib_stop_locked();
    tpm_lib.version = version;
    g_clear_error(&tpm_lib.store_error);

    rc = TPMLIB_RegisterCallbacks(&lib_callbacks);
    if (rc != TPM_SUCCESS) {
        lib_fail(errp, "registering callbacks", rc);
        goto out;
    }
    rc = TPMLIB_ChooseTPMVersion(lib_version(version));
    if (rc != TPM_SUCCESS) {
        lib_fail(errp, "choosing the version", rc);
        goto out;
    }
    tpm_lib.buffer_size = TPMLIB_SetBufferSize(buffer_size, &min, &max);
    if (state) {
        for (unsigned i = 0; i < TPM_NVRAM_NBLOBS; i++) {
            GBytes *blob = state->blob[order[i]];
            gsize len = 0;
            const void *data = blob ? g_bytes_get_data(blob, &len) : NULL;
            if (!len || len > UINT32_MAX) {
                continue;
            }
            rc = TPMLIB_SetState(types[order[i]], data, (uint32_t)len);
            if (rc != TPM_SUCCESS) {
                g_autofree char *what =
                    g_strdup_printf("setting the %s blob", tpm_nvram_blob_name(order[i]));
                lib_fail(errp, what, rc);
                goto out;
            }
        }
    }
    tpm_lib.nv = nv;
    tpm_lib.locality = 0;
    rc = TPMLIB_MainInit();
    if (rc != TPM_SUCCESS || tpm_lib.store_error) {
        tpm_lib.nv = NULL;
        /* MainInit locks the version choice even when it fails: only
         * Terminate releases it. */
        TPMLIB_Terminate();
        lib_fail(errp, "initialising", rc);
        goto out;
    }
    tpm_lib.running = true;
    g_atomic_int_set(&tpm_lib.running_atomic, 1);
    tpm_lib.cmd = g_malloc(tpm_lib.buffer_size);
    lib_update_established_locked();
    trace_event("tpm_builtin_start", "version=%s buffer=%u", version_str(version),
                tpm_lib.buffer_size);
    ok = true;
out:
    if (!ok) {
        /* Forget blobs set with SetState so that they cannot leak into a
         * later start (choosing a version discards them). */
        TPMLIB_ChooseTPMVersion(lib_version(version));
    }
    g_mutex_unlock(&tpm_lib.lock);
    return ok;
}

void tpm_builtin_lib_stop(void)
{
    g_mutex_lock(&tpm_lib.lock);
    lib_stop_locked();
    g_mutex_unlock(&tpm_lib.lock);
}

bool tpm_builtin_lib_is_running(void)
{
    return g_atomic_int_get(&tpm_lib.running_atomic) != 0;
}

uint32_t tpm_builtin_lib_get_buffer_size(void)
{
    uint32_t size;

    g_mutex_lock(&tpm_lib.lock);
    size = tpm_lib.buffer_size;
    g_mutex_unlock(&tpm_lib.lock);
    return size;
}

uint32_t tpm_builtin_error_response(TPMVersion version, uint8_t *out, uint32_t out_len,
                                    uint32_t rc2, uint32_t rc12)
{
    uint8_t rsp[10];
    uint16_t tag =
        version == TPM_VERSION_1_2 ? TPM12_TAG_RSP_COMMAND : TPM2_ST_NO_SESSIONS;
    uint32_t rc = version == TPM_VERSION_1_2 ? rc12 : rc2;

    rsp[0] = tag >> 8;
    rsp[1] = tag & 0xff;
    rsp[2] = rsp[3] = rsp[4] = 0;
    rsp[5] = 10;
    rsp[6] = rc >> 24;
    rsp[7] = rc >> 16;
    rsp[8] = rc >> 8;
    rsp[9] = rc;
    memcpy(out, rsp, MIN(out_len, sizeof(rsp)));
    return MIN(out_len, (uint32_t)sizeof(rsp));
}

static void lib_apply_deferred_reset_locked(void)
{
    gint locty = g_atomic_int_get(&tpm_lib.reset_est_locty);

    if (locty >= 0 &&
        g_atomic_int_compare_and_exchange(&tpm_lib.reset_est_locty, locty, -1)) {
        uint8_t saved = tpm_lib.locality;
        tpm_lib.locality = (uint8_t)locty;
        TPM_IO_TpmEstablished_Reset();
        tpm_lib.locality = saved;
    }
}

uint32_t tpm_builtin_lib_process(uint8_t locty, const uint8_t *in, uint32_t in_len,
                                 uint8_t *out, uint32_t out_len)
{
    uint32_t resp_len = 0;
    TPMVersion version;
    TPM_RESULT rc;

    if (out_len < 10) {
        return 0;
    }
    g_mutex_lock(&tpm_lib.lock);
    version = tpm_lib.version;
    if (!tpm_lib.running) {
        resp_len = tpm_builtin_error_response(version, out, out_len, TPM2_RC_FAILURE,
                                              TPM12_FAIL);
        goto out;
    }
    if (locty > 4) {
        resp_len = tpm_builtin_error_response(version, out, out_len, TPM2_RC_LOCALITY,
                                              TPM12_BAD_LOCALITY);
        goto out;
    }
    if (in_len > tpm_lib.buffer_size) {
        resp_len = tpm_builtin_error_response(version, out, out_len, TPM2_RC_COMMAND_SIZE,
                                              TPM12_BAD_PARAM_SIZE);
        goto out;
    }
    /* The frontend may pass one buffer as both in and out; libtpms gets a
     * private copy it may not scribble over. */
    memcpy(tpm_lib.cmd, in, in_len);
    tpm_lib.locality = locty;
    trace_event("tpm_builtin_cmd_start", "locty=%u len=%u ordinal=0x%x", locty, in_len,
                in_len >= 10 ? be32_at(in + 6) : 0);
    rc = TPMLIB_Process(&tpm_lib.resp, &resp_len, &tpm_lib.resp_bufsize, tpm_lib.cmd,
                        in_len);
    lib_apply_deferred_reset_locked();
    lib_update_established_locked();
    if (tpm_lib.store_error) {
        /* Never show a result whose state change is not durable. */
        error_report("TPM: the state change of a command could not be saved: %s",
                     tpm_lib.store_error->message);
        g_clear_error(&tpm_lib.store_error);
        resp_len = tpm_builtin_error_response(version, out, out_len, TPM2_RC_FAILURE,
                                              TPM12_FAIL);
    } else if (rc != TPM_SUCCESS || resp_len < 10 || resp_len > out_len ||
               resp_len > tpm_lib.resp_bufsize) {
        resp_len = tpm_builtin_error_response(version, out, out_len, TPM2_RC_FAILURE,
                                              TPM12_FAIL);
    } else {
        memcpy(out, tpm_lib.resp, resp_len);
    }
    trace_event("tpm_builtin_cmd_end", "len=%u rc=0x%x", resp_len,
                resp_len >= 10 ? be32_at(out + 6) : 0);
out:
    g_mutex_unlock(&tpm_lib.lock);
    return resp_len;
}

void tpm_builtin_lib_cancel(void)
{
    if (tpm_builtin_lib_is_running()) {
        TPMLIB_CancelCommand();
    }
}

bool tpm_builtin_lib_get_established(void)
{
    return g_atomic_int_get(&tpm_lib.established) != 0;
}

bool tpm_builtin_lib_reset_established(uint8_t locty, GError **errp)
{
    TPM_RESULT rc;

    /* TIS 1.3 §5.6.12 / PTP: only localities 3 and 4 may reset it. */
    if (locty != 3 && locty != 4) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "tpmEstablished can only be reset from locality 3 or 4, not %u",
                    locty);
        return false;
    }
    if (!g_mutex_trylock(&tpm_lib.lock)) {
        /* A command is running: the worker resets the flag when it ends. */
        g_atomic_int_set(&tpm_lib.reset_est_locty, locty);
        g_atomic_int_set(&tpm_lib.established, 0);
        return true;
    }
    if (!tpm_lib.running) {
        g_mutex_unlock(&tpm_lib.lock);
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_ACTIVE,
                    "the TPM is not running");
        return false;
    }
    tpm_lib.locality = locty;
    rc = TPM_IO_TpmEstablished_Reset();
    lib_update_established_locked();
    g_mutex_unlock(&tpm_lib.lock);
    if (rc != TPM_SUCCESS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "libtpms refused to reset tpmEstablished (error 0x%x)", rc);
        return false;
    }
    return true;
}

static GBytes *bytes_from_malloc(unsigned char *buf, uint32_t len)
{
    GBytes *b = NULL;

    if (buf && len) {
        b = g_bytes_new(buf, len);
    }
    free(buf);
    return b;
}

bool tpm_builtin_lib_get_state(TPMBuiltinBlobs *out, GError **errp)
{
    unsigned char *buf = NULL;
    uint32_t len = 0;
    TPM_RESULT rc;
    bool ok = false;

    memset(out, 0, sizeof(*out));
    g_mutex_lock(&tpm_lib.lock);
    if (!tpm_lib.running) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_ACTIVE,
                    "the TPM is not running; its state cannot be saved");
        goto out;
    }
    rc = TPMLIB_GetState(TPMLIB_STATE_PERMANENT, &buf, &len);
    if (rc != TPM_SUCCESS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "libtpms could not produce the permanent state (error 0x%x)", rc);
        goto out;
    }
    out->blob[TPM_NVRAM_BLOB_PERMALL] = bytes_from_malloc(buf, len);
    buf = NULL;
    len = 0;
    rc = TPMLIB_VolatileAll_Store(&buf, &len);
    if (rc != TPM_SUCCESS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "libtpms could not produce the volatile state (error 0x%x)", rc);
        goto out;
    }
    out->blob[TPM_NVRAM_BLOB_VOLATILE] = bytes_from_malloc(buf, len);
    buf = NULL;
    len = 0;
    /* The savestate blob exists only after a TPM 1.2 SaveState: absent is fine. */
    if (TPMLIB_GetState(TPMLIB_STATE_SAVE_STATE, &buf, &len) == TPM_SUCCESS) {
        out->blob[TPM_NVRAM_BLOB_SAVESTATE] = bytes_from_malloc(buf, len);
    } else {
        free(buf);
    }
    ok = true;
out:
    g_mutex_unlock(&tpm_lib.lock);
    if (!ok) {
        tpm_builtin_blobs_clear(out);
    }
    return ok;
}
